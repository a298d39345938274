#include "pull/credentials.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/file.h"

/* Configuration files are small; a larger one is not ours. */
#define CONFIG_FILE_MAX (1u << 20)

static bool is_docker_hub(const char *host)
{
	return strcmp(host, "registry-1.docker.io") == 0 ||
	       strcmp(host, "docker.io") == 0 ||
	       strcmp(host, "index.docker.io") == 0;
}

/* "$VAR/rest" or "$HOME/home_rest", malloc'ed; NULL when neither is set. */
static char *config_path(const char *var, const char *rest,
			 const char *home_rest)
{
	const char *dir = getenv(var);
	struct buf b = BUF_INIT;
	int rc;

	if (dir && *dir)
		rc = rest ? buf_printf(&b, "%s/%s", dir, rest)
			  : buf_puts(&b, dir);
	else if (getenv("HOME") && *getenv("HOME"))
		rc = buf_printf(&b, "%s/%s", getenv("HOME"), home_rest);
	else
		return NULL;
	if (rc) {
		buf_free(&b);
		return NULL;
	}
	return buf_detach(&b);
}

/*
 * Load `path` as a JSON object into `*out`. A missing file leaves `*out`
 * NULL and returns 0.
 */
static int load_json(json_t **out, const char *path)
{
	struct buf text = BUF_INIT;
	json_error_t error;
	struct stat st;
	int rc;

	*out = NULL;
	if (stat(path, &st) != 0 && errno == ENOENT)
		return 0;
	rc = file_read_all(&text, path, CONFIG_FILE_MAX);
	if (rc) {
		buf_free(&text);
		return oc_err_wrap(OCICACHE_EINVAL, "config %s", path);
	}
	*out = json_loadb(text.data ? text.data : "", text.len, 0, &error);
	buf_free(&text);
	if (!*out)
		return oc_err(OCICACHE_EINVAL,
			      "config %s: invalid JSON at line %d: %s", path,
			      error.line, error.text);
	if (!json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return oc_err(OCICACHE_EINVAL, "config %s: not a JSON object",
			      path);
	}
	return 0;
}

static int copy_pair(char **username, char **password, const char *user,
		     const char *pass)
{
	*username = strdup(user);
	*password = strdup(pass);
	if (!*username || !*password) {
		credentials_free(*username, *password);
		*username = *password = NULL;
		return oc_err(OCICACHE_ENOMEM, "credentials: out of memory");
	}
	return 0;
}

/* {"username": ..., "password": ...} when both are strings. */
static int pair_from_object(char **username, char **password, json_t *entry)
{
	json_t *user = json_object_get(entry, "username");
	json_t *pass = json_object_get(entry, "password");

	if (!json_is_string(user) || !json_is_string(pass))
		return 0;
	return copy_pair(username, password, json_string_value(user),
			 json_string_value(pass));
}

static int base64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

/* Decode standard or URL-safe base64, padding optional; NULL if bad. */
static char *base64_decode(const char *text)
{
	size_t len = strlen(text);
	char *out = malloc(len / 4 * 3 + 4);
	uint32_t acc = 0;
	size_t n = 0;
	int bits = 0;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		int v;

		if (text[i] == '=')
			break;
		v = base64_value(text[i]);
		if (v < 0) {
			free(out);
			return NULL;
		}
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (char)(acc >> bits & 0xff);
		}
	}
	out[n] = '\0';
	if (strlen(out) != n) {
		free(out);
		return NULL;
	}
	return out;
}

/* A Docker "auths" entry: "auth" (base64 user:pass) or username/password. */
static int pair_from_docker_entry(char **username, char **password,
				  json_t *entry, const char *path)
{
	json_t *auth = json_object_get(entry, "auth");
	char *decoded, *colon;
	int rc;

	if (!json_is_string(auth) || !*json_string_value(auth))
		return pair_from_object(username, password, entry);
	decoded = base64_decode(json_string_value(auth));
	colon = decoded ? strchr(decoded, ':') : NULL;
	if (!colon) {
		oc_warn("docker config %s: an \"auth\" entry is not base64 "
			"user:password; ignored",
			path);
		free(decoded);
		return 0;
	}
	*colon = '\0';
	rc = copy_pair(username, password, decoded, colon + 1);
	credentials_free(decoded, NULL);
	return rc;
}

/*
 * Whether a Docker "auths" key names `host`: keys are "host", or URLs such
 * as "https://host/v1/".
 */
static bool docker_key_matches(const char *key, const char *host)
{
	size_t len;

	if (strncmp(key, "https://", 8) == 0)
		key += 8;
	else if (strncmp(key, "http://", 7) == 0)
		key += 7;
	len = strcspn(key, "/");
	if (strlen(host) == len && strncmp(key, host, len) == 0)
		return true;
	return is_docker_hub(host) && len == 15 &&
	       strncmp(key, "index.docker.io", 15) == 0;
}

/*
 * Load ocicache's config and find the "registries" entry for `host`
 * (Docker Hub under any of its names). With no config file, or no entry,
 * `*entry` is NULL and 0 is returned. The caller frees `*root` (json_decref)
 * and `*path`.
 */
static int config_host_entry(json_t **root, json_t **entry, char **path,
			     const char *host)
{
	json_t *registries;
	int rc;

	*root = *entry = NULL;
	*path = config_path("OCICACHE_CONFIG", NULL,
			    ".config/ocicache/config.json");
	if (!*path)
		return 0;
	rc = load_json(root, *path);
	if (rc || !*root)
		return rc;
	registries = json_object_get(*root, "registries");
	*entry = json_object_get(registries, host);
	if (!*entry && is_docker_hub(host))
		*entry = json_object_get(registries, "docker.io");
	if (!json_is_object(*entry))
		*entry = NULL;
	return 0;
}

static int lookup_ocicache(char **username, char **password, const char *host)
{
	json_t *root, *entry;
	char *path;
	int rc = config_host_entry(&root, &entry, &path, host);

	if (!rc && entry)
		rc = pair_from_object(username, password, entry);
	json_decref(root);
	free(path);
	return rc;
}

int credentials_host_options(char **ca_file, bool *insecure, const char *host)
{
	json_t *root, *entry, *value;
	char *path;
	int rc;

	*ca_file = NULL;
	*insecure = false;
	rc = config_host_entry(&root, &entry, &path, host);
	if (rc || !entry)
		goto out;
	value = json_object_get(entry, "ca_file");
	if (json_is_string(value)) {
		*ca_file = strdup(json_string_value(value));
		if (!*ca_file)
			rc = oc_err(OCICACHE_ENOMEM, "config %s: out of memory",
				    path);
	} else if (value && !json_is_null(value)) {
		rc = oc_err(OCICACHE_EINVAL,
			    "config %s: registries.%s.ca_file is not a string",
			    path, host);
	}
	if (json_is_true(json_object_get(entry, "insecure")))
		*insecure = true;
out:
	json_decref(root);
	free(path);
	return rc;
}

static int lookup_docker(char **username, char **password, const char *host)
{
	char *path =
	    config_path("DOCKER_CONFIG", "config.json", ".docker/config.json");
	json_t *root = NULL, *entry;
	const char *key;
	int rc = 0;

	if (!path)
		return 0;
	if (load_json(&root, path)) {
		oc_warn("%s; ignored", oc_err_message());
		goto out;
	}
	json_object_foreach(json_object_get(root, "auths"), key, entry)
	{
		if (!json_is_object(entry) || !docker_key_matches(key, host))
			continue;
		rc = pair_from_docker_entry(username, password, entry, path);
		if (rc || *username)
			break;
	}
out:
	json_decref(root);
	free(path);
	return rc;
}

int credentials_lookup(char **username, char **password, const char *host)
{
	int rc;

	*username = *password = NULL;
	rc = lookup_ocicache(username, password, host);
	if (rc || *username)
		return rc;
	return lookup_docker(username, password, host);
}

static void wipe(char *secret)
{
	if (!secret)
		return;
	explicit_bzero(secret, strlen(secret));
	free(secret);
}

void credentials_free(char *username, char *password)
{
	wipe(username);
	wipe(password);
}
