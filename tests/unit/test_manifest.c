#include <stdbool.h>
#include <stdlib.h>

#include "pull/manifest.h"
#include "common/error.h"
#include "tests/unit/check.h"

#define DA        \
	"sha256:" \
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define DB        \
	"sha256:" \
	"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define DC        \
	"sha256:" \
	"cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"

#define OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define OCI_GZIP   "application/vnd.oci.image.layer.v1.tar+gzip"

/* umoci writes manifests without a mediaType. */
static const char umoci_manifest[] =
    "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" OCI_CONFIG "\","
    "\"digest\":\"" DA "\",\"size\":452},\"layers\":[{\"mediaType\":\"" OCI_GZIP
    "\",\"digest\":\"" DB "\",\"size\":123},{\"mediaType\":\"" OCI_GZIP
    "\",\"digest\":\"" DC "\",\"size\":0}],\"annotations\":{\"a\":\"b\"}}";

static const char docker_manifest[] =
    "{\"schemaVersion\":2,\"mediaType\":\"" MEDIA_DOCKER_MANIFEST "\","
    "\"config\":{\"mediaType\":"
    "\"application/vnd.docker.container.image.v1+json\","
    "\"digest\":\"" DA "\",\"size\":1000},\"layers\":[{\"mediaType\":"
    "\"application/vnd.docker.image.rootfs.diff.tar.gzip\","
    "\"digest\":\"" DB "\",\"size\":3000000000}]}";

static const char oci_index[] =
    "{\"schemaVersion\":2,\"mediaType\":\"" MEDIA_OCI_INDEX "\","
    "\"manifests\":["
    "{\"mediaType\":\"" MEDIA_OCI_MANIFEST "\",\"digest\":\"" DA "\","
    "\"size\":500,\"platform\":{\"os\":\"linux\",\"architecture\":"
    "\"amd64\"}},"
    "{\"mediaType\":\"" MEDIA_OCI_MANIFEST "\",\"digest\":\"" DB "\","
    "\"size\":501,\"platform\":{\"os\":\"linux\",\"architecture\":"
    "\"arm64\",\"variant\":\"v8\"}},"
    "{\"mediaType\":\"" MEDIA_OCI_MANIFEST "\",\"digest\":\"" DC "\","
    "\"size\":502,\"platform\":{\"os\":\"linux\",\"architecture\":"
    "\"arm\",\"variant\":\"v7\"}}]}";

static const char docker_list[] =
    "{\"schemaVersion\":2,\"mediaType\":\"" MEDIA_DOCKER_LIST "\","
    "\"manifests\":["
    "{\"mediaType\":\"" MEDIA_DOCKER_MANIFEST "\",\"digest\":\"" DA "\","
    "\"size\":500,\"platform\":{\"os\":\"linux\",\"architecture\":"
    "\"arm64\"}},"
    "{\"mediaType\":\"" MEDIA_DOCKER_MANIFEST "\",\"digest\":\"" DB "\","
    "\"size\":501,\"platform\":{\"os\":\"linux\",\"architecture\":"
    "\"amd64\",\"variant\":\"v3\"}},"
    "{\"mediaType\":\"" MEDIA_DOCKER_MANIFEST "\",\"digest\":\"" DC "\","
    "\"size\":502,\"platform\":{\"os\":\"linux\",\"architecture\":"
    "\"amd64\"}}]}";

static const char full_config[] =
    "{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\","
    "\"created\":\"2024-01-01T00:00:00Z\","
    "\"config\":{\"Env\":[\"PATH=/usr/bin\",\"A=b c\"],"
    "\"Cmd\":[\"/bin/sh\",\"-c\",\"echo hi\"],\"Entrypoint\":null,"
    "\"WorkingDir\":\"/srv\",\"User\":\"1000:1000\","
    "\"Labels\":{\"org.example\":\"yes\", \"b\" : \"\\\"q\\\"\"},"
    "\"StopSignal\":\"SIGTERM\"},"
    "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" DA "\",\"" DB
    "\"]},\"history\":[]}";

static int parse_text(struct manifest *m, const char *text)
{
	return manifest_parse(m, text, strlen(text));
}

static bool message_has(const char *piece)
{
	if (strstr(oc_err_message(), piece))
		return true;
	fprintf(stderr, "  message '%s' lacks '%s'\n", oc_err_message(), piece);
	return false;
}

static void test_umoci_manifest_without_media_type_parses(void)
{
	struct manifest m;

	CHECK(parse_text(&m, umoci_manifest) == 0);
	CHECK_STR(m.media_type, MEDIA_OCI_MANIFEST);
	CHECK_STR(m.config.digest, DA);
	CHECK(m.config.size == 452);
	CHECK(m.layer_count == 2);
	if (m.layer_count == 2) {
		CHECK_STR(m.layers[0].digest, DB);
		CHECK_STR(m.layers[0].media_type, OCI_GZIP);
		CHECK(m.layers[1].size == 0);
	}
	manifest_free(&m);
}

static void test_docker_manifest_parses_with_large_layer(void)
{
	struct manifest m;

	CHECK(parse_text(&m, docker_manifest) == 0);
	CHECK_STR(m.media_type, MEDIA_DOCKER_MANIFEST);
	CHECK(m.layer_count == 1);
	if (m.layer_count == 1)
		CHECK(m.layers[0].size == 3000000000LL);
	manifest_free(&m);
}

static void test_kind_from_header_then_media_type_then_shape(void)
{
	static const char empty_index[] =
	    "{\"schemaVersion\":2,\"manifests\":[]}";
	size_t ul = strlen(umoci_manifest), il = strlen(oci_index);

	CHECK(manifest_kind(MEDIA_OCI_MANIFEST, umoci_manifest, ul) ==
	      MANIFEST_IMAGE);
	CHECK(manifest_kind(MEDIA_OCI_INDEX "; charset=utf-8", oci_index, il) ==
	      MANIFEST_INDEX);
	/* No usable header: the body's mediaType decides. */
	CHECK(manifest_kind(NULL, docker_list, strlen(docker_list)) ==
	      MANIFEST_INDEX);
	CHECK(manifest_kind("application/json", docker_manifest,
			    strlen(docker_manifest)) == MANIFEST_IMAGE);
	/* Neither: the shape decides. */
	CHECK(manifest_kind(NULL, umoci_manifest, ul) == MANIFEST_IMAGE);
	CHECK(manifest_kind("application/octet-stream", empty_index,
			    strlen(empty_index)) == MANIFEST_INDEX);
	CHECK(manifest_kind(NULL, "{\"schemaVersion\":2}", 19) ==
	      OCICACHE_EFORMAT);
	/* Header and body disagree. */
	CHECK(manifest_kind(MEDIA_OCI_MANIFEST, oci_index, il) ==
	      OCICACHE_EFORMAT);
	CHECK(message_has("disagrees"));
	/* Schema 1 is not read. */
	CHECK(manifest_kind("application/vnd.docker.distribution.manifest.v1+"
			    "prettyjws",
			    umoci_manifest, ul) == OCICACHE_EUNSUPPORTED);
	CHECK(manifest_kind(NULL, "[1,2]", 5) == OCICACHE_EFORMAT);
	CHECK(manifest_kind(NULL, "{\"layers\":", 10) == OCICACHE_EFORMAT);
}

struct hostile {
	const char *json;
	int code;
	const char *in_message;
};

#define CFG "\"config\":{\"digest\":\"" DA "\",\"size\":1}"

static const struct hostile hostile_manifests[] = {
    {"not json", OCICACHE_EFORMAT, "invalid JSON"},
    {"[]", OCICACHE_EFORMAT, "not a JSON object"},
    {"{\"config\":{},\"layers\":[]}", OCICACHE_EFORMAT, "schemaVersion"},
    {"{\"schemaVersion\":1," CFG ",\"layers\":[]}", OCICACHE_EFORMAT,
     "schemaVersion"},
    {"{\"schemaVersion\":\"2\"," CFG ",\"layers\":[]}", OCICACHE_EFORMAT,
     "schemaVersion"},
    {"{\"schemaVersion\":2,\"layers\":[]}", OCICACHE_EFORMAT, "no config"},
    {"{\"schemaVersion\":2," CFG "}", OCICACHE_EFORMAT, "\"layers\""},
    {"{\"schemaVersion\":2," CFG ",\"layers\":{}}", OCICACHE_EFORMAT,
     "\"layers\""},
    {"{\"schemaVersion\":2,\"config\":[],"
     "\"layers\":[]}",
     OCICACHE_EFORMAT, "config: not an object"},
    {"{\"schemaVersion\":2,\"config\":{\"digest\":\"sha256:abc\","
     "\"size\":1},\"layers\":[]}",
     OCICACHE_EFORMAT, "invalid digest 'sha256:abc'"},
    {"{\"schemaVersion\":2,\"config\":{\"digest\":\"" DA "\"},"
     "\"layers\":[]}",
     OCICACHE_EFORMAT, "size missing"},
    {"{\"schemaVersion\":2,\"config\":{\"digest\":\"" DA "\","
     "\"size\":\"1\"},\"layers\":[]}",
     OCICACHE_EFORMAT, "size missing or not an integer"},
    {"{\"schemaVersion\":2,\"config\":{\"digest\":\"" DA "\","
     "\"size\":1.5},\"layers\":[]}",
     OCICACHE_EFORMAT, "not an integer"},
    {"{\"schemaVersion\":2," CFG ",\"layers\":[{\"digest\":\"" DB "\","
     "\"size\":-1}]}",
     OCICACHE_EFORMAT, "layers[0] " DB ": size -1"},
    {"{\"schemaVersion\":2,\"config\":{\"digest\":\"" DA "\","
     "\"size\":999999999},\"layers\":[]}",
     OCICACHE_EFORMAT, "out of range"},
    {"{\"schemaVersion\":2," CFG ",\"layers\":[{\"digest\":7,"
     "\"size\":1}]}",
     OCICACHE_EFORMAT, "\"digest\" is not a string"},
    {"{\"schemaVersion\":2," CFG ",\"layers\":[{\"digest\":\"" DB "\","
     "\"size\":1,\"mediaType\":[]}]}",
     OCICACHE_EFORMAT, "\"mediaType\" is not a string"},
    {"{\"schemaVersion\":2,\"mediaType\":\"" MEDIA_OCI_INDEX "\"," CFG
     ",\"layers\":[]}",
     OCICACHE_EFORMAT, "not an image manifest"},
    {"{\"schemaVersion\":2," CFG ",\"layers\":[null]}", OCICACHE_EFORMAT,
     "layers[0]: not an object"},
    {"{\"schemaVersion\":2,\"schemaVersion\":2," CFG ",\"layers\":[]}",
     OCICACHE_EFORMAT, "duplicate"},
    {"{\"schemaVersion\":2," CFG ",\"layers\":[{\"digest\":\"SHA256:"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
     "\"size\":1}]}",
     OCICACHE_EFORMAT, "invalid digest"},
    {"{\"schemaVersion\":2," CFG ",\"layers\":[{\"digest\":\"" DB
     "\\u0000\",\"size\":1}]}",
     OCICACHE_EFORMAT, "invalid JSON"},
};

static void test_hostile_manifests_fail_cleanly(void)
{
	for (size_t i = 0;
	     i < sizeof(hostile_manifests) / sizeof(hostile_manifests[0]);
	     i++) {
		const struct hostile *h = &hostile_manifests[i];
		struct manifest m;
		int rc = parse_text(&m, h->json);

		if (rc != h->code) {
			fprintf(stderr, "  case %zu: rc %d want %d: %s\n", i,
				rc, h->code, h->json);
			CHECK(rc == h->code);
		}
		CHECK(message_has(h->in_message));
		CHECK(m.layers == NULL && m.config.digest == NULL);
		if (rc == 0)
			manifest_free(&m);
	}
}

/* A JSON document with `count` copies of `item` in the array `key`. */
static char *repeated(const char *head, const char *item, size_t count,
		      const char *tail)
{
	size_t item_len = strlen(item);
	size_t len = strlen(head) + count * (item_len + 1) + strlen(tail) + 1;
	char *text = malloc(len);
	char *p = text;

	if (!text)
		return NULL;
	p += sprintf(p, "%s", head);
	for (size_t i = 0; i < count; i++)
		p += sprintf(p, "%s%s", i ? "," : "", item);
	strcpy(p, tail);
	return text;
}

static void test_huge_counts_are_refused(void)
{
	const char *layer = "{\"digest\":\"" DB "\",\"size\":1}";
	struct manifest m;
	struct image_index idx;
	char *text;

	text = repeated("{\"schemaVersion\":2," CFG ",\"layers\":[", layer,
			MANIFEST_MAX_LAYERS + 1, "]}");
	CHECK(text && parse_text(&m, text) == OCICACHE_EFORMAT);
	CHECK(message_has("501 layers, more than the 500 allowed"));
	free(text);

	text = repeated("{\"schemaVersion\":2," CFG ",\"layers\":[", layer,
			MANIFEST_MAX_LAYERS, "]}");
	CHECK(text && parse_text(&m, text) == 0);
	CHECK(m.layer_count == MANIFEST_MAX_LAYERS);
	manifest_free(&m);
	free(text);

	text = repeated("{\"schemaVersion\":2,\"manifests\":[", layer,
			INDEX_MAX_MANIFESTS + 1, "]}");
	CHECK(text &&
	      image_index_parse(&idx, text, strlen(text)) == OCICACHE_EFORMAT);
	CHECK(message_has("more than the 1000 allowed"));
	free(text);

	text = malloc(MANIFEST_MAX_BYTES + 1);
	if (text) {
		memset(text, ' ', MANIFEST_MAX_BYTES + 1);
		CHECK(manifest_parse(&m, text, MANIFEST_MAX_BYTES + 1) ==
		      OCICACHE_EFORMAT);
		CHECK(message_has("more than the"));
		free(text);
	}
}

static void test_index_and_list_parse(void)
{
	struct image_index idx;

	CHECK(image_index_parse(&idx, oci_index, strlen(oci_index)) == 0);
	CHECK(idx.manifest_count == 3);
	CHECK_STR(idx.media_type, MEDIA_OCI_INDEX);
	if (idx.manifest_count == 3) {
		CHECK_STR(idx.manifests[1].architecture, "arm64");
		CHECK_STR(idx.manifests[1].variant, "v8");
		CHECK_STR(idx.manifests[0].variant, NULL);
		CHECK(idx.manifests[2].size == 502);
	}
	image_index_free(&idx);

	CHECK(image_index_parse(&idx, docker_list, strlen(docker_list)) == 0);
	CHECK_STR(idx.media_type, MEDIA_DOCKER_LIST);
	image_index_free(&idx);

	CHECK(image_index_parse(&idx, umoci_manifest, strlen(umoci_manifest)) ==
	      OCICACHE_EFORMAT);
	CHECK(image_index_parse(&idx, docker_manifest,
				strlen(docker_manifest)) == OCICACHE_EFORMAT);
	CHECK(message_has("not an index"));
}

static void test_hostile_index_entries_fail(void)
{
	static const char *const bad[] = {
	    "{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"" DA "\","
	    "\"size\":1,\"platform\":\"linux\"}]}",
	    "{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"" DA "\","
	    "\"size\":1,\"platform\":{\"os\":\"linux\"}}]}",
	    "{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"" DA "\","
	    "\"size\":1,\"platform\":{\"os\":1,\"architecture\":\"x\"}}]}",
	    "{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"" DA "\","
	    "\"size\":99999999}]}",
	    "{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"md5:00\","
	    "\"size\":1}]}",
	    "{\"schemaVersion\":2,\"manifests\":null}",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct image_index idx;
		int rc = image_index_parse(&idx, bad[i], strlen(bad[i]));

		if (rc != OCICACHE_EFORMAT)
			fprintf(stderr, "  case %zu accepted\n", i);
		CHECK(rc == OCICACHE_EFORMAT);
		CHECK(message_has("index"));
	}
}

static void test_index_choose_platform(void)
{
	const struct descriptor *d;
	struct image_index idx;

	CHECK(image_index_parse(&idx, oci_index, strlen(oci_index)) == 0);
	CHECK(image_index_choose(&d, &idx, "linux", "amd64", NULL) == 0);
	CHECK(d && strcmp(d->digest, DA) == 0);
	CHECK(image_index_choose(&d, &idx, "linux", "arm64", "v8") == 0);
	CHECK(d && strcmp(d->digest, DB) == 0);
	CHECK(image_index_choose(&d, &idx, "linux", "arm64", NULL) == 0);
	CHECK(d && strcmp(d->digest, DB) == 0);
	CHECK(image_index_choose(&d, &idx, "linux", "arm", "v7") == 0);
	CHECK(d && strcmp(d->digest, DC) == 0);
	CHECK(image_index_choose(&d, &idx, "linux", "arm", "v6") ==
	      OCICACHE_ENOTFOUND);
	CHECK(message_has("linux/arm/v6"));
	CHECK(image_index_choose(&d, &idx, "windows", "amd64", NULL) ==
	      OCICACHE_ENOTFOUND);
	CHECK(d == NULL);
	image_index_free(&idx);

	CHECK(image_index_parse(&idx, docker_list, strlen(docker_list)) == 0);
	/* arm64 without a variant is what an arm64/v8 host wants. */
	CHECK(image_index_choose(&d, &idx, "linux", "arm64", "v8") == 0);
	CHECK(d && strcmp(d->digest, DA) == 0);
	/* No variant asked: the entry without one is preferred. */
	CHECK(image_index_choose(&d, &idx, "linux", "amd64", NULL) == 0);
	CHECK(d && strcmp(d->digest, DC) == 0);
	CHECK(image_index_choose(&d, &idx, "linux", "amd64", "v3") == 0);
	CHECK(d && strcmp(d->digest, DB) == 0);
	image_index_free(&idx);
}

static void test_blob_compression_of_layer_types(void)
{
	static const struct {
		const char *type;
		int rc;
		enum blob_compression c;
	} cases[] = {
	    {"application/vnd.oci.image.layer.v1.tar", 0, BLOB_UNCOMPRESSED},
	    {OCI_GZIP, 0, BLOB_GZIP},
	    {"application/vnd.oci.image.layer.v1.tar+zstd", 0, BLOB_ZSTD},
	    {"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", 0,
	     BLOB_GZIP},
	    {"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", 0,
	     BLOB_ZSTD},
	    {"application/vnd.docker.image.rootfs.diff.tar.gzip", 0, BLOB_GZIP},
	    {"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", 0,
	     BLOB_GZIP},
	    {NULL, 0, BLOB_GZIP},
	    {OCI_CONFIG, OCICACHE_EUNSUPPORTED, 0},
	    {"application/vnd.docker.container.image.v1+json",
	     OCICACHE_EUNSUPPORTED, 0},
	    {"application/vnd.oci.image.layer.v1.tar+bzip2",
	     OCICACHE_EUNSUPPORTED, 0},
	    {"", OCICACHE_EUNSUPPORTED, 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum blob_compression c = 99;
		int rc = blob_compression_of(&c, cases[i].type);

		if (rc != cases[i].rc || (rc == 0 && c != cases[i].c)) {
			fprintf(stderr, "  %s: rc %d compression %d\n",
				cases[i].type ? cases[i].type : "NULL", rc,
				(int)c);
			CHECK(0);
		}
	}
	CHECK(blob_compression_of(&(enum blob_compression){0}, OCI_CONFIG) ==
	      OCICACHE_EUNSUPPORTED);
	CHECK(message_has(OCI_CONFIG));
}

static void test_config_fields(void)
{
	struct image_config c;

	CHECK(image_config_parse(&c, full_config, strlen(full_config)) == 0);
	CHECK_STR(c.architecture, "arm64");
	CHECK_STR(c.os, "linux");
	CHECK_STR(c.variant, "v8");
	CHECK(c.diff_id_count == 2);
	if (c.diff_id_count == 2) {
		CHECK_STR(c.diff_ids[0], DA);
		CHECK_STR(c.diff_ids[1], DB);
	}
	CHECK(c.env && c.env[0] && c.env[1] && !c.env[2]);
	if (c.env && c.env[0] && c.env[1])
		CHECK_STR(c.env[1], "A=b c");
	CHECK(c.cmd && c.cmd[2] && !c.cmd[3]);
	if (c.cmd && c.cmd[2])
		CHECK_STR(c.cmd[2], "echo hi");
	CHECK(c.entrypoint == NULL);
	CHECK_STR(c.working_dir, "/srv");
	CHECK_STR(c.user, "1000:1000");
	CHECK_STR(c.stop_signal, "SIGTERM");
	CHECK_STR(c.labels_json,
		  "{\"org.example\":\"yes\",\"b\":\"\\\"q\\\"\"}");
	image_config_free(&c);
}

static void test_config_minimal(void)
{
	static const char text[] =
	    "{\"architecture\":\"amd64\",\"os\":\"linux\","
	    "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}";
	static const char empty_cmd[] =
	    "{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]},"
	    "\"config\":{\"Cmd\":[],\"Env\":null,\"Labels\":{}}}";
	struct image_config c;

	CHECK(image_config_parse(&c, text, strlen(text)) == 0);
	CHECK(c.env && c.env[0] == NULL);
	CHECK(c.cmd == NULL && c.entrypoint == NULL);
	CHECK(c.labels_json == NULL && c.variant == NULL);
	CHECK(c.diff_id_count == 0);
	image_config_free(&c);

	CHECK(image_config_parse(&c, empty_cmd, strlen(empty_cmd)) == 0);
	CHECK(c.cmd && c.cmd[0] == NULL);
	CHECK(c.env && c.env[0] == NULL);
	CHECK_STR(c.labels_json, "{}");
	CHECK(c.architecture == NULL);
	image_config_free(&c);
}

static void test_hostile_configs_fail(void)
{
	static const struct hostile cases[] = {
	    {"{}", OCICACHE_EFORMAT, "rootfs"},
	    {"{\"rootfs\":{\"type\":\"layerz\",\"diff_ids\":[]}}",
	     OCICACHE_EFORMAT, "rootfs.type"},
	    {"{\"rootfs\":{\"type\":\"layers\"}}", OCICACHE_EFORMAT,
	     "diff_ids"},
	    {"{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:1\"]"
	     "}}",
	     OCICACHE_EFORMAT, "diff_ids[0]"},
	    {"{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" DA "\",7]}}",
	     OCICACHE_EFORMAT, "diff_ids[1]"},
	    {"{\"architecture\":5,\"rootfs\":{\"type\":\"layers\","
	     "\"diff_ids\":[]}}",
	     OCICACHE_EFORMAT, "\"architecture\" is not a string"},
	    {"{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]},"
	     "\"config\":{\"Env\":\"PATH=/\"}}",
	     OCICACHE_EFORMAT, "config.Env is not an array"},
	    {"{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]},"
	     "\"config\":{\"Cmd\":[\"a\",1]}}",
	     OCICACHE_EFORMAT, "config.Cmd[1] is not a string"},
	    {"{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]},"
	     "\"config\":{\"Labels\":{\"a\":1}}}",
	     OCICACHE_EFORMAT, "label 'a'"},
	    {"{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]},"
	     "\"config\":{\"Labels\":[]}}",
	     OCICACHE_EFORMAT, "Labels is not an object"},
	    {"{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]},"
	     "\"config\":{\"WorkingDir\":{}}}",
	     OCICACHE_EFORMAT, "\"WorkingDir\" is not a string"},
	    {"{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]},"
	     "\"config\":7}",
	     OCICACHE_EFORMAT, "config is not an object"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct image_config c;
		int rc = image_config_parse(&c, cases[i].json,
					    strlen(cases[i].json));

		if (rc != cases[i].code)
			fprintf(stderr, "  case %zu: rc %d\n", i, rc);
		CHECK(rc == cases[i].code);
		CHECK(message_has(cases[i].in_message));
		CHECK(c.env == NULL && c.diff_ids == NULL);
	}
}

static void test_platform_host_and_parse(void)
{
	const char *os, *arch, *variant;
	char *o, *a, *v;

	platform_host(&os, &arch, &variant);
	CHECK_STR(os, "linux");
#if defined(__x86_64__)
	CHECK_STR(arch, "amd64");
	CHECK(variant == NULL);
#elif defined(__aarch64__)
	CHECK_STR(arch, "arm64");
	CHECK_STR(variant, "v8");
#endif

	CHECK(platform_parse(&o, &a, &v, "linux/arm64/v8") == 0);
	CHECK_STR(o, "linux");
	CHECK_STR(a, "arm64");
	CHECK_STR(v, "v8");
	free(o);
	free(a);
	free(v);
	CHECK(platform_parse(&o, &a, &v, "linux/amd64") == 0);
	CHECK_STR(v, NULL);
	free(o);
	free(a);
	CHECK(platform_parse(&o, &a, &v, "linux") == OCICACHE_EINVAL);
	CHECK(platform_parse(&o, &a, &v, "linux//v8") == OCICACHE_EINVAL);
	CHECK(platform_parse(&o, &a, &v, "a/b/c/d") == OCICACHE_EINVAL);
	CHECK(platform_parse(&o, &a, &v, "linux/amd64/") == OCICACHE_EINVAL);
	CHECK(message_has("linux/amd64/"));
	CHECK(o == NULL && a == NULL && v == NULL);
}

int main(void)
{
	RUN(test_umoci_manifest_without_media_type_parses);
	RUN(test_docker_manifest_parses_with_large_layer);
	RUN(test_kind_from_header_then_media_type_then_shape);
	RUN(test_hostile_manifests_fail_cleanly);
	RUN(test_huge_counts_are_refused);
	RUN(test_index_and_list_parse);
	RUN(test_hostile_index_entries_fail);
	RUN(test_index_choose_platform);
	RUN(test_blob_compression_of_layer_types);
	RUN(test_config_fields);
	RUN(test_config_minimal);
	RUN(test_hostile_configs_fail);
	RUN(test_platform_host_and_parse);
	return check_done();
}
