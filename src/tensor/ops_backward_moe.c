/* tensor/ops_backward_moe: gradients of the mixture-of-experts ops in tensor/ops_moe.c.
 *
 *   | op             | gradient (y the output, dy its gradient)                                     |
 *   |----------------|------------------------------------------------------------------------------|
 *   | take           | dx.flat[flat[i]] += dy.flat[i]  (gather_cols and pick; repeats add up)       |
 *   | row_normalize  | s = rowsum(x): dx = (dy - sum(dy y)) / s                                     |
 *   | scale_rows     | dx = dy w[:, None];  dw[i] += sum_c dy[i, c] x[i, c]                         |
 *   | index_add_rows | dbase += dy;  dsrc[i] += dy[idx[i]]                                          |
 */
#include "tensor/ops_backward.h"

#include "tensor/cpu/cpu.h"

static float *gradp(mt_ctx *ctx, mt_tensor *t) {
    mt_tensor *g = mt_grad_of(ctx, t);
    return g ? mt_f32(g) : NULL;
}

/* a few values per token: scatter-adds on the calling thread, where repeated indices cannot race */
void mt_bw_take(mt_ctx *ctx, const mt_tape_node *n) {
    if (!n->src[0]) return;
    float *dx = gradp(ctx, n->src[0]);
    if (!dx) return;
    const int64_t *flat = n->aux;
    const float *dy = mt_f32(n->out->grad);
    for (int64_t i = 0; i < n->i[0]; i++) dx[flat[i]] += dy[i];
}

void mt_bw_row_normalize(mt_ctx *ctx, const mt_tape_node *n) {
    if (!n->src[0]) return;
    float *dx = gradp(ctx, n->src[0]);
    if (!dx) return;
    const float *sums = n->aux, *y = mt_f32(n->out), *dy = mt_f32(n->out->grad);
    int64_t T = n->out->shape[0], C = n->out->shape[1];
    for (int64_t t = 0; t < T; t++) {
        double dot = 0;
        for (int64_t c = 0; c < C; c++) dot += (double)dy[t * C + c] * y[t * C + c];
        for (int64_t c = 0; c < C; c++) dx[t * C + c] += (float)((dy[t * C + c] - dot) / sums[t]);
    }
}

typedef struct scale_rows_bw {
    const float *x, *w, *dy;
    float *dx, *dw;
    int64_t C;
} scale_rows_bw;

/* row i writes only dx row i and dw[i], so rows split over threads without sharing an output */
static void scale_rows_task(void *user, int64_t r0, int64_t r1) {
    scale_rows_bw *j = user;
    for (int64_t i = r0; i < r1; i++) {
        const float *dy = j->dy + i * j->C;
        if (j->dw) j->dw[i] += mt_cpu_dot(j->C, dy, j->x + i * j->C);
        if (j->dx) mt_cpu_axpy(j->C, j->w[i], dy, j->dx + i * j->C);
    }
}

void mt_bw_scale_rows(mt_ctx *ctx, const mt_tape_node *n) {
    scale_rows_bw j = {.x = mt_f32(&n->in[0]), .w = mt_f32(&n->in[1]), .dy = mt_f32(n->out->grad),
                       .C = n->out->shape[1]};
    if (n->src[0] && !(j.dx = gradp(ctx, n->src[0]))) return;
    if (n->src[1] && !(j.dw = gradp(ctx, n->src[1]))) return;
    mt_ctx_parallel_rows(ctx, n->out->shape[0], j.C, scale_rows_task, &j);
}

void mt_bw_index_add_rows(mt_ctx *ctx, const mt_tape_node *n) {
    const int64_t *idx = n->aux;
    const float *dy = mt_f32(n->out->grad);
    int64_t C = n->out->shape[1];
    if (n->src[0]) {
        float *db = gradp(ctx, n->src[0]);
        if (!db) return;
        mt_cpu_axpy(mt_tensor_numel(n->out), 1.0f, dy, db);
    }
    if (n->src[1]) {
        float *ds = gradp(ctx, n->src[1]);
        if (!ds) return;
        for (int64_t i = 0; i < n->in[1].shape[0]; i++) mt_cpu_axpy(C, 1.0f, dy + idx[i] * C, ds + i * C);
    }
}
