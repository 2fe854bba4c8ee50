/* base/buf: a growable byte string (see buf.h). */
#include "base/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static bool reserve(mt_buf *b, size_t extra) {
    if (b->oom) return false;
    if (b->n + extra + 1 <= b->cap) return true;
    if (extra > SIZE_MAX / 2 - b->n) return !(b->oom = true);
    size_t cap = MT_MAX(b->cap * 2, b->n + extra + 1);
    cap = MT_MAX(cap, (size_t)64);
    char *p = mt_realloc(b->p, cap);
    if (!p) return !(b->oom = true);
    b->p = p;
    b->cap = cap;
    return true;
}

void mt_buf_add(mt_buf *b, const void *data, size_t n) {
    if (!reserve(b, n)) return;
    if (n) memcpy(b->p + b->n, data, n);
    b->n += n;
    b->p[b->n] = '\0';
}

void mt_buf_adds(mt_buf *b, const char *s) { mt_buf_add(b, s, strlen(s)); }

void mt_buf_addf(mt_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)n;
}

void mt_buf_consume(mt_buf *b, size_t n) {
    if (n >= b->n) {
        mt_buf_clear(b);
        return;
    }
    memmove(b->p, b->p + n, b->n - n);
    b->n -= n;
    b->p[b->n] = '\0';
}

void mt_buf_clear(mt_buf *b) {
    b->n = 0;
    if (b->p) b->p[0] = '\0';
}

void mt_buf_free(mt_buf *b) {
    mt_free(b->p);
    *b = (mt_buf){0};
}
