/*
 * The VMDK descriptor writer. The text follows what `qemu-img create -f
 * vmdk -o subformat=twoGbMaxExtentFlat` writes, so that QEMU and the VMMs
 * that read its descriptors accept it: the same header, one "RW" line per
 * extent of at most 2 GiB, and the same disk database lines (IDE adapter,
 * 16 heads, 63 sectors).
 */
#include "vmdk/vmdk.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/digest.h"
#include "common/error.h"
#include "common/file.h"

#define VMDK_SECTOR		512ull
#define VMDK_MAX_EXTENT_SECTORS (2ull * 1024 * 1024 * 1024 / VMDK_SECTOR)
#define VMDK_HEADS		16
#define VMDK_SECTORS_PER_TRACK	63

static int check_extent(const struct vmdk_extent *e, size_t i)
{
	if (!e->path || !*e->path)
		return oc_err(OCICACHE_EINVAL, "vmdk: extent %zu has no path",
			      i);
	/* The descriptor quotes paths and has no escape for these. */
	if (strpbrk(e->path, "\"\n\r"))
		return oc_err(OCICACHE_EINVAL,
			      "vmdk: extent path %s holds a quote or a newline",
			      e->path);
	if (e->size_bytes == 0 || e->size_bytes % VMDK_SECTOR)
		return oc_err(OCICACHE_EINVAL,
			      "vmdk: extent %s: size %llu is not a positive "
			      "multiple of 512",
			      e->path, (unsigned long long)e->size_bytes);
	return 0;
}

/* One line per 2 GiB piece of the file, over the same file. */
static int put_extent(struct buf *b, const struct vmdk_extent *e)
{
	uint64_t sectors = e->size_bytes / VMDK_SECTOR;

	for (uint64_t off = 0; off < sectors; off += VMDK_MAX_EXTENT_SECTORS) {
		uint64_t n = sectors - off;
		int rc;

		if (n > VMDK_MAX_EXTENT_SECTORS)
			n = VMDK_MAX_EXTENT_SECTORS;
		rc = buf_printf(b, "RW %llu FLAT \"%s\" %llu\n",
				(unsigned long long)n, e->path,
				(unsigned long long)off);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int build_descriptor(struct buf *b, const struct vmdk_extent *extents,
			    size_t count, const char *seed_digest)
{
	uint64_t sectors = 0;
	int rc;

	rc = buf_printf(b,
			"# Disk DescriptorFile\n"
			"version=1\n"
			"CID=%.8s\n"
			"parentCID=ffffffff\n"
			"createType=\"twoGbMaxExtentFlat\"\n"
			"\n"
			"# Extent description\n",
			digest_hex(seed_digest));
	for (size_t i = 0; rc == 0 && i < count; i++) {
		rc = put_extent(b, &extents[i]);
		sectors += extents[i].size_bytes / VMDK_SECTOR;
	}
	if (rc == 0)
		rc = buf_printf(
		    b,
		    "\n"
		    "# The Disk Data Base\n"
		    "#DDB\n"
		    "\n"
		    "ddb.virtualHWVersion = \"4\"\n"
		    "ddb.geometry.cylinders = \"%llu\"\n"
		    "ddb.geometry.heads = \"%d\"\n"
		    "ddb.geometry.sectors = \"%d\"\n"
		    "ddb.adapterType = \"ide\"\n"
		    "ddb.toolsVersion = \"2147483647\"\n",
		    (unsigned long long)(sectors /
					 (VMDK_HEADS * VMDK_SECTORS_PER_TRACK)),
		    VMDK_HEADS, VMDK_SECTORS_PER_TRACK);
	return rc;
}

/* Write `b` to a temporary file beside `out_path`, then rename it over. */
static int write_atomic(const char *out_path, const struct buf *b)
{
	struct buf tmp = BUF_INIT;
	int fd = -1, rc;

	rc = buf_printf(&tmp, "%s.tmp.XXXXXX", out_path);
	if (rc < 0)
		return rc;
	fd = mkstemp(tmp.data);
	if (fd < 0) {
		rc = oc_err_errno("vmdk: create %s", tmp.data);
		goto out;
	}
	if (fchmod(fd, 0644) < 0) {
		rc = oc_err_errno("vmdk: chmod %s", tmp.data);
		goto err_unlink;
	}
	rc = file_write_all(fd, b->data, b->len, tmp.data);
	if (rc < 0)
		goto err_unlink;
	if (fsync(fd) < 0) {
		rc = oc_err_errno("vmdk: sync %s", tmp.data);
		goto err_unlink;
	}
	if (close(fd) < 0) {
		fd = -1;
		rc = oc_err_errno("vmdk: close %s", tmp.data);
		goto err_unlink;
	}
	fd = -1;
	if (rename(tmp.data, out_path) < 0) {
		rc = oc_err_errno("vmdk: rename %s to %s", tmp.data, out_path);
		goto err_unlink;
	}
	goto out;

err_unlink:
	if (fd >= 0)
		close(fd);
	unlink(tmp.data);
out:
	buf_free(&tmp);
	return rc;
}

int vmdk_write(const char *out_path, const struct vmdk_extent *extents,
	       size_t count, const char *seed_digest)
{
	struct buf b = BUF_INIT;
	int rc;

	if (!seed_digest || !digest_valid(seed_digest))
		return oc_err(OCICACHE_EINVAL, "vmdk %s: invalid seed digest",
			      out_path);
	if (count == 0)
		return oc_err(OCICACHE_EINVAL, "vmdk %s: no extents", out_path);
	for (size_t i = 0; i < count; i++) {
		rc = check_extent(&extents[i], i);
		if (rc < 0)
			return rc;
	}

	rc = build_descriptor(&b, extents, count, seed_digest);
	if (rc == 0)
		rc = write_atomic(out_path, &b);
	buf_free(&b);
	return rc;
}
