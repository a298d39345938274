#include "pull/registry.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"
#include "common/file.h"
#include "pull/credentials.h"
#include "pull/manifest.h"

#define USER_AGENT "ocicache/" OCICACHE_VERSION
#define ACCEPT_MANIFESTS                                   \
	"Accept: " MEDIA_OCI_MANIFEST ", " MEDIA_OCI_INDEX \
	", " MEDIA_DOCKER_MANIFEST ", " MEDIA_DOCKER_LIST

/* Enough of an error body to quote the registry's reason. */
#define ERROR_BODY_MAX 4096
/* A token response is a few KiB; anything near this is not one. */
#define TOKEN_BODY_MAX (1u << 20)
/* Header values we keep (challenges, content types). */
#define HEADER_VALUE_MAX     4096
#define BACKOFF_FIRST_MS     200
#define BACKOFF_MAX_MS	     5000
#define RETRY_AFTER_MAX_SECS 10
#define PREFIX_CHUNK	     (1u << 20)

enum auth_mode { AUTH_NONE, AUTH_BASIC, AUTH_BEARER };

struct registry {
	CURL *curl;
	char *host;
	char *repository;
	char *scheme; /* "http" or "https" */
	bool tls_skip_verify;
	char *ca_file;
	int retries;
	long timeout_secs;

	char *username; /* secrets: never logged */
	char *password;
	enum auth_mode auth;
	char *token;
};

/* Where the body of a response goes. */
enum sink_kind { SINK_BUFFER, SINK_FILE };

/* One HTTP exchange: what the headers said and where the body went. */
struct transfer {
	const char *url;  /* for messages */
	const char *what; /* "manifest latest", "blob sha256:..." */
	long status;
	char *content_type;
	char *challenge; /* WWW-Authenticate, Bearer preferred */
	long retry_after;
	long long range_start; /* from Content-Range, or -1 */
	struct buf error_body;
	int rc; /* why the write callback stopped the transfer */

	enum sink_kind sink;
	struct buf *body; /* SINK_BUFFER */
	size_t max;
	int too_long; /* the code for a body over max */
	/* SINK_FILE: the file, its hash so far, and its length */
	int fd;
	const char *path;
	struct digest_ctx *hash;
	int64_t *have;
	int64_t size;
	bool started;
};

struct challenge {
	char *scheme;
	char *realm;
	char *service;
	char *scope;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

static void global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

void registry_options_init(struct registry_options *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->retries = 3;
	opts->timeout_secs = 30;
}

static void transfer_reset(struct transfer *t)
{
	free(t->content_type);
	free(t->challenge);
	buf_free(&t->error_body);
	t->content_type = NULL;
	t->challenge = NULL;
	t->status = 0;
	t->retry_after = -1;
	t->range_start = -1;
	t->rc = 0;
	t->started = false;
}

static void challenge_free(struct challenge *c)
{
	free(c->scheme);
	free(c->realm);
	free(c->service);
	free(c->scope);
	memset(c, 0, sizeof(*c));
}

static char *trimmed_dup(const char *s, size_t len)
{
	while (len && (*s == ' ' || *s == '\t')) {
		s++;
		len--;
	}
	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' ||
		       s[len - 1] == '\r' || s[len - 1] == '\n'))
		len--;
	return strndup(s, len);
}

static bool header_is(const char *line, size_t len, const char *name,
		      size_t *value_at)
{
	size_t n = strlen(name);

	if (len <= n || line[n] != ':' || strncasecmp(line, name, n) != 0)
		return false;
	*value_at = n + 1;
	return true;
}

/* "bytes START-END/TOTAL" */
static long long parse_content_range(const char *v, size_t len)
{
	char text[128];
	char *end;
	long long start;

	if (len >= sizeof(text))
		return -1;
	memcpy(text, v, len);
	text[len] = '\0';
	v = text;
	while (*v == ' ')
		v++;
	if (strncmp(v, "bytes ", 6) != 0)
		return -1;
	errno = 0;
	start = strtoll(v + 6, &end, 10);
	if (errno || end == v + 6 || *end != '-' || start < 0)
		return -1;
	return start;
}

static void keep_challenge(struct transfer *t, const char *v, size_t len)
{
	char *value;

	/* A Bearer challenge wins over a Basic one when both are sent. */
	if (t->challenge && strncasecmp(t->challenge, "bearer", 6) == 0)
		return;
	value = trimmed_dup(v, len);
	if (!value)
		return;
	free(t->challenge);
	t->challenge = value;
}

static size_t on_header(char *line, size_t size, size_t count, void *data)
{
	struct transfer *t = data;
	size_t len = size * count;
	size_t at;

	/* Each response (redirects, 100 Continue) starts with a status line. */
	if (len > 5 && strncmp(line, "HTTP/", 5) == 0) {
		const char *space = memchr(line, ' ', len);

		transfer_reset(t);
		if (space)
			t->status = strtol(space + 1, NULL, 10);
		return len;
	}
	if (len > HEADER_VALUE_MAX)
		return len;
	if (header_is(line, len, "content-type", &at)) {
		free(t->content_type);
		t->content_type = trimmed_dup(line + at, len - at);
	} else if (header_is(line, len, "www-authenticate", &at)) {
		keep_challenge(t, line + at, len - at);
	} else if (header_is(line, len, "retry-after", &at)) {
		char *end;
		long secs = strtol(line + at, &end, 10);

		if (end != line + at && secs >= 0)
			t->retry_after = secs;
	} else if (header_is(line, len, "content-range", &at)) {
		t->range_start = parse_content_range(line + at, len - at);
	}
	return len;
}

static void truncate_file(struct transfer *t)
{
	if (ftruncate(t->fd, 0) != 0)
		oc_warn("truncate %s: %s", t->path, strerror(errno));
}

/* The first body bytes of a file download: resume or start over. */
static int file_sink_start(struct transfer *t)
{
	t->started = true;
	if (t->status == 206) {
		if (t->range_start != *t->have)
			return oc_err(OCICACHE_EREGISTRY,
				      "%s: registry answered range from %lld, "
				      "asked from %lld (%s)",
				      t->what, t->range_start,
				      (long long)*t->have, t->url);
		return 0;
	}
	if (*t->have == 0)
		return 0;

	/* A 200 to a Range request carries the whole blob. */
	oc_debug("%s: registry ignored the range, downloading from 0", t->what);
	if (ftruncate(t->fd, 0) != 0)
		return oc_err_errno("truncate %s", t->path);
	digest_abort(t->hash);
	*t->have = 0;
	return digest_init(t->hash);
}

static int file_sink_write(struct transfer *t, const char *data, size_t len)
{
	int rc;

	if (!t->started) {
		rc = file_sink_start(t);
		if (rc)
			return rc;
	}
	if ((uint64_t)*t->have + len > (uint64_t)t->size)
		return oc_err(OCICACHE_EDIGEST,
			      "%s: registry sent more than the %lld bytes "
			      "expected (%s)",
			      t->what, (long long)t->size, t->url);
	rc = file_pwrite_all(t->fd, data, len, (uint64_t)*t->have, t->path);
	if (rc)
		return rc;
	digest_update(t->hash, data, len);
	*t->have += (int64_t)len;
	return 0;
}

static size_t on_body(char *data, size_t size, size_t count, void *userdata)
{
	struct transfer *t = userdata;
	size_t len = size * count;

	if (t->status < 200 || t->status >= 300) {
		if (t->error_body.len + len > ERROR_BODY_MAX)
			return 0;
		if (buf_append(&t->error_body, data, len))
			return 0;
		return len;
	}
	if (t->sink == SINK_FILE) {
		t->rc = file_sink_write(t, data, len);
		return t->rc ? 0 : len;
	}
	if (t->body->len + len > t->max) {
		t->rc =
		    oc_err(t->too_long, "%s: body longer than %zu bytes (%s)",
			   t->what, t->max, t->url);
		return 0;
	}
	t->rc = buf_append(t->body, data, len);
	return t->rc ? 0 : len;
}

/* Retry transient transport failures; not TLS or DNS configuration. */
static bool curl_retryable(CURLcode code)
{
	switch (code) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return true;
	default:
		return false;
	}
}

static bool status_retryable(long status)
{
	return status == 429 || status == 500 || status == 502 ||
	       status == 503 || status == 504;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static long backoff_ms(const struct transfer *t, int attempt)
{
	long ms = BACKOFF_FIRST_MS;

	if (t->retry_after >= 0) {
		long secs = t->retry_after < RETRY_AFTER_MAX_SECS
				? t->retry_after
				: RETRY_AFTER_MAX_SECS;
		return secs * 1000;
	}
	for (int i = 0; i < attempt && ms < BACKOFF_MAX_MS; i++)
		ms *= 2;
	return ms < BACKOFF_MAX_MS ? ms : BACKOFF_MAX_MS;
}

/* Set up the handle for one GET of `url`; `headers` is kept by curl. */
static CURLcode prepare(struct registry *r, const char *url,
			struct curl_slist *headers, struct transfer *t,
			bool send_auth)
{
	CURL *c = r->curl;
	CURLcode rc = CURLE_OK;

	curl_easy_reset(c);
	/* Each option is set only while every earlier one succeeded, so one
	 * check at the end covers them all. */
#define SETOPT(opt, val)                                    \
	do {                                                \
		if (rc == CURLE_OK)                         \
			rc = curl_easy_setopt(c, opt, val); \
	} while (0)
	SETOPT(CURLOPT_URL, url);
	SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
	SETOPT(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	SETOPT(CURLOPT_FOLLOWLOCATION, 1L);
	SETOPT(CURLOPT_MAXREDIRS, 10L);
	SETOPT(CURLOPT_NOSIGNAL, 1L);
	SETOPT(CURLOPT_USERAGENT, USER_AGENT);
	/* HTTP/2's flow control window halves loopback and LAN throughput. */
	SETOPT(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	SETOPT(CURLOPT_BUFFERSIZE, 256L * 1024);
	SETOPT(CURLOPT_CONNECTTIMEOUT, r->timeout_secs);
	SETOPT(CURLOPT_LOW_SPEED_LIMIT, 1L);
	SETOPT(CURLOPT_LOW_SPEED_TIME, r->timeout_secs);
	SETOPT(CURLOPT_HTTPHEADER, headers);
	SETOPT(CURLOPT_HEADERFUNCTION, on_header);
	SETOPT(CURLOPT_HEADERDATA, t);
	SETOPT(CURLOPT_WRITEFUNCTION, on_body);
	SETOPT(CURLOPT_WRITEDATA, t);
	if (r->ca_file)
		SETOPT(CURLOPT_CAINFO, r->ca_file);
	if (r->tls_skip_verify) {
		SETOPT(CURLOPT_SSL_VERIFYPEER, 0L);
		SETOPT(CURLOPT_SSL_VERIFYHOST, 0L);
	}
	/* Credentials go to this host only: curl drops them on a redirect
	 * elsewhere, such as a blob store's signed URL. */
	if (send_auth && r->auth == AUTH_BEARER && r->token) {
		SETOPT(CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
		SETOPT(CURLOPT_XOAUTH2_BEARER, r->token);
	} else if (send_auth && r->auth == AUTH_BASIC && r->username) {
		SETOPT(CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		SETOPT(CURLOPT_USERNAME, r->username);
		SETOPT(CURLOPT_PASSWORD, r->password ? r->password : "");
	}
#undef SETOPT
	return rc;
}

/* The registry's own words from an error body: errors[0].code/message. */
static void describe_error_body(char *out, size_t size, const struct buf *body)
{
	json_t *root, *first;
	const char *code, *message;

	out[0] = '\0';
	if (!body->len)
		return;
	root = json_loadb(body->data, body->len, 0, NULL);
	first = json_array_get(json_object_get(root, "errors"), 0);
	code = json_string_value(json_object_get(first, "code"));
	message = json_string_value(json_object_get(first, "message"));
	if (code || message)
		snprintf(out, size, ": %s%s%.200s", code ? code : "",
			 code && message ? " " : "", message ? message : "");
	json_decref(root);
}

/*
 * Copy the next auth-param of a challenge ("key=value" or
 * key="quoted value") into key and value; false at the end.
 */
static bool next_param(const char **p, char *key, size_t key_size,
		       struct buf *value)
{
	const char *s = *p;
	size_t n = 0;

	while (*s == ' ' || *s == ',' || *s == '\t')
		s++;
	/* A key too long to be one we know is kept cut short. */
	for (; *s && *s != '=' && *s != ' ' && *s != ','; s++)
		if (n + 1 < key_size)
			key[n++] = *s;
	key[n] = '\0';
	if (n == 0 || *s != '=')
		return false;
	s++;
	value->len = 0;
	if (*s == '"') {
		for (s++; *s && *s != '"'; s++) {
			if (*s == '\\' && s[1])
				s++;
			if (buf_append(value, s, 1))
				return false;
		}
		if (*s == '"')
			s++;
	} else {
		size_t len = strcspn(s, ", \t");

		if (buf_append(value, s, len))
			return false;
		s += len;
	}
	if (buf_append(value, "", 0))
		return false;
	*p = s;
	return true;
}

static int challenge_parse(struct challenge *c, const char *header)
{
	struct buf value = BUF_INIT;
	const char *p = header;
	char key[32];
	size_t n = strcspn(p, " \t");

	memset(c, 0, sizeof(*c));
	c->scheme = strndup(p, n);
	if (!c->scheme)
		return OCICACHE_ENOMEM;
	p += n;
	while (next_param(&p, key, sizeof(key), &value)) {
		char **slot = NULL;

		if (strcasecmp(key, "realm") == 0)
			slot = &c->realm;
		else if (strcasecmp(key, "service") == 0)
			slot = &c->service;
		else if (strcasecmp(key, "scope") == 0)
			slot = &c->scope;
		if (!slot)
			continue;
		free(*slot);
		*slot = strdup(value.data);
		if (!*slot) {
			buf_free(&value);
			challenge_free(c);
			return OCICACHE_ENOMEM;
		}
	}
	buf_free(&value);
	return 0;
}

static int perform(struct registry *r, const char *url,
		   struct curl_slist *headers, struct transfer *t,
		   bool send_auth, CURLcode *curl_rc)
{
	transfer_reset(t);
	if (t->sink == SINK_BUFFER && t->body->data) {
		t->body->len = 0;
		t->body->data[0] = '\0';
	}
	*curl_rc = prepare(r, url, headers, t, send_auth);
	if (*curl_rc != CURLE_OK)
		return oc_err(OCICACHE_ERROR, "%s: cannot set up request: %s",
			      url, curl_easy_strerror(*curl_rc));
	*curl_rc = curl_easy_perform(r->curl);
	return t->rc;
}

static int token_from_body(struct registry *r, struct buf *body,
			   const char *realm)
{
	json_t *root, *token;
	int rc = 0;

	root = json_loadb(body->data ? body->data : "", body->len, 0, NULL);
	token = json_object_get(root, "token");
	if (!json_is_string(token) || !*json_string_value(token))
		token = json_object_get(root, "access_token");
	if (!json_is_string(token) || !*json_string_value(token)) {
		rc = oc_err(OCICACHE_EREGISTRY,
			    "token server %s: no token in its answer", realm);
		goto out;
	}
	credentials_free(r->token, NULL);
	r->token = strdup(json_string_value(token));
	if (!r->token)
		rc = oc_err(OCICACHE_ENOMEM, "token: out of memory");
out:
	json_decref(root);
	return rc;
}

static int token_url(struct buf *url, struct registry *r,
		     const struct challenge *c)
{
	char *service = NULL, *scope = NULL;
	struct buf default_scope = BUF_INIT;
	const char *sep = strchr(c->realm, '?') ? "&" : "?";
	int rc;

	rc = buf_printf(&default_scope, "repository:%s:pull", r->repository);
	if (rc)
		return rc;
	if (c->service)
		service = curl_easy_escape(r->curl, c->service, 0);
	scope = curl_easy_escape(r->curl,
				 c->scope ? c->scope : default_scope.data, 0);
	if (!scope || (c->service && !service)) {
		rc = oc_err(OCICACHE_ENOMEM, "token request: out of memory");
		goto out;
	}
	rc = buf_puts(url, c->realm);
	if (!rc && service)
		rc = buf_printf(url, "%sservice=%s", sep, service);
	if (!rc)
		rc = buf_printf(url, "%sscope=%s", service ? "&" : sep, scope);
out:
	curl_free(service);
	curl_free(scope);
	buf_free(&default_scope);
	return rc;
}

/* Fetch a bearer token from the challenge's realm into r->token. */
static int fetch_token(struct registry *r, const struct challenge *c,
		       const char *for_url)
{
	struct transfer t = {.what = "token",
			     .sink = SINK_BUFFER,
			     .max = TOKEN_BODY_MAX,
			     .too_long = OCICACHE_EREGISTRY};
	struct buf url = BUF_INIT, body = BUF_INIT;
	enum auth_mode saved = r->auth;
	char detail[256];
	CURLcode code;
	int rc;

	if (!c->realm || (strncmp(c->realm, "https://", 8) != 0 &&
			  strncmp(c->realm, "http://", 7) != 0))
		return oc_err(OCICACHE_EREGISTRY,
			      "%s: bearer challenge without an http(s) realm",
			      for_url);
	rc = token_url(&url, r, c);
	if (rc)
		goto out;
	t.url = c->realm;
	t.body = &body;

	/* The token request carries basic credentials when we have any. */
	r->auth = AUTH_BASIC;
	rc = perform(r, url.data, NULL, &t, r->username != NULL, &code);
	r->auth = saved;
	if (rc)
		goto out;
	if (code != CURLE_OK) {
		rc = oc_err(OCICACHE_ENETWORK, "token server %s: %s", c->realm,
			    curl_easy_strerror(code));
		goto out;
	}
	if (t.status != 200) {
		describe_error_body(detail, sizeof(detail), &t.error_body);
		rc = oc_err(OCICACHE_EREGISTRY, "token server %s: HTTP %ld%s%s",
			    c->realm, t.status, detail,
			    t.status == 401 ? " (bad credentials?)" : "");
		goto out;
	}
	rc = token_from_body(r, &body, c->realm);
	if (!rc)
		oc_debug("got a bearer token from %s", c->realm);
out:
	transfer_reset(&t);
	buf_free(&url);
	buf_free(&body);
	return rc;
}

/*
 * Answer a 401: set up bearer or basic authentication from the challenge.
 * `tried` says this request already authenticated once.
 */
static int authenticate(struct registry *r, const struct transfer *t,
			bool tried)
{
	struct challenge c;
	int rc;

	if (tried || !t->challenge)
		return oc_err(OCICACHE_EREGISTRY,
			      "%s: authentication %s (HTTP 401 from %s)",
			      t->what, r->username ? "failed" : "required",
			      t->url);
	if (challenge_parse(&c, t->challenge))
		return oc_err(OCICACHE_ENOMEM, "%s: out of memory", t->url);

	if (strcasecmp(c.scheme, "bearer") == 0) {
		rc = fetch_token(r, &c, t->url);
		if (!rc)
			r->auth = AUTH_BEARER;
	} else if (strcasecmp(c.scheme, "basic") == 0) {
		rc = 0;
		if (!r->username)
			rc = oc_err(OCICACHE_EREGISTRY,
				    "%s: authentication required for %s (no "
				    "credentials for %s)",
				    t->what, t->url, r->host);
		else
			r->auth = AUTH_BASIC;
	} else {
		rc = oc_err(OCICACHE_EUNSUPPORTED,
			    "%s: authentication scheme '%s' not supported",
			    t->url, c.scheme);
	}
	challenge_free(&c);
	return rc;
}

/* What a final status means for the caller, or 0 for success. */
static int status_error(const struct transfer *t)
{
	char detail[256];

	if (t->status >= 200 && t->status < 300)
		return 0;
	describe_error_body(detail, sizeof(detail), &t->error_body);
	if (t->status == 404)
		return oc_err(OCICACHE_ENOTFOUND,
			      "%s not found (HTTP 404 from "
			      "%s)%s",
			      t->what, t->url, detail);
	return oc_err(OCICACHE_EREGISTRY, "%s: HTTP %ld from %s%s", t->what,
		      t->status, t->url, detail);
}

/*
 * GET `url` into the transfer's sink, authenticating and retrying as
 * needed. `before_try` (may be NULL) adjusts the headers before each try,
 * for Range requests that resume where the last try stopped.
 */
typedef int (*before_try_fn)(struct curl_slist **headers, void *arg,
			     bool *done);

static int get(struct registry *r, const char *url,
	       struct curl_slist *base_headers, struct transfer *t,
	       before_try_fn before_try, void *arg)
{
	struct curl_slist *headers = NULL;
	bool authenticated = false;
	CURLcode code;
	int attempt = 0;
	int rc;

	for (;;) {
		bool done = false;

		curl_slist_free_all(headers);
		headers = NULL;
		if (before_try) {
			rc = before_try(&headers, arg, &done);
			if (rc || done)
				break;
		}
		for (struct curl_slist *h = base_headers; h; h = h->next) {
			struct curl_slist *n =
			    curl_slist_append(headers, h->data);

			if (!n) {
				rc = oc_err(OCICACHE_ENOMEM,
					    "%s: out of memory", url);
				goto out;
			}
			headers = n;
		}

		rc = perform(r, url, headers, t, true, &code);
		if (rc)
			break;
		if (code == CURLE_OK && t->status == 401) {
			rc = authenticate(r, t, authenticated);
			if (rc)
				break;
			authenticated = true;
			continue;
		}
		if (code == CURLE_OK && !status_retryable(t->status)) {
			rc = status_error(t);
			break;
		}
		if (code != CURLE_OK && !curl_retryable(code)) {
			rc = oc_err(OCICACHE_ENETWORK, "%s: %s (%s)", t->what,
				    curl_easy_strerror(code), url);
			break;
		}
		if (attempt >= r->retries) {
			rc = code != CURLE_OK
				 ? oc_err(OCICACHE_ENETWORK,
					  "%s: %s after %d tries (%s)", t->what,
					  curl_easy_strerror(code), attempt + 1,
					  url)
				 : oc_err(OCICACHE_EREGISTRY,
					  "%s: HTTP %ld after %d tries "
					  "(%s)",
					  t->what, t->status, attempt + 1, url);
			break;
		}
		oc_debug("%s: %s, try %d of %d", url,
			 code != CURLE_OK ? curl_easy_strerror(code)
					  : "server busy",
			 attempt + 2, r->retries + 1);
		sleep_ms(backoff_ms(t, attempt));
		attempt++;
	}
out:
	curl_slist_free_all(headers);
	return rc;
}

static int url_for(struct buf *out, const struct registry *r, const char *kind,
		   const char *name)
{
	return buf_printf(out, "%s://%s/v2/%s/%s/%s", r->scheme, r->host,
			  r->repository, kind, name);
}

/* A tag or digest is one URL path segment of safe characters. */
static bool url_segment_valid(const char *s)
{
	if (!*s || strlen(s) > 128 + 7)
		return false;
	for (; *s; s++) {
		char c = *s;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '.' ||
		      c == '-' || c == ':'))
			return false;
	}
	return true;
}

static bool repository_valid(const char *s)
{
	if (!*s || strlen(s) > 255 || s[0] == '/')
		return false;
	for (; *s; s++) {
		char c = *s;

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-' || c == '/'))
			return false;
	}
	return true;
}

static bool host_valid(const char *s)
{
	if (!*s || strlen(s) > 255)
		return false;
	for (; *s; s++) {
		char c = *s;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '-' ||
		      c == ':' || c == '[' || c == ']'))
			return false;
	}
	return true;
}

static int registry_credentials(struct registry *r,
				const struct registry_options *opts)
{
	if (opts->username) {
		r->username = strdup(opts->username);
		r->password = strdup(opts->password ? opts->password : "");
		if (!r->username || !r->password)
			return oc_err(OCICACHE_ENOMEM, "%s: out of memory",
				      r->host);
		return 0;
	}
	return credentials_lookup(&r->username, &r->password, r->host);
}

int registry_new(struct registry **out, const char *host,
		 const char *repository, const struct registry_options *opts)
{
	struct registry_options defaults;
	char *config_ca_file = NULL;
	bool insecure = false;
	struct registry *r;
	int rc;

	*out = NULL;
	if (!opts) {
		registry_options_init(&defaults);
		opts = &defaults;
	}
	if (!host || !host_valid(host))
		return oc_err(OCICACHE_EINVAL, "invalid registry host '%s'",
			      host ? host : "");
	if (!repository || !repository_valid(repository))
		return oc_err(OCICACHE_EINVAL, "invalid repository '%s'",
			      repository ? repository : "");
	pthread_once(&global_once, global_init);
	if (global_rc != CURLE_OK)
		return oc_err(OCICACHE_ERROR, "libcurl: %s",
			      curl_easy_strerror(global_rc));

	r = calloc(1, sizeof(*r));
	if (!r)
		return oc_err(OCICACHE_ENOMEM, "registry %s: out of memory",
			      host);
	r->host = strdup(host);
	r->repository = strdup(repository);
	rc = credentials_host_options(&config_ca_file, &insecure, host);
	if (rc)
		goto fail;
	r->scheme = strdup(opts->plain_http || insecure ? "http" : "https");
	if (opts->ca_file) {
		r->ca_file = strdup(opts->ca_file);
		free(config_ca_file);
	} else {
		r->ca_file = config_ca_file;
	}
	r->curl = curl_easy_init();
	if (!r->host || !r->repository || !r->scheme || !r->curl ||
	    (opts->ca_file && !r->ca_file)) {
		rc =
		    oc_err(OCICACHE_ENOMEM, "registry %s: out of memory", host);
		goto fail;
	}
	r->tls_skip_verify = opts->tls_skip_verify;
	r->retries = opts->retries >= 0 ? opts->retries : 0;
	r->timeout_secs = opts->timeout_secs > 0 ? opts->timeout_secs : 30;

	rc = registry_credentials(r, opts);
	if (rc)
		goto fail;
	/* Credentials are sent only once a 401 asks for them, so that a
	 * registry with a token server never sees the password. */
	r->auth = AUTH_NONE;
	*out = r;
	return 0;

fail:
	registry_free(r);
	return rc;
}

void registry_free(struct registry *r)
{
	if (!r)
		return;
	if (r->curl)
		curl_easy_cleanup(r->curl);
	free(r->host);
	free(r->repository);
	free(r->scheme);
	free(r->ca_file);
	credentials_free(r->username, r->password);
	credentials_free(r->token, NULL);
	free(r);
}

int registry_get_manifest(struct buf *body, char **content_type,
			  char digest[DIGEST_STR_LEN], struct registry *r,
			  const char *reference)
{
	struct transfer t = {.sink = SINK_BUFFER,
			     .max = MANIFEST_MAX_BYTES,
			     .too_long = OCICACHE_EFORMAT};
	struct curl_slist *headers = NULL;
	struct buf url = BUF_INIT;
	char what[200];
	int rc;

	*content_type = NULL;
	digest[0] = '\0';
	if (!reference || !url_segment_valid(reference))
		return oc_err(OCICACHE_EINVAL, "invalid tag or digest '%s'",
			      reference ? reference : "");
	if (strchr(reference, ':') && !digest_valid(reference))
		return oc_err(OCICACHE_EINVAL, "invalid digest '%s'",
			      reference);
	snprintf(what, sizeof(what), "manifest %s/%s:%s", r->host,
		 r->repository, reference);
	if (strchr(reference, ':'))
		snprintf(what, sizeof(what), "manifest %s/%s@%s", r->host,
			 r->repository, reference);

	rc = url_for(&url, r, "manifests", reference);
	if (rc)
		goto out;
	headers = curl_slist_append(NULL, ACCEPT_MANIFESTS);
	if (!headers) {
		rc = oc_err(OCICACHE_ENOMEM, "%s: out of memory", what);
		goto out;
	}
	t.url = url.data;
	t.what = what;
	t.body = body;
	body->len = 0;
	rc = get(r, url.data, headers, &t, NULL, NULL);
	if (rc)
		goto out;

	rc = digest_buffer(digest, body->data ? body->data : "", body->len);
	if (rc)
		goto out;
	if (digest_valid(reference) && strcmp(digest, reference) != 0) {
		rc = oc_err(OCICACHE_EDIGEST, "%s: digest mismatch, got %s",
			    what, digest);
		goto out;
	}
	if (t.content_type) {
		*content_type = t.content_type;
		t.content_type = NULL;
	}
out:
	transfer_reset(&t);
	curl_slist_free_all(headers);
	buf_free(&url);
	return rc;
}

int registry_get_blob_buffer(struct buf *body, struct registry *r,
			     const char *digest, int64_t size)
{
	struct transfer t = {.sink = SINK_BUFFER, .too_long = OCICACHE_EDIGEST};
	struct buf url = BUF_INIT;
	char got[DIGEST_STR_LEN];
	char what[100];
	int rc;

	if (!digest_valid(digest))
		return oc_err(OCICACHE_EINVAL, "invalid blob digest '%s'",
			      digest ? digest : "");
	snprintf(what, sizeof(what), "blob %s", digest);
	if (size < 0 || size > CONFIG_MAX_BYTES)
		return oc_err(OCICACHE_EFORMAT,
			      "%s: size %lld out of range (0 to %u)", what,
			      (long long)size, CONFIG_MAX_BYTES);

	rc = url_for(&url, r, "blobs", digest);
	if (rc)
		goto out;
	t.url = url.data;
	t.what = what;
	t.body = body;
	t.max = (size_t)size;
	body->len = 0;
	rc = get(r, url.data, NULL, &t, NULL, NULL);
	if (rc)
		goto out;

	if (body->len != (size_t)size) {
		rc = oc_err(OCICACHE_EDIGEST,
			    "%s: size mismatch, got %zu bytes, want %lld", what,
			    body->len, (long long)size);
		goto out;
	}
	rc = digest_buffer(got, body->data ? body->data : "", body->len);
	if (!rc && strcmp(got, digest) != 0)
		rc = oc_err(OCICACHE_EDIGEST, "%s: digest mismatch, got %s",
			    what, got);
out:
	transfer_reset(&t);
	buf_free(&url);
	return rc;
}

/* Hash what the file already holds; a file longer than the blob is
 * cut to nothing. */
static int hash_prefix(struct digest_ctx *hash, int64_t *have, int fd,
		       const char *path, int64_t size)
{
	struct stat st;
	char *chunk;
	int rc = 0;

	*have = 0;
	if (fstat(fd, &st) != 0)
		return oc_err_errno("stat %s", path);
	if (st.st_size > size) {
		oc_debug("%s: %lld bytes, more than the blob's %lld; starting "
			 "over",
			 path, (long long)st.st_size, (long long)size);
		if (ftruncate(fd, 0) != 0)
			return oc_err_errno("truncate %s", path);
		return 0;
	}
	if (st.st_size == 0)
		return 0;

	chunk = malloc(PREFIX_CHUNK);
	if (!chunk)
		return oc_err(OCICACHE_ENOMEM, "%s: out of memory", path);
	while (*have < st.st_size) {
		size_t n = PREFIX_CHUNK;

		if ((int64_t)n > st.st_size - *have)
			n = (size_t)(st.st_size - *have);
		rc = file_pread_all(fd, chunk, n, (uint64_t)*have, path);
		if (rc)
			break;
		digest_update(hash, chunk, n);
		*have += (int64_t)n;
	}
	free(chunk);
	return rc;
}

struct resume {
	struct transfer *t;
	int tries_left_for_416;
};

/* Before each try of a download: ask only for what is missing. */
static int before_download_try(struct curl_slist **headers, void *arg,
			       bool *done)
{
	struct resume *res = arg;
	struct transfer *t = res->t;
	char range[64];
	struct curl_slist *n;

	if (*t->have == t->size && t->size > 0) {
		*done = true;
		return 0;
	}
	if (*t->have == 0)
		return 0;
	snprintf(range, sizeof(range), "Range: bytes=%lld-",
		 (long long)*t->have);
	n = curl_slist_append(*headers, range);
	if (!n)
		return oc_err(OCICACHE_ENOMEM, "%s: out of memory", t->what);
	*headers = n;
	return 0;
}

static int download(struct registry *r, struct transfer *t, const char *url)
{
	struct resume res = {.t = t, .tries_left_for_416 = 1};
	int rc;

	for (;;) {
		rc = get(r, url, NULL, t, before_download_try, &res);
		if (rc != OCICACHE_EREGISTRY || t->status != 416 ||
		    !res.tries_left_for_416--)
			return rc;
		/* The registry will not serve our range: start over. */
		if (ftruncate(t->fd, 0) != 0)
			return oc_err_errno("truncate %s", t->path);
		digest_abort(t->hash);
		*t->have = 0;
		rc = digest_init(t->hash);
		if (rc)
			return rc;
	}
}

int registry_download_blob(struct registry *r, const char *digest, int64_t size,
			   int fd, const char *path)
{
	struct transfer t = {.sink = SINK_FILE, .fd = fd, .path = path};
	struct digest_ctx hash = {NULL};
	char got[DIGEST_STR_LEN];
	struct buf url = BUF_INIT;
	int64_t have = 0;
	char what[100];
	int rc;

	if (!digest_valid(digest))
		return oc_err(OCICACHE_EINVAL, "invalid blob digest '%s'",
			      digest ? digest : "");
	snprintf(what, sizeof(what), "blob %s", digest);
	if (size < 0)
		return oc_err(OCICACHE_EFORMAT, "%s: negative size %lld", what,
			      (long long)size);
	rc = url_for(&url, r, "blobs", digest);
	if (!rc)
		rc = digest_init(&hash);
	if (rc)
		goto out;
	rc = hash_prefix(&hash, &have, fd, path, size);
	if (rc)
		goto out;
	if (have)
		oc_debug("%s: resuming at byte %lld of %lld", what,
			 (long long)have, (long long)size);

	t.url = url.data;
	t.what = what;
	t.hash = &hash;
	t.have = &have;
	t.size = size;
	rc = download(r, &t, url.data);
	if (rc)
		goto out;

	if (have != size) {
		rc = oc_err(OCICACHE_EDIGEST,
			    "%s: size mismatch, got %lld bytes, want %lld",
			    what, (long long)have, (long long)size);
		goto out;
	}
	digest_final(got, &hash);
	if (strcmp(got, digest) != 0)
		rc = oc_err(OCICACHE_EDIGEST, "%s: digest mismatch, got %s",
			    what, got);
out:
	if (hash.evp)
		digest_abort(&hash);
	/* No bad prefix is left behind for a later resume. */
	if (rc == OCICACHE_EDIGEST)
		truncate_file(&t);
	transfer_reset(&t);
	buf_free(&url);
	return rc;
}
