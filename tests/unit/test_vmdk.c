/*
 * The VMDK descriptor: its exact text, its determinism, and qemu-img (a
 * reader we did not write) joining the extents into one raw disk.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/file.h"
#include "tests/unit/check.h"
#include "vmdk/vmdk.h"

#define SEED      \
	"sha256:" \
	"89abcdef0123456789abcdef0123456789abcdef0123456789abcdef01234567"

static char workdir[256];

static const char *in_dir(const char *name)
{
	static char path[4][512];
	static int next;

	next = (next + 1) % 4;
	snprintf(path[next], sizeof(path[next]), "%s/%s", workdir, name);
	return path[next];
}

static char *slurp(const char *path)
{
	struct buf b = BUF_INIT;

	if (file_read_all(&b, path, 1 << 20) < 0)
		return NULL;
	return buf_detach(&b);
}

static const char ddb_head[] = "\n"
			       "# The Disk Data Base\n"
			       "#DDB\n"
			       "\n"
			       "ddb.virtualHWVersion = \"4\"\n";

static void test_small_descriptor_exact_text(void)
{
	const struct vmdk_extent ext[] = {
	    {"fsmeta.erofs", 8192},
	    {"../layers/sha256/abc.erofs", 409600},
	};
	const char *want = "# Disk DescriptorFile\n"
			   "version=1\n"
			   "CID=89abcdef\n"
			   "parentCID=ffffffff\n"
			   "createType=\"twoGbMaxExtentFlat\"\n"
			   "\n"
			   "# Extent description\n"
			   "RW 16 FLAT \"fsmeta.erofs\" 0\n"
			   "RW 800 FLAT \"../layers/sha256/abc.erofs\" 0\n"
			   "\n"
			   "# The Disk Data Base\n"
			   "#DDB\n"
			   "\n"
			   "ddb.virtualHWVersion = \"4\"\n"
			   "ddb.geometry.cylinders = \"0\"\n"
			   "ddb.geometry.heads = \"16\"\n"
			   "ddb.geometry.sectors = \"63\"\n"
			   "ddb.adapterType = \"ide\"\n"
			   "ddb.toolsVersion = \"2147483647\"\n";
	char *got;

	CHECK(vmdk_write(in_dir("small.vmdk"), ext, 2, SEED) == 0);
	got = slurp(in_dir("small.vmdk"));
	CHECK_STR(got, want);
	free(got);
}

/* A 5 GiB + 4 KiB layer: three lines over the same file, 2 GiB each but
 * the last, offsets growing. The files need not exist. */
static void test_large_file_splits_into_2gib_extents(void)
{
	const struct vmdk_extent ext[] = {
	    {"fsmeta.erofs", 4096},
	    {"/abs/big.erofs", 5ull * 1024 * 1024 * 1024 + 4096},
	    {"small.erofs", 2ull * 1024 * 1024 * 1024},
	};
	const char *want_extents =
	    "# Extent description\n"
	    "RW 8 FLAT \"fsmeta.erofs\" 0\n"
	    "RW 4194304 FLAT \"/abs/big.erofs\" 0\n"
	    "RW 4194304 FLAT \"/abs/big.erofs\" 4194304\n"
	    "RW 2097160 FLAT \"/abs/big.erofs\" 8388608\n"
	    "RW 4194304 FLAT \"small.erofs\" 0\n";
	/* (8 + 10485768 + 4194304) sectors / (16 * 63) */
	const char *want_geometry = "ddb.geometry.cylinders = \"14563\"\n";
	char *got;

	CHECK(vmdk_write(in_dir("big.vmdk"), ext, 3, SEED) == 0);
	got = slurp(in_dir("big.vmdk"));
	CHECK(got && strstr(got, want_extents) != NULL);
	CHECK(got && strstr(got, ddb_head) != NULL);
	CHECK(got && strstr(got, want_geometry) != NULL);
	free(got);
}

static void test_same_inputs_same_bytes_no_temp_left(void)
{
	const struct vmdk_extent ext[] = {{"a.erofs", 4096}};
	char *first, *second;
	struct dirent *de;
	DIR *dir;
	int others = 0;

	CHECK(vmdk_write(in_dir("det.vmdk"), ext, 1, SEED) == 0);
	first = slurp(in_dir("det.vmdk"));
	CHECK(vmdk_write(in_dir("det.vmdk"), ext, 1, SEED) == 0);
	second = slurp(in_dir("det.vmdk"));
	CHECK(first && second && strcmp(first, second) == 0);
	free(first);
	free(second);

	dir = opendir(workdir);
	CHECK(dir != NULL);
	while (dir && (de = readdir(dir)))
		others += strstr(de->d_name, ".tmp") != NULL;
	if (dir)
		closedir(dir);
	CHECK(others == 0);
}

static void test_bad_extents_are_refused(void)
{
	const struct vmdk_extent odd[] = {{"a.erofs", 4097}};
	const struct vmdk_extent quote[] = {{"a\".erofs", 4096}};
	const struct vmdk_extent empty[] = {{"a.erofs", 0}};

	CHECK(vmdk_write(in_dir("bad.vmdk"), odd, 1, SEED) == OCICACHE_EINVAL);
	CHECK(strstr(oc_err_message(), "a.erofs") != NULL);
	CHECK(vmdk_write(in_dir("bad.vmdk"), quote, 1, SEED) ==
	      OCICACHE_EINVAL);
	CHECK(vmdk_write(in_dir("bad.vmdk"), empty, 1, SEED) ==
	      OCICACHE_EINVAL);
	CHECK(vmdk_write(in_dir("bad.vmdk"), odd, 1, "sha256:xyz") ==
	      OCICACHE_EINVAL);
	CHECK(access(in_dir("bad.vmdk"), F_OK) != 0);
}

static int make_file(const char *path, size_t len, int fill)
{
	char *data = malloc(len);
	FILE *f = fopen(path, "wb");
	int ok = data && f &&
		 fwrite(data ? memset(data, fill, len) : "", 1, len, f) == len;

	if (f)
		fclose(f);
	free(data);
	return ok ? 0 : -1;
}

/* qemu-img reads the descriptor, resolves the relative paths against its
 * folder, and the raw disk it writes is the extents end to end. */
static void test_qemu_img_joins_extents(void)
{
	const struct vmdk_extent ext[] = {
	    {"one.img", 8192},
	    {"two.img", 4096},
	};
	char cmd[2048];
	char *raw;
	struct buf b = BUF_INIT;

	CHECK(make_file(in_dir("one.img"), 8192, 'a') == 0);
	CHECK(make_file(in_dir("two.img"), 4096, 'b') == 0);
	CHECK(vmdk_write(in_dir("join.vmdk"), ext, 2, SEED) == 0);
	snprintf(cmd, sizeof(cmd),
		 "cd / && qemu-img convert -f vmdk %s -O raw %s >/dev/null "
		 "2>&1",
		 in_dir("join.vmdk"), in_dir("join.raw"));
	CHECK(system(cmd) == 0);
	CHECK(file_read_all(&b, in_dir("join.raw"), 1 << 20) == 0);
	raw = b.data;
	CHECK(b.len == 12288);
	CHECK(raw && raw[0] == 'a' && raw[8191] == 'a' && raw[8192] == 'b' &&
	      raw[12287] == 'b');
	buf_free(&b);
}

int main(void)
{
	char cmd[512];

	snprintf(workdir, sizeof(workdir), "/tmp/ocicache-test-vmdk.XXXXXX");
	if (!mkdtemp(workdir)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_small_descriptor_exact_text);
	RUN(test_large_file_splits_into_2gib_extents);
	RUN(test_same_inputs_same_bytes_no_temp_left);
	RUN(test_bad_extents_are_refused);
	if (system("command -v qemu-img >/dev/null 2>&1") == 0)
		RUN(test_qemu_img_joins_extents);
	else
		printf("SKIP test_qemu_img_joins_extents: qemu-img not "
		       "found\n");
	snprintf(cmd, sizeof(cmd), "rm -rf %s", workdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", workdir);
	return check_done();
}
