/*
 * fsmeta: one metadata-only EROFS image over a stack of layer images.
 *
 * Layers are merged bottom (index 0) to top: upper entries win, a whiteout
 * (0/0 character device) deletes what is below and is dropped, an opaque
 * directory (trusted.overlay.opaque=y) hides everything below it and loses
 * the marker. A directory takes its metadata from the topmost layer that
 * has an entry of its own for it (a layer's implied directories do not
 * count). Regular files become CHUNK_BASED inodes whose 8-byte chunk
 * indexes point at the file's blocks in its layer: device id = layer index
 * + 1. Hard links within a layer stay one inode with nlink = the names that
 * survive. The device table has one slot per layer with `blocks` and
 * `mapped_blkaddr` (fsmeta's blocks plus all lower layers' blocks), so that
 * fsmeta followed by the layers reads as one flat disk.
 */
#ifndef OCICACHE_CONVERT_FSMETA_H
#define OCICACHE_CONVERT_FSMETA_H

#include <stddef.h>
#include <stdint.h>

struct fsmeta_layer {
	const char *path;		 /* the layer's EROFS image */
	const char *tag;		 /* device tag, at most 64 bytes */
	const char *const *implied_dirs; /* as erofs_layer_result gives */
	size_t implied_count;
};

/*
 * Write fsmeta for `layers[0..count)` to the new file `out_path` (unlinked
 * on failure), with the uuid derived from `seed_digest` (the manifest
 * digest). `blocks_out` (may be NULL) receives fsmeta's own block count.
 */
int fsmeta_write(uint64_t *blocks_out, const char *out_path,
		 const struct fsmeta_layer *layers, size_t count,
		 const char *seed_digest);

#endif
