/*
 * OCI and Docker manifests, indexes and image configs (jansson).
 *
 * Nothing from the network is trusted: digests are validated, sizes must be
 * non-negative and below the caps given here, counts are bounded.
 */
#ifndef OCICACHE_PULL_MANIFEST_H
#define OCICACHE_PULL_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#define MEDIA_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MEDIA_OCI_INDEX	   "application/vnd.oci.image.index.v1+json"
#define MEDIA_DOCKER_MANIFEST \
	"application/vnd.docker.distribution.manifest.v2+json"
#define MEDIA_DOCKER_LIST \
	"application/vnd.docker.distribution.manifest.list.v2+json"

/* Largest manifest, index or config we read. */
#define MANIFEST_MAX_BYTES (4u << 20)
#define CONFIG_MAX_BYTES   (16u << 20)
/* Most layers an image may have (the Linux overlay stack limit is lower). */
#define MANIFEST_MAX_LAYERS 500
#define INDEX_MAX_MANIFESTS 1000

enum manifest_kind { MANIFEST_IMAGE = 1, MANIFEST_INDEX = 2 };

/* How a layer blob is compressed, from its media type. */
enum blob_compression { BLOB_UNCOMPRESSED = 0, BLOB_GZIP = 1, BLOB_ZSTD = 2 };

struct descriptor {
	char *media_type; /* may be NULL (umoci omits some) */
	char *digest;	  /* always valid sha256 */
	int64_t size;	  /* >= 0 */
	/* platform, for index entries; NULL when absent */
	char *os;
	char *architecture;
	char *variant;
};

struct manifest {
	char *media_type;
	struct descriptor config;
	struct descriptor *layers;
	size_t layer_count;
};

struct image_index {
	char *media_type;
	struct descriptor *manifests;
	size_t manifest_count;
};

/*
 * Which kind of document `body` is: from `content_type` (the registry's
 * Content-Type header, may be NULL) first, then the body's mediaType, then
 * its shape (a "manifests" array means an index, a "layers" array an image).
 * Returns MANIFEST_IMAGE or MANIFEST_INDEX, or a negative code.
 */
int manifest_kind(const char *content_type, const char *body, size_t len);

int manifest_parse(struct manifest *out, const char *body, size_t len);
void manifest_free(struct manifest *m);

int image_index_parse(struct image_index *out, const char *body, size_t len);
void image_index_free(struct image_index *idx);

/*
 * The index entry for os/architecture[/variant]. A NULL variant matches any
 * variant but prefers one without; arm64 with no variant also matches "v8".
 * OCICACHE_ENOTFOUND, naming the platform, when none matches.
 */
int image_index_choose(const struct descriptor **out,
		       const struct image_index *idx, const char *os,
		       const char *architecture, const char *variant);

/* The compression a layer media type implies; OCICACHE_EUNSUPPORTED for
 * a non-layer or unknown type. NULL media type means gzip (Docker's
 * default). */
int blob_compression_of(enum blob_compression *out, const char *media_type);

/* The parsed image config: what inspect shows and what verification needs. */
struct image_config {
	char *architecture;
	char *os;
	char *variant;
	char **diff_ids; /* rootfs.diff_ids, bottom first, each valid */
	size_t diff_id_count;
	char **env;	   /* NULL-terminated, never NULL */
	char **cmd;	   /* NULL-terminated, or NULL when absent */
	char **entrypoint; /* NULL-terminated, or NULL when absent */
	char *working_dir;
	char *user;
	char *labels_json; /* compact JSON object text, or NULL */
	char *stop_signal;
};

int image_config_parse(struct image_config *out, const char *body, size_t len);
void image_config_free(struct image_config *c);

/* The host platform in OCI spelling: "linux", "amd64"/"arm64"/..., and a
 * variant or NULL. Static strings. */
void platform_host(const char **os, const char **architecture,
		   const char **variant);

/* Parse "os/arch[/variant]" into malloc'ed parts (variant may be NULL). */
int platform_parse(char **os, char **architecture, char **variant,
		   const char *text);

#endif
