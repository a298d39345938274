#include "convert/layer.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "convert/erofs_fs.h"
#include "convert/erofs_writer.h"
#include "convert/readahead.h"
#include "convert/tar_check.h"

#define LAYER_DEFAULT_MAX_BYTES	  (64ull << 30)
#define LAYER_DEFAULT_MAX_ENTRIES 1000000ull
#define LAYER_PATH_MAX		  4096
#define LAYER_SYMLINK_MAX	  4095
#define LAYER_DEPTH_MAX		  1024

/* A hard link that came before its target. */
struct pending_link {
	char *path;
	char *target;
	uint64_t target_hash; /* path_hash(target): most entries stop there */
	struct erofs_node *placeholder;
};

/* Hard links waiting for a target, at most: past it the tar is refused.
 * Every entry is looked up among the waiting links, so the cap bounds
 * that work (a million entries against 1024 hashes) on a hostile tar. */
#define LAYER_PENDING_LINKS_MAX 1024

struct layer_ctx {
	const char *name;
	struct decompress *dec;
	struct readahead *ahead;
	struct tar_check check;
	struct digest_ctx digest;
	bool digest_live;
	uint64_t total; /* uncompressed bytes read so far */
	uint64_t max_bytes;
	uint64_t max_entries;
	uint64_t entries;
	int read_err; /* a failure inside the read callback, with its message */
	struct erofs_writer *w;
	struct pending_link *pending;
	size_t pending_count;
	char entry[LAYER_PATH_MAX + 1]; /* the entry being read, as named */
};

/* Every uncompressed byte passes through here on its way to libarchive,
 * so the diff_id covers exactly what was parsed. `*data` stays valid until
 * the next call. */
static int layer_pull(struct layer_ctx *c, const void **data, ssize_t *got)
{
	ssize_t n = readahead_next(c->ahead, data);

	*got = 0;
	if (n < 0)
		return (int)n;
	c->total += (uint64_t)n;
	if (c->total > c->max_bytes)
		return oc_err(OCICACHE_EFORMAT,
			      "%s: more than %llu uncompressed bytes", c->name,
			      (unsigned long long)c->max_bytes);
	digest_update(&c->digest, *data, (size_t)n);
	*got = n;
	return tar_check_feed(&c->check, *data, (size_t)n, c->name);
}

static la_ssize_t tar_read_cb(struct archive *a, void *opaque, const void **buf)
{
	struct layer_ctx *c = opaque;
	ssize_t n;
	int err;

	err = layer_pull(c, buf, &n);
	if (err) {
		c->read_err = err;
		archive_set_error(a, EIO, "%s", oc_err_message());
		return -1;
	}
	return n;
}

/* What follows the tar's end (a missing trailer's worth of nothing, or
 * padding) is part of the layer's bytes too. */
static int layer_drain(struct layer_ctx *c)
{
	for (;;) {
		const void *data;
		ssize_t n;
		int err = layer_pull(c, &data, &n);

		if (err)
			return err;
		if (n == 0)
			return 0;
	}
}

/* Where in the tar a failure happened, for messages: "entry X" while an
 * entry is read, "after entry X" between entries. */
static const char *entry_where(const struct layer_ctx *c, bool inside,
			       char *buf, size_t len)
{
	if (!c->entries)
		return "at the first entry";
	snprintf(buf, len, "%s entry %s", inside ? "in" : "after", c->entry);
	return buf;
}

/* `msg` restated with the layer named once and the entry it happened at. */
static int stream_error(struct layer_ctx *c, int code, const char *msg,
			bool inside)
{
	char where[LAYER_PATH_MAX + 32];
	char *copy;
	size_t nlen = strlen(c->name);

	if (!msg)
		msg = "unreadable";
	if (strncmp(msg, c->name, nlen) == 0 && msg[nlen] == ':')
		msg += nlen + 1 + (msg[nlen + 1] == ' ');
	copy = strdup(msg);
	code = oc_err(code, "%s: tar, %s: %s", c->name,
		      entry_where(c, inside, where, sizeof(where)),
		      copy ? copy : "unreadable");
	free(copy);
	return code;
}

/* A failure of the tar reader, or of the stream below it. */
static int tar_error(struct layer_ctx *c, struct archive *a, bool inside)
{
	if (c->read_err)
		return stream_error(c, c->read_err, oc_err_message(), inside);
	return stream_error(c, OCICACHE_EFORMAT, archive_error_string(a),
			    inside);
}

/*
 * A tar path as the image names it: no leading "/" or "./", no "." or
 * empty components, no trailing "/"; "" is the root. ".." anywhere, a
 * name over 255 bytes or a path over 4096 bytes is refused.
 */
static int path_normalize(char out[LAYER_PATH_MAX + 1], const char *raw,
			  const struct layer_ctx *c)
{
	const char *p = raw;
	size_t len = 0, depth = 0;

	while (*p) {
		const char *start;
		size_t clen;

		while (*p == '/')
			p++;
		start = p;
		while (*p && *p != '/')
			p++;
		clen = (size_t)(p - start);
		if (clen == 0 || (clen == 1 && start[0] == '.'))
			continue;
		if (clen == 2 && start[0] == '.' && start[1] == '.')
			return oc_err(OCICACHE_EFORMAT,
				      "%s: entry %s: path has a '..' component",
				      c->name, raw);
		if (clen > EROFS_NAME_LEN)
			return oc_err(OCICACHE_EFORMAT,
				      "%s: entry %s: a name is longer than %d "
				      "bytes",
				      c->name, raw, EROFS_NAME_LEN);
		if (len + (len ? 1 : 0) + clen > LAYER_PATH_MAX)
			return oc_err(OCICACHE_EFORMAT,
				      "%s: entry %.200s...: path is longer "
				      "than %d bytes",
				      c->name, raw, LAYER_PATH_MAX);
		if (++depth > LAYER_DEPTH_MAX)
			return oc_err(OCICACHE_EFORMAT,
				      "%s: entry %.200s...: path is more than "
				      "%d levels deep",
				      c->name, raw, LAYER_DEPTH_MAX);
		if (len)
			out[len++] = '/';
		memcpy(out + len, start, clen);
		len += clen;
	}
	out[len] = '\0';
	return 0;
}

static int entry_attr(struct erofs_node_attr *attr, struct layer_ctx *c,
		      struct archive_entry *e, const char *path)
{
	la_int64_t uid = archive_entry_uid(e);
	la_int64_t gid = archive_entry_gid(e);

	memset(attr, 0, sizeof(*attr));
	if (uid < 0 || uid > UINT32_MAX || gid < 0 || gid > UINT32_MAX)
		return oc_err(OCICACHE_EFORMAT,
			      "%s: entry %s: owner %lld:%lld out of range",
			      c->name, path, (long long)uid, (long long)gid);
	attr->mode = archive_entry_mode(e) & 07777;
	attr->uid = (uint32_t)uid;
	attr->gid = (uint32_t)gid;
	if (archive_entry_mtime_is_set(e)) {
		long nsec = archive_entry_mtime_nsec(e);

		attr->mtime = archive_entry_mtime(e);
		attr->mtime_nsec =
		    nsec >= 0 && nsec < 1000000000 ? (uint32_t)nsec : 0;
	}
	if (attr->mtime < 0) {
		oc_warn("%s: entry %s: mtime %lld is before 1970, which EROFS "
			"cannot store; 1970-01-01 kept instead",
			c->name, path, (long long)attr->mtime);
		attr->mtime = 0;
		attr->mtime_nsec = 0;
	}
	return 0;
}

struct xattr_prefix {
	const char *prefix;
	uint8_t index;
	bool whole_name; /* the prefix is the entire name */
};

static const struct xattr_prefix xattr_prefixes[] = {
    {"user.", EROFS_XATTR_INDEX_USER, false},
    {"trusted.", EROFS_XATTR_INDEX_TRUSTED, false},
    {"security.", EROFS_XATTR_INDEX_SECURITY, false},
    {"system.posix_acl_access", EROFS_XATTR_INDEX_POSIX_ACL_ACCESS, true},
    {"system.posix_acl_default", EROFS_XATTR_INDEX_POSIX_ACL_DEFAULT, true},
};

static const struct xattr_prefix *xattr_classify(const char *name,
						 const char **suffix)
{
	for (size_t i = 0;
	     i < sizeof(xattr_prefixes) / sizeof(xattr_prefixes[0]); i++) {
		const struct xattr_prefix *x = &xattr_prefixes[i];
		size_t len = strlen(x->prefix);

		if (x->whole_name
			? strcmp(name, x->prefix) != 0
			: strncmp(name, x->prefix, len) != 0 || !name[len])
			continue;
		*suffix = name + len;
		return x;
	}
	return NULL;
}

/*
 * The entry's xattrs (libarchive gathers SCHILY.xattr.* and
 * LIBARCHIVE.xattr.* records). EROFS stores a name as a prefix index plus
 * a suffix and has no index for other prefixes, so those are dropped with
 * a warning naming the entry.
 */
static int entry_xattrs(struct layer_ctx *c, struct archive_entry *e,
			struct erofs_node *node, const char *path)
{
	const char *name;
	const void *value;
	size_t size;

	archive_entry_xattr_reset(e);
	while (archive_entry_xattr_next(e, &name, &value, &size) ==
	       ARCHIVE_OK) {
		const struct xattr_prefix *x;
		const char *suffix;
		int err;

		x = xattr_classify(name, &suffix);
		if (!x) {
			oc_warn("%s: entry %s: xattr %s dropped: EROFS has no "
				"name index for it",
				c->name, path, name);
			continue;
		}
		if (strlen(suffix) > EROFS_NAME_LEN || size > UINT16_MAX) {
			oc_warn("%s: entry %s: xattr %s dropped: name or value "
				"too long",
				c->name, path, name);
			continue;
		}
		err = erofs_writer_set_xattr(c->w, node, x->index, suffix,
					     value, size);
		if (err)
			return err;
	}
	return 0;
}

static int copy_file_data(struct layer_ctx *c, struct archive *a,
			  struct erofs_node *node, uint64_t size)
{
	uint64_t pos = 0;
	int err;

	err = erofs_writer_data_begin(c->w, node);
	while (!err) {
		const void *data;
		size_t len;
		la_int64_t off;
		int r = archive_read_data_block(a, &data, &len, &off);

		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN)
			return tar_error(c, a, true);
		if (off < 0 || (uint64_t)off < pos)
			return oc_err(OCICACHE_EFORMAT,
				      "data blocks out of order");
		/* A sparse file's holes come back as gaps between blocks. */
		if ((uint64_t)off > pos)
			err =
			    erofs_writer_data_zeros(c->w, (uint64_t)off - pos);
		if (!err)
			err = erofs_writer_data_append(c->w, data, len);
		pos = (uint64_t)off + len;
	}
	if (!err && pos < size)
		err = erofs_writer_data_zeros(c->w, size - pos);
	if (!err)
		err = erofs_writer_data_end(c->w);
	return err;
}

static int add_regular(struct layer_ctx *c, struct archive *a,
		       struct archive_entry *e, const char *path,
		       struct erofs_node_attr *attr)
{
	la_int64_t size = archive_entry_size(e);
	struct erofs_node *node;
	int err;

	if (size < 0)
		return oc_err(OCICACHE_EFORMAT, "%s: entry %s: negative size",
			      c->name, path);
	attr->mode |= S_IFREG;
	attr->size = (uint64_t)size;
	err = erofs_writer_add(&node, c->w, path, attr);
	if (!err)
		err = entry_xattrs(c, e, node, path);
	if (err)
		return err;
	err = copy_file_data(c, a, node, attr->size);
	if (err && !strstr(oc_err_message(), c->entry))
		return oc_err_wrap(err, "%s: entry %s", c->name, path);
	return err;
}

static int add_special(struct layer_ctx *c, struct archive_entry *e,
		       const char *path, struct erofs_node_attr *attr,
		       uint32_t type)
{
	struct erofs_node *node;
	int err;

	attr->mode |= type;
	if (type == S_IFLNK) {
		const char *target = archive_entry_symlink(e);

		if (!target || !target[0] || strlen(target) > LAYER_SYMLINK_MAX)
			return oc_err(OCICACHE_EFORMAT,
				      "%s: entry %s: symlink target empty or "
				      "longer than %d bytes",
				      c->name, path, LAYER_SYMLINK_MAX);
		attr->symlink = target;
	}
	if (type == S_IFCHR || type == S_IFBLK) {
		unsigned long major = archive_entry_rdevmajor(e);
		unsigned long minor = archive_entry_rdevminor(e);

		if (major > 0xfff || minor > 0xfffff)
			return oc_err(OCICACHE_EFORMAT,
				      "%s: entry %s: device %lu:%lu out of "
				      "range",
				      c->name, path, major, minor);
		attr->rdev = erofs_encode_dev((uint32_t)major, (uint32_t)minor);
	}
	err = erofs_writer_add(&node, c->w, path, attr);
	if (!err)
		err = entry_xattrs(c, e, node, path);
	return err;
}

/*
 * Overlay whiteouts: `.wh..wh..opq` makes its directory opaque, `.wh.NAME`
 * becomes the 0/0 character device NAME. Other `.wh..wh.` names are aufs
 * bookkeeping that no runtime extracts; they are skipped.
 */
static int add_whiteout(struct layer_ctx *c, char *path, char *base,
			struct erofs_node_attr *attr)
{
	const char *name = base + 4;

	if (strcmp(name, ".wh..opq") == 0) {
		if (base > path)
			base[-1] = '\0';
		else
			base[0] = '\0';
		return erofs_writer_set_opaque(c->w, path, attr->mtime,
					       attr->mtime_nsec);
	}
	if (strncmp(name, ".wh.", 4) == 0) {
		oc_warn("%s: entry %s: aufs metadata skipped", c->name, path);
		return 0;
	}
	if (!name[0] || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return oc_err(OCICACHE_EFORMAT,
			      "%s: entry %s: whiteout without a valid name",
			      c->name, path);
	memmove(base, name, strlen(name) + 1);
	return erofs_writer_whiteout(c->w, path, attr);
}

/* FNV-1a: cheap, and only a filter before strcmp. */
static uint64_t path_hash(const char *path)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *path; path++)
		h = (h ^ (uint8_t)*path) * 0x100000001b3ull;
	return h;
}

/* A hard link to a name not seen yet: hold the name with a placeholder
 * and remember the link until its target arrives. */
static int defer_hardlink(struct layer_ctx *c, const char *path,
			  const char *target,
			  const struct erofs_node_attr *attr)
{
	struct pending_link *grown, *pl;
	int err;

	if (c->pending_count == LAYER_PENDING_LINKS_MAX)
		return oc_err(OCICACHE_EFORMAT,
			      "%s: entry %s: more than %d hard links waiting "
			      "for their targets",
			      c->name, path, LAYER_PENDING_LINKS_MAX);
	grown = realloc(c->pending, (c->pending_count + 1) * sizeof(*grown));
	if (!grown)
		return oc_err(OCICACHE_ENOMEM, "%s: hard links", c->name);
	c->pending = grown;
	pl = &c->pending[c->pending_count];
	pl->path = strdup(path);
	pl->target = strdup(target);
	pl->target_hash = path_hash(target);
	if (!pl->path || !pl->target) {
		free(pl->path);
		free(pl->target);
		return oc_err(OCICACHE_ENOMEM, "%s: hard links", c->name);
	}
	err = erofs_writer_link_placeholder(&pl->placeholder, c->w, path, attr);
	if (err) {
		free(pl->path);
		free(pl->target);
		return err;
	}
	c->pending_count++;
	return 0;
}

/* The entry at `path` has just been added: point the links waiting for it
 * at it. */
static int resolve_pending_links(struct layer_ctx *c, const char *path)
{
	uint64_t hash = path_hash(path);
	size_t i = 0;

	while (i < c->pending_count) {
		struct pending_link *pl = &c->pending[i];
		int err;

		if (pl->target_hash != hash || strcmp(pl->target, path) != 0) {
			i++;
			continue;
		}
		err = erofs_writer_link_resolve(c->w, pl->path, pl->placeholder,
						pl->target);
		if (err)
			return err;
		free(pl->path);
		free(pl->target);
		*pl = c->pending[--c->pending_count];
	}
	return 0;
}

static void pending_links_free(struct layer_ctx *c)
{
	for (size_t i = 0; i < c->pending_count; i++) {
		free(c->pending[i].path);
		free(c->pending[i].target);
	}
	free(c->pending);
	c->pending = NULL;
	c->pending_count = 0;
}

static int add_hardlink(struct layer_ctx *c, const char *path,
			const char *raw_target,
			const struct erofs_node_attr *attr)
{
	char target[LAYER_PATH_MAX + 1];
	int err = path_normalize(target, raw_target, c);

	if (err)
		return err;
	if (strcmp(target, path) == 0)
		return 0;
	if (target[0] && !erofs_writer_has(c->w, target))
		return defer_hardlink(c, path, target, attr);
	return erofs_writer_link(c->w, path, target, attr->mtime,
				 attr->mtime_nsec);
}

static int layer_entry_add(struct layer_ctx *c, struct archive *a,
			   struct archive_entry *e, char *path);

static int layer_entry(struct layer_ctx *c, struct archive *a,
		       struct archive_entry *e)
{
	char path[LAYER_PATH_MAX + 1];
	int err = layer_entry_add(c, a, e, path);

	if (!err && c->pending_count)
		err = resolve_pending_links(c, path);
	return err;
}

/* Add entry `e`; `path` receives its normalised path. */
static int layer_entry_add(struct layer_ctx *c, struct archive *a,
			   struct archive_entry *e, char *path)
{
	struct erofs_node_attr attr;
	struct erofs_node *node;
	const char *raw = archive_entry_pathname(e);
	const char *link;
	char *base;
	int err;

	if (!raw || !raw[0])
		return oc_err(OCICACHE_EFORMAT,
			      "%s: entry %llu (after entry %s): empty name",
			      c->name, (unsigned long long)c->entries,
			      c->entries > 1 ? c->entry : "none");
	snprintf(c->entry, sizeof(c->entry), "%s", raw);
	err = path_normalize(path, raw, c);
	if (!err)
		err = entry_attr(&attr, c, e, raw);
	if (err)
		return err;
	if (!path[0] && archive_entry_filetype(e) != AE_IFDIR)
		return oc_err(OCICACHE_EFORMAT,
			      "%s: entry %s: names the root but is not a "
			      "directory",
			      c->name, raw);

	base = strrchr(path, '/');
	base = base ? base + 1 : path;
	if (strncmp(base, ".wh.", 4) == 0)
		return add_whiteout(c, path, base, &attr);
	link = archive_entry_hardlink(e);
	if (link)
		return add_hardlink(c, path, link, &attr);

	switch (archive_entry_filetype(e)) {
	case AE_IFREG:
		return add_regular(c, a, e, path, &attr);
	case AE_IFDIR:
		attr.mode |= S_IFDIR;
		err = erofs_writer_add(&node, c->w, path, &attr);
		return err ? err : entry_xattrs(c, e, node, path);
	case AE_IFLNK:
		return add_special(c, e, path, &attr, S_IFLNK);
	case AE_IFCHR:
		return add_special(c, e, path, &attr, S_IFCHR);
	case AE_IFBLK:
		return add_special(c, e, path, &attr, S_IFBLK);
	case AE_IFIFO:
		return add_special(c, e, path, &attr, S_IFIFO);
	case AE_IFSOCK:
		return add_special(c, e, path, &attr, S_IFSOCK);
	default:
		oc_warn("%s: entry %s: unknown type skipped", c->name, raw);
		return 0;
	}
}

static int layer_read_tar(struct layer_ctx *c)
{
	struct archive *a = archive_read_new();
	int err = 0;

	if (!a)
		return oc_err(OCICACHE_ENOMEM, "%s: tar reader", c->name);
	archive_read_support_format_tar(a);
	archive_read_support_format_gnutar(a);
	if (archive_read_open(a, c, NULL, tar_read_cb, NULL) != ARCHIVE_OK) {
		err = tar_error(c, a, false);
		goto out;
	}
	for (;;) {
		struct archive_entry *e;
		int r = archive_read_next_header(a, &e);

		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN) {
			err = tar_error(c, a, false);
			break;
		}
		if (r == ARCHIVE_WARN)
			oc_warn("%s: tar, after entry %s: %s", c->name,
				c->entry, archive_error_string(a));
		if (++c->entries > c->max_entries) {
			err =
			    oc_err(OCICACHE_EFORMAT,
				   "%s: more than %llu tar entries, after "
				   "entry %s",
				   c->name, (unsigned long long)c->max_entries,
				   c->entry);
			break;
		}
		err = layer_entry(c, a, e);
		if (err)
			break;
	}
out:
	archive_read_free(a);
	return err;
}

/*
 * libarchive turns pax's UTF-8 names into the thread's locale charset;
 * under a "C" locale that mangles every non-ASCII name. A UTF-8 locale on
 * this thread alone keeps them. libarchive still rewrites them into
 * Unicode normal form C, so a name stored decomposed (NFD) in a pax header
 * changes its bytes in the image.
 */
static int layer_read_tar_utf8(struct layer_ctx *c)
{
	locale_t utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	locale_t old = (locale_t)0;
	int err;

	if (utf8)
		old = uselocale(utf8);
	err = layer_read_tar(c);
	if (utf8) {
		uselocale(old);
		freelocale(utf8);
	}
	return err;
}

void erofs_layer_result_free(struct erofs_layer_result *res)
{
	if (!res)
		return;
	for (size_t i = 0; i < res->implied_count; i++)
		free(res->implied_dirs[i]);
	free(res->implied_dirs);
	res->implied_dirs = NULL;
	res->implied_count = 0;
}

static int layer_setup(struct layer_ctx *c, int in_fd,
		       enum decompress_kind kind, const char *name,
		       const struct erofs_layer_options *opts)
{
	int err;

	c->name = name;
	c->max_bytes = opts && opts->max_uncompressed_bytes
			   ? opts->max_uncompressed_bytes
			   : LAYER_DEFAULT_MAX_BYTES;
	c->max_entries = opts && opts->max_entries ? opts->max_entries
						   : LAYER_DEFAULT_MAX_ENTRIES;
	tar_check_init(&c->check);
	err = decompress_new(&c->dec, in_fd, kind, name);
	if (err)
		return err;
	err = readahead_new(&c->ahead, c->dec, name);
	if (err)
		return err;
	err = digest_init(&c->digest);
	if (err)
		return err;
	c->digest_live = true;
	return 0;
}

static void layer_teardown(struct layer_ctx *c)
{
	if (c->digest_live)
		digest_abort(&c->digest);
	pending_links_free(c);
	tar_check_free(&c->check);
	erofs_writer_free(c->w);
	readahead_free(c->ahead);
	decompress_free(c->dec);
}

int erofs_layer_convert(struct erofs_layer_result *out, int in_fd,
			enum decompress_kind kind, const char *name,
			const char *out_path,
			const struct erofs_layer_options *opts)
{
	struct layer_ctx c = {0};
	uint8_t uuid[16];
	int out_fd;
	int err;

	memset(out, 0, sizeof(*out));
	if (!name)
		name = out_path;
	out_fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out_fd < 0)
		return oc_err_errno("create %s", out_path);

	err = layer_setup(&c, in_fd, kind, name, opts);
	if (!err)
		err = erofs_writer_new(&c.w, out_fd, name);
	if (!err)
		err = layer_read_tar_utf8(&c);
	if (!err) {
		err = layer_drain(&c);
		if (err)
			err = stream_error(&c, err, oc_err_message(), false);
	}
	if (!err && c.pending_count)
		err = oc_err(OCICACHE_EFORMAT,
			     "%s: entry %s: hard link target %s not found",
			     name, c.pending[0].path, c.pending[0].target);
	if (err)
		goto fail;

	digest_final(out->diff_id, &c.digest);
	c.digest_live = false;
	digest_uuid(uuid, out->diff_id);
	err = erofs_writer_finish(&out->blocks, c.w, uuid);
	if (!err)
		err = erofs_writer_implied_dirs(&out->implied_dirs,
						&out->implied_count, c.w);
	if (err)
		goto fail;
	out->entries = c.entries;

	layer_teardown(&c);
	if (close(out_fd) < 0) {
		err = oc_err_errno("close %s", out_path);
		goto fail_closed;
	}
	return 0;

fail:
	layer_teardown(&c);
	close(out_fd);
fail_closed:
	unlink(out_path);
	erofs_layer_result_free(out);
	memset(out, 0, sizeof(*out));
	return err;
}
