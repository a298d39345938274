#include "convert/decompress.h"

#include <errno.h>
#include <isa-l/igzip_lib.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "common/error.h"

/* Compressed input is read in large pieces: layers are hundreds of MiB. */
#define DECOMPRESS_IN_SIZE (1u << 20)

/* isal_inflate counts in 32 bits; never hand it more than this at once. */
#define DECOMPRESS_MAX_CALL (1u << 30)

struct decompress {
	int fd;
	enum decompress_kind kind;
	char *name;

	uint8_t *in;
	size_t in_len; /* valid bytes in `in` */
	size_t in_pos; /* next unread byte */
	bool in_eof;

	struct inflate_state *gzip;
	bool gzip_member_done;

	ZSTD_DStream *zstd;
	size_t zstd_last; /* last ZSTD_decompressStream result; 0: frame end */

	bool done;
};

static int input_fill(struct decompress *d, size_t want)
{
	while (d->in_len - d->in_pos < want && !d->in_eof) {
		ssize_t n;

		if (d->in_pos > 0) {
			memmove(d->in, d->in + d->in_pos,
				d->in_len - d->in_pos);
			d->in_len -= d->in_pos;
			d->in_pos = 0;
		}
		n = read(d->fd, d->in + d->in_len,
			 DECOMPRESS_IN_SIZE - d->in_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return oc_err_errno("read %s", d->name);
		if (n == 0)
			d->in_eof = true;
		d->in_len += (size_t)n;
	}
	return 0;
}

static size_t input_avail(const struct decompress *d)
{
	return d->in_len - d->in_pos;
}

static int detect_kind(struct decompress *d)
{
	static const uint8_t gzip_magic[] = {0x1f, 0x8b};
	static const uint8_t zstd_magic[] = {0x28, 0xb5, 0x2f, 0xfd};
	const uint8_t *p;
	int err;

	err = input_fill(d, sizeof(zstd_magic));
	if (err)
		return err;
	p = d->in + d->in_pos;
	if (input_avail(d) >= sizeof(gzip_magic) &&
	    memcmp(p, gzip_magic, sizeof(gzip_magic)) == 0)
		d->kind = DECOMPRESS_GZIP;
	else if (input_avail(d) >= sizeof(zstd_magic) &&
		 memcmp(p, zstd_magic, sizeof(zstd_magic)) == 0)
		d->kind = DECOMPRESS_ZSTD;
	else
		d->kind = DECOMPRESS_NONE;
	return 0;
}

static int setup_decoder(struct decompress *d)
{
	if (d->kind == DECOMPRESS_GZIP) {
		d->gzip = malloc(sizeof(*d->gzip));
		if (!d->gzip)
			return oc_err(OCICACHE_ENOMEM, "%s: gzip state",
				      d->name);
		isal_inflate_init(d->gzip);
		d->gzip->crc_flag = ISAL_GZIP;
	} else if (d->kind == DECOMPRESS_ZSTD) {
		d->zstd = ZSTD_createDStream();
		if (!d->zstd)
			return oc_err(OCICACHE_ENOMEM, "%s: zstd state",
				      d->name);
		d->zstd_last = ZSTD_initDStream(d->zstd);
		if (ZSTD_isError(d->zstd_last))
			return oc_err(OCICACHE_ERROR, "%s: zstd init: %s",
				      d->name, ZSTD_getErrorName(d->zstd_last));
	}
	return 0;
}

int decompress_new(struct decompress **out, int fd, enum decompress_kind kind,
		   const char *name)
{
	struct decompress *d;
	int err;

	*out = NULL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return oc_err(OCICACHE_ENOMEM, "%s: decompressor", name);
	d->fd = fd;
	d->kind = kind;
	d->name = strdup(name ? name : "stream");
	d->in = malloc(DECOMPRESS_IN_SIZE);
	if (!d->name || !d->in) {
		err = oc_err(OCICACHE_ENOMEM, "%s: decompressor", name);
		goto fail;
	}

	if (d->kind == DECOMPRESS_AUTO) {
		err = detect_kind(d);
		if (err)
			goto fail;
	}
	err = setup_decoder(d);
	if (err)
		goto fail;
	*out = d;
	return 0;

fail:
	decompress_free(d);
	return err;
}

void decompress_free(struct decompress *d)
{
	if (!d)
		return;
	ZSTD_freeDStream(d->zstd);
	free(d->gzip);
	free(d->in);
	free(d->name);
	free(d);
}

static ssize_t read_plain(struct decompress *d, void *buf, size_t len)
{
	size_t avail = input_avail(d);

	/* Bytes read ahead while detecting the format go first. */
	if (avail) {
		size_t n = avail < len ? avail : len;

		memcpy(buf, d->in + d->in_pos, n);
		d->in_pos += n;
		return (ssize_t)n;
	}
	if (d->in_eof)
		return 0;
	for (;;) {
		ssize_t n = read(d->fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return oc_err_errno("read %s", d->name);
		if (n == 0)
			d->in_eof = true;
		return n;
	}
}

/*
 * After a gzip member ends, the stream is either over or another member
 * follows (pigz and `cat a.gz b.gz` make such streams). Anything else is
 * trailing garbage, which the digest covers but no tar reader should see.
 */
static int gzip_next_member(struct decompress *d)
{
	int err = input_fill(d, 2);

	if (err)
		return err;
	if (input_avail(d) == 0) {
		d->done = true;
		return 0;
	}
	if (input_avail(d) < 2 || d->in[d->in_pos] != 0x1f ||
	    d->in[d->in_pos + 1] != 0x8b)
		return oc_err(OCICACHE_EFORMAT,
			      "%s: garbage after the end of the gzip stream",
			      d->name);
	isal_inflate_reset(d->gzip);
	d->gzip->crc_flag = ISAL_GZIP;
	d->gzip_member_done = false;
	return 0;
}

static ssize_t read_gzip(struct decompress *d, uint8_t *buf, size_t len)
{
	struct inflate_state *st = d->gzip;
	size_t produced = 0;
	int err, ret;

	while (produced < len && !d->done) {
		/* What the member gave is handed over first, so that a failure
		 * to find the next one is reported after the bytes before it.
		 */
		if (d->gzip_member_done && produced > 0)
			break;
		if (d->gzip_member_done) {
			err = gzip_next_member(d);
			if (err)
				return err;
			continue;
		}
		if (input_avail(d) == 0) {
			err = input_fill(d, 1);
			if (err)
				return err;
		}

		st->next_in = d->in + d->in_pos;
		st->avail_in = (uint32_t)input_avail(d);
		st->next_out = buf + produced;
		st->avail_out = (uint32_t)(len - produced);
		ret = isal_inflate(st);
		d->in_pos = (size_t)(st->next_in - d->in);
		produced = (size_t)(st->next_out - buf);
		if (ret < 0)
			return oc_err(
			    OCICACHE_EFORMAT,
			    "%s: corrupt gzip stream (igzip error %d)", d->name,
			    ret);

		if (st->block_state == ISAL_BLOCK_FINISH) {
			d->gzip_member_done = true;
			continue;
		}
		if (input_avail(d) == 0 && d->in_eof && st->avail_out > 0)
			return oc_err(OCICACHE_EFORMAT,
				      "%s: truncated gzip stream", d->name);
		/* Hand over what we have rather than block on more input. */
		if (produced > 0 && input_avail(d) == 0)
			break;
	}
	return (ssize_t)produced;
}

static ssize_t read_zstd(struct decompress *d, uint8_t *buf, size_t len)
{
	ZSTD_outBuffer out = {buf, len, 0};
	int err;

	while (out.pos < len && !d->done) {
		ZSTD_inBuffer in;
		size_t ret;

		if (input_avail(d) == 0 && !d->in_eof) {
			err = input_fill(d, 1);
			if (err)
				return err;
		}
		if (input_avail(d) == 0 && d->in_eof && d->zstd_last == 0) {
			d->done = true;
			break;
		}

		in.src = d->in + d->in_pos;
		in.size = input_avail(d);
		in.pos = 0;
		ret = ZSTD_decompressStream(d->zstd, &out, &in);
		d->in_pos += in.pos;
		if (ZSTD_isError(ret))
			return oc_err(OCICACHE_EFORMAT,
				      "%s: corrupt zstd stream: %s", d->name,
				      ZSTD_getErrorName(ret));
		d->zstd_last = ret;

		/* No input left, none to come, and the decoder wants more. */
		if (input_avail(d) == 0 && d->in_eof && ret != 0 &&
		    out.pos < len)
			return oc_err(OCICACHE_EFORMAT,
				      "%s: truncated zstd stream", d->name);
		if (out.pos > 0 && input_avail(d) == 0)
			break;
	}
	return (ssize_t)out.pos;
}

ssize_t decompress_read(struct decompress *d, void *buf, size_t len)
{
	if (len > DECOMPRESS_MAX_CALL)
		len = DECOMPRESS_MAX_CALL;
	if (len == 0)
		return 0;

	switch (d->kind) {
	case DECOMPRESS_GZIP:
		return read_gzip(d, buf, len);
	case DECOMPRESS_ZSTD:
		return read_zstd(d, buf, len);
	default:
		return read_plain(d, buf, len);
	}
}
