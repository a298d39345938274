#include "pull/reference.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/digest.h"
#include "common/error.h"

#define NAME_MAX_LEN 255
#define TAG_MAX_LEN  128

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
	return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

static bool is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	       (c >= 'A' && c <= 'F');
}

static bool has_upper(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] >= 'A' && s[i] <= 'Z')
			return true;
	return false;
}

/*
 * One path component: lowercase alphanumeric runs joined by a single '.',
 * a single or double '_', or any number of '-'.
 */
static bool component_valid(const char *s, size_t len)
{
	size_t i = 0;

	if (len == 0 || !is_lower_alnum(s[0]) || !is_lower_alnum(s[len - 1]))
		return false;
	while (i < len) {
		size_t sep;

		if (is_lower_alnum(s[i])) {
			i++;
			continue;
		}
		sep = i;
		if (s[i] == '.') {
			i++;
		} else if (s[i] == '_') {
			i++;
			if (i < len && s[i] == '_')
				i++;
		} else if (s[i] == '-') {
			while (i < len && s[i] == '-')
				i++;
		} else {
			return false;
		}
		if (i == sep || i >= len || !is_lower_alnum(s[i]))
			return false;
	}
	return true;
}

static bool port_valid(const char *s, size_t len)
{
	unsigned long port = 0;

	if (len == 0 || len > 5)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		port = port * 10 + (unsigned long)(s[i] - '0');
	}
	return port >= 1 && port <= 65535;
}

/* A DNS label: alphanumerics with inner '-'. */
static bool label_valid(const char *s, size_t len)
{
	if (len == 0 || len > 63 || !is_alnum(s[0]) || !is_alnum(s[len - 1]))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!is_alnum(s[i]) && s[i] != '-')
			return false;
	return true;
}

/* "host[:port]" where host is DNS labels or a bracketed IPv6 literal. */
static bool host_valid(const char *s, size_t len)
{
	size_t host_len = len;
	const char *colon;

	if (len == 0)
		return false;
	if (s[0] == '[') {
		const char *close = memchr(s, ']', len);

		if (!close || close == s + 1)
			return false;
		for (const char *p = s + 1; p < close; p++)
			if (!is_hex(*p) && *p != ':')
				return false;
		host_len = (size_t)(close - s) + 1;
		if (host_len == len)
			return true;
		return s[host_len] == ':' &&
		       port_valid(s + host_len + 1, len - host_len - 1);
	}

	colon = memchr(s, ':', len);
	if (colon) {
		host_len = (size_t)(colon - s);
		if (!port_valid(colon + 1, len - host_len - 1))
			return false;
	}
	for (size_t start = 0; start <= host_len;) {
		const char *dot = memchr(s + start, '.', host_len - start);
		size_t end = dot ? (size_t)(dot - s) : host_len;

		if (!label_valid(s + start, end - start))
			return false;
		start = end + 1;
	}
	return true;
}

static bool tag_valid(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > TAG_MAX_LEN || !(is_alnum(s[0]) || s[0] == '_'))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!is_alnum(s[i]) && s[i] != '_' && s[i] != '.' &&
		    s[i] != '-')
			return false;
	return true;
}

/* The first component is a registry host when it looks like one. */
static bool first_is_host(const char *s, size_t len)
{
	return memchr(s, '.', len) || memchr(s, ':', len) ||
	       (len == 9 && memcmp(s, "localhost", 9) == 0);
}

static int set_registry(struct reference *ref, const char *s, size_t len)
{
	if (len == 15 && memcmp(s, "index.docker.io", 15) == 0) {
		s = "docker.io";
		len = 9;
	}
	ref->registry = strndup(s, len);
	return ref->registry ? 0 : OCICACHE_ENOMEM;
}

static int set_repository(struct reference *ref, const char *s, size_t len)
{
	bool library =
	    strcmp(ref->registry, "docker.io") == 0 && !memchr(s, '/', len);
	size_t prefix = library ? 8 : 0;

	ref->repository = malloc(prefix + len + 1);
	if (!ref->repository)
		return OCICACHE_ENOMEM;
	memcpy(ref->repository, "library/", prefix);
	memcpy(ref->repository + prefix, s, len);
	ref->repository[prefix + len] = '\0';
	return 0;
}

/* Split "name[:tag]" and check both parts. */
static int parse_name(struct reference *ref, const char *text, const char *name,
		      size_t len)
{
	const char *slash = memchr(name, '/', len);
	const char *path = name;
	size_t path_len = len;
	int rc;

	if (len > NAME_MAX_LEN)
		return oc_err(OCICACHE_EINVAL,
			      "reference '%s': name longer than %d characters",
			      text, NAME_MAX_LEN);

	if (slash && first_is_host(name, (size_t)(slash - name))) {
		size_t host_len = (size_t)(slash - name);

		if (!host_valid(name, host_len))
			return oc_err(OCICACHE_EINVAL,
				      "reference '%s': invalid registry host "
				      "'%.*s'",
				      text, (int)host_len, name);
		rc = set_registry(ref, name, host_len);
		path = slash + 1;
		path_len = len - host_len - 1;
	} else {
		rc = set_registry(ref, "docker.io", 9);
	}
	if (rc)
		return oc_err(rc, "reference '%s': out of memory", text);

	if (has_upper(path, path_len))
		return oc_err(OCICACHE_EINVAL,
			      "reference '%s': repository name must be "
			      "lowercase",
			      text);
	for (size_t start = 0; start <= path_len;) {
		const char *sep = memchr(path + start, '/', path_len - start);
		size_t end = sep ? (size_t)(sep - path) : path_len;

		if (!component_valid(path + start, end - start))
			return oc_err(OCICACHE_EINVAL,
				      "reference '%s': invalid repository "
				      "component '%.*s'",
				      text, (int)(end - start), path + start);
		start = end + 1;
	}
	if (set_repository(ref, path, path_len))
		return oc_err(OCICACHE_ENOMEM, "reference '%s': out of memory",
			      text);
	return 0;
}

static int parse_digest(struct reference *ref, const char *text,
			const char *digest)
{
	if (strncmp(digest, "sha256:", 7) != 0)
		return oc_err(OCICACHE_EINVAL,
			      "reference '%s': unsupported digest '%s' "
			      "(only sha256 is supported)",
			      text, digest);
	if (!digest_valid(digest))
		return oc_err(OCICACHE_EINVAL,
			      "reference '%s': invalid digest '%s' (want "
			      "sha256: and 64 lowercase hex digits)",
			      text, digest);
	ref->digest = strdup(digest);
	if (!ref->digest)
		return oc_err(OCICACHE_ENOMEM, "reference '%s': out of memory",
			      text);
	return 0;
}

/* Split off ":tag" after the last '/'; `len` becomes the name's length. */
static int parse_tag(struct reference *ref, const char *text, const char *name,
		     size_t *len)
{
	const char *slash = NULL, *colon = NULL;

	for (size_t i = 0; i < *len; i++) {
		if (name[i] == '/')
			slash = name + i;
		else if (name[i] == ':')
			colon = name + i;
	}
	if (!colon || (slash && colon < slash))
		return 0;

	ref->tag = strndup(colon + 1, *len - (size_t)(colon - name) - 1);
	if (!ref->tag)
		return oc_err(OCICACHE_ENOMEM, "reference '%s': out of memory",
			      text);
	if (!tag_valid(ref->tag))
		return oc_err(OCICACHE_EINVAL,
			      "reference '%s': invalid tag '%s'", text,
			      ref->tag);
	*len = (size_t)(colon - name);
	return 0;
}

int reference_parse(struct reference *out, const char *text)
{
	const char *at;
	size_t len;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!text || !*text)
		return oc_err(OCICACHE_EINVAL, "empty image reference");
	for (const char *p = text; *p; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
			return oc_err(OCICACHE_EINVAL,
				      "reference '%s': contains a space or "
				      "control character",
				      text);

	at = strchr(text, '@');
	len = at ? (size_t)(at - text) : strlen(text);
	if (at) {
		rc = parse_digest(out, text, at + 1);
		if (rc)
			goto fail;
	}
	rc = parse_tag(out, text, text, &len);
	if (rc)
		goto fail;
	if (len == 0) {
		rc = oc_err(OCICACHE_EINVAL, "reference '%s': no name", text);
		goto fail;
	}
	rc = parse_name(out, text, text, len);
	if (rc)
		goto fail;

	if (!out->tag && !out->digest) {
		out->tag = strdup("latest");
		if (!out->tag) {
			rc = oc_err(OCICACHE_ENOMEM,
				    "reference '%s': out of memory", text);
			goto fail;
		}
	}
	return 0;

fail:
	reference_free(out);
	return rc;
}

void reference_free(struct reference *ref)
{
	if (!ref)
		return;
	free(ref->registry);
	free(ref->repository);
	free(ref->tag);
	free(ref->digest);
	memset(ref, 0, sizeof(*ref));
}

char *reference_string(const struct reference *ref)
{
	struct buf b = BUF_INIT;
	int rc;

	rc = buf_printf(&b, "%s/%s", ref->registry, ref->repository);
	if (!rc && ref->tag)
		rc = buf_printf(&b, ":%s", ref->tag);
	if (!rc && ref->digest)
		rc = buf_printf(&b, "@%s", ref->digest);
	if (rc) {
		buf_free(&b);
		return NULL;
	}
	return buf_detach(&b);
}

char *reference_name(const struct reference *ref)
{
	struct buf b = BUF_INIT;

	if (buf_printf(&b, "%s/%s", ref->registry, ref->repository)) {
		buf_free(&b);
		return NULL;
	}
	return buf_detach(&b);
}

const char *reference_api_host(const struct reference *ref)
{
	if (strcmp(ref->registry, "docker.io") == 0)
		return "registry-1.docker.io";
	return ref->registry;
}
