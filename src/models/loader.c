/* models/loader: the weight-table conveniences part loaders are written with (see model.h). */
#include <stdarg.h>
#include <stdio.h>

#include "models/model.h"

/* buf (an array) gets the name the caller's format and arguments make */
#define FORMAT(buf, fmt)                     \
    do {                                     \
        va_list ap;                          \
        va_start(ap, fmt);                   \
        vsnprintf(buf, sizeof buf, fmt, ap); \
        va_end(ap);                          \
    } while (0)

void mt_load_matrix(mt_loader *l, mt_tensor *out, int64_t rows, int64_t cols, const char *fmt, ...) {
    if (l->st) return;
    char name[512];
    FORMAT(name, fmt);
    l->st = mt_weight_matrix(l->m, name, rows, cols, out, l->err);
}

void mt_load_vector(mt_loader *l, mt_tensor *out, int64_t n, bool optional, const char *fmt, ...) {
    if (l->st) return;
    char name[512];
    FORMAT(name, fmt);
    l->st = mt_weight_vector(l->m, name, n, optional, out, l->err);
}

void mt_load_linear(mt_loader *l, mt_linear *lin, int64_t out, int64_t in, bool bias, const char *fmt, ...) {
    if (l->st) return;
    char prefix[512];
    FORMAT(prefix, fmt);
    *lin = (mt_linear){0};
    mt_load_matrix(l, &lin->w, out, in, "%sweight", prefix);
    if (bias) mt_load_vector(l, &lin->b, out, false, "%sbias", prefix);
    if (!l->st) mt_weight_set_linear(l->m, &lin->w, lin);
}

void mt_load_norm(mt_loader *l, mt_norm *n, int64_t width, bool layer_norm, float eps, const char *fmt, ...) {
    if (l->st) return;
    char prefix[512];
    FORMAT(prefix, fmt);
    *n = (mt_norm){.eps = eps};
    mt_load_vector(l, &n->w, width, false, "%sweight", prefix);
    if (layer_norm) mt_load_vector(l, &n->b, width, false, "%sbias", prefix);
}

void mt_load_split(mt_loader *l, const mt_linear *src, mt_linear *dst, int64_t r0, int64_t n) {
    if (l->st) return;
    *dst = mt_linear_rows(src, r0, n);
    l->st = mt_weight_alias(l->m, &src->w, &dst->w, r0, l->err);
    if (!l->st && src->b.data) l->st = mt_weight_alias(l->m, &src->b, &dst->b, r0, l->err);
}
