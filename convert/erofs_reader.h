/*
 * A reader of the EROFS images ocicache writes (uncompressed, 4 KiB
 * blocks, flat and chunk-based files, inline and shared xattrs, device
 * table). The merge reads layers through it, and tests and the fuzzer check
 * images with it. It checks every offset and size it follows against the
 * image, so a corrupt image is an error, never a crash.
 */
#ifndef OCICACHE_CONVERT_EROFS_READER_H
#define OCICACHE_CONVERT_EROFS_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "convert/erofs_fs.h"

struct erofs_image;

struct erofs_xattr {
	uint8_t name_index; /* EROFS_XATTR_INDEX_* */
	char *name;	    /* the name after the index's prefix, NUL-ended */
	uint8_t name_len;
	char *value;
	uint16_t value_size;
};

struct erofs_inode_info {
	uint64_t nid;
	uint16_t mode; /* type and permission bits */
	uint32_t uid;
	uint32_t gid;
	uint64_t size;
	uint64_t mtime;
	uint32_t mtime_nsec;
	uint32_t nlink;
	uint32_t rdev;	      /* raw i_u of device nodes (erofs_decode_dev) */
	int datalayout;	      /* EROFS_INODE_* */
	uint32_t raw_blkaddr; /* i_u of FLAT_PLAIN/FLAT_INLINE inodes */
	struct erofs_xattr *xattrs; /* inline and shared, in on-disk order */
	size_t xattr_count;
};

/* Open and check the superblock (magic, block size, checksum). */
int erofs_image_open(struct erofs_image **out, const char *path);
void erofs_image_close(struct erofs_image *img);

const struct erofs_super_block *erofs_image_super(
    const struct erofs_image *img);

/* Read the inode at `nid`; free its xattrs with erofs_inode_info_clear(). */
int erofs_image_inode(struct erofs_inode_info *out, struct erofs_image *img,
		      uint64_t nid);
void erofs_inode_info_clear(struct erofs_inode_info *info);

/*
 * Call `fn` for each entry of directory `dir_nid` except "." and "..", in
 * on-disk (sorted) order. A non-zero return from `fn` stops the walk and is
 * returned.
 */
typedef int (*erofs_dirent_fn)(void *ud, const char *name, size_t name_len,
			       uint64_t nid, uint8_t file_type);
int erofs_image_readdir(struct erofs_image *img, uint64_t dir_nid,
			erofs_dirent_fn fn, void *ud);

/* Read up to `len` bytes of a file's (or symlink's) data from `offset`
 * (FLAT_PLAIN, FLAT_INLINE; chunk-based only for chunks on this device).
 * Returns the count or a negative code. */
int64_t erofs_image_read(struct erofs_image *img,
			 const struct erofs_inode_info *inode, void *buf,
			 size_t len, uint64_t offset);

/* Find a path ("a/b/c", no leading slash; "" is the root). */
int erofs_image_lookup(uint64_t *nid_out, struct erofs_image *img,
		       const char *path);

#endif
