/*
 * The files of the cache: where each one lives, how it is written (under
 * tmp/, fsynced, renamed into place) and the lock files that make work on
 * one layer or manifest happen once across threads and processes.
 *
 *   ROOT/layers/sha256/<diff hex>.erofs     a layer image
 *   ROOT/layers/sha256/<diff hex>.implied   its implied directories
 *   ROOT/fsmeta/sha256/<manifest hex>.erofs
 *   ROOT/vmdk/sha256/<manifest hex>.vmdk
 *   ROOT/tmp/                              work in progress, *.part downloads
 *   ROOT/locks/layer-<hex>.lock, manifest-<hex>.lock
 *
 * The .implied file is renamed into place before its .erofs, so a layer
 * image that exists always has its list.
 */
#ifndef OCICACHE_CACHE_STORE_H
#define OCICACHE_CACHE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store {
	char *root; /* absolute, no trailing slash */
};

/* Make the folders under `root` (created if needed) and remember its
 * absolute path. Free with store_close(). */
int store_open(struct store *s, const char *root);
void store_close(struct store *s);

/* Paths, malloc'ed (NULL when out of memory); `digest` must be valid. */
char *store_layer_path(const struct store *s, const char *diff_id);
char *store_implied_path(const struct store *s, const char *diff_id);
char *store_fsmeta_path(const struct store *s, const char *manifest_digest);
char *store_vmdk_path(const struct store *s, const char *manifest_digest);
char *store_part_path(const struct store *s, const char *blob_digest);
char *store_db_path(const struct store *s);

/* A new unique path under tmp/ ("<stem>.<pid>.<tid>.<n>.tmp"); the file
 * is not created. */
int store_tmp_path(char **out, const struct store *s, const char *stem);

/* fsync `tmp_path`, rename it to `path` and fsync the folder. */
int store_commit(const char *tmp_path, const char *path);

/* The size of `path`, or -1 when it does not exist (or cannot be seen). */
int64_t store_file_size(const char *path);

/* Whether the layer image and its implied list both exist; `size_out`
 * (may be NULL) receives the image's size. */
bool store_layer_present(const struct store *s, const char *diff_id,
			 int64_t *size_out);

/*
 * The implied-directory list, one path per line; a backslash and a newline
 * inside a path are written as "\\" and "\n". store_implied_encode builds
 * the text (malloc'ed), store_implied_decode splits it back.
 */
int store_implied_encode(char **out, char *const *dirs, size_t count);
int store_implied_decode(char ***out, size_t *count_out, const char *text);
void store_implied_free(char **dirs, size_t count);

/* Write the layer's .implied file (atomically). */
int store_write_implied(const struct store *s, const char *diff_id,
			const char *text);

/* Read it back as text (malloc'ed). */
int store_read_implied(char **out, const struct store *s, const char *diff_id);

/*
 * LAYER and MANIFEST locks are per digest. WORK is one lock for the whole
 * cache: every pull holds it shared from start to end, and prune sweeps
 * files the index does not know (tmp/ and strays) only when it can take
 * it exclusively, so that it never takes a file a pull is writing or has
 * not recorded yet, whatever the grace period.
 */
enum store_lock_kind { STORE_LOCK_LAYER, STORE_LOCK_MANIFEST, STORE_LOCK_WORK };

enum store_lock_mode {
	STORE_LOCK_SHARED,    /* blocking */
	STORE_LOCK_EXCLUSIVE, /* blocking */
	STORE_LOCK_TRY	      /* exclusive, or 1 at once when held */
};

/*
 * Open the lock file for `digest` (ignored for STORE_LOCK_WORK, NULL there)
 * into `*fd_out` and lock it. Returns 0,
 * 1 when STORE_LOCK_TRY found it held (no fd then), or a negative code.
 * Lock files are never unlinked.
 */
int store_lock(int *fd_out, const struct store *s, enum store_lock_kind kind,
	       const char *digest, enum store_lock_mode mode);

/* Change the mode of a lock already held (not atomic: recheck after). */
int store_relock(int fd, enum store_lock_mode mode, const char *digest);
void store_unlock(int fd);

/*
 * Unlink `path`, adding its size (from stat, just before) to `*bytes`.
 * A missing file is not an error; `*removed` (may be NULL) says whether
 * a file went.
 */
int store_remove(const char *path, int64_t *bytes, bool *removed);

/* A file found by store_scan: its name in the folder and its age. */
struct store_entry {
	char *path;
	char *name;
	int64_t size;
	int64_t age_ms;
};

/* The regular files in the folder `dir` (relative to the root:
 * "layers/sha256", "tmp", ...). Free with store_scan_free(). */
int store_scan(struct store_entry **out, size_t *count_out,
	       const struct store *s, const char *dir);
void store_scan_free(struct store_entry *entries, size_t count);

#endif
