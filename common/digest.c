#include "common/digest.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"

int digest_init(struct digest_ctx *ctx)
{
	EVP_MD_CTX *evp = EVP_MD_CTX_new();

	if (!evp || EVP_DigestInit_ex(evp, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(evp);
		ctx->evp = NULL;
		return oc_err(OCICACHE_ENOMEM, "sha256: cannot set up digest");
	}
	ctx->evp = evp;
	return 0;
}

void digest_update(struct digest_ctx *ctx, const void *data, size_t len)
{
	EVP_DigestUpdate(ctx->evp, data, len);
}

void digest_final(char out[DIGEST_STR_LEN], struct digest_ctx *ctx)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	char *p = out;

	EVP_DigestFinal_ex(ctx->evp, md, &len);
	EVP_MD_CTX_free(ctx->evp);
	ctx->evp = NULL;
	memcpy(p, "sha256:", 7);
	p += 7;
	for (unsigned int i = 0; i < len; i++) {
		*p++ = hex[md[i] >> 4];
		*p++ = hex[md[i] & 15];
	}
	*p = '\0';
}

void digest_abort(struct digest_ctx *ctx)
{
	EVP_MD_CTX_free(ctx->evp);
	ctx->evp = NULL;
}

int digest_buffer(char out[DIGEST_STR_LEN], const void *data, size_t len)
{
	struct digest_ctx ctx;
	int rc = digest_init(&ctx);

	if (rc)
		return rc;
	digest_update(&ctx, data, len);
	digest_final(out, &ctx);
	return 0;
}

int digest_file(char out[DIGEST_STR_LEN], const char *path)
{
	static const size_t chunk = 1 << 20;
	struct digest_ctx ctx;
	char *buf = NULL;
	ssize_t n;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return oc_err_errno("%s", path);
	rc = digest_init(&ctx);
	if (rc)
		goto out_close;
	buf = malloc(chunk);
	if (!buf) {
		rc = oc_err(OCICACHE_ENOMEM, "%s: out of memory", path);
		goto out_abort;
	}
	while ((n = read(fd, buf, chunk)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = oc_err_errno("read %s", path);
			goto out_abort;
		}
		digest_update(&ctx, buf, (size_t)n);
	}
	digest_final(out, &ctx);
	goto out_free;

out_abort:
	digest_abort(&ctx);
out_free:
	free(buf);
out_close:
	close(fd);
	return rc;
}

bool digest_valid(const char *digest)
{
	if (!digest || strncmp(digest, "sha256:", 7) != 0)
		return false;
	for (int i = 0; i < 64; i++) {
		char c = digest[7 + i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
	}
	return digest[71] == '\0';
}

const char *digest_hex(const char *digest)
{
	return digest + 7;
}

static int hex_value(char c)
{
	return c <= '9' ? c - '0' : c - 'a' + 10;
}

void digest_uuid(uint8_t uuid[16], const char *digest)
{
	const char *hex = digest_hex(digest);

	for (int i = 0; i < 16; i++)
		uuid[i] = (uint8_t)(hex_value(hex[2 * i]) << 4 |
				    hex_value(hex[2 * i + 1]));
	/* Mark it as a version 8 (custom) RFC 9562 uuid. */
	uuid[6] = (uint8_t)((uuid[6] & 0x0f) | 0x80);
	uuid[8] = (uint8_t)((uuid[8] & 0x3f) | 0x80);
}
