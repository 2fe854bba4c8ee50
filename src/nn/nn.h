/* nn: blocks shared by model families, built from tensor ops. Weights are plain mt_tensor values (matrices in
 * place, vectors as f32), filled by a part's loader.
 *
 * Shape legend: T tokens, C channels, H heads, D head dim, N positions with a 2D grid (vision patches).
 */
#ifndef MT_NN_H
#define MT_NN_H

#include "tensor/tensor.h"

/* A low-rank adapter on a linear layer (LoRA, as PEFT): y = x W^T + b + scale * B (A dropout(x)), scale = alpha / r. */
typedef struct mt_lora {
    mt_tensor a;     /* [r, in] f32 */
    mt_tensor b;     /* [out, r] f32 */
    float scale;
    float dropout;   /* probability, 0 for none */
    uint64_t seed;   /* dropout mask seed; the trainer sets a fresh one per layer and step */
} mt_lora;

typedef struct mt_linear {
    mt_tensor w;    /* [out, in] */
    mt_tensor b;    /* [out] f32, or data == NULL for no bias */
    mt_lora *lora;  /* training with adapters, else NULL */
} mt_linear;

typedef struct mt_norm {
    mt_tensor w, b; /* b.data == NULL for RMSNorm */
    float eps;
} mt_norm;

/* Rows [r0, r0+n) of a linear layer (for a fused qkv weight split into q, k and v); without its adapter. */
mt_linear mt_linear_rows(const mt_linear *l, int64_t r0, int64_t n);

mt_tensor *mt_nn_linear(mt_ctx *ctx, const mt_tensor *x, const mt_linear *l);
/* RMSNorm when n->b has no data, LayerNorm otherwise. */
mt_tensor *mt_nn_norm(mt_ctx *ctx, const mt_tensor *x, const mt_norm *n);
/* down(act(gate(x)) * up(x)) */
mt_tensor *mt_nn_gated_mlp(mt_ctx *ctx, const mt_tensor *x, const mt_linear *gate, const mt_linear *up,
                           const mt_linear *down, mt_act act);
/* fc2(act(fc1(x))) */
mt_tensor *mt_nn_mlp(mt_ctx *ctx, const mt_tensor *x, const mt_linear *fc1, const mt_linear *fc2, mt_act act);

#endif
