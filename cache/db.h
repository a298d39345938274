/*
 * The SQLite index of the cache: which references point at which
 * manifests, the layers of each manifest, and what pins a manifest
 * (sandboxes, snapshots). Every SQL statement of the project lives in
 * db.c. Times are milliseconds since the epoch.
 *
 * Tables (schema version 1, kept in PRAGMA user_version):
 *   image_ref(reference PK, manifest_digest, created_at, last_used_at)
 *   manifest(digest PK, index_digest, media_type, config_digest,
 *            config_json, architecture, os, variant, fsmeta_size,
 *            vmdk_size, created_at)
 *   layer(diff_id PK, blob_digest, media_type, compressed_size,
 *         erofs_size, implied_dirs, created_at)
 *   manifest_layer(manifest_digest, position, diff_id, blob_digest,
 *                  media_type, compressed_size)
 *   sandbox_ref(sandbox_id PK, manifest_digest, reference, created_at)
 *   snapshot_ref(snapshot_digest PK, manifest_digest, created_at)
 */
#ifndef OCICACHE_CACHE_DB_H
#define OCICACHE_CACHE_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ocicache/ocicache.h"

#define DB_SCHEMA_VERSION 1

struct db;

/* Open (creating and migrating) the index at `path`: WAL mode, foreign
 * keys on, a 30 s busy timeout. Free with db_close(). */
int db_open(struct db **out, const char *path);
void db_close(struct db *db);

/* One layer of a manifest, bottom first. */
struct db_layer {
	char *diff_id;
	char *blob_digest;
	char *media_type;
	int64_t compressed_size;
	int64_t erofs_size;
	uint32_t position;
	char *implied_dirs; /* store_implied_encode() text; may be NULL */
};

void db_layers_free(struct db_layer *layers, size_t count);

/* What one successful pull records, in one transaction. */
struct db_image_record {
	const char *reference; /* normalised */
	const char *manifest_digest;
	const char *index_digest; /* may be NULL */
	const char *media_type;
	const char *config_digest;
	const char *config_json;
	const char *architecture;
	const char *os;
	const char *variant;
	int64_t fsmeta_size;
	int64_t vmdk_size;
	const struct db_layer *layers; /* layers[i].position == i */
	size_t layer_count;
	int64_t now_ms;
};

/*
 * Record the manifest, its layers and the reference. A reference already
 * known keeps its created_at and moves to this manifest; last_used_at
 * becomes now.
 */
int db_record_image(struct db *db, const struct db_image_record *rec);

/* One reference as get, list and inspect see it. */
struct db_image {
	char *reference;
	char *manifest_digest;
	char *index_digest;
	char *architecture;
	char *os;
	char *variant;
	char *config_digest;
	char *config_json; /* NULL in lists */
	uint32_t layer_count;
	int64_t size_bytes; /* layers + fsmeta + VMDK, as recorded */
	int64_t created_at;
	int64_t last_used_at;
};

void db_image_clear(struct db_image *img);

/* The image for the normalised `reference`; OCICACHE_ENOTFOUND naming it
 * when there is none. */
int db_image_get(struct db_image *out, struct db *db, const char *reference);

/* The most recently used image of repository `name` ("host/repo") whose
 * manifest or index digest is `digest`; OCICACHE_ENOTFOUND when none. */
int db_image_find(struct db_image *out, struct db *db, const char *name,
		  const char *digest);

/* Every reference, newest created_at first (ties by reference). */
int db_image_list(struct db_image **out, size_t *count_out, struct db *db);
void db_image_list_free(struct db_image *images, size_t count);

/* The layers of `manifest_digest`, bottom first. */
int db_manifest_layers(struct db_layer **out, size_t *count_out, struct db *db,
		       const char *manifest_digest);

/* Record (or move) sandbox `id`'s pin on the image `reference`, which
 * must exist (OCICACHE_ENOTFOUND otherwise). */
int db_sandbox_add(struct db *db, const char *id, const char *reference,
		   int64_t now_ms);
int db_sandbox_remove(struct db *db, const char *id);

/* Every sandbox_ref row, newest first; free with
 * ocicache_sandbox_list_free(). */
int db_sandbox_list(struct ocicache_sandbox **out, size_t *count_out,
		    struct db *db);

/* Pin `manifest_digest` for snapshot `snapshot_digest`. */
int db_snapshot_add(struct db *db, const char *snapshot_digest,
		    const char *manifest_digest, int64_t now_ms);
int db_snapshot_remove(struct db *db, const char *snapshot_digest);

/* What a remove or prune took out of the index: the files of these
 * manifests and layers are for the caller to delete. */
struct db_garbage {
	uint64_t image_refs_removed;
	char **manifests;
	size_t manifest_count;
	char **layers;
	size_t layer_count;
};

void db_garbage_free(struct db_garbage *g);

/*
 * Delete the reference, and when no reference, sandbox or snapshot is
 * left on its manifest, the manifest and the layers no other manifest
 * uses. A manifest a sandbox pins is OCICACHE_EINUSE unless `force`, which
 * deletes those sandbox references.
 */
int db_remove_image(struct db_garbage *out, struct db *db,
		    const char *reference, bool force);

struct db_prune_options {
	int64_t cutoff_ms;  /* only references last used before; 0: all */
	int64_t keep_bytes; /* stop once the index totals at most; -1: no */
	bool dry_run;	    /* compute, then roll back */
};

/*
 * Delete every manifest nothing points at or pins, then unpinned
 * references least recently used first (as the options allow) with their
 * manifests and layers, then layers no manifest uses.
 */
int db_prune(struct db_garbage *out, struct db *db,
	     const struct db_prune_options *opts);

/* 1 when the index knows the layer (manifest), 0 when not, or a
 * negative code. */
int db_layer_known(struct db *db, const char *diff_id);
int db_manifest_known(struct db *db, const char *digest);

#endif
