/*
 * A bounds-checked EROFS reader.
 *
 * Every read goes through img_pread(), which refuses any range outside the
 * image (the superblock's block count, which must fit in the file), so a
 * corrupt offset or size anywhere is an OCICACHE_EFORMAT naming the image
 * and the inode, never a read past the end or a crash.
 */
#include "convert/erofs_reader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "common/file.h"

/* Incompat features whose meaning does not change how we read an
 * uncompressed image: 0x1 only concerns compressed data. */
#define READER_INCOMPAT_KNOWN                         \
	(0x1u | EROFS_FEATURE_INCOMPAT_CHUNKED_FILE | \
	 EROFS_FEATURE_INCOMPAT_DEVICE_TABLE)

#define CHUNK_FORMAT_KNOWN \
	(EROFS_CHUNK_FORMAT_BLKBITS_MASK | EROFS_CHUNK_FORMAT_INDEXES)

struct erofs_image {
	int fd;
	char *path;
	uint64_t limit; /* bytes of the image: blocks * block size */
	uint64_t meta_off;
	uint64_t xattr_off;
	struct erofs_super_block sb; /* as on disk (little-endian) */
};

/* What the data reader needs, taken from the inode itself rather than from
 * a caller's copy. */
struct inode_loc {
	uint64_t nid;
	uint64_t off; /* of the inode */
	unsigned int isize;
	unsigned int xattr_isize;
	int layout;
	uint16_t mode;
	uint64_t size;
	uint32_t i_u;
	uint64_t data_off; /* inode end plus xattrs */
};

static int corrupt(const struct erofs_image *img, uint64_t nid, const char *fmt,
		   ...) OC_PRINTF(3, 4);

static int corrupt(const struct erofs_image *img, uint64_t nid, const char *fmt,
		   ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return oc_err(OCICACHE_EFORMAT, "erofs %s: nid %llu: %s", img->path,
		      (unsigned long long)nid, what);
}

static int img_pread(struct erofs_image *img, uint64_t nid, void *buf,
		     size_t len, uint64_t off)
{
	if (off > img->limit || len > img->limit - off)
		return corrupt(img, nid,
			       "%zu bytes at %llu lie outside the image", len,
			       (unsigned long long)off);
	return file_pread_all(img->fd, buf, len, off, img->path);
}

static int check_super(struct erofs_image *img, const uint8_t *block0,
		       uint64_t file_size)
{
	const struct erofs_super_block *sb = &img->sb;
	uint32_t incompat = le32toh(sb->feature_incompat);
	uint64_t blocks = le32toh(sb->blocks);

	if (le32toh(sb->magic) != EROFS_MAGIC)
		return oc_err(OCICACHE_EFORMAT, "erofs %s: bad magic 0x%08x",
			      img->path, le32toh(sb->magic));
	if (sb->blkszbits != EROFS_BLKSZ_BITS)
		return oc_err(OCICACHE_EUNSUPPORTED,
			      "erofs %s: block size 2^%u, only 4096 is read",
			      img->path, sb->blkszbits);
	if ((le32toh(sb->feature_compat) & EROFS_FEATURE_COMPAT_SB_CHKSUM) &&
	    erofs_super_checksum(block0) != le32toh(sb->checksum))
		return oc_err(OCICACHE_EFORMAT,
			      "erofs %s: superblock checksum mismatch",
			      img->path);
	if (incompat & ~READER_INCOMPAT_KNOWN)
		return oc_err(OCICACHE_EUNSUPPORTED,
			      "erofs %s: unsupported features 0x%x", img->path,
			      incompat & ~READER_INCOMPAT_KNOWN);
	if (blocks == 0 || blocks * EROFS_BLKSZ > file_size)
		return oc_err(OCICACHE_EFORMAT,
			      "erofs %s: truncated: %llu blocks in a file of "
			      "%llu bytes",
			      img->path, (unsigned long long)blocks,
			      (unsigned long long)file_size);
	img->limit = blocks * EROFS_BLKSZ;
	img->meta_off = (uint64_t)le32toh(sb->meta_blkaddr) * EROFS_BLKSZ;
	img->xattr_off = (uint64_t)le32toh(sb->xattr_blkaddr) * EROFS_BLKSZ;
	if (img->meta_off >= img->limit || img->xattr_off >= img->limit)
		return oc_err(OCICACHE_EFORMAT,
			      "erofs %s: metadata starts past the image end",
			      img->path);
	return 0;
}

int erofs_image_open(struct erofs_image **out, const char *path)
{
	uint8_t block0[EROFS_BLKSZ];
	struct erofs_inode_info root;
	struct erofs_image *img;
	struct stat st;
	int rc;

	*out = NULL;
	img = calloc(1, sizeof(*img));
	if (!img || !(img->path = strdup(path))) {
		free(img);
		return oc_err(OCICACHE_ENOMEM, "erofs %s: out of memory", path);
	}
	img->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (img->fd < 0) {
		rc = oc_err_errno("erofs %s", path);
		goto err;
	}
	if (fstat(img->fd, &st) < 0) {
		rc = oc_err_errno("erofs %s", path);
		goto err;
	}
	if (!S_ISREG(st.st_mode) || st.st_size < (off_t)EROFS_BLKSZ) {
		rc = oc_err(OCICACHE_EFORMAT,
			    "erofs %s: not an image (%lld bytes)", path,
			    (long long)st.st_size);
		goto err;
	}
	rc = file_pread_all(img->fd, block0, sizeof(block0), 0, path);
	if (rc < 0)
		goto err;
	memcpy(&img->sb, block0 + EROFS_SUPER_OFFSET, sizeof(img->sb));
	rc = check_super(img, block0, (uint64_t)st.st_size);
	if (rc < 0)
		goto err;

	rc = erofs_image_inode(&root, img, le16toh(img->sb.root_nid));
	if (rc < 0)
		goto err;
	if (!S_ISDIR(root.mode)) {
		erofs_inode_info_clear(&root);
		rc = corrupt(img, root.nid, "the root is not a directory");
		goto err;
	}
	erofs_inode_info_clear(&root);
	*out = img;
	return 0;

err:
	erofs_image_close(img);
	return rc;
}

void erofs_image_close(struct erofs_image *img)
{
	if (!img)
		return;
	if (img->fd >= 0)
		close(img->fd);
	free(img->path);
	free(img);
}

const struct erofs_super_block *erofs_image_super(const struct erofs_image *img)
{
	return &img->sb;
}

static bool mode_valid(uint16_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
	case S_IFDIR:
	case S_IFLNK:
	case S_IFCHR:
	case S_IFBLK:
	case S_IFIFO:
	case S_IFSOCK:
		return true;
	default:
		return false;
	}
}

/* Check that the data of a FLAT_PLAIN or FLAT_INLINE inode lies inside the
 * image, and that an inline tail stays within its block. */
static int check_flat(struct erofs_image *img, const struct inode_loc *loc)
{
	uint64_t full = loc->size / EROFS_BLKSZ;
	uint64_t tail = loc->size % EROFS_BLKSZ;
	uint64_t image_blocks = img->limit / EROFS_BLKSZ;

	if (loc->layout == EROFS_INODE_FLAT_PLAIN) {
		full += tail ? 1 : 0;
		tail = 0;
	} else if (loc->size && !tail) {
		return corrupt(img, loc->nid, "inline tail of a whole block");
	}
	if (full &&
	    (loc->i_u >= image_blocks || full > image_blocks - loc->i_u))
		return corrupt(img, loc->nid,
			       "data blocks %u+%llu outside the image",
			       loc->i_u, (unsigned long long)full);
	if (!tail)
		return 0;
	if (loc->data_off % EROFS_BLKSZ + tail > EROFS_BLKSZ)
		return corrupt(img, loc->nid, "inline tail crosses a block");
	if (loc->data_off + tail > img->limit)
		return corrupt(img, loc->nid, "inline tail outside the image");
	return 0;
}

static unsigned int chunk_unit(uint32_t format)
{
	return (format & EROFS_CHUNK_FORMAT_INDEXES) ? 8 : 4;
}

static unsigned int chunk_bits(uint32_t format)
{
	return EROFS_BLKSZ_BITS + (format & EROFS_CHUNK_FORMAT_BLKBITS_MASK);
}

static uint64_t chunk_table_off(const struct inode_loc *loc)
{
	uint64_t unit = chunk_unit(loc->i_u);

	return (loc->data_off + unit - 1) / unit * unit;
}

static int check_chunks(struct erofs_image *img, const struct inode_loc *loc)
{
	uint64_t count, start = chunk_table_off(loc);

	if (loc->i_u & ~CHUNK_FORMAT_KNOWN)
		return corrupt(img, loc->nid, "unknown chunk format 0x%x",
			       loc->i_u);
	count = loc->size ? ((loc->size - 1) >> chunk_bits(loc->i_u)) + 1 : 0;
	if (start > img->limit ||
	    count > (img->limit - start) / chunk_unit(loc->i_u))
		return corrupt(img, loc->nid,
			       "%llu chunk indexes outside the image",
			       (unsigned long long)count);
	return 0;
}

static int read_loc(struct inode_loc *loc, struct erofs_image *img,
		    uint64_t nid, uint8_t raw[64])
{
	const struct erofs_inode_compact *dic = (const void *)raw;
	const struct erofs_inode_extended *die = (const void *)raw;
	uint16_t format;
	int rc;

	memset(loc, 0, sizeof(*loc));
	loc->nid = nid;
	if (nid > (img->limit - img->meta_off) >> EROFS_ISLOT_BITS)
		return corrupt(img, nid, "inode outside the image");
	loc->off = img->meta_off + (nid << EROFS_ISLOT_BITS);
	rc = img_pread(img, nid, raw, sizeof(*dic), loc->off);
	if (rc < 0)
		return rc;

	format = le16toh(dic->i_format);
	if (format & ~((EROFS_I_DATALAYOUT_MASK << EROFS_I_DATALAYOUT_BIT) |
		       EROFS_I_VERSION_MASK))
		return corrupt(img, nid, "unknown inode format 0x%x", format);
	loc->layout =
	    (format >> EROFS_I_DATALAYOUT_BIT) & EROFS_I_DATALAYOUT_MASK;
	if ((format & EROFS_I_VERSION_MASK) == EROFS_INODE_LAYOUT_EXTENDED) {
		loc->isize = sizeof(*die);
		rc = img_pread(img, nid, raw, sizeof(*die), loc->off);
		if (rc < 0)
			return rc;
		loc->size = le64toh(die->i_size);
	} else {
		loc->isize = sizeof(*dic);
		loc->size = le32toh(dic->i_size);
	}
	loc->mode = le16toh(dic->i_mode);
	loc->i_u = le32toh(dic->i_u);
	loc->xattr_isize = erofs_xattr_ibody_size(le16toh(dic->i_xattr_icount));
	loc->data_off = loc->off + loc->isize + loc->xattr_isize;
	if (loc->data_off > img->limit)
		return corrupt(img, nid, "inode xattrs outside the image");
	if (!mode_valid(loc->mode))
		return corrupt(img, nid, "invalid mode 0%o", loc->mode);

	switch (loc->layout) {
	case EROFS_INODE_FLAT_PLAIN:
	case EROFS_INODE_FLAT_INLINE:
		return check_flat(img, loc);
	case EROFS_INODE_CHUNK_BASED:
		return check_chunks(img, loc);
	case 1:
	case 3:
		return oc_err(OCICACHE_EUNSUPPORTED,
			      "erofs %s: nid %llu: compressed data is not read",
			      img->path, (unsigned long long)nid);
	default:
		return corrupt(img, nid, "unknown data layout %d", loc->layout);
	}
}

static int add_xattr(struct erofs_inode_info *info, struct erofs_image *img,
		     const struct erofs_xattr_entry *e, const uint8_t *body)
{
	struct erofs_xattr *x = &info->xattrs[info->xattr_count];
	uint16_t vsize = le16toh(e->e_value_size);

	if (e->e_name_index & 0x80)
		return oc_err(OCICACHE_EUNSUPPORTED,
			      "erofs %s: nid %llu: long xattr name prefixes "
			      "are not read",
			      img->path, (unsigned long long)info->nid);
	x->name = malloc(e->e_name_len + 1u);
	x->value = malloc(vsize + 1u);
	if (!x->name || !x->value) {
		free(x->name);
		free(x->value);
		return oc_err(OCICACHE_ENOMEM, "erofs %s: out of memory",
			      img->path);
	}
	memcpy(x->name, body, e->e_name_len);
	x->name[e->e_name_len] = '\0';
	memcpy(x->value, body + e->e_name_len, vsize);
	x->value[vsize] = '\0';
	x->name_index = e->e_name_index;
	x->name_len = e->e_name_len;
	x->value_size = vsize;
	info->xattr_count++;
	return 0;
}

static int read_shared_xattr(struct erofs_inode_info *info,
			     struct erofs_image *img, uint32_t id)
{
	struct erofs_xattr_entry e;
	uint64_t off = img->xattr_off + (uint64_t)id * 4;
	uint8_t *data;
	size_t len;
	int rc;

	rc = img_pread(img, info->nid, &e, sizeof(e), off);
	if (rc < 0)
		return rc;
	len = (size_t)e.e_name_len + le16toh(e.e_value_size);
	data = malloc(len ? len : 1);
	if (!data)
		return oc_err(OCICACHE_ENOMEM, "erofs %s: out of memory",
			      img->path);
	rc = img_pread(img, info->nid, data, len, off + sizeof(e));
	if (rc == 0)
		rc = add_xattr(info, img, &e, data);
	free(data);
	return rc;
}

static int read_xattrs(struct erofs_inode_info *info, struct erofs_image *img,
		       const struct inode_loc *loc)
{
	const struct erofs_xattr_ibody_header *h;
	size_t size = loc->xattr_isize, pos, max;
	uint8_t *body;
	int rc;

	if (!size)
		return 0;
	body = malloc(size);
	if (!body)
		return oc_err(OCICACHE_ENOMEM, "erofs %s: out of memory",
			      img->path);
	rc = img_pread(img, loc->nid, body, size, loc->off + loc->isize);
	if (rc < 0)
		goto out;
	h = (const void *)body;
	pos = sizeof(*h) + 4u * h->h_shared_count;
	if (pos > size) {
		rc = corrupt(img, loc->nid, "%u shared xattrs overflow icount",
			     h->h_shared_count);
		goto out;
	}
	/* Each entry takes at least 4 bytes, so this bounds the count. */
	max = h->h_shared_count + (size - pos) / 4;
	info->xattrs = calloc(max ? max : 1, sizeof(*info->xattrs));
	if (!info->xattrs) {
		rc = oc_err(OCICACHE_ENOMEM, "erofs %s: out of memory",
			    img->path);
		goto out;
	}
	for (unsigned int i = 0; i < h->h_shared_count; i++) {
		uint32_t id;

		memcpy(&id, body + sizeof(*h) + 4 * i, 4);
		rc = read_shared_xattr(info, img, le32toh(id));
		if (rc < 0)
			goto out;
	}
	while (pos < size) {
		struct erofs_xattr_entry e;
		size_t len;

		if (size - pos < sizeof(e)) {
			rc = corrupt(img, loc->nid, "xattr entry overflows");
			goto out;
		}
		memcpy(&e, body + pos, sizeof(e));
		len = sizeof(e) + e.e_name_len + le16toh(e.e_value_size);
		len = (len + 3) & ~(size_t)3;
		if (len > size - pos) {
			rc = corrupt(img, loc->nid, "xattr entry overflows");
			goto out;
		}
		rc = add_xattr(info, img, &e, body + pos + sizeof(e));
		if (rc < 0)
			goto out;
		pos += len;
	}
out:
	free(body);
	return rc;
}

int erofs_image_inode(struct erofs_inode_info *out, struct erofs_image *img,
		      uint64_t nid)
{
	uint8_t raw[64];
	const struct erofs_inode_compact *dic = (const void *)raw;
	const struct erofs_inode_extended *die = (const void *)raw;
	struct inode_loc loc;
	int rc;

	memset(out, 0, sizeof(*out));
	out->nid = nid;
	rc = read_loc(&loc, img, nid, raw);
	if (rc < 0)
		return rc;

	out->mode = loc.mode;
	out->size = loc.size;
	out->datalayout = loc.layout;
	if (loc.isize == sizeof(*die)) {
		out->uid = le32toh(die->i_uid);
		out->gid = le32toh(die->i_gid);
		out->mtime = le64toh(die->i_mtime);
		out->mtime_nsec = le32toh(die->i_mtime_nsec);
		out->nlink = le32toh(die->i_nlink);
	} else {
		out->uid = le16toh(dic->i_uid);
		out->gid = le16toh(dic->i_gid);
		out->mtime = le64toh(img->sb.build_time);
		out->mtime_nsec = le32toh(img->sb.build_time_nsec);
		out->nlink = le16toh(dic->i_nlink);
	}
	if (S_ISCHR(loc.mode) || S_ISBLK(loc.mode))
		out->rdev = loc.i_u;
	if (loc.layout != EROFS_INODE_CHUNK_BASED)
		out->raw_blkaddr = loc.i_u;

	rc = read_xattrs(out, img, &loc);
	if (rc < 0)
		erofs_inode_info_clear(out);
	return rc;
}

void erofs_inode_info_clear(struct erofs_inode_info *info)
{
	for (size_t i = 0; i < info->xattr_count; i++) {
		free(info->xattrs[i].name);
		free(info->xattrs[i].value);
	}
	free(info->xattrs);
	info->xattrs = NULL;
	info->xattr_count = 0;
}

/*
 * Where the byte at `pos` of the file lives: `*phys` in this image and
 * `*run` bytes that follow contiguously (never past the file's end);
 * `*phys` is UINT64_MAX for a hole.
 */
static int map_chunk(uint64_t *phys, uint64_t *run, struct erofs_image *img,
		     const struct inode_loc *loc, uint64_t pos)
{
	unsigned int bits = chunk_bits(loc->i_u);
	uint64_t nr = pos >> bits, start = nr << bits;
	uint64_t end = start + (1ull << bits);
	uint32_t blkaddr;
	uint16_t device = 0;
	int rc;

	if (end > loc->size)
		end = loc->size;
	*run = end - pos;
	if (loc->i_u & EROFS_CHUNK_FORMAT_INDEXES) {
		struct erofs_inode_chunk_index idx;

		rc = img_pread(img, loc->nid, &idx, sizeof(idx),
			       chunk_table_off(loc) + nr * sizeof(idx));
		if (rc < 0)
			return rc;
		blkaddr = le32toh(idx.blkaddr);
		device = le16toh(idx.device_id);
	} else {
		rc = img_pread(img, loc->nid, &blkaddr, sizeof(blkaddr),
			       chunk_table_off(loc) + nr * sizeof(blkaddr));
		if (rc < 0)
			return rc;
		blkaddr = le32toh(blkaddr);
	}
	if (blkaddr == EROFS_NULL_ADDR) {
		*phys = UINT64_MAX;
		return 0;
	}
	if (device)
		return oc_err(OCICACHE_EUNSUPPORTED,
			      "erofs %s: nid %llu: data on device %u is not "
			      "read",
			      img->path, (unsigned long long)loc->nid, device);
	*phys = (uint64_t)blkaddr * EROFS_BLKSZ + (pos - start);
	return 0;
}

static int map_data(uint64_t *phys, uint64_t *run, struct erofs_image *img,
		    const struct inode_loc *loc, uint64_t pos)
{
	uint64_t blocks_bytes = loc->size / EROFS_BLKSZ * EROFS_BLKSZ;

	if (loc->layout == EROFS_INODE_CHUNK_BASED)
		return map_chunk(phys, run, img, loc, pos);
	if (loc->layout == EROFS_INODE_FLAT_PLAIN || pos < blocks_bytes) {
		uint64_t end = loc->layout == EROFS_INODE_FLAT_PLAIN
				   ? loc->size
				   : blocks_bytes;

		*phys = (uint64_t)loc->i_u * EROFS_BLKSZ + pos;
		*run = end - pos;
		return 0;
	}
	*phys = loc->data_off + (pos - blocks_bytes);
	*run = loc->size - pos;
	return 0;
}

static int64_t read_data(struct erofs_image *img, const struct inode_loc *loc,
			 void *buf, size_t len, uint64_t offset)
{
	uint8_t *p = buf;
	size_t done = 0;

	if (offset >= loc->size)
		return 0;
	if (len > loc->size - offset)
		len = (size_t)(loc->size - offset);
	if (len > INT64_MAX)
		len = INT64_MAX;
	while (done < len) {
		uint64_t phys, run;
		int rc;

		rc = map_data(&phys, &run, img, loc, offset + done);
		if (rc < 0)
			return rc;
		if (run > len - done)
			run = len - done;
		if (run == 0)
			return corrupt(img, loc->nid, "empty data mapping");
		if (phys == UINT64_MAX)
			memset(p + done, 0, (size_t)run);
		else if ((rc = img_pread(img, loc->nid, p + done, (size_t)run,
					 phys)) < 0)
			return rc;
		done += (size_t)run;
	}
	return (int64_t)done;
}

int64_t erofs_image_read(struct erofs_image *img,
			 const struct erofs_inode_info *inode, void *buf,
			 size_t len, uint64_t offset)
{
	uint8_t raw[64];
	struct inode_loc loc;
	int rc;

	rc = read_loc(&loc, img, inode->nid, raw);
	if (rc < 0)
		return rc;
	return read_data(img, &loc, buf, len, offset);
}

/* Parse one directory block of `len` bytes and hand its entries to `fn`. */
static int parse_dir_block(struct erofs_image *img, uint64_t dir_nid,
			   const uint8_t *blk, size_t len, erofs_dirent_fn fn,
			   void *ud)
{
	struct erofs_dirent de;
	unsigned int count, first;

	if (len < sizeof(de))
		return corrupt(img, dir_nid, "directory block of %zu bytes",
			       len);
	memcpy(&de, blk, sizeof(de));
	first = le16toh(de.nameoff);
	if (first < sizeof(de) || first % sizeof(de) || first > len)
		return corrupt(img, dir_nid, "invalid nameoff %u", first);
	count = first / sizeof(de);

	for (unsigned int i = 0; i < count; i++) {
		char name[EROFS_NAME_LEN + 1];
		size_t off, end, name_len;
		int rc;

		memcpy(&de, blk + i * sizeof(de), sizeof(de));
		off = le16toh(de.nameoff);
		if (i + 1 < count) {
			struct erofs_dirent next;

			memcpy(&next, blk + (i + 1) * sizeof(de), sizeof(de));
			end = le16toh(next.nameoff);
		} else {
			end = len;
		}
		if (off < first || off >= end || end > len)
			return corrupt(img, dir_nid, "invalid nameoff %zu",
				       off);
		name_len = end - off;
		if (i + 1 == count)
			name_len = strnlen((const char *)blk + off, name_len);
		if (name_len == 0 || name_len > EROFS_NAME_LEN ||
		    memchr(blk + off, '\0', name_len) ||
		    memchr(blk + off, '/', name_len))
			return corrupt(img, dir_nid,
				       "invalid name at nameoff %zu", off);
		memcpy(name, blk + off, name_len);
		name[name_len] = '\0';
		if (!strcmp(name, ".") || !strcmp(name, ".."))
			continue;
		rc = fn(ud, name, name_len, le64toh(de.nid), de.file_type);
		if (rc)
			return rc;
	}
	return 0;
}

int erofs_image_readdir(struct erofs_image *img, uint64_t dir_nid,
			erofs_dirent_fn fn, void *ud)
{
	uint8_t raw[64], blk[EROFS_BLKSZ];
	struct inode_loc loc;
	int rc;

	rc = read_loc(&loc, img, dir_nid, raw);
	if (rc < 0)
		return rc;
	if (!S_ISDIR(loc.mode))
		return corrupt(img, dir_nid, "not a directory");

	for (uint64_t pos = 0; pos < loc.size; pos += EROFS_BLKSZ) {
		int64_t n = read_data(img, &loc, blk, sizeof(blk), pos);

		if (n < 0)
			return (int)n;
		rc = parse_dir_block(img, dir_nid, blk, (size_t)n, fn, ud);
		if (rc)
			return rc;
	}
	return 0;
}

struct lookup_ctx {
	const char *name;
	size_t len;
	uint64_t nid;
	bool found;
};

static int lookup_entry(void *ud, const char *name, size_t name_len,
			uint64_t nid, uint8_t file_type)
{
	struct lookup_ctx *ctx = ud;

	(void)file_type;
	if (name_len != ctx->len || memcmp(name, ctx->name, name_len))
		return 0;
	ctx->nid = nid;
	ctx->found = true;
	return 1;
}

int erofs_image_lookup(uint64_t *nid_out, struct erofs_image *img,
		       const char *path)
{
	uint64_t nid = le16toh(img->sb.root_nid);
	const char *p = path;

	while (*p) {
		struct lookup_ctx ctx = {0};
		struct erofs_inode_info info;
		int rc;

		if (*p == '/') {
			p++;
			continue;
		}
		ctx.name = p;
		ctx.len = strcspn(p, "/");
		rc = erofs_image_inode(&info, img, nid);
		if (rc < 0)
			return rc;
		erofs_inode_info_clear(&info);
		if (!S_ISDIR(info.mode))
			return oc_err(OCICACHE_ENOTFOUND,
				      "erofs %s: %s: not found (a parent is "
				      "not a directory)",
				      img->path, path);
		rc = erofs_image_readdir(img, nid, lookup_entry, &ctx);
		if (rc < 0)
			return rc;
		if (!ctx.found)
			return oc_err(OCICACHE_ENOTFOUND,
				      "erofs %s: %s: not found", img->path,
				      path);
		nid = ctx.nid;
		p += ctx.len;
	}
	*nid_out = nid;
	return 0;
}
