#include "cache/pipeline.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache/cache.h"
#include "common/buf.h"
#include "common/digest.h"
#include "common/error.h"
#include "common/file.h"
#include "convert/fsmeta.h"
#include "convert/layer.h"
#include "pull/manifest.h"
#include "pull/reference.h"
#include "pull/registry.h"
#include "vmdk/vmdk.h"

#define PULL_RETRIES 3
/* How often a layer is looked at again when another process holds it. */
#define LAYER_LOCK_TRIES 2000

struct pull_layer {
	const struct descriptor *blob;
	const char *diff_id;
	int64_t erofs_size;
	char *implied_text; /* store_implied_encode() form */
	int lock_fd;	    /* a shared lock, held until the pull ends */
};

struct pull {
	struct ocicache *cache;
	const struct ocicache_pull_options *opts;
	struct reference ref;
	char *refstr; /* normalised */
	struct registry_options registry_opts;
	struct registry *registry;

	char manifest_digest[DIGEST_STR_LEN];
	char index_digest[DIGEST_STR_LEN]; /* "" when not from an index */
	char *manifest_media_type;
	struct manifest manifest;
	struct buf config_body;
	struct image_config config;
	struct pull_layer *layers;
	size_t layer_count;

	/* The workers' shared state. */
	pthread_mutex_t lock;
	size_t next;
	int failed;
	char failed_message[1024];
};

static void pull_progress(struct pull *p, int kind, const char *digest,
			  size_t index, int64_t bytes)
{
	struct ocicache_progress ev = {
	    .kind = kind,
	    .reference = p->refstr,
	    .digest = digest,
	    .layer_index = (uint32_t)index,
	    .layer_count = (uint32_t)p->layer_count,
	    .bytes = bytes,
	};

	if (!p->opts->on_progress)
		return;
	pthread_mutex_lock(&p->lock);
	p->opts->on_progress(&ev, p->opts->progress_userdata);
	pthread_mutex_unlock(&p->lock);
}

static int choose_platform(const struct descriptor **out, struct pull *p,
			   const struct image_index *idx)
{
	const char *os, *arch, *variant;
	char *want_os = NULL, *want_arch = NULL, *want_variant = NULL;
	int rc = 0;

	if (p->opts->platform) {
		rc = platform_parse(&want_os, &want_arch, &want_variant,
				    p->opts->platform);
		if (rc)
			return rc;
		os = want_os;
		arch = want_arch;
		variant = want_variant;
	} else {
		platform_host(&os, &arch, &variant);
	}
	rc = image_index_choose(out, idx, os, arch, variant);
	free(want_os);
	free(want_arch);
	free(want_variant);
	return rc;
}

/* Fetch the manifest `target`: the platform's entry when it is an index. */
static int fetch_manifest(struct pull *p, struct buf *body, char **ctype,
			  const char *target)
{
	const struct descriptor *entry;
	struct image_index idx;
	char digest[DIGEST_STR_LEN];
	char *entry_digest = NULL;
	int rc, kind;

	rc = registry_get_manifest(body, ctype, digest, p->registry, target);
	if (rc)
		return rc;
	kind = manifest_kind(*ctype, body->data ? body->data : "", body->len);
	if (kind < 0)
		return oc_err_wrap(kind, "manifest %s", digest);
	if (kind == MANIFEST_IMAGE) {
		memcpy(p->manifest_digest, digest, DIGEST_STR_LEN);
		return 0;
	}

	rc = image_index_parse(&idx, body->data ? body->data : "", body->len);
	if (rc)
		return oc_err_wrap(rc, "index %s", digest);
	rc = choose_platform(&entry, p, &idx);
	if (!rc && !(entry_digest = strdup(entry->digest)))
		rc = oc_err(OCICACHE_ENOMEM, "out of memory");
	image_index_free(&idx);
	if (rc)
		return oc_err_wrap(rc, "index %s", digest);
	memcpy(p->index_digest, digest, DIGEST_STR_LEN);
	oc_debug("pull %s: index %s: chose manifest %s", p->refstr, digest,
		 entry_digest);

	buf_free(body);
	free(*ctype);
	*ctype = NULL;
	rc = registry_get_manifest(body, ctype, digest, p->registry,
				   entry_digest);
	if (!rc) {
		kind = manifest_kind(*ctype, body->data ? body->data : "",
				     body->len);
		if (kind != MANIFEST_IMAGE)
			rc = oc_err(OCICACHE_EFORMAT,
				    "index %s: entry %s is not an image "
				    "manifest",
				    p->index_digest, entry_digest);
	}
	if (!rc)
		memcpy(p->manifest_digest, digest, DIGEST_STR_LEN);
	free(entry_digest);
	return rc;
}

static int pull_resolve(struct pull *p)
{
	struct buf body = BUF_INIT;
	char *ctype = NULL;
	const struct descriptor *cfg;
	const char *target = p->ref.digest ? p->ref.digest : p->ref.tag;
	const char *media;
	int rc;

	rc = fetch_manifest(p, &body, &ctype, target);
	if (rc)
		goto out;
	rc = manifest_parse(&p->manifest, body.data ? body.data : "", body.len);
	if (rc) {
		oc_err_wrap(rc, "manifest %s", p->manifest_digest);
		goto out;
	}
	media = p->manifest.media_type ? p->manifest.media_type : ctype;
	if (media && !(p->manifest_media_type = strdup(media))) {
		rc = oc_err(OCICACHE_ENOMEM, "out of memory");
		goto out;
	}

	cfg = &p->manifest.config;
	rc = registry_get_blob_buffer(&p->config_body, p->registry, cfg->digest,
				      cfg->size);
	if (!rc)
		rc = buf_puts(&p->config_body, "");
	if (rc)
		goto out;
	rc = image_config_parse(&p->config, p->config_body.data,
				p->config_body.len);
	if (rc) {
		oc_err_wrap(rc, "config %s", cfg->digest);
		goto out;
	}
	if (p->config.diff_id_count != p->manifest.layer_count)
		rc = oc_err(OCICACHE_EFORMAT,
			    "manifest %s: %zu layers, but its config %s lists "
			    "%zu diff_ids",
			    p->manifest_digest, p->manifest.layer_count,
			    cfg->digest, p->config.diff_id_count);
out:
	buf_free(&body);
	free(ctype);
	return rc;
}

static int decompress_kind_of(enum decompress_kind *out, const char *media)
{
	enum blob_compression comp;
	int rc = blob_compression_of(&comp, media);

	if (rc)
		return rc;
	*out = comp == BLOB_GZIP   ? DECOMPRESS_GZIP
	       : comp == BLOB_ZSTD ? DECOMPRESS_ZSTD
				   : DECOMPRESS_NONE;
	return 0;
}

/* Convert the layer stream in `fd` into the temporary file `*tmp_out`
 * (unlinked again on failure) and check its diff_id against the config. */
static int layer_convert(char **tmp_out, struct erofs_layer_result *res,
			 struct pull *p, size_t i, int fd)
{
	struct pull_layer *l = &p->layers[i];
	enum decompress_kind kind;
	char *tmp = NULL;
	int rc;

	*tmp_out = NULL;
	rc = decompress_kind_of(&kind, l->blob->media_type);
	if (rc)
		return oc_err_wrap(rc, "layer %zu (blob %s)", i,
				   l->blob->digest);
	rc = store_tmp_path(&tmp, &p->cache->store, digest_hex(l->diff_id));
	if (rc)
		return rc;
	rc = erofs_layer_convert(res, fd, kind, l->blob->digest, tmp, NULL);
	if (rc)
		goto fail;
	if (strcmp(res->diff_id, l->diff_id) != 0) {
		rc = oc_err(OCICACHE_EDIGEST,
			    "layer %zu (blob %s): diff_id %s, config says %s",
			    i, l->blob->digest, res->diff_id, l->diff_id);
		unlink(tmp);
		goto fail;
	}
	*tmp_out = tmp;
	return 0;

fail:
	erofs_layer_result_free(res);
	free(tmp);
	return rc;
}

/* Move a converted layer into its place in the store. The implied list
 * goes first, so that the image never lacks it. */
static int layer_commit(struct pull *p, size_t i, const char *tmp,
			const struct erofs_layer_result *res)
{
	struct pull_layer *l = &p->layers[i];
	const struct store *s = &p->cache->store;
	char *path, *text = NULL;
	int rc;

	path = store_layer_path(s, l->diff_id);
	rc = path ? store_implied_encode(&text, res->implied_dirs,
					 res->implied_count)
		  : oc_err(OCICACHE_ENOMEM, "out of memory");
	if (!rc)
		rc = store_write_implied(s, l->diff_id, text);
	if (!rc)
		rc = store_commit(tmp, path);
	free(text);
	free(path);
	return rc;
}

/*
 * Streaming: the blob is downloaded into tmp/<blob>.part (so that a cut
 * download resumes) while a feeder thread follows that file as it grows
 * and copies it into a pipe that the converter reads. Download plus
 * SHA-256 run on one core, inflate plus tar plus EROFS on the other, and
 * neither waits for the whole blob.
 *
 * The file at any offset holds the blob's byte at that offset, whatever
 * the downloader does (resume from a prefix, restart from 0 after a
 * registry ignored Range), so following it by offset is sound; a corrupt
 * prefix is caught by the blob digest or the diff_id, whichever sees it.
 */
struct layer_stream {
	struct pull *p;
	size_t index;
	struct registry *reg;
	const char *part;
	int part_fd; /* the downloader's O_APPEND descriptor */
	int pipe_out;

	pthread_mutex_t lock;
	bool download_done;
	int download_rc;
	char download_message[1024];
};

/* How long the feeder sleeps when it has caught up with the download. */
#define FEEDER_IDLE_USECS 500

static void *layer_download_thread(void *arg)
{
	struct layer_stream *ls = arg;
	const struct descriptor *blob = ls->p->layers[ls->index].blob;
	int rc;

	rc = registry_download_blob(ls->reg, blob->digest, blob->size,
				    ls->part_fd, ls->part);
	pthread_mutex_lock(&ls->lock);
	ls->download_rc = rc;
	if (rc)
		snprintf(ls->download_message, sizeof(ls->download_message),
			 "%s", oc_err_message());
	ls->download_done = true;
	pthread_mutex_unlock(&ls->lock);
	return NULL;
}

static bool stream_download_done(struct layer_stream *ls, int *rc)
{
	bool done;

	pthread_mutex_lock(&ls->lock);
	done = ls->download_done;
	*rc = ls->download_rc;
	pthread_mutex_unlock(&ls->lock);
	return done;
}

/* Copy the growing .part file into the pipe until the download ends. A
 * converter that stopped reading (it failed) ends the copy with EPIPE. */
static void *layer_feeder_thread(void *arg)
{
	static const size_t chunk = 1 << 20;
	struct layer_stream *ls = arg;
	uint64_t offset = 0;
	sigset_t block;
	char *buf = malloc(chunk);
	int fd = open(ls->part, O_RDONLY | O_CLOEXEC);

	sigemptyset(&block);
	sigaddset(&block, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &block, NULL);
	while (buf && fd >= 0) {
		ssize_t n = pread(fd, buf, chunk, (off_t)offset);
		int rc;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		if (n == 0) {
			/* Look at the flag first, then read once more: a
			 * download that ended after our read is not lost. */
			if (stream_download_done(ls, &rc)) {
				n = pread(fd, buf, chunk, (off_t)offset);
				if (rc || n <= 0)
					break;
			} else {
				usleep(FEEDER_IDLE_USECS);
				continue;
			}
		}
		if (file_write_all(ls->pipe_out, buf, (size_t)n, "layer pipe"))
			break;
		offset += (uint64_t)n;
	}
	if (fd >= 0)
		close(fd);
	free(buf);
	close(ls->pipe_out);
	ls->pipe_out = -1;
	return NULL;
}

/* Download the layer's blob (resuming a .part left by an earlier try) and
 * convert it as it arrives. The caller holds the layer's lock
 * exclusively. */
static int layer_fetch(struct pull *p, size_t i, struct registry **reg)
{
	struct pull_layer *l = &p->layers[i];
	struct layer_stream ls = {.p = p, .index = i, .part_fd = -1};
	struct erofs_layer_result res = {0};
	pthread_t downloader, feeder;
	char *tmp = NULL;
	int pipefd[2] = {-1, -1};
	char *part;
	int rc;

	if (!*reg) {
		rc = registry_new(reg, reference_api_host(&p->ref),
				  p->ref.repository, &p->registry_opts);
		if (rc)
			return rc;
	}
	part = store_part_path(&p->cache->store, l->blob->digest);
	if (!part)
		return oc_err(OCICACHE_ENOMEM, "out of memory");
	ls.reg = *reg;
	ls.part = part;
	ls.part_fd = open(part, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (ls.part_fd < 0) {
		rc = oc_err_errno("open %s", part);
		goto out_free;
	}
	if (pipe2(pipefd, O_CLOEXEC) != 0) {
		rc = oc_err_errno("pipe for %s", part);
		goto out_close;
	}
	/* A larger pipe means fewer wake-ups; failing to grow it is fine. */
	fcntl(pipefd[1], F_SETPIPE_SZ, 1 << 20);
	ls.pipe_out = pipefd[1];
	pthread_mutex_init(&ls.lock, NULL);

	oc_info("pull %s: layer %zu/%zu: fetching blob %s (%lld bytes)",
		p->refstr, i + 1, p->layer_count, l->blob->digest,
		(long long)l->blob->size);
	if (pthread_create(&downloader, NULL, layer_download_thread, &ls)) {
		rc = oc_err(OCICACHE_ENOMEM, "layer %zu: cannot start thread",
			    i);
		close(pipefd[1]);
		goto out_pipe;
	}
	if (pthread_create(&feeder, NULL, layer_feeder_thread, &ls)) {
		/* No feeder: convert once the download has finished. */
		close(pipefd[1]);
		pthread_join(downloader, NULL);
		rc = ls.download_rc
			 ? oc_err(ls.download_rc, "%s", ls.download_message)
			 : oc_err(OCICACHE_ENOMEM,
				  "layer %zu: cannot start thread", i);
		goto out_pipe;
	}

	rc = layer_convert(&tmp, &res, p, i, pipefd[0]);
	/* Unblock a feeder still writing to a converter that gave up. */
	close(pipefd[0]);
	pipefd[0] = -1;
	pthread_join(feeder, NULL);
	pthread_join(downloader, NULL);

	/* The download's verdict comes first: a converter fed a corrupt blob
	 * may fail in any way, but the cause is the blob. Nothing enters the
	 * store before both the blob digest and the diff_id held. */
	if (ls.download_rc)
		rc = oc_err(ls.download_rc, "%s", ls.download_message);
	if (!rc)
		rc = layer_commit(p, i, tmp, &res);
	if (tmp) {
		if (rc)
			unlink(tmp);
		erofs_layer_result_free(&res);
		free(tmp);
	}
out_pipe:
	pthread_mutex_destroy(&ls.lock);
	if (pipefd[0] >= 0)
		close(pipefd[0]);
out_close:
	close(ls.part_fd);
	/* A verified blob that did not convert is no use to a retry. */
	if (!rc || rc == OCICACHE_EDIGEST || rc == OCICACHE_EFORMAT)
		unlink(part);
	if (!rc)
		oc_info("pull %s: layer %zu/%zu: %s converted", p->refstr,
			i + 1, p->layer_count, l->diff_id);
out_free:
	free(part);
	return rc;
}

/*
 * Make sure layer i is in the store and hold a shared lock on it until the
 * pull ends, so that remove and prune (which only try the lock) leave it
 * alone. Converting takes the lock exclusively and never waits for it, so
 * two pulls cannot wait on each other; whoever finds the layer missing and
 * gets the lock converts it, the others wait on the shared lock and look
 * again.
 */
static int layer_ensure(struct pull *p, size_t i, struct registry **reg,
			bool *converted)
{
	struct pull_layer *l = &p->layers[i];
	const struct store *s = &p->cache->store;
	int fd, rc, tries;

	*converted = false;
	for (tries = 0; tries < LAYER_LOCK_TRIES; tries++) {
		rc = store_lock(&fd, s, STORE_LOCK_LAYER, l->diff_id,
				STORE_LOCK_SHARED);
		if (rc)
			return rc;
		if (store_layer_present(s, l->diff_id, &l->erofs_size)) {
			rc =
			    store_read_implied(&l->implied_text, s, l->diff_id);
			if (rc) {
				store_unlock(fd);
				return rc;
			}
			l->lock_fd = fd;
			return 0;
		}

		rc = store_relock(fd, STORE_LOCK_TRY, l->diff_id);
		if (rc == 0 && !store_layer_present(s, l->diff_id, NULL)) {
			rc = layer_fetch(p, i, reg);
			*converted = rc == 0;
		}
		store_unlock(fd);
		if (rc < 0)
			return rc;
		if (rc == 1)
			usleep(1000 + (unsigned)(rand() % 4000));
	}
	return oc_err(OCICACHE_EIO,
		      "layer %s: removed each time it was converted",
		      l->diff_id);
}

static void pull_fail(struct pull *p, int rc)
{
	pthread_mutex_lock(&p->lock);
	if (!p->failed) {
		p->failed = rc;
		snprintf(p->failed_message, sizeof(p->failed_message), "%s",
			 oc_err_message());
	}
	pthread_mutex_unlock(&p->lock);
}

static void *pull_worker(void *arg)
{
	struct pull *p = arg;
	struct registry *reg = NULL;
	bool converted;
	size_t i;
	int rc;

	for (;;) {
		pthread_mutex_lock(&p->lock);
		if (p->failed || p->next >= p->layer_count) {
			pthread_mutex_unlock(&p->lock);
			break;
		}
		i = p->next++;
		pthread_mutex_unlock(&p->lock);

		rc = layer_ensure(p, i, &reg, &converted);
		if (rc) {
			pull_fail(p, rc);
			break;
		}
		if (!converted)
			oc_debug("pull %s: layer %zu/%zu: %s is cached",
				 p->refstr, i + 1, p->layer_count,
				 p->layers[i].diff_id);
		pull_progress(p,
			      converted ? OCICACHE_PROGRESS_LAYER_DONE
					: OCICACHE_PROGRESS_LAYER_CACHED,
			      p->layers[i].blob->digest, i,
			      p->layers[i].blob->size);
	}
	registry_free(reg);
	return NULL;
}

/* Run the workers: the calling thread is one of them. A failure stops the
 * others from starting another layer; layers already under way finish. */
static int pull_layers(struct pull *p)
{
	pthread_t threads[PIPELINE_MAX_JOBS];
	size_t started = 0, wanted, i;
	int jobs = p->opts->jobs > 0 ? p->opts->jobs : PIPELINE_DEFAULT_JOBS;

	if (jobs > PIPELINE_MAX_JOBS)
		jobs = PIPELINE_MAX_JOBS;
	wanted = (size_t)jobs < p->layer_count ? (size_t)jobs : p->layer_count;
	for (i = 1; i < wanted; i++) {
		if (pthread_create(&threads[started], NULL, pull_worker, p))
			break;
		started++;
	}
	pull_worker(p);
	for (i = 0; i < started; i++)
		pthread_join(threads[i], NULL);

	if (p->failed)
		return oc_err(p->failed, "%s", p->failed_message);
	return 0;
}

static int write_fsmeta(struct pull *p, const char *path)
{
	struct fsmeta_layer *fl;
	char ***implied, *tmp = NULL;
	size_t *counts, i;
	int rc = 0;

	fl = calloc(p->layer_count + 1, sizeof(*fl));
	implied = calloc(p->layer_count + 1, sizeof(*implied));
	counts = calloc(p->layer_count + 1, sizeof(*counts));
	if (!fl || !implied || !counts) {
		rc = oc_err(OCICACHE_ENOMEM, "out of memory");
		goto out;
	}
	for (i = 0; !rc && i < p->layer_count; i++) {
		struct pull_layer *l = &p->layers[i];

		rc = store_implied_decode(&implied[i], &counts[i],
					  l->implied_text);
		fl[i].path = store_layer_path(&p->cache->store, l->diff_id);
		fl[i].tag = digest_hex(l->diff_id);
		fl[i].implied_dirs = (const char *const *)implied[i];
		fl[i].implied_count = counts[i];
		if (!rc && !fl[i].path)
			rc = oc_err(OCICACHE_ENOMEM, "out of memory");
	}
	if (!rc)
		rc = store_tmp_path(&tmp, &p->cache->store,
				    digest_hex(p->manifest_digest));
	if (!rc)
		rc = fsmeta_write(NULL, tmp, fl, p->layer_count,
				  p->manifest_digest);
	if (!rc)
		rc = store_commit(tmp, path);
	if (rc && tmp)
		unlink(tmp);
out:
	for (i = 0; fl && implied && counts && i < p->layer_count; i++) {
		free((char *)fl[i].path);
		store_implied_free(implied[i], counts[i]);
	}
	free(fl);
	free(implied);
	free(counts);
	free(tmp);
	return rc;
}

static int write_vmdk(struct pull *p, const char *path, int64_t fsmeta_size)
{
	struct vmdk_extent *ext;
	char *tmp = NULL;
	size_t i;
	int rc = 0;

	ext = calloc(p->layer_count + 1, sizeof(*ext));
	if (!ext)
		return oc_err(OCICACHE_ENOMEM, "out of memory");
	for (i = 0; !rc && i <= p->layer_count; i++) {
		const char *dir = i ? "layers" : "fsmeta";
		const char *digest =
		    i ? p->layers[i - 1].diff_id : p->manifest_digest;
		char *rel;

		if (asprintf(&rel, "../../%s/sha256/%s.erofs", dir,
			     digest_hex(digest)) < 0) {
			rc = oc_err(OCICACHE_ENOMEM, "out of memory");
			break;
		}
		ext[i].path = rel;
		ext[i].size_bytes =
		    (uint64_t)(i ? p->layers[i - 1].erofs_size : fsmeta_size);
	}
	if (!rc)
		rc = store_tmp_path(&tmp, &p->cache->store,
				    digest_hex(p->manifest_digest));
	if (!rc)
		rc = vmdk_write(tmp, ext, p->layer_count + 1,
				p->manifest_digest);
	if (!rc)
		rc = store_commit(tmp, path);
	if (rc && tmp)
		unlink(tmp);
	for (i = 0; i <= p->layer_count; i++)
		free((char *)ext[i].path);
	free(ext);
	free(tmp);
	return rc;
}

/* fsmeta and the VMDK, unless both are there; the caller holds the
 * manifest's lock. */
static int pull_write_disk(struct pull *p, int64_t *fsmeta_size,
			   int64_t *vmdk_size)
{
	const struct store *s = &p->cache->store;
	char *fsmeta = store_fsmeta_path(s, p->manifest_digest);
	char *vmdk = store_vmdk_path(s, p->manifest_digest);
	int rc = 0;

	if (!fsmeta || !vmdk) {
		rc = oc_err(OCICACHE_ENOMEM, "out of memory");
		goto out;
	}
	*fsmeta_size = store_file_size(fsmeta);
	if (*fsmeta_size < 0) {
		rc = write_fsmeta(p, fsmeta);
		if (rc) {
			oc_err_wrap(rc, "fsmeta for manifest %s",
				    p->manifest_digest);
			goto out;
		}
		*fsmeta_size = store_file_size(fsmeta);
	}
	*vmdk_size = store_file_size(vmdk);
	if (*vmdk_size < 0) {
		rc = write_vmdk(p, vmdk, *fsmeta_size);
		if (rc) {
			oc_err_wrap(rc, "VMDK for manifest %s",
				    p->manifest_digest);
			goto out;
		}
		*vmdk_size = store_file_size(vmdk);
	}
out:
	free(fsmeta);
	free(vmdk);
	return rc;
}

static int pull_record(struct pull *p, int64_t fsmeta_size, int64_t vmdk_size)
{
	struct db_image_record rec = {
	    .reference = p->refstr,
	    .manifest_digest = p->manifest_digest,
	    .index_digest = p->index_digest[0] ? p->index_digest : NULL,
	    .media_type = p->manifest_media_type,
	    .config_digest = p->manifest.config.digest,
	    .config_json = p->config_body.data,
	    .architecture = p->config.architecture,
	    .os = p->config.os,
	    .variant = p->config.variant,
	    .fsmeta_size = fsmeta_size,
	    .vmdk_size = vmdk_size,
	    .layer_count = p->layer_count,
	    .now_ms = cache_now_ms(),
	};
	struct db_layer *layers;
	size_t i;
	int rc;

	layers = calloc(p->layer_count + 1, sizeof(*layers));
	if (!layers)
		return oc_err(OCICACHE_ENOMEM, "out of memory");
	/* The rows only borrow the pull's strings. */
	for (i = 0; i < p->layer_count; i++) {
		const struct pull_layer *l = &p->layers[i];

		layers[i].diff_id = (char *)l->diff_id;
		layers[i].blob_digest = l->blob->digest;
		layers[i].media_type = l->blob->media_type;
		layers[i].compressed_size = l->blob->size;
		layers[i].erofs_size = l->erofs_size;
		layers[i].position = (uint32_t)i;
		layers[i].implied_dirs = l->implied_text;
	}
	rec.layers = layers;
	rc = db_record_image(p->cache->db, &rec);
	free(layers);
	return rc;
}

/* Everything after the layers: under the manifest's lock, the disk files
 * and then the one transaction that records the image. */
static int pull_finish(struct pull *p)
{
	int64_t fsmeta_size = -1, vmdk_size = -1;
	int fd, rc;

	rc = store_lock(&fd, &p->cache->store, STORE_LOCK_MANIFEST,
			p->manifest_digest, STORE_LOCK_EXCLUSIVE);
	if (rc)
		return rc;
	rc = pull_write_disk(p, &fsmeta_size, &vmdk_size);
	if (!rc)
		rc = pull_record(p, fsmeta_size, vmdk_size);
	store_unlock(fd);
	return rc;
}

static int pull_prepare_layers(struct pull *p)
{
	size_t i;

	p->layer_count = p->manifest.layer_count;
	p->layers = calloc(p->layer_count + 1, sizeof(*p->layers));
	if (!p->layers)
		return oc_err(OCICACHE_ENOMEM, "out of memory");
	for (i = 0; i < p->layer_count; i++) {
		p->layers[i].blob = &p->manifest.layers[i];
		p->layers[i].diff_id = p->config.diff_ids[i];
		p->layers[i].erofs_size = -1;
		p->layers[i].lock_fd = -1;
	}
	return 0;
}

static int pull_run(ocicache_image **out, struct pull *p)
{
	int rc;

	rc = registry_new(&p->registry, reference_api_host(&p->ref),
			  p->ref.repository, &p->registry_opts);
	if (!rc)
		rc = pull_resolve(p);
	if (!rc)
		rc = pull_prepare_layers(p);
	if (rc)
		return rc;
	oc_info("pull %s: manifest %s, %zu layers", p->refstr,
		p->manifest_digest, p->layer_count);
	pull_progress(p, OCICACHE_PROGRESS_RESOLVED, p->manifest_digest, 0, -1);

	rc = pull_layers(p);
	if (!rc)
		rc = pull_finish(p);
	if (rc)
		return rc;
	oc_info("pull %s: recorded manifest %s", p->refstr, p->manifest_digest);
	pull_progress(p, OCICACHE_PROGRESS_DONE, p->manifest_digest,
		      p->layer_count, -1);
	if (out)
		rc = cache_image_load(out, p->cache, p->refstr);
	return rc;
}

static void pull_free(struct pull *p)
{
	size_t i;

	for (i = 0; p->layers && i < p->layer_count; i++) {
		store_unlock(p->layers[i].lock_fd);
		free(p->layers[i].implied_text);
	}
	free(p->layers);
	image_config_free(&p->config);
	buf_free(&p->config_body);
	manifest_free(&p->manifest);
	free(p->manifest_media_type);
	registry_free(p->registry);
	free(p->refstr);
	reference_free(&p->ref);
	pthread_mutex_destroy(&p->lock);
}

int pipeline_pull(ocicache_image **out, struct ocicache *cache,
		  const char *reference,
		  const struct ocicache_pull_options *opts)
{
	struct ocicache_pull_options defaults;
	struct pull p;
	int work_fd = -1, rc;

	if (out)
		*out = NULL;
	if (!opts) {
		ocicache_pull_options_init(&defaults);
		opts = &defaults;
	}
	memset(&p, 0, sizeof(p));
	pthread_mutex_init(&p.lock, NULL);
	p.cache = cache;
	p.opts = opts;
	registry_options_init(&p.registry_opts);
	p.registry_opts.plain_http = opts->plain_http != 0;
	p.registry_opts.retries = PULL_RETRIES;

	rc = reference_parse(&p.ref, reference);
	if (rc) {
		pthread_mutex_destroy(&p.lock);
		return rc;
	}
	p.refstr = reference_string(&p.ref);
	if (!p.refstr)
		rc = oc_err(OCICACHE_ENOMEM, "out of memory");
	/* Held shared until the image is recorded: prune leaves tmp/ and
	 * unrecorded files alone meanwhile. */
	if (!rc)
		rc = store_lock(&work_fd, &cache->store, STORE_LOCK_WORK, NULL,
				STORE_LOCK_SHARED);
	if (!rc)
		rc = pull_run(out, &p);
	store_unlock(work_fd);
	if (rc)
		oc_err_wrap(rc, "pull %s", p.refstr ? p.refstr : reference);
	pull_free(&p);
	return rc;
}
