/*
 * A driver for the fsmeta integration test:
 *
 *   fsmeta_tool [--vmdk OUT.vmdk] OUT.erofs SEED_DIGEST LAYER[:IMPLIED] ...
 *
 * merges the layer images (bottom first) into OUT.erofs. IMPLIED names a
 * file listing the layer's implied directories, one path a line. With
 * --vmdk it also writes the descriptor joining OUT.erofs and the layers;
 * extent paths are relative when a file sits in the descriptor's folder,
 * absolute otherwise. Exit status 0 on success, 1 on failure (the message
 * on stderr), 2 on a usage error.
 */
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/file.h"
#include "convert/erofs_reader.h"
#include "convert/fsmeta.h"
#include "vmdk/vmdk.h"

struct layer_arg {
	char *path;
	char **implied;
	size_t implied_count;
	struct buf list;
};

static int load_implied(struct layer_arg *l, const char *list_path)
{
	char *line, *save = NULL;
	int rc = file_read_all(&l->list, list_path, 64 << 20);

	if (rc < 0)
		return rc;
	if (!l->list.data)
		return 0;
	for (line = strtok_r(l->list.data, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char **n =
		    realloc(l->implied, (l->implied_count + 1) * sizeof(*n));

		if (!n)
			return OCICACHE_ENOMEM;
		l->implied = n;
		l->implied[l->implied_count++] = line;
	}
	return 0;
}

/* The path to write into the descriptor for `file`. */
static char *extent_path(const char *file, const char *vmdk_dir)
{
	char real[PATH_MAX], copy[PATH_MAX];

	if (!realpath(file, real))
		return NULL;
	snprintf(copy, sizeof(copy), "%s", real);
	if (!strcmp(dirname(copy), vmdk_dir))
		return strdup(strrchr(real, '/') + 1);
	return strdup(real);
}

static int layer_blocks(uint64_t *blocks, const char *path)
{
	struct erofs_image *img;
	int rc = erofs_image_open(&img, path);

	if (rc < 0)
		return rc;
	*blocks = le32toh(erofs_image_super(img)->blocks);
	erofs_image_close(img);
	return 0;
}

static int write_vmdk(const char *vmdk, const char *fsmeta,
		      uint64_t fsmeta_blocks, struct layer_arg *layers,
		      size_t count, const char *seed)
{
	struct vmdk_extent *ext = calloc(count + 1, sizeof(*ext));
	char dir[PATH_MAX], copy[PATH_MAX];
	int rc = OCICACHE_ENOMEM;

	snprintf(copy, sizeof(copy), "%s", vmdk);
	if (!ext || !realpath(dirname(copy), dir))
		goto out;
	ext[0].path = extent_path(fsmeta, dir);
	ext[0].size_bytes = fsmeta_blocks * 4096;
	for (size_t i = 0; i < count; i++) {
		uint64_t blocks;

		rc = layer_blocks(&blocks, layers[i].path);
		if (rc < 0)
			goto out;
		ext[i + 1].path = extent_path(layers[i].path, dir);
		ext[i + 1].size_bytes = blocks * 4096;
	}
	rc = vmdk_write(vmdk, ext, count + 1, seed);
out:
	for (size_t i = 0; ext && i <= count; i++)
		free((char *)ext[i].path);
	free(ext);
	return rc;
}

int main(int argc, char **argv)
{
	const char *vmdk = NULL, *out, *seed;
	struct layer_arg *args;
	struct fsmeta_layer *layers;
	uint64_t blocks = 0;
	size_t count;
	int rc = 0;

	if (argc > 2 && !strcmp(argv[1], "--vmdk")) {
		vmdk = argv[2];
		argc -= 2;
		argv += 2;
	}
	if (argc < 4) {
		fprintf(stderr, "usage: fsmeta_tool [--vmdk OUT.vmdk] "
				"OUT.erofs SEED_DIGEST LAYER[:IMPLIED]...\n");
		return 2;
	}
	out = argv[1];
	seed = argv[2];
	count = (size_t)argc - 3;
	args = calloc(count, sizeof(*args));
	layers = calloc(count, sizeof(*layers));
	if (!args || !layers)
		return 1;
	for (size_t i = 0; i < count && rc == 0; i++) {
		char *colon;

		args[i].path = argv[3 + i];
		colon = strchr(args[i].path, ':');
		if (colon) {
			*colon = '\0';
			rc = load_implied(&args[i], colon + 1);
		}
		layers[i].path = args[i].path;
		layers[i].tag = strrchr(args[i].path, '/')
				    ? strrchr(args[i].path, '/') + 1
				    : args[i].path;
		if (strlen(layers[i].tag) > 64)
			layers[i].tag += strlen(layers[i].tag) - 64;
		layers[i].implied_dirs = (const char *const *)args[i].implied;
		layers[i].implied_count = args[i].implied_count;
	}
	if (rc == 0)
		rc = fsmeta_write(&blocks, out, layers, count, seed);
	if (rc == 0 && vmdk)
		rc = write_vmdk(vmdk, out, blocks, args, count, seed);
	if (rc < 0)
		fprintf(stderr, "fsmeta_tool: %s\n", oc_err_message());
	else
		printf("%llu\n", (unsigned long long)blocks);
	for (size_t i = 0; i < count; i++) {
		free(args[i].implied);
		buf_free(&args[i].list);
	}
	free(args);
	free(layers);
	return rc < 0 ? 1 : 0;
}
