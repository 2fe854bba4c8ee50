/* engine/sched's step policy (sched.h): which prompt rows a step takes, and the row budget that keeps a step near
 * step_ms. A short prompt never waits behind a long one's chunk nor shares its step with one; the budget converges
 * to the step size that takes step_ms on a machine whose step time grows with its rows. */
#include "../unit/check.h"
#include "engine/sched.h"

#define N 4

static int64_t plan(const int64_t *left, int n, int64_t step_rows, int64_t budget, int64_t *take) {
    return mt_sched_plan(left, n, step_rows, budget, take);
}

static void test_plan(void) {
    int64_t take[N];
    /* a long prompt alone: budget rows of it, at most step_rows */
    CHECK(plan((int64_t[]){1000}, 1, 64, 10, take) == 10 && take[0] == 10);
    CHECK(plan((int64_t[]){1000}, 1, 64, 500, take) == 64 && take[0] == 64);
    CHECK(plan((int64_t[]){3}, 1, 64, 10, take) == 3 && take[0] == 3);
    /* a short prompt beside a long one: the short one whole, nothing of the long one (not even with budget left) */
    CHECK(plan((int64_t[]){1000, 20}, 2, 64, 64, take) == 20 && take[0] == 0 && take[1] == 20);
    /* a short prompt over the budget still goes whole: splitting it would only delay its first token */
    CHECK(plan((int64_t[]){1000, 40}, 2, 64, 10, take) == 40 && take[0] == 0 && take[1] == 40);
    /* several short ones: shortest first, the next while they fit the budget */
    CHECK(plan((int64_t[]){30, 10, 1000, 15}, 4, 64, 30, take) == 25 && take[1] == 10 && take[3] == 15 &&
          take[0] == 0 && take[2] == 0);
    CHECK(plan((int64_t[]){30, 10, 1000, 15}, 4, 64, 64, take) == 55 && take[0] == 30 && take[2] == 0);
    /* prompts done or not ready (0 rows left) take nothing */
    CHECK(plan((int64_t[]){0, 0}, 2, 64, 64, take) == 0 && take[0] == 0 && take[1] == 0);
    /* step_rows 5 (the engine_sched test): prompts over 5 rows are chunked 5 at a time */
    CHECK(plan((int64_t[]){12, 7}, 2, 5, 5, take) == 5 && take[1] == 5 && take[0] == 0);
}

static void test_budget(void) {
    /* nothing measured: step_rows */
    CHECK(mt_sched_row_budget(0, 0, 500, 0, 64) == 64);
    /* 20 rows/s, 0.5 s: 10 rows, less the decoding rows */
    CHECK(mt_sched_row_budget(40, 2, 500, 0, 64) == 10);
    CHECK(mt_sched_row_budget(40, 2, 500, 3, 32) == 7);
    /* never over step_rows, never under step_rows / 8 */
    CHECK(mt_sched_row_budget(1000, 1, 500, 0, 64) == 64);
    CHECK(mt_sched_row_budget(1, 10, 500, 4, 64) == 8);
    CHECK(mt_sched_row_budget(1, 10, 500, 4, 5) == 1);
    /* steps that take 0.1 s + 0.02 s a row, sized by the budget from their own timings, settle at about 0.5 s */
    double rows = 0, secs = 0, t = 0;
    for (int step = 0; step < 40; step++) {
        int64_t n = mt_sched_row_budget(rows, secs, 500, 1, 64) + 1;
        t = 0.1 + 0.02 * (double)n;
        rows = rows / 2 + (double)n;
        secs = secs / 2 + t;
    }
    CHECK_NEAR(t, 0.5, 0.05);
}

int main(void) {
    test_plan();
    test_budget();
    return check_report();
}
