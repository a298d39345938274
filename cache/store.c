#include "cache/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/digest.h"
#include "common/error.h"
#include "common/file.h"

static const char *const store_dirs[] = {
    "layers/sha256", "fsmeta/sha256", "vmdk/sha256", "tmp", "locks",
};

int store_open(struct store *s, const char *root)
{
	char real[PATH_MAX];
	char *dir;
	size_t i;
	int rc;

	s->root = NULL;
	rc = file_mkdirs(root, 0755);
	if (rc)
		return oc_err_wrap(rc, "cache root %s", root);
	if (!realpath(root, real))
		return oc_err_errno("cache root %s", root);

	for (i = 0; i < sizeof(store_dirs) / sizeof(store_dirs[0]); i++) {
		if (asprintf(&dir, "%s/%s", real, store_dirs[i]) < 0)
			return oc_err(OCICACHE_ENOMEM, "out of memory");
		rc = file_mkdirs(dir, 0755);
		free(dir);
		if (rc)
			return rc;
	}

	s->root = strdup(real);
	if (!s->root)
		return oc_err(OCICACHE_ENOMEM, "out of memory");
	return 0;
}

void store_close(struct store *s)
{
	free(s->root);
	s->root = NULL;
}

static char *store_path(const struct store *s, const char *dir,
			const char *digest, const char *suffix)
{
	char *path;

	if (asprintf(&path, "%s/%s/%s%s", s->root, dir, digest_hex(digest),
		     suffix) < 0)
		return NULL;
	return path;
}

char *store_layer_path(const struct store *s, const char *diff_id)
{
	return store_path(s, "layers/sha256", diff_id, ".erofs");
}

char *store_implied_path(const struct store *s, const char *diff_id)
{
	return store_path(s, "layers/sha256", diff_id, ".implied");
}

char *store_fsmeta_path(const struct store *s, const char *manifest_digest)
{
	return store_path(s, "fsmeta/sha256", manifest_digest, ".erofs");
}

char *store_vmdk_path(const struct store *s, const char *manifest_digest)
{
	return store_path(s, "vmdk/sha256", manifest_digest, ".vmdk");
}

char *store_part_path(const struct store *s, const char *blob_digest)
{
	return store_path(s, "tmp", blob_digest, ".part");
}

char *store_db_path(const struct store *s)
{
	char *path;

	if (asprintf(&path, "%s/cache.db", s->root) < 0)
		return NULL;
	return path;
}

int store_tmp_path(char **out, const struct store *s, const char *stem)
{
	static unsigned long counter;
	unsigned long n = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);

	if (asprintf(out, "%s/tmp/%s.%ld.%ld.%lu.tmp", s->root, stem,
		     (long)getpid(), (long)syscall(SYS_gettid), n) < 0) {
		*out = NULL;
		return oc_err(OCICACHE_ENOMEM, "out of memory");
	}
	return 0;
}

static int fsync_path(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return oc_err_errno("open %s", path);
	if (fsync(fd) < 0)
		rc = oc_err_errno("fsync %s", path);
	close(fd);
	return rc;
}

int store_commit(const char *tmp_path, const char *path)
{
	char *dir, *slash;
	int rc;

	rc = fsync_path(tmp_path, O_RDONLY);
	if (rc)
		return rc;
	if (rename(tmp_path, path) < 0)
		return oc_err_errno("rename %s to %s", tmp_path, path);

	slash = strrchr(path, '/');
	if (!slash)
		dir = strdup(".");
	else
		dir = strndup(path, slash == path ? 1 : (size_t)(slash - path));
	if (!dir)
		return oc_err(OCICACHE_ENOMEM, "out of memory");
	rc = fsync_path(dir, O_RDONLY | O_DIRECTORY);
	free(dir);
	return rc;
}

int64_t store_file_size(const char *path)
{
	struct stat st;

	if (!path || stat(path, &st) < 0 || !S_ISREG(st.st_mode))
		return -1;
	return (int64_t)st.st_size;
}

bool store_layer_present(const struct store *s, const char *diff_id,
			 int64_t *size_out)
{
	char *layer = store_layer_path(s, diff_id);
	char *implied = store_implied_path(s, diff_id);
	int64_t size = store_file_size(layer);
	bool present = size >= 0 && store_file_size(implied) >= 0;

	if (size_out)
		*size_out = size;
	free(layer);
	free(implied);
	return present;
}

int store_implied_encode(char **out, char *const *dirs, size_t count)
{
	struct buf b = BUF_INIT;
	size_t i;
	int rc = buf_puts(&b, "");

	for (i = 0; !rc && i < count; i++) {
		const char *p;

		for (p = dirs[i]; !rc && *p; p++) {
			if (*p == '\\')
				rc = buf_puts(&b, "\\\\");
			else if (*p == '\n')
				rc = buf_puts(&b, "\\n");
			else
				rc = buf_append(&b, p, 1);
		}
		if (!rc)
			rc = buf_puts(&b, "\n");
	}
	if (rc) {
		buf_free(&b);
		return rc;
	}
	*out = buf_detach(&b);
	return 0;
}

void store_implied_free(char **dirs, size_t count)
{
	size_t i;

	if (!dirs)
		return;
	for (i = 0; i < count; i++)
		free(dirs[i]);
	free(dirs);
}

static int implied_decode_line(char **out, const char *line, size_t len)
{
	char *path = malloc(len + 1);
	size_t i, n = 0;

	if (!path)
		return oc_err(OCICACHE_ENOMEM, "out of memory");
	for (i = 0; i < len; i++) {
		if (line[i] == '\\' && i + 1 < len) {
			i++;
			path[n++] = line[i] == 'n' ? '\n' : line[i];
		} else {
			path[n++] = line[i];
		}
	}
	path[n] = '\0';
	*out = path;
	return 0;
}

int store_implied_decode(char ***out, size_t *count_out, const char *text)
{
	char **dirs = NULL;
	size_t count = 0, lines = 0;
	const char *p;
	int rc = 0;

	for (p = text; *p; p++)
		lines += *p == '\n';
	dirs = calloc(lines + 1, sizeof(*dirs));
	if (!dirs)
		return oc_err(OCICACHE_ENOMEM, "out of memory");

	for (p = text; *p && count < lines;) {
		const char *end = strchr(p, '\n');

		rc = implied_decode_line(&dirs[count], p, (size_t)(end - p));
		if (rc)
			break;
		count++;
		p = end + 1;
	}
	if (rc) {
		store_implied_free(dirs, count);
		return rc;
	}
	*out = dirs;
	*count_out = count;
	return 0;
}

int store_write_implied(const struct store *s, const char *diff_id,
			const char *text)
{
	char *tmp = NULL, *path = NULL;
	int fd = -1, rc;

	rc = store_tmp_path(&tmp, s, digest_hex(diff_id));
	if (rc)
		return rc;
	path = store_implied_path(s, diff_id);
	if (!path) {
		rc = oc_err(OCICACHE_ENOMEM, "out of memory");
		goto out;
	}

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = oc_err_errno("create %s", tmp);
		goto out;
	}
	rc = file_write_all(fd, text, strlen(text), tmp);
	close(fd);
	if (!rc)
		rc = store_commit(tmp, path);
	if (rc)
		unlink(tmp);
out:
	free(path);
	free(tmp);
	return rc;
}

int store_read_implied(char **out, const struct store *s, const char *diff_id)
{
	struct buf b = BUF_INIT;
	char *path = store_implied_path(s, diff_id);
	int rc;

	if (!path)
		return oc_err(OCICACHE_ENOMEM, "out of memory");
	rc = buf_puts(&b, "");
	if (!rc)
		rc = file_read_all(&b, path, 64u << 20);
	if (rc) {
		oc_err_wrap(rc, "layer %s: implied directory list", diff_id);
		buf_free(&b);
	} else {
		*out = buf_detach(&b);
	}
	free(path);
	return rc;
}

static int lock_apply(int fd, enum store_lock_mode mode, const char *digest)
{
	int op = mode == STORE_LOCK_SHARED	? LOCK_SH
		 : mode == STORE_LOCK_EXCLUSIVE ? LOCK_EX
						: LOCK_EX | LOCK_NB;

	while (flock(fd, op) < 0) {
		if (errno == EINTR)
			continue;
		if (errno == EWOULDBLOCK && mode == STORE_LOCK_TRY)
			return 1;
		return oc_err_errno("lock for %s", digest);
	}
	return 0;
}

int store_lock(int *fd_out, const struct store *s, enum store_lock_kind kind,
	       const char *digest, enum store_lock_mode mode)
{
	char *path;
	int fd, rc;

	*fd_out = -1;
	if (kind == STORE_LOCK_WORK)
		rc = asprintf(&path, "%s/locks/work.lock", s->root);
	else
		rc = asprintf(&path, "%s/locks/%s-%s.lock", s->root,
			      kind == STORE_LOCK_LAYER ? "layer" : "manifest",
			      digest_hex(digest));
	if (rc < 0)
		return oc_err(OCICACHE_ENOMEM, "out of memory");
	if (!digest)
		digest = "work";
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = oc_err_errno("open lock %s", path);
		free(path);
		return rc;
	}
	free(path);

	rc = lock_apply(fd, mode, digest);
	if (rc) {
		close(fd);
		return rc;
	}
	*fd_out = fd;
	return 0;
}

int store_relock(int fd, enum store_lock_mode mode, const char *digest)
{
	return lock_apply(fd, mode, digest);
}

void store_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}

int store_remove(const char *path, int64_t *bytes, bool *removed)
{
	int64_t size = store_file_size(path);

	if (removed)
		*removed = false;
	if (unlink(path) < 0) {
		if (errno == ENOENT)
			return 0;
		return oc_err_errno("remove %s", path);
	}
	if (size > 0 && bytes)
		*bytes += size;
	if (removed)
		*removed = true;
	return 0;
}

void store_scan_free(struct store_entry *entries, size_t count)
{
	size_t i;

	if (!entries)
		return;
	for (i = 0; i < count; i++) {
		free(entries[i].path);
		free(entries[i].name);
	}
	free(entries);
}

static int64_t age_ms(const struct stat *st)
{
	struct timespec now;
	int64_t then, ms;

	clock_gettime(CLOCK_REALTIME, &now);
	then =
	    (int64_t)st->st_mtim.tv_sec * 1000 + st->st_mtim.tv_nsec / 1000000;
	ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
	return ms > then ? ms - then : 0;
}

static int scan_add(struct store_entry **entries, size_t *count, size_t *cap,
		    const char *dirpath, const char *name)
{
	struct store_entry *e;
	struct stat st;
	char *path;

	if (asprintf(&path, "%s/%s", dirpath, name) < 0)
		return oc_err(OCICACHE_ENOMEM, "out of memory");
	if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode)) {
		free(path);
		return 0;
	}
	if (*count == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;
		struct store_entry *n = realloc(*entries, ncap * sizeof(*n));

		if (!n) {
			free(path);
			return oc_err(OCICACHE_ENOMEM, "out of memory");
		}
		*entries = n;
		*cap = ncap;
	}
	e = &(*entries)[*count];
	e->path = path;
	e->name = strdup(name);
	e->size = (int64_t)st.st_size;
	e->age_ms = age_ms(&st);
	if (!e->name) {
		free(path);
		return oc_err(OCICACHE_ENOMEM, "out of memory");
	}
	(*count)++;
	return 0;
}

int store_scan(struct store_entry **out, size_t *count_out,
	       const struct store *s, const char *dir)
{
	struct store_entry *entries = NULL;
	size_t count = 0, cap = 0;
	struct dirent *de;
	char *dirpath;
	DIR *d;
	int rc = 0;

	if (asprintf(&dirpath, "%s/%s", s->root, dir) < 0)
		return oc_err(OCICACHE_ENOMEM, "out of memory");
	d = opendir(dirpath);
	if (!d) {
		rc = oc_err_errno("open folder %s", dirpath);
		free(dirpath);
		return rc;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		rc = scan_add(&entries, &count, &cap, dirpath, de->d_name);
		if (rc)
			break;
	}
	closedir(d);
	free(dirpath);
	if (rc) {
		store_scan_free(entries, count);
		return rc;
	}
	*out = entries;
	*count_out = count;
	return 0;
}
