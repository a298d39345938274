/*
 * The EROFS on-disk format, as far as ocicache writes and reads it.
 *
 * Taken from the Linux kernel's description of the format
 * (fs/erofs/erofs_fs.h, Documentation/filesystems/erofs.rst). Every field is
 * little-endian: fill them with htole16/32/64 and read them with
 * le16/32/64toh from <endian.h>. The structs are packed and their sizes
 * checked at compile time.
 */
#ifndef OCICACHE_CONVERT_EROFS_FS_H
#define OCICACHE_CONVERT_EROFS_FS_H

#include <assert.h>
#include <endian.h>
#include <isa-l/crc.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#define EROFS_MAGIC	   0xE0F5E1E2u
#define EROFS_SUPER_OFFSET 1024
#define EROFS_BLKSZ_BITS   12
#define EROFS_BLKSZ	   (1u << EROFS_BLKSZ_BITS)
#define EROFS_ISLOT_BITS   5 /* inodes sit at 32-byte slots: nid * 32 */
#define EROFS_NAME_LEN	   255

#define EROFS_FEATURE_COMPAT_SB_CHKSUM	    0x00000001u
#define EROFS_FEATURE_COMPAT_MTIME	    0x00000002u
#define EROFS_FEATURE_INCOMPAT_CHUNKED_FILE 0x00000004u
#define EROFS_FEATURE_INCOMPAT_DEVICE_TABLE 0x00000008u

struct erofs_super_block {
	uint32_t magic;	   /* EROFS_MAGIC */
	uint32_t checksum; /* crc32c, see NOTES in erofs_writer.c */
	uint32_t feature_compat;
	uint8_t blkszbits;   /* 12 */
	uint8_t sb_extslots; /* 0 */
	uint16_t root_nid;
	uint64_t inos;	     /* number of inodes */
	uint64_t build_time; /* mtime of compact inodes */
	uint32_t build_time_nsec;
	uint32_t blocks;	/* blocks of this device */
	uint32_t meta_blkaddr;	/* start of the inode area */
	uint32_t xattr_blkaddr; /* start of shared xattrs */
	uint8_t uuid[16];
	uint8_t volume_name[16];
	uint32_t feature_incompat;
	uint16_t available_compr_algs;
	uint16_t extra_devices;
	uint16_t devt_slotoff; /* device table at devt_slotoff * 128 */
	uint8_t dirblkbits;    /* 0 */
	uint8_t xattr_prefix_count;
	uint32_t xattr_prefix_start;
	uint64_t packed_nid;
	uint8_t xattr_filter_reserved;
	uint8_t reserved2[23];
} __attribute__((packed));
static_assert(sizeof(struct erofs_super_block) == 128, "superblock size");

#define EROFS_DEVT_SLOT_SIZE 128

struct erofs_deviceslot {
	uint8_t tag[64]; /* free text; we store the layer's diff_id hex */
	uint32_t blocks; /* blocks of that device */
	uint32_t mapped_blkaddr; /* where it starts on one flat disk */
	uint8_t reserved[56];
} __attribute__((packed));
static_assert(sizeof(struct erofs_deviceslot) == 128, "device slot size");

/* i_format: bit 0 the inode version, bits 1-3 the data layout. */
#define EROFS_INODE_LAYOUT_COMPACT  0
#define EROFS_INODE_LAYOUT_EXTENDED 1
#define EROFS_I_VERSION_MASK	    0x01
#define EROFS_I_DATALAYOUT_BIT	    1
#define EROFS_I_DATALAYOUT_MASK	    0x07

#define EROFS_INODE_FLAT_PLAIN	0
#define EROFS_INODE_FLAT_INLINE 2
#define EROFS_INODE_CHUNK_BASED 4

static inline uint16_t erofs_i_format(int version, int datalayout)
{
	return (uint16_t)(version | (datalayout << EROFS_I_DATALAYOUT_BIT));
}

/* For CHUNK_BASED inodes, i_u holds the chunk format. */
#define EROFS_CHUNK_FORMAT_BLKBITS_MASK 0x001F
#define EROFS_CHUNK_FORMAT_INDEXES	0x0020

struct erofs_inode_compact {
	uint16_t i_format;
	uint16_t i_xattr_icount;
	uint16_t i_mode;
	uint16_t i_nlink;
	uint32_t i_size;
	uint32_t i_reserved;
	uint32_t i_u; /* first block, rdev, or chunk format */
	uint32_t i_ino;
	uint16_t i_uid;
	uint16_t i_gid;
	uint32_t i_reserved2;
} __attribute__((packed));
static_assert(sizeof(struct erofs_inode_compact) == 32, "compact inode");

struct erofs_inode_extended {
	uint16_t i_format;
	uint16_t i_xattr_icount;
	uint16_t i_mode;
	uint16_t i_reserved;
	uint64_t i_size;
	uint32_t i_u;
	uint32_t i_ino;
	uint32_t i_uid;
	uint32_t i_gid;
	uint64_t i_mtime;
	uint32_t i_mtime_nsec;
	uint32_t i_nlink;
	uint8_t i_reserved2[16];
} __attribute__((packed));
static_assert(sizeof(struct erofs_inode_extended) == 64, "extended inode");

struct erofs_inode_chunk_index {
	uint16_t advise;    /* 0 */
	uint16_t device_id; /* 0: this device; N: device table slot N - 1 */
	uint32_t blkaddr;   /* EROFS_NULL_ADDR for a hole */
} __attribute__((packed));
static_assert(sizeof(struct erofs_inode_chunk_index) == 8, "chunk index");

#define EROFS_NULL_ADDR 0xFFFFFFFFu

/* The inline xattr body starts with this header. */
struct erofs_xattr_ibody_header {
	uint32_t h_name_filter; /* 0: no bloom filter */
	uint8_t h_shared_count;
	uint8_t h_reserved2[7];
	/* uint32_t h_shared_xattrs[h_shared_count]; */
} __attribute__((packed));
static_assert(sizeof(struct erofs_xattr_ibody_header) == 12, "xattr header");

struct erofs_xattr_entry {
	uint8_t e_name_len;
	uint8_t e_name_index;
	uint16_t e_value_size;
	/* char e_name[e_name_len]; char e_value[e_value_size]; padded to 4 */
} __attribute__((packed));
static_assert(sizeof(struct erofs_xattr_entry) == 4, "xattr entry");

/* xattr_icount = (body size - 12) / 4 + 1; 0 means no xattrs. */
static inline unsigned int erofs_xattr_ibody_size(uint16_t icount)
{
	return icount ? 12 + (icount - 1u) * 4u : 0;
}

#define EROFS_XATTR_INDEX_USER		    1
#define EROFS_XATTR_INDEX_POSIX_ACL_ACCESS  2
#define EROFS_XATTR_INDEX_POSIX_ACL_DEFAULT 3
#define EROFS_XATTR_INDEX_TRUSTED	    4
#define EROFS_XATTR_INDEX_LUSTRE	    5
#define EROFS_XATTR_INDEX_SECURITY	    6

struct erofs_dirent {
	uint64_t nid;
	uint16_t nameoff; /* offset of the name within the directory block */
	uint8_t file_type;
	uint8_t reserved;
} __attribute__((packed));
static_assert(sizeof(struct erofs_dirent) == 12, "dirent");

enum erofs_file_type {
	EROFS_FT_UNKNOWN = 0,
	EROFS_FT_REG_FILE = 1,
	EROFS_FT_DIR = 2,
	EROFS_FT_CHRDEV = 3,
	EROFS_FT_BLKDEV = 4,
	EROFS_FT_FIFO = 5,
	EROFS_FT_SOCK = 6,
	EROFS_FT_SYMLINK = 7
};

/*
 * The superblock checksum of block 0 (`block`, EROFS_BLKSZ bytes): CRC-32C
 * of bytes [1024, 4096) with the checksum field taken as zero, seeded with
 * ~0 and not inverted at the end, as the kernel computes it.
 */
static inline uint32_t erofs_super_checksum(const uint8_t *block)
{
	uint8_t rest[EROFS_BLKSZ - EROFS_SUPER_OFFSET];

	memcpy(rest, block + EROFS_SUPER_OFFSET, sizeof(rest));
	memset(rest + offsetof(struct erofs_super_block, checksum), 0,
	       sizeof(uint32_t));
	return crc32_iscsi(rest, (int)sizeof(rest), ~0u);
}

/* The order of names in a directory: bytes compared, a prefix first. */
static inline int erofs_name_cmp(const char *a, size_t alen, const char *b,
				 size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

/* The directory entry type of an inode mode. */
static inline uint8_t erofs_file_type(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
		return EROFS_FT_REG_FILE;
	case S_IFDIR:
		return EROFS_FT_DIR;
	case S_IFCHR:
		return EROFS_FT_CHRDEV;
	case S_IFBLK:
		return EROFS_FT_BLKDEV;
	case S_IFIFO:
		return EROFS_FT_FIFO;
	case S_IFSOCK:
		return EROFS_FT_SOCK;
	case S_IFLNK:
		return EROFS_FT_SYMLINK;
	default:
		return EROFS_FT_UNKNOWN;
	}
}

/* rdev as EROFS stores it in i_u (the kernel's new_encode_dev). */
static inline uint32_t erofs_encode_dev(uint32_t major, uint32_t minor)
{
	return (minor & 0xffu) | (major << 8) | ((minor & ~0xffu) << 12);
}

static inline void erofs_decode_dev(uint32_t dev, uint32_t *major,
				    uint32_t *minor)
{
	*major = (dev & 0xfff00u) >> 8;
	*minor = (dev & 0xffu) | ((dev >> 12) & 0xfff00u);
}

#endif
