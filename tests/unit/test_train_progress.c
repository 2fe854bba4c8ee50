/* train/progress: the terminal progress bar's line (h:mm:ss times, widths, the bar's fill) and its redraws. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "train/progress.h"

static void check_duration(double secs, const char *want) {
    char got[32];
    mt_progress_duration(secs, got, sizeof got);
    CHECK_MSG(strcmp(got, want) == 0, "%g s: \"%s\", expected \"%s\"", secs, got, want);
}

static void test_duration(void) {
    check_duration(0, "0:00:00");
    check_duration(59.4, "0:00:59");
    check_duration(59.6, "0:01:00");
    check_duration(3725, "1:02:05");
    check_duration(360000, "100:00:00");
    check_duration(-1, "?:??:??");
    check_duration(NAN, "?:??:??");
    check_duration(INFINITY, "?:??:??");
    char small[4];
    mt_progress_duration(3725, small, sizeof small);
    CHECK(strcmp(small, "1:0") == 0);
}

static const mt_progress_state mid = {.step = 37, .total = 100, .loss = 2.34561, .tokens_per_s = 1234.4,
                                      .elapsed = 12, .eta = 21};

static void test_line(void) {
    char line[512];
    size_t n = mt_progress_format(&mid, 80, line, sizeof line);
    const char *want = "step 37/100  37% [######------------]  loss 2.3456  1234 tok/s  0:00:12<0:00:21";
    CHECK_MSG(strcmp(line, want) == 0, "\"%s\"", line);
    CHECK(n == strlen(want) && n == 79);

    mt_progress_state done = mid;
    done.step = 100;
    done.eta = 0;
    mt_progress_format(&done, 80, line, sizeof line);
    CHECK_MSG(strstr(line, "100/100 100% [#################]  loss") != NULL, "\"%s\"", line);

    mt_progress_state fresh = {.step = 0, .total = 0, .loss = NAN, .tokens_per_s = -1, .elapsed = 0, .eta = NAN};
    mt_progress_format(&fresh, 80, line, sizeof line);
    CHECK_MSG(strstr(line, "step 0/0   0%") == line && !strstr(line, "loss") && !strstr(line, "tok/s") &&
              strstr(line, "0:00:00<?:??:??"), "\"%s\"", line);
}

/* Every width gives a line of at most width - 1 columns; the bar goes before the numbers are cut. */
static void test_widths(void) {
    char line[512];
    for (int w = -3; w <= 300; w++) {
        size_t n = mt_progress_format(&mid, w, line, sizeof line);
        size_t max = w > 1 ? (size_t)w - 1 : 1;
        CHECK_MSG(n == strlen(line) && n <= max && n > 0, "width %d: %zu columns", w, n);
        CHECK_MSG(strncmp(line, "step 37/100", MT_MIN(n, 11)) == 0, "width %d: \"%s\"", w, line);
        CHECK_MSG((strchr(line, '[') != NULL) == (w >= 72), "width %d: \"%s\"", w, line);
        if (w >= 59) CHECK_MSG(strstr(line, "0:00:12<0:00:21") != NULL, "width %d: \"%s\"", w, line);
    }
    char tiny[8];
    size_t n = mt_progress_format(&mid, 80, tiny, sizeof tiny);
    CHECK(n == 7 && strcmp(tiny, "step 37") == 0);
}

static void test_draw(void) {
    FILE *f = tmpfile();
    CHECK(f != NULL);
    if (!f) return;
    mt_progress p = {.f = f, .on = true, .width = 80};
    mt_progress_state shorter = mid;
    shorter.loss = NAN;
    mt_progress_draw(&p, &mid, true);
    mt_progress_draw(&p, &shorter, false); /* within 0.1 s of the last: skipped */
    mt_progress_draw(&p, &shorter, true);
    mt_progress_clear(&p);
    mt_progress_clear(&p); /* nothing shown: nothing written */
    mt_progress_draw(&p, &mid, true);
    mt_progress_end(&p);
    char a[512], b[512], want[2048], got[2048] = {0};
    size_t na = mt_progress_format(&mid, 80, a, sizeof a), nb = mt_progress_format(&shorter, 80, b, sizeof b);
    snprintf(want, sizeof want, "\r%s\r%s%*s\r%*s\r\r%s\n", a, b, (int)(na - nb), "", (int)na, "", a);
    rewind(f);
    size_t n = fread(got, 1, sizeof got - 1, f);
    CHECK_MSG(n == strlen(want) && memcmp(got, want, n) == 0, "drawn: \"%s\"", got);
    fclose(f);

    FILE *g = tmpfile();
    if (!g) return;
    mt_progress off;
    mt_progress_start(&off, g); /* a file is no terminal: nothing is drawn */
    CHECK(!off.on);
    mt_progress_draw(&off, &mid, true);
    mt_progress_clear(&off);
    mt_progress_end(&off);
    CHECK(ftell(g) == 0);
    fclose(g);
}

int main(void) {
    test_duration();
    test_line();
    test_widths();
    test_draw();
    return check_report();
}
