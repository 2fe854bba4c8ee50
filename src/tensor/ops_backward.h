/* tensor/ops_backward: the backward of each op, as tape nodes call them (internal to src/tensor).
 *
 * Each function adds the gradient of node->out into the gradients of the node's inputs that require one. What a
 * forward op stores in the node (f, i, aux) is written next to each declaration.
 */
#ifndef MT_OPS_BACKWARD_H
#define MT_OPS_BACKWARD_H

#include "tensor/autograd.h"

void mt_bw_linear(mt_ctx *ctx, const mt_tape_node *n);     /* in: x, w, b */
void mt_bw_embedding(mt_ctx *ctx, const mt_tape_node *n);  /* in: table; aux: int32 ids; i[0]: count */
void mt_bw_rms_norm(mt_ctx *ctx, const mt_tape_node *n);   /* in: x, w; f[0]: eps */
void mt_bw_layer_norm(mt_ctx *ctx, const mt_tape_node *n); /* in: x, w, b; f[0]: eps */
void mt_bw_act(mt_ctx *ctx, const mt_tape_node *n);        /* in: x, [up]; i[0]: mt_act */
void mt_bw_add(mt_ctx *ctx, const mt_tape_node *n);        /* in: a, b */
void mt_bw_mul(mt_ctx *ctx, const mt_tape_node *n);
void mt_bw_scale_cols(mt_ctx *ctx, const mt_tape_node *n);        /* in: a, b */
void mt_bw_scale(mt_ctx *ctx, const mt_tape_node *n);      /* in: x; f[0]: s */
void mt_bw_softmax(mt_ctx *ctx, const mt_tape_node *n);    /* in: x (out holds the probabilities) */
void mt_bw_rope(mt_ctx *ctx, const mt_tape_node *n);       /* in: x, cos, sin; i[0]: heads */
void mt_bw_attention(mt_ctx *ctx, const mt_tape_node *n);  /* in: q, k, v; i[0..1]: heads, kv heads; aux: opts */
void mt_bw_gather_rows(mt_ctx *ctx, const mt_tape_node *n);  /* in: x; aux: int64 idx; i[0]: count */
void mt_bw_scatter_rows(mt_ctx *ctx, const mt_tape_node *n); /* in: base, src; aux: int64 idx */
void mt_bw_concat_rows(mt_ctx *ctx, const mt_tape_node *n);  /* in: a, b */
void mt_bw_view(mt_ctx *ctx, const mt_tape_node *n);       /* in: x; out is a view into x's storage */
void mt_bw_copy(mt_ctx *ctx, const mt_tape_node *n);       /* in: x; out has x's logical shape (contiguous) */
void mt_bw_cross_entropy(mt_ctx *ctx, const mt_tape_node *n); /* in: logits; aux: ce_saved; f[0]: inv_norm */
void mt_bw_dropout(mt_ctx *ctx, const mt_tape_node *n);    /* in: x; f[0]: p; i[0]: seed */
/* mixture-of-experts routing (ops_moe.c, backward in ops_backward_moe.c) */
void mt_bw_take(mt_ctx *ctx, const mt_tape_node *n);          /* in: x; aux: int64 flat indices; i[0]: count */
void mt_bw_row_normalize(mt_ctx *ctx, const mt_tape_node *n); /* in: x; aux: float row sums */
void mt_bw_scale_rows(mt_ctx *ctx, const mt_tape_node *n);    /* in: x, w */
void mt_bw_index_add_rows(mt_ctx *ctx, const mt_tape_node *n); /* in: base, src; aux: int64 idx */

/* For forward ops (ctx in scope): return NULL from the op when x is NULL (an input failed, or an allocation). */
#define NEED(x)                  \
    do {                         \
        if (!(x)) return NULL;   \
    } while (0)

/* Records out's node when an input requires a gradient; returns NULL from the op when that fails. */
#define RECORD_OR_FAIL(fn, out, a, b, c)                                                     \
    do {                                                                                     \
        if (mt_tape_wants(ctx, a, b, c) && !mt_tape_record(ctx, fn, out, a, b, c)) return NULL; \
    } while (0)

/* x when it is a contiguous 2D f32 tensor, else NULL with the failure (naming op) in ctx. */
mt_tensor *mt_need_2d_f32(mt_ctx *ctx, const mt_tensor *x, const char *op);

/* What cross-entropy's forward leaves for backward. */
typedef struct mt_ce_saved {
    const int32_t *targets;
    const float *lse;     /* logsumexp of each row */
    const float *weights; /* each row's weight; NULL: 1 */
} mt_ce_saved;

/* Whether dropout keeps element i under seed (probability 1 - p); shared by forward and backward. */
bool mt_dropout_keep(uint64_t seed, int64_t i, float p);

#endif
