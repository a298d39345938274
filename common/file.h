/*
 * Small file helpers that retry short writes and interrupted calls.
 */
#ifndef OCICACHE_COMMON_FILE_H
#define OCICACHE_COMMON_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/buf.h"

/* Write all of `data` at the current offset; `what` names the file in
 * the error message. */
int file_write_all(int fd, const void *data, size_t len, const char *what);

/* Write all of `data` at `offset`. */
int file_pwrite_all(int fd, const void *data, size_t len, uint64_t offset,
		    const char *what);

/* Read exactly `len` bytes at `offset`; a short file is OCICACHE_EFORMAT. */
int file_pread_all(int fd, void *data, size_t len, uint64_t offset,
		   const char *what);

/* Read a whole file into `out` (appending); more than `max` bytes is
 * OCICACHE_EFORMAT. */
int file_read_all(struct buf *out, const char *path, size_t max);

/* mkdir -p with `mode` for the directories it creates. */
int file_mkdirs(const char *path, mode_t mode);

#endif
