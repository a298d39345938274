/*
 * A second look at the tar stream, beside libarchive, for what libarchive
 * cannot report: a path or link name with a NUL byte inside it. libarchive
 * (like GNU tar) ends such a name at the NUL, so "a\0b" would silently
 * become "a"; Go's archive/tar, and so containerd, refuses it. We refuse
 * it too.
 *
 * The checker follows the stream's 512-byte headers: PAX extended headers
 * ('x', 'g') and GNU long names ('L', 'K') are read, other entries' data
 * skipped. On anything it does not follow (a bad checksum, an old GNU
 * sparse extension, a PAX header over 8 MiB) it stops checking rather than
 * guess, so it never refuses a tar libarchive reads correctly.
 */
#ifndef OCICACHE_CONVERT_TAR_CHECK_H
#define OCICACHE_CONVERT_TAR_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tar_check {
	uint8_t header[512];
	size_t header_fill;
	uint64_t skip;	   /* data bytes to pass over */
	uint8_t *ext;	   /* the PAX or long-name data being collected */
	size_t ext_len;	   /* bytes it will have */
	size_t ext_fill;   /* bytes it has */
	char ext_type;	   /* 'x', 'g', 'L' or 'K' */
	uint64_t pax_size; /* a PAX "size" for the next entry, or UINT64_MAX */
	uint64_t offset;   /* stream offset of the next byte */
	bool stopped;	   /* gave up, or reached the end of the archive */
};

void tar_check_init(struct tar_check *tc);
void tar_check_free(struct tar_check *tc);

/* Look at the next `len` bytes of the stream. OCICACHE_EFORMAT, with a
 * message naming `name` and the offset, for a name with a NUL inside. */
int tar_check_feed(struct tar_check *tc, const void *data, size_t len,
		   const char *name);

#endif
