/*
 * A very small test harness for the C unit tests. Each test is a function;
 * CHECK records a failure with its line and goes on. Every test prints
 * "PASS name" or "FAIL name", which tests/run counts.
 */
#ifndef OCICACHE_TESTS_CHECK_H
#define OCICACHE_TESTS_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_test_failed;
static int check_passed_total;
static int check_failed_total;

#define CHECK(cond)                                                    \
	do {                                                           \
		if (!(cond)) {                                         \
			fprintf(stderr, "  %s:%d: check failed: %s\n", \
				__FILE__, __LINE__, #cond);            \
			check_test_failed = 1;                         \
		}                                                      \
	} while (0)

#define CHECK_STR(got, want)                                              \
	do {                                                              \
		const char *g_ = (got), *w_ = (want);                     \
		if ((g_ == NULL) != (w_ == NULL) ||                       \
		    (g_ && strcmp(g_, w_) != 0)) {                        \
			fprintf(stderr, "  %s:%d: got '%s', want '%s'\n", \
				__FILE__, __LINE__, g_ ? g_ : "(null)",   \
				w_ ? w_ : "(null)");                      \
			check_test_failed = 1;                            \
		}                                                         \
	} while (0)

static inline void check_run(const char *name, void (*fn)(void))
{
	check_test_failed = 0;
	fn();
	if (check_test_failed) {
		printf("FAIL %s\n", name);
		check_failed_total++;
	} else {
		printf("PASS %s\n", name);
		check_passed_total++;
	}
	fflush(stdout);
}

#define RUN(fn) check_run(#fn, fn)

/* The exit status of a test program. */
static inline int check_done(void)
{
	return check_failed_total ? 1 : 0;
}

#endif
