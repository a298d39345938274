/*
 * SHA-256 digests in the OCI form "sha256:<64 lowercase hex digits>".
 */
#ifndef OCICACHE_COMMON_DIGEST_H
#define OCICACHE_COMMON_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "sha256:" + 64 hex digits + NUL. */
#define DIGEST_STR_LEN 72

struct digest_ctx {
	void *evp; /* EVP_MD_CTX, hidden so that callers need no OpenSSL */
};

int digest_init(struct digest_ctx *ctx);
void digest_update(struct digest_ctx *ctx, const void *data, size_t len);

/* Write "sha256:<hex>" to `out` and release the context. */
void digest_final(char out[DIGEST_STR_LEN], struct digest_ctx *ctx);

/* Release a context that will not be finished (error paths). */
void digest_abort(struct digest_ctx *ctx);

/* One-shot digest of a buffer. */
int digest_buffer(char out[DIGEST_STR_LEN], const void *data, size_t len);

/* Digest of a whole file. */
int digest_file(char out[DIGEST_STR_LEN], const char *path);

/* True for "sha256:" followed by exactly 64 lowercase hex digits. */
bool digest_valid(const char *digest);

/* The 64 hex digits after "sha256:"; `digest` must be valid. */
const char *digest_hex(const char *digest);

/* The first 16 raw bytes of a valid digest: a stable uuid seed. */
void digest_uuid(uint8_t uuid[16], const char *digest);

#endif
