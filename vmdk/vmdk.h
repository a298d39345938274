/*
 * The VMDK descriptor that joins fsmeta and the layer images into one
 * virtio-blk disk: createType "twoGbMaxExtentFlat", one FLAT extent line
 * per file (fsmeta first, then the layers bottom to top), files over 2 GiB
 * split into several lines over the same file with growing offsets.
 */
#ifndef OCICACHE_VMDK_VMDK_H
#define OCICACHE_VMDK_VMDK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vmdk_extent {
	const char *path;    /* as it goes into the descriptor */
	uint64_t size_bytes; /* a multiple of 512 */
};

/*
 * Write the descriptor to the new file `out_path` (replaced atomically).
 * `extent` paths are written as given: the caller makes them relative to
 * the descriptor's folder, or absolute. The CID is derived from
 * `seed_digest`, so the same inputs give the same bytes.
 */
int vmdk_write(const char *out_path, const struct vmdk_extent *extents,
	       size_t count, const char *seed_digest);

#endif
