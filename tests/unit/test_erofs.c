/*
 * The EROFS reader against images made by mkfs.erofs (a writer we did not
 * write), and against corrupt copies of them; fsmeta read back through it.
 */
#include <fcntl.h>
#include <isa-l/crc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/error.h"
#include "convert/erofs_reader.h"
#include "convert/fsmeta.h"
#include "tests/unit/check.h"

#define SEED      \
	"sha256:" \
	"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define BIG_SIZE 10000

static char workdir[256];
static bool have_mkfs;
static bool have_xattrs;

static void put_file(const char *rel, const void *data, size_t len)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/src/%s", workdir, rel);
	f = fopen(path, "wb");
	if (!f)
		return;
	fwrite(data, 1, len, f);
	fclose(f);
}

static void big_pattern(uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(i * 7 + i / 4096);
}

/* src/: hello, big (10000 bytes), sub/inner, link -> hello, hard (a hard
 * link of hello), with user.test=value on hello when the file system takes
 * user xattrs. */
static void make_tree(void)
{
	static uint8_t big[BIG_SIZE];
	char path[512];

	snprintf(path, sizeof(path), "%s/src", workdir);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/src/sub", workdir);
	mkdir(path, 0750);
	put_file("hello", "hello world\n", 12);
	put_file("sub/inner", "inner", 5);
	big_pattern(big, sizeof(big));
	put_file("big", big, sizeof(big));
	snprintf(path, sizeof(path), "%s/src/link", workdir);
	if (symlink("hello", path) < 0)
		perror("symlink");
	{
		char target[512];

		snprintf(target, sizeof(target), "%s/src/hello", workdir);
		snprintf(path, sizeof(path), "%s/src/hard", workdir);
		if (link(target, path) < 0)
			perror("link");
		have_xattrs = setxattr(target, "user.test", "value", 5, 0) == 0;
	}
}

static int make_image(const char *name, const char *options)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd),
		 "mkfs.erofs --quiet %s -T1700000000 %s/%s %s/src >/dev/null "
		 "2>&1",
		 options, workdir, name, workdir);
	return system(cmd);
}

static const char *image_path(const char *name)
{
	static char path[512];

	snprintf(path, sizeof(path), "%s/%s", workdir, name);
	return path;
}

struct listing {
	char names[16][64];
	uint64_t nids[16];
	int count;
};

static int list_entry(void *ud, const char *name, size_t name_len, uint64_t nid,
		      uint8_t file_type)
{
	struct listing *l = ud;

	(void)file_type;
	if (l->count < 16 && name_len < 64) {
		memcpy(l->names[l->count], name, name_len + 1);
		l->nids[l->count] = nid;
	}
	l->count++;
	return 0;
}

static uint64_t lookup(struct erofs_image *img, const char *path)
{
	uint64_t nid = UINT64_MAX;

	CHECK(erofs_image_lookup(&nid, img, path) == 0);
	return nid;
}

static void check_image(const char *name, int want_layout)
{
	static uint8_t big[BIG_SIZE], got[BIG_SIZE];
	struct erofs_image *img = NULL;
	struct erofs_inode_info info;
	struct listing l = {0};
	char text[64] = {0};

	CHECK(erofs_image_open(&img, image_path(name)) == 0);
	if (!img)
		return;

	CHECK(erofs_image_readdir(img, lookup(img, ""), list_entry, &l) == 0);
	CHECK(l.count == 5);
	CHECK_STR(l.names[0], "big");
	CHECK_STR(l.names[1], "hard");
	CHECK_STR(l.names[2], "hello");
	CHECK_STR(l.names[3], "link");
	CHECK_STR(l.names[4], "sub");
	CHECK(l.nids[1] == l.nids[2]); /* hard links share an inode */

	CHECK(erofs_image_inode(&info, img, lookup(img, "hello")) == 0);
	CHECK(S_ISREG(info.mode));
	CHECK(info.size == 12);
	CHECK(info.nlink == 2);
	CHECK(info.datalayout == want_layout);
	CHECK(erofs_image_read(img, &info, text, sizeof(text), 0) == 12);
	CHECK_STR(text, "hello world\n");
	CHECK(erofs_image_read(img, &info, text, 5, 6) == 5);
	CHECK(memcmp(text, "world", 5) == 0);
	if (have_xattrs) {
		bool found = false;

		for (size_t i = 0; i < info.xattr_count; i++)
			found |= info.xattrs[i].name_index ==
				     EROFS_XATTR_INDEX_USER &&
				 !strcmp(info.xattrs[i].name, "test") &&
				 info.xattrs[i].value_size == 5 &&
				 !memcmp(info.xattrs[i].value, "value", 5);
		CHECK(found);
	} else {
		printf("SKIP xattrs: the temporary folder takes no user.* "
		       "xattrs\n");
	}
	erofs_inode_info_clear(&info);

	CHECK(erofs_image_inode(&info, img, lookup(img, "big")) == 0);
	CHECK(info.size == BIG_SIZE);
	big_pattern(big, sizeof(big));
	memset(got, 0, sizeof(got));
	CHECK(erofs_image_read(img, &info, got, sizeof(got), 0) == BIG_SIZE);
	CHECK(memcmp(got, big, sizeof(big)) == 0);
	CHECK(erofs_image_read(img, &info, got, 100, 4090) == 100);
	CHECK(memcmp(got, big + 4090, 100) == 0);
	CHECK(erofs_image_read(img, &info, got, 100, BIG_SIZE) == 0);
	erofs_inode_info_clear(&info);

	CHECK(erofs_image_inode(&info, img, lookup(img, "link")) == 0);
	CHECK(S_ISLNK(info.mode));
	memset(text, 0, sizeof(text));
	CHECK(erofs_image_read(img, &info, text, sizeof(text), 0) == 5);
	CHECK_STR(text, "hello");
	erofs_inode_info_clear(&info);

	CHECK(erofs_image_inode(&info, img, lookup(img, "sub")) == 0);
	CHECK(S_ISDIR(info.mode));
	CHECK((info.mode & 07777) == 0750);
	CHECK(info.mtime == 1700000000);
	erofs_inode_info_clear(&info);
	CHECK(erofs_image_inode(&info, img, lookup(img, "sub/inner")) == 0);
	CHECK(info.size == 5);
	erofs_inode_info_clear(&info);

	erofs_image_close(img);
}

static void test_reads_plain_image(void)
{
	check_image("plain.erofs", EROFS_INODE_FLAT_PLAIN);
}

static void test_reads_inline_image(void)
{
	check_image("inline.erofs", EROFS_INODE_FLAT_INLINE);
}

static void test_reads_chunked_image(void)
{
	check_image("chunked.erofs", EROFS_INODE_CHUNK_BASED);
}

static void test_lookup_missing_is_not_found(void)
{
	struct erofs_image *img = NULL;
	uint64_t nid;

	CHECK(erofs_image_open(&img, image_path("plain.erofs")) == 0);
	if (!img)
		return;
	CHECK(erofs_image_lookup(&nid, img, "nope") == OCICACHE_ENOTFOUND);
	CHECK(erofs_image_lookup(&nid, img, "hello/x") == OCICACHE_ENOTFOUND);
	CHECK(erofs_image_lookup(&nid, img, "sub/nope") == OCICACHE_ENOTFOUND);
	erofs_image_close(img);
}

static uint8_t *load(const char *name, size_t *len)
{
	static uint8_t data[1 << 20];
	int fd = open(image_path(name), O_RDONLY);
	ssize_t n;

	*len = 0;
	if (fd < 0)
		return NULL;
	n = read(fd, data, sizeof(data));
	close(fd);
	if (n <= 0)
		return NULL;
	*len = (size_t)n;
	return data;
}

static void store(const char *name, const uint8_t *data, size_t len)
{
	int fd = open(image_path(name), O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd < 0)
		return;
	if (write(fd, data, len) != (ssize_t)len)
		perror("write");
	close(fd);
}

static void fix_checksum(uint8_t *data)
{
	uint32_t zero = 0, crc;

	memcpy(data + 1028, &zero, 4);
	crc = htole32(crc32_iscsi(data + 1024, 4096 - 1024, ~0u));
	memcpy(data + 1028, &crc, 4);
}

static int open_copy(const uint8_t *data, size_t len)
{
	struct erofs_image *img = NULL;
	int rc;

	store("bad.erofs", data, len);
	rc = erofs_image_open(&img, image_path("bad.erofs"));
	erofs_image_close(img);
	return rc;
}

static void test_bad_superblocks_are_format_errors(void)
{
	static uint8_t copy[1 << 20];
	size_t len;
	uint8_t *data = load("plain.erofs", &len);

	if (!data)
		return;
	memcpy(copy, data, len);
	copy[1024] ^= 0xff;
	CHECK(open_copy(copy, len) == OCICACHE_EFORMAT);
	CHECK(strstr(oc_err_message(), "bad.erofs") != NULL);
	CHECK(strstr(oc_err_message(), "magic") != NULL);

	memcpy(copy, data, len);
	copy[1024 + 0x40] ^= 0x01; /* volume name: only the checksum sees it */
	CHECK(open_copy(copy, len) == OCICACHE_EFORMAT);
	CHECK(strstr(oc_err_message(), "checksum") != NULL);

	CHECK(open_copy(data, len - 4096) == OCICACHE_EFORMAT);
	CHECK(strstr(oc_err_message(), "truncated") != NULL);
	CHECK(open_copy(data, 100) == OCICACHE_EFORMAT);

	memcpy(copy, data, len);
	CHECK(open_copy(copy, len) == 0);
}

/* Where the root directory's data starts: its plain block, or its inline
 * tail right after the inode and its xattrs. */
static uint64_t root_dir_data(const uint8_t *data, size_t len)
{
	const struct erofs_super_block *sb = (const void *)(data + 1024);
	uint64_t ioff =
	    le32toh(sb->meta_blkaddr) * 4096ull + le16toh(sb->root_nid) * 32ull;
	struct erofs_inode_compact dic;

	if (ioff + 64 > len)
		return 0;
	memcpy(&dic, data + ioff, sizeof(dic));
	if (((le16toh(dic.i_format) >> 1) & 7) == EROFS_INODE_FLAT_PLAIN)
		return le32toh(dic.i_u) * 4096ull;
	return ioff + ((le16toh(dic.i_format) & 1) ? 64 : 32) +
	       erofs_xattr_ibody_size(le16toh(dic.i_xattr_icount));
}

/* Break the nameoff of the second entry of the root directory. */
static void test_bad_nameoff_is_format_error(void)
{
	static uint8_t copy[1 << 20];
	struct erofs_image *img = NULL;
	struct listing l = {0};
	uint64_t off, nid;
	uint16_t bad = htole16(0xfff0);
	size_t len;
	uint8_t *data = load("plain.erofs", &len);

	if (!data)
		return;
	off = root_dir_data(data, len);
	CHECK(off > 0 && off + 24 <= len);
	if (!(off > 0 && off + 24 <= len))
		return;

	memcpy(copy, data, len);
	memcpy(copy + off + 12 + 8, &bad, 2);
	fix_checksum(copy);
	store("bad.erofs", copy, len);
	CHECK(erofs_image_open(&img, image_path("bad.erofs")) == 0);
	if (!img)
		return;
	CHECK(erofs_image_readdir(img,
				  le16toh(erofs_image_super(img)->root_nid),
				  list_entry, &l) == OCICACHE_EFORMAT);
	CHECK(strstr(oc_err_message(), "nameoff") != NULL);
	CHECK(strstr(oc_err_message(), "nid") != NULL);
	CHECK(erofs_image_lookup(&nid, img, "sub") == OCICACHE_EFORMAT);
	erofs_image_close(img);
}

/* Read everything reachable, to a bounded depth (a corrupt image may have
 * loops). */
static int walk(struct erofs_image *img, uint64_t nid, int depth);

struct walk_ctx {
	struct erofs_image *img;
	int depth;
};

static int walk_entry(void *ud, const char *name, size_t name_len, uint64_t nid,
		      uint8_t file_type)
{
	struct walk_ctx *w = ud;

	(void)name;
	(void)name_len;
	(void)file_type;
	walk(w->img, nid, w->depth + 1);
	return 0;
}

static int walk(struct erofs_image *img, uint64_t nid, int depth)
{
	static uint8_t buf[65536];
	struct erofs_inode_info info;
	struct walk_ctx w = {img, depth};
	int rc;

	if (depth > 8)
		return 0;
	rc = erofs_image_inode(&info, img, nid);
	if (rc < 0)
		return rc;
	if (S_ISDIR(info.mode))
		rc = erofs_image_readdir(img, nid, walk_entry, &w);
	else
		rc = (int)erofs_image_read(img, &info, buf, sizeof(buf), 0);
	erofs_inode_info_clear(&info);
	return rc < 0 ? rc : 0;
}

/* Random bytes in block 0 (superblock and inodes), the checksum made to
 * match so that the damage reaches the parsers: every outcome is a result
 * code, never a crash (the sanitizer build checks the reads too). */
static void test_corrupt_metadata_never_crashes(void)
{
	static uint8_t copy[1 << 20];
	const char *names[] = {"plain.erofs", "inline.erofs", "chunked.erofs"};
	unsigned int seed = 12345;
	int errors = 0;

	for (int n = 0; n < 3; n++) {
		size_t len;
		uint8_t *data = load(names[n], &len);

		if (!data)
			continue;
		for (int round = 0; round < 300; round++) {
			struct erofs_image *img = NULL;
			int rc;

			memcpy(copy, data, len);
			for (int k = 0; k < 4; k++) {
				size_t at =
				    1024 + rand_r(&seed) % (4096 - 1024);

				if (at >= 1024 && at < 1028 + 4)
					at += 8;
				copy[at] = (uint8_t)rand_r(&seed);
			}
			fix_checksum(copy);
			store("bad.erofs", copy, len);
			rc = erofs_image_open(&img, image_path("bad.erofs"));
			if (rc == 0)
				rc = walk(
				    img,
				    le16toh(erofs_image_super(img)->root_nid),
				    0);
			errors += rc < 0;
			CHECK(rc <= 0);
			erofs_image_close(img);
		}
	}
	CHECK(errors > 0);
}

static void test_fsmeta_output_reads_back(void)
{
	struct fsmeta_layer layer = {image_path("plain.erofs"), "plain", NULL,
				     0};
	struct erofs_image *img = NULL;
	struct erofs_inode_info info;
	char out[512];
	uint64_t blocks = 0, nid;

	snprintf(out, sizeof(out), "%s/fsmeta.erofs", workdir);
	CHECK(fsmeta_write(&blocks, out, &layer, 1, SEED) == 0);
	CHECK(blocks > 0);
	CHECK(erofs_image_open(&img, out) == 0);
	if (!img)
		return;
	CHECK(le16toh(erofs_image_super(img)->extra_devices) == 1);
	CHECK(le32toh(erofs_image_super(img)->blocks) == blocks);
	CHECK(erofs_image_inode(&info, img, lookup(img, "big")) == 0);
	CHECK(info.datalayout == EROFS_INODE_CHUNK_BASED);
	CHECK(info.size == BIG_SIZE);
	erofs_inode_info_clear(&info);
	CHECK(erofs_image_lookup(&nid, img, "sub/inner") == 0);
	CHECK(erofs_image_inode(&info, img, lookup(img, "hard")) == 0);
	CHECK(info.nlink == 2);
	erofs_inode_info_clear(&info);
	erofs_image_close(img);
}

static void test_fsmeta_refuses_inline_layer_files(void)
{
	struct fsmeta_layer layer = {image_path("inline.erofs"), "inline", NULL,
				     0};
	char out[512];

	snprintf(out, sizeof(out), "%s/refused.erofs", workdir);
	CHECK(fsmeta_write(NULL, out, &layer, 1, SEED) ==
	      OCICACHE_EUNSUPPORTED);
	CHECK(strstr(oc_err_message(), "inline.erofs") != NULL);
	CHECK(access(out, F_OK) != 0);
}

int main(void)
{
	char cmd[512];

	snprintf(workdir, sizeof(workdir), "/tmp/ocicache-test-erofs.XXXXXX");
	if (!mkdtemp(workdir)) {
		perror("mkdtemp");
		return 1;
	}
	have_mkfs = system("command -v mkfs.erofs >/dev/null 2>&1") == 0;
	if (have_mkfs) {
		make_tree();
		have_mkfs =
		    make_image("plain.erofs", "-Enoinline_data") == 0 &&
		    make_image("inline.erofs", "") == 0 &&
		    make_image("chunked.erofs", "--chunksize=4096") == 0;
	}

	if (have_mkfs) {
		RUN(test_reads_plain_image);
		RUN(test_reads_inline_image);
		RUN(test_reads_chunked_image);
		RUN(test_lookup_missing_is_not_found);
		RUN(test_bad_superblocks_are_format_errors);
		RUN(test_bad_nameoff_is_format_error);
		RUN(test_corrupt_metadata_never_crashes);
		RUN(test_fsmeta_output_reads_back);
		RUN(test_fsmeta_refuses_inline_layer_files);
	} else {
		printf("SKIP test_erofs: mkfs.erofs (erofs-utils) not found or "
		       "failed\n");
	}

	snprintf(cmd, sizeof(cmd), "rm -rf %s", workdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", workdir);
	return check_done();
}
