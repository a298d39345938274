/*
 * A pull-style decompressor over a file descriptor: gzip through ISA-L's
 * igzip, zstd through libzstd, or plain bytes, detected from the first
 * bytes (gzip 1f 8b, zstd 28 b5 2f fd) or forced by the caller.
 */
#ifndef OCICACHE_CONVERT_DECOMPRESS_H
#define OCICACHE_CONVERT_DECOMPRESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum decompress_kind {
	DECOMPRESS_AUTO = 0,
	DECOMPRESS_NONE,
	DECOMPRESS_GZIP,
	DECOMPRESS_ZSTD
};

struct decompress;

/* Read from `fd` (not owned, not closed); `name` labels error messages. */
int decompress_new(struct decompress **out, int fd, enum decompress_kind kind,
		   const char *name);
void decompress_free(struct decompress *d);

/*
 * Up to `len` decompressed bytes into `buf`: the count, 0 at the clean end
 * of the stream, or a negative OCICACHE_E* code (OCICACHE_EFORMAT for a
 * corrupt or truncated stream, or garbage after the last gzip member;
 * concatenated gzip members are read as one stream).
 */
ssize_t decompress_read(struct decompress *d, void *buf, size_t len);

#endif
