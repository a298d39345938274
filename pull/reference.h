/*
 * Image references: parsing and normalisation.
 *
 * Accepted forms follow the distribution reference grammar:
 *   [HOST[:PORT]/]PATH[:TAG][@sha256:HEX]
 * HOST is the first component when it contains '.' or ':' or is
 * "localhost". Without a host the registry is docker.io, and a one-component
 * path gets "library/". Without tag and digest the tag is "latest".
 * Path components are lowercase [a-z0-9] separated by '.', '_', '__' or
 * runs of '-'; a tag is [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}; a reference is at
 * most 255 characters for its name part.
 */
#ifndef OCICACHE_PULL_REFERENCE_H
#define OCICACHE_PULL_REFERENCE_H

struct reference {
	char *registry;	  /* "docker.io", "127.0.0.1:5000", "[::1]:5000" */
	char *repository; /* "library/alpine" */
	char *tag;	  /* "latest"; NULL when only a digest was given */
	char *digest;	  /* "sha256:..." or NULL */
};

/* Parse `text`; OCICACHE_EINVAL with a message naming the text and what is
 * wrong. Free with reference_free(). */
int reference_parse(struct reference *out, const char *text);
void reference_free(struct reference *ref);

/*
 * The normalised text, malloc'ed: "docker.io/library/alpine:latest",
 * "host:5000/repo@sha256:...", or "host/repo:tag@sha256:..." when both are
 * set. NULL when out of memory.
 */
char *reference_string(const struct reference *ref);

/* "registry/repository", malloc'ed: the name without tag or digest. */
char *reference_name(const struct reference *ref);

/* The host to connect to: docker.io maps to registry-1.docker.io. */
const char *reference_api_host(const struct reference *ref);

#endif
