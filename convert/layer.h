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
 * What the image holds (what the fsmeta merge relies on): every tar entry with
 * its mode, owner, mtime (nanoseconds kept) and xattrs; hard links as one
 * inode; `.wh.NAME` as a 0/0 character device NAME; `.wh..wh..opq` as
 * trusted.overlay.opaque=y on its directory. A directory the tar only
 * implies (a parent with no entry of its own) is given mode 0755, owner 0:0
 * and the mtime of the entry that implied it, and is reported in
 * erofs_layer_result.implied_dirs so that the merge can tell it apart.
 *
 * How the tar is read (each case is in fixtures/make-tars.py):
 * - Formats: ustar, GNU (long names and links, base-256 numbers, sparse)
 *   and PAX (path, linkpath, size, uid/gid, uname/gname, nanosecond mtime,
 *   sparse, SCHILY.xattr.* and LIBARCHIVE.xattr.*). Sparse files
 *   are stored dense, their holes as zeros. Names are kept as bytes; owner
 *   names are ignored (numeric ids only).
 * - Paths: leading "/" and "./", "." and empty components are dropped (as
 *   registries serve both forms). An empty name, a ".." component, a name
 *   over 255 bytes, a path over 4096 bytes or deeper than 1024 components
 *   is an error. A NUL inside a PAX path ends the name there, as libarchive
 *   and GNU tar read it.
 * - Times: EROFS keeps u64 seconds, so mtimes after 2106 are kept as they
 *   are; an mtime before 1970 is stored as 0 (1970-01-01) with a warning
 *   naming the entry.
 * - The same path twice: the later entry wins; a directory entry after its
 *   children keeps them and takes the later metadata; a non-directory over
 *   a directory drops the directory's subtree.
 * - Hard links: every name shares the target's inode, nlink counts them.
 *   A link may come before its target (tar writers put it after, but not
 *   every layer tar comes from tar): the link's name is held until the
 *   target arrives, and a later entry of the link's own name still
 *   replaces it. A target that never arrives (at most 1024 links may wait
 *   at once), a directory or a whiteout as target is an error. A target
 *   replaced after it was linked keeps its old inode and content under the
 *   link's name; the path shows the new entry.
 * - Whiteouts hide lower layers only, never the layer's own entries (OCI
 *   image spec): `.wh.NAME` after an entry NAME of the same tar leaves it
 *   in place; an entry after the whiteout replaces it. A directory and a
 *   whiteout of the same name in one tar (in either order, or the
 *   whiteout's name becoming a parent) give an opaque directory. Opaque
 *   markers may come before or after their directory and its children.
 * - Xattrs under user., trusted., security. and the POSIX ACLs
 *   (system.posix_acl_access/default) are kept; other prefixes have no
 *   EROFS name index and are dropped with a warning. An xattr that several
 *   inodes carry alike is stored once (EROFS shared xattrs).
 * - Caps (erofs_layer_options): uncompressed bytes (default 64 GiB) and tar
 *   entries (default 1,000,000); past either the conversion fails. Memory
 *   is about 200 bytes per entry plus names and xattrs.
 *
 * Every error is OCICACHE_EFORMAT for bad input (or the I/O or memory
 * code), with a message that names the layer and the entry (or where the
 * stream broke), and no output file is left behind.
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
