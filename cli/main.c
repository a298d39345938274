/*
 * The ocicache command: a thin layer over the public API. Results go to
 * stdout; logs, progress and errors go to stderr, an error as one line
 * "ocicache: <message>".
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ocicache/ocicache.h>

enum exit_code {
	EXIT_OK = 0,
	EXIT_FAILURE_OTHER = 1,
	EXIT_USAGE = 2,
	EXIT_NOT_FOUND = 3,
	EXIT_IN_USE = 4,
	EXIT_NETWORK = 5,
	EXIT_VERIFY = 6
};

struct cli {
	const char *root;
	int verbosity; /* OCICACHE_LOG_* level shown */
	ocicache *cache;
};

static const char usage_main[] =
    "usage: ocicache [--root DIR] [-v|-q] COMMAND [ARGS...]\n"
    "\n"
    "Turn OCI image references into microVM root disks and keep them "
    "cached.\n"
    "\n"
    "Commands:\n"
    "  pull [--platform OS/ARCH[/VARIANT]] [--plain-http] [--jobs N] "
    "[--json] REF...\n"
    "  images [--json]\n"
    "  inspect [--json] REF\n"
    "  rm [--force] REF...\n"
    "  prune [--dry-run] [--older-than DUR] [--keep SIZE] [--json]\n"
    "  convert LAYER.tar[.gz|.zst] OUT.erofs\n"
    "  sandbox add ID REF\n"
    "  sandboxes [--json]\n"
    "  release ID\n"
    "\n"
    "Options:\n"
    "  --root DIR  the cache (default: $OCICACHE_ROOT, else\n"
    "              $XDG_CACHE_HOME/ocicache, else ~/.cache/ocicache)\n"
    "  -v          more log lines on stderr (-vv: debug)\n"
    "  -q          errors only on stderr\n"
    "  -h, --help  this text; COMMAND --help for a command's\n"
    "  --version   print the version\n"
    "\n"
    "Exit codes: 0 success, 1 other failure, 2 usage error, 3 not found,\n"
    "4 in use, 5 network or registry failure, 6 verification failure.\n";

static const char usage_pull[] =
    "usage: ocicache pull [--platform OS/ARCH[/VARIANT]] [--plain-http] "
    "[--jobs N]\n"
    "                     [--json] REF...\n"
    "\n"
    "Ask the registry what each REF points to now, fetch and convert the\n"
    "layers the cache lacks, and print REF@sha256:DIGEST per image (REF\n"
    "normalised).\n"
    "\n"
    "  --platform P  the platform to choose from an index (default: the "
    "host's)\n"
    "  --plain-http  talk http:// to the registry\n"
    "  --jobs N      layers fetched at once (1-64, default 4)\n"
    "  --json        print a JSON array of image handles, one per REF\n"
    "                (null for a REF that failed)\n";

static const char usage_images[] =
    "usage: ocicache images [--json]\n"
    "\n"
    "List the cached images, newest first.\n"
    "\n"
    "  --json  print a JSON array of image handles\n";

static const char usage_inspect[] =
    "usage: ocicache inspect [--json] REF\n"
    "\n"
    "Show a cached image: its handle, its OCI config and its layers\n"
    "bottom to top.\n"
    "\n"
    "  --json  print {\"handle\": {...}, \"config\": {...} | null, "
    "\"layers\": [...]}\n";

static const char usage_rm[] =
    "usage: ocicache rm [--force] REF...\n"
    "\n"
    "Remove cached images, with the manifests and layers nothing else "
    "uses.\n"
    "\n"
    "  --force  remove an image a sandbox uses, and those sandbox "
    "references\n";

static const char usage_prune[] =
    "usage: ocicache prune [--dry-run] [--older-than DUR] [--keep SIZE] "
    "[--json]\n"
    "\n"
    "Remove every image, manifest and layer no sandbox or snapshot pins,\n"
    "and stale files the index does not know.\n"
    "\n"
    "  --dry-run         report what would go, delete nothing\n"
    "  --older-than DUR  only images last used longer ago than DUR\n"
    "                    (30s, 10m, 2h, 7d; combined: 1h30m)\n"
    "  --keep SIZE       least recently used first, until the cache is at\n"
    "                    most SIZE (1024, 500K, 500M, 2G, 1T)\n"
    "  --json            print the report as a JSON object\n";

static const char usage_convert[] =
    "usage: ocicache convert LAYER.tar[.gz|.zst] OUT.erofs\n"
    "\n"
    "Convert one layer tar (plain, gzip or zstd) into an EROFS image and\n"
    "print its diff_id.\n";

static const char usage_sandbox[] =
    "usage: ocicache sandbox add ID REF\n"
    "\n"
    "Record that sandbox ID uses the cached image REF, which keeps rm and\n"
    "prune away from it until `ocicache release ID`.\n";

static const char usage_sandboxes[] =
    "usage: ocicache sandboxes [--json]\n"
    "\n"
    "List the sandboxes that pin cached images, newest first: plain, a\n"
    "table; --json, an array of {sandbox_id, reference, manifest_digest,\n"
    "created_at}.\n";

static const char usage_release[] =
    "usage: ocicache release ID\n"
    "\n"
    "Drop sandbox ID's reference to its image.\n";

static void fail_line(const char *fmt, ...)
{
	va_list ap;

	fputs("ocicache: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int usage_error(const char *command, const char *fmt, ...)
{
	char message[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	fail_line("%s (see 'ocicache %s%s--help')", message,
		  command ? command : "", command ? " " : "");
	return EXIT_USAGE;
}

static int exit_code_of(int rc)
{
	switch (rc) {
	case OCICACHE_OK:
		return EXIT_OK;
	case OCICACHE_EINVAL:
		return EXIT_USAGE;
	case OCICACHE_ENOTFOUND:
		return EXIT_NOT_FOUND;
	case OCICACHE_EINUSE:
		return EXIT_IN_USE;
	case OCICACHE_ENETWORK:
	case OCICACHE_EREGISTRY:
		return EXIT_NETWORK;
	case OCICACHE_EDIGEST:
	case OCICACHE_EFORMAT:
		return EXIT_VERIFY;
	default:
		return EXIT_FAILURE_OTHER;
	}
}

/* Report a library failure and return its exit code. */
static int api_failed(int rc)
{
	fail_line("%s", ocicache_error_message());
	return exit_code_of(rc);
}

static void log_line(int level, const char *message, void *userdata)
{
	static const char *const names[] = {"error", "warning", "info",
					    "debug"};

	(void)userdata;
	if (level < 0 || level > OCICACHE_LOG_DEBUG)
		level = OCICACHE_LOG_DEBUG;
	fprintf(stderr, "ocicache: %s: %s\n", names[level], message);
}

static int open_cache(struct cli *cli)
{
	int rc = ocicache_open(&cli->cache, cli->root);

	return rc ? api_failed(rc) : EXIT_OK;
}

static int print_json(json_t *value)
{
	int rc;

	if (!value) {
		fail_line("out of memory");
		return EXIT_FAILURE_OTHER;
	}
	rc = json_dumpf(value, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(value);
	if (rc || fputc('\n', stdout) == EOF) {
		fail_line("write JSON to stdout failed");
		return EXIT_FAILURE_OTHER;
	}
	return EXIT_OK;
}

static json_t *json_str(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *json_size(int64_t v)
{
	return v >= 0 ? json_integer(v) : json_null();
}

static json_t *json_strv(char *const *v)
{
	json_t *arr;

	if (!v)
		return json_null();
	arr = json_array();
	for (; arr && *v; v++)
		json_array_append_new(arr, json_string(*v));
	return arr;
}

static json_t *handle_json(const ocicache_image *img)
{
	json_t *o = json_object();

	if (!o)
		return NULL;
	json_object_set_new(o, "reference", json_str(img->reference));
	json_object_set_new(o, "manifest_digest",
			    json_str(img->manifest_digest));
	json_object_set_new(o, "index_digest", json_str(img->index_digest));
	json_object_set_new(o, "architecture", json_str(img->architecture));
	json_object_set_new(o, "os", json_str(img->os));
	json_object_set_new(o, "variant", json_str(img->variant));
	json_object_set_new(o, "layer_count", json_integer(img->layer_count));
	json_object_set_new(o, "size_bytes", json_size(img->size_bytes));
	json_object_set_new(o, "created_at", json_size(img->created_at));
	json_object_set_new(o, "last_used_at", json_size(img->last_used_at));
	json_object_set_new(o, "fsmeta_path", json_str(img->fsmeta_path));
	json_object_set_new(o, "vmdk_path", json_str(img->vmdk_path));
	return o;
}

static json_t *config_json(const struct ocicache_config *c)
{
	json_t *o, *labels = NULL;

	if (!c)
		return json_null();
	o = json_object();
	if (!o)
		return NULL;
	if (c->labels_json)
		labels = json_loads(c->labels_json, 0, NULL);
	json_object_set_new(o, "digest", json_str(c->digest));
	json_object_set_new(o, "env",
			    c->env ? json_strv(c->env) : json_array());
	json_object_set_new(o, "cmd", json_strv(c->cmd));
	json_object_set_new(o, "entrypoint", json_strv(c->entrypoint));
	json_object_set_new(o, "working_dir", json_str(c->working_dir));
	json_object_set_new(o, "user", json_str(c->user));
	json_object_set_new(o, "labels", labels ? labels : json_null());
	json_object_set_new(o, "stop_signal", json_str(c->stop_signal));
	return o;
}

static json_t *layer_json(const struct ocicache_layer *l)
{
	json_t *o = json_object();

	if (!o)
		return NULL;
	json_object_set_new(o, "diff_id", json_str(l->diff_id));
	json_object_set_new(o, "blob_digest", json_str(l->blob_digest));
	json_object_set_new(o, "media_type", json_str(l->media_type));
	json_object_set_new(o, "compressed_size_bytes",
			    json_size(l->compressed_size_bytes));
	json_object_set_new(o, "erofs_size_bytes",
			    json_size(l->erofs_size_bytes));
	json_object_set_new(o, "position", json_integer(l->position));
	json_object_set_new(o, "path", json_str(l->path));
	return o;
}

/* "12.3 MiB" */
static const char *human_size(char *out, size_t len, int64_t bytes)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)bytes;
	int u = 0;

	if (bytes < 0)
		return "-";
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(out, len, "%lld B", (long long)bytes);
	else
		snprintf(out, len, "%.1f %s", v, units[u]);
	return out;
}

/* "2024-05-01T12:00:00Z" */
static const char *utc_time(char *out, size_t len, int64_t ms)
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;

	if (ms < 0 || !gmtime_r(&secs, &tm))
		return "-";
	strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return out;
}

/* The option getopt refused: a short one from optopt, a long one as
 * written. */
static const char *bad_option(char **argv, int next)
{
	static char text[3];

	if (optopt) {
		text[0] = '-';
		text[1] = (char)optopt;
		return text;
	}
	return argv[next - 1];
}

/* Parse a command's options (they may come after its arguments), handing
 * each to `take`. Returns 0, -1 after printing --help, or an exit code. */
static int parse_options(int argc, char **argv, const struct option *longopts,
			 const char *usage,
			 int (*take)(int, const char *, void *), void *ctx)
{
	int c, rc;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		if (c == 'h') {
			fputs(usage, stdout);
			return -1;
		}
		if (c == ':')
			return usage_error(argv[0], "%s: %s needs a value",
					   argv[0], argv[optind - 1]);
		if (c == '?')
			return usage_error(argv[0], "%s: unknown option %s",
					   argv[0], bad_option(argv, optind));

		rc = take(c, optarg, ctx);
		if (rc)
			return rc;
	}
	return 0;
}

struct pull_args {
	struct ocicache_pull_options opts;
	bool json;
	bool progress;
};

static int pull_take(int c, const char *arg, void *ctx)
{
	struct pull_args *a = ctx;
	char *end;
	long jobs;

	switch (c) {
	case 'p':
		a->opts.platform = arg;
		break;
	case 'H':
		a->opts.plain_http = 1;
		break;
	case 'j':
		errno = 0;
		jobs = strtol(arg, &end, 10);
		if (errno || *end || end == arg || jobs < 1 || jobs > 64)
			return usage_error("pull",
					   "pull: --jobs %s: want a number "
					   "from 1 to 64",
					   arg);
		a->opts.jobs = (int)jobs;
		break;
	case 'J':
		a->json = true;
		break;
	}
	return 0;
}

static void pull_progress(const struct ocicache_progress *ev, void *userdata)
{
	(void)userdata;
	switch (ev->kind) {
	case OCICACHE_PROGRESS_RESOLVED:
		fprintf(stderr, "%s: manifest %s, %u layers\n", ev->reference,
			ev->digest, ev->layer_count);
		break;
	case OCICACHE_PROGRESS_LAYER_CACHED:
	case OCICACHE_PROGRESS_LAYER_DONE:
		fprintf(stderr, "%s: layer %u/%u %s %s\n", ev->reference,
			ev->layer_index + 1, ev->layer_count, ev->digest,
			ev->kind == OCICACHE_PROGRESS_LAYER_DONE ? "done"
								 : "cached");
		break;
	case OCICACHE_PROGRESS_DONE:
		fprintf(stderr, "%s: ready\n", ev->reference);
		break;
	}
}

static int cmd_pull(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"platform", required_argument, NULL, 'p'},
	    {"plain-http", no_argument, NULL, 'H'},
	    {"jobs", required_argument, NULL, 'j'},
	    {"json", no_argument, NULL, 'J'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	struct pull_args a = {0};
	json_t *out = NULL;
	int rc, status = EXIT_OK, i;

	ocicache_pull_options_init(&a.opts);
	rc = parse_options(argc, argv, longopts, usage_pull, pull_take, &a);
	if (rc)
		return rc < 0 ? EXIT_OK : rc;
	if (optind >= argc)
		return usage_error("pull", "pull: no image reference given");
	/* With -v the log lines already tell the progress. */
	if (cli->verbosity == OCICACHE_LOG_WARN && isatty(STDERR_FILENO))
		a.opts.on_progress = pull_progress;
	rc = open_cache(cli);
	if (rc)
		return rc;
	if (a.json && !(out = json_array()))
		return print_json(NULL);

	for (i = optind; i < argc; i++) {
		ocicache_image *img = NULL;

		rc = ocicache_pull(&img, cli->cache, argv[i], &a.opts);
		if (rc) {
			int code = api_failed(rc);

			if (status == EXIT_OK)
				status = code;
		} else if (!a.json) {
			printf("%s@%s\n", img->reference, img->manifest_digest);
			fflush(stdout);
		}
		if (a.json)
			json_array_append_new(out, img ? handle_json(img)
						       : json_null());
		ocicache_image_free(img);
	}
	if (a.json && (rc = print_json(out)) != EXIT_OK && status == EXIT_OK)
		status = rc;
	return status;
}

static int json_flag_take(int c, const char *arg, void *ctx)
{
	(void)arg;
	if (c == 'J' || c == 'f' || c == 'n')
		*(bool *)ctx = true;
	return 0;
}

static void print_images_table(ocicache_image **images, size_t count)
{
	size_t i, width = strlen("REFERENCE");
	char size[32], created[32];

	for (i = 0; i < count; i++)
		if (strlen(images[i]->reference) > width)
			width = strlen(images[i]->reference);
	printf("%-*s  %-12s  %6s  %10s  %s\n", (int)width, "REFERENCE",
	       "DIGEST", "LAYERS", "SIZE", "CREATED");
	for (i = 0; i < count; i++) {
		const ocicache_image *img = images[i];
		const char *hex = img->manifest_digest;

		if (hex && strncmp(hex, "sha256:", 7) == 0)
			hex += 7;
		printf("%-*s  %-12.12s  %6u  %10s  %s\n", (int)width,
		       img->reference, hex ? hex : "-", img->layer_count,
		       human_size(size, sizeof(size), img->size_bytes),
		       utc_time(created, sizeof(created), img->created_at));
	}
}

static int cmd_images(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"json", no_argument, NULL, 'J'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	ocicache_image **images = NULL;
	size_t count = 0, i;
	bool json = false;
	json_t *out;
	int rc;

	rc = parse_options(argc, argv, longopts, usage_images, json_flag_take,
			   &json);
	if (rc)
		return rc < 0 ? EXIT_OK : rc;
	if (optind < argc)
		return usage_error("images", "images: unexpected argument %s",
				   argv[optind]);
	rc = open_cache(cli);
	if (rc)
		return rc;
	rc = ocicache_image_list(&images, &count, cli->cache);
	if (rc)
		return api_failed(rc);
	if (!json) {
		print_images_table(images, count);
		ocicache_image_list_free(images, count);
		return EXIT_OK;
	}
	out = json_array();
	for (i = 0; out && i < count; i++)
		json_array_append_new(out, handle_json(images[i]));
	ocicache_image_list_free(images, count);
	return print_json(out);
}

static void print_strv(const char *label, char *const *v)
{
	json_t *arr = json_strv(v);
	char *text = arr ? json_dumps(arr, JSON_COMPACT) : NULL;

	printf("%-16s%s\n", label, text ? text : "-");
	free(text);
	json_decref(arr);
}

static void print_detail(const ocicache_image_detail *d)
{
	const ocicache_image *h = d->handle;
	const struct ocicache_config *c = d->config;
	char size[32], when[32];
	size_t i;

	printf("%-16s%s\n", "reference:", h->reference);
	printf("%-16s%s\n", "manifest:", h->manifest_digest);
	printf("%-16s%s\n", "index:", h->index_digest ? h->index_digest : "-");
	printf("%-16s%s/%s%s%s\n", "platform:", h->os ? h->os : "-",
	       h->architecture ? h->architecture : "-", h->variant ? "/" : "",
	       h->variant ? h->variant : "");
	printf("%-16s%s (%lld bytes)\n",
	       "size:", human_size(size, sizeof(size), h->size_bytes),
	       (long long)h->size_bytes);
	printf("%-16s%s\n",
	       "created:", utc_time(when, sizeof(when), h->created_at));
	printf("%-16s%s\n",
	       "last used:", utc_time(when, sizeof(when), h->last_used_at));
	printf("%-16s%s\n", "fsmeta:", h->fsmeta_path);
	printf("%-16s%s\n", "vmdk:", h->vmdk_path);
	if (c) {
		printf("%-16s%s\n", "config:", c->digest ? c->digest : "-");
		print_strv("entrypoint:", c->entrypoint);
		print_strv("cmd:", c->cmd);
		print_strv("env:", c->env);
		printf("%-16s%s\n",
		       "working dir:", c->working_dir ? c->working_dir : "-");
		printf("%-16s%s\n", "user:", c->user ? c->user : "-");
		printf("%-16s%s\n",
		       "labels:", c->labels_json ? c->labels_json : "-");
		printf("%-16s%s\n",
		       "stop signal:", c->stop_signal ? c->stop_signal : "-");
	} else {
		printf("%-16s%s\n", "config:", "-");
	}
	printf("layers (bottom first):\n");
	for (i = 0; i < d->layer_count; i++) {
		const struct ocicache_layer *l = &d->layers[i];

		printf("  %u  %s  %10s  %s\n", l->position, l->diff_id,
		       human_size(size, sizeof(size), l->erofs_size_bytes),
		       l->path ? l->path : "-");
	}
}

static int cmd_inspect(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"json", no_argument, NULL, 'J'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	ocicache_image_detail *d = NULL;
	json_t *out, *layers;
	bool json = false;
	size_t i;
	int rc;

	rc = parse_options(argc, argv, longopts, usage_inspect, json_flag_take,
			   &json);
	if (rc)
		return rc < 0 ? EXIT_OK : rc;
	if (argc - optind != 1)
		return usage_error("inspect",
				   "inspect: want exactly one reference");
	rc = open_cache(cli);
	if (rc)
		return rc;
	rc = ocicache_image_inspect(&d, cli->cache, argv[optind]);
	if (rc)
		return api_failed(rc);
	if (!json) {
		print_detail(d);
		ocicache_image_detail_free(d);
		return EXIT_OK;
	}
	out = json_object();
	layers = json_array();
	for (i = 0; layers && i < d->layer_count; i++)
		json_array_append_new(layers, layer_json(&d->layers[i]));
	if (out && layers) {
		json_object_set_new(out, "handle", handle_json(d->handle));
		json_object_set_new(out, "config", config_json(d->config));
		json_object_set_new(out, "layers", layers);
	} else {
		json_decref(out);
		json_decref(layers);
		out = NULL;
	}
	ocicache_image_detail_free(d);
	return print_json(out);
}

static int cmd_rm(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"force", no_argument, NULL, 'f'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	bool force = false;
	int rc, status = EXIT_OK, i;

	rc = parse_options(argc, argv, longopts, usage_rm, json_flag_take,
			   &force);
	if (rc)
		return rc < 0 ? EXIT_OK : rc;
	if (optind >= argc)
		return usage_error("rm", "rm: no image reference given");
	rc = open_cache(cli);
	if (rc)
		return rc;
	for (i = optind; i < argc; i++) {
		rc = ocicache_image_remove(cli->cache, argv[i], force);
		if (rc) {
			int code = api_failed(rc);

			if (status == EXIT_OK)
				status = code;
		}
	}
	return status;
}

/* "30s", "10m", "2h", "7d", "1h30m", "90" (seconds) into milliseconds. */
static int parse_duration(int64_t *out, const char *text)
{
	const char *p = text;
	int64_t total = 0;

	if (!*p)
		return -1;
	while (*p) {
		char *end;
		long long n;
		int64_t unit;

		errno = 0;
		n = strtoll(p, &end, 10);
		if (errno || end == p || n < 0)
			return -1;
		switch (*end) {
		case 's':
		case '\0':
			unit = 1000;
			break;
		case 'm':
			unit = 60 * 1000;
			break;
		case 'h':
			unit = 3600 * 1000;
			break;
		case 'd':
			unit = 86400 * 1000;
			break;
		case 'w':
			unit = 7 * 86400 * 1000LL;
			break;
		default:
			return -1;
		}
		if (n > (INT64_MAX - total) / unit)
			return -1;
		total += n * unit;
		p = *end ? end + 1 : end;
	}
	*out = total;
	return 0;
}

/* "1024", "500K", "500M", "2G", "1.5T", "2GiB" (powers of 1024). */
static int parse_size(int64_t *out, const char *text)
{
	static const char units[] = "KMGTP";
	const char *u;
	double v, mult = 1;
	char *end;

	errno = 0;
	v = strtod(text, &end);
	if (errno || end == text || v < 0 || !isfinite(v))
		return -1;
	if (*end) {
		u = strchr(units, *end & ~0x20);
		if (!u || !*u)
			return -1;
		mult = pow(1024, (double)(u - units + 1));
		end++;
		if (*end == 'i')
			end++;
		if (*end == 'B' || *end == 'b')
			end++;
		if (*end)
			return -1;
	}
	v *= mult;
	if (v >= 9.2e18)
		return -1;
	*out = (int64_t)v;
	return 0;
}

struct prune_args {
	struct ocicache_prune_options opts;
	bool json;
};

static int prune_take(int c, const char *arg, void *ctx)
{
	struct prune_args *a = ctx;

	switch (c) {
	case 'n':
		a->opts.dry_run = 1;
		break;
	case 'J':
		a->json = true;
		break;
	case 'o':
		if (parse_duration(&a->opts.older_than_ms, arg))
			return usage_error("prune",
					   "prune: --older-than %s: want a "
					   "duration like 30s, 10m, 2h or 7d",
					   arg);
		break;
	case 'k':
		if (parse_size(&a->opts.keep_bytes, arg))
			return usage_error("prune",
					   "prune: --keep %s: want a size "
					   "like 1024, 500M or 2G",
					   arg);
		break;
	}
	return 0;
}

static int cmd_prune(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"dry-run", no_argument, NULL, 'n'},
	    {"older-than", required_argument, NULL, 'o'},
	    {"keep", required_argument, NULL, 'k'},
	    {"json", no_argument, NULL, 'J'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	struct ocicache_prune_report r;
	struct prune_args a = {0};
	char size[32];
	json_t *out;
	int rc;

	ocicache_prune_options_init(&a.opts);
	rc = parse_options(argc, argv, longopts, usage_prune, prune_take, &a);
	if (rc)
		return rc < 0 ? EXIT_OK : rc;
	if (optind < argc)
		return usage_error("prune", "prune: unexpected argument %s",
				   argv[optind]);
	rc = open_cache(cli);
	if (rc)
		return rc;
	rc = ocicache_prune(&r, cli->cache, &a.opts);
	if (rc)
		return api_failed(rc);
	if (!a.json) {
		printf("%s %llu image references, %llu manifests, %llu "
		       "layers, %llu fsmeta, %llu vmdk; %s %s\n",
		       a.opts.dry_run ? "would remove" : "removed",
		       (unsigned long long)r.image_refs_removed,
		       (unsigned long long)r.manifests_removed,
		       (unsigned long long)r.layers_removed,
		       (unsigned long long)r.fsmeta_removed,
		       (unsigned long long)r.vmdk_removed,
		       a.opts.dry_run ? "would reclaim" : "reclaimed",
		       human_size(size, sizeof(size), r.bytes_reclaimed));
		return EXIT_OK;
	}
	out = json_object();
	if (out) {
		json_object_set_new(
		    out, "image_refs_removed",
		    json_integer((json_int_t)r.image_refs_removed));
		json_object_set_new(
		    out, "manifests_removed",
		    json_integer((json_int_t)r.manifests_removed));
		json_object_set_new(out, "layers_removed",
				    json_integer((json_int_t)r.layers_removed));
		json_object_set_new(out, "fsmeta_removed",
				    json_integer((json_int_t)r.fsmeta_removed));
		json_object_set_new(out, "vmdk_removed",
				    json_integer((json_int_t)r.vmdk_removed));
		json_object_set_new(out, "bytes_reclaimed",
				    json_size(r.bytes_reclaimed));
	}
	return print_json(out);
}

static int no_options(int c, const char *arg, void *ctx)
{
	(void)c;
	(void)arg;
	(void)ctx;
	return 0;
}

static const struct option help_only[] = {
    {"help", no_argument, NULL, 'h'},
    {0},
};

static int cmd_convert(struct cli *cli, int argc, char **argv)
{
	struct ocicache_convert_result res;
	int rc;

	(void)cli;
	rc = parse_options(argc, argv, help_only, usage_convert, no_options,
			   NULL);
	if (rc)
		return rc < 0 ? EXIT_OK : rc;
	if (argc - optind != 2)
		return usage_error("convert",
				   "convert: want LAYER.tar and OUT.erofs");
	rc = ocicache_convert_layer(&res, argv[optind], argv[optind + 1]);
	if (rc)
		return api_failed(rc);
	printf("%s\n", res.diff_id);
	return EXIT_OK;
}

static int cmd_sandbox(struct cli *cli, int argc, char **argv)
{
	int rc;

	rc = parse_options(argc, argv, help_only, usage_sandbox, no_options,
			   NULL);
	if (rc)
		return rc < 0 ? EXIT_OK : rc;
	if (argc - optind != 3 || strcmp(argv[optind], "add") != 0)
		return usage_error("sandbox", "sandbox: want add ID REF");
	rc = open_cache(cli);
	if (rc)
		return rc;
	rc = ocicache_sandbox_add(cli->cache, argv[optind + 1],
				  argv[optind + 2]);
	return rc ? api_failed(rc) : EXIT_OK;
}

static int cmd_sandboxes(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"json", no_argument, NULL, 'J'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	struct ocicache_sandbox *list = NULL;
	char created[32];
	size_t count = 0, i;
	bool json = false;
	json_t *out;
	int rc;

	rc = parse_options(argc, argv, longopts, usage_sandboxes,
			   json_flag_take, &json);
	if (rc)
		return rc < 0 ? EXIT_OK : rc;
	if (optind < argc)
		return usage_error("sandboxes",
				   "sandboxes: unexpected "
				   "argument %s",
				   argv[optind]);
	rc = open_cache(cli);
	if (rc)
		return rc;
	rc = ocicache_sandbox_list(&list, &count, cli->cache);
	if (rc)
		return api_failed(rc);
	if (!json) {
		printf("%-24s %-40s %-12s %s\n", "SANDBOX", "REFERENCE",
		       "DIGEST", "CREATED");
		for (i = 0; i < count; i++)
			printf("%-24s %-40s %-12.12s %s\n", list[i].sandbox_id,
			       list[i].reference, list[i].manifest_digest + 7,
			       utc_time(created, sizeof(created),
					list[i].created_at));
		ocicache_sandbox_list_free(list, count);
		return EXIT_OK;
	}
	out = json_array();
	for (i = 0; out && i < count; i++) {
		json_t *o = json_object();

		json_object_set_new(o, "sandbox_id",
				    json_str(list[i].sandbox_id));
		json_object_set_new(o, "reference",
				    json_str(list[i].reference));
		json_object_set_new(o, "manifest_digest",
				    json_str(list[i].manifest_digest));
		json_object_set_new(o, "created_at",
				    json_integer(list[i].created_at));
		json_array_append_new(out, o);
	}
	ocicache_sandbox_list_free(list, count);
	return print_json(out);
}

static int cmd_release(struct cli *cli, int argc, char **argv)
{
	int rc;

	rc = parse_options(argc, argv, help_only, usage_release, no_options,
			   NULL);
	if (rc)
		return rc < 0 ? EXIT_OK : rc;
	if (argc - optind != 1)
		return usage_error("release", "release: want one sandbox ID");
	rc = open_cache(cli);
	if (rc)
		return rc;
	rc = ocicache_sandbox_release(cli->cache, argv[optind]);
	return rc ? api_failed(rc) : EXIT_OK;
}

static const struct command {
	const char *name;
	int (*run)(struct cli *, int, char **);
} commands[] = {
    {"pull", cmd_pull},	      {"images", cmd_images},
    {"inspect", cmd_inspect}, {"rm", cmd_rm},
    {"prune", cmd_prune},     {"convert", cmd_convert},
    {"sandbox", cmd_sandbox}, {"sandboxes", cmd_sandboxes},
    {"release", cmd_release},
};

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"root", required_argument, NULL, 'r'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {0},
	};
	struct cli cli = {.verbosity = OCICACHE_LOG_WARN};
	int c, status, verbose = 0;
	size_t i;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:vqh", longopts, NULL)) != -1) {
		switch (c) {
		case 'r':
			cli.root = optarg;
			break;
		case 'v':
			verbose++;
			break;
		case 'q':
			cli.verbosity = OCICACHE_LOG_ERROR;
			break;
		case 'h':
			fputs(usage_main, stdout);
			return EXIT_OK;
		case 'V':
			printf("ocicache %s\n", OCICACHE_VERSION);
			return EXIT_OK;
		case ':':
			return usage_error(NULL, "%s needs a value",
					   argv[optind - 1]);
		default:
			return usage_error(NULL, "unknown option %s",
					   bad_option(argv, optind));
		}
	}
	if (verbose && cli.verbosity == OCICACHE_LOG_ERROR)
		return usage_error(NULL, "-v and -q do not go together");
	if (verbose)
		cli.verbosity =
		    verbose > 1 ? OCICACHE_LOG_DEBUG : OCICACHE_LOG_INFO;
	if (optind >= argc)
		return usage_error(NULL, "no command given");
	ocicache_set_log(log_line, cli.verbosity, NULL);

	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[optind], commands[i].name) != 0)
			continue;
		status = commands[i].run(&cli, argc - optind, argv + optind);
		ocicache_close(cli.cache);
		if (fflush(stdout) == EOF && status == EXIT_OK) {
			fail_line("write to stdout failed");
			status = EXIT_FAILURE_OTHER;
		}
		return status;
	}
	return usage_error(NULL, "unknown command %s", argv[optind]);
}
