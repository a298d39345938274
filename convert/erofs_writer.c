#include "convert/erofs_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "common/file.h"
#include "convert/erofs_fs.h"

/* Output is gathered into large writes: the data area alone can be GiBs. */
#define WRITER_BUF_SIZE (4u << 20)

/* The root sits at nid 1, not 0: the kernel uses the nid as the inode
 * number, and an inode number of 0 reads as "no inode" to some tools. */
#define WRITER_ROOT_NID 1

struct xattr_item {
	uint8_t index;
	uint8_t name_len;
	uint16_t value_len;
	uint32_t shared_id; /* XATTR_INLINE, or its slot in the shared area */
	uint64_t hash;
	char *data; /* the name suffix, then the value */
};

#define XATTR_INLINE UINT32_MAX

/* An inode lists at most this many shared xattrs (h_shared_count is u8). */
#define XATTR_SHARED_PER_INODE 255

/* One entry of a directory as it is written: ".", ".." and the children. */
struct dir_entry {
	const char *name;
	uint16_t name_len;
	struct erofs_node *node;
};

struct dir_layout {
	struct dir_entry *entries;
	uint32_t count;
	uint32_t *piece_start; /* first entry of each block-sized piece */
	uint32_t pieces;
	uint32_t last_used; /* bytes used in the last piece */
};

struct erofs_dentry {
	struct erofs_node *parent;
	struct erofs_node *node;
	uint64_t hash;
	uint16_t name_len;
	char name[];
};

struct erofs_node {
	struct erofs_node_attr attr; /* attr.symlink is owned */
	uint64_t serial;	     /* creation order, for hashing */
	uint32_t blkaddr;
	bool implied;
	bool opaque;
	bool whiteout; /* a 0/0 character device made from `.wh.NAME` */
	bool listed;
	bool extended;
	uint8_t datalayout;

	struct xattr_item *xattrs;
	uint32_t xattr_count;
	uint32_t xattr_cap;
	uint16_t xattr_icount;
	uint8_t xattr_shared;

	/* Directories: where they hang, and the names below them. */
	struct erofs_node *parent;
	struct erofs_dentry *self;
	struct erofs_dentry **children;
	uint32_t child_count;
	uint32_t child_cap;
	struct dir_layout *dir;

	uint32_t nlink;
	uint64_t nid;
	uint64_t full_blocks; /* dir/symlink blocks outside the inode area */
	struct erofs_node *all_next;
};

/*
 * Copying GiBs into the page cache costs as much CPU as inflating them, so
 * a full buffer is written by a second thread while the next one fills.
 */
struct flusher {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool running;
	bool pending; /* a buffer is handed over and not yet written */
	bool stop;
	const char *buf;
	size_t len;
	uint64_t off;
	int err;
	char msg[512];
};

struct erofs_writer {
	int fd;
	int direct_fd; /* the same file opened O_DIRECT, or -1 */
	char *name;

	char *buf;
	char *spare; /* the buffer the flusher writes from */
	size_t buf_fill;
	struct flusher flush;
	uint64_t out_pos; /* file offset of the next byte emitted */

	uint64_t next_blk;
	struct erofs_node *root;
	bool root_time_set;
	struct erofs_node *all_nodes;
	uint64_t serial;

	struct erofs_dentry **slots; /* open addressing, power of two */
	size_t slot_cap;
	size_t slot_used;

	struct erofs_node *data_node;
	uint64_t data_written;

	struct erofs_node **order; /* inode order, root first */
	size_t order_count;
	int64_t build_time;
	uint32_t build_nsec;
	uint64_t xattr_blkaddr;
	uint64_t meta_blkaddr;

	/* Xattrs stored once in the shared area, in id order. */
	struct xattr_item **shared;
	size_t shared_count;
	uint64_t shared_bytes;
	bool finished;
};

static uint64_t round_up(uint64_t v, uint64_t to)
{
	return (v + to - 1) / to * to;
}

/* Output buffer */

/*
 * Whole data buffers go to the disk with O_DIRECT where the file system
 * takes it: on a virtual disk that writes at the device's speed with no
 * page-cache copy, which would otherwise cost the converter as much CPU as
 * inflating. Anything unaligned, and file systems without O_DIRECT
 * (tmpfs), go through the page cache as usual.
 */
static int open_direct(int fd)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return open(path, O_WRONLY | O_DIRECT | O_CLOEXEC);
}

static int flush_write(struct erofs_writer *w, const char *buf, size_t len,
		       uint64_t off)
{
	if (w->direct_fd >= 0 && off % EROFS_BLKSZ == 0 &&
	    len % EROFS_BLKSZ == 0) {
		size_t done = 0;

		while (done < len) {
			ssize_t n = pwrite(w->direct_fd, buf + done, len - done,
					   (off_t)(off + done));

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0 || (size_t)n % EROFS_BLKSZ)
				break;
			done += (size_t)n;
		}
		if (done == len)
			return 0;
		/* The file system refused (or cut) a direct write: write
		 * the whole piece again through the page cache, and stay
		 * there. */
		close(w->direct_fd);
		w->direct_fd = -1;
	}
	return file_pwrite_all(w->fd, buf, len, off, w->name);
}

static void *flusher_main(void *arg)
{
	struct erofs_writer *w = arg;
	struct flusher *f = &w->flush;

	pthread_mutex_lock(&f->lock);
	for (;;) {
		int err;

		while (!f->pending && !f->stop)
			pthread_cond_wait(&f->cond, &f->lock);
		if (!f->pending)
			break;
		pthread_mutex_unlock(&f->lock);
		err = flush_write(w, f->buf, f->len, f->off);
		pthread_mutex_lock(&f->lock);
		if (err && !f->err) {
			f->err = err;
			snprintf(f->msg, sizeof(f->msg), "%s",
				 oc_err_message());
		}
		f->pending = false;
		pthread_cond_broadcast(&f->cond);
	}
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

/* Wait until the flusher is idle; its failure, if any, is ours. */
static int flusher_wait(struct erofs_writer *w)
{
	struct flusher *f = &w->flush;
	int err;

	pthread_mutex_lock(&f->lock);
	while (f->pending)
		pthread_cond_wait(&f->cond, &f->lock);
	err = f->err;
	pthread_mutex_unlock(&f->lock);
	if (err)
		return oc_err(err, "%s", f->msg);
	return 0;
}

static int out_flush(struct erofs_writer *w)
{
	struct flusher *f = &w->flush;
	char *next;
	int err;

	if (!w->buf_fill)
		return 0;
	err = flusher_wait(w);
	if (err)
		return err;
	pthread_mutex_lock(&f->lock);
	f->buf = w->buf;
	f->len = w->buf_fill;
	f->off = w->out_pos - w->buf_fill;
	f->pending = true;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);

	next = w->spare;
	w->spare = w->buf;
	w->buf = next;
	w->buf_fill = 0;
	return 0;
}

/* Append `len` bytes of `data`, or of zeros when `data` is NULL. */
static int out_append(struct erofs_writer *w, const void *data, uint64_t len)
{
	const char *p = data;

	while (len) {
		size_t room = WRITER_BUF_SIZE - w->buf_fill;
		size_t n = len < room ? (size_t)len : room;
		int err;

		if (p) {
			memcpy(w->buf + w->buf_fill, p, n);
			p += n;
		} else {
			memset(w->buf + w->buf_fill, 0, n);
		}
		w->buf_fill += n;
		w->out_pos += n;
		len -= n;
		if (w->buf_fill == WRITER_BUF_SIZE) {
			err = out_flush(w);
			if (err)
				return err;
		}
	}
	return 0;
}

static int out_write(struct erofs_writer *w, const void *data, size_t len)
{
	return out_append(w, data, len);
}

static int out_zeros(struct erofs_writer *w, uint64_t len)
{
	return out_append(w, NULL, len);
}

static int out_pad_to(struct erofs_writer *w, uint64_t offset)
{
	if (offset < w->out_pos)
		return oc_err(OCICACHE_ERROR, "%s: layout overlap at %llu",
			      w->name, (unsigned long long)offset);
	return out_zeros(w, offset - w->out_pos);
}

/* Nodes and the name table */

static struct erofs_node *node_new(struct erofs_writer *w,
				   const struct erofs_node_attr *attr)
{
	struct erofs_node *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->attr = *attr;
	n->attr.symlink = NULL;
	if (attr->symlink) {
		n->attr.symlink = strdup(attr->symlink);
		if (!n->attr.symlink) {
			free(n);
			return NULL;
		}
		n->attr.size = strlen(attr->symlink);
	}
	n->serial = w->serial++;
	n->all_next = w->all_nodes;
	w->all_nodes = n;
	return n;
}

static void xattrs_clear(struct erofs_node *n)
{
	for (uint32_t i = 0; i < n->xattr_count; i++)
		free(n->xattrs[i].data);
	n->xattr_count = 0;
}

static void node_free(struct erofs_node *n)
{
	xattrs_clear(n);
	free(n->xattrs);
	free((char *)n->attr.symlink);
	free(n->children);
	if (n->dir) {
		free(n->dir->entries);
		free(n->dir->piece_start);
		free(n->dir);
	}
	free(n);
}

static uint64_t name_hash(const struct erofs_node *parent, const char *name,
			  size_t len)
{
	uint64_t h =
	    0xcbf29ce484222325ull ^ (parent->serial * 0x9e3779b97f4a7c15ull);

	for (size_t i = 0; i < len; i++) {
		h ^= (uint8_t)name[i];
		h *= 0x100000001b3ull;
	}
	return h ^ (h >> 29);
}

static struct erofs_dentry *dentry_find(struct erofs_writer *w,
					const struct erofs_node *parent,
					const char *name, size_t len)
{
	uint64_t h = name_hash(parent, name, len);
	size_t mask = w->slot_cap - 1;

	for (size_t i = h & mask;; i = (i + 1) & mask) {
		struct erofs_dentry *d = w->slots[i];

		if (!d)
			return NULL;
		if (d->hash == h && d->parent == parent && d->name_len == len &&
		    memcmp(d->name, name, len) == 0)
			return d;
	}
}

static void slots_place(struct erofs_dentry **slots, size_t cap,
			struct erofs_dentry *d)
{
	size_t mask = cap - 1;
	size_t i = d->hash & mask;

	while (slots[i])
		i = (i + 1) & mask;
	slots[i] = d;
}

static int slots_grow(struct erofs_writer *w)
{
	size_t cap = w->slot_cap * 2;
	struct erofs_dentry **slots = calloc(cap, sizeof(*slots));

	if (!slots)
		return oc_err(OCICACHE_ENOMEM, "%s: name table", w->name);
	for (size_t i = 0; i < w->slot_cap; i++)
		if (w->slots[i])
			slots_place(slots, cap, w->slots[i]);
	free(w->slots);
	w->slots = slots;
	w->slot_cap = cap;
	return 0;
}

static int child_push(struct erofs_writer *w, struct erofs_node *dir,
		      struct erofs_dentry *d)
{
	if (dir->child_count == dir->child_cap) {
		uint32_t cap = dir->child_cap ? dir->child_cap * 2 : 8;
		void *p = realloc(dir->children, cap * sizeof(*dir->children));

		if (!p)
			return oc_err(OCICACHE_ENOMEM, "%s: directory",
				      w->name);
		dir->children = p;
		dir->child_cap = cap;
	}
	dir->children[dir->child_count++] = d;
	return 0;
}

/* Add a new name `name` in `dir` for `node`. */
static int dentry_insert(struct erofs_dentry **out, struct erofs_writer *w,
			 struct erofs_node *dir, const char *name, size_t len,
			 struct erofs_node *node)
{
	struct erofs_dentry *d;
	int err;

	if ((w->slot_used + 1) * 2 > w->slot_cap) {
		err = slots_grow(w);
		if (err)
			return err;
	}
	d = malloc(sizeof(*d) + len + 1);
	if (!d)
		return oc_err(OCICACHE_ENOMEM, "%s: directory entry", w->name);
	d->parent = dir;
	d->node = node;
	d->hash = name_hash(dir, name, len);
	d->name_len = (uint16_t)len;
	memcpy(d->name, name, len);
	d->name[len] = '\0';

	err = child_push(w, dir, d);
	if (err) {
		free(d);
		return err;
	}
	slots_place(w->slots, w->slot_cap, d);
	w->slot_used++;
	if (S_ISDIR(node->attr.mode)) {
		node->parent = dir;
		node->self = d;
	}
	if (out)
		*out = d;
	return 0;
}

static int implied_dir_new(struct erofs_node **out, struct erofs_writer *w,
			   struct erofs_node *parent, const char *name,
			   size_t len, int64_t mtime, uint32_t nsec)
{
	struct erofs_node_attr attr = {
	    .mode = S_IFDIR | 0755,
	    .mtime = mtime,
	    .mtime_nsec = nsec,
	};
	struct erofs_node *n = node_new(w, &attr);

	if (!n)
		return oc_err(OCICACHE_ENOMEM, "%s: directory", w->name);
	n->implied = true;
	*out = n;
	return dentry_insert(NULL, w, parent, name, len, n);
}

/* Point the existing name `d` at `node`; what it named before is no longer
 * reachable through it (a replaced directory takes its subtree along). */
static void dentry_set_node(struct erofs_dentry *d, struct erofs_node *node)
{
	d->node = node;
	if (S_ISDIR(node->attr.mode)) {
		node->parent = d->parent;
		node->self = d;
	}
}

/*
 * A whiteout hides what lower layers have at its name, never what its own
 * layer has (OCI image spec). So a directory that meets a whiteout of the
 * same name in one layer holds this layer's entries and nothing from below:
 * it becomes opaque, whichever of the two came first.
 */
static int whiteout_to_dir(struct erofs_node **out, struct erofs_writer *w,
			   struct erofs_dentry *d, int64_t mtime, uint32_t nsec)
{
	struct erofs_node_attr attr = {
	    .mode = S_IFDIR | 0755,
	    .mtime = mtime,
	    .mtime_nsec = nsec,
	};
	struct erofs_node *n = node_new(w, &attr);

	if (!n)
		return oc_err(OCICACHE_ENOMEM, "%s: directory", w->name);
	n->implied = true;
	n->opaque = true;
	dentry_set_node(d, n);
	*out = n;
	return 0;
}

/* The root has no entry of its own until the tar gives one; until then it
 * takes the time of the first entry, as any implied directory does. */
static void root_touch(struct erofs_writer *w, int64_t mtime, uint32_t nsec)
{
	if (w->root_time_set)
		return;
	w->root_time_set = true;
	if (w->root->implied) {
		w->root->attr.mtime = mtime;
		w->root->attr.mtime_nsec = nsec;
	}
}

/*
 * Walk `path` to the directory holding its last component, creating
 * implied directories when `create`. `*base` is the last component.
 * `*dir_out` is NULL when a parent is missing and !create.
 */
static int resolve_parent(struct erofs_node **dir_out, const char **base,
			  struct erofs_writer *w, const char *path, bool create,
			  int64_t mtime, uint32_t nsec)
{
	struct erofs_node *cur = w->root;
	const char *p = path;
	const char *slash;
	int err;

	*dir_out = NULL;
	while ((slash = strchr(p, '/')) != NULL) {
		size_t len = (size_t)(slash - p);
		struct erofs_dentry *d = dentry_find(w, cur, p, len);

		if (!d && !create)
			return 0;
		if (!d) {
			err =
			    implied_dir_new(&cur, w, cur, p, len, mtime, nsec);
			if (err)
				return err;
		} else if (d->node->whiteout && create) {
			err = whiteout_to_dir(&cur, w, d, mtime, nsec);
			if (err)
				return err;
		} else if (!S_ISDIR(d->node->attr.mode)) {
			return oc_err(OCICACHE_EFORMAT,
				      "%s: entry %s: parent %.*s is not a "
				      "directory",
				      w->name, path, (int)(slash - path), path);
		} else {
			cur = d->node;
		}
		p = slash + 1;
	}
	*dir_out = cur;
	*base = p;
	return 0;
}

/* Public building calls */

int erofs_writer_new(struct erofs_writer **out, int fd, const char *name)
{
	struct erofs_node_attr root_attr = {.mode = S_IFDIR | 0755};
	struct erofs_writer *w;

	*out = NULL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return oc_err(OCICACHE_ENOMEM, "%s: writer", name);
	w->fd = fd;
	w->direct_fd = open_direct(fd);
	w->name = strdup(name);
	/* O_DIRECT wants block-aligned memory. */
	if (posix_memalign((void **)&w->buf, EROFS_BLKSZ, WRITER_BUF_SIZE))
		w->buf = NULL;
	if (posix_memalign((void **)&w->spare, EROFS_BLKSZ, WRITER_BUF_SIZE))
		w->spare = NULL;
	w->slot_cap = 1024;
	w->slots = calloc(w->slot_cap, sizeof(*w->slots));
	if (!w->name || !w->buf || !w->spare || !w->slots)
		goto nomem;
	pthread_mutex_init(&w->flush.lock, NULL);
	pthread_cond_init(&w->flush.cond, NULL);
	if (pthread_create(&w->flush.thread, NULL, flusher_main, w)) {
		pthread_mutex_destroy(&w->flush.lock);
		pthread_cond_destroy(&w->flush.cond);
		goto nomem;
	}
	w->flush.running = true;
	w->root = node_new(w, &root_attr);
	if (!w->root)
		goto nomem;
	w->root->implied = true;
	w->root->parent = w->root;

	/* Block 0 holds the superblock, written last; data starts at 1. */
	w->out_pos = EROFS_BLKSZ;
	w->next_blk = 1;
	*out = w;
	return 0;

nomem:
	erofs_writer_free(w);
	return oc_err(OCICACHE_ENOMEM, "%s: writer", name);
}

void erofs_writer_free(struct erofs_writer *w)
{
	struct erofs_node *n, *next;

	if (!w)
		return;
	for (size_t i = 0; i < w->slot_cap; i++)
		free(w->slots ? w->slots[i] : NULL);
	for (n = w->all_nodes; n; n = next) {
		next = n->all_next;
		node_free(n);
	}
	if (w->flush.running) {
		pthread_mutex_lock(&w->flush.lock);
		w->flush.stop = true;
		pthread_cond_broadcast(&w->flush.cond);
		pthread_mutex_unlock(&w->flush.lock);
		pthread_join(w->flush.thread, NULL);
		pthread_mutex_destroy(&w->flush.lock);
		pthread_cond_destroy(&w->flush.cond);
	}
	free(w->slots);
	free(w->order);
	free(w->shared);
	free(w->spare);
	free(w->buf);
	free(w->name);
	if (w->direct_fd >= 0)
		close(w->direct_fd);
	free(w);
}

static void dir_take_attr(struct erofs_node *dir,
			  const struct erofs_node_attr *attr)
{
	dir->attr.mode = attr->mode;
	dir->attr.uid = attr->uid;
	dir->attr.gid = attr->gid;
	dir->attr.mtime = attr->mtime;
	dir->attr.mtime_nsec = attr->mtime_nsec;
	dir->implied = false;
	xattrs_clear(dir);
}

int erofs_writer_add(struct erofs_node **out, struct erofs_writer *w,
		     const char *path, const struct erofs_node_attr *attr)
{
	struct erofs_node *dir, *node;
	struct erofs_dentry *d;
	const char *base;
	int err;

	*out = NULL;
	root_touch(w, attr->mtime, attr->mtime_nsec);
	if (!path[0]) {
		if (!S_ISDIR(attr->mode))
			return oc_err(OCICACHE_EFORMAT,
				      "%s: the root entry is not a directory",
				      w->name);
		dir_take_attr(w->root, attr);
		*out = w->root;
		return 0;
	}

	err = resolve_parent(&dir, &base, w, path, true, attr->mtime,
			     attr->mtime_nsec);
	if (err)
		return err;
	d = dentry_find(w, dir, base, strlen(base));
	if (d && S_ISDIR(d->node->attr.mode) && S_ISDIR(attr->mode)) {
		dir_take_attr(d->node, attr);
		*out = d->node;
		return 0;
	}

	node = node_new(w, attr);
	if (!node)
		return oc_err(OCICACHE_ENOMEM, "%s: entry %s", w->name, path);
	if (!d) {
		err = dentry_insert(NULL, w, dir, base, strlen(base), node);
		if (!err)
			*out = node;
		return err;
	}

	if (d->node->whiteout && S_ISDIR(attr->mode))
		node->opaque = true;
	dentry_set_node(d, node);
	*out = node;
	return 0;
}

int erofs_writer_whiteout(struct erofs_writer *w, const char *path,
			  const struct erofs_node_attr *attr)
{
	struct erofs_node_attr wattr = *attr;
	struct erofs_node *dir, *node;
	struct erofs_dentry *d;
	const char *base;
	int err;

	root_touch(w, attr->mtime, attr->mtime_nsec);
	if (!path[0])
		return oc_err(OCICACHE_EFORMAT, "%s: whiteout of the root",
			      w->name);
	err = resolve_parent(&dir, &base, w, path, true, attr->mtime,
			     attr->mtime_nsec);
	if (err)
		return err;
	d = dentry_find(w, dir, base, strlen(base));
	if (d && !d->node->whiteout) {
		if (S_ISDIR(d->node->attr.mode))
			d->node->opaque = true;
		return 0;
	}

	wattr.mode = S_IFCHR | (attr->mode & 07777);
	wattr.rdev = 0;
	wattr.size = 0;
	wattr.symlink = NULL;
	node = node_new(w, &wattr);
	if (!node)
		return oc_err(OCICACHE_ENOMEM, "%s: entry %s", w->name, path);
	node->whiteout = true;
	if (d) {
		dentry_set_node(d, node);
		return 0;
	}
	return dentry_insert(NULL, w, dir, base, strlen(base), node);
}

int erofs_writer_link(struct erofs_writer *w, const char *path,
		      const char *target, int64_t mtime, uint32_t mtime_nsec)
{
	struct erofs_node *tdir, *dir;
	struct erofs_dentry *td, *d;
	const char *tbase, *base;
	int err;

	root_touch(w, mtime, mtime_nsec);
	err = resolve_parent(&tdir, &tbase, w, target, false, 0, 0);
	if (err)
		return err;
	td = tdir && target[0] ? dentry_find(w, tdir, tbase, strlen(tbase))
			       : NULL;
	if (!td)
		return oc_err(OCICACHE_EFORMAT,
			      "%s: entry %s: hard link target %s not found",
			      w->name, path, target);
	if (S_ISDIR(td->node->attr.mode))
		return oc_err(OCICACHE_EFORMAT,
			      "%s: entry %s: hard link to directory %s",
			      w->name, path, target);
	if (td->node->whiteout)
		return oc_err(OCICACHE_EFORMAT,
			      "%s: entry %s: hard link target %s is a "
			      "whiteout, not a file",
			      w->name, path, target);
	if (!path[0])
		return oc_err(OCICACHE_EFORMAT, "%s: hard link %s at the root",
			      w->name, target);

	err = resolve_parent(&dir, &base, w, path, true, mtime, mtime_nsec);
	if (err)
		return err;
	d = dentry_find(w, dir, base, strlen(base));
	if (d) {
		dentry_set_node(d, td->node);
		return 0;
	}
	return dentry_insert(NULL, w, dir, base, strlen(base), td->node);
}

/* The dentry `path` names, or NULL (no parent is created). */
static struct erofs_dentry *dentry_at(struct erofs_writer *w, const char *path)
{
	struct erofs_node *dir;
	const char *base;

	if (!path[0] || resolve_parent(&dir, &base, w, path, false, 0, 0) ||
	    !dir)
		return NULL;
	return dentry_find(w, dir, base, strlen(base));
}

bool erofs_writer_has(struct erofs_writer *w, const char *path)
{
	return dentry_at(w, path) != NULL;
}

int erofs_writer_link_placeholder(struct erofs_node **out,
				  struct erofs_writer *w, const char *path,
				  const struct erofs_node_attr *attr)
{
	struct erofs_node_attr file = *attr;

	file.mode = S_IFREG | (attr->mode & 07777);
	file.size = 0;
	return erofs_writer_add(out, w, path, &file);
}

int erofs_writer_link_resolve(struct erofs_writer *w, const char *path,
			      struct erofs_node *placeholder,
			      const char *target)
{
	struct erofs_dentry *d = dentry_at(w, path);

	if (!d || d->node != placeholder)
		return 0;
	return erofs_writer_link(w, path, target, placeholder->attr.mtime,
				 placeholder->attr.mtime_nsec);
}

int erofs_writer_set_opaque(struct erofs_writer *w, const char *path,
			    int64_t mtime, uint32_t mtime_nsec)
{
	struct erofs_node *dir, *node;
	struct erofs_dentry *d;
	const char *base;
	int err;

	root_touch(w, mtime, mtime_nsec);
	if (!path[0]) {
		w->root->opaque = true;
		return 0;
	}
	err = resolve_parent(&dir, &base, w, path, true, mtime, mtime_nsec);
	if (err)
		return err;
	d = dentry_find(w, dir, base, strlen(base));
	if (!d) {
		err = implied_dir_new(&node, w, dir, base, strlen(base), mtime,
				      mtime_nsec);
		if (err)
			return err;
	} else if (d->node->whiteout) {
		err = whiteout_to_dir(&node, w, d, mtime, mtime_nsec);
		if (err)
			return err;
	} else if (!S_ISDIR(d->node->attr.mode)) {
		return oc_err(OCICACHE_EFORMAT,
			      "%s: opaque marker in %s, which is not a "
			      "directory",
			      w->name, path);
	} else {
		node = d->node;
	}
	node->opaque = true;
	return 0;
}

int erofs_writer_set_xattr(struct erofs_writer *w, struct erofs_node *node,
			   uint8_t index, const char *suffix, const void *value,
			   size_t value_len)
{
	size_t name_len = strlen(suffix);
	struct xattr_item *x = NULL;
	char *data;

	if (name_len > EROFS_NAME_LEN || value_len > UINT16_MAX)
		return oc_err(OCICACHE_EFORMAT,
			      "%s: xattr %s: name or value too long", w->name,
			      suffix);
	data = malloc(name_len + value_len + 1);
	if (!data)
		return oc_err(OCICACHE_ENOMEM, "%s: xattr", w->name);
	memcpy(data, suffix, name_len);
	if (value_len)
		memcpy(data + name_len, value, value_len);

	for (uint32_t i = 0; i < node->xattr_count; i++) {
		struct xattr_item *it = &node->xattrs[i];

		if (it->index == index && it->name_len == name_len &&
		    memcmp(it->data, suffix, name_len) == 0) {
			free(it->data);
			x = it;
			break;
		}
	}
	if (!x) {
		if (node->xattr_count == node->xattr_cap) {
			uint32_t cap =
			    node->xattr_cap ? node->xattr_cap * 2 : 4;
			void *p = realloc(node->xattrs, cap * sizeof(*x));

			if (!p) {
				free(data);
				return oc_err(OCICACHE_ENOMEM, "%s: xattr",
					      w->name);
			}
			node->xattrs = p;
			node->xattr_cap = cap;
		}
		x = &node->xattrs[node->xattr_count++];
	}
	x->index = index;
	x->name_len = (uint8_t)name_len;
	x->value_len = (uint16_t)value_len;
	x->data = data;
	return 0;
}

/* File data */

int erofs_writer_data_begin(struct erofs_writer *w, struct erofs_node *node)
{
	uint64_t blocks = round_up(node->attr.size, EROFS_BLKSZ) / EROFS_BLKSZ;

	if (!S_ISREG(node->attr.mode))
		return oc_err(OCICACHE_ERROR, "%s: data for a non-file",
			      w->name);
	/* Leave room below 2^32 blocks for the metadata that follows. */
	if (w->next_blk + blocks > UINT32_MAX / 2)
		return oc_err(OCICACHE_EUNSUPPORTED,
			      "%s: image would exceed %u blocks", w->name,
			      UINT32_MAX / 2);
	node->blkaddr = blocks ? (uint32_t)w->next_blk : 0;
	w->data_node = node;
	w->data_written = 0;
	return 0;
}

static int data_check_room(struct erofs_writer *w, uint64_t len)
{
	if (!w->data_node)
		return oc_err(OCICACHE_ERROR, "%s: data outside a file",
			      w->name);
	if (len > w->data_node->attr.size - w->data_written)
		return oc_err(OCICACHE_EFORMAT,
			      "more file data than the entry's size %llu",
			      (unsigned long long)w->data_node->attr.size);
	w->data_written += len;
	return 0;
}

int erofs_writer_data_append(struct erofs_writer *w, const void *data,
			     size_t len)
{
	int err = data_check_room(w, len);

	return err ? err : out_write(w, data, len);
}

int erofs_writer_data_zeros(struct erofs_writer *w, uint64_t len)
{
	int err = data_check_room(w, len);

	return err ? err : out_zeros(w, len);
}

int erofs_writer_data_end(struct erofs_writer *w)
{
	struct erofs_node *n = w->data_node;
	uint64_t end;
	int err;

	if (!n)
		return oc_err(OCICACHE_ERROR, "%s: no file data started",
			      w->name);
	if (w->data_written != n->attr.size)
		return oc_err(OCICACHE_EFORMAT,
			      "file data ends after %llu of %llu bytes",
			      (unsigned long long)w->data_written,
			      (unsigned long long)n->attr.size);
	end = round_up(w->out_pos, EROFS_BLKSZ);
	err = out_pad_to(w, end);
	if (err)
		return err;
	w->next_blk = end / EROFS_BLKSZ;
	w->data_node = NULL;
	return 0;
}

/* Layout: inode order, directory contents, times, offsets */

static int dir_entry_cmp(const void *pa, const void *pb)
{
	const struct dir_entry *a = pa, *b = pb;

	return erofs_name_cmp(a->name, a->name_len, b->name, b->name_len);
}

static int order_push(struct erofs_writer *w, struct erofs_node *n, size_t *cap)
{
	if (w->order_count == *cap) {
		size_t ncap = *cap ? *cap * 2 : 1024;
		void *p = realloc(w->order, ncap * sizeof(*w->order));

		if (!p)
			return oc_err(OCICACHE_ENOMEM, "%s: inode list",
				      w->name);
		w->order = p;
		*cap = ncap;
	}
	n->listed = true;
	w->order[w->order_count++] = n;
	return 0;
}

/* Sorted entries of `dir` and their split into block-sized pieces. */
static int dir_build(struct erofs_writer *w, struct erofs_node *dir)
{
	struct dir_layout *dl = calloc(1, sizeof(*dl));
	uint32_t used = 0;

	if (!dl)
		return oc_err(OCICACHE_ENOMEM, "%s: directory", w->name);
	dir->dir = dl;
	dl->count = dir->child_count + 2;
	dl->entries = malloc(dl->count * sizeof(*dl->entries));
	dl->piece_start = malloc(dl->count * sizeof(*dl->piece_start));
	if (!dl->entries || !dl->piece_start)
		return oc_err(OCICACHE_ENOMEM, "%s: directory", w->name);

	dl->entries[0] = (struct dir_entry){".", 1, dir};
	dl->entries[1] = (struct dir_entry){"..", 2, dir->parent};
	for (uint32_t i = 0; i < dir->child_count; i++) {
		struct erofs_dentry *d = dir->children[i];

		dl->entries[i + 2] =
		    (struct dir_entry){d->name, d->name_len, d->node};
	}
	qsort(dl->entries, dl->count, sizeof(*dl->entries), dir_entry_cmp);

	dl->piece_start[0] = 0;
	dl->pieces = 1;
	for (uint32_t i = 0; i < dl->count; i++) {
		uint32_t need =
		    sizeof(struct erofs_dirent) + dl->entries[i].name_len;

		if (used + need > EROFS_BLKSZ) {
			dl->piece_start[dl->pieces++] = i;
			used = 0;
		}
		used += need;
	}
	dl->last_used = used;
	dir->attr.size = (uint64_t)(dl->pieces - 1) * EROFS_BLKSZ + used;
	return 0;
}

/* Breadth first from the root: every reachable inode once, with names
 * counted for nlink. Children are visited in name order, so the order
 * depends on the tree alone. */
static int layout_order(struct erofs_writer *w)
{
	size_t cap = 0;
	int err;

	err = order_push(w, w->root, &cap);
	if (err)
		return err;
	for (size_t i = 0; i < w->order_count; i++) {
		struct erofs_node *dir = w->order[i];
		uint32_t subdirs = 0;

		if (!S_ISDIR(dir->attr.mode))
			continue;
		err = dir_build(w, dir);
		if (err)
			return err;
		for (uint32_t k = 0; k < dir->dir->count; k++) {
			struct dir_entry *e = &dir->dir->entries[k];

			/* The caller never names a child "." or "..". */
			if (e->name[0] == '.' &&
			    (e->name_len == 1 ||
			     (e->name_len == 2 && e->name[1] == '.')))
				continue;
			if (S_ISDIR(e->node->attr.mode))
				subdirs++;
			else
				e->node->nlink++;
			if (!e->node->listed) {
				err = order_push(w, e->node, &cap);
				if (err)
					return err;
			}
		}
		dir->nlink = 2 + subdirs;
	}
	return 0;
}

struct time_pair {
	int64_t sec;
	uint32_t nsec;
};

static int time_cmp(const void *pa, const void *pb)
{
	const struct time_pair *a = pa, *b = pb;

	if (a->sec != b->sec)
		return a->sec < b->sec ? -1 : 1;
	return a->nsec < b->nsec ? -1 : a->nsec > b->nsec;
}

/*
 * The superblock's build time is the mtime of every compact inode, so the
 * most common mtime (the newest of equally common ones) lets the most
 * inodes stay compact. It comes from the entries, never from the clock.
 */
static int layout_build_time(struct erofs_writer *w)
{
	struct time_pair *t = malloc(w->order_count * sizeof(*t));
	size_t best = 0, best_len = 0;

	if (!t)
		return oc_err(OCICACHE_ENOMEM, "%s: times", w->name);
	for (size_t i = 0; i < w->order_count; i++)
		t[i] = (struct time_pair){w->order[i]->attr.mtime,
					  w->order[i]->attr.mtime_nsec};
	qsort(t, w->order_count, sizeof(*t), time_cmp);
	for (size_t i = 0; i < w->order_count;) {
		size_t j = i;

		while (j < w->order_count && time_cmp(&t[i], &t[j]) == 0)
			j++;
		if (j - i >= best_len) {
			best = i;
			best_len = j - i;
		}
		i = j;
	}
	w->build_time = t[best].sec;
	w->build_nsec = t[best].nsec;
	free(t);
	return 0;
}

static int xattr_cmp(const void *pa, const void *pb)
{
	const struct xattr_item *a = pa, *b = pb;

	if (a->index != b->index)
		return a->index < b->index ? -1 : 1;
	return erofs_name_cmp(a->data, a->name_len, b->data, b->name_len);
}

static uint32_t xattr_entry_size(const struct xattr_item *x)
{
	return (uint32_t)round_up(
	    sizeof(struct erofs_xattr_entry) + x->name_len + x->value_len, 4);
}

static uint64_t xattr_hash(const struct xattr_item *x)
{
	uint64_t h = 0xcbf29ce484222325ull ^ x->index;
	size_t len = (size_t)x->name_len + x->value_len;

	for (size_t i = 0; i < len; i++) {
		h ^= (uint8_t)x->data[i];
		h *= 0x100000001b3ull;
	}
	return (h ^ (h >> 31)) ^ len;
}

static bool xattr_same(const struct xattr_item *a, const struct xattr_item *b)
{
	return a->hash == b->hash && a->index == b->index &&
	       a->name_len == b->name_len && a->value_len == b->value_len &&
	       memcmp(a->data, b->data, a->name_len + a->value_len) == 0;
}

/* Opaque markers become xattrs, and every xattr is hashed for sharing. */
static int layout_xattr_prepare(struct erofs_writer *w, size_t *total)
{
	int err;

	*total = 0;
	for (size_t i = 0; i < w->order_count; i++) {
		struct erofs_node *n = w->order[i];

		if (n->opaque) {
			err = erofs_writer_set_xattr(w, n,
						     EROFS_XATTR_INDEX_TRUSTED,
						     "overlay.opaque", "y", 1);
			if (err)
				return err;
		}
		if (n->xattr_count > 1)
			qsort(n->xattrs, n->xattr_count, sizeof(*n->xattrs),
			      xattr_cmp);
		for (uint32_t k = 0; k < n->xattr_count; k++) {
			n->xattrs[k].hash = xattr_hash(&n->xattrs[k]);
			n->xattrs[k].shared_id = XATTR_INLINE;
		}
		*total += n->xattr_count;
	}
	return 0;
}

struct xattr_slot {
	struct xattr_item *first; /* the first inode's copy, in inode order */
	uint32_t uses;
};

static struct xattr_slot *xattr_slot_find(struct xattr_slot *slots, size_t mask,
					  const struct xattr_item *x)
{
	for (size_t i = x->hash & mask;; i = (i + 1) & mask)
		if (!slots[i].first || xattr_same(slots[i].first, x))
			return &slots[i];
}

/* Whether `uses` inodes save space by pointing at one shared copy (a 4-byte
 * id each) instead of holding the entry inline. */
static bool xattr_worth_sharing(const struct xattr_item *x, uint32_t uses)
{
	uint64_t size = xattr_entry_size(x);

	return uses >= 2 && size * uses > size + 4ull * uses;
}

/* Give an id to each xattr that is worth sharing: byte offset / 4 in the
 * shared area. No entry crosses a block boundary, for the readers' sake. */
static int shared_assign(struct erofs_writer *w, struct xattr_item *first)
{
	uint64_t size = xattr_entry_size(first);
	uint64_t off = w->shared_bytes;

	if (off / EROFS_BLKSZ != (off + size - 1) / EROFS_BLKSZ)
		off = round_up(off, EROFS_BLKSZ);
	if (off / 4 >= XATTR_INLINE)
		return 0;
	if (w->shared_count % 256 == 0) {
		void *p = realloc(w->shared,
				  (w->shared_count + 256) * sizeof(*w->shared));

		if (!p)
			return oc_err(OCICACHE_ENOMEM, "%s: shared xattrs",
				      w->name);
		w->shared = p;
	}
	w->shared[w->shared_count++] = first;
	first->shared_id = (uint32_t)(off / 4);
	w->shared_bytes = off + size;
	return 0;
}

/*
 * Xattrs that several inodes carry identically (the same capability on
 * many binaries, the same SELinux label on a whole tree) are stored once in
 * the shared area and named by id in each inode.
 */
static int layout_shared_xattrs(struct erofs_writer *w)
{
	struct xattr_slot *slots;
	size_t total, cap = 16, mask;
	int err;

	err = layout_xattr_prepare(w, &total);
	if (err || !total)
		return err;
	while (cap < total * 2)
		cap *= 2;
	mask = cap - 1;
	slots = calloc(cap, sizeof(*slots));
	if (!slots)
		return oc_err(OCICACHE_ENOMEM, "%s: xattr table", w->name);

	for (size_t i = 0; i < w->order_count; i++) {
		struct erofs_node *n = w->order[i];

		for (uint32_t k = 0; k < n->xattr_count; k++) {
			struct xattr_slot *s =
			    xattr_slot_find(slots, mask, &n->xattrs[k]);

			if (!s->first)
				s->first = &n->xattrs[k];
			s->uses++;
		}
	}
	for (size_t i = 0; !err && i < w->order_count; i++) {
		struct erofs_node *n = w->order[i];

		for (uint32_t k = 0; !err && k < n->xattr_count; k++) {
			struct xattr_item *x = &n->xattrs[k];
			struct xattr_slot *s = xattr_slot_find(slots, mask, x);

			if (!xattr_worth_sharing(x, s->uses))
				continue;
			if (s->first == x)
				err = shared_assign(w, x);
			if (!err && n->xattr_shared < XATTR_SHARED_PER_INODE &&
			    s->first->shared_id != XATTR_INLINE) {
				x->shared_id = s->first->shared_id;
				n->xattr_shared++;
			}
		}
	}
	free(slots);
	return err;
}

static int layout_xattrs(struct erofs_writer *w, struct erofs_node *n)
{
	uint64_t body = sizeof(struct erofs_xattr_ibody_header);

	if (!n->xattr_count)
		return 0;
	for (uint32_t i = 0; i < n->xattr_count; i++)
		body += n->xattrs[i].shared_id != XATTR_INLINE
			    ? 4
			    : xattr_entry_size(&n->xattrs[i]);
	if ((body - sizeof(struct erofs_xattr_ibody_header)) / 4 + 1 >
	    UINT16_MAX)
		return oc_err(OCICACHE_EFORMAT,
			      "%s: an inode has %llu bytes of xattrs, more "
			      "than EROFS can hold inline",
			      w->name, (unsigned long long)body);
	n->xattr_icount = (uint16_t)((body - 12) / 4 + 1);
	return 0;
}

static bool needs_extended(const struct erofs_writer *w,
			   const struct erofs_node *n)
{
	return n->attr.uid > UINT16_MAX || n->attr.gid > UINT16_MAX ||
	       n->nlink > UINT16_MAX || n->attr.size > UINT32_MAX ||
	       n->attr.mtime != w->build_time ||
	       n->attr.mtime_nsec != w->build_nsec;
}

/*
 * Give each inode its place in the inode area (relative to meta_blkaddr)
 * and decide how directories and symlinks store their data: a tail that
 * fits in the block after the inode is inline, else whole blocks. Returns
 * the inode area's size in `*area_out` and the blocks needed outside it
 * in `*full_out`.
 */
static int layout_offsets(uint64_t *area_out, uint64_t *full_out,
			  struct erofs_writer *w)
{
	uint64_t off = WRITER_ROOT_NID << EROFS_ISLOT_BITS;
	uint64_t full_total = 0;
	int err;

	for (size_t i = 0; i < w->order_count; i++) {
		struct erofs_node *n = w->order[i];
		uint64_t head, tail = 0;

		err = layout_xattrs(w, n);
		if (err)
			return err;
		n->extended = needs_extended(w, n);
		head = (n->extended ? sizeof(struct erofs_inode_extended)
				    : sizeof(struct erofs_inode_compact)) +
		       erofs_xattr_ibody_size(n->xattr_icount);
		n->datalayout = EROFS_INODE_FLAT_PLAIN;
		n->full_blocks = 0;

		if (S_ISDIR(n->attr.mode) || S_ISLNK(n->attr.mode)) {
			uint64_t size = n->attr.size;

			tail = size % EROFS_BLKSZ;
			if (tail && head + tail <= EROFS_BLKSZ) {
				n->datalayout = EROFS_INODE_FLAT_INLINE;
				n->full_blocks = size / EROFS_BLKSZ;
				if ((off + head) % EROFS_BLKSZ + tail >
				    EROFS_BLKSZ)
					off = round_up(off, EROFS_BLKSZ);
			} else {
				tail = 0;
				n->full_blocks =
				    round_up(size, EROFS_BLKSZ) / EROFS_BLKSZ;
			}
			full_total += n->full_blocks;
		}
		n->nid = off >> EROFS_ISLOT_BITS;
		off = round_up(off + head + tail, 1u << EROFS_ISLOT_BITS);
	}
	*area_out = off;
	*full_out = full_total;
	return 0;
}

/* Writing the metadata */

static int write_xattr_entry(struct erofs_writer *w, const struct xattr_item *x)
{
	static const char zeros[4];
	struct erofs_xattr_entry e = {
	    .e_name_len = x->name_len,
	    .e_name_index = x->index,
	    .e_value_size = htole16(x->value_len),
	};
	uint32_t len = x->name_len + x->value_len;
	int err;

	err = out_write(w, &e, sizeof(e));
	if (!err)
		err = out_write(w, x->data, len);
	if (!err)
		err =
		    out_write(w, zeros, xattr_entry_size(x) - sizeof(e) - len);
	return err;
}

static int write_xattrs(struct erofs_writer *w, const struct erofs_node *n)
{
	struct erofs_xattr_ibody_header hdr = {
	    .h_shared_count = n->xattr_shared,
	};
	int err;

	if (!n->xattr_icount)
		return 0;
	err = out_write(w, &hdr, sizeof(hdr));
	for (uint32_t i = 0; !err && i < n->xattr_count; i++) {
		uint32_t id = htole32(n->xattrs[i].shared_id);

		if (n->xattrs[i].shared_id != XATTR_INLINE)
			err = out_write(w, &id, sizeof(id));
	}
	for (uint32_t i = 0; !err && i < n->xattr_count; i++) {
		if (n->xattrs[i].shared_id == XATTR_INLINE)
			err = write_xattr_entry(w, &n->xattrs[i]);
	}
	return err;
}

static int write_shared_xattrs(struct erofs_writer *w)
{
	int err = 0;

	for (size_t i = 0; !err && i < w->shared_count; i++) {
		const struct xattr_item *x = w->shared[i];

		err = out_pad_to(w, w->xattr_blkaddr * EROFS_BLKSZ +
					x->shared_id * 4ull);
		if (!err)
			err = write_xattr_entry(w, x);
	}
	if (!err)
		err = out_pad_to(w, round_up(w->out_pos, EROFS_BLKSZ));
	return err;
}

static uint32_t inode_i_u(const struct erofs_node *n)
{
	switch (n->attr.mode & S_IFMT) {
	case S_IFCHR:
	case S_IFBLK:
		return n->attr.rdev;
	case S_IFREG:
	case S_IFDIR:
	case S_IFLNK:
		return n->blkaddr;
	default:
		return 0;
	}
}

static int write_inode(struct erofs_writer *w, const struct erofs_node *n,
		       uint32_t ino)
{
	uint64_t size = S_ISREG(n->attr.mode) || S_ISDIR(n->attr.mode) ||
				S_ISLNK(n->attr.mode)
			    ? n->attr.size
			    : 0;

	if (n->extended) {
		struct erofs_inode_extended e = {
		    .i_format = htole16(erofs_i_format(
			EROFS_INODE_LAYOUT_EXTENDED, n->datalayout)),
		    .i_xattr_icount = htole16(n->xattr_icount),
		    .i_mode = htole16((uint16_t)n->attr.mode),
		    .i_size = htole64(size),
		    .i_u = htole32(inode_i_u(n)),
		    .i_ino = htole32(ino),
		    .i_uid = htole32(n->attr.uid),
		    .i_gid = htole32(n->attr.gid),
		    .i_mtime = htole64((uint64_t)n->attr.mtime),
		    .i_mtime_nsec = htole32(n->attr.mtime_nsec),
		    .i_nlink = htole32(n->nlink),
		};

		return out_write(w, &e, sizeof(e));
	}

	struct erofs_inode_compact c = {
	    .i_format = htole16(
		erofs_i_format(EROFS_INODE_LAYOUT_COMPACT, n->datalayout)),
	    .i_xattr_icount = htole16(n->xattr_icount),
	    .i_mode = htole16((uint16_t)n->attr.mode),
	    .i_nlink = htole16((uint16_t)n->nlink),
	    .i_size = htole32((uint32_t)size),
	    .i_u = htole32(inode_i_u(n)),
	    .i_ino = htole32(ino),
	    .i_uid = htole16((uint16_t)n->attr.uid),
	    .i_gid = htole16((uint16_t)n->attr.gid),
	};

	return out_write(w, &c, sizeof(c));
}

/* Directory piece `k` of `dir`: whole block, or exactly its bytes for an
 * inline tail. */
static int write_dir_piece(struct erofs_writer *w, const struct erofs_node *dir,
			   uint32_t k, bool whole_block)
{
	const struct dir_layout *dl = dir->dir;
	uint32_t first = dl->piece_start[k];
	uint32_t end = k + 1 < dl->pieces ? dl->piece_start[k + 1] : dl->count;
	char block[EROFS_BLKSZ];
	uint32_t nameoff = (end - first) * sizeof(struct erofs_dirent);
	uint32_t pos = 0;

	memset(block, 0, sizeof(block));
	for (uint32_t i = first; i < end; i++) {
		const struct dir_entry *e = &dl->entries[i];
		struct erofs_dirent de = {
		    .nid = htole64(e->node->nid),
		    .nameoff = htole16((uint16_t)nameoff),
		    .file_type = erofs_file_type(e->node->attr.mode),
		};

		memcpy(block + pos, &de, sizeof(de));
		memcpy(block + nameoff, e->name, e->name_len);
		pos += sizeof(de);
		nameoff += e->name_len;
	}
	return out_write(w, block, whole_block ? EROFS_BLKSZ : nameoff);
}

static int write_tail(struct erofs_writer *w, const struct erofs_node *n)
{
	if (n->datalayout != EROFS_INODE_FLAT_INLINE)
		return 0;
	if (S_ISDIR(n->attr.mode))
		return write_dir_piece(w, n, n->dir->pieces - 1, false);
	return out_write(w, n->attr.symlink + n->full_blocks * EROFS_BLKSZ,
			 n->attr.size % EROFS_BLKSZ);
}

static int write_full_blocks(struct erofs_writer *w, const struct erofs_node *n)
{
	int err = 0;

	if (S_ISDIR(n->attr.mode)) {
		for (uint32_t k = 0; !err && k < n->full_blocks; k++)
			err = write_dir_piece(w, n, k, true);
		return err;
	}
	if (!n->full_blocks)
		return 0;
	/* A symlink with whole blocks: the target, zero-padded. */
	err = out_write(w, n->attr.symlink,
			n->datalayout == EROFS_INODE_FLAT_INLINE
			    ? n->full_blocks * EROFS_BLKSZ
			    : n->attr.size);
	if (!err)
		err = out_pad_to(w, round_up(w->out_pos, EROFS_BLKSZ));
	return err;
}

static int write_metadata(struct erofs_writer *w, uint64_t area)
{
	uint64_t meta_start = w->meta_blkaddr * EROFS_BLKSZ;
	int err;

	for (size_t i = 0; i < w->order_count; i++) {
		const struct erofs_node *n = w->order[i];

		err = out_pad_to(w, meta_start + (n->nid << EROFS_ISLOT_BITS));
		if (!err)
			err = write_inode(w, n, (uint32_t)(i + 1));
		if (!err)
			err = write_xattrs(w, n);
		if (!err)
			err = write_tail(w, n);
		if (err)
			return err;
	}
	err = out_pad_to(w, meta_start + round_up(area, EROFS_BLKSZ));
	for (size_t i = 0; !err && i < w->order_count; i++)
		err = write_full_blocks(w, w->order[i]);
	if (!err)
		err = out_flush(w);
	if (!err)
		err = flusher_wait(w);
	return err;
}

static int write_superblock(struct erofs_writer *w, const uint8_t uuid[16],
			    uint64_t blocks)
{
	char block[EROFS_BLKSZ];
	struct erofs_super_block sb = {
	    .magic = htole32(EROFS_MAGIC),
	    .feature_compat = htole32(EROFS_FEATURE_COMPAT_SB_CHKSUM),
	    .blkszbits = EROFS_BLKSZ_BITS,
	    .root_nid = htole16((uint16_t)w->root->nid),
	    .inos = htole64(w->order_count),
	    .build_time = htole64((uint64_t)w->build_time),
	    .build_time_nsec = htole32(w->build_nsec),
	    .blocks = htole32((uint32_t)blocks),
	    .meta_blkaddr = htole32((uint32_t)w->meta_blkaddr),
	    .xattr_blkaddr = htole32((uint32_t)w->xattr_blkaddr),
	};
	uint32_t crc;

	memcpy(sb.uuid, uuid, sizeof(sb.uuid));
	memset(block, 0, sizeof(block));
	memcpy(block + EROFS_SUPER_OFFSET, &sb, sizeof(sb));

	crc = erofs_super_checksum((const uint8_t *)block);
	sb.checksum = htole32(crc);
	memcpy(block + EROFS_SUPER_OFFSET, &sb, sizeof(sb));
	return file_pwrite_all(w->fd, block, sizeof(block), 0, w->name);
}

int erofs_writer_finish(uint64_t *blocks_out, struct erofs_writer *w,
			const uint8_t uuid[16])
{
	uint64_t area, full, blk;
	int err;

	*blocks_out = 0;
	if (w->data_node)
		return oc_err(OCICACHE_ERROR, "%s: file data left open",
			      w->name);
	err = layout_order(w);
	if (!err)
		err = layout_build_time(w);
	if (!err)
		err = layout_shared_xattrs(w);
	if (!err)
		err = layout_offsets(&area, &full, w);
	if (err)
		return err;

	w->xattr_blkaddr = w->shared_count ? w->next_blk : 0;
	w->meta_blkaddr =
	    w->next_blk + round_up(w->shared_bytes, EROFS_BLKSZ) / EROFS_BLKSZ;
	blk = w->meta_blkaddr + round_up(area, EROFS_BLKSZ) / EROFS_BLKSZ;
	if (blk + full > UINT32_MAX)
		return oc_err(OCICACHE_EUNSUPPORTED,
			      "%s: image would exceed 2^32 blocks", w->name);
	for (size_t i = 0; i < w->order_count; i++) {
		struct erofs_node *n = w->order[i];

		if (S_ISDIR(n->attr.mode) || S_ISLNK(n->attr.mode)) {
			n->blkaddr = n->full_blocks ? (uint32_t)blk : 0;
			blk += n->full_blocks;
		}
	}

	err = write_shared_xattrs(w);
	if (!err)
		err = write_metadata(w, area);
	if (!err)
		err = write_superblock(w, uuid, blk);
	if (err)
		return err;
	w->finished = true;
	*blocks_out = blk;
	return 0;
}

static int dir_path(char **out, const struct erofs_node *dir)
{
	size_t len = 0, pos;
	const struct erofs_node *n;
	char *p;

	for (n = dir; n->self; n = n->parent)
		len += n->self->name_len + 1;
	p = malloc(len + 1);
	if (!p)
		return OCICACHE_ENOMEM;
	pos = len ? len - 1 : 0;
	p[pos] = '\0';
	for (n = dir; n->self; n = n->parent) {
		pos -= n->self->name_len;
		memcpy(p + pos, n->self->name, n->self->name_len);
		if (pos)
			p[--pos] = '/';
	}
	*out = p;
	return 0;
}

int erofs_writer_implied_dirs(char ***out, size_t *count,
			      struct erofs_writer *w)
{
	char **list = NULL;
	size_t n = 0, cap = 0;

	*out = NULL;
	*count = 0;
	for (size_t i = 0; i < w->order_count; i++) {
		const struct erofs_node *node = w->order[i];

		if (!S_ISDIR(node->attr.mode) || !node->implied)
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			void *p = realloc(list, ncap * sizeof(*list));

			if (!p)
				goto nomem;
			list = p;
			cap = ncap;
		}
		if (dir_path(&list[n], node))
			goto nomem;
		n++;
	}
	*out = list;
	*count = n;
	return 0;

nomem:
	while (n)
		free(list[--n]);
	free(list);
	return oc_err(OCICACHE_ENOMEM, "%s: implied directories", w->name);
}
