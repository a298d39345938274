/*
 * The distribution API over libcurl: manifests and blobs from one
 * repository, with bearer-token (anonymous or with credentials) and basic
 * authentication, retries of transient failures, and digest verification
 * of everything fetched.
 *
 * This stage hands bytes to files and buffers it is given; it knows nothing
 * of what becomes of them.
 */
#ifndef OCICACHE_PULL_REGISTRY_H
#define OCICACHE_PULL_REGISTRY_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/digest.h"

struct registry_options {
	bool plain_http;      /* http:// instead of https:// */
	bool tls_skip_verify; /* accept any certificate */
	const char *ca_file;  /* extra CA bundle; NULL: the config's, if any */
	const char *username; /* NULL: look up credentials (see below) */
	const char *password;
	int retries; /* extra tries on 429/5xx/connection errors */
	long
	    timeout_secs; /* connect timeout; transfers time out when stalled */
};

void registry_options_init(struct registry_options *opts);

struct registry;

/*
 * A client for `repository` on `host` ("127.0.0.1:5000", "[::1]:5000",
 * "registry-1.docker.io"). When opts->username is NULL, credentials are
 * looked up for the host in $OCICACHE_CONFIG (or
 * ~/.config/ocicache/config.json: {"registries": {HOST: {"username",
 * "password"}}}) and then Docker's config.json ($DOCKER_CONFIG/config.json
 * or ~/.docker/config.json, "auths"). The config file's "ca_file" and
 * "insecure" (plain http) for the host apply too. Free with
 * registry_free().
 */
int registry_new(struct registry **out, const char *host,
		 const char *repository, const struct registry_options *opts);
void registry_free(struct registry *r);

/*
 * GET a manifest by tag or digest, asking for every manifest and index type
 * we read. `body` receives it (capped at MANIFEST_MAX_BYTES),
 * `content_type` its Content-Type (malloc'ed, may be NULL), `digest` the
 * sha256 of the body. When `reference` is a digest the body must match it
 * (OCICACHE_EDIGEST otherwise). 404 is OCICACHE_ENOTFOUND; other refusals
 * OCICACHE_EREGISTRY; transport failures OCICACHE_ENETWORK.
 */
int registry_get_manifest(struct buf *body, char **content_type,
			  char digest[DIGEST_STR_LEN], struct registry *r,
			  const char *reference);

/* GET a small blob (a config) into `body`; its size must equal `size` and
 * its digest `digest`. */
int registry_get_blob_buffer(struct buf *body, struct registry *r,
			     const char *digest, int64_t size);

/*
 * Download blob `digest` of `size` bytes into the open file `fd`. If the
 * file already holds a prefix (a download cut short earlier), only the rest
 * is requested with a Range header and the prefix is hashed first; a
 * registry that ignores Range restarts from 0. On return 0 the file holds
 * exactly `size` bytes whose sha256 is `digest`. More bytes than `size`, or
 * another digest, is OCICACHE_EDIGEST, and the file is truncated to 0 so
 * that no bad prefix is resumed.
 */
int registry_download_blob(struct registry *r, const char *digest, int64_t size,
			   int fd, const char *path);

#endif
