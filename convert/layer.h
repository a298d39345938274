/*
 * The tar -> EROFS layer writer.
 *
 * One pass: the tar stream is read through libarchive, file data is copied
 * to the output as it arrives (FLAT_PLAIN, whole blocks, starting at block
 * 1), and the metadata (inodes, directories, xattrs) is kept in memory and
 * written after the data, where meta_blkaddr points. The output is
 * deterministic: the same tar gives the same bytes (uuid from the diff_id,
 * no build time).
 *
 * What the image holds (see DESIGN.md, "Formats"): every tar entry with its
 * mode, owner, mtime (nanoseconds kept) and xattrs; hard links as one inode;
 * `.wh.NAME` as a 0/0 character device NAME; `.wh..wh..opq` as
 * trusted.overlay.opaque=y on its directory. A directory the tar only
 * implies (a parent with no entry of its own) is given mode 0755, owner 0:0
 * and the mtime of the entry that implied it, and is reported in
 * erofs_layer_result.implied_dirs so that the merge can tell it apart.
 */
#ifndef OCICACHE_CONVERT_LAYER_H
#define OCICACHE_CONVERT_LAYER_H

#include <stddef.h>
#include <stdint.h>

#include "common/digest.h"
#include "convert/decompress.h"

struct erofs_layer_options {
	uint64_t max_uncompressed_bytes; /* 0: the default cap */
	uint64_t max_entries;		 /* 0: the default cap */
};

struct erofs_layer_result {
	char diff_id[DIGEST_STR_LEN]; /* sha256 of every uncompressed byte */
	uint64_t blocks;	      /* the image's size in blocks */
	uint64_t entries;	      /* tar entries read */
	/* Directories the tar only implied, as "a/b" paths without a leading
	 * slash, malloc'ed; free with erofs_layer_result_free(). */
	char **implied_dirs;
	size_t implied_count;
};

void erofs_layer_result_free(struct erofs_layer_result *res);

/*
 * Convert the tar read from `in_fd` (compressed as `kind`) into an EROFS
 * image written to the new file `out_path` (created, truncated). On failure
 * `out_path` is unlinked and the message names `name` (the layer's digest
 * or file name) and the tar entry at fault. `opts` may be NULL.
 */
int erofs_layer_convert(struct erofs_layer_result *out, int in_fd,
			enum decompress_kind kind, const char *name,
			const char *out_path,
			const struct erofs_layer_options *opts);

#endif
