/*
 * The cache object behind the public `ocicache` handle, shared by the
 * files of this stage: where the store lives and the open index.
 */
#ifndef OCICACHE_CACHE_CACHE_H
#define OCICACHE_CACHE_CACHE_H

#include "cache/db.h"
#include "cache/store.h"
#include "ocicache/ocicache.h"

struct ocicache {
	struct store store;
	struct db *db;
};

/* Milliseconds since the epoch, from the real-time clock. */
int64_t cache_now_ms(void);

/* The image handle for the normalised `reference`, from the index. */
int cache_image_load(ocicache_image **out, struct ocicache *cache,
		     const char *reference);

#endif
