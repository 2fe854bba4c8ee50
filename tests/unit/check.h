/* A minimal test harness: CHECK records a failure and goes on; the test's main returns check_report(). */
#ifndef MT_CHECK_H
#define MT_CHECK_H

#include <math.h>
#include <stdio.h>

static int check_failures;
static int check_count;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        check_count++;                                                               \
        if (!(cond)) {                                                               \
            check_failures++;                                                        \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                            \
    } while (0)

#define CHECK_MSG(cond, ...)                                              \
    do {                                                                  \
        check_count++;                                                    \
        if (!(cond)) {                                                    \
            check_failures++;                                             \
            fprintf(stderr, "%s:%d: CHECK failed: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                                 \
            fputc('\n', stderr);                                          \
        }                                                                 \
    } while (0)

#define CHECK_NEAR(a, b, tol) \
    CHECK_MSG(fabs((double)(a) - (double)(b)) <= (tol), "%s = %g, %s = %g, tol %g", #a, (double)(a), #b, (double)(b), (double)(tol))

/* A test that ran no check fails: it proved nothing. */
static inline int check_report(void) {
    fprintf(stderr, "%d checks, %d failed\n", check_count, check_failures);
    if (check_count == 0) fprintf(stderr, "no check ran\n");
    return check_failures || check_count == 0 ? 1 : 0;
}

#endif
