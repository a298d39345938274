#include "convert/tar_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

#define TAR_BLOCK   512
#define TAR_EXT_MAX (8u << 20)

void tar_check_init(struct tar_check *tc)
{
	memset(tc, 0, sizeof(*tc));
	tc->pax_size = UINT64_MAX;
}

void tar_check_free(struct tar_check *tc)
{
	free(tc->ext);
	tc->ext = NULL;
}

static void stop(struct tar_check *tc)
{
	tc->stopped = true;
	tar_check_free(tc);
}

static uint64_t round_block(uint64_t n)
{
	return (n + TAR_BLOCK - 1) / TAR_BLOCK * TAR_BLOCK;
}

/* An octal or base-256 number field; false when it is neither. */
static bool parse_number(uint64_t *out, const uint8_t *f, size_t len)
{
	uint64_t v = 0;
	size_t i = 0;

	if (f[0] & 0x80) {
		if (f[0] != 0x80 || len < 9)
			return false;
		for (i = 1; i < len; i++) {
			if (v >> 56)
				return false;
			v = v << 8 | f[i];
		}
		*out = v;
		return true;
	}
	while (i < len && f[i] == ' ')
		i++;
	for (; i < len && f[i] >= '0' && f[i] <= '7'; i++) {
		if (v >> 60)
			return false;
		v = v << 3 | (uint64_t)(f[i] - '0');
	}
	for (; i < len; i++)
		if (f[i] != ' ' && f[i] != '\0')
			return false;
	*out = v;
	return true;
}

static bool checksum_ok(const uint8_t *h)
{
	uint64_t want;
	unsigned long sum = 0;

	if (!parse_number(&want, h + 148, 8))
		return false;
	for (int i = 0; i < TAR_BLOCK; i++)
		sum += (i >= 148 && i < 156) ? ' ' : h[i];
	return sum == want;
}

static bool all_zero(const uint8_t *h)
{
	for (int i = 0; i < TAR_BLOCK; i++)
		if (h[i])
			return false;
	return true;
}

static int name_has_nul(struct tar_check *tc, const char *what,
			const uint8_t *value, size_t len, const char *name)
{
	return oc_err(
	    OCICACHE_EFORMAT,
	    "%s: tar header at byte %llu: %s \"%.*s\" has a NUL "
	    "byte inside",
	    name, (unsigned long long)(tc->offset - tc->ext_fill - TAR_BLOCK),
	    what, (int)strnlen((const char *)value, len), (const char *)value);
}

/* PAX records "LEN key=value\n"; check path and linkpath, note size. */
static int check_pax(struct tar_check *tc, const char *name)
{
	const uint8_t *p = tc->ext, *end = tc->ext + tc->ext_fill;

	while (p < end) {
		uint64_t len = 0;
		const uint8_t *q = p, *key, *eq, *rec_end;

		while (q < end && *q >= '0' && *q <= '9' && len < TAR_EXT_MAX)
			len = len * 10 + (uint64_t)(*q++ - '0');
		if (q == p || q >= end || *q != ' ' ||
		    len > (uint64_t)(end - p))
			break; /* not a record we follow: libarchive judges */
		rec_end = p + len;
		key = q + 1;
		eq = memchr(key, '=', (size_t)(rec_end - key));
		if (!eq || rec_end[-1] != '\n')
			break;
		size_t key_len = (size_t)(eq - key);
		const uint8_t *value = eq + 1;
		size_t value_len = (size_t)(rec_end - 1 - value);

		if (((key_len == 4 && memcmp(key, "path", 4) == 0) ||
		     (key_len == 8 && memcmp(key, "linkpath", 8) == 0)) &&
		    memchr(value, '\0', value_len))
			return name_has_nul(tc,
					    key_len == 4 ? "path" : "linkpath",
					    value, value_len, name);
		if (tc->ext_type == 'x' && key_len == 4 &&
		    memcmp(key, "size", 4) == 0) {
			uint64_t size = 0;
			size_t i;

			for (i = 0; i < value_len && value[i] >= '0' &&
				    value[i] <= '9' && size < (1ull << 60);
			     i++)
				size = size * 10 + (uint64_t)(value[i] - '0');
			if (i == value_len && i > 0)
				tc->pax_size = size;
		}
		p = rec_end;
	}
	return 0;
}

/* A GNU long name: the name, then NULs to the end. */
static int check_long_name(struct tar_check *tc, const char *name)
{
	size_t len = strnlen((const char *)tc->ext, tc->ext_fill);

	for (size_t i = len; i < tc->ext_fill; i++)
		if (tc->ext[i])
			return name_has_nul(tc,
					    tc->ext_type == 'L'
						? "long name"
						: "long link name",
					    tc->ext, tc->ext_fill, name);
	return 0;
}

static int ext_done(struct tar_check *tc, const char *name)
{
	int err = (tc->ext_type == 'x' || tc->ext_type == 'g')
		      ? check_pax(tc, name)
		      : check_long_name(tc, name);

	free(tc->ext);
	tc->ext = NULL;
	tc->skip = round_block(tc->ext_len) - tc->ext_len;
	tc->ext_len = tc->ext_fill = 0;
	return err;
}

static void header_done(struct tar_check *tc)
{
	const uint8_t *h = tc->header;
	char type = (char)h[156];
	uint64_t size;

	if (all_zero(h)) {
		stop(tc); /* the end of the archive: the rest is padding */
		return;
	}
	if (!checksum_ok(h) || !parse_number(&size, h + 124, 12)) {
		stop(tc);
		return;
	}
	if (type == 'x' || type == 'g' || type == 'L' || type == 'K') {
		if (size > TAR_EXT_MAX) {
			stop(tc);
			return;
		}
		tc->ext = malloc(size ? size : 1);
		if (!tc->ext) {
			stop(tc);
			return;
		}
		tc->ext_type = type;
		tc->ext_len = size;
		tc->ext_fill = 0;
		return;
	}
	/* Old GNU sparse headers may run on into extension blocks. */
	if (type == 'S' && h[482]) {
		stop(tc);
		return;
	}
	if (tc->pax_size != UINT64_MAX)
		size = tc->pax_size;
	tc->pax_size = UINT64_MAX;
	tc->skip = round_block(size);
}

int tar_check_feed(struct tar_check *tc, const void *data, size_t len,
		   const char *name)
{
	const uint8_t *p = data;

	while (len && !tc->stopped) {
		size_t n;

		if (tc->skip) {
			n = tc->skip < len ? (size_t)tc->skip : len;
			tc->skip -= n;
		} else if (tc->ext) {
			n = tc->ext_len - tc->ext_fill;
			n = n < len ? n : len;
			memcpy(tc->ext + tc->ext_fill, p, n);
			tc->ext_fill += n;
		} else {
			n = TAR_BLOCK - tc->header_fill;
			n = n < len ? n : len;
			memcpy(tc->header + tc->header_fill, p, n);
			tc->header_fill += n;
		}
		p += n;
		len -= n;
		tc->offset += n;
		if (tc->ext && tc->ext_fill == tc->ext_len) {
			int err = ext_done(tc, name);

			if (err)
				return err;
		} else if (!tc->ext && !tc->skip &&
			   tc->header_fill == TAR_BLOCK) {
			tc->header_fill = 0;
			header_done(tc);
		}
	}
	return 0;
}
