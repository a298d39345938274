/*
 * Opening the cache, option defaults, handle lifetimes and the one-layer
 * conversion the CLI's `convert` uses.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache/cache.h"
#include "cache/pipeline.h"
#include "common/error.h"
#include "convert/layer.h"

int64_t cache_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* $OCICACHE_ROOT, else $XDG_CACHE_HOME/ocicache, else ~/.cache/ocicache. */
static int default_root(char **out)
{
	const char *env = getenv("OCICACHE_ROOT");
	const char *home;
	struct passwd *pw;

	*out = NULL;
	if (env && *env) {
		*out = strdup(env);
	} else if ((env = getenv("XDG_CACHE_HOME")) && *env) {
		if (asprintf(out, "%s/ocicache", env) < 0)
			*out = NULL;
	} else {
		home = getenv("HOME");
		if ((!home || !*home) && (pw = getpwuid(getuid())))
			home = pw->pw_dir;
		if (!home || !*home)
			return oc_err(OCICACHE_EINVAL,
				      "no cache root: set OCICACHE_ROOT or "
				      "HOME");
		if (asprintf(out, "%s/.cache/ocicache", home) < 0)
			*out = NULL;
	}
	return *out ? 0 : oc_err(OCICACHE_ENOMEM, "out of memory");
}

int ocicache_open(ocicache **out, const char *root)
{
	struct ocicache *cache;
	char *chosen = NULL, *db_path = NULL;
	int rc;

	*out = NULL;
	if (!root) {
		rc = default_root(&chosen);
		if (rc)
			return rc;
		root = chosen;
	}
	cache = calloc(1, sizeof(*cache));
	if (!cache) {
		free(chosen);
		return oc_err(OCICACHE_ENOMEM, "out of memory");
	}
	rc = store_open(&cache->store, root);
	if (!rc && !(db_path = store_db_path(&cache->store)))
		rc = oc_err(OCICACHE_ENOMEM, "out of memory");
	if (!rc)
		rc = db_open(&cache->db, db_path);
	free(db_path);
	free(chosen);
	if (rc) {
		ocicache_close(cache);
		return rc;
	}
	oc_debug("opened cache %s", cache->store.root);
	*out = cache;
	return 0;
}

void ocicache_close(ocicache *cache)
{
	if (!cache)
		return;
	db_close(cache->db);
	store_close(&cache->store);
	free(cache);
}

const char *ocicache_root(const ocicache *cache)
{
	return cache->store.root;
}

void ocicache_image_free(ocicache_image *image)
{
	if (!image)
		return;
	free(image->reference);
	free(image->manifest_digest);
	free(image->index_digest);
	free(image->architecture);
	free(image->os);
	free(image->variant);
	free(image->fsmeta_path);
	free(image->vmdk_path);
	free(image);
}

void ocicache_image_list_free(ocicache_image **images, size_t count)
{
	size_t i;

	if (!images)
		return;
	for (i = 0; i < count; i++)
		ocicache_image_free(images[i]);
	free(images);
}

static void strv_free(char **v)
{
	char **p;

	for (p = v; p && *p; p++)
		free(*p);
	free(v);
}

void ocicache_image_detail_free(ocicache_image_detail *detail)
{
	struct ocicache_config *c;
	size_t i;

	if (!detail)
		return;
	ocicache_image_free(detail->handle);
	c = detail->config;
	if (c) {
		free(c->digest);
		strv_free(c->env);
		strv_free(c->cmd);
		strv_free(c->entrypoint);
		free(c->working_dir);
		free(c->user);
		free(c->labels_json);
		free(c->stop_signal);
		free(c);
	}
	for (i = 0; detail->layers && i < detail->layer_count; i++) {
		free(detail->layers[i].diff_id);
		free(detail->layers[i].blob_digest);
		free(detail->layers[i].media_type);
		free(detail->layers[i].path);
	}
	free(detail->layers);
	free(detail);
}

void ocicache_pull_options_init(struct ocicache_pull_options *opts)
{
	memset(opts, 0, sizeof(*opts));
}

void ocicache_prune_options_init(struct ocicache_prune_options *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->keep_bytes = -1;
}

int ocicache_pull(ocicache_image **out, ocicache *cache, const char *reference,
		  const struct ocicache_pull_options *opts)
{
	if (out)
		*out = NULL;
	if (!reference)
		return oc_err(OCICACHE_EINVAL,
			      "pull: no image reference given");
	if (opts && opts->jobs < 0)
		return oc_err(OCICACHE_EINVAL, "pull %s: jobs %d is negative",
			      reference, opts->jobs);
	return pipeline_pull(out, cache, reference, opts);
}

/* A temporary name beside `path`, so that the rename stays in one file
 * system. */
static int sibling_tmp(char **out, const char *path)
{
	static unsigned long counter;
	unsigned long n = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);

	if (asprintf(out, "%s.%ld.%lu.tmp", path, (long)getpid(), n) < 0) {
		*out = NULL;
		return oc_err(OCICACHE_ENOMEM, "out of memory");
	}
	return 0;
}

int ocicache_convert_layer(struct ocicache_convert_result *out,
			   const char *tar_path, const char *out_path)
{
	struct erofs_layer_result res = {0};
	char *tmp = NULL;
	int fd, rc;

	if (!tar_path || !out_path)
		return oc_err(OCICACHE_EINVAL, "convert: no input or output");
	fd = open(tar_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return oc_err_errno("convert: open %s", tar_path);
	rc = sibling_tmp(&tmp, out_path);
	if (!rc)
		rc = erofs_layer_convert(&res, fd, DECOMPRESS_AUTO, tar_path,
					 tmp, NULL);
	close(fd);
	if (!rc)
		rc = store_commit(tmp, out_path);
	if (rc) {
		if (tmp)
			unlink(tmp);
		free(tmp);
		return oc_err_wrap(rc, "convert %s", tar_path);
	}
	if (out) {
		memset(out, 0, sizeof(*out));
		snprintf(out->diff_id, sizeof(out->diff_id), "%s", res.diff_id);
		out->erofs_size_bytes = (uint64_t)store_file_size(out_path);
		out->entries = res.entries;
	}
	erofs_layer_result_free(&res);
	free(tmp);
	return 0;
}
