/*
 * The pull pipeline: resolve a reference to a platform manifest, fetch and
 * convert the layers the cache lacks (in parallel), write fsmeta and the
 * VMDK, and record the image in the index once everything is verified.
 */
#ifndef OCICACHE_CACHE_PIPELINE_H
#define OCICACHE_CACHE_PIPELINE_H

#include "ocicache/ocicache.h"

struct ocicache;

/* Layers fetched at once when the options say 0. */
#define PIPELINE_DEFAULT_JOBS 4
#define PIPELINE_MAX_JOBS     64

/*
 * Pull `reference` into `cache` and return its handle in `*out` (may be
 * NULL). On failure the index is unchanged; the message names the
 * reference and the object at fault.
 */
int pipeline_pull(ocicache_image **out, struct ocicache *cache,
		  const char *reference,
		  const struct ocicache_pull_options *opts);

#endif
