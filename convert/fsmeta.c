/*
 * fsmeta: merge layer images into one metadata-only EROFS image.
 *
 * Three steps. The merge reads each layer bottom to top through the EROFS
 * reader and applies it to an in-memory tree (whiteouts, opaque
 * directories, replacement, implied directories). The layout walks the
 * tree once and gives every inode its place: inodes with their xattrs and
 * inline tails or chunk index go into the metadata area right after the
 * superblock and device table, directory and symlink blocks that do not
 * fit inline follow it. The write fills the metadata area in memory (its
 * size is proportional to the entry count, like the tree), checksums the
 * superblock and writes it, then the data blocks.
 */
#include "convert/fsmeta.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/digest.h"
#include "common/error.h"
#include "common/file.h"
#include "convert/erofs_reader.h"

/* Deeper trees cannot come from a tar Linux can extract (PATH_MAX), and
 * the limit bounds the recursion of the merge. */
#define FSMETA_MAX_DEPTH 2048
/* The root inode must sit below 2 MiB (a 16-bit nid), after the table. */
#define FSMETA_MAX_LAYERS   1024
#define FSMETA_DEVT_SLOTOFF 9
#define SYMLINK_MAX	    4095

struct fm_inode;

struct fm_dentry {
	char *name;
	size_t len;
	struct fm_inode *inode;
};

struct fm_inode {
	uint16_t mode;
	uint32_t uid, gid, rdev;
	uint64_t mtime;
	uint32_t mtime_nsec;
	uint64_t size;	  /* directories: set by the layout */
	uint32_t layer;	  /* regular files: the layer holding the data */
	uint32_t blkaddr; /* regular files: its first block there */
	char *target;	  /* symlinks */
	struct erofs_xattr *xattrs;
	size_t xattr_count;
	uint32_t refs;	   /* names pointing here */
	bool meta_implied; /* directories: metadata from an implied entry */
	struct fm_dentry *children; /* directories, sorted by name */
	size_t child_count;

	/* Set by the layout. */
	bool placed;
	uint64_t pos; /* byte offset in the image, nid = pos / 32 */
	uint64_t ino;
	int layout;
	bool extended;
	unsigned int xattr_isize;
	uint64_t data_blkaddr; /* relative to the data area */
	struct fm_inode *parent;
};

/* An open-addressing map from a 64-bit key to a pointer. */
struct u64map {
	uint64_t *keys; /* key + 1; 0 is a free slot */
	void **values;
	size_t cap, used;
};

struct fm_ctx {
	const struct fsmeta_layer *layers;
	size_t count;
	size_t layer; /* the layer being merged */
	struct erofs_image *img;
	char **implied; /* the layer's implied directories, sorted */
	size_t implied_count;
	struct u64map links; /* nid -> inode, hard links of this layer */
	struct u64map dirs;  /* nids of directories seen in this layer */
	struct buf path;
	struct fm_inode *root;
	uint32_t *layer_blocks;

	/* Layout. */
	uint64_t pos;
	uint64_t inodes;
	uint64_t data_blocks;
	uint64_t meta_blocks;
};

struct fm_entry {
	char *name;
	size_t len;
	uint64_t nid;
	/* A directory to descend into after the merge, and its name (owned
	 * by the merged tree by then). */
	struct fm_inode *dir;
	const char *dir_name;
};

static int nomem(void)
{
	return oc_err(OCICACHE_ENOMEM, "fsmeta: out of memory");
}

static int u64map_grow(struct u64map *m)
{
	size_t cap = m->cap ? m->cap * 2 : 64;
	uint64_t *keys = calloc(cap, sizeof(*keys));
	void **values = calloc(cap, sizeof(*values));

	if (!keys || !values) {
		free(keys);
		free(values);
		return nomem();
	}
	for (size_t i = 0; i < m->cap; i++) {
		size_t j;

		if (!m->keys[i])
			continue;
		j = (size_t)(m->keys[i] * 0x9E3779B97F4A7C15ull) & (cap - 1);
		while (keys[j])
			j = (j + 1) & (cap - 1);
		keys[j] = m->keys[i];
		values[j] = m->values[i];
	}
	free(m->keys);
	free(m->values);
	m->keys = keys;
	m->values = values;
	m->cap = cap;
	return 0;
}

static size_t u64map_slot(const struct u64map *m, uint64_t key)
{
	size_t j = (size_t)((key + 1) * 0x9E3779B97F4A7C15ull) & (m->cap - 1);

	while (m->keys[j] && m->keys[j] != key + 1)
		j = (j + 1) & (m->cap - 1);
	return j;
}

static void *u64map_get(const struct u64map *m, uint64_t key)
{
	size_t j;

	if (!m->cap)
		return NULL;
	j = u64map_slot(m, key);
	return m->keys[j] ? m->values[j] : NULL;
}

static int u64map_put(struct u64map *m, uint64_t key, void *value)
{
	size_t j;
	int rc;

	if ((m->used + 1) * 2 > m->cap && (rc = u64map_grow(m)) < 0)
		return rc;
	j = u64map_slot(m, key);
	if (!m->keys[j])
		m->used++;
	m->keys[j] = key + 1;
	m->values[j] = value;
	return 0;
}

static void u64map_free(struct u64map *m)
{
	free(m->keys);
	free(m->values);
	memset(m, 0, sizeof(*m));
}

static void xattrs_free(struct erofs_xattr *xattrs, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free(xattrs[i].name);
		free(xattrs[i].value);
	}
	free(xattrs);
}

static void inode_unref(struct fm_inode *inode);

static void children_clear(struct fm_inode *dir)
{
	for (size_t i = 0; i < dir->child_count; i++) {
		free(dir->children[i].name);
		inode_unref(dir->children[i].inode);
	}
	free(dir->children);
	dir->children = NULL;
	dir->child_count = 0;
}

static void inode_unref(struct fm_inode *inode)
{
	if (!inode || --inode->refs)
		return;
	children_clear(inode);
	xattrs_free(inode->xattrs, inode->xattr_count);
	free(inode->target);
	free(inode);
}

static bool is_opaque_marker(const struct erofs_xattr *x)
{
	return x->name_index == EROFS_XATTR_INDEX_TRUSTED &&
	       !strcmp(x->name, "overlay.opaque") && x->value_size == 1 &&
	       x->value[0] == 'y';
}

static bool is_opaque(const struct erofs_inode_info *info)
{
	for (size_t i = 0; i < info->xattr_count; i++)
		if (is_opaque_marker(&info->xattrs[i]))
			return true;
	return false;
}

/* Take the metadata (and the xattrs, which `info` gives up) of `info`;
 * directories lose the opaque marker. */
static void take_meta(struct fm_inode *inode, struct erofs_inode_info *info)
{
	size_t kept = 0;

	inode->mode = info->mode;
	inode->uid = info->uid;
	inode->gid = info->gid;
	inode->mtime = info->mtime;
	inode->mtime_nsec = info->mtime_nsec;
	xattrs_free(inode->xattrs, inode->xattr_count);
	for (size_t i = 0; i < info->xattr_count; i++) {
		struct erofs_xattr *x = &info->xattrs[i];

		if (S_ISDIR(info->mode) && is_opaque_marker(x)) {
			free(x->name);
			free(x->value);
			continue;
		}
		info->xattrs[kept++] = *x;
	}
	inode->xattrs = info->xattrs;
	inode->xattr_count = kept;
	info->xattrs = NULL;
	info->xattr_count = 0;
}

static const char *layer_path(const struct fm_ctx *ctx)
{
	return ctx->layers[ctx->layer].path;
}

static const char *entry_path(const struct fm_ctx *ctx)
{
	return ctx->path.len ? ctx->path.data : "/";
}

static int fill_file(struct fm_ctx *ctx, struct fm_inode *inode,
		     const struct erofs_inode_info *info)
{
	int64_t n;

	if (S_ISREG(info->mode) || S_ISLNK(info->mode))
		inode->size = info->size;
	if (S_ISCHR(info->mode) || S_ISBLK(info->mode))
		inode->rdev = info->rdev;
	if (S_ISREG(info->mode)) {
		if (info->size && info->datalayout != EROFS_INODE_FLAT_PLAIN)
			return oc_err(OCICACHE_EUNSUPPORTED,
				      "fsmeta: layer %zu (%s): %s: data is "
				      "not FLAT_PLAIN (layout %d)",
				      ctx->layer, layer_path(ctx),
				      entry_path(ctx), info->datalayout);
		if ((info->size - 1) >> 43 && info->size)
			return oc_err(OCICACHE_EUNSUPPORTED,
				      "fsmeta: layer %zu (%s): %s: file over "
				      "8 TiB",
				      ctx->layer, layer_path(ctx),
				      entry_path(ctx));
		inode->layer = (uint32_t)ctx->layer;
		inode->blkaddr = info->raw_blkaddr;
		return 0;
	}
	if (!S_ISLNK(info->mode))
		return 0;
	if (info->size == 0 || info->size > SYMLINK_MAX)
		return oc_err(OCICACHE_EFORMAT,
			      "fsmeta: layer %zu (%s): %s: symlink of %llu "
			      "bytes",
			      ctx->layer, layer_path(ctx), entry_path(ctx),
			      (unsigned long long)info->size);
	inode->target = malloc((size_t)info->size + 1);
	if (!inode->target)
		return nomem();
	n = erofs_image_read(ctx->img, info, inode->target, (size_t)info->size,
			     0);
	if (n < 0)
		return (int)n;
	if ((uint64_t)n != info->size)
		return oc_err(OCICACHE_EFORMAT,
			      "fsmeta: layer %zu (%s): %s: short symlink",
			      ctx->layer, layer_path(ctx), entry_path(ctx));
	inode->target[n] = '\0';
	return 0;
}

static int implied_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_implied(const struct fm_ctx *ctx)
{
	const char *key = ctx->path.len ? ctx->path.data + 1 : "";

	if (!ctx->implied_count)
		return false;
	return bsearch(&key, ctx->implied, ctx->implied_count,
		       sizeof(*ctx->implied), implied_cmp) != NULL;
}

/* Path of the entry being merged, kept in ctx->path as "/a/b". */
static int path_push(struct fm_ctx *ctx, const char *name, size_t len)
{
	int rc = buf_append(&ctx->path, "/", 1);

	if (rc == 0)
		rc = buf_append(&ctx->path, name, len);
	return rc;
}

static void path_pop(struct fm_ctx *ctx, size_t old_len)
{
	ctx->path.len = old_len;
	if (ctx->path.data)
		ctx->path.data[old_len] = '\0';
}

static struct fm_inode *inode_new(void)
{
	struct fm_inode *inode = calloc(1, sizeof(*inode));

	if (inode)
		inode->refs = 1;
	return inode;
}

/*
 * Merge entry `e` of this layer into the directory being built. `lower` is
 * the lower entry of the same name or NULL; it is consumed either way: kept
 * in `*out` (a directory merged onto a directory) or released. On return
 * out->inode is NULL when nothing is left (a whiteout).
 */
static int merge_entry(struct fm_dentry *out, struct fm_ctx *ctx,
		       struct fm_entry *e, struct fm_dentry *lower)
{
	struct erofs_inode_info info;
	struct fm_inode *inode = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = erofs_image_inode(&info, ctx->img, e->nid);
	if (rc < 0) {
		memset(&info, 0, sizeof(info));
		goto drop_lower;
	}
	if (lower && S_ISDIR(info.mode) && S_ISDIR(lower->inode->mode)) {
		*out = *lower;
		lower = NULL;
	}
drop_lower:
	if (lower) {
		free(lower->name);
		inode_unref(lower->inode);
	}
	if (rc < 0 || (S_ISCHR(info.mode) && info.rdev == 0))
		goto out;

	if (S_ISDIR(info.mode)) {
		bool implied = is_implied(ctx);

		if (u64map_get(&ctx->dirs, e->nid)) {
			rc =
			    oc_err(OCICACHE_EFORMAT,
				   "fsmeta: layer %zu (%s): %s: directory "
				   "nid %llu linked twice",
				   ctx->layer, layer_path(ctx), entry_path(ctx),
				   (unsigned long long)e->nid);
			goto out;
		}
		rc = u64map_put(&ctx->dirs, e->nid, ctx);
		if (rc < 0)
			goto out;
		if (out->inode) {
			inode = out->inode;
			if (is_opaque(&info))
				children_clear(inode);
			if (!implied)
				take_meta(inode, &info);
			inode->meta_implied = inode->meta_implied && implied;
			e->dir = inode;
			e->dir_name = out->name;
			goto out;
		}
		inode = inode_new();
		if (!inode) {
			rc = nomem();
			goto out;
		}
		take_meta(inode, &info);
		inode->meta_implied = implied;
		e->dir = inode;
	} else if (info.nlink > 1 &&
		   (inode = u64map_get(&ctx->links, e->nid))) {
		inode->refs++;
	} else {
		inode = inode_new();
		if (!inode) {
			rc = nomem();
			goto out;
		}
		rc = fill_file(ctx, inode, &info);
		if (rc == 0)
			take_meta(inode, &info);
		if (rc == 0 && info.nlink > 1) {
			rc = u64map_put(&ctx->links, e->nid, inode);
			if (rc == 0)
				inode->refs++; /* the map's reference */
		}
		if (rc < 0) {
			inode_unref(inode);
			goto out;
		}
	}

	out->name = e->name;
	out->len = e->len;
	out->inode = inode;
	e->name = NULL;
	e->dir_name = out->name;
out:
	erofs_inode_info_clear(&info);
	return rc;
}

struct collect {
	struct fm_entry *entries;
	size_t count, cap;
};

static int collect_entry(void *ud, const char *name, size_t name_len,
			 uint64_t nid, uint8_t file_type)
{
	struct collect *c = ud;
	struct fm_entry *e;

	(void)file_type;
	if (c->count == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		struct fm_entry *n = realloc(c->entries, cap * sizeof(*n));

		if (!n)
			return nomem();
		c->entries = n;
		c->cap = cap;
	}
	e = &c->entries[c->count];
	memset(e, 0, sizeof(*e));
	e->name = strndup(name, name_len);
	if (!e->name)
		return nomem();
	e->len = name_len;
	e->nid = nid;
	c->count++;
	return 0;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct fm_entry *x = a, *y = b;

	return erofs_name_cmp(x->name, x->len, y->name, y->len);
}

static void collect_free(struct collect *c)
{
	for (size_t i = 0; i < c->count; i++)
		free(c->entries[i].name);
	free(c->entries);
}

/* Merge the sorted lower children of `dir` with this layer's entries. */
static int merge_children(struct fm_ctx *ctx, struct fm_inode *dir,
			  struct collect *c)
{
	struct fm_dentry *out;
	size_t i = 0, j = 0, n = 0;
	int rc = 0;

	out = calloc(dir->child_count + c->count + 1, sizeof(*out));
	if (!out)
		return nomem();
	while (i < dir->child_count || j < c->count) {
		struct fm_dentry *lower = NULL;
		struct fm_entry *e;
		size_t old = ctx->path.len;
		int cmp = -1;

		if (j < c->count && i < dir->child_count)
			cmp = erofs_name_cmp(
			    dir->children[i].name, dir->children[i].len,
			    c->entries[j].name, c->entries[j].len);
		else if (j < c->count)
			cmp = 1;
		if (cmp < 0) {
			out[n++] = dir->children[i++];
			continue;
		}
		if (cmp == 0)
			lower = &dir->children[i++];
		e = &c->entries[j++];
		rc = path_push(ctx, e->name, e->len);
		if (rc == 0)
			rc = merge_entry(&out[n], ctx, e, lower);
		else if (lower)
			out[n++] = *lower;
		path_pop(ctx, old);
		if (rc < 0)
			goto fail;
		if (out[n].inode)
			n++;
	}
	free(dir->children);
	dir->children = out;
	dir->child_count = n;
	return 0;

fail:
	/* What is not in `out` yet still belongs to `dir`. */
	if (dir->children)
		memmove(dir->children, dir->children + i,
			(dir->child_count - i) * sizeof(*out));
	dir->child_count -= i;
	for (size_t k = 0; k < n; k++) {
		free(out[k].name);
		inode_unref(out[k].inode);
	}
	free(out);
	return rc;
}

static int merge_dir(struct fm_ctx *ctx, uint64_t nid, struct fm_inode *dir,
		     unsigned int depth)
{
	struct collect c = {0};
	int rc;

	if (depth > FSMETA_MAX_DEPTH)
		return oc_err(OCICACHE_EUNSUPPORTED,
			      "fsmeta: layer %zu (%s): %s: deeper than %d "
			      "levels",
			      ctx->layer, layer_path(ctx), entry_path(ctx),
			      FSMETA_MAX_DEPTH);
	rc = erofs_image_readdir(ctx->img, nid, collect_entry, &c);
	if (rc < 0)
		goto out;
	if (c.count > 1)
		qsort(c.entries, c.count, sizeof(*c.entries), entry_cmp);
	for (size_t k = 1; k < c.count; k++) {
		if (entry_cmp(&c.entries[k - 1], &c.entries[k]) == 0) {
			rc = oc_err(OCICACHE_EFORMAT,
				    "fsmeta: layer %zu (%s): %s: name %s "
				    "listed twice",
				    ctx->layer, layer_path(ctx),
				    entry_path(ctx), c.entries[k].name);
			goto out;
		}
	}
	rc = merge_children(ctx, dir, &c);

	for (size_t k = 0; k < c.count && rc == 0; k++) {
		struct fm_entry *e = &c.entries[k];
		size_t old = ctx->path.len;

		if (!e->dir)
			continue;
		rc = path_push(ctx, e->dir_name, strlen(e->dir_name));
		if (rc == 0)
			rc = merge_dir(ctx, e->nid, e->dir, depth + 1);
		path_pop(ctx, old);
	}
out:
	collect_free(&c);
	return rc;
}

/* Normalise "./a/b/", "/a/b" and "a/b" to "a/b"; "", "." and "/" to "". */
static char *implied_normalise(const char *path)
{
	size_t len;

	while (path[0] == '.' && (path[1] == '/' || path[1] == '\0'))
		path += path[1] ? 2 : 1;
	while (*path == '/')
		path++;
	len = strlen(path);
	while (len && path[len - 1] == '/')
		len--;
	return strndup(path, len);
}

static void implied_free(struct fm_ctx *ctx)
{
	for (size_t i = 0; i < ctx->implied_count; i++)
		free(ctx->implied[i]);
	free(ctx->implied);
	ctx->implied = NULL;
	ctx->implied_count = 0;
}

static int implied_load(struct fm_ctx *ctx, const struct fsmeta_layer *layer)
{
	if (!layer->implied_count)
		return 0;
	ctx->implied = calloc(layer->implied_count, sizeof(*ctx->implied));
	if (!ctx->implied)
		return nomem();
	for (size_t i = 0; i < layer->implied_count; i++) {
		ctx->implied[i] = implied_normalise(layer->implied_dirs[i]);
		if (!ctx->implied[i])
			return nomem();
		ctx->implied_count++;
	}
	if (ctx->implied_count > 1)
		qsort(ctx->implied, ctx->implied_count, sizeof(*ctx->implied),
		      implied_cmp);
	return 0;
}

static void links_release(struct fm_ctx *ctx)
{
	for (size_t i = 0; i < ctx->links.cap; i++)
		if (ctx->links.keys[i])
			inode_unref(ctx->links.values[i]);
	u64map_free(&ctx->links);
	u64map_free(&ctx->dirs);
}

static int merge_root(struct fm_ctx *ctx)
{
	const struct erofs_super_block *sb = erofs_image_super(ctx->img);
	uint64_t nid = le16toh(sb->root_nid);
	struct erofs_inode_info info;
	bool implied = is_implied(ctx);
	int rc;

	rc = erofs_image_inode(&info, ctx->img, nid);
	if (rc < 0)
		return rc;
	if (!ctx->root) {
		ctx->root = inode_new();
		if (!ctx->root) {
			erofs_inode_info_clear(&info);
			return nomem();
		}
		take_meta(ctx->root, &info);
		ctx->root->meta_implied = implied;
	} else {
		if (is_opaque(&info))
			children_clear(ctx->root);
		if (!implied)
			take_meta(ctx->root, &info);
		ctx->root->meta_implied = ctx->root->meta_implied && implied;
	}
	erofs_inode_info_clear(&info);
	rc = u64map_put(&ctx->dirs, nid, ctx);
	if (rc < 0)
		return rc;
	return merge_dir(ctx, nid, ctx->root, 0);
}

static int merge_layer(struct fm_ctx *ctx, size_t index)
{
	const struct fsmeta_layer *layer = &ctx->layers[index];
	int rc;

	ctx->layer = index;
	rc = erofs_image_open(&ctx->img, layer->path);
	if (rc < 0)
		return oc_err_wrap(rc, "fsmeta: layer %zu", index);

	ctx->layer_blocks[index] = le32toh(erofs_image_super(ctx->img)->blocks);
	rc = implied_load(ctx, layer);
	if (rc == 0)
		rc = merge_root(ctx);
	links_release(ctx);
	implied_free(ctx);
	erofs_image_close(ctx->img);
	ctx->img = NULL;
	return rc;
}

/* Directory data: entries sorted by name, "." and ".." included, packed
 * into block-sized pieces that no entry straddles. */
struct dirent_out {
	const char *name;
	size_t len;
	struct fm_inode *inode;
};

static int dirent_out_cmp(const void *a, const void *b)
{
	const struct dirent_out *x = a, *y = b;

	return erofs_name_cmp(x->name, x->len, y->name, y->len);
}

static struct dirent_out *dir_entries(struct fm_inode *dir)
{
	struct dirent_out *d = calloc(dir->child_count + 2, sizeof(*d));

	if (!d)
		return NULL;
	d[0] = (struct dirent_out){".", 1, dir};
	d[1] = (struct dirent_out){"..", 2, dir->parent};
	for (size_t i = 0; i < dir->child_count; i++)
		d[i + 2] = (struct dirent_out){dir->children[i].name,
					       dir->children[i].len,
					       dir->children[i].inode};
	qsort(d, dir->child_count + 2, sizeof(*d), dirent_out_cmp);
	return d;
}

/*
 * Pack the sorted entries `d[0..count)` into directory blocks. With `out`
 * NULL only the size is computed. Returns the directory's size.
 */
static uint64_t dir_pack(uint8_t *out, const struct dirent_out *d, size_t count)
{
	uint64_t base = 0;
	size_t i = 0;

	while (i < count) {
		size_t n = 0, used = 0, nameoff;

		while (i + n < count &&
		       used + sizeof(struct erofs_dirent) + d[i + n].len <=
			   EROFS_BLKSZ) {
			used += sizeof(struct erofs_dirent) + d[i + n].len;
			n++;
		}
		nameoff = n * sizeof(struct erofs_dirent);
		for (size_t k = 0; out && k < n; k++) {
			const struct dirent_out *e = &d[i + k];
			struct erofs_dirent de = {
			    .nid = htole64(e->inode->pos >> EROFS_ISLOT_BITS),
			    .nameoff = htole16((uint16_t)nameoff),
			    .file_type = erofs_file_type(e->inode->mode),
			};

			memcpy(out + base + k * sizeof(de), &de, sizeof(de));
			memcpy(out + base + nameoff, e->name, e->len);
			nameoff += e->len;
		}
		i += n;
		base += i < count ? EROFS_BLKSZ : used;
	}
	return base;
}

static uint32_t inode_nlink(const struct fm_inode *inode)
{
	uint32_t n = 2;

	if (!S_ISDIR(inode->mode))
		return inode->refs;
	for (size_t i = 0; i < inode->child_count; i++)
		n += S_ISDIR(inode->children[i].inode->mode);
	return n;
}

static unsigned int xattr_body_size(const struct fm_inode *inode)
{
	unsigned int size = sizeof(struct erofs_xattr_ibody_header);

	if (!inode->xattr_count)
		return 0;
	for (size_t i = 0; i < inode->xattr_count; i++)
		size += (sizeof(struct erofs_xattr_entry) +
			 inode->xattrs[i].name_len +
			 inode->xattrs[i].value_size + 3u) &
			~3u;
	return size;
}

static int layout_inode(struct fm_ctx *ctx, struct fm_inode *inode,
			struct fm_inode *parent, unsigned int depth);

static int layout_data(struct fm_inode *inode, unsigned int base,
		       uint64_t *record, uint64_t *blocks)
{
	uint64_t tail = inode->size % EROFS_BLKSZ;

	if (S_ISREG(inode->mode)) {
		inode->layout = EROFS_INODE_CHUNK_BASED;
		*record = base;
		if (inode->size)
			*record += (base % 8 ? 4 : 0) +
				   sizeof(struct erofs_inode_chunk_index);
		*blocks = 0;
		return 0;
	}
	inode->layout = EROFS_INODE_FLAT_PLAIN;
	*record = base;
	*blocks = (inode->size + EROFS_BLKSZ - 1) / EROFS_BLKSZ;
	if (tail && base + tail <= EROFS_BLKSZ) {
		inode->layout = EROFS_INODE_FLAT_INLINE;
		*record += tail;
		*blocks = inode->size / EROFS_BLKSZ;
	}
	return 0;
}

static int place_inode(struct fm_ctx *ctx, struct fm_inode *inode)
{
	uint64_t build_time = ctx->root->mtime, record, blocks;
	uint32_t build_nsec = ctx->root->mtime_nsec;
	unsigned int body = xattr_body_size(inode), isize;

	if (body > erofs_xattr_ibody_size(UINT16_MAX))
		return oc_err(OCICACHE_EUNSUPPORTED,
			      "fsmeta: an inode with %u bytes of xattrs", body);
	if (S_ISDIR(inode->mode)) {
		struct dirent_out *d = dir_entries(inode);

		if (!d)
			return nomem();
		inode->size = dir_pack(NULL, d, inode->child_count + 2);
		free(d);
	}
	inode->extended =
	    inode->uid > UINT16_MAX || inode->gid > UINT16_MAX ||
	    inode_nlink(inode) > UINT16_MAX || inode->size > UINT32_MAX ||
	    inode->mtime != build_time || inode->mtime_nsec != build_nsec;
	isize = inode->extended ? sizeof(struct erofs_inode_extended)
				: sizeof(struct erofs_inode_compact);
	inode->xattr_isize = body;
	layout_data(inode, isize + body, &record, &blocks);

	if (record <= EROFS_BLKSZ &&
	    ctx->pos % EROFS_BLKSZ + record > EROFS_BLKSZ)
		ctx->pos =
		    (ctx->pos + EROFS_BLKSZ - 1) / EROFS_BLKSZ * EROFS_BLKSZ;
	inode->pos = ctx->pos;
	inode->ino = ++ctx->inodes;
	inode->data_blkaddr = ctx->data_blocks;
	ctx->data_blocks += blocks;
	ctx->pos = (ctx->pos + record + 31) / 32 * 32;
	inode->placed = true;
	return 0;
}

static int layout_inode(struct fm_ctx *ctx, struct fm_inode *inode,
			struct fm_inode *parent, unsigned int depth)
{
	int rc;

	if (inode->placed)
		return 0;
	inode->parent = parent;
	rc = place_inode(ctx, inode);
	for (size_t i = 0; rc == 0 && i < inode->child_count; i++)
		rc = layout_inode(ctx, inode->children[i].inode, inode,
				  depth + 1);
	return rc;
}

static void put_xattrs(uint8_t *p, const struct fm_inode *inode)
{
	struct erofs_xattr_ibody_header h = {0};
	size_t off = sizeof(h);

	if (!inode->xattr_count)
		return;
	memcpy(p, &h, sizeof(h));
	for (size_t i = 0; i < inode->xattr_count; i++) {
		const struct erofs_xattr *x = &inode->xattrs[i];
		struct erofs_xattr_entry e = {
		    .e_name_len = x->name_len,
		    .e_name_index = x->name_index,
		    .e_value_size = htole16(x->value_size),
		};

		memcpy(p + off, &e, sizeof(e));
		memcpy(p + off + sizeof(e), x->name, x->name_len);
		memcpy(p + off + sizeof(e) + x->name_len, x->value,
		       x->value_size);
		off += (sizeof(e) + x->name_len + x->value_size + 3u) & ~3u;
	}
}

static uint32_t inode_i_u(const struct fm_ctx *ctx,
			  const struct fm_inode *inode)
{
	unsigned int bits = EROFS_BLKSZ_BITS;

	if (S_ISREG(inode->mode)) {
		while (bits < 63 && (1ull << bits) < inode->size)
			bits++;
		return EROFS_CHUNK_FORMAT_INDEXES | (bits - EROFS_BLKSZ_BITS);
	}
	if (S_ISCHR(inode->mode) || S_ISBLK(inode->mode))
		return inode->rdev;
	if (!S_ISDIR(inode->mode) && !S_ISLNK(inode->mode))
		return 0;
	if (inode->layout == EROFS_INODE_FLAT_PLAIN ||
	    inode->size >= EROFS_BLKSZ)
		return (uint32_t)(ctx->meta_blocks + inode->data_blkaddr);
	return 0;
}

static void put_inode(uint8_t *meta, const struct fm_ctx *ctx,
		      const struct fm_inode *inode)
{
	uint8_t *p = meta + inode->pos;
	uint16_t icount = inode->xattr_isize
			      ? (uint16_t)((inode->xattr_isize - 12) / 4 + 1)
			      : 0;
	uint16_t format = erofs_i_format(inode->extended, inode->layout);

	if (inode->extended) {
		struct erofs_inode_extended die = {
		    .i_format = htole16(format),
		    .i_xattr_icount = htole16(icount),
		    .i_mode = htole16(inode->mode),
		    .i_size = htole64(inode->size),
		    .i_u = htole32(inode_i_u(ctx, inode)),
		    .i_ino = htole32((uint32_t)inode->ino),
		    .i_uid = htole32(inode->uid),
		    .i_gid = htole32(inode->gid),
		    .i_mtime = htole64(inode->mtime),
		    .i_mtime_nsec = htole32(inode->mtime_nsec),
		    .i_nlink = htole32(inode_nlink(inode)),
		};

		memcpy(p, &die, sizeof(die));
		p += sizeof(die);
	} else {
		struct erofs_inode_compact dic = {
		    .i_format = htole16(format),
		    .i_xattr_icount = htole16(icount),
		    .i_mode = htole16(inode->mode),
		    .i_nlink = htole16((uint16_t)inode_nlink(inode)),
		    .i_size = htole32((uint32_t)inode->size),
		    .i_u = htole32(inode_i_u(ctx, inode)),
		    .i_ino = htole32((uint32_t)inode->ino),
		    .i_uid = htole16((uint16_t)inode->uid),
		    .i_gid = htole16((uint16_t)inode->gid),
		};

		memcpy(p, &dic, sizeof(dic));
		p += sizeof(dic);
	}
	put_xattrs(p, inode);
	p += inode->xattr_isize;

	if (S_ISREG(inode->mode) && inode->size) {
		struct erofs_inode_chunk_index idx = {
		    .device_id = htole16((uint16_t)(inode->layer + 1)),
		    .blkaddr = htole32(inode->blkaddr),
		};

		p += (size_t)(p - meta) % 8 ? 4 : 0;
		memcpy(p, &idx, sizeof(idx));
	}
}

/* Write a directory's or symlink's data: whole blocks to the data area,
 * an inline tail right after the inode in `meta`. */
static int put_data(uint8_t *meta, int fd, const char *out_path,
		    const struct fm_ctx *ctx, const struct fm_inode *inode)
{
	uint64_t full = inode->size / EROFS_BLKSZ * EROFS_BLKSZ;
	uint8_t *data;
	int rc = 0;

	if (inode->layout == EROFS_INODE_FLAT_PLAIN)
		full =
		    (inode->size + EROFS_BLKSZ - 1) / EROFS_BLKSZ * EROFS_BLKSZ;
	data = calloc(1, full > inode->size ? full : inode->size + 1);
	if (!data)
		return nomem();
	if (S_ISDIR(inode->mode)) {
		struct dirent_out *d = dir_entries((struct fm_inode *)inode);

		if (!d) {
			free(data);
			return nomem();
		}
		dir_pack(data, d, inode->child_count + 2);
		free(d);
	} else {
		memcpy(data, inode->target, (size_t)inode->size);
	}
	if (full)
		rc = file_pwrite_all(fd, data, (size_t)full,
				     (ctx->meta_blocks + inode->data_blkaddr) *
					 EROFS_BLKSZ,
				     out_path);
	if (inode->layout == EROFS_INODE_FLAT_INLINE)
		memcpy(meta + inode->pos +
			   (inode->extended
				? sizeof(struct erofs_inode_extended)
				: sizeof(struct erofs_inode_compact)) +
			   inode->xattr_isize,
		       data + full, (size_t)(inode->size - full));
	free(data);
	return rc;
}

static int write_inode(uint8_t *meta, int fd, const char *out_path,
		       const struct fm_ctx *ctx, struct fm_inode *inode)
{
	int rc = 0;

	if (!inode->placed)
		return 0;
	inode->placed = false; /* written: a hard link's next name skips it */
	put_inode(meta, ctx, inode);
	if (S_ISDIR(inode->mode) || S_ISLNK(inode->mode))
		rc = put_data(meta, fd, out_path, ctx, inode);
	for (size_t i = 0; rc == 0 && i < inode->child_count; i++)
		rc = write_inode(meta, fd, out_path, ctx,
				 inode->children[i].inode);
	return rc;
}

static int put_super(uint8_t *meta, const struct fm_ctx *ctx,
		     const char *seed_digest, uint64_t total)
{
	struct erofs_super_block sb = {
	    .magic = htole32(EROFS_MAGIC),
	    .feature_compat = htole32(EROFS_FEATURE_COMPAT_SB_CHKSUM),
	    .blkszbits = EROFS_BLKSZ_BITS,
	    .root_nid = htole16((uint16_t)(ctx->root->pos >> EROFS_ISLOT_BITS)),
	    .inos = htole64(ctx->inodes),
	    .build_time = htole64(ctx->root->mtime),
	    .build_time_nsec = htole32(ctx->root->mtime_nsec),
	    .blocks = htole32((uint32_t)total),
	    .feature_incompat = htole32(EROFS_FEATURE_INCOMPAT_CHUNKED_FILE |
					EROFS_FEATURE_INCOMPAT_DEVICE_TABLE),
	    .extra_devices = htole16((uint16_t)ctx->count),
	    .devt_slotoff = htole16(FSMETA_DEVT_SLOTOFF),
	};
	uint64_t mapped = total;
	uint32_t crc;

	digest_uuid(sb.uuid, seed_digest);
	for (size_t i = 0; i < ctx->count; i++) {
		struct erofs_deviceslot slot = {
		    .blocks = htole32(ctx->layer_blocks[i]),
		    .mapped_blkaddr = htole32((uint32_t)mapped),
		};
		const char *tag = ctx->layers[i].tag ? ctx->layers[i].tag : "";

		memcpy(slot.tag, tag, strnlen(tag, sizeof(slot.tag)));
		memcpy(meta + FSMETA_DEVT_SLOTOFF * EROFS_DEVT_SLOT_SIZE +
			   i * sizeof(slot),
		       &slot, sizeof(slot));
		mapped += ctx->layer_blocks[i];
	}
	if (mapped > UINT32_MAX)
		return oc_err(OCICACHE_EUNSUPPORTED,
			      "fsmeta: the layers add up to %llu blocks, over "
			      "the 32-bit block address",
			      (unsigned long long)mapped);
	memcpy(meta + EROFS_SUPER_OFFSET, &sb, sizeof(sb));
	crc = erofs_super_checksum(meta);
	sb.checksum = htole32(crc);
	memcpy(meta + EROFS_SUPER_OFFSET, &sb, sizeof(sb));
	return 0;
}

static int write_image(struct fm_ctx *ctx, const char *out_path,
		       const char *seed_digest, uint64_t *blocks_out)
{
	uint64_t total;
	uint8_t *meta;
	int fd, rc;

	ctx->pos = FSMETA_DEVT_SLOTOFF * EROFS_DEVT_SLOT_SIZE +
		   ctx->count * EROFS_DEVT_SLOT_SIZE;
	ctx->pos = (ctx->pos + 31) / 32 * 32;
	rc = layout_inode(ctx, ctx->root, ctx->root, 0);
	if (rc < 0)
		return rc;
	if (ctx->root->pos >> EROFS_ISLOT_BITS > UINT16_MAX)
		return oc_err(OCICACHE_EUNSUPPORTED,
			      "fsmeta: the root inode lands past 2 MiB");
	ctx->meta_blocks = (ctx->pos + EROFS_BLKSZ - 1) / EROFS_BLKSZ;
	total = ctx->meta_blocks + ctx->data_blocks;

	meta = calloc(ctx->meta_blocks, EROFS_BLKSZ);
	if (!meta)
		return nomem();
	fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = oc_err_errno("fsmeta: create %s", out_path);
		goto out;
	}
	rc = write_inode(meta, fd, out_path, ctx, ctx->root);
	if (rc == 0)
		rc = put_super(meta, ctx, seed_digest, total);
	if (rc == 0)
		rc = file_pwrite_all(fd, meta, ctx->meta_blocks * EROFS_BLKSZ,
				     0, out_path);
	if (rc == 0 && ftruncate(fd, (off_t)(total * EROFS_BLKSZ)) < 0)
		rc = oc_err_errno("fsmeta: truncate %s", out_path);
	if (close(fd) < 0 && rc == 0)
		rc = oc_err_errno("fsmeta: close %s", out_path);
	if (rc == 0 && blocks_out)
		*blocks_out = total;
	if (rc < 0)
		unlink(out_path);
out:
	free(meta);
	return rc;
}

static int check_args(const struct fsmeta_layer *layers, size_t count,
		      const char *seed_digest)
{
	if (!seed_digest || !digest_valid(seed_digest))
		return oc_err(OCICACHE_EINVAL, "fsmeta: invalid seed digest %s",
			      seed_digest ? seed_digest : "(null)");
	if (count == 0 || count > FSMETA_MAX_LAYERS)
		return oc_err(OCICACHE_EINVAL,
			      "fsmeta: %zu layers (1 to %d are merged)", count,
			      FSMETA_MAX_LAYERS);
	for (size_t i = 0; i < count; i++) {
		if (!layers[i].path)
			return oc_err(OCICACHE_EINVAL,
				      "fsmeta: layer %zu has no path", i);
		if (layers[i].tag && strlen(layers[i].tag) > 64)
			return oc_err(OCICACHE_EINVAL,
				      "fsmeta: layer %zu: tag over 64 bytes",
				      i);
	}
	return 0;
}

int fsmeta_write(uint64_t *blocks_out, const char *out_path,
		 const struct fsmeta_layer *layers, size_t count,
		 const char *seed_digest)
{
	struct fm_ctx ctx = {0};
	int rc;

	rc = check_args(layers, count, seed_digest);
	if (rc < 0)
		return rc;
	ctx.layers = layers;
	ctx.count = count;
	ctx.layer_blocks = calloc(count, sizeof(*ctx.layer_blocks));
	if (!ctx.layer_blocks)
		return nomem();

	for (size_t i = 0; i < count && rc == 0; i++)
		rc = merge_layer(&ctx, i);
	if (rc == 0)
		rc = write_image(&ctx, out_path, seed_digest, blocks_out);
	inode_unref(ctx.root);
	buf_free(&ctx.path);
	free(ctx.layer_blocks);
	return rc;
}
