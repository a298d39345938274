/*
 * ocicache: turn OCI image references into microVM root disks, and keep a
 * cache of everything made on the way.
 *
 * Conventions used by every function below:
 * - A function that can fail returns 0 on success or a negative OCICACHE_E*
 *   code; ocicache_error_message() then says what failed and on which object
 *   (reference, digest, path or URL). The message is thread-local and stays
 *   valid until the next failing call on the same thread.
 * - Outputs come first. An object handed out through `**out` belongs to the
 *   caller, who frees it with that type's own _free function; on failure
 *   `*out` is left NULL.
 * - Strings in returned structs are owned by the struct they sit in.
 * - A value the cache does not have is NULL (strings, arrays) or -1 (sizes
 *   and times).
 * - The library prints nothing; log lines go to the callback set with
 *   ocicache_set_log().
 */
#ifndef OCICACHE_OCICACHE_H
#define OCICACHE_OCICACHE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define OCICACHE_VERSION "0.1.0"

/* Result codes. The class is in the code; the detail is in the message. */
enum ocicache_error {
	OCICACHE_OK = 0,
	OCICACHE_ERROR = -1,	    /* a failure that fits no class below */
	OCICACHE_ENOTFOUND = -2,    /* no such image, layer, tag or file */
	OCICACHE_EINUSE = -3,	    /* a sandbox still uses the image */
	OCICACHE_EINVAL = -4,	    /* invalid reference, argument or option */
	OCICACHE_ENETWORK = -5,	    /* connection, DNS, TLS or timeout */
	OCICACHE_EREGISTRY = -6,    /* the registry refused or answered badly */
	OCICACHE_EDIGEST = -7,	    /* digest or size does not match */
	OCICACHE_EFORMAT = -8,	    /* malformed manifest, config, tar, EROFS */
	OCICACHE_EIO = -9,	    /* a local file or database failed */
	OCICACHE_ENOMEM = -10,	    /* out of memory */
	OCICACHE_EUNSUPPORTED = -11 /* valid input we do not handle */
};

/* The message of the last failure on this thread; never NULL. */
const char *ocicache_error_message(void);

/* A short constant name for a result code ("not found", "in use", ...). */
const char *ocicache_strerror(int code);

enum ocicache_log_level {
	OCICACHE_LOG_ERROR = 0,
	OCICACHE_LOG_WARN = 1,
	OCICACHE_LOG_INFO = 2,
	OCICACHE_LOG_DEBUG = 3
};

typedef void (*ocicache_log_fn)(int level, const char *message, void *userdata);

/*
 * Send log lines at `max_level` and below to `fn` (NULL: drop them). The
 * callback may be called from the library's worker threads, one line at a
 * time. Messages never contain credentials or tokens.
 */
void ocicache_set_log(ocicache_log_fn fn, int max_level, void *userdata);

/* An open cache. Safe to use from one thread at a time; open one per thread
 * or process to work in parallel: processes share a cache safely. */
typedef struct ocicache ocicache;

/*
 * Open (creating if needed) the cache at `root`. NULL means the default:
 * $OCICACHE_ROOT, else $XDG_CACHE_HOME/ocicache, else ~/.cache/ocicache.
 * Free with ocicache_close().
 */
int ocicache_open(ocicache **out, const char *root);
void ocicache_close(ocicache *cache);

/* The absolute root directory; owned by the cache. */
const char *ocicache_root(const ocicache *cache);

/* One cached image, as get, list and pull return it. */
typedef struct ocicache_image {
	char *reference;       /* normalised: docker.io/library/alpine:latest */
	char *manifest_digest; /* the platform manifest */
	char *index_digest;    /* the index it was chosen from, or NULL */
	char *architecture;    /* from the image config, or NULL */
	char *os;
	char *variant;
	uint32_t layer_count;
	int64_t size_bytes; /* layers + fsmeta + VMDK on disk, or -1 */
	int64_t created_at; /* ms since the epoch: first pull, or -1 */
	/* ms since the epoch: the last pull or ocicache_sandbox_add(), or -1;
	 * reads (get, list, inspect) do not move it. */
	int64_t last_used_at;
	char *fsmeta_path; /* absolute paths of the disk's parts */
	char *vmdk_path;
} ocicache_image;

void ocicache_image_free(ocicache_image *image);

/* Progress of a pull, for a caller's progress display. */
enum ocicache_progress_kind {
	OCICACHE_PROGRESS_RESOLVED = 0, /* manifest and config known */
	OCICACHE_PROGRESS_LAYER_CACHED, /* layer already in the cache */
	OCICACHE_PROGRESS_LAYER_DONE,	/* layer fetched and converted */
	OCICACHE_PROGRESS_DONE		/* fsmeta and VMDK written */
};

struct ocicache_progress {
	int kind;
	const char *reference;
	const char *digest; /* the layer's blob digest, or the manifest's */
	uint32_t layer_index;
	uint32_t layer_count;
	int64_t bytes; /* the layer's compressed size, or -1 */
};

/* Called from the pull's worker threads too, one event at a time. */
typedef void (*ocicache_progress_fn)(const struct ocicache_progress *event,
				     void *userdata);

struct ocicache_pull_options {
	const char *platform; /* "os/arch[/variant]"; NULL: the host's */
	int plain_http;	      /* talk http:// instead of https:// */
	int jobs;	      /* layers fetched at once; 0: default (4) */
	ocicache_progress_fn on_progress; /* may be NULL */
	void *progress_userdata;
};

/* Zero the options: host platform, https, default jobs, no progress. */
void ocicache_pull_options_init(struct ocicache_pull_options *opts);

/*
 * Ask the registry what `reference` points to now, fetch and convert every
 * layer the cache lacks, write fsmeta and the VMDK and record the image.
 * `opts` may be NULL. On success `*out` (if `out` is not NULL) holds the
 * image. On failure nothing is recorded and the cache is as it was, but for
 * resumable partial downloads under tmp/.
 */
int ocicache_pull(ocicache_image **out, ocicache *cache, const char *reference,
		  const struct ocicache_pull_options *opts);

/* The cached image for `reference` (normalised first), or
 * OCICACHE_ENOTFOUND. Does not move last_used_at. */
int ocicache_image_get(ocicache_image **out, ocicache *cache,
		       const char *reference);

/* Every cached image, one per reference, newest first by created_at.
 * Free with ocicache_image_list_free(). */
int ocicache_image_list(ocicache_image ***out, size_t *count_out,
			ocicache *cache);
void ocicache_image_list_free(ocicache_image **images, size_t count);

/* The parsed OCI image config. Arrays are NULL-terminated. */
struct ocicache_config {
	char *digest;
	char **env;	   /* never NULL; may be empty */
	char **cmd;	   /* NULL when the config has none */
	char **entrypoint; /* NULL when the config has none */
	char *working_dir;
	char *user;
	char *labels_json; /* a JSON object as text, or NULL */
	char *stop_signal;
};

struct ocicache_layer {
	char *diff_id;	   /* digest of the uncompressed tar */
	char *blob_digest; /* digest of the blob as the registry served it */
	char *media_type;
	int64_t compressed_size_bytes;
	int64_t erofs_size_bytes;
	uint32_t position; /* 0: the bottom layer */
	char *path;	   /* absolute path of the layer's EROFS image */
};

typedef struct ocicache_image_detail {
	ocicache_image *handle;
	struct ocicache_config *config; /* NULL when not recorded */
	struct ocicache_layer *layers;	/* bottom to top */
	size_t layer_count;
} ocicache_image_detail;

int ocicache_image_inspect(ocicache_image_detail **out, ocicache *cache,
			   const char *reference);
void ocicache_image_detail_free(ocicache_image_detail *detail);

/*
 * Remove the image `reference`: its reference, and with the last reference
 * to its manifest also the manifest, fsmeta, VMDK and the layers no other
 * image uses (unless a snapshot pins the manifest). An image a sandbox uses
 * is refused with OCICACHE_EINUSE unless `force`, which also drops those
 * sandbox references.
 */
int ocicache_image_remove(ocicache *cache, const char *reference, int force);

struct ocicache_prune_options {
	int dry_run;	       /* report, delete nothing */
	int64_t older_than_ms; /* only images last used longer ago; 0: all */
	int64_t keep_bytes;    /* stop once the cache is at most this; -1: no */
};

void ocicache_prune_options_init(struct ocicache_prune_options *opts);

struct ocicache_prune_report {
	uint64_t image_refs_removed;
	uint64_t manifests_removed;
	uint64_t layers_removed;
	uint64_t fsmeta_removed;
	uint64_t vmdk_removed;
	/* Measured with stat just before each unlink (a dry run: what the
	 * files it would delete measure); 0 when nothing was freed; -1 only
	 * when nothing could be measured. */
	int64_t bytes_reclaimed;
};

/*
 * Remove every reference, manifest, layer, fsmeta and VMDK that no sandbox
 * and no snapshot pins, stale tmp/ files and files the index does not know.
 * `opts` may be NULL (remove everything unpinned).
 *
 * Manifests nothing points at (a moved tag's old manifest) always go; the
 * options narrow which references go: least recently used first. Files
 * the index does not know (in layers/, fsmeta/, vmdk/, tmp/) go only while
 * no pull is under way on the cache, and once they are older than a grace
 * period, 10 minutes, or $OCICACHE_PRUNE_GRACE_SECONDS seconds when set,
 * so that a pull in another process is not robbed of what it is about to
 * record. A layer or
 * manifest whose lock a pull holds is left on disk and swept later.
 * layers_removed counts layer rows and stray layer images removed.
 */
int ocicache_prune(struct ocicache_prune_report *out, ocicache *cache,
		   const struct ocicache_prune_options *opts);

/* Record that sandbox `sandbox_id` uses the cached image `reference`, which
 * pins it against remove and prune until released, and moves the image's
 * last_used_at. An existing `sandbox_id` moves to the new image. */
int ocicache_sandbox_add(ocicache *cache, const char *sandbox_id,
			 const char *reference);

/* One sandbox's pin, as ocicache_sandbox_list() gives it. */
struct ocicache_sandbox {
	char *sandbox_id;
	char *reference; /* as given to ocicache_sandbox_add, normalised */
	char *manifest_digest; /* the manifest it pins */
	int64_t created_at;    /* ms since the epoch */
};

/* Every sandbox reference, newest first. Free with
 * ocicache_sandbox_list_free(). */
int ocicache_sandbox_list(struct ocicache_sandbox **out, size_t *count_out,
			  ocicache *cache);
void ocicache_sandbox_list_free(struct ocicache_sandbox *sandboxes,
				size_t count);

/* Drop sandbox `sandbox_id`'s reference; OCICACHE_ENOTFOUND if none. */
int ocicache_sandbox_release(ocicache *cache, const char *sandbox_id);

/* What converting one layer tar produced. */
struct ocicache_convert_result {
	char diff_id[72]; /* "sha256:" + 64 hex digits */
	uint64_t erofs_size_bytes;
	uint64_t entries; /* tar entries read */
};

/*
 * Convert one layer tar (plain, gzip or zstd, detected from its first bytes)
 * into an EROFS image at `out_path`, written whole or not at all. `out` may
 * be NULL.
 */
int ocicache_convert_layer(struct ocicache_convert_result *out,
			   const char *tar_path, const char *out_path);

#ifdef __cplusplus
}
#endif

#endif
