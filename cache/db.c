#include "cache/db.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

struct db {
	sqlite3 *conn;
	char *path;
};

static const char schema_v1[] =
    "CREATE TABLE manifest ("
    " digest TEXT PRIMARY KEY,"
    " index_digest TEXT,"
    " media_type TEXT,"
    " config_digest TEXT,"
    " config_json TEXT,"
    " architecture TEXT,"
    " os TEXT,"
    " variant TEXT,"
    " fsmeta_size INTEGER,"
    " vmdk_size INTEGER,"
    " created_at INTEGER NOT NULL);"
    "CREATE INDEX manifest_index ON manifest(index_digest);"
    "CREATE TABLE image_ref ("
    " reference TEXT PRIMARY KEY,"
    " manifest_digest TEXT NOT NULL REFERENCES manifest(digest),"
    " created_at INTEGER NOT NULL,"
    " last_used_at INTEGER NOT NULL);"
    "CREATE INDEX image_ref_manifest ON image_ref(manifest_digest);"
    "CREATE TABLE layer ("
    " diff_id TEXT PRIMARY KEY,"
    " blob_digest TEXT,"
    " media_type TEXT,"
    " compressed_size INTEGER,"
    " erofs_size INTEGER NOT NULL,"
    " implied_dirs TEXT,"
    " created_at INTEGER NOT NULL);"
    "CREATE TABLE manifest_layer ("
    " manifest_digest TEXT NOT NULL REFERENCES manifest(digest),"
    " position INTEGER NOT NULL,"
    " diff_id TEXT NOT NULL REFERENCES layer(diff_id),"
    " blob_digest TEXT,"
    " media_type TEXT,"
    " compressed_size INTEGER,"
    " PRIMARY KEY (manifest_digest, position));"
    "CREATE INDEX manifest_layer_diff ON manifest_layer(diff_id);"
    "CREATE TABLE sandbox_ref ("
    " sandbox_id TEXT PRIMARY KEY,"
    " manifest_digest TEXT NOT NULL REFERENCES manifest(digest),"
    " reference TEXT,"
    " created_at INTEGER NOT NULL);"
    "CREATE INDEX sandbox_ref_manifest ON sandbox_ref(manifest_digest);"
    "CREATE TABLE snapshot_ref ("
    " snapshot_digest TEXT PRIMARY KEY,"
    " manifest_digest TEXT NOT NULL REFERENCES manifest(digest),"
    " created_at INTEGER NOT NULL);"
    "CREATE INDEX snapshot_ref_manifest ON snapshot_ref(manifest_digest);";

/* A manifest is pinned by a sandbox or a snapshot. */
#define SQL_UNPINNED(col)                                                   \
	" NOT EXISTS (SELECT 1 FROM sandbox_ref s WHERE s.manifest_digest " \
	"= " col ") AND NOT EXISTS (SELECT 1 FROM snapshot_ref p"           \
	" WHERE p.manifest_digest = " col ")"

static int db_fail(struct db *db, const char *what)
{
	int code = sqlite3_errcode(db->conn);

	return oc_err(code == SQLITE_NOMEM ? OCICACHE_ENOMEM : OCICACHE_EIO,
		      "cache index %s: %s: %s", db->path, what,
		      sqlite3_errmsg(db->conn));
}

static int db_exec(struct db *db, const char *sql, const char *what)
{
	if (sqlite3_exec(db->conn, sql, NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(db, what);
	return 0;
}

static int db_prepare(sqlite3_stmt **out, struct db *db, const char *sql)
{
	if (sqlite3_prepare_v2(db->conn, sql, -1, out, NULL) != SQLITE_OK) {
		*out = NULL;
		return db_fail(db, "prepare");
	}
	return 0;
}

static void bind_text(sqlite3_stmt *st, int idx, const char *text)
{
	if (text)
		sqlite3_bind_text(st, idx, text, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, idx);
}

static void bind_size(sqlite3_stmt *st, int idx, int64_t value)
{
	if (value >= 0)
		sqlite3_bind_int64(st, idx, value);
	else
		sqlite3_bind_null(st, idx);
}

/* Step a statement that returns no rows, then finalize it. */
static int db_step_done(struct db *db, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_fail(db, what);

	sqlite3_finalize(st);
	return rc;
}

static int column_dup(char **out, sqlite3_stmt *st, int col)
{
	const unsigned char *text = sqlite3_column_text(st, col);

	*out = NULL;
	if (!text)
		return 0;
	*out = strdup((const char *)text);
	return *out ? 0 : oc_err(OCICACHE_ENOMEM, "out of memory");
}

static int64_t column_size(sqlite3_stmt *st, int col)
{
	if (sqlite3_column_type(st, col) == SQLITE_NULL)
		return -1;
	return sqlite3_column_int64(st, col);
}

static int db_begin(struct db *db)
{
	return db_exec(db, "BEGIN IMMEDIATE", "begin transaction");
}

static int db_end(struct db *db, int rc, bool keep)
{
	if (rc || !keep) {
		sqlite3_exec(db->conn, "ROLLBACK", NULL, NULL, NULL);
		return rc;
	}
	return db_exec(db, "COMMIT", "commit");
}

static int db_user_version(struct db *db, int *version)
{
	sqlite3_stmt *st;
	int rc = db_prepare(&st, db, "PRAGMA user_version");

	if (rc)
		return rc;
	if (sqlite3_step(st) == SQLITE_ROW)
		*version = sqlite3_column_int(st, 0);
	else
		rc = db_fail(db, "read schema version");
	sqlite3_finalize(st);
	return rc;
}

static int db_migrate(struct db *db)
{
	char sql[64];
	int version = 0, rc;

	rc = db_user_version(db, &version);
	if (rc || version == DB_SCHEMA_VERSION)
		return rc;

	rc = db_begin(db);
	if (rc)
		return rc;
	/* Another process may have created the schema while we waited. */
	rc = db_user_version(db, &version);
	if (!rc && version > DB_SCHEMA_VERSION)
		rc = oc_err(OCICACHE_EUNSUPPORTED,
			    "cache index %s: schema version %d is newer than "
			    "this ocicache's (%d)",
			    db->path, version, DB_SCHEMA_VERSION);
	if (!rc && version == 0) {
		rc = db_exec(db, schema_v1, "create schema");
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d",
			 DB_SCHEMA_VERSION);
		if (!rc)
			rc = db_exec(db, sql, "set schema version");
	}
	return db_end(db, rc, true);
}

int db_open(struct db **out, const char *path)
{
	struct db *db;
	int rc;

	*out = NULL;
	db = calloc(1, sizeof(*db));
	if (!db || !(db->path = strdup(path))) {
		free(db);
		return oc_err(OCICACHE_ENOMEM, "out of memory");
	}
	if (sqlite3_open_v2(path, &db->conn,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		rc = db->conn ? db_fail(db, "open")
			      : oc_err(OCICACHE_ENOMEM, "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(db->conn, 30000);

	rc = db_exec(db, "PRAGMA journal_mode = WAL", "set WAL mode");
	if (!rc)
		rc = db_exec(db, "PRAGMA foreign_keys = ON", "foreign keys");
	if (!rc)
		rc = db_exec(db, "PRAGMA synchronous = NORMAL", "synchronous");
	if (!rc)
		rc = db_migrate(db);
	if (rc)
		goto fail;
	*out = db;
	return 0;
fail:
	db_close(db);
	return rc;
}

void db_close(struct db *db)
{
	if (!db)
		return;
	sqlite3_close(db->conn);
	free(db->path);
	free(db);
}

void db_layers_free(struct db_layer *layers, size_t count)
{
	size_t i;

	if (!layers)
		return;
	for (i = 0; i < count; i++) {
		free(layers[i].diff_id);
		free(layers[i].blob_digest);
		free(layers[i].media_type);
		free(layers[i].implied_dirs);
	}
	free(layers);
}

static int record_manifest(struct db *db, const struct db_image_record *r)
{
	sqlite3_stmt *st;
	int rc = db_prepare(
	    &st, db,
	    "INSERT INTO manifest (digest, index_digest, media_type,"
	    " config_digest, config_json, architecture, os, variant,"
	    " fsmeta_size, vmdk_size, created_at)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
	    " ON CONFLICT (digest) DO UPDATE SET"
	    " index_digest = coalesce(excluded.index_digest, index_digest),"
	    " media_type = excluded.media_type,"
	    " config_digest = excluded.config_digest,"
	    " config_json = excluded.config_json,"
	    " architecture = excluded.architecture, os = excluded.os,"
	    " variant = excluded.variant,"
	    " fsmeta_size = excluded.fsmeta_size,"
	    " vmdk_size = excluded.vmdk_size");

	if (rc)
		return rc;
	bind_text(st, 1, r->manifest_digest);
	bind_text(st, 2, r->index_digest);
	bind_text(st, 3, r->media_type);
	bind_text(st, 4, r->config_digest);
	bind_text(st, 5, r->config_json);
	bind_text(st, 6, r->architecture);
	bind_text(st, 7, r->os);
	bind_text(st, 8, r->variant);
	bind_size(st, 9, r->fsmeta_size);
	bind_size(st, 10, r->vmdk_size);
	sqlite3_bind_int64(st, 11, r->now_ms);
	return db_step_done(db, st, "record manifest");
}

static int record_layer(struct db *db, const struct db_layer *l,
			const char *manifest_digest, int64_t now_ms)
{
	sqlite3_stmt *st;
	int rc =
	    db_prepare(&st, db,
		       "INSERT INTO layer (diff_id, blob_digest, media_type,"
		       " compressed_size, erofs_size, implied_dirs, created_at)"
		       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
		       " ON CONFLICT (diff_id) DO UPDATE SET"
		       " erofs_size = excluded.erofs_size,"
		       " implied_dirs = excluded.implied_dirs");

	if (rc)
		return rc;
	bind_text(st, 1, l->diff_id);
	bind_text(st, 2, l->blob_digest);
	bind_text(st, 3, l->media_type);
	bind_size(st, 4, l->compressed_size);
	sqlite3_bind_int64(st, 5, l->erofs_size);
	bind_text(st, 6, l->implied_dirs);
	sqlite3_bind_int64(st, 7, now_ms);
	rc = db_step_done(db, st, "record layer");
	if (rc)
		return rc;

	rc = db_prepare(&st, db,
			"INSERT INTO manifest_layer (manifest_digest, position,"
			" diff_id, blob_digest, media_type, compressed_size)"
			" VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
	if (rc)
		return rc;
	bind_text(st, 1, manifest_digest);
	sqlite3_bind_int64(st, 2, l->position);
	bind_text(st, 3, l->diff_id);
	bind_text(st, 4, l->blob_digest);
	bind_text(st, 5, l->media_type);
	bind_size(st, 6, l->compressed_size);
	return db_step_done(db, st, "record manifest layer");
}

static int record_reference(struct db *db, const struct db_image_record *r)
{
	sqlite3_stmt *st;
	int rc = db_prepare(&st, db,
			    "INSERT INTO image_ref (reference, manifest_digest,"
			    " created_at, last_used_at) VALUES (?1, ?2, ?3, ?3)"
			    " ON CONFLICT (reference) DO UPDATE SET"
			    " manifest_digest = excluded.manifest_digest,"
			    " last_used_at = excluded.last_used_at");

	if (rc)
		return rc;
	bind_text(st, 1, r->reference);
	bind_text(st, 2, r->manifest_digest);
	sqlite3_bind_int64(st, 3, r->now_ms);
	return db_step_done(db, st, "record reference");
}

static int delete_by(struct db *db, const char *sql, const char *key,
		     const char *what)
{
	sqlite3_stmt *st;
	int rc = db_prepare(&st, db, sql);

	if (rc)
		return rc;
	bind_text(st, 1, key);
	return db_step_done(db, st, what);
}

int db_record_image(struct db *db, const struct db_image_record *rec)
{
	size_t i;
	int rc;

	rc = db_begin(db);
	if (rc)
		return rc;
	rc = record_manifest(db, rec);
	if (!rc)
		rc = delete_by(db,
			       "DELETE FROM manifest_layer"
			       " WHERE manifest_digest = ?1",
			       rec->manifest_digest, "replace manifest layers");
	for (i = 0; !rc && i < rec->layer_count; i++)
		rc = record_layer(db, &rec->layers[i], rec->manifest_digest,
				  rec->now_ms);
	if (!rc)
		rc = record_reference(db, rec);
	rc = db_end(db, rc, true);
	if (rc)
		return oc_err_wrap(rc, "record image %s", rec->reference);
	return 0;
}

void db_image_clear(struct db_image *img)
{
	free(img->reference);
	free(img->manifest_digest);
	free(img->index_digest);
	free(img->architecture);
	free(img->os);
	free(img->variant);
	free(img->config_digest);
	free(img->config_json);
	memset(img, 0, sizeof(*img));
}

#define SQL_IMAGE_SELECT(config_col)                                     \
	"SELECT r.reference, r.manifest_digest, m.index_digest,"         \
	" m.architecture, m.os, m.variant, m.config_digest, " config_col \
	", (SELECT count(*) FROM manifest_layer ml"                      \
	"   WHERE ml.manifest_digest = m.digest),"                       \
	" coalesce(m.fsmeta_size, 0) + coalesce(m.vmdk_size, 0) +"       \
	" (SELECT coalesce(sum(l.erofs_size +"                           \
	"   length(CAST(coalesce(l.implied_dirs, '') AS BLOB))), 0)"     \
	"  FROM manifest_layer ml"                                       \
	"  JOIN layer l ON l.diff_id = ml.diff_id"                       \
	"  WHERE ml.manifest_digest = m.digest),"                        \
	" r.created_at, r.last_used_at"                                  \
	" FROM image_ref r JOIN manifest m ON m.digest = r.manifest_digest"

static int image_from_row(struct db_image *img, sqlite3_stmt *st)
{
	int rc = 0;

	memset(img, 0, sizeof(*img));
	rc = rc ? rc : column_dup(&img->reference, st, 0);
	rc = rc ? rc : column_dup(&img->manifest_digest, st, 1);
	rc = rc ? rc : column_dup(&img->index_digest, st, 2);
	rc = rc ? rc : column_dup(&img->architecture, st, 3);
	rc = rc ? rc : column_dup(&img->os, st, 4);
	rc = rc ? rc : column_dup(&img->variant, st, 5);
	rc = rc ? rc : column_dup(&img->config_digest, st, 6);
	rc = rc ? rc : column_dup(&img->config_json, st, 7);
	img->layer_count = (uint32_t)sqlite3_column_int64(st, 8);
	img->size_bytes = sqlite3_column_int64(st, 9);
	img->created_at = sqlite3_column_int64(st, 10);
	img->last_used_at = sqlite3_column_int64(st, 11);
	if (rc)
		db_image_clear(img);
	return rc;
}

int db_image_get(struct db_image *out, struct db *db, const char *reference)
{
	sqlite3_stmt *st;
	int rc, step;

	memset(out, 0, sizeof(*out));
	rc = db_prepare(
	    &st, db,
	    SQL_IMAGE_SELECT("m.config_json") " WHERE r.reference = ?1");
	if (rc)
		return rc;
	bind_text(st, 1, reference);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW)
		rc = image_from_row(out, st);
	else if (step == SQLITE_DONE)
		rc = oc_err(OCICACHE_ENOTFOUND, "image %s is not in the cache",
			    reference);
	else
		rc = db_fail(db, "read image");
	sqlite3_finalize(st);
	return rc;
}

int db_image_find(struct db_image *out, struct db *db, const char *name,
		  const char *digest)
{
	sqlite3_stmt *st;
	int rc, step;

	memset(out, 0, sizeof(*out));
	rc = db_prepare(
	    &st, db,
	    SQL_IMAGE_SELECT(
		"m.config_json") " WHERE (m.digest = ?2 OR m.index_digest = ?2)"
				 " AND (substr(r.reference, 1, length(?1) + 1) "
				 "= ?1 || ':'"
				 " OR substr(r.reference, 1, length(?1) + 1) = "
				 "?1 || '@')"
				 " ORDER BY r.last_used_at DESC, r.reference "
				 "LIMIT 1");
	if (rc)
		return rc;
	bind_text(st, 1, name);
	bind_text(st, 2, digest);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW)
		rc = image_from_row(out, st);
	else if (step == SQLITE_DONE)
		rc = oc_err(OCICACHE_ENOTFOUND,
			    "image %s@%s is not in the cache", name, digest);
	else
		rc = db_fail(db, "find image");
	sqlite3_finalize(st);
	return rc;
}

void db_image_list_free(struct db_image *images, size_t count)
{
	size_t i;

	if (!images)
		return;
	for (i = 0; i < count; i++)
		db_image_clear(&images[i]);
	free(images);
}

int db_image_list(struct db_image **out, size_t *count_out, struct db *db)
{
	struct db_image *images = NULL, *grown;
	size_t count = 0, cap = 0;
	sqlite3_stmt *st;
	int rc, step;

	*out = NULL;
	*count_out = 0;
	rc = db_prepare(&st, db,
			SQL_IMAGE_SELECT(
			    "NULL") " ORDER BY r.created_at DESC, r.reference");
	if (rc)
		return rc;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (count == cap) {
			cap = cap ? cap * 2 : 16;
			grown = realloc(images, cap * sizeof(*images));
			if (!grown) {
				rc = oc_err(OCICACHE_ENOMEM, "out of memory");
				break;
			}
			images = grown;
		}
		rc = image_from_row(&images[count], st);
		if (rc)
			break;
		count++;
	}
	if (!rc && step != SQLITE_DONE)
		rc = db_fail(db, "list images");
	sqlite3_finalize(st);
	if (rc) {
		db_image_list_free(images, count);
		return rc;
	}
	*out = images;
	*count_out = count;
	return 0;
}

static int layer_from_row(struct db_layer *l, sqlite3_stmt *st)
{
	int rc = 0;

	memset(l, 0, sizeof(*l));
	rc = rc ? rc : column_dup(&l->diff_id, st, 0);
	rc = rc ? rc : column_dup(&l->blob_digest, st, 1);
	rc = rc ? rc : column_dup(&l->media_type, st, 2);
	rc = rc ? rc : column_dup(&l->implied_dirs, st, 6);
	l->compressed_size = column_size(st, 3);
	l->erofs_size = column_size(st, 4);
	l->position = (uint32_t)sqlite3_column_int64(st, 5);
	return rc;
}

int db_manifest_layers(struct db_layer **out, size_t *count_out, struct db *db,
		       const char *manifest_digest)
{
	struct db_layer *layers = NULL, *grown;
	size_t count = 0, cap = 0;
	sqlite3_stmt *st;
	int rc, step;

	*out = NULL;
	*count_out = 0;
	rc = db_prepare(&st, db,
			"SELECT ml.diff_id, ml.blob_digest, ml.media_type,"
			" ml.compressed_size, l.erofs_size, ml.position,"
			" l.implied_dirs FROM manifest_layer ml"
			" JOIN layer l ON l.diff_id = ml.diff_id"
			" WHERE ml.manifest_digest = ?1 ORDER BY ml.position");
	if (rc)
		return rc;
	bind_text(st, 1, manifest_digest);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (count == cap) {
			cap = cap ? cap * 2 : 16;
			grown = realloc(layers, cap * sizeof(*layers));
			if (!grown) {
				rc = oc_err(OCICACHE_ENOMEM, "out of memory");
				break;
			}
			layers = grown;
		}
		rc = layer_from_row(&layers[count++], st);
		if (rc)
			break;
	}
	if (!rc && step != SQLITE_DONE)
		rc = db_fail(db, "read layers");
	sqlite3_finalize(st);
	if (rc) {
		db_layers_free(layers, count);
		return rc;
	}
	*out = layers;
	*count_out = count;
	return 0;
}

/* The text of the first column of the first row, or NULL when no row. */
static int query_text(char **out, struct db *db, const char *sql,
		      const char *key, const char *what)
{
	sqlite3_stmt *st;
	int rc, step;

	*out = NULL;
	rc = db_prepare(&st, db, sql);
	if (rc)
		return rc;
	bind_text(st, 1, key);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW)
		rc = column_dup(out, st, 0);
	else if (step != SQLITE_DONE)
		rc = db_fail(db, what);
	sqlite3_finalize(st);
	return rc;
}

/* All rows' first column as a string array (appended to `*list`). */
static int query_list(char ***list, size_t *count, struct db *db,
		      const char *sql, const char *key, const char *what)
{
	sqlite3_stmt *st;
	int rc, step;

	rc = db_prepare(&st, db, sql);
	if (rc)
		return rc;
	if (key)
		bind_text(st, 1, key);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		char **grown = realloc(*list, (*count + 1) * sizeof(**list));

		if (!grown) {
			rc = oc_err(OCICACHE_ENOMEM, "out of memory");
			break;
		}
		*list = grown;
		rc = column_dup(&(*list)[*count], st, 0);
		if (rc)
			break;
		(*count)++;
	}
	if (!rc && step != SQLITE_DONE)
		rc = db_fail(db, what);
	sqlite3_finalize(st);
	return rc;
}

static void strings_free(char **list, size_t count)
{
	size_t i;

	for (i = 0; list && i < count; i++)
		free(list[i]);
	free(list);
}

int db_sandbox_add(struct db *db, const char *id, const char *reference,
		   int64_t now_ms)
{
	char *manifest = NULL;
	sqlite3_stmt *st;
	int rc;

	rc = db_begin(db);
	if (rc)
		return rc;
	rc = query_text(&manifest, db,
			"SELECT manifest_digest FROM image_ref"
			" WHERE reference = ?1",
			reference, "find image");
	if (!rc && !manifest)
		rc = oc_err(OCICACHE_ENOTFOUND, "image %s is not in the cache",
			    reference);
	if (!rc)
		rc =
		    db_prepare(&st, db,
			       "INSERT OR REPLACE INTO sandbox_ref (sandbox_id,"
			       " manifest_digest, reference, created_at)"
			       " VALUES (?1, ?2, ?3, ?4)");
	if (!rc) {
		bind_text(st, 1, id);
		bind_text(st, 2, manifest);
		bind_text(st, 3, reference);
		sqlite3_bind_int64(st, 4, now_ms);
		rc = db_step_done(db, st, "record sandbox");
	}
	/* A sandbox using the image is a use: prune --older-than and
	 * --keep judge by it. */
	if (!rc)
		rc = db_prepare(&st, db,
				"UPDATE image_ref SET last_used_at = ?2"
				" WHERE reference = ?1");
	if (!rc) {
		bind_text(st, 1, reference);
		sqlite3_bind_int64(st, 2, now_ms);
		rc = db_step_done(db, st, "record use");
	}
	free(manifest);
	return db_end(db, rc, true);
}

int db_sandbox_list(struct ocicache_sandbox **out, size_t *count_out,
		    struct db *db)
{
	struct ocicache_sandbox *list = NULL, *grown;
	size_t count = 0;
	sqlite3_stmt *st;
	int rc, step;

	*out = NULL;
	*count_out = 0;
	rc = db_prepare(&st, db,
			"SELECT sandbox_id, reference, manifest_digest,"
			" created_at FROM sandbox_ref"
			" ORDER BY created_at DESC, sandbox_id");
	if (rc)
		return rc;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		struct ocicache_sandbox *sb;

		grown = realloc(list, (count + 1) * sizeof(*list));
		if (!grown) {
			rc = oc_err(OCICACHE_ENOMEM, "out of memory");
			break;
		}
		list = grown;
		sb = &list[count++];
		memset(sb, 0, sizeof(*sb));
		rc = column_dup(&sb->sandbox_id, st, 0);
		rc = rc ? rc : column_dup(&sb->reference, st, 1);
		rc = rc ? rc : column_dup(&sb->manifest_digest, st, 2);
		sb->created_at = sqlite3_column_int64(st, 3);
		if (rc)
			break;
	}
	if (!rc && step != SQLITE_DONE)
		rc = db_fail(db, "list sandboxes");
	sqlite3_finalize(st);
	if (rc) {
		ocicache_sandbox_list_free(list, count);
		return rc;
	}
	*out = list;
	*count_out = count;
	return 0;
}

/* Run a DELETE keyed by ?1; OCICACHE_ENOTFOUND when it deleted nothing. */
static int delete_one(struct db *db, const char *sql, const char *key,
		      const char *what)
{
	int rc = delete_by(db, sql, key, what);

	if (!rc && sqlite3_changes(db->conn) == 0)
		return oc_err(OCICACHE_ENOTFOUND, "%s %s is not in the cache",
			      what, key);
	return rc;
}

int db_sandbox_remove(struct db *db, const char *id)
{
	return delete_one(db, "DELETE FROM sandbox_ref WHERE sandbox_id = ?1",
			  id, "sandbox");
}

int db_snapshot_add(struct db *db, const char *snapshot_digest,
		    const char *manifest_digest, int64_t now_ms)
{
	sqlite3_stmt *st;
	int rc = db_prepare(&st, db,
			    "INSERT OR REPLACE INTO snapshot_ref"
			    " (snapshot_digest, manifest_digest, created_at)"
			    " VALUES (?1, ?2, ?3)");

	if (rc)
		return rc;
	bind_text(st, 1, snapshot_digest);
	bind_text(st, 2, manifest_digest);
	sqlite3_bind_int64(st, 3, now_ms);
	rc = db_step_done(db, st, "record snapshot");
	if (rc &&
	    sqlite3_extended_errcode(db->conn) == SQLITE_CONSTRAINT_FOREIGNKEY)
		return oc_err(OCICACHE_ENOTFOUND,
			      "manifest %s is not in the cache",
			      manifest_digest);
	return rc;
}

int db_snapshot_remove(struct db *db, const char *snapshot_digest)
{
	return delete_one(db,
			  "DELETE FROM snapshot_ref WHERE snapshot_digest = ?1",
			  snapshot_digest, "snapshot");
}

void db_garbage_free(struct db_garbage *g)
{
	strings_free(g->manifests, g->manifest_count);
	strings_free(g->layers, g->layer_count);
	memset(g, 0, sizeof(*g));
}

/* Delete layer `diff_id` when no manifest uses it any more. */
static int collect_layer(struct db_garbage *g, struct db *db,
			 const char *diff_id)
{
	char *used = NULL;
	char **grown;
	int rc;

	rc = query_text(&used, db,
			"SELECT diff_id FROM manifest_layer WHERE diff_id = ?1"
			" LIMIT 1",
			diff_id, "find layer users");
	if (rc || used) {
		free(used);
		return rc;
	}
	rc = delete_by(db, "DELETE FROM layer WHERE diff_id = ?1", diff_id,
		       "delete layer");
	if (rc || sqlite3_changes(db->conn) == 0)
		return rc;

	grown = realloc(g->layers, (g->layer_count + 1) * sizeof(*grown));
	if (!grown)
		return oc_err(OCICACHE_ENOMEM, "out of memory");
	g->layers = grown;
	g->layers[g->layer_count] = strdup(diff_id);
	if (!g->layers[g->layer_count])
		return oc_err(OCICACHE_ENOMEM, "out of memory");
	g->layer_count++;
	return 0;
}

/* Delete manifest `digest` when no reference, sandbox or snapshot is
 * left on it, then those of its layers no other manifest uses. */
static int collect_manifest(struct db_garbage *g, struct db *db,
			    const char *digest)
{
	char **layers = NULL, *orphan = NULL, **grown;
	size_t layer_count = 0, i;
	int rc;

	rc = query_text(
	    &orphan, db,
	    "SELECT m.digest FROM manifest m WHERE m.digest = ?1"
	    " AND NOT EXISTS (SELECT 1 FROM image_ref r"
	    " WHERE r.manifest_digest = m.digest) AND" SQL_UNPINNED("m.digest"),
	    digest, "find manifest users");
	if (rc || !orphan)
		return rc;
	free(orphan);

	rc = query_list(&layers, &layer_count, db,
			"SELECT DISTINCT diff_id FROM manifest_layer"
			" WHERE manifest_digest = ?1",
			digest, "read manifest layers");
	if (!rc)
		rc = delete_by(db,
			       "DELETE FROM manifest_layer"
			       " WHERE manifest_digest = ?1",
			       digest, "delete manifest layers");
	if (!rc)
		rc = delete_by(db, "DELETE FROM manifest WHERE digest = ?1",
			       digest, "delete manifest");
	if (rc)
		goto out;

	grown = realloc(g->manifests, (g->manifest_count + 1) * sizeof(*grown));
	if (!grown) {
		rc = oc_err(OCICACHE_ENOMEM, "out of memory");
		goto out;
	}
	g->manifests = grown;
	g->manifests[g->manifest_count] = strdup(digest);
	if (!g->manifests[g->manifest_count]) {
		rc = oc_err(OCICACHE_ENOMEM, "out of memory");
		goto out;
	}
	g->manifest_count++;

	for (i = 0; !rc && i < layer_count; i++)
		rc = collect_layer(g, db, layers[i]);
out:
	strings_free(layers, layer_count);
	return rc;
}

static int remove_reference(struct db_garbage *g, struct db *db,
			    const char *reference, const char *manifest)
{
	int rc = delete_by(db, "DELETE FROM image_ref WHERE reference = ?1",
			   reference, "delete reference");

	if (rc)
		return rc;
	g->image_refs_removed++;
	return collect_manifest(g, db, manifest);
}

int db_remove_image(struct db_garbage *out, struct db *db,
		    const char *reference, bool force)
{
	char *manifest = NULL, *sandbox = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = db_begin(db);
	if (rc)
		return rc;
	rc = query_text(&manifest, db,
			"SELECT manifest_digest FROM image_ref"
			" WHERE reference = ?1",
			reference, "find image");
	if (!rc && !manifest)
		rc = oc_err(OCICACHE_ENOTFOUND, "image %s is not in the cache",
			    reference);
	if (!rc)
		rc = query_text(&sandbox, db,
				"SELECT sandbox_id FROM sandbox_ref"
				" WHERE manifest_digest = ?1"
				" ORDER BY sandbox_id LIMIT 1",
				manifest, "find sandboxes");
	if (!rc && sandbox && !force)
		rc = oc_err(OCICACHE_EINUSE, "image %s is used by sandbox %s",
			    reference, sandbox);
	if (!rc && sandbox)
		rc = delete_by(db,
			       "DELETE FROM sandbox_ref"
			       " WHERE manifest_digest = ?1",
			       manifest, "delete sandbox references");
	if (!rc)
		rc = remove_reference(out, db, reference, manifest);
	free(manifest);
	free(sandbox);
	rc = db_end(db, rc, true);
	if (rc)
		db_garbage_free(out);
	return rc;
}

static int total_bytes(int64_t *out, struct db *db)
{
	sqlite3_stmt *st;
	int rc = db_prepare(
	    &st, db,
	    "SELECT (SELECT coalesce(sum(erofs_size), 0) FROM layer) +"
	    " (SELECT coalesce(sum(coalesce(fsmeta_size, 0) +"
	    " coalesce(vmdk_size, 0)), 0) FROM manifest)");

	if (rc)
		return rc;
	if (sqlite3_step(st) == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	else
		rc = db_fail(db, "measure the cache");
	sqlite3_finalize(st);
	return rc;
}

static int prune_orphans(struct db_garbage *g, struct db *db)
{
	char **list = NULL;
	size_t count = 0, i;
	int rc;

	rc = query_list(&list, &count, db,
			"SELECT digest FROM manifest ORDER BY digest", NULL,
			"list manifests");
	for (i = 0; !rc && i < count; i++)
		rc = collect_manifest(g, db, list[i]);
	strings_free(list, count);
	list = NULL;
	count = 0;

	if (!rc)
		rc = query_list(&list, &count, db,
				"SELECT diff_id FROM layer l WHERE NOT EXISTS"
				" (SELECT 1 FROM manifest_layer ml"
				" WHERE ml.diff_id = l.diff_id)",
				NULL, "list layers");
	for (i = 0; !rc && i < count; i++)
		rc = collect_layer(g, db, list[i]);
	strings_free(list, count);
	return rc;
}

static int prune_references(struct db_garbage *g, struct db *db,
			    const struct db_prune_options *opts)
{
	sqlite3_stmt *st;
	char **refs = NULL, **manifests = NULL;
	size_t count = 0, i;
	int64_t total = 0;
	int rc, step = SQLITE_DONE;

	rc = db_prepare(
	    &st, db,
	    "SELECT r.reference, r.manifest_digest FROM image_ref r"
	    " WHERE (?1 = 0 OR r.last_used_at < ?1) AND" SQL_UNPINNED(
		"r.manifest_digest") " ORDER BY r.last_used_at, r.reference");
	if (rc)
		return rc;
	sqlite3_bind_int64(st, 1, opts->cutoff_ms);
	while (!rc && (step = sqlite3_step(st)) == SQLITE_ROW) {
		char **r = realloc(refs, (count + 1) * sizeof(*r));
		char **m =
		    r ? realloc(manifests, (count + 1) * sizeof(*m)) : NULL;

		if (r)
			refs = r;
		if (m)
			manifests = m;
		if (!r || !m) {
			rc = oc_err(OCICACHE_ENOMEM, "out of memory");
			break;
		}
		refs[count] = manifests[count] = NULL;
		count++;
		rc = column_dup(&refs[count - 1], st, 0);
		if (!rc)
			rc = column_dup(&manifests[count - 1], st, 1);
	}
	if (!rc && step != SQLITE_DONE)
		rc = db_fail(db, "list references");
	sqlite3_finalize(st);

	for (i = 0; !rc && i < count; i++) {
		if (opts->keep_bytes >= 0) {
			rc = total_bytes(&total, db);
			if (rc || total <= opts->keep_bytes)
				break;
		}
		rc = remove_reference(g, db, refs[i], manifests[i]);
	}
	strings_free(refs, count);
	strings_free(manifests, count);
	return rc;
}

int db_prune(struct db_garbage *out, struct db *db,
	     const struct db_prune_options *opts)
{
	int rc;

	memset(out, 0, sizeof(*out));
	rc = db_begin(db);
	if (rc)
		return rc;
	rc = prune_orphans(out, db);
	if (!rc)
		rc = prune_references(out, db, opts);
	rc = db_end(db, rc, !opts->dry_run);
	if (rc)
		db_garbage_free(out);
	return rc;
}

static int known(struct db *db, const char *sql, const char *key)
{
	char *found = NULL;
	int rc = query_text(&found, db, sql, key, "look up");

	if (rc)
		return rc;
	rc = found != NULL;
	free(found);
	return rc;
}

int db_layer_known(struct db *db, const char *diff_id)
{
	return known(db, "SELECT diff_id FROM layer WHERE diff_id = ?1",
		     diff_id);
}

int db_manifest_known(struct db *db, const char *digest)
{
	return known(db, "SELECT digest FROM manifest WHERE digest = ?1",
		     digest);
}
