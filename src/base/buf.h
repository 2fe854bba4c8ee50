/* base/buf: a growable byte string for building bodies and messages.
 *
 *     mt_buf b = {0};
 *     mt_buf_add(&b, "data: ", 6);  mt_buf_addf(&b, "%d\n", n);
 *     if (b.oom) ...;  use b.p, b.n (NUL-terminated when n > 0);  mt_buf_free(&b);
 *
 * A failed allocation sets oom and makes every later add a no-op, so a builder checks once at the end. */
#ifndef MT_BUF_H
#define MT_BUF_H

#include "base/base.h"

typedef struct mt_buf {
    char *p;
    size_t n, cap;
    bool oom;
} mt_buf;

void mt_buf_add(mt_buf *b, const void *data, size_t n);
void mt_buf_adds(mt_buf *b, const char *s);
void mt_buf_addf(mt_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drops the first n bytes. */
void mt_buf_consume(mt_buf *b, size_t n);
void mt_buf_clear(mt_buf *b);
void mt_buf_free(mt_buf *b);

#endif
