/*
 * A growable byte buffer, always NUL-terminated so that text can be used
 * as a C string.
 */
#ifndef OCICACHE_COMMON_BUF_H
#define OCICACHE_COMMON_BUF_H

#include <stddef.h>

#include "common/error.h"

struct buf {
	char *data; /* NULL until the first append */
	size_t len;
	size_t cap;
};

#define BUF_INIT           \
	{                  \
		NULL, 0, 0 \
	}

/* Each returns 0 or OCICACHE_ENOMEM. */
int buf_append(struct buf *b, const void *data, size_t len);
int buf_puts(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) OC_PRINTF(2, 3);
int buf_reserve(struct buf *b, size_t extra);

/* Hand the data to the caller (who frees it) and empty the buffer. */
char *buf_detach(struct buf *b);
void buf_free(struct buf *b);

#endif
