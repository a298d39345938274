/*
 * An EROFS image builder for one layer: a tree of inodes kept in memory,
 * file data streamed to the output as it arrives, metadata written last.
 *
 * The output file is laid out as:
 *   block 0             superblock at byte 1024 (written last)
 *   blocks 1..          regular file data, each file on whole blocks
 *   xattr_blkaddr..     shared xattrs: those several inodes carry alike
 *   meta_blkaddr..      inodes (root first), xattrs, inline tails
 *   then                directory and symlink blocks that are not inline
 *
 * Paths given to the builder are already normalised by the caller: "" is
 * the root, "a/b" a path below it, with no "." or ".." components and no
 * empty ones.
 */
#ifndef OCICACHE_CONVERT_EROFS_WRITER_H
#define OCICACHE_CONVERT_EROFS_WRITER_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct erofs_writer;
struct erofs_node;

/* What a tar entry says about one inode. */
struct erofs_node_attr {
	uint32_t mode; /* S_IF* type bits and permission bits */
	uint32_t uid;
	uint32_t gid;
	int64_t mtime;
	uint32_t mtime_nsec;
	uint64_t size;	     /* regular files only */
	uint32_t rdev;	     /* devices: erofs_encode_dev() */
	const char *symlink; /* symlinks: the target, copied */
};

/*
 * Start an image written to `fd` (owned by the caller, positioned
 * anywhere: the builder writes at explicit offsets from 0). `name` labels
 * error messages. Free with erofs_writer_free().
 */
int erofs_writer_new(struct erofs_writer **out, int fd, const char *name);
void erofs_writer_free(struct erofs_writer *w);

/*
 * Create or replace the entry at `path` and return its inode in `*out`
 * (owned by the writer). Missing parents are created as implied
 * directories with mode 0755, owner 0:0 and `attr->mtime`. A directory
 * given again keeps its children and takes the new attributes; anything
 * else replaces what was there. Xattrs of the entry start empty.
 */
int erofs_writer_add(struct erofs_node **out, struct erofs_writer *w,
		     const char *path, const struct erofs_node_attr *attr);

/*
 * The whiteout `.wh.NAME` of a tar, for `path` (NAME without the prefix). A
 * whiteout hides lower layers only (OCI image spec), so when this layer
 * already has an entry at `path` the whiteout keeps it; a directory there
 * becomes opaque, since nothing from below may show through it. Otherwise
 * the name becomes a 0/0 character device with `attr`'s permissions,
 * owner and mtime; a directory or a child added there later replaces it
 * with an opaque directory, any other entry just replaces it.
 */
int erofs_writer_whiteout(struct erofs_writer *w, const char *path,
			  const struct erofs_node_attr *attr);

/* Add the name `path` for the existing non-directory at `target`: a
 * target not (yet) in the image, a directory or a whiteout is an error. */
int erofs_writer_link(struct erofs_writer *w, const char *path,
		      const char *target, int64_t mtime, uint32_t mtime_nsec);

/* Whether the image has an entry (of any kind) at `path`. */
bool erofs_writer_has(struct erofs_writer *w, const char *path);

/*
 * A hard link whose target has not come yet: an empty placeholder file
 * takes the name now (`*out`), so that a later entry of the same name
 * replaces it as usual; erofs_writer_link_resolve() points the name at the
 * target once it arrives.
 */
int erofs_writer_link_placeholder(struct erofs_node **out,
				  struct erofs_writer *w, const char *path,
				  const struct erofs_node_attr *attr);

/* Point `path` at `target` if it still names `placeholder` (a later entry
 * may have taken the name: then nothing changes). Errors as
 * erofs_writer_link(). */
int erofs_writer_link_resolve(struct erofs_writer *w, const char *path,
			      struct erofs_node *placeholder,
			      const char *target);

/* Mark the directory `path` opaque (trusted.overlay.opaque=y), creating it
 * as an implied directory if needed. */
int erofs_writer_set_opaque(struct erofs_writer *w, const char *path,
			    int64_t mtime, uint32_t mtime_nsec);

/*
 * Set the xattr `index` (EROFS_XATTR_INDEX_*) + `suffix` on `node`,
 * replacing an earlier value of the same name. The suffix is at most 255
 * bytes and the value at most 65535.
 */
int erofs_writer_set_xattr(struct erofs_writer *w, struct erofs_node *node,
			   uint8_t index, const char *suffix, const void *value,
			   size_t value_len);

/*
 * File data of a regular file `node` added just before: call begin, then
 * append its bytes in order (zeros for holes), then end, which checks that
 * exactly the file's size arrived and pads the last block.
 */
int erofs_writer_data_begin(struct erofs_writer *w, struct erofs_node *node);
int erofs_writer_data_append(struct erofs_writer *w, const void *data,
			     size_t len);
int erofs_writer_data_zeros(struct erofs_writer *w, uint64_t len);
int erofs_writer_data_end(struct erofs_writer *w);

/*
 * Lay out and write the metadata and the superblock (uuid `uuid`).
 * `blocks_out` receives the image size in blocks.
 */
int erofs_writer_finish(uint64_t *blocks_out, struct erofs_writer *w,
			const uint8_t uuid[16]);

/*
 * After erofs_writer_finish(): the directories that were only implied, as
 * malloc'ed paths ("" for the root), in the image's inode order. The
 * caller frees each string and the array.
 */
int erofs_writer_implied_dirs(char ***out, size_t *count,
			      struct erofs_writer *w);

#endif
