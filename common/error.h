/*
 * Errors and logging inside the library.
 *
 * Every failing function sets a thread-local message with oc_err() and
 * returns the code oc_err() hands back, so a failure reads
 * `return oc_err(OCICACHE_EDIGEST, "blob %s: digest mismatch", digest);`.
 * A caller that adds context uses oc_err_wrap(), which keeps the inner
 * message after a colon.
 */
#ifndef OCICACHE_COMMON_ERROR_H
#define OCICACHE_COMMON_ERROR_H

#include "ocicache/ocicache.h"

#define OC_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* Set this thread's message and return `code`. */
int oc_err(int code, const char *fmt, ...) OC_PRINTF(2, 3);

/* Prefix this thread's message with more context ("pull X: <old>") and
 * return `code`. */
int oc_err_wrap(int code, const char *fmt, ...) OC_PRINTF(2, 3);

/* Set the message from errno: "<context>: <strerror(errno)>", code EIO,
 * or ENOMEM/ENOTFOUND where errno says so. */
int oc_err_errno(const char *fmt, ...) OC_PRINTF(1, 2);

const char *oc_err_message(void);

/* Log through the caller's callback, if any, at `level` (OCICACHE_LOG_*). */
void oc_log(int level, const char *fmt, ...) OC_PRINTF(2, 3);

#define oc_debug(...) oc_log(OCICACHE_LOG_DEBUG, __VA_ARGS__)
#define oc_info(...)  oc_log(OCICACHE_LOG_INFO, __VA_ARGS__)
#define oc_warn(...)  oc_log(OCICACHE_LOG_WARN, __VA_ARGS__)

#endif
