#include <stdlib.h>

#include "pull/reference.h"
#include "common/error.h"
#include "tests/unit/check.h"

#define D64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define DIG "sha256:" D64

struct ok_case {
	const char *text;
	const char *registry;
	const char *repository;
	const char *tag;
	const char *digest;
	const char *normalised;
};

static const struct ok_case ok_cases[] = {
    {"alpine", "docker.io", "library/alpine", "latest", NULL,
     "docker.io/library/alpine:latest"},
    {"alpine:3.19", "docker.io", "library/alpine", "3.19", NULL,
     "docker.io/library/alpine:3.19"},
    {"library/alpine", "docker.io", "library/alpine", "latest", NULL,
     "docker.io/library/alpine:latest"},
    {"user/app:v1", "docker.io", "user/app", "v1", NULL,
     "docker.io/user/app:v1"},
    {"docker.io/x", "docker.io", "library/x", "latest", NULL,
     "docker.io/library/x:latest"},
    {"docker.io/library/x:1", "docker.io", "library/x", "1", NULL,
     "docker.io/library/x:1"},
    {"index.docker.io/busybox", "docker.io", "library/busybox", "latest", NULL,
     "docker.io/library/busybox:latest"},
    {"ghcr.io/owner/img:tag", "ghcr.io", "owner/img", "tag", NULL,
     "ghcr.io/owner/img:tag"},
    {"127.0.0.1:5000/repo:t", "127.0.0.1:5000", "repo", "t", NULL,
     "127.0.0.1:5000/repo:t"},
    {"host:5000/a/b/c", "host:5000", "a/b/c", "latest", NULL,
     "host:5000/a/b/c:latest"},
    {"localhost/x", "localhost", "x", "latest", NULL, "localhost/x:latest"},
    {"localhost:5000/x:y", "localhost:5000", "x", "y", NULL,
     "localhost:5000/x:y"},
    {"[::1]:5000/repo", "[::1]:5000", "repo", "latest", NULL,
     "[::1]:5000/repo:latest"},
    {"[fe80::1]/repo:t", "[fe80::1]", "repo", "t", NULL, "[fe80::1]/repo:t"},
    {"alpine@" DIG, "docker.io", "library/alpine", NULL, DIG,
     "docker.io/library/alpine@" DIG},
    {"h.io/r:t@" DIG, "h.io", "r", "t", DIG, "h.io/r:t@" DIG},
    {"127.0.0.1:5000/r@" DIG, "127.0.0.1:5000", "r", NULL, DIG,
     "127.0.0.1:5000/r@" DIG},
    {"a/b__c/d-e--f/g.h_i", "docker.io", "a/b__c/d-e--f/g.h_i", "latest", NULL,
     "docker.io/a/b__c/d-e--f/g.h_i:latest"},
    {"x:A_b.C-1", "docker.io", "library/x", "A_b.C-1", NULL,
     "docker.io/library/x:A_b.C-1"},
    {"x:_private", "docker.io", "library/x", "_private", NULL,
     "docker.io/library/x:_private"},
    {"My-Host.example.com/r", "My-Host.example.com", "r", "latest", NULL,
     "My-Host.example.com/r:latest"},
};

struct bad_case {
	const char *text;
	const char *in_message; /* a piece the message must contain */
};

static const struct bad_case bad_cases[] = {
    {"", "empty"},
    {"Alpine", "lowercase"},
    {"docker.io/Library/alpine", "lowercase"},
    {"host:5000/Repo:t", "lowercase"},
    {"alpine:", "invalid tag ''"},
    {"alpine:-bad", "invalid tag '-bad'"},
    {"alpine:a/b", "alpine:a/b"},
    {"alpine:bad!", "invalid tag 'bad!'"},
    {"alpine@sha256:abc", "invalid digest 'sha256:abc'"},
    {"alpine@sha256:" D64 "0", "invalid digest"},
    {"alpine@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123"
     "456789abcdef",
     "invalid digest"},
    {"alpine@sha512:" D64, "unsupported digest 'sha512:"},
    {"alpine@", "unsupported digest ''"},
    {"/alpine", "invalid repository component ''"},
    {"alpine/", "invalid repository component ''"},
    {"a//b", "invalid repository component ''"},
    {"-a/b", "invalid repository component '-a'"},
    {"a./b", "a./b"},
    {"a___b", "invalid repository component 'a___b'"},
    {"host:99999/r", "invalid registry host 'host:99999'"},
    {"host:0/r", "invalid registry host"},
    {"host:/r", "invalid registry host"},
    {"-host.io/r", "invalid registry host '-host.io'"},
    {"[::1/r", "invalid registry host"},
    {"[zz::1]:5000/r", "invalid registry host"},
    {"host.io/", "invalid repository component ''"},
    {"a b", "space"},
    {"alpine\n", "control"},
    {":tag", "no name"},
    {"@" DIG, "no name"},
};

static void test_valid_references_normalise(void)
{
	for (size_t i = 0; i < sizeof(ok_cases) / sizeof(ok_cases[0]); i++) {
		const struct ok_case *c = &ok_cases[i];
		struct reference ref;
		char *text;
		int rc = reference_parse(&ref, c->text);

		if (rc) {
			fprintf(stderr, "  '%s': %s\n", c->text,
				oc_err_message());
			CHECK(rc == 0);
			continue;
		}
		CHECK_STR(ref.registry, c->registry);
		CHECK_STR(ref.repository, c->repository);
		CHECK_STR(ref.tag, c->tag);
		CHECK_STR(ref.digest, c->digest);
		text = reference_string(&ref);
		CHECK_STR(text, c->normalised);
		free(text);
		reference_free(&ref);
	}
}

static void test_invalid_references_fail_naming_the_text(void)
{
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		struct reference ref;
		int rc = reference_parse(&ref, c->text);

		if (rc != OCICACHE_EINVAL) {
			fprintf(stderr, "  '%s' was accepted (rc %d)\n",
				c->text, rc);
			CHECK(rc == OCICACHE_EINVAL);
			if (rc == 0)
				reference_free(&ref);
			continue;
		}
		if (!strstr(oc_err_message(), c->in_message)) {
			fprintf(stderr, "  '%s': message '%s' lacks '%s'\n",
				c->text, oc_err_message(), c->in_message);
			CHECK(0);
		}
		if (c->text[0] && c->text[0] != '\n' &&
		    !strstr(oc_err_message(), c->text) &&
		    !strchr(c->text, '\n')) {
			fprintf(stderr, "  '%s': message '%s' lacks the text\n",
				c->text, oc_err_message());
			CHECK(0);
		}
		CHECK(ref.registry == NULL && ref.repository == NULL);
	}
}

static void test_long_names_are_refused(void)
{
	char text[300];
	struct reference ref;

	memset(text, 'a', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	CHECK(reference_parse(&ref, text) == OCICACHE_EINVAL);
	CHECK(strstr(oc_err_message(), "longer than 255") != NULL);

	/* A tag of 128 characters is the longest allowed. */
	memcpy(text, "x:", 2);
	memset(text + 2, 't', 128);
	text[130] = '\0';
	CHECK(reference_parse(&ref, text) == 0);
	reference_free(&ref);
	text[130] = 't';
	text[131] = '\0';
	CHECK(reference_parse(&ref, text) == OCICACHE_EINVAL);
}

static void test_name_and_api_host(void)
{
	struct reference ref;
	char *name;

	CHECK(reference_parse(&ref, "alpine:3") == 0);
	name = reference_name(&ref);
	CHECK_STR(name, "docker.io/library/alpine");
	CHECK_STR(reference_api_host(&ref), "registry-1.docker.io");
	free(name);
	reference_free(&ref);

	CHECK(reference_parse(&ref, "[::1]:5000/a/b@" DIG) == 0);
	name = reference_name(&ref);
	CHECK_STR(name, "[::1]:5000/a/b");
	CHECK_STR(reference_api_host(&ref), "[::1]:5000");
	free(name);
	reference_free(&ref);
}

static void test_normalised_text_parses_to_itself(void)
{
	for (size_t i = 0; i < sizeof(ok_cases) / sizeof(ok_cases[0]); i++) {
		struct reference a, b;
		char *first, *second;

		if (reference_parse(&a, ok_cases[i].normalised) != 0) {
			CHECK(0);
			continue;
		}
		first = reference_string(&a);
		CHECK(reference_parse(&b, first) == 0);
		second = reference_string(&b);
		CHECK_STR(second, ok_cases[i].normalised);
		free(first);
		free(second);
		reference_free(&a);
		reference_free(&b);
	}
}

int main(void)
{
	RUN(test_valid_references_normalise);
	RUN(test_invalid_references_fail_naming_the_text);
	RUN(test_long_names_are_refused);
	RUN(test_name_and_api_host);
	RUN(test_normalised_text_parses_to_itself);
	return check_done();
}
