#include "pull/manifest.h"

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "common/digest.h"
#include "common/error.h"

/* Media types and platform names longer than this are not real ones. */
#define MEDIA_TYPE_MAX_LEN     255
#define PLATFORM_FIELD_MAX_LEN 64
/* Most Env, Cmd, Entrypoint entries or labels a config may have. */
#define CONFIG_MAX_ITEMS 65536

#define MEDIA_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"

static int parse_json(json_t **out, const char *body, size_t len, size_t max,
		      const char *what)
{
	json_error_t error;

	*out = NULL;
	if (len > max)
		return oc_err(OCICACHE_EFORMAT,
			      "%s: %zu bytes, more than the %zu allowed", what,
			      len, max);
	*out = json_loadb(body, len, JSON_REJECT_DUPLICATES, &error);
	if (!*out)
		return oc_err(OCICACHE_EFORMAT,
			      "%s: invalid JSON at line %d column %d: %s", what,
			      error.line, error.column, error.text);
	if (!json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return oc_err(OCICACHE_EFORMAT, "%s: not a JSON object", what);
	}
	return 0;
}

/*
 * Copy the string member `key` of `obj` to `*out`: NULL when absent or
 * null, an error naming `what` and the key when of another type or longer
 * than `max` (0: no limit).
 */
static int get_string(char **out, json_t *obj, const char *key, size_t max,
		      const char *what)
{
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return oc_err(OCICACHE_EFORMAT, "%s: \"%s\" is not a string",
			      what, key);
	if (max && json_string_length(v) > max)
		return oc_err(OCICACHE_EFORMAT,
			      "%s: \"%s\" longer than %zu characters", what,
			      key, max);
	*out = strdup(json_string_value(v));
	if (!*out)
		return oc_err(OCICACHE_ENOMEM, "%s: out of memory", what);
	return 0;
}

static int check_schema_version(json_t *root, const char *what)
{
	json_t *v = json_object_get(root, "schemaVersion");

	if (!v)
		return oc_err(OCICACHE_EFORMAT, "%s: no schemaVersion", what);
	if (!json_is_integer(v) || json_integer_value(v) != 2)
		return oc_err(OCICACHE_EFORMAT,
			      "%s: schemaVersion is not 2 (schema 1 manifests "
			      "are not supported)",
			      what);
	return 0;
}

static void descriptor_free(struct descriptor *d)
{
	free(d->media_type);
	free(d->digest);
	free(d->os);
	free(d->architecture);
	free(d->variant);
	memset(d, 0, sizeof(*d));
}

static int parse_platform(struct descriptor *d, json_t *platform,
			  const char *what)
{
	int rc;

	if (!platform || json_is_null(platform))
		return 0;
	if (!json_is_object(platform))
		return oc_err(OCICACHE_EFORMAT, "%s: platform is not an object",
			      what);
	rc = get_string(&d->os, platform, "os", PLATFORM_FIELD_MAX_LEN, what);
	if (!rc)
		rc = get_string(&d->architecture, platform, "architecture",
				PLATFORM_FIELD_MAX_LEN, what);
	if (!rc)
		rc = get_string(&d->variant, platform, "variant",
				PLATFORM_FIELD_MAX_LEN, what);
	if (rc)
		return rc;
	if (!d->os || !d->architecture)
		return oc_err(OCICACHE_EFORMAT,
			      "%s: platform without os or architecture", what);
	return 0;
}

/* A descriptor whose size may not exceed `max_size`. */
static int parse_descriptor(struct descriptor *d, json_t *obj, int64_t max_size,
			    const char *what)
{
	json_t *size;
	int rc;

	memset(d, 0, sizeof(*d));
	if (!json_is_object(obj))
		return oc_err(OCICACHE_EFORMAT, "%s: not an object", what);

	rc = get_string(&d->media_type, obj, "mediaType", MEDIA_TYPE_MAX_LEN,
			what);
	if (!rc)
		rc =
		    get_string(&d->digest, obj, "digest", DIGEST_STR_LEN, what);
	if (rc)
		goto fail;
	if (!d->digest || !digest_valid(d->digest)) {
		rc = oc_err(OCICACHE_EFORMAT,
			    "%s: missing or invalid digest '%s'", what,
			    d->digest ? d->digest : "");
		goto fail;
	}

	size = json_object_get(obj, "size");
	if (!json_is_integer(size)) {
		rc = oc_err(OCICACHE_EFORMAT,
			    "%s %s: size missing or not an integer", what,
			    d->digest);
		goto fail;
	}
	d->size = json_integer_value(size);
	if (d->size < 0 || d->size > max_size) {
		rc = oc_err(OCICACHE_EFORMAT,
			    "%s %s: size %lld out of range (0 to %lld)", what,
			    d->digest, (long long)d->size, (long long)max_size);
		goto fail;
	}

	rc = parse_platform(d, json_object_get(obj, "platform"), what);
	if (rc)
		goto fail;
	return 0;

fail:
	descriptor_free(d);
	return rc;
}

/* Parse the array member `key` of descriptors into `*out`. */
static int parse_descriptor_array(struct descriptor **out, size_t *count,
				  json_t *root, const char *key,
				  size_t max_count, int64_t max_size,
				  const char *what)
{
	json_t *array = json_object_get(root, key);
	struct descriptor *list;
	char item[64];
	size_t n;
	int rc;

	*out = NULL;
	*count = 0;
	if (!json_is_array(array))
		return oc_err(OCICACHE_EFORMAT,
			      "%s: \"%s\" missing or not an array", what, key);
	n = json_array_size(array);
	if (n > max_count)
		return oc_err(OCICACHE_EFORMAT,
			      "%s: %zu %s, more than the %zu allowed", what, n,
			      key, max_count);
	if (n == 0)
		return 0;
	list = calloc(n, sizeof(*list));
	if (!list)
		return oc_err(OCICACHE_ENOMEM, "%s: out of memory", what);

	for (size_t i = 0; i < n; i++) {
		snprintf(item, sizeof(item), "%s %s[%zu]", what, key, i);
		rc = parse_descriptor(&list[i], json_array_get(array, i),
				      max_size, item);
		if (rc) {
			for (size_t j = 0; j < i; j++)
				descriptor_free(&list[j]);
			free(list);
			return rc;
		}
	}
	*out = list;
	*count = n;
	return 0;
}

/* The media type without parameters and surrounding blanks. */
static size_t media_type_bare(const char *type, const char **start)
{
	size_t len;

	while (*type == ' ' || *type == '\t')
		type++;
	len = strcspn(type, "; \t\r\n");
	*start = type;
	return len;
}

static bool media_is(const char *type, size_t len, const char *want)
{
	return strlen(want) == len && strncasecmp(type, want, len) == 0;
}

/* MANIFEST_IMAGE, MANIFEST_INDEX, 0 for a type that says nothing (JSON,
 * octet-stream), or OCICACHE_EUNSUPPORTED for another manifest type. */
static int kind_of_type(const char *type)
{
	const char *t;
	size_t len = media_type_bare(type, &t);

	if (media_is(t, len, MEDIA_OCI_MANIFEST) ||
	    media_is(t, len, MEDIA_DOCKER_MANIFEST))
		return MANIFEST_IMAGE;
	if (media_is(t, len, MEDIA_OCI_INDEX) ||
	    media_is(t, len, MEDIA_DOCKER_LIST))
		return MANIFEST_INDEX;
	if (len == 0 || media_is(t, len, "application/json") ||
	    media_is(t, len, "application/octet-stream") ||
	    media_is(t, len, "text/plain"))
		return 0;
	return oc_err(OCICACHE_EUNSUPPORTED,
		      "manifest media type '%.*s' is not supported", (int)len,
		      t);
}

int manifest_kind(const char *content_type, const char *body, size_t len)
{
	int header_kind = 0, body_kind = 0;
	json_t *root, *type;
	int rc;

	if (content_type) {
		header_kind = kind_of_type(content_type);
		if (header_kind < 0)
			return header_kind;
	}
	rc = parse_json(&root, body, len, MANIFEST_MAX_BYTES, "manifest");
	if (rc)
		return rc;

	type = json_object_get(root, "mediaType");
	if (type && !json_is_string(type)) {
		rc = oc_err(OCICACHE_EFORMAT,
			    "manifest: \"mediaType\" is not a string");
		goto out;
	}
	if (type) {
		body_kind = kind_of_type(json_string_value(type));
		if (body_kind < 0) {
			rc = body_kind;
			goto out;
		}
	}
	if (header_kind && body_kind && header_kind != body_kind) {
		rc = oc_err(OCICACHE_EFORMAT,
			    "manifest: Content-Type '%s' disagrees with "
			    "mediaType '%s'",
			    content_type, json_string_value(type));
		goto out;
	}

	if (header_kind)
		rc = header_kind;
	else if (body_kind)
		rc = body_kind;
	else if (json_is_array(json_object_get(root, "manifests")))
		rc = MANIFEST_INDEX;
	else if (json_is_array(json_object_get(root, "layers")))
		rc = MANIFEST_IMAGE;
	else
		rc = oc_err(OCICACHE_EFORMAT,
			    "manifest: neither an image manifest nor an "
			    "index (no \"layers\" or \"manifests\" array)");
out:
	json_decref(root);
	return rc;
}

/* The manifest's own type: its mediaType, else what its config says. */
static int manifest_media_type(struct manifest *m, json_t *root)
{
	const char *t;
	size_t len;
	int rc;

	rc = get_string(&m->media_type, root, "mediaType", MEDIA_TYPE_MAX_LEN,
			"manifest");
	if (rc)
		return rc;
	if (m->media_type) {
		len = media_type_bare(m->media_type, &t);
		if (!media_is(t, len, MEDIA_OCI_MANIFEST) &&
		    !media_is(t, len, MEDIA_DOCKER_MANIFEST))
			return oc_err(OCICACHE_EFORMAT,
				      "manifest: mediaType '%s' is not an "
				      "image manifest",
				      m->media_type);
		return 0;
	}
	if (m->config.media_type &&
	    strcmp(m->config.media_type, MEDIA_DOCKER_CONFIG) == 0)
		m->media_type = strdup(MEDIA_DOCKER_MANIFEST);
	else
		m->media_type = strdup(MEDIA_OCI_MANIFEST);
	if (!m->media_type)
		return oc_err(OCICACHE_ENOMEM, "manifest: out of memory");
	return 0;
}

int manifest_parse(struct manifest *out, const char *body, size_t len)
{
	json_t *root;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = parse_json(&root, body, len, MANIFEST_MAX_BYTES, "manifest");
	if (rc)
		return rc;

	rc = check_schema_version(root, "manifest");
	if (rc)
		goto out;
	if (!json_object_get(root, "config")) {
		rc = oc_err(OCICACHE_EFORMAT, "manifest: no config");
		goto out;
	}
	rc = parse_descriptor(&out->config, json_object_get(root, "config"),
			      CONFIG_MAX_BYTES, "manifest config");
	if (rc)
		goto out;
	rc = parse_descriptor_array(&out->layers, &out->layer_count, root,
				    "layers", MANIFEST_MAX_LAYERS, INT64_MAX,
				    "manifest");
	if (rc)
		goto out;
	rc = manifest_media_type(out, root);
out:
	json_decref(root);
	if (rc)
		manifest_free(out);
	return rc;
}

void manifest_free(struct manifest *m)
{
	if (!m)
		return;
	free(m->media_type);
	descriptor_free(&m->config);
	for (size_t i = 0; i < m->layer_count; i++)
		descriptor_free(&m->layers[i]);
	free(m->layers);
	memset(m, 0, sizeof(*m));
}

int image_index_parse(struct image_index *out, const char *body, size_t len)
{
	const char *t;
	json_t *root;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = parse_json(&root, body, len, MANIFEST_MAX_BYTES, "index");
	if (rc)
		return rc;

	rc = check_schema_version(root, "index");
	if (!rc)
		rc = get_string(&out->media_type, root, "mediaType",
				MEDIA_TYPE_MAX_LEN, "index");
	if (rc)
		goto out;
	if (out->media_type) {
		size_t n = media_type_bare(out->media_type, &t);

		if (!media_is(t, n, MEDIA_OCI_INDEX) &&
		    !media_is(t, n, MEDIA_DOCKER_LIST)) {
			rc = oc_err(OCICACHE_EFORMAT,
				    "index: mediaType '%s' is not an index",
				    out->media_type);
			goto out;
		}
	} else {
		out->media_type = strdup(MEDIA_OCI_INDEX);
		if (!out->media_type) {
			rc = oc_err(OCICACHE_ENOMEM, "index: out of memory");
			goto out;
		}
	}
	rc = parse_descriptor_array(&out->manifests, &out->manifest_count, root,
				    "manifests", INDEX_MAX_MANIFESTS,
				    MANIFEST_MAX_BYTES, "index");
out:
	json_decref(root);
	if (rc)
		image_index_free(out);
	return rc;
}

void image_index_free(struct image_index *idx)
{
	if (!idx)
		return;
	free(idx->media_type);
	for (size_t i = 0; i < idx->manifest_count; i++)
		descriptor_free(&idx->manifests[i]);
	free(idx->manifests);
	memset(idx, 0, sizeof(*idx));
}

static bool entry_is_image(const struct descriptor *d)
{
	return !d->media_type ||
	       strcmp(d->media_type, MEDIA_OCI_MANIFEST) == 0 ||
	       strcmp(d->media_type, MEDIA_DOCKER_MANIFEST) == 0;
}

/*
 * How well entry `d` fits the wanted platform: 0 not at all, higher is
 * better. arm64 images often omit their "v8" variant, so the two spellings
 * are taken as one, a little below an exact match.
 */
static int platform_score(const struct descriptor *d, const char *os,
			  const char *architecture, const char *variant)
{
	bool arm64 = strcmp(architecture, "arm64") == 0;

	if (!entry_is_image(d) || !d->os || !d->architecture ||
	    strcmp(d->os, os) != 0 || strcmp(d->architecture, architecture))
		return 0;
	if (!variant)
		return d->variant ? 1 : 2;
	if (d->variant && strcmp(d->variant, variant) == 0)
		return 3;
	if (arm64 && !d->variant && strcmp(variant, "v8") == 0)
		return 2;
	return 0;
}

int image_index_choose(const struct descriptor **out,
		       const struct image_index *idx, const char *os,
		       const char *architecture, const char *variant)
{
	const struct descriptor *best = NULL;
	int best_score = 0;

	*out = NULL;
	for (size_t i = 0; i < idx->manifest_count; i++) {
		const struct descriptor *d = &idx->manifests[i];
		int score = platform_score(d, os, architecture, variant);

		if (score > best_score) {
			best = d;
			best_score = score;
		}
	}
	if (!best)
		return oc_err(OCICACHE_ENOTFOUND,
			      "no manifest for platform %s/%s%s%s in the index "
			      "(%zu entries)",
			      os, architecture, variant ? "/" : "",
			      variant ? variant : "", idx->manifest_count);
	*out = best;
	return 0;
}

int blob_compression_of(enum blob_compression *out, const char *media_type)
{
	static const struct {
		const char *type;
		enum blob_compression compression;
	} layers[] = {
	    {"application/vnd.oci.image.layer.v1.tar", BLOB_UNCOMPRESSED},
	    {"application/vnd.oci.image.layer.v1.tar+gzip", BLOB_GZIP},
	    {"application/vnd.oci.image.layer.v1.tar+zstd", BLOB_ZSTD},
	    {"application/vnd.oci.image.layer.nondistributable.v1.tar",
	     BLOB_UNCOMPRESSED},
	    {"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
	     BLOB_GZIP},
	    {"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
	     BLOB_ZSTD},
	    {"application/vnd.docker.image.rootfs.diff.tar", BLOB_UNCOMPRESSED},
	    {"application/vnd.docker.image.rootfs.diff.tar.gzip", BLOB_GZIP},
	    {"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
	     BLOB_GZIP},
	};

	if (!media_type) {
		*out = BLOB_GZIP;
		return 0;
	}
	for (size_t i = 0; i < sizeof(layers) / sizeof(layers[0]); i++) {
		if (strcmp(media_type, layers[i].type) == 0) {
			*out = layers[i].compression;
			return 0;
		}
	}
	return oc_err(OCICACHE_EUNSUPPORTED,
		      "media type '%s' is not a layer type we can read",
		      media_type);
}

/* A JSON array of strings as a NULL-terminated array. */
static int string_array(char ***out, json_t *array, const char *what)
{
	size_t n;
	char **list;
	int rc;

	*out = NULL;
	if (!json_is_array(array))
		return oc_err(OCICACHE_EFORMAT, "%s is not an array", what);
	n = json_array_size(array);
	if (n > CONFIG_MAX_ITEMS)
		return oc_err(OCICACHE_EFORMAT,
			      "%s: %zu entries, more than the %d allowed", what,
			      n, CONFIG_MAX_ITEMS);
	list = calloc(n + 1, sizeof(*list));
	if (!list)
		return oc_err(OCICACHE_ENOMEM, "%s: out of memory", what);
	for (size_t i = 0; i < n; i++) {
		json_t *v = json_array_get(array, i);

		if (!json_is_string(v)) {
			rc = oc_err(OCICACHE_EFORMAT, "%s[%zu] is not a string",
				    what, i);
			goto fail;
		}
		list[i] = strdup(json_string_value(v));
		if (!list[i]) {
			rc = oc_err(OCICACHE_ENOMEM, "%s: out of memory", what);
			goto fail;
		}
	}
	*out = list;
	return 0;

fail:
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
	return rc;
}

static void string_array_free(char **list)
{
	if (!list)
		return;
	for (char **p = list; *p; p++)
		free(*p);
	free(list);
}

/* A member that may be absent or null (then NULL) or an array. */
static int optional_string_array(char ***out, json_t *obj, const char *key,
				 const char *what)
{
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	return string_array(out, v, what);
}

static int parse_rootfs(struct image_config *c, json_t *root)
{
	json_t *rootfs = json_object_get(root, "rootfs");
	json_t *type, *ids;
	size_t n;

	if (!json_is_object(rootfs))
		return oc_err(OCICACHE_EFORMAT,
			      "image config: rootfs missing or not an object");
	type = json_object_get(rootfs, "type");
	if (!json_is_string(type) ||
	    strcmp(json_string_value(type), "layers") != 0)
		return oc_err(OCICACHE_EFORMAT,
			      "image config: rootfs.type is not \"layers\"");
	ids = json_object_get(rootfs, "diff_ids");
	if (!json_is_array(ids))
		return oc_err(OCICACHE_EFORMAT,
			      "image config: rootfs.diff_ids missing or not "
			      "an array");
	n = json_array_size(ids);
	if (n > MANIFEST_MAX_LAYERS)
		return oc_err(OCICACHE_EFORMAT,
			      "image config: %zu diff_ids, more than the %d "
			      "allowed",
			      n, MANIFEST_MAX_LAYERS);
	for (size_t i = 0; i < n; i++) {
		json_t *v = json_array_get(ids, i);

		if (!json_is_string(v) || !digest_valid(json_string_value(v)))
			return oc_err(OCICACHE_EFORMAT,
				      "image config: rootfs.diff_ids[%zu] is "
				      "not a valid sha256 digest",
				      i);
	}
	c->diff_id_count = n;
	return string_array(&c->diff_ids, ids, "image config: rootfs.diff_ids");
}

static int parse_labels(struct image_config *c, json_t *config)
{
	json_t *labels = json_object_get(config, "Labels");
	const char *key;
	json_t *value;

	if (!labels || json_is_null(labels))
		return 0;
	if (!json_is_object(labels))
		return oc_err(OCICACHE_EFORMAT,
			      "image config: config.Labels is not an object");
	if (json_object_size(labels) > CONFIG_MAX_ITEMS)
		return oc_err(OCICACHE_EFORMAT,
			      "image config: more than %d labels",
			      CONFIG_MAX_ITEMS);
	json_object_foreach(labels, key, value)
	{
		if (!json_is_string(value))
			return oc_err(OCICACHE_EFORMAT,
				      "image config: label '%s' is not a "
				      "string",
				      key);
	}
	c->labels_json = json_dumps(labels, JSON_COMPACT);
	if (!c->labels_json)
		return oc_err(OCICACHE_ENOMEM, "image config: out of memory");
	return 0;
}

/* The runtime part, "config", which may be absent or null. */
static int parse_runtime(struct image_config *c, json_t *root)
{
	static const char what[] = "image config";
	json_t *config = json_object_get(root, "config");
	int rc;

	if (config && !json_is_null(config) && !json_is_object(config))
		return oc_err(OCICACHE_EFORMAT,
			      "image config: config is not an object");
	if (!json_is_object(config))
		config = NULL;

	if (config) {
		rc = optional_string_array(&c->env, config, "Env",
					   "image config: config.Env");
		if (!rc)
			rc = optional_string_array(&c->cmd, config, "Cmd",
						   "image config: config.Cmd");
		if (!rc)
			rc = optional_string_array(
			    &c->entrypoint, config, "Entrypoint",
			    "image config: config.Entrypoint");
		if (!rc)
			rc = get_string(&c->working_dir, config, "WorkingDir",
					0, what);
		if (!rc)
			rc = get_string(&c->user, config, "User", 0, what);
		if (!rc)
			rc = get_string(&c->stop_signal, config, "StopSignal",
					0, what);
		if (!rc)
			rc = parse_labels(c, config);
		if (rc)
			return rc;
	}
	if (!c->env) {
		c->env = calloc(1, sizeof(*c->env));
		if (!c->env)
			return oc_err(OCICACHE_ENOMEM,
				      "image config: out of memory");
	}
	return 0;
}

int image_config_parse(struct image_config *out, const char *body, size_t len)
{
	static const char what[] = "image config";
	json_t *root;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = parse_json(&root, body, len, CONFIG_MAX_BYTES, what);
	if (rc)
		return rc;

	rc = get_string(&out->architecture, root, "architecture",
			PLATFORM_FIELD_MAX_LEN, what);
	if (!rc)
		rc = get_string(&out->os, root, "os", PLATFORM_FIELD_MAX_LEN,
				what);
	if (!rc)
		rc = get_string(&out->variant, root, "variant",
				PLATFORM_FIELD_MAX_LEN, what);
	if (!rc)
		rc = parse_rootfs(out, root);
	if (!rc)
		rc = parse_runtime(out, root);

	json_decref(root);
	if (rc)
		image_config_free(out);
	return rc;
}

void image_config_free(struct image_config *c)
{
	if (!c)
		return;
	free(c->architecture);
	free(c->os);
	free(c->variant);
	string_array_free(c->diff_ids);
	string_array_free(c->env);
	string_array_free(c->cmd);
	string_array_free(c->entrypoint);
	free(c->working_dir);
	free(c->user);
	free(c->labels_json);
	free(c->stop_signal);
	memset(c, 0, sizeof(*c));
}

static struct {
	const char *architecture;
	const char *variant;
} host_platform;

static void platform_detect(void)
{
	static const struct {
		const char *machine;
		const char *architecture;
		const char *variant;
	} table[] = {
	    {"x86_64", "amd64", NULL},
	    {"amd64", "amd64", NULL},
	    {"aarch64", "arm64", "v8"},
	    {"arm64", "arm64", "v8"},
	    {"armv8l", "arm", "v8"},
	    {"armv7l", "arm", "v7"},
	    {"armv7", "arm", "v7"},
	    {"armv6l", "arm", "v6"},
	    {"armv5tel", "arm", "v5"},
	    {"i386", "386", NULL},
	    {"i486", "386", NULL},
	    {"i586", "386", NULL},
	    {"i686", "386", NULL},
	    {"ppc64le", "ppc64le", NULL},
	    {"ppc64", "ppc64", NULL},
	    {"s390x", "s390x", NULL},
	    {"riscv64", "riscv64", NULL},
	    {"mips64", "mips64", NULL},
	    {"loongarch64", "loong64", NULL},
	};
	struct utsname u;

	host_platform.architecture = "amd64";
	if (uname(&u) != 0)
		return;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		if (strcmp(u.machine, table[i].machine) == 0) {
			host_platform.architecture = table[i].architecture;
			host_platform.variant = table[i].variant;
			return;
		}
	}
	/* An unknown machine keeps the amd64 default: an image for it would
	 * not name it the way uname does anyway. */
}

void platform_host(const char **os, const char **architecture,
		   const char **variant)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, platform_detect);
	*os = "linux";
	*architecture = host_platform.architecture;
	*variant = host_platform.variant;
}

static bool platform_part_valid(const char *s, size_t len)
{
	if (len == 0 || len > PLATFORM_FIELD_MAX_LEN)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-' || c == '.'))
			return false;
	}
	return true;
}

int platform_parse(char **os, char **architecture, char **variant,
		   const char *text)
{
	const char *parts[3];
	size_t lens[3];
	size_t count = 0;
	const char *p = text;

	*os = *architecture = *variant = NULL;
	if (!text)
		return oc_err(OCICACHE_EINVAL, "empty platform");
	for (;;) {
		size_t len = strcspn(p, "/");

		if (count == 3)
			return oc_err(OCICACHE_EINVAL,
				      "platform '%s': want OS/ARCH[/VARIANT]",
				      text);
		if (!platform_part_valid(p, len))
			return oc_err(OCICACHE_EINVAL,
				      "platform '%s': invalid part '%.*s'",
				      text, (int)len, p);
		parts[count] = p;
		lens[count++] = len;
		if (!p[len])
			break;
		p += len + 1;
	}
	if (count < 2)
		return oc_err(OCICACHE_EINVAL,
			      "platform '%s': want OS/ARCH[/VARIANT]", text);

	*os = strndup(parts[0], lens[0]);
	*architecture = strndup(parts[1], lens[1]);
	if (count == 3)
		*variant = strndup(parts[2], lens[2]);
	if (!*os || !*architecture || (count == 3 && !*variant)) {
		free(*os);
		free(*architecture);
		free(*variant);
		*os = *architecture = *variant = NULL;
		return oc_err(OCICACHE_ENOMEM, "platform '%s': out of memory",
			      text);
	}
	return 0;
}
