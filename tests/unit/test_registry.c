/*
 * The registry client against a real registry and against a scripted
 * server in this process.
 *
 * The real-registry tests need, for a plain-http registry holding a
 * single-platform image:
 *   OCICACHE_TEST_REGISTRY=127.0.0.1:PORT  OCICACHE_TEST_REPO=repo:tag
 * and, for one that wants basic authentication (htpasswd):
 *   OCICACHE_TEST_AUTH_REGISTRY=127.0.0.1:PORT  OCICACHE_TEST_AUTH_REPO
 *   (default: OCICACHE_TEST_REPO)  OCICACHE_TEST_AUTH_USERNAME
 *   OCICACHE_TEST_AUTH_PASSWORD
 * OCICACHE_TEST_CA_FILE=PEM makes the first registry https with that CA.
 * Without them those tests print SKIP lines. The scripted server covers
 * what a well-behaved registry never does: 5xx and 429 answers, cut
 * connections, ignored ranges, corrupt or over-long blobs, token auth.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/digest.h"
#include "common/error.h"
#include "pull/manifest.h"
#include "pull/registry.h"
#include "tests/unit/check.h"

static char log_text[65536];
static size_t log_len;

static void on_log(int level, const char *message, void *userdata)
{
	size_t n = strlen(message);

	(void)level;
	(void)userdata;
	if (log_len + n + 2 < sizeof(log_text)) {
		memcpy(log_text + log_len, message, n);
		log_len += n;
		log_text[log_len++] = '\n';
		log_text[log_len] = '\0';
	}
}

static void log_clear(void)
{
	log_len = 0;
	log_text[0] = '\0';
}

/* Success, or say why not. */
static bool ok(int rc)
{
	if (rc)
		fprintf(stderr, "  rc %d: %s\n", rc, oc_err_message());
	return rc == 0;
}

static bool message_has(const char *piece)
{
	if (strstr(oc_err_message(), piece))
		return true;
	fprintf(stderr, "  message '%s' lacks '%s'\n", oc_err_message(), piece);
	return false;
}

/* A mkstemp() template: `prefix` and six 'X'. */
static char *temp_template(char *out, const char *prefix)
{
	size_t n = strlen(prefix);

	memcpy(out, prefix, n);
	memset(out + n, 'X', 6);
	out[n + 6] = '\0';
	return out;
}

static int temp_file(char path[64])
{
	return mkstemp(temp_template(path, "/tmp/ocicache-test-blob-"));
}

static int64_t file_size(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 ? (int64_t)st.st_size : -1;
}

/* ---- against a real registry ---- */

static const char *env_registry, *env_repo;
static char repo_name[256], repo_tag[128];

static void real_options(struct registry_options *opts)
{
	registry_options_init(opts);
	opts->ca_file = getenv("OCICACHE_TEST_CA_FILE");
	opts->plain_http = opts->ca_file == NULL;
	opts->retries = 1;
}

static struct registry *real_registry(void)
{
	struct registry_options opts;
	struct registry *r = NULL;

	real_options(&opts);
	if (registry_new(&r, env_registry, repo_name, &opts) != 0)
		fprintf(stderr, "  registry_new: %s\n", oc_err_message());
	return r;
}

/* The image manifest for the tag, and its layers' and config's data. */
struct image_fixture {
	struct manifest manifest;
	char digest[DIGEST_STR_LEN];
	struct buf body;
};

static bool load_image(struct image_fixture *img, struct registry *r)
{
	char *content_type = NULL;
	int rc;

	memset(img, 0, sizeof(*img));
	rc = registry_get_manifest(&img->body, &content_type, img->digest, r,
				   repo_tag);
	if (rc) {
		fprintf(stderr, "  manifest: %s\n", oc_err_message());
		return false;
	}
	rc = manifest_kind(content_type, img->body.data, img->body.len);
	free(content_type);
	if (rc != MANIFEST_IMAGE) {
		fprintf(stderr, "  OCICACHE_TEST_REPO must be one image\n");
		return false;
	}
	if (manifest_parse(&img->manifest, img->body.data, img->body.len) ||
	    img->manifest.layer_count == 0) {
		fprintf(stderr, "  manifest: no layers: %s\n",
			oc_err_message());
		return false;
	}
	return true;
}

static void image_free(struct image_fixture *img)
{
	manifest_free(&img->manifest);
	buf_free(&img->body);
}

static void test_real_manifest_by_tag_and_by_digest(void)
{
	struct registry *r = real_registry();
	struct image_fixture img;
	struct buf again = BUF_INIT;
	char *content_type = NULL;
	char digest[DIGEST_STR_LEN];
	char computed[DIGEST_STR_LEN];

	CHECK(r != NULL);
	if (!r || !load_image(&img, r)) {
		CHECK(0);
		registry_free(r);
		return;
	}
	digest_buffer(computed, img.body.data, img.body.len);
	CHECK_STR(img.digest, computed);

	CHECK(registry_get_manifest(&again, &content_type, digest, r,
				    img.digest) == 0);
	CHECK_STR(digest, img.digest);
	CHECK(again.len == img.body.len &&
	      memcmp(again.data, img.body.data, again.len) == 0);
	CHECK(content_type && strstr(content_type, "manifest"));
	free(content_type);
	buf_free(&again);
	image_free(&img);
	registry_free(r);
}

static void test_real_missing_manifest_is_not_found(void)
{
	static const char missing[] = "sha256:00000000000000000000000000000000"
				      "00000000000000000000000000000000";
	struct registry *r = real_registry();
	struct buf body = BUF_INIT;
	char *content_type = NULL;
	char digest[DIGEST_STR_LEN];
	struct registry_options opts;

	CHECK(r != NULL);
	if (!r)
		return;
	CHECK(registry_get_manifest(&body, &content_type, digest, r,
				    "no-such-tag") == OCICACHE_ENOTFOUND);
	CHECK(message_has("no-such-tag"));
	CHECK(message_has("/v2/"));
	CHECK(registry_get_manifest(&body, &content_type, digest, r, missing) ==
	      OCICACHE_ENOTFOUND);
	CHECK(message_has(missing));
	CHECK(registry_get_manifest(&body, &content_type, digest, r,
				    "bad/tag") == OCICACHE_EINVAL);
	CHECK(content_type == NULL);
	buf_free(&body);
	registry_free(r);

	/* A repository that does not exist at all. */
	real_options(&opts);
	CHECK(registry_new(&r, env_registry, "no/such/repo", &opts) == 0);
	CHECK(registry_get_manifest(&body, &content_type, digest, r,
				    "latest") == OCICACHE_ENOTFOUND);
	buf_free(&body);
	registry_free(r);
}

static void test_real_config_blob(void)
{
	struct registry *r = real_registry();
	struct image_fixture img;
	struct image_config config;
	struct buf body = BUF_INIT;
	const struct descriptor *c;

	if (!r || !load_image(&img, r)) {
		CHECK(0);
		registry_free(r);
		return;
	}
	c = &img.manifest.config;
	CHECK(registry_get_blob_buffer(&body, r, c->digest, c->size) == 0);
	CHECK(body.len == (size_t)c->size);
	CHECK(image_config_parse(&config, body.data, body.len) == 0);
	CHECK(config.diff_id_count == img.manifest.layer_count);
	image_config_free(&config);

	/* A size that disagrees with the blob is a verification failure. */
	CHECK(registry_get_blob_buffer(&body, r, c->digest, c->size - 1) ==
	      OCICACHE_EDIGEST);
	CHECK(message_has(c->digest));
	CHECK(registry_get_blob_buffer(&body, r, c->digest, c->size + 1) ==
	      OCICACHE_EDIGEST);
	CHECK(message_has("size mismatch"));
	buf_free(&body);
	image_free(&img);
	registry_free(r);
}

static void test_real_blob_download_verify_and_resume(void)
{
	struct registry *r = real_registry();
	const struct descriptor *layer;
	struct image_fixture img;
	char path[64], got[DIGEST_STR_LEN], note[128];
	char *data;
	int fd;

	if (!r || !load_image(&img, r)) {
		CHECK(0);
		registry_free(r);
		return;
	}
	layer = &img.manifest.layers[0];
	fd = temp_file(path);
	CHECK(fd >= 0);

	/* Whole download. */
	CHECK(registry_download_blob(r, layer->digest, layer->size, fd, path) ==
	      0);
	CHECK(file_size(fd) == layer->size);
	CHECK(digest_file(got, path) == 0);
	CHECK_STR(got, layer->digest);

	/* Keep the first half and resume: only the rest is asked for. */
	data = malloc((size_t)layer->size + 1);
	CHECK(data && pread(fd, data, (size_t)layer->size, 0) == layer->size);
	CHECK(ftruncate(fd, layer->size / 2) == 0);
	log_clear();
	CHECK(registry_download_blob(r, layer->digest, layer->size, fd, path) ==
	      0);
	snprintf(note, sizeof(note), "resuming at byte %lld",
		 (long long)(layer->size / 2));
	CHECK(strstr(log_text, note) != NULL);
	CHECK(digest_file(got, path) == 0);
	CHECK_STR(got, layer->digest);

	/* A corrupt prefix is found, and the file emptied for a clean try. */
	CHECK(ftruncate(fd, 0) == 0);
	data[0] ^= 1;
	CHECK(pwrite(fd, data, (size_t)layer->size / 2, 0) == layer->size / 2);
	CHECK(registry_download_blob(r, layer->digest, layer->size, fd, path) ==
	      OCICACHE_EDIGEST);
	CHECK(message_has("digest mismatch, got sha256:"));
	CHECK(message_has(layer->digest));
	CHECK(file_size(fd) == 0);
	CHECK(registry_download_blob(r, layer->digest, layer->size, fd, path) ==
	      0);
	CHECK(digest_file(got, path) == 0);
	CHECK_STR(got, layer->digest);

	/* A whole file of the right size but wrong bytes: no request. */
	CHECK(pwrite(fd, data, (size_t)layer->size, 0) == layer->size);
	CHECK(registry_download_blob(r, layer->digest, layer->size, fd, path) ==
	      OCICACHE_EDIGEST);
	CHECK(file_size(fd) == 0);

	/* The blob is bigger than we were told: stopped, file emptied. */
	CHECK(registry_download_blob(r, layer->digest, layer->size - 10, fd,
				     path) == OCICACHE_EDIGEST);
	CHECK(message_has("more than"));
	CHECK(file_size(fd) == 0);

	/* A blob shorter than we were told: refused, file emptied. */
	CHECK(registry_download_blob(r, img.manifest.config.digest, layer->size,
				     fd, path) == OCICACHE_EDIGEST);
	CHECK(file_size(fd) == 0);

	free(data);
	close(fd);
	unlink(path);
	image_free(&img);
	registry_free(r);
}

struct parallel_job {
	const struct descriptor *layer;
	int rc;
	char got[DIGEST_STR_LEN];
};

static void *parallel_download(void *arg)
{
	struct parallel_job *job = arg;
	struct registry *r = real_registry();
	char path[64];
	int fd = temp_file(path);

	job->rc = r ? registry_download_blob(r, job->layer->digest,
					     job->layer->size, fd, path)
		    : -1;
	if (!job->rc)
		digest_file(job->got, path);
	close(fd);
	unlink(path);
	registry_free(r);
	return NULL;
}

static void test_real_parallel_downloads_in_threads(void)
{
	struct parallel_job jobs[4];
	pthread_t threads[4];
	struct image_fixture img;
	struct registry *r = real_registry();

	if (!r || !load_image(&img, r)) {
		CHECK(0);
		registry_free(r);
		return;
	}
	for (int i = 0; i < 4; i++) {
		memset(&jobs[i], 0, sizeof(jobs[i]));
		jobs[i].layer =
		    &img.manifest.layers[i % img.manifest.layer_count];
		CHECK(pthread_create(&threads[i], NULL, parallel_download,
				     &jobs[i]) == 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(threads[i], NULL);
		CHECK(jobs[i].rc == 0);
		CHECK_STR(jobs[i].got, jobs[i].layer->digest);
	}
	image_free(&img);
	registry_free(r);
}

static void test_real_missing_blob_is_not_found(void)
{
	static const char missing[] = "sha256:11111111111111111111111111111111"
				      "11111111111111111111111111111111";
	struct registry *r = real_registry();
	char path[64];
	int fd = temp_file(path);

	CHECK(r != NULL && fd >= 0);
	if (!r)
		return;
	CHECK(registry_download_blob(r, missing, 10, fd, path) ==
	      OCICACHE_ENOTFOUND);
	CHECK(message_has(missing));
	CHECK(message_has("/v2/"));
	close(fd);
	unlink(path);
	registry_free(r);
}

static void test_real_basic_auth(void)
{
	const char *host = getenv("OCICACHE_TEST_AUTH_REGISTRY");
	const char *user = getenv("OCICACHE_TEST_AUTH_USERNAME");
	const char *pass = getenv("OCICACHE_TEST_AUTH_PASSWORD");
	const char *repo = getenv("OCICACHE_TEST_AUTH_REPO");
	char name[256], *colon, tag[128];
	struct registry_options opts;
	struct buf body = BUF_INIT;
	char *content_type = NULL;
	char digest[DIGEST_STR_LEN];
	struct registry *r;
	struct manifest m;

	if (!repo)
		repo = env_repo;
	snprintf(name, sizeof(name), "%s", repo);
	colon = strrchr(name, ':');
	snprintf(tag, sizeof(tag), "%s", colon ? colon + 1 : "latest");
	if (colon)
		*colon = '\0';

	/* No credentials at all: a clear refusal naming the URL. */
	setenv("OCICACHE_CONFIG", "/nonexistent/ocicache.json", 1);
	setenv("DOCKER_CONFIG", "/nonexistent", 1);
	registry_options_init(&opts);
	opts.plain_http = true;
	CHECK(registry_new(&r, host, name, &opts) == 0);
	CHECK(registry_get_manifest(&body, &content_type, digest, r, tag) ==
	      OCICACHE_EREGISTRY);
	CHECK(message_has("authentication required"));
	CHECK(message_has(host));
	registry_free(r);

	/* Wrong password. */
	opts.username = user;
	opts.password = "wrong-password";
	CHECK(registry_new(&r, host, name, &opts) == 0);
	CHECK(registry_get_manifest(&body, &content_type, digest, r, tag) ==
	      OCICACHE_EREGISTRY);
	CHECK(message_has("authentication failed"));
	CHECK(strstr(oc_err_message(), "wrong-password") == NULL);
	registry_free(r);

	/* Right password, then a blob through the same client. */
	log_clear();
	opts.password = pass;
	CHECK(registry_new(&r, host, name, &opts) == 0);
	CHECK(ok(registry_get_manifest(&body, &content_type, digest, r, tag)));
	CHECK(manifest_parse(&m, body.data, body.len) == 0);
	CHECK(registry_get_blob_buffer(&body, r, m.config.digest,
				       m.config.size) == 0);
	manifest_free(&m);
	CHECK(strstr(log_text, pass) == NULL);
	registry_free(r);
	free(content_type);
	buf_free(&body);
	unsetenv("OCICACHE_CONFIG");
	unsetenv("DOCKER_CONFIG");
}

static void test_credentials_from_docker_config(void)
{
	const char *host = getenv("OCICACHE_TEST_AUTH_REGISTRY");
	const char *user = getenv("OCICACHE_TEST_AUTH_USERNAME");
	const char *pass = getenv("OCICACHE_TEST_AUTH_PASSWORD");
	const char *repo = getenv("OCICACHE_TEST_AUTH_REPO");
	char dir[64];
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				  "abcdefghijklmnopqrstuvwxyz0123456789+/";
	char path[128], name[256], pair[256], encoded[400], *colon;
	size_t n, o = 0;
	struct buf json = BUF_INIT;
	struct buf body = BUF_INIT;
	char *content_type = NULL, digest[DIGEST_STR_LEN];
	struct registry_options opts;
	struct registry *r;
	FILE *f;

	if (!repo)
		repo = env_repo;
	snprintf(name, sizeof(name), "%s", repo);
	colon = strrchr(name, ':');
	if (colon)
		*colon = '\0';
	CHECK(mkdtemp(temp_template(dir, "/tmp/ocicache-test-docker-")));
	snprintf(path, sizeof(path), "%s/config.json", dir);
	snprintf(pair, sizeof(pair), "%s:%s", user, pass);
	n = strlen(pair);

	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned char)pair[i] << 16;

		if (i + 1 < n)
			v |= (unsigned char)pair[i + 1] << 8;
		if (i + 2 < n)
			v |= (unsigned char)pair[i + 2];
		encoded[o++] = b64[v >> 18 & 63];
		encoded[o++] = b64[v >> 12 & 63];
		encoded[o++] = i + 1 < n ? b64[v >> 6 & 63] : '=';
		encoded[o++] = i + 2 < n ? b64[v & 63] : '=';
	}
	encoded[o] = '\0';
	buf_printf(&json,
		   "{\"auths\": {\"http://%s/v2/\": {\"auth\": \"%s\"}}}", host,
		   encoded);
	f = fopen(path, "w");
	CHECK(f != NULL);
	if (f) {
		fputs(json.data, f);
		fclose(f);
	}
	setenv("DOCKER_CONFIG", dir, 1);
	setenv("OCICACHE_CONFIG", "/nonexistent/ocicache.json", 1);

	registry_options_init(&opts);
	opts.plain_http = true;
	CHECK(registry_new(&r, host, name, &opts) == 0);
	CHECK(ok(registry_get_manifest(&body, &content_type, digest, r,
				       colon ? colon + 1 : "latest")));
	free(content_type);
	content_type = NULL;
	registry_free(r);

	/* ocicache's own config wins over Docker's. */
	snprintf(path, sizeof(path), "%s/ocicache.json", dir);
	f = fopen(path, "w");
	if (f) {
		fprintf(f,
			"{\"registries\": {\"%s\": {\"username\": \"%s\", "
			"\"password\": \"nope\"}}}",
			host, user);
		fclose(f);
	}
	setenv("OCICACHE_CONFIG", path, 1);
	CHECK(registry_new(&r, host, name, &opts) == 0);
	CHECK(registry_get_manifest(&body, &content_type, digest, r,
				    colon ? colon + 1 : "latest") ==
	      OCICACHE_EREGISTRY);
	registry_free(r);

	/* A broken ocicache config is an error naming the file. */
	f = fopen(path, "w");
	if (f) {
		fputs("{not json", f);
		fclose(f);
	}
	CHECK(registry_new(&r, host, name, &opts) == OCICACHE_EINVAL);
	CHECK(message_has(path));

	unlink(path);
	snprintf(path, sizeof(path), "%s/config.json", dir);
	unlink(path);
	rmdir(dir);
	unsetenv("OCICACHE_CONFIG");
	unsetenv("DOCKER_CONFIG");
	free(content_type);
	buf_free(&body);
	buf_free(&json);
}

/* ---- against a scripted server ---- */

enum script {
	SCRIPT_BUSY_THEN_OK,   /* 503, 503, then the blob */
	SCRIPT_RATE_LIMITED,   /* 429 Retry-After: 1, then the blob */
	SCRIPT_ALWAYS_500,     /* 500 forever */
	SCRIPT_CORRUPT,	       /* the right length, one byte flipped */
	SCRIPT_TOO_LONG,       /* twice the blob */
	SCRIPT_CUT_THEN_RANGE, /* half then hang up; ranges answered */
	SCRIPT_IGNORE_RANGE,   /* 200 with the whole blob to a Range */
	SCRIPT_BEARER,	       /* token auth on /token */
	SCRIPT_BASIC,	       /* Basic challenge */
	SCRIPT_HUGE_MANIFEST,  /* a manifest larger than the cap */
};

struct fake {
	int listen_fd;
	int port;
	bool ipv6;
	enum script script;
	pthread_t thread;
	int requests;
	int token_requests;
	char last_range[64];
	char token_query[512];
	bool token_had_basic;
	bool bearer_seen;
	bool stop;
};

static const char blob[] = "hello, this is a small blob for the fake "
			   "registry, long enough to be cut in half.\n";
static char blob_digest[DIGEST_STR_LEN];

static void send_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n <= 0)
			return;
		p += n;
		len -= (size_t)n;
	}
}

static void respond(int fd, const char *status, const char *extra,
		    const void *body, size_t len, size_t declared)
{
	char head[1024];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %s\r\nContent-Length: %zu\r\n%s"
			 "Connection: close\r\n\r\n",
			 status, declared, extra ? extra : "");

	send_all(fd, head, (size_t)n);
	if (len)
		send_all(fd, body, len);
}

static bool header_value(const char *request, const char *name, char *out,
			 size_t size)
{
	const char *p = strcasestr(request, name);
	size_t n;

	if (!p)
		return false;
	p += strlen(name);
	while (*p == ' ')
		p++;
	n = strcspn(p, "\r\n");
	if (n >= size)
		n = size - 1;
	memcpy(out, p, n);
	out[n] = '\0';
	return true;
}

static void serve_blob(struct fake *f, int fd, const char *request)
{
	char range[64] = "";
	long from = 0;

	if (header_value(request, "\r\nRange:", range, sizeof(range))) {
		snprintf(f->last_range, sizeof(f->last_range), "%s", range);
		from = strtol(range + strlen("bytes="), NULL, 10);
	}
	if (from > 0 && f->script != SCRIPT_IGNORE_RANGE) {
		char extra[128];
		size_t len = sizeof(blob) - 1;

		snprintf(extra, sizeof(extra),
			 "Content-Range: bytes %ld-%zu/%zu\r\n", from, len - 1,
			 len);
		respond(fd, "206 Partial Content", extra, blob + from,
			len - (size_t)from, len - (size_t)from);
		return;
	}
	respond(fd, "200 OK", NULL, blob, sizeof(blob) - 1, sizeof(blob) - 1);
}

static void handle(struct fake *f, int fd, const char *request)
{
	static char flipped[sizeof(blob)];
	char auth[256] = "";
	int n = ++f->requests;

	header_value(request, "\r\nAuthorization:", auth, sizeof(auth));
	switch (f->script) {
	case SCRIPT_BUSY_THEN_OK:
		if (n <= 2)
			respond(fd, "503 Service Unavailable", NULL, NULL, 0,
				0);
		else
			serve_blob(f, fd, request);
		return;
	case SCRIPT_RATE_LIMITED:
		if (n == 1)
			respond(fd, "429 Too Many Requests",
				"Retry-After: 1\r\n", NULL, 0, 0);
		else
			serve_blob(f, fd, request);
		return;
	case SCRIPT_ALWAYS_500:
		respond(fd, "500 Internal Server Error", NULL, NULL, 0, 0);
		return;
	case SCRIPT_CORRUPT:
		memcpy(flipped, blob, sizeof(blob));
		flipped[5] ^= 0x20;
		respond(fd, "200 OK", NULL, flipped, sizeof(blob) - 1,
			sizeof(blob) - 1);
		return;
	case SCRIPT_TOO_LONG: {
		char twice[2 * sizeof(blob)];

		memcpy(twice, blob, sizeof(blob) - 1);
		memcpy(twice + sizeof(blob) - 1, blob, sizeof(blob) - 1);
		respond(fd, "200 OK", NULL, twice, 2 * (sizeof(blob) - 1),
			2 * (sizeof(blob) - 1));
		return;
	}
	case SCRIPT_CUT_THEN_RANGE:
		if (n == 1)
			respond(fd, "200 OK", NULL, blob, sizeof(blob) / 2,
				sizeof(blob) - 1);
		else
			serve_blob(f, fd, request);
		return;
	case SCRIPT_IGNORE_RANGE:
		serve_blob(f, fd, request);
		return;
	case SCRIPT_BEARER:
		if (strncmp(request, "GET /token?", 11) == 0) {
			f->token_requests++;
			sscanf(request + 4, "%511s", f->token_query);
			f->token_had_basic = strncmp(auth, "Basic ", 6) == 0;
			respond(fd, "200 OK", NULL,
				"{\"access_token\":\"tok-123\"}", 26, 26);
		} else if (strcmp(auth, "Bearer tok-123") == 0) {
			f->bearer_seen = true;
			serve_blob(f, fd, request);
		} else {
			char extra[512];

			snprintf(extra, sizeof(extra),
				 "WWW-Authenticate: Bearer realm=\"http://%s"
				 "%s%s:%d/token\",service=\"fake \\\"svc\\\"\","
				 "scope=\"repository:r/x:pull\"\r\n",
				 f->ipv6 ? "[" : "",
				 f->ipv6 ? "::1" : "127.0.0.1",
				 f->ipv6 ? "]" : "", f->port);
			respond(fd, "401 Unauthorized", extra, NULL, 0, 0);
		}
		return;
	case SCRIPT_BASIC:
		respond(fd, "401 Unauthorized",
			"WWW-Authenticate: Basic realm=\"fake\"\r\n",
			"{\"errors\":[{\"code\":\"UNAUTHORIZED\"}]}", 36, 36);
		return;
	case SCRIPT_HUGE_MANIFEST: {
		static char chunk[65536];
		char head[256];
		int len = snprintf(head, sizeof(head),
				   "HTTP/1.1 200 OK\r\nContent-Length: %u\r\n"
				   "Connection: close\r\n\r\n",
				   8u << 20);

		memset(chunk, ' ', sizeof(chunk));
		send_all(fd, head, (size_t)len);
		for (int i = 0; i < 128 && !f->stop; i++)
			send_all(fd, chunk, sizeof(chunk));
		return;
	}
	}
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;

	for (;;) {
		char request[8192];
		size_t len = 0;
		int fd = accept(f->listen_fd, NULL, NULL);

		if (fd < 0 || f->stop) {
			if (fd >= 0)
				close(fd);
			return NULL;
		}
		while (len + 1 < sizeof(request)) {
			ssize_t n = recv(fd, request + len,
					 sizeof(request) - 1 - len, 0);

			if (n <= 0)
				break;
			len += (size_t)n;
			request[len] = '\0';
			if (strstr(request, "\r\n\r\n"))
				break;
		}
		request[len] = '\0';
		handle(f, fd, request);
		shutdown(fd, SHUT_WR);
		close(fd);
	}
}

static bool fake_start(struct fake *f, enum script script, bool ipv6)
{
	struct sockaddr_storage ss;
	socklen_t sl;

	memset(f, 0, sizeof(*f));
	f->script = script;
	f->ipv6 = ipv6;
	memset(&ss, 0, sizeof(ss));
	if (ipv6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_loopback;
		sl = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sl = sizeof(*a);
	}
	f->listen_fd = socket(ss.ss_family, SOCK_STREAM, 0);
	if (f->listen_fd < 0 || bind(f->listen_fd, (void *)&ss, sl) != 0 ||
	    listen(f->listen_fd, 16) != 0 ||
	    getsockname(f->listen_fd, (void *)&ss, &sl) != 0) {
		if (f->listen_fd >= 0)
			close(f->listen_fd);
		return false;
	}
	f->port = ntohs(ipv6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
			     : ((struct sockaddr_in *)&ss)->sin_port);
	return pthread_create(&f->thread, NULL, fake_main, f) == 0;
}

static void fake_stop(struct fake *f)
{
	int fd;
	struct sockaddr_in a = {.sin_family = AF_INET};
	struct sockaddr_in6 a6 = {.sin6_family = AF_INET6};

	f->stop = true;
	/* Wake the accept() with one last connection. */
	fd = socket(f->ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
	if (f->ipv6) {
		a6.sin6_addr = in6addr_loopback;
		a6.sin6_port = htons((uint16_t)f->port);
		connect(fd, (void *)&a6, sizeof(a6));
	} else {
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		a.sin_port = htons((uint16_t)f->port);
		connect(fd, (void *)&a, sizeof(a));
	}
	close(fd);
	pthread_join(f->thread, NULL);
	close(f->listen_fd);
}

static struct registry *fake_registry(struct fake *f, int retries,
				      const char *user, const char *pass)
{
	struct registry_options opts;
	struct registry *r = NULL;
	char host[64];

	snprintf(host, sizeof(host), f->ipv6 ? "[::1]:%d" : "127.0.0.1:%d",
		 f->port);
	registry_options_init(&opts);
	opts.plain_http = true;
	opts.retries = retries;
	opts.timeout_secs = 5;
	opts.username = user;
	opts.password = pass;
	if (registry_new(&r, host, "r/x", &opts))
		fprintf(stderr, "  registry_new: %s\n", oc_err_message());
	return r;
}

/* Download the fake blob into a new file; the file's size after. */
static int fake_download(struct registry *r, const char *prefix,
			 int64_t *size_after, char got[DIGEST_STR_LEN])
{
	char path[64];
	int fd = temp_file(path);
	int rc;

	/* The cache opens its .part files for appending; so do we here. */
	close(fd);
	fd = open(path, O_RDWR | O_APPEND);
	if (prefix)
		CHECK(write(fd, prefix, strlen(prefix)) ==
		      (ssize_t)strlen(prefix));
	rc = registry_download_blob(r, blob_digest, sizeof(blob) - 1, fd, path);
	*size_after = file_size(fd);
	if (got)
		digest_file(got, path);
	close(fd);
	unlink(path);
	return rc;
}

static void test_fake_retries_busy_registry(void)
{
	struct fake f;
	struct registry *r;
	int64_t size;
	char got[DIGEST_STR_LEN];

	CHECK(fake_start(&f, SCRIPT_BUSY_THEN_OK, false));
	r = fake_registry(&f, 3, NULL, NULL);
	CHECK(fake_download(r, NULL, &size, got) == 0);
	CHECK(f.requests == 3);
	CHECK_STR(got, blob_digest);
	registry_free(r);
	fake_stop(&f);

	/* Two tries in all are not enough for two 503s. */
	CHECK(fake_start(&f, SCRIPT_BUSY_THEN_OK, false));
	r = fake_registry(&f, 1, NULL, NULL);
	CHECK(fake_download(r, NULL, &size, NULL) == OCICACHE_EREGISTRY);
	CHECK(message_has("HTTP 503 after 2 tries"));
	CHECK(f.requests == 2);
	registry_free(r);
	fake_stop(&f);
}

static void test_fake_honours_retry_after(void)
{
	struct timespec t0, t1;
	struct fake f;
	struct registry *r;
	int64_t size;
	double secs;

	CHECK(fake_start(&f, SCRIPT_RATE_LIMITED, false));
	r = fake_registry(&f, 3, NULL, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK(fake_download(r, NULL, &size, NULL) == 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) +
	       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	/* Only a lower bound: the client must have waited as told. How much
	 * longer a loaded machine takes says nothing about the client. */
	CHECK(secs >= 0.95);
	CHECK(f.requests == 2);
	registry_free(r);
	fake_stop(&f);
}

static void test_fake_server_errors_give_up(void)
{
	struct fake f;
	struct registry *r;
	int64_t size;

	CHECK(fake_start(&f, SCRIPT_ALWAYS_500, false));
	r = fake_registry(&f, 2, NULL, NULL);
	CHECK(fake_download(r, NULL, &size, NULL) == OCICACHE_EREGISTRY);
	CHECK(f.requests == 3);
	CHECK(message_has("HTTP 500"));
	registry_free(r);
	fake_stop(&f);
}

static void test_fake_corrupt_blob_is_refused_and_emptied(void)
{
	struct fake f;
	struct registry *r;
	int64_t size = -1;
	char want[120];

	CHECK(fake_start(&f, SCRIPT_CORRUPT, false));
	r = fake_registry(&f, 0, NULL, NULL);
	CHECK(fake_download(r, NULL, &size, NULL) == OCICACHE_EDIGEST);
	snprintf(want, sizeof(want),
		 "blob %s: digest mismatch, got sha256:", blob_digest);
	CHECK(message_has(want));
	CHECK(size == 0);
	registry_free(r);
	fake_stop(&f);

	CHECK(fake_start(&f, SCRIPT_TOO_LONG, false));
	r = fake_registry(&f, 0, NULL, NULL);
	CHECK(fake_download(r, NULL, &size, NULL) == OCICACHE_EDIGEST);
	CHECK(message_has("more than the"));
	CHECK(size == 0);
	registry_free(r);
	fake_stop(&f);
}

static void test_fake_cut_connection_resumes_with_range(void)
{
	struct fake f;
	struct registry *r;
	int64_t size;
	char got[DIGEST_STR_LEN], want[64];

	CHECK(fake_start(&f, SCRIPT_CUT_THEN_RANGE, false));
	r = fake_registry(&f, 2, NULL, NULL);
	CHECK(fake_download(r, NULL, &size, got) == 0);
	CHECK_STR(got, blob_digest);
	CHECK(size == (int64_t)sizeof(blob) - 1);
	snprintf(want, sizeof(want), "bytes=%zu-", sizeof(blob) / 2);
	CHECK_STR(f.last_range, want);
	registry_free(r);
	fake_stop(&f);
}

static void test_fake_ignored_range_restarts(void)
{
	struct fake f;
	struct registry *r;
	int64_t size;
	char got[DIGEST_STR_LEN];

	/* The prefix is wrong, but the registry sends everything anew. */
	CHECK(fake_start(&f, SCRIPT_IGNORE_RANGE, false));
	r = fake_registry(&f, 0, NULL, NULL);
	CHECK(fake_download(r, "garbage!", &size, got) == 0);
	CHECK_STR(f.last_range, "bytes=8-");
	CHECK_STR(got, blob_digest);
	CHECK(size == (int64_t)sizeof(blob) - 1);
	registry_free(r);
	fake_stop(&f);
}

static void bearer_flow(bool ipv6)
{
	struct fake f;
	struct registry *r;
	int64_t size;
	char got[DIGEST_STR_LEN];

	if (!fake_start(&f, SCRIPT_BEARER, ipv6)) {
		printf("SKIP bearer over %s: cannot listen\n",
		       ipv6 ? "[::1]" : "127.0.0.1");
		return;
	}
	log_clear();
	r = fake_registry(&f, 0, NULL, NULL);
	CHECK(fake_download(r, NULL, &size, got) == 0);
	CHECK_STR(got, blob_digest);
	CHECK(f.bearer_seen);
	CHECK(f.token_requests == 1);
	CHECK(!f.token_had_basic);
	CHECK(strstr(f.token_query, "service=fake%20%22svc%22") != NULL);
	CHECK(strstr(f.token_query, "scope=repository%3Ar%2Fx%3Apull"));
	/* The token is kept: a second blob needs no new one. */
	CHECK(fake_download(r, NULL, &size, got) == 0);
	CHECK(f.token_requests == 1);
	CHECK(strstr(log_text, "tok-123") == NULL);
	registry_free(r);

	/* With credentials, the token request carries them. */
	r = fake_registry(&f, 0, "bob", "hunter2");
	CHECK(fake_download(r, NULL, &size, got) == 0);
	CHECK(f.token_had_basic);
	CHECK(strstr(log_text, "hunter2") == NULL);
	registry_free(r);
	fake_stop(&f);
}

static void test_fake_bearer_token_flow(void)
{
	bearer_flow(false);
}

static void test_fake_ipv6_literal_host(void)
{
	bearer_flow(true);
}

static void test_fake_basic_without_credentials(void)
{
	struct fake f;
	struct registry *r;
	int64_t size;

	setenv("OCICACHE_CONFIG", "/nonexistent/ocicache.json", 1);
	setenv("DOCKER_CONFIG", "/nonexistent", 1);
	CHECK(fake_start(&f, SCRIPT_BASIC, false));
	r = fake_registry(&f, 0, NULL, NULL);
	CHECK(fake_download(r, NULL, &size, NULL) == OCICACHE_EREGISTRY);
	CHECK(message_has("authentication required for http://127.0.0.1:"));
	registry_free(r);

	r = fake_registry(&f, 0, "bob", "hunter2");
	CHECK(fake_download(r, NULL, &size, NULL) == OCICACHE_EREGISTRY);
	CHECK(message_has("authentication failed"));
	CHECK(strstr(oc_err_message(), "hunter2") == NULL);
	registry_free(r);
	fake_stop(&f);
	unsetenv("OCICACHE_CONFIG");
	unsetenv("DOCKER_CONFIG");
}

static void test_fake_huge_manifest_is_cut_off(void)
{
	struct fake f;
	struct registry *r;
	struct buf body = BUF_INIT;
	char *content_type = NULL, digest[DIGEST_STR_LEN];

	CHECK(fake_start(&f, SCRIPT_HUGE_MANIFEST, false));
	r = fake_registry(&f, 0, NULL, NULL);
	CHECK(registry_get_manifest(&body, &content_type, digest, r,
				    "latest") == OCICACHE_EFORMAT);
	CHECK(message_has("longer than"));
	CHECK(body.len <= MANIFEST_MAX_BYTES);
	registry_free(r);
	f.stop = true;
	fake_stop(&f);
	buf_free(&body);
}

static void test_connection_refused_is_network_error(void)
{
	struct registry_options opts;
	struct registry *r;
	struct buf body = BUF_INIT;
	char *content_type = NULL, digest[DIGEST_STR_LEN];
	struct fake f;
	char host[32];
	int port;

	/* A port that was just free. */
	CHECK(fake_start(&f, SCRIPT_ALWAYS_500, false));
	port = f.port;
	fake_stop(&f);

	snprintf(host, sizeof(host), "127.0.0.1:%d", port);
	registry_options_init(&opts);
	opts.plain_http = true;
	opts.retries = 1;
	CHECK(registry_new(&r, host, "r", &opts) == 0);
	CHECK(registry_get_manifest(&body, &content_type, digest, r, "t") ==
	      OCICACHE_ENETWORK);
	CHECK(message_has(host));
	registry_free(r);
	buf_free(&body);
}

static void test_bad_arguments(void)
{
	struct registry *r;

	CHECK(registry_new(&r, "host:5000", "Upper/Case", NULL) ==
	      OCICACHE_EINVAL);
	CHECK(registry_new(&r, "host/x", "r", NULL) == OCICACHE_EINVAL);
	CHECK(registry_new(&r, "host:5000", "r?x=1", NULL) == OCICACHE_EINVAL);
	CHECK(r == NULL);
	CHECK(registry_new(&r, "host:5000", "r", NULL) == 0);
	CHECK(registry_download_blob(r, "sha256:xyz", 1, -1, "x") ==
	      OCICACHE_EINVAL);
	registry_free(r);
}

int main(void)
{
	const char *colon;

	ocicache_set_log(on_log, OCICACHE_LOG_DEBUG, NULL);
	digest_buffer(blob_digest, blob, sizeof(blob) - 1);

	RUN(test_bad_arguments);
	RUN(test_fake_retries_busy_registry);
	RUN(test_fake_honours_retry_after);
	RUN(test_fake_server_errors_give_up);
	RUN(test_fake_corrupt_blob_is_refused_and_emptied);
	RUN(test_fake_cut_connection_resumes_with_range);
	RUN(test_fake_ignored_range_restarts);
	RUN(test_fake_bearer_token_flow);
	RUN(test_fake_ipv6_literal_host);
	RUN(test_fake_basic_without_credentials);
	RUN(test_fake_huge_manifest_is_cut_off);
	RUN(test_connection_refused_is_network_error);

	env_registry = getenv("OCICACHE_TEST_REGISTRY");
	env_repo = getenv("OCICACHE_TEST_REPO");
	if (!env_registry || !env_repo) {
		printf("SKIP real registry tests: set OCICACHE_TEST_REGISTRY "
		       "and OCICACHE_TEST_REPO\n");
		return check_done();
	}
	colon = strrchr(env_repo, ':');
	snprintf(repo_name, sizeof(repo_name), "%.*s",
		 colon ? (int)(colon - env_repo) : (int)strlen(env_repo),
		 env_repo);
	snprintf(repo_tag, sizeof(repo_tag), "%s",
		 colon ? colon + 1 : "latest");

	RUN(test_real_manifest_by_tag_and_by_digest);
	RUN(test_real_missing_manifest_is_not_found);
	RUN(test_real_config_blob);
	RUN(test_real_blob_download_verify_and_resume);
	RUN(test_real_missing_blob_is_not_found);
	RUN(test_real_parallel_downloads_in_threads);
	if (getenv("OCICACHE_TEST_AUTH_REGISTRY") &&
	    getenv("OCICACHE_TEST_AUTH_USERNAME") &&
	    getenv("OCICACHE_TEST_AUTH_PASSWORD")) {
		RUN(test_real_basic_auth);
		RUN(test_credentials_from_docker_config);
	} else {
		printf(
		    "SKIP basic auth tests: set OCICACHE_TEST_AUTH_REGISTRY, "
		    "OCICACHE_TEST_AUTH_USERNAME and "
		    "OCICACHE_TEST_AUTH_PASSWORD\n");
	}
	return check_done();
}
