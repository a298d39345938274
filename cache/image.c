/*
 * The image operations over the index and the store: get, list, inspect,
 * remove, prune and sandbox references.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache.h"
#include "common/digest.h"
#include "common/error.h"
#include "pull/manifest.h"
#include "pull/reference.h"

/* Files younger than this are left alone by prune's sweep of files the
 * index does not know: a live pull may be about to record them. */
#define PRUNE_GRACE_DEFAULT_SECONDS 600

static char *dup_or_null(const char *s, int *rc)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		*rc = OCICACHE_ENOMEM;
	return d;
}

/* The normalised form of `reference`; the parsed one too if asked. */
static int normalise(char **out, struct reference *parsed,
		     const char *reference)
{
	struct reference ref;
	int rc;

	*out = NULL;
	if (!reference)
		return oc_err(OCICACHE_EINVAL, "no image reference given");
	rc = reference_parse(&ref, reference);
	if (rc)
		return rc;
	*out = reference_string(&ref);
	if (!*out) {
		reference_free(&ref);
		return oc_err(OCICACHE_ENOMEM, "out of memory");
	}
	if (parsed)
		*parsed = ref;
	else
		reference_free(&ref);
	return 0;
}

static int image_from_db(ocicache_image **out, struct ocicache *cache,
			 struct db_image *row)
{
	ocicache_image *img = calloc(1, sizeof(*img));
	int rc = 0;

	*out = NULL;
	if (!img)
		return oc_err(OCICACHE_ENOMEM, "out of memory");
	img->reference = dup_or_null(row->reference, &rc);
	img->manifest_digest = dup_or_null(row->manifest_digest, &rc);
	img->index_digest = dup_or_null(row->index_digest, &rc);
	img->architecture = dup_or_null(row->architecture, &rc);
	img->os = dup_or_null(row->os, &rc);
	img->variant = dup_or_null(row->variant, &rc);
	img->layer_count = row->layer_count;
	img->size_bytes = row->size_bytes;
	img->created_at = row->created_at;
	img->last_used_at = row->last_used_at;
	if (!rc && digest_valid(row->manifest_digest)) {
		img->fsmeta_path =
		    store_fsmeta_path(&cache->store, row->manifest_digest);
		img->vmdk_path =
		    store_vmdk_path(&cache->store, row->manifest_digest);
		if (!img->fsmeta_path || !img->vmdk_path)
			rc = OCICACHE_ENOMEM;
	}
	if (rc) {
		ocicache_image_free(img);
		return oc_err(rc, "out of memory");
	}
	*out = img;
	return 0;
}

int cache_image_load(ocicache_image **out, struct ocicache *cache,
		     const char *reference)
{
	struct db_image row;
	int rc = db_image_get(&row, cache->db, reference);

	if (rc)
		return rc;
	rc = image_from_db(out, cache, &row);
	db_image_clear(&row);
	return rc;
}

/* The row for `reference`: by its normalised text, or, for a reference
 * with a digest, any reference of the same repository whose manifest or
 * index has that digest. */
static int lookup(struct db_image *row, struct ocicache *cache,
		  const char *reference)
{
	struct reference ref;
	char *text, *name;
	int rc;

	rc = normalise(&text, &ref, reference);
	if (rc)
		return rc;
	rc = db_image_get(row, cache->db, text);
	if (rc == OCICACHE_ENOTFOUND && ref.digest) {
		name = reference_name(&ref);
		rc = name ? db_image_find(row, cache->db, name, ref.digest)
			  : oc_err(OCICACHE_ENOMEM, "out of memory");
		free(name);
		if (rc == OCICACHE_ENOTFOUND)
			oc_err(rc, "image %s is not in the cache", text);
	}
	free(text);
	reference_free(&ref);
	return rc;
}

int ocicache_image_get(ocicache_image **out, ocicache *cache,
		       const char *reference)
{
	struct db_image row;
	int rc;

	*out = NULL;
	rc = lookup(&row, cache, reference);
	if (rc)
		return rc;
	rc = image_from_db(out, cache, &row);
	db_image_clear(&row);
	if (rc)
		return rc;

	/* A warm get is a stat of what it returns: a disk whose files went
	 * missing is not a cached image (a pull writes them again). */
	if (store_file_size((*out)->fsmeta_path) < 0 ||
	    store_file_size((*out)->vmdk_path) < 0) {
		rc = oc_err(OCICACHE_ENOTFOUND,
			    "image %s: %s or %s is missing; pull it again",
			    (*out)->reference, (*out)->fsmeta_path,
			    (*out)->vmdk_path);
		ocicache_image_free(*out);
		*out = NULL;
	}
	return rc;
}

int ocicache_image_list(ocicache_image ***out, size_t *count_out,
			ocicache *cache)
{
	struct db_image *rows = NULL;
	ocicache_image **images;
	size_t count = 0, i;
	int rc;

	*out = NULL;
	*count_out = 0;
	rc = db_image_list(&rows, &count, cache->db);
	if (rc)
		return rc;
	images = calloc(count + 1, sizeof(*images));
	if (!images)
		rc = oc_err(OCICACHE_ENOMEM, "out of memory");
	for (i = 0; !rc && i < count; i++)
		rc = image_from_db(&images[i], cache, &rows[i]);
	db_image_list_free(rows, count);
	if (rc) {
		ocicache_image_list_free(images, count);
		return rc;
	}
	*out = images;
	*count_out = count;
	return 0;
}

static int config_from_json(struct ocicache_config **out,
			    const struct db_image *row)
{
	struct ocicache_config *c;
	struct image_config ic;
	int rc = 0;

	*out = NULL;
	if (!row->config_json)
		return 0;
	rc =
	    image_config_parse(&ic, row->config_json, strlen(row->config_json));
	if (rc)
		return oc_err_wrap(rc, "image %s: config %s", row->reference,
				   row->config_digest ? row->config_digest
						      : "(unknown)");
	c = calloc(1, sizeof(*c));
	if (c)
		c->digest = dup_or_null(row->config_digest, &rc);
	if (!c || rc) {
		free(c);
		image_config_free(&ic);
		return oc_err(OCICACHE_ENOMEM, "out of memory");
	}
	/* The detail takes the parsed config's arrays and strings. */
	c->env = ic.env;
	c->cmd = ic.cmd;
	c->entrypoint = ic.entrypoint;
	c->working_dir = ic.working_dir;
	c->user = ic.user;
	c->labels_json = ic.labels_json;
	c->stop_signal = ic.stop_signal;
	ic.env = ic.cmd = ic.entrypoint = NULL;
	ic.working_dir = ic.user = ic.labels_json = ic.stop_signal = NULL;
	image_config_free(&ic);
	*out = c;
	return 0;
}

static int layers_from_db(ocicache_image_detail *d, struct ocicache *cache,
			  const char *manifest_digest)
{
	struct db_layer *rows = NULL;
	size_t count = 0, i;
	int rc;

	rc = db_manifest_layers(&rows, &count, cache->db, manifest_digest);
	if (rc)
		return rc;
	d->layers = calloc(count + 1, sizeof(*d->layers));
	if (!d->layers)
		rc = OCICACHE_ENOMEM;
	for (i = 0; !rc && i < count; i++) {
		struct ocicache_layer *l = &d->layers[i];

		d->layer_count++;
		l->diff_id = dup_or_null(rows[i].diff_id, &rc);
		l->blob_digest = dup_or_null(rows[i].blob_digest, &rc);
		l->media_type = dup_or_null(rows[i].media_type, &rc);
		l->compressed_size_bytes = rows[i].compressed_size;
		l->erofs_size_bytes = rows[i].erofs_size;
		l->position = rows[i].position;
		if (!rc && digest_valid(rows[i].diff_id) &&
		    !(l->path =
			  store_layer_path(&cache->store, rows[i].diff_id)))
			rc = OCICACHE_ENOMEM;
	}
	db_layers_free(rows, count);
	if (rc)
		return oc_err(rc, "out of memory");
	return 0;
}

int ocicache_image_inspect(ocicache_image_detail **out, ocicache *cache,
			   const char *reference)
{
	ocicache_image_detail *d;
	struct db_image row;
	int rc;

	*out = NULL;
	rc = lookup(&row, cache, reference);
	if (rc)
		return rc;
	d = calloc(1, sizeof(*d));
	if (!d) {
		db_image_clear(&row);
		return oc_err(OCICACHE_ENOMEM, "out of memory");
	}
	rc = image_from_db(&d->handle, cache, &row);
	if (!rc)
		rc = config_from_json(&d->config, &row);
	if (!rc)
		rc = layers_from_db(d, cache, row.manifest_digest);
	db_image_clear(&row);
	if (rc) {
		ocicache_image_detail_free(d);
		return rc;
	}
	*out = d;
	return 0;
}

struct sweep {
	struct ocicache *cache;
	bool dry_run;
	int64_t grace_ms;
	struct ocicache_prune_report *report;
};

/* Unlink `path` (or, in a dry run, count what it would free). */
static int sweep_file(struct sweep *sw, const char *path, bool *removed)
{
	int64_t size;

	if (!sw->dry_run)
		return store_remove(path, &sw->report->bytes_reclaimed,
				    removed);
	size = store_file_size(path);
	*removed = size >= 0;
	if (size > 0)
		sw->report->bytes_reclaimed += size;
	return 0;
}

/*
 * Delete the files of a manifest the index no longer has. A pull holding
 * its lock is about to record it again, so a busy lock or a manifest the
 * index knows again leaves the files alone.
 */
static int sweep_manifest(struct sweep *sw, const char *digest)
{
	const struct store *s = &sw->cache->store;
	char *fsmeta = NULL, *vmdk = NULL;
	bool removed;
	int fd = -1, rc;

	if (!sw->dry_run) {
		rc = store_lock(&fd, s, STORE_LOCK_MANIFEST, digest,
				STORE_LOCK_TRY);
		if (rc == 1)
			oc_debug("prune: manifest %s is in use; kept", digest);
		if (rc)
			return rc < 0 ? rc : 0;
		rc = db_manifest_known(sw->cache->db, digest);
		if (rc)
			goto out;
	}
	fsmeta = store_fsmeta_path(s, digest);
	vmdk = store_vmdk_path(s, digest);
	rc = fsmeta && vmdk ? 0 : oc_err(OCICACHE_ENOMEM, "out of memory");
	if (!rc)
		rc = sweep_file(sw, fsmeta, &removed);
	if (!rc && removed)
		sw->report->fsmeta_removed++;
	if (!rc)
		rc = sweep_file(sw, vmdk, &removed);
	if (!rc && removed)
		sw->report->vmdk_removed++;
out:
	store_unlock(fd);
	free(fsmeta);
	free(vmdk);
	return rc < 0 ? rc : 0;
}

/* The same for a layer: the image goes before its implied list, so that
 * an image never lacks its list. */
static int sweep_layer(struct sweep *sw, const char *diff_id, bool count)
{
	const struct store *s = &sw->cache->store;
	char *layer = NULL, *implied = NULL;
	bool removed = false, ignored;
	int fd = -1, rc;

	if (!sw->dry_run) {
		rc = store_lock(&fd, s, STORE_LOCK_LAYER, diff_id,
				STORE_LOCK_TRY);
		if (rc == 1)
			oc_debug("prune: layer %s is in use; kept", diff_id);
		if (rc)
			return rc < 0 ? rc : 0;
		rc = db_layer_known(sw->cache->db, diff_id);
		if (rc)
			goto out;
	}
	layer = store_layer_path(s, diff_id);
	implied = store_implied_path(s, diff_id);
	rc = layer && implied ? 0 : oc_err(OCICACHE_ENOMEM, "out of memory");
	if (!rc)
		rc = sweep_file(sw, layer, &removed);
	if (!rc)
		rc = sweep_file(sw, implied, &ignored);
	if (!rc && (count || removed))
		sw->report->layers_removed++;
out:
	store_unlock(fd);
	free(layer);
	free(implied);
	return rc < 0 ? rc : 0;
}

static int sweep_garbage(struct sweep *sw, const struct db_garbage *g)
{
	size_t i;
	int rc = 0;

	for (i = 0; !rc && i < g->manifest_count; i++)
		rc = sweep_manifest(sw, g->manifests[i]);
	for (i = 0; !rc && i < g->layer_count; i++)
		rc = sweep_layer(sw, g->layers[i], true);
	return rc;
}

int ocicache_image_remove(ocicache *cache, const char *reference, int force)
{
	struct ocicache_prune_report report = {0};
	struct sweep sw = {cache, false, 0, &report};
	struct db_garbage g;
	char *text;
	int rc;

	rc = normalise(&text, NULL, reference);
	if (rc)
		return rc;
	rc = db_remove_image(&g, cache->db, text, force != 0);
	if (!rc) {
		oc_info("remove %s: %zu manifests and %zu layers unused", text,
			g.manifest_count, g.layer_count);
		rc = sweep_garbage(&sw, &g);
		if (rc)
			oc_err_wrap(rc, "remove %s", text);
		db_garbage_free(&g);
	}
	free(text);
	return rc;
}

static int64_t prune_grace_ms(void)
{
	const char *env = getenv("OCICACHE_PRUNE_GRACE_SECONDS");
	char *end;
	long long secs;

	if (!env || !*env)
		return PRUNE_GRACE_DEFAULT_SECONDS * 1000LL;
	secs = strtoll(env, &end, 10);
	if (*end || secs < 0 || secs > 100LL * 365 * 86400) {
		oc_warn("OCICACHE_PRUNE_GRACE_SECONDS=%s is not a number of "
			"seconds; using %d",
			env, PRUNE_GRACE_DEFAULT_SECONDS);
		return PRUNE_GRACE_DEFAULT_SECONDS * 1000LL;
	}
	return secs * 1000;
}

/* "<64 hex><suffix>" to "sha256:<hex>"; false for other names. */
static bool name_digest(char out[DIGEST_STR_LEN], const char *name,
			const char *suffix)
{
	size_t len = strlen(name), slen = strlen(suffix);

	if (len != 64 + slen || strcmp(name + 64, suffix) != 0)
		return false;
	snprintf(out, DIGEST_STR_LEN, "sha256:%.64s", name);
	return digest_valid(out);
}

/* Files in layers/, fsmeta/ and vmdk/ that the index does not know. */
static int sweep_unknown(struct sweep *sw, const char *dir)
{
	struct store_entry *e = NULL;
	char digest[DIGEST_STR_LEN];
	bool is_layers = strcmp(dir, "layers/sha256") == 0;
	bool is_fsmeta = strcmp(dir, "fsmeta/sha256") == 0;
	const char *suffix = is_fsmeta ? ".erofs" : ".vmdk";
	size_t count = 0, i;
	bool removed;
	int rc, known;

	rc = store_scan(&e, &count, &sw->cache->store, dir);
	for (i = 0; !rc && i < count; i++) {
		if (e[i].age_ms < sw->grace_ms)
			continue;
		if (is_layers && (name_digest(digest, e[i].name, ".erofs") ||
				  name_digest(digest, e[i].name, ".implied"))) {
			known = db_layer_known(sw->cache->db, digest);
			if (known == 0)
				rc = sweep_layer(sw, digest, false);
			rc = known < 0 ? known : rc;
		} else if (!is_layers &&
			   name_digest(digest, e[i].name, suffix)) {
			known = db_manifest_known(sw->cache->db, digest);
			if (known == 0)
				rc = sweep_manifest(sw, digest);
			rc = known < 0 ? known : rc;
		} else {
			rc = sweep_file(sw, e[i].path, &removed);
		}
	}
	store_scan_free(e, count);
	return rc;
}

/* tmp/: unfinished downloads and writes, once past the grace period. */
static int sweep_tmp(struct sweep *sw)
{
	struct store_entry *e = NULL;
	size_t count = 0, i;
	bool removed;
	int rc;

	rc = store_scan(&e, &count, &sw->cache->store, "tmp");
	for (i = 0; !rc && i < count; i++)
		if (e[i].age_ms >= sw->grace_ms)
			rc = sweep_file(sw, e[i].path, &removed);
	store_scan_free(e, count);
	return rc;
}

/* Files the index does not know, in the store and in tmp/: only while no
 * pull is under way (see STORE_LOCK_WORK), and only past the grace
 * period, which still guards caches shared in ways flock does not see. */
static int sweep_strays(struct sweep *sw)
{
	int fd, rc;

	rc = store_lock(&fd, &sw->cache->store, STORE_LOCK_WORK, NULL,
			STORE_LOCK_TRY);
	if (rc == 1) {
		oc_info("prune: a pull is under way; files the index does not "
			"know are left for a later prune");
		return 0;
	}
	if (rc)
		return rc;
	rc = sweep_unknown(sw, "layers/sha256");
	if (!rc)
		rc = sweep_unknown(sw, "fsmeta/sha256");
	if (!rc)
		rc = sweep_unknown(sw, "vmdk/sha256");
	if (!rc)
		rc = sweep_tmp(sw);
	store_unlock(fd);
	return rc;
}

int ocicache_prune(struct ocicache_prune_report *out, ocicache *cache,
		   const struct ocicache_prune_options *opts)
{
	struct ocicache_prune_options defaults;
	struct ocicache_prune_report report = {0};
	struct db_prune_options dbo;
	struct sweep sw;
	struct db_garbage g;
	int rc;

	if (!opts) {
		ocicache_prune_options_init(&defaults);
		opts = &defaults;
	}
	if (opts->older_than_ms < 0)
		return oc_err(OCICACHE_EINVAL,
			      "prune: older_than_ms %lld is negative",
			      (long long)opts->older_than_ms);
	dbo.cutoff_ms =
	    opts->older_than_ms > 0 ? cache_now_ms() - opts->older_than_ms : 0;
	dbo.keep_bytes = opts->keep_bytes;
	dbo.dry_run = opts->dry_run != 0;
	sw = (struct sweep){cache, dbo.dry_run, prune_grace_ms(), &report};

	rc = db_prune(&g, cache->db, &dbo);
	if (rc)
		return oc_err_wrap(rc, "prune");
	report.image_refs_removed = g.image_refs_removed;
	report.manifests_removed = g.manifest_count;
	rc = sweep_garbage(&sw, &g);
	db_garbage_free(&g);
	if (!rc)
		rc = sweep_strays(&sw);
	if (rc)
		return oc_err_wrap(rc, "prune");
	oc_info("prune: %llu references, %llu manifests, %llu layers, "
		"%lld bytes%s",
		(unsigned long long)report.image_refs_removed,
		(unsigned long long)report.manifests_removed,
		(unsigned long long)report.layers_removed,
		(long long)report.bytes_reclaimed,
		dbo.dry_run ? " (dry run)" : "");
	if (out)
		*out = report;
	return 0;
}

int ocicache_sandbox_add(ocicache *cache, const char *sandbox_id,
			 const char *reference)
{
	char *text;
	int rc;

	if (!sandbox_id || !*sandbox_id)
		return oc_err(OCICACHE_EINVAL, "empty sandbox id");
	rc = normalise(&text, NULL, reference);
	if (rc)
		return rc;
	rc = db_sandbox_add(cache->db, sandbox_id, text, cache_now_ms());
	if (rc)
		oc_err_wrap(rc, "sandbox %s", sandbox_id);
	free(text);
	return rc;
}

int ocicache_sandbox_list(struct ocicache_sandbox **out, size_t *count_out,
			  ocicache *cache)
{
	return db_sandbox_list(out, count_out, cache->db);
}

void ocicache_sandbox_list_free(struct ocicache_sandbox *sandboxes,
				size_t count)
{
	for (size_t i = 0; sandboxes && i < count; i++) {
		free(sandboxes[i].sandbox_id);
		free(sandboxes[i].reference);
		free(sandboxes[i].manifest_digest);
	}
	free(sandboxes);
}

int ocicache_sandbox_release(ocicache *cache, const char *sandbox_id)
{
	if (!sandbox_id || !*sandbox_id)
		return oc_err(OCICACHE_EINVAL, "empty sandbox id");
	return db_sandbox_remove(cache->db, sandbox_id);
}
