/*
 * Read-ahead over a decompressor: a thread inflates the next chunks while
 * the caller parses the current one, so that inflate runs on one core and
 * hashing, tar parsing and the EROFS writer on another.
 */
#ifndef OCICACHE_CONVERT_READAHEAD_H
#define OCICACHE_CONVERT_READAHEAD_H

#include <sys/types.h>

#include "convert/decompress.h"

struct readahead;

/* Start reading ahead of `dec` (not owned; it must outlive the read-ahead).
 * `name` labels error messages. */
int readahead_new(struct readahead **out, struct decompress *dec,
		  const char *name);

/*
 * The next chunk: `*data` points at it, valid until the next call or
 * readahead_free(). Returns its length, 0 at the end of the stream, or the
 * decompressor's negative error code with its message on this thread.
 */
ssize_t readahead_next(struct readahead *ra, const void **data);

/* Stop the thread (it finishes the chunk it is inflating) and free. */
void readahead_free(struct readahead *ra);

#endif
