/*
 * Registry credentials from configuration files, for pull/registry.c.
 *
 * Looked up in order: ocicache's config ($OCICACHE_CONFIG, else
 * ~/.config/ocicache/config.json: {"registries": {HOST: {"username",
 * "password"}}}), then Docker's ($DOCKER_CONFIG/config.json, else
 * ~/.docker/config.json: "auths" with a base64 "user:password" in "auth",
 * or "username" and "password").
 *
 * Docker credential helpers (credsStore, credHelpers) are not run: a
 * registry whose secret lives only in a helper is reached anonymously.
 */
#ifndef OCICACHE_PULL_CREDENTIALS_H
#define OCICACHE_PULL_CREDENTIALS_H

#include <stdbool.h>

/*
 * Find credentials for `host` ("127.0.0.1:5000", "registry-1.docker.io").
 * On success `*username` and `*password` are malloc'ed (free them with
 * credentials_free()), or both NULL when no file names the host. A missing
 * file is no error; an unreadable or malformed ocicache config is
 * OCICACHE_EINVAL naming the file; a malformed Docker config is skipped
 * with a warning.
 */
int credentials_lookup(char **username, char **password, const char *host);

/*
 * Per-registry options from ocicache's config file:
 * {"registries": {HOST: {"ca_file": PATH, "insecure": true}}}. `ca_file`
 * (malloc'ed, or NULL) is an extra CA bundle for that host; `insecure`
 * means plain http. Errors as credentials_lookup().
 */
int credentials_host_options(char **ca_file, bool *insecure, const char *host);

/* Wipe and free a secret (either may be NULL). */
void credentials_free(char *username, char *password);

#endif
