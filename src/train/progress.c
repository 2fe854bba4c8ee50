/* train/progress: the progress bar of a training run on a terminal (see progress.h). */
#include "train/progress.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define MAX_LINE 512
#define MIN_BAR 10

void mt_progress_duration(double secs, char *out, size_t cap) {
    if (!(secs >= 0 && secs < 3.6e9)) {
        snprintf(out, cap, "?:??:??");
        return;
    }
    long long s = llround(secs);
    snprintf(out, cap, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
}

size_t mt_progress_format(const mt_progress_state *s, int width, char *out, size_t cap) {
    if (cap == 0) return 0;
    size_t max = (size_t)MT_MAX(width - 1, 1);
    max = MT_MIN(max, cap - 1);
    max = MT_MIN(max, (size_t)MAX_LINE - 1);
    int64_t step = MT_MAX(s->step, 0), total = MT_MAX(s->total, 0);
    int pct = total > 0 ? (int)(MT_MIN(step, total) * 100 / total) : 0;
    char head[64], tail[160], el[32], eta[32];
    snprintf(head, sizeof head, "step %lld/%lld %3d%%", (long long)step, (long long)total, pct);
    mt_progress_duration(s->elapsed, el, sizeof el);
    mt_progress_duration(s->eta, eta, sizeof eta);
    int t = 0;
    if (isfinite(s->loss)) t += snprintf(tail + t, sizeof tail - (size_t)t, "  loss %.4f", s->loss);
    if (isfinite(s->tokens_per_s) && s->tokens_per_s >= 0 && s->tokens_per_s < 1e15)
        t += snprintf(tail + t, sizeof tail - (size_t)t, "  %.0f tok/s", s->tokens_per_s);
    snprintf(tail + t, sizeof tail - (size_t)t, "  %s<%s", el, eta);
    char line[MAX_LINE];
    size_t used = strlen(head) + strlen(tail), n;
    if (used + 3 + MIN_BAR <= max) { /* " [" bar "]" */
        size_t bw = max - used - 3;
        size_t fill = total > 0 ? (size_t)(MT_MIN(step, total) * (int64_t)bw / total) : 0;
        char bar[MAX_LINE];
        memset(bar, '#', fill);
        memset(bar + fill, '-', bw - fill);
        bar[bw] = '\0';
        n = (size_t)snprintf(line, sizeof line, "%s [%s]%s", head, bar, tail);
    } else {
        n = (size_t)snprintf(line, sizeof line, "%s%s", head, tail);
    }
    n = MT_MIN(n, max);
    memcpy(out, line, n);
    out[n] = '\0';
    return n;
}

void mt_progress_start(mt_progress *p, FILE *f) {
    *p = (mt_progress){.f = f, .on = isatty(fileno(f)), .width = 80};
    struct winsize ws;
    const char *cols = getenv("COLUMNS");
    if (ioctl(fileno(f), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) p->width = ws.ws_col;
    else if (cols && atoi(cols) > 0) p->width = atoi(cols);
}

void mt_progress_draw(mt_progress *p, const mt_progress_state *s, bool force) {
    if (!p->on) return;
    double now = mt_time_now();
    if (!force && p->shown && now - p->last_draw < 0.1) return;
    char line[MAX_LINE];
    size_t n = mt_progress_format(s, p->width, line, sizeof line);
    /* spaces over what a longer earlier bar left */
    fprintf(p->f, "\r%s%*s", line, p->shown > n ? (int)(p->shown - n) : 0, "");
    fflush(p->f);
    p->shown = MT_MAX(n, 1);
    p->last_draw = now;
}

void mt_progress_clear(mt_progress *p) {
    if (!p->on || !p->shown) return;
    fprintf(p->f, "\r%*s\r", (int)p->shown, "");
    fflush(p->f);
    p->shown = 0;
}

void mt_progress_end(mt_progress *p) {
    if (!p->on || !p->shown) return;
    fputc('\n', p->f);
    fflush(p->f);
    p->shown = 0;
}
