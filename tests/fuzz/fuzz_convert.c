/*
 * Fuzz target: arbitrary bytes through the tar -> EROFS writer.
 *
 * The bytes are a layer stream (plain tar, or gzip/zstd detected from the
 * magic). Whatever the writer accepts must come out as an image our reader
 * can walk completely: every directory, inode, xattr and file byte. A
 * writer that accepts input and produces an image its own reader rejects
 * aborts, which the fuzzer reports as a finding.
 *
 * Built two ways: with clang -fsanitize=fuzzer for fuzzing (see README),
 * and with replay.c as a plain program that runs the stored corpus in CI.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "convert/erofs_reader.h"
#include "convert/layer.h"

#define WALK_MAX_DEPTH 64

struct walk {
	struct erofs_image *img;
	int depth;
};

static void fail(const char *what)
{
	fprintf(stderr, "fuzz_convert: %s: %s\n", what,
		ocicache_error_message());
	abort();
}

static int walk_entry(void *ud, const char *name, size_t name_len, uint64_t nid,
		      uint8_t file_type);

static void walk_inode(struct walk *w, uint64_t nid)
{
	struct erofs_inode_info info;
	char data[4096];
	uint64_t off = 0;

	if (erofs_image_inode(&info, w->img, nid))
		fail("inode");
	if (S_ISDIR(info.mode)) {
		if (w->depth < WALK_MAX_DEPTH) {
			w->depth++;
			if (erofs_image_readdir(w->img, nid, walk_entry, w))
				fail("readdir");
			w->depth--;
		}
	} else if (S_ISREG(info.mode) || S_ISLNK(info.mode)) {
		while (off < info.size) {
			int64_t n = erofs_image_read(w->img, &info, data,
						     sizeof(data), off);
			if (n <= 0)
				fail("read");
			off += (uint64_t)n;
		}
	}
	erofs_inode_info_clear(&info);
}

static int walk_entry(void *ud, const char *name, size_t name_len, uint64_t nid,
		      uint8_t file_type)
{
	(void)name;
	(void)file_type;
	if (name_len == 0 || name_len > EROFS_NAME_LEN)
		fail("entry name length");
	walk_inode(ud, nid);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct erofs_layer_options opts = {
	    .max_uncompressed_bytes = 64u << 20,
	    .max_entries = 20000,
	};
	struct erofs_layer_result res;
	struct erofs_image *img;
	struct walk w = {0};
	char out[64];
	int fd, rc;

	fd = memfd_create("fuzz-layer", MFD_CLOEXEC);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	lseek(fd, 0, SEEK_SET);
	snprintf(out, sizeof(out), "/tmp/fuzz-convert-%d.erofs", getpid());

	rc = erofs_layer_convert(&res, fd, DECOMPRESS_AUTO, "fuzz input", out,
				 &opts);
	close(fd);
	if (rc) {
		/* A refused input must leave no output behind. */
		if (access(out, F_OK) == 0)
			fail("output left after an error");
		return 0;
	}

	if (erofs_image_open(&img, out))
		fail("open our own image");
	w.img = img;
	walk_inode(&w, erofs_image_super(img)->root_nid);
	erofs_image_close(img);
	erofs_layer_result_free(&res);
	unlink(out);
	return 0;
}
