/* serve/out_filter: stop strings and tool-call tags over streamed text (see out_filter.h). */
#define _GNU_SOURCE /* memmem */
#include "serve/out_filter.h"

#include <string.h>

void mt_out_filter_init(mt_out_filter *f, const char *const *stops, int n_stops, const char *tool_tag) {
    *f = (mt_out_filter){.tool_tag = tool_tag};
    for (int i = 0; i < n_stops && f->n_stops < MT_MAX_STOPS; i++)
        if (stops[i] && stops[i][0]) {
            f->stops[f->n_stops] = stops[i];
            f->stop_len[f->n_stops++] = strlen(stops[i]);
        }
}

/* The first occurrence of needle [m] in hay [n], or -1. */
static int64_t find(const char *hay, size_t n, const char *needle, size_t m) {
    const char *at = n ? memmem(hay, n, needle, m) : NULL;
    return at ? at - hay : -1;
}

/* How many bytes at the end of s [n] are a proper prefix of word [m]. */
static size_t partial(const char *s, size_t n, const char *word, size_t m) {
    for (size_t k = MT_MIN(n, m - 1); k > 0; k--)
        if (memcmp(s + n - k, word, k) == 0) return k;
    return 0;
}

bool mt_out_filter_push(mt_out_filter *f, const char *text, size_t len, mt_buf *emit) {
    if (f->stopped) return true;
    if (f->tool.n) {
        mt_buf_add(&f->tool, text, len);
        return false;
    }
    mt_buf_add(&f->held, text, len);
    /* the earliest of the stop strings and the tool tag wins */
    int64_t cut = -1;
    bool is_tool = false;
    for (int i = 0; i < f->n_stops; i++) {
        int64_t at = find(f->held.p, f->held.n, f->stops[i], f->stop_len[i]);
        if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (f->tool_tag) {
        int64_t at = find(f->held.p, f->held.n, f->tool_tag, strlen(f->tool_tag));
        if (at >= 0 && (cut < 0 || at < cut)) cut = at, is_tool = true;
    }
    if (cut >= 0) {
        mt_buf_add(emit, f->held.p, (size_t)cut);
        if (is_tool) {
            mt_buf_add(&f->tool, f->held.p + cut, f->held.n - (size_t)cut);
        } else {
            f->stopped = true;
        }
        mt_buf_clear(&f->held);
        return f->stopped;
    }
    size_t keep = 0;
    for (int i = 0; i < f->n_stops; i++) keep = MT_MAX(keep, partial(f->held.p, f->held.n, f->stops[i], f->stop_len[i]));
    if (f->tool_tag) keep = MT_MAX(keep, partial(f->held.p, f->held.n, f->tool_tag, strlen(f->tool_tag)));
    mt_buf_add(emit, f->held.p, f->held.n - keep);
    mt_buf_consume(&f->held, f->held.n - keep);
    return false;
}

void mt_out_filter_flush(mt_out_filter *f, mt_buf *emit) {
    if (!f->stopped) mt_buf_add(emit, f->held.p ? f->held.p : "", f->held.n);
    mt_buf_clear(&f->held);
}

void mt_out_filter_free(mt_out_filter *f) {
    mt_buf_free(&f->held);
    mt_buf_free(&f->tool);
}
