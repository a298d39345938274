#include "convert/readahead.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/error.h"

/* Four 1 MiB chunks: enough to ride out the uneven pace of tar entries,
 * small enough that memory stays flat. */
#define READAHEAD_SLOTS 4
#define READAHEAD_CHUNK (1u << 20)

struct readahead_slot {
	uint8_t *buf;
	ssize_t len; /* bytes, 0 at the end, or a negative error code */
	char message[512];
};

struct readahead {
	struct decompress *dec;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t changed;
	struct readahead_slot slots[READAHEAD_SLOTS];

	/* Counts of slots ever filled, handed to the caller, and given back
	 * by the caller; filled - released <= READAHEAD_SLOTS. */
	uint64_t filled;
	uint64_t taken;
	uint64_t released;
	bool finished; /* the thread published its last slot */
	bool stop;     /* the caller is done: the thread should leave */
};

static void *readahead_thread(void *arg)
{
	struct readahead *ra = arg;

	for (;;) {
		struct readahead_slot *slot;
		ssize_t n;

		pthread_mutex_lock(&ra->lock);
		while (!ra->stop &&
		       ra->filled - ra->released == READAHEAD_SLOTS)
			pthread_cond_wait(&ra->changed, &ra->lock);
		if (ra->stop) {
			pthread_mutex_unlock(&ra->lock);
			break;
		}
		slot = &ra->slots[ra->filled % READAHEAD_SLOTS];
		pthread_mutex_unlock(&ra->lock);

		/* The slot is ours alone until it is published below. */
		n = decompress_read(ra->dec, slot->buf, READAHEAD_CHUNK);
		slot->len = n;
		if (n < 0)
			snprintf(slot->message, sizeof(slot->message), "%s",
				 oc_err_message());

		pthread_mutex_lock(&ra->lock);
		ra->filled++;
		if (n <= 0)
			ra->finished = true;
		pthread_cond_broadcast(&ra->changed);
		pthread_mutex_unlock(&ra->lock);
		if (n <= 0)
			break;
	}
	return NULL;
}

int readahead_new(struct readahead **out, struct decompress *dec,
		  const char *name)
{
	struct readahead *ra;
	int i;

	*out = NULL;
	ra = calloc(1, sizeof(*ra));
	if (!ra)
		return oc_err(OCICACHE_ENOMEM, "%s: read-ahead", name);
	ra->dec = dec;
	for (i = 0; i < READAHEAD_SLOTS; i++) {
		ra->slots[i].buf = malloc(READAHEAD_CHUNK);
		if (!ra->slots[i].buf)
			goto fail;
	}
	pthread_mutex_init(&ra->lock, NULL);
	pthread_cond_init(&ra->changed, NULL);
	if (pthread_create(&ra->thread, NULL, readahead_thread, ra)) {
		pthread_cond_destroy(&ra->changed);
		pthread_mutex_destroy(&ra->lock);
		goto fail;
	}
	*out = ra;
	return 0;

fail:
	for (i = 0; i < READAHEAD_SLOTS; i++)
		free(ra->slots[i].buf);
	free(ra);
	return oc_err(OCICACHE_ENOMEM, "%s: read-ahead", name);
}

ssize_t readahead_next(struct readahead *ra, const void **data)
{
	struct readahead_slot *slot;
	ssize_t len;

	*data = NULL;
	pthread_mutex_lock(&ra->lock);
	/* The chunk handed out last time is done with. */
	if (ra->taken > ra->released) {
		ra->released = ra->taken;
		pthread_cond_broadcast(&ra->changed);
	}
	while (ra->taken == ra->filled && !ra->finished)
		pthread_cond_wait(&ra->changed, &ra->lock);
	if (ra->taken == ra->filled) {
		/* Past the last chunk: repeat its verdict. */
		slot = &ra->slots[(ra->filled - 1) % READAHEAD_SLOTS];
		len = slot->len < 0 ? slot->len : 0;
		pthread_mutex_unlock(&ra->lock);
		goto out;
	}
	slot = &ra->slots[ra->taken % READAHEAD_SLOTS];
	ra->taken++;
	len = slot->len;
	pthread_mutex_unlock(&ra->lock);
	*data = slot->buf;

out:
	if (len < 0)
		return oc_err((int)len, "%s", slot->message);
	return len;
}

void readahead_free(struct readahead *ra)
{
	if (!ra)
		return;
	pthread_mutex_lock(&ra->lock);
	ra->stop = true;
	pthread_cond_broadcast(&ra->changed);
	pthread_mutex_unlock(&ra->lock);
	pthread_join(ra->thread, NULL);
	pthread_cond_destroy(&ra->changed);
	pthread_mutex_destroy(&ra->lock);
	for (int i = 0; i < READAHEAD_SLOTS; i++)
		free(ra->slots[i].buf);
	free(ra);
}
