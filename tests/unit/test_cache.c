/*
 * The cache stage without a registry: images are recorded through the
 * index layer with files made by hand in the store, then driven through
 * the public get/list/inspect/remove/prune/sandbox API.
 */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/cache.h"
#include "common/digest.h"
#include "ocicache/ocicache.h"
#include "tests/unit/check.h"

#define CONFIG_JSON                                                         \
	"{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{"         \
	"\"Env\":[\"PATH=/bin\",\"A=b c\"],\"Cmd\":[\"sh\",\"-c\",\"x\"],"  \
	"\"WorkingDir\":\"/w\",\"User\":\"1:2\",\"Labels\":{\"k\":\"v\"}}," \
	"\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}"

static char root_dir[] = "/tmp/ocicache-test-cache-XXXXXX";

static void digest_of(char out[DIGEST_STR_LEN], const char *seed)
{
	digest_buffer(out, seed, strlen(seed));
}

static bool exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

static void write_file(const char *path, size_t size)
{
	char block[4096];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	size_t done = 0;

	memset(block, 0x5a, sizeof(block));
	CHECK(fd >= 0);
	while (fd >= 0 && done < size) {
		size_t n =
		    size - done < sizeof(block) ? size - done : sizeof(block);
		CHECK(write(fd, block, n) == (ssize_t)n);
		done += n;
	}
	if (fd >= 0)
		close(fd);
}

static ocicache *open_fresh(void)
{
	char cmd[512];
	ocicache *cache = NULL;

	snprintf(cmd, sizeof(cmd), "rm -rf %s/*", root_dir);
	CHECK(system(cmd) == 0);
	CHECK(ocicache_open(&cache, root_dir) == 0);
	return cache;
}

/* Record `reference` -> manifest `mseed` with layers from `lseeds`, each
 * layer file `4096 * (i + 1)` bytes, fsmeta 8192 and VMDK 512 bytes. */
static void fake_image(ocicache *cache, const char *reference,
		       const char *mseed, const char *const *lseeds,
		       size_t count, int64_t now_ms, const char *config)
{
	char manifest[DIGEST_STR_LEN], diff[8][DIGEST_STR_LEN];
	char blob[8][DIGEST_STR_LEN], seed[64];
	struct db_layer layers[8];
	char *path;
	size_t i;

	digest_of(manifest, mseed);
	for (i = 0; i < count; i++) {
		digest_of(diff[i], lseeds[i]);
		snprintf(seed, sizeof(seed), "blob-%s", lseeds[i]);
		digest_of(blob[i], seed);
		path = store_implied_path(&cache->store, diff[i]);
		write_file(path, 0);
		free(path);
		path = store_layer_path(&cache->store, diff[i]);
		write_file(path, 4096 * (i + 1));
		free(path);
		layers[i] = (struct db_layer){
		    .diff_id = diff[i],
		    .blob_digest = blob[i],
		    .media_type = "application/vnd.oci.image.layer.v1.tar+gzip",
		    .compressed_size = 100,
		    .erofs_size = 4096 * (int64_t)(i + 1),
		    .position = (uint32_t)i,
		    .implied_dirs = "",
		};
	}
	path = store_fsmeta_path(&cache->store, manifest);
	write_file(path, 8192);
	free(path);
	path = store_vmdk_path(&cache->store, manifest);
	write_file(path, 512);
	free(path);

	struct db_image_record rec = {
	    .reference = reference,
	    .manifest_digest = manifest,
	    .media_type = "application/vnd.oci.image.manifest.v1+json",
	    .config_digest = config ? manifest : NULL,
	    .config_json = config,
	    .architecture = "amd64",
	    .os = "linux",
	    .fsmeta_size = 8192,
	    .vmdk_size = 512,
	    .layers = layers,
	    .layer_count = count,
	    .now_ms = now_ms,
	};
	CHECK(db_record_image(cache->db, &rec) == 0);
}

static bool layer_file(ocicache *cache, const char *seed)
{
	char diff[DIGEST_STR_LEN];
	char *path;
	bool found;

	digest_of(diff, seed);
	path = store_layer_path(&cache->store, diff);
	found = exists(path);
	free(path);
	return found;
}

static bool manifest_files(ocicache *cache, const char *seed)
{
	char m[DIGEST_STR_LEN];
	char *fsmeta, *vmdk;
	bool found;

	digest_of(m, seed);
	fsmeta = store_fsmeta_path(&cache->store, m);
	vmdk = store_vmdk_path(&cache->store, m);
	found = exists(fsmeta) && exists(vmdk);
	free(fsmeta);
	free(vmdk);
	return found;
}

static const char *const ab[] = {"layer-a", "layer-b"};
static const char *const ac[] = {"layer-a", "layer-c"};
static const char *const d1[] = {"layer-d"};

static void open_creates_the_layout(void)
{
	static const char *const dirs[] = {"layers/sha256", "fsmeta/sha256",
					   "vmdk/sha256",   "tmp",
					   "locks",	    "cache.db"};
	char path[512];
	ocicache *cache = open_fresh();
	ocicache *again = NULL;
	size_t i;

	CHECK_STR(ocicache_root(cache), root_dir);
	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", root_dir, dirs[i]);
		CHECK(exists(path));
	}
	CHECK(ocicache_open(&again, root_dir) == 0);
	ocicache_close(again);
	ocicache_close(cache);
}

static void open_uses_ocicache_root_by_default(void)
{
	ocicache *cache = NULL;

	setenv("OCICACHE_ROOT", root_dir, 1);
	CHECK(ocicache_open(&cache, NULL) == 0);
	if (cache)
		CHECK_STR(ocicache_root(cache), root_dir);
	ocicache_close(cache);
	unsetenv("OCICACHE_ROOT");
}

static void get_normalises_the_reference(void)
{
	ocicache *cache = open_fresh();
	ocicache_image *img = NULL;
	char m[DIGEST_STR_LEN];

	fake_image(cache, "docker.io/library/alpine:latest", "m1", ab, 2, 1000,
		   CONFIG_JSON);
	digest_of(m, "m1");
	CHECK(ocicache_image_get(&img, cache, "alpine") == 0);
	if (img) {
		CHECK_STR(img->reference, "docker.io/library/alpine:latest");
		CHECK_STR(img->manifest_digest, m);
		CHECK(img->index_digest == NULL);
		CHECK_STR(img->architecture, "amd64");
		CHECK(img->layer_count == 2);
		CHECK(img->size_bytes == 4096 + 8192 + 8192 + 512);
		CHECK(img->created_at == 1000 && img->last_used_at == 1000);
		CHECK(strncmp(img->fsmeta_path, root_dir, strlen(root_dir)) ==
		      0);
		CHECK(exists(img->vmdk_path));
	}
	ocicache_image_free(img);

	CHECK(ocicache_image_get(&img, cache, "docker.io/alpine:latest") == 0);
	ocicache_image_free(img);
	CHECK(ocicache_image_get(&img, cache, "alpine:3") ==
	      OCICACHE_ENOTFOUND);
	CHECK(strstr(ocicache_error_message(), "docker.io/library/alpine:3") !=
	      NULL);
	CHECK(img == NULL);
	CHECK(ocicache_image_get(&img, cache, "Not A Reference") ==
	      OCICACHE_EINVAL);
	ocicache_close(cache);
}

static void get_by_digest_finds_a_tagged_image(void)
{
	ocicache *cache = open_fresh();
	ocicache_image *img = NULL;
	char m[DIGEST_STR_LEN], ref[128];

	fake_image(cache, "example.com/app:1", "m1", ab, 2, 1000, NULL);
	digest_of(m, "m1");
	snprintf(ref, sizeof(ref), "example.com/app@%s", m);
	CHECK(ocicache_image_get(&img, cache, ref) == 0);
	if (img)
		CHECK_STR(img->manifest_digest, m);
	ocicache_image_free(img);
	snprintf(ref, sizeof(ref), "example.com/other@%s", m);
	CHECK(ocicache_image_get(&img, cache, ref) == OCICACHE_ENOTFOUND);
	ocicache_close(cache);
}

static void get_of_an_image_with_missing_files_is_not_found(void)
{
	ocicache *cache = open_fresh();
	ocicache_image *img = NULL;
	char m[DIGEST_STR_LEN];
	char *vmdk;

	fake_image(cache, "example.com/app:1", "m1", ab, 2, 1000, NULL);
	digest_of(m, "m1");
	vmdk = store_vmdk_path(&cache->store, m);
	unlink(vmdk);
	CHECK(ocicache_image_get(&img, cache, "example.com/app:1") ==
	      OCICACHE_ENOTFOUND);
	CHECK(strstr(ocicache_error_message(), vmdk) != NULL);
	free(vmdk);
	ocicache_close(cache);
}

static void list_is_newest_first(void)
{
	ocicache *cache = open_fresh();
	ocicache_image **list = NULL;
	size_t count = 0;

	fake_image(cache, "example.com/old:1", "m1", ab, 2, 1000, NULL);
	fake_image(cache, "example.com/new:1", "m2", ac, 2, 3000, NULL);
	fake_image(cache, "example.com/b:1", "m3", d1, 1, 2000, NULL);
	fake_image(cache, "example.com/a:1", "m3", d1, 1, 2000, NULL);
	CHECK(ocicache_image_list(&list, &count, cache) == 0);
	CHECK(count == 4);
	if (count == 4) {
		CHECK_STR(list[0]->reference, "example.com/new:1");
		CHECK_STR(list[1]->reference, "example.com/a:1");
		CHECK_STR(list[2]->reference, "example.com/b:1");
		CHECK_STR(list[3]->reference, "example.com/old:1");
		CHECK(list[3]->layer_count == 2);
	}
	ocicache_image_list_free(list, count);
	ocicache_close(cache);
}

static void inspect_gives_config_and_layers_bottom_first(void)
{
	ocicache *cache = open_fresh();
	ocicache_image_detail *d = NULL;
	char diff[DIGEST_STR_LEN];

	fake_image(cache, "example.com/app:1", "m1", ab, 2, 1000, CONFIG_JSON);
	fake_image(cache, "example.com/bare:1", "m2", d1, 1, 1000, NULL);
	CHECK(ocicache_image_inspect(&d, cache, "example.com/app:1") == 0);
	if (d) {
		CHECK(d->config != NULL);
		if (d->config) {
			CHECK_STR(d->config->env[0], "PATH=/bin");
			CHECK_STR(d->config->env[1], "A=b c");
			CHECK(d->config->env[2] == NULL);
			CHECK_STR(d->config->cmd[2], "x");
			CHECK(d->config->entrypoint == NULL);
			CHECK_STR(d->config->working_dir, "/w");
			CHECK_STR(d->config->user, "1:2");
			CHECK(d->config->labels_json &&
			      strstr(d->config->labels_json, "\"k\""));
		}
		CHECK(d->layer_count == 2);
		digest_of(diff, "layer-b");
		if (d->layer_count == 2) {
			CHECK(d->layers[0].position == 0);
			CHECK_STR(d->layers[1].diff_id, diff);
			CHECK(d->layers[1].erofs_size_bytes == 8192);
			CHECK(d->layers[1].compressed_size_bytes == 100);
			CHECK(exists(d->layers[1].path));
		}
	}
	ocicache_image_detail_free(d);
	d = NULL;

	CHECK(ocicache_image_inspect(&d, cache, "example.com/bare:1") == 0);
	if (d)
		CHECK(d->config == NULL);
	ocicache_image_detail_free(d);
	ocicache_close(cache);
}

static void remove_keeps_layers_another_image_uses(void)
{
	ocicache *cache = open_fresh();
	ocicache_image *img = NULL;

	fake_image(cache, "example.com/one:1", "m1", ab, 2, 1000, NULL);
	fake_image(cache, "example.com/two:1", "m2", ac, 2, 1000, NULL);
	CHECK(ocicache_image_remove(cache, "example.com/one:1", 0) == 0);
	CHECK(!manifest_files(cache, "m1"));
	CHECK(!layer_file(cache, "layer-b"));
	CHECK(layer_file(cache, "layer-a"));
	CHECK(manifest_files(cache, "m2"));
	CHECK(ocicache_image_get(&img, cache, "example.com/one:1") ==
	      OCICACHE_ENOTFOUND);
	CHECK(ocicache_image_get(&img, cache, "example.com/two:1") == 0);
	ocicache_image_free(img);
	CHECK(ocicache_image_remove(cache, "example.com/one:1", 0) ==
	      OCICACHE_ENOTFOUND);
	CHECK(strstr(ocicache_error_message(), "example.com/one:1") != NULL);
	ocicache_close(cache);
}

static void remove_of_one_of_two_tags_keeps_the_manifest(void)
{
	ocicache *cache = open_fresh();

	fake_image(cache, "example.com/app:1", "m1", ab, 2, 1000, NULL);
	fake_image(cache, "example.com/app:latest", "m1", ab, 2, 1000, NULL);
	CHECK(ocicache_image_remove(cache, "example.com/app", 0) == 0);
	CHECK(manifest_files(cache, "m1"));
	CHECK(layer_file(cache, "layer-a"));
	CHECK(ocicache_image_remove(cache, "example.com/app:1", 0) == 0);
	CHECK(!manifest_files(cache, "m1"));
	CHECK(!layer_file(cache, "layer-a"));
	ocicache_close(cache);
}

static void remove_refuses_an_image_a_sandbox_uses(void)
{
	ocicache *cache = open_fresh();

	fake_image(cache, "example.com/app:1", "m1", ab, 2, 1000, NULL);
	CHECK(ocicache_sandbox_add(cache, "sb-1", "example.com/app:1") == 0);
	CHECK(ocicache_image_remove(cache, "example.com/app:1", 0) ==
	      OCICACHE_EINUSE);
	CHECK(strstr(ocicache_error_message(), "sb-1") != NULL);
	CHECK(manifest_files(cache, "m1"));

	CHECK(ocicache_image_remove(cache, "example.com/app:1", 1) == 0);
	CHECK(!manifest_files(cache, "m1"));
	CHECK(!layer_file(cache, "layer-a"));
	CHECK(ocicache_sandbox_release(cache, "sb-1") == OCICACHE_ENOTFOUND);
	ocicache_close(cache);
}

static void released_sandbox_no_longer_pins(void)
{
	ocicache *cache = open_fresh();

	fake_image(cache, "example.com/app:1", "m1", ab, 2, 1000, NULL);
	CHECK(ocicache_sandbox_add(cache, "sb-1", "example.com/nope:1") ==
	      OCICACHE_ENOTFOUND);
	CHECK(ocicache_sandbox_add(cache, "sb-1", "example.com/app:1") == 0);
	CHECK(ocicache_sandbox_release(cache, "sb-1") == 0);
	CHECK(ocicache_image_remove(cache, "example.com/app:1", 0) == 0);
	ocicache_close(cache);
}

static void sandbox_add_counts_as_a_use(void)
{
	ocicache *cache = open_fresh();
	ocicache_image *img = NULL;
	int64_t before = cache_now_ms();

	fake_image(cache, "example.com/app:1", "m1", ab, 2, 1000, NULL);
	CHECK(ocicache_sandbox_add(cache, "sb-1", "example.com/app:1") == 0);
	CHECK(ocicache_image_get(&img, cache, "example.com/app:1") == 0);
	if (img) {
		CHECK(img->created_at == 1000);
		CHECK(img->last_used_at >= before);
	}
	ocicache_image_free(img);
	ocicache_close(cache);
}

static void snapshot_pin_keeps_the_data(void)
{
	struct ocicache_prune_report r;
	ocicache *cache = open_fresh();
	char m[DIGEST_STR_LEN], snap[DIGEST_STR_LEN];

	setenv("OCICACHE_PRUNE_GRACE_SECONDS", "0", 1);
	fake_image(cache, "example.com/app:1", "m1", ab, 2, 1000, NULL);
	digest_of(m, "m1");
	digest_of(snap, "snapshot-1");
	CHECK(db_snapshot_add(cache->db, snap, m, 1000) == 0);
	CHECK(ocicache_image_remove(cache, "example.com/app:1", 0) == 0);
	CHECK(manifest_files(cache, "m1"));
	CHECK(layer_file(cache, "layer-b"));

	CHECK(ocicache_prune(&r, cache, NULL) == 0);
	CHECK(r.manifests_removed == 0 && r.layers_removed == 0);
	CHECK(manifest_files(cache, "m1"));
	CHECK(layer_file(cache, "layer-b"));

	CHECK(db_snapshot_remove(cache->db, snap) == 0);
	CHECK(ocicache_prune(&r, cache, NULL) == 0);
	CHECK(r.manifests_removed == 1 && r.layers_removed == 2);
	CHECK(!manifest_files(cache, "m1"));
	CHECK(!layer_file(cache, "layer-b"));
	unsetenv("OCICACHE_PRUNE_GRACE_SECONDS");
	ocicache_close(cache);
}

static void moved_tag_keeps_the_old_manifest_until_prune(void)
{
	struct ocicache_prune_report r;
	ocicache *cache = open_fresh();
	ocicache_image *img = NULL;
	int64_t now = cache_now_ms();
	char m2[DIGEST_STR_LEN];

	setenv("OCICACHE_PRUNE_GRACE_SECONDS", "0", 1);
	fake_image(cache, "example.com/app:1", "m1", ab, 2, now - 5000, NULL);
	fake_image(cache, "example.com/app:1", "m2", ac, 2, now, NULL);
	digest_of(m2, "m2");
	CHECK(ocicache_image_get(&img, cache, "example.com/app:1") == 0);
	if (img) {
		CHECK_STR(img->manifest_digest, m2);
		CHECK(img->created_at == now - 5000);
		CHECK(img->last_used_at == now);
	}
	ocicache_image_free(img);
	CHECK(manifest_files(cache, "m1"));
	CHECK(layer_file(cache, "layer-b"));

	/* Only references older than an hour: the moved tag's old manifest
	 * goes anyway, since nothing points at it. */
	struct ocicache_prune_options opts;

	ocicache_prune_options_init(&opts);
	opts.older_than_ms = 3600 * 1000;
	CHECK(ocicache_prune(&r, cache, &opts) == 0);
	CHECK(r.image_refs_removed == 0);
	CHECK(r.manifests_removed == 1);
	CHECK(r.layers_removed == 1);
	CHECK(r.fsmeta_removed == 1 && r.vmdk_removed == 1);
	CHECK(!manifest_files(cache, "m1"));
	CHECK(!layer_file(cache, "layer-b"));
	CHECK(layer_file(cache, "layer-a"));
	CHECK(manifest_files(cache, "m2"));
	unsetenv("OCICACHE_PRUNE_GRACE_SECONDS");
	ocicache_close(cache);
}

static void prune_removes_unpinned_images_and_stray_files(void)
{
	struct ocicache_prune_options opts;
	struct ocicache_prune_report r;
	ocicache *cache = open_fresh();
	char stray_layer[512], part[512], other[512];
	ocicache_image **list = NULL;
	size_t count = 0;

	setenv("OCICACHE_PRUNE_GRACE_SECONDS", "0", 1);
	fake_image(cache, "example.com/one:1", "m1", ab, 2, 1000, NULL);
	fake_image(cache, "example.com/pinned:1", "m2", d1, 1, 1000, NULL);
	CHECK(ocicache_sandbox_add(cache, "sb", "example.com/pinned:1") == 0);
	snprintf(stray_layer, sizeof(stray_layer),
		 "%s/layers/sha256/%064d.erofs", root_dir, 7);
	snprintf(part, sizeof(part), "%s/tmp/abc.part", root_dir);
	snprintf(other, sizeof(other), "%s/vmdk/sha256/junk", root_dir);
	write_file(stray_layer, 4096);
	write_file(part, 100);
	write_file(other, 10);

	ocicache_prune_options_init(&opts);
	opts.dry_run = 1;
	CHECK(ocicache_prune(&r, cache, &opts) == 0);
	CHECK(r.image_refs_removed == 1 && r.manifests_removed == 1);
	CHECK(r.layers_removed == 3); /* a, b and the stray one */
	CHECK(r.fsmeta_removed == 1 && r.vmdk_removed == 1);
	CHECK(r.bytes_reclaimed == 4096 + 8192 + 8192 + 512 + 4096 + 100 + 10);
	CHECK(manifest_files(cache, "m1") && exists(stray_layer));
	CHECK(exists(part));

	CHECK(ocicache_prune(&r, cache, NULL) == 0);
	CHECK(r.image_refs_removed == 1 && r.manifests_removed == 1);
	CHECK(r.layers_removed == 3);
	CHECK(r.bytes_reclaimed == 4096 + 8192 + 8192 + 512 + 4096 + 100 + 10);
	CHECK(!manifest_files(cache, "m1") && !exists(stray_layer));
	CHECK(!exists(part) && !exists(other));
	CHECK(manifest_files(cache, "m2") && layer_file(cache, "layer-d"));
	CHECK(ocicache_image_list(&list, &count, cache) == 0);
	CHECK(count == 1);
	ocicache_image_list_free(list, count);

	CHECK(ocicache_prune(&r, cache, NULL) == 0);
	CHECK(r.image_refs_removed == 0 && r.bytes_reclaimed == 0);
	unsetenv("OCICACHE_PRUNE_GRACE_SECONDS");
	ocicache_close(cache);
}

static void prune_leaves_young_stray_files_alone(void)
{
	struct ocicache_prune_report r;
	ocicache *cache = open_fresh();
	char part[512];

	unsetenv("OCICACHE_PRUNE_GRACE_SECONDS");
	snprintf(part, sizeof(part), "%s/tmp/abc.part", root_dir);
	write_file(part, 100);
	CHECK(ocicache_prune(&r, cache, NULL) == 0);
	CHECK(exists(part));
	CHECK(r.bytes_reclaimed == 0);
	ocicache_close(cache);
}

static void prune_keep_removes_least_recently_used_first(void)
{
	static const char *const e1[] = {"layer-e"};
	static const char *const f1[] = {"layer-f"};
	struct ocicache_prune_options opts;
	struct ocicache_prune_report r;
	ocicache *cache = open_fresh();
	ocicache_image *img = NULL;

	setenv("OCICACHE_PRUNE_GRACE_SECONDS", "0", 1);
	fake_image(cache, "example.com/old:1", "m1", d1, 1, 1000, NULL);
	fake_image(cache, "example.com/mid:1", "m2", e1, 1, 2000, NULL);
	fake_image(cache, "example.com/new:1", "m3", f1, 1, 3000, NULL);
	ocicache_prune_options_init(&opts);
	opts.keep_bytes = 2 * (4096 + 8192 + 512);
	CHECK(ocicache_prune(&r, cache, &opts) == 0);
	CHECK(r.image_refs_removed == 1);
	CHECK(ocicache_image_get(&img, cache, "example.com/old:1") ==
	      OCICACHE_ENOTFOUND);
	CHECK(ocicache_image_get(&img, cache, "example.com/mid:1") == 0);
	ocicache_image_free(img);
	CHECK(!layer_file(cache, "layer-d") && layer_file(cache, "layer-e"));
	unsetenv("OCICACHE_PRUNE_GRACE_SECONDS");
	ocicache_close(cache);
}

static void remove_leaves_a_layer_a_pull_holds(void)
{
	struct ocicache_prune_report r;
	ocicache *cache = open_fresh();
	char diff[DIGEST_STR_LEN];
	int fd = -1;

	setenv("OCICACHE_PRUNE_GRACE_SECONDS", "0", 1);
	fake_image(cache, "example.com/app:1", "m1", ab, 2, 1000, NULL);
	digest_of(diff, "layer-b");
	CHECK(store_lock(&fd, &cache->store, STORE_LOCK_LAYER, diff,
			 STORE_LOCK_SHARED) == 0);
	CHECK(ocicache_image_remove(cache, "example.com/app:1", 0) == 0);
	CHECK(layer_file(cache, "layer-b"));
	CHECK(!layer_file(cache, "layer-a"));

	/* Once the holder is gone the file is a stray for prune. */
	store_unlock(fd);
	CHECK(ocicache_prune(&r, cache, NULL) == 0);
	CHECK(!layer_file(cache, "layer-b"));
	CHECK(r.layers_removed == 1);
	unsetenv("OCICACHE_PRUNE_GRACE_SECONDS");
	ocicache_close(cache);
}

static void implied_list_survives_newlines_and_backslashes(void)
{
	char *const dirs[] = {"usr/share", "odd\nname", "back\\slash", ""};
	char **back = NULL, *text = NULL;
	size_t count = 0;

	CHECK(store_implied_encode(&text, dirs, 4) == 0);
	CHECK_STR(text, "usr/share\nodd\\nname\nback\\\\slash\n\n");
	CHECK(store_implied_decode(&back, &count, text) == 0);
	CHECK(count == 4);
	if (count == 4) {
		CHECK_STR(back[0], "usr/share");
		CHECK_STR(back[1], "odd\nname");
		CHECK_STR(back[2], "back\\slash");
		CHECK_STR(back[3], "");
	}
	store_implied_free(back, count);
	free(text);
}

static void a_newer_schema_is_refused(void)
{
	char path[512];
	ocicache *cache = open_fresh();
	struct db *db = NULL;
	sqlite3 *conn = NULL;

	ocicache_close(cache);
	snprintf(path, sizeof(path), "%s/cache.db", root_dir);
	CHECK(sqlite3_open(path, &conn) == SQLITE_OK);
	CHECK(sqlite3_exec(conn, "PRAGMA user_version = 99", NULL, NULL,
			   NULL) == SQLITE_OK);
	sqlite3_close(conn);
	CHECK(db_open(&db, path) == OCICACHE_EUNSUPPORTED);
	CHECK(strstr(ocicache_error_message(), "99") != NULL);
	db_close(db);
}

int main(void)
{
	if (!mkdtemp(root_dir)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(open_creates_the_layout);
	RUN(open_uses_ocicache_root_by_default);
	RUN(get_normalises_the_reference);
	RUN(get_by_digest_finds_a_tagged_image);
	RUN(get_of_an_image_with_missing_files_is_not_found);
	RUN(list_is_newest_first);
	RUN(inspect_gives_config_and_layers_bottom_first);
	RUN(remove_keeps_layers_another_image_uses);
	RUN(remove_of_one_of_two_tags_keeps_the_manifest);
	RUN(remove_refuses_an_image_a_sandbox_uses);
	RUN(released_sandbox_no_longer_pins);
	RUN(sandbox_add_counts_as_a_use);
	RUN(snapshot_pin_keeps_the_data);
	RUN(moved_tag_keeps_the_old_manifest_until_prune);
	RUN(prune_removes_unpinned_images_and_stray_files);
	RUN(prune_leaves_young_stray_files_alone);
	RUN(prune_keep_removes_least_recently_used_first);
	RUN(remove_leaves_a_layer_a_pull_holds);
	RUN(implied_list_survives_newlines_and_backslashes);
	RUN(a_newer_schema_is_refused);

	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", root_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", root_dir);
	return check_done();
}
