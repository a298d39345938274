/*
 * A small driver for the layer writer, used by the integration tests:
 *
 *   convert_tool [--max-bytes N] [--max-entries N] LAYER OUT.erofs
 *
 * LAYER is a tar, plain or gzip or zstd ("-" reads stdin). On success it
 * prints the diff_id on stdout, and on stderr a line "blocks N entries N"
 * and one line "implied PATH" per implied directory ("implied /" for the
 * root). Exit status: 0 success, 2 usage, 6 malformed input, 1 otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "convert/layer.h"

static void print_log(int level, const char *message, void *userdata)
{
	(void)userdata;
	fprintf(stderr, "%s: %s\n",
		level <= OCICACHE_LOG_WARN ? "warning" : "info", message);
}

static int usage(void)
{
	fprintf(stderr, "usage: convert_tool [--max-bytes N] [--max-entries N] "
			"LAYER OUT.erofs\n");
	return 2;
}

/* A positive decimal count, all of `text`. */
static int parse_count(uint64_t *out, const char *text)
{
	char *end;

	errno = 0;
	*out = strtoull(text, &end, 10);
	if (errno || end == text || *end || text[0] == '-' || !*out)
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	struct erofs_layer_options opts = {0};
	struct erofs_layer_result res;
	int argi = 1;
	int fd, err;

	while (argi + 1 < argc && strncmp(argv[argi], "--", 2) == 0) {
		uint64_t value;

		if (parse_count(&value, argv[argi + 1]))
			return usage();
		if (strcmp(argv[argi], "--max-bytes") == 0)
			opts.max_uncompressed_bytes = value;
		else if (strcmp(argv[argi], "--max-entries") == 0)
			opts.max_entries = value;
		else
			return usage();
		argi += 2;
	}
	if (argc - argi != 2)
		return usage();

	ocicache_set_log(print_log, OCICACHE_LOG_WARN, NULL);
	fd = strcmp(argv[argi], "-") == 0 ? 0 : open(argv[argi], O_RDONLY);
	if (fd < 0) {
		perror(argv[argi]);
		return 1;
	}
	err = erofs_layer_convert(&res, fd, DECOMPRESS_AUTO, argv[argi],
				  argv[argi + 1], &opts);
	if (fd)
		close(fd);
	if (err) {
		fprintf(stderr, "convert_tool: %s\n", oc_err_message());
		return err == OCICACHE_EFORMAT || err == OCICACHE_EDIGEST ? 6
									  : 1;
	}

	printf("%s\n", res.diff_id);
	fprintf(stderr, "blocks %llu entries %llu\n",
		(unsigned long long)res.blocks,
		(unsigned long long)res.entries);
	for (size_t i = 0; i < res.implied_count; i++)
		fprintf(stderr, "implied /%s\n", res.implied_dirs[i]);
	erofs_layer_result_free(&res);
	return 0;
}
