/* nn/moe: a sparse mixture-of-experts FFN (Qwen3-MoE, Qwen2-MoE, DeepSeek): a linear router, softmax over experts in
 * f32, the top-k per row, optionally renormalised (norm_topk_prob), each expert a gated MLP over the rows routed to
 * it, outputs weighted and summed. Optionally a shared expert (Qwen2-MoE), a gated MLP of its own width over every
 * row, added to the routed sum, scaled per row by an optional sigmoid gate:
 *
 *     out = routed(x) + sigmoid(x g^T) * shared(x)        g: shared_gate [1, C]; without it, routed(x) + shared(x)
 *
 * Built from tensor ops only, so autograd derives its training: gradients reach the chosen experts, the router
 * (through the picked probabilities), the shared expert and its gate, and the input.
 *
 * Shapes: T rows, C width, E experts, k chosen per row, I expert width, S shared-expert width.
 */
#ifndef MT_NN_MOE_H
#define MT_NN_MOE_H

#include "nn/nn.h"

typedef struct mt_moe_expert {
    mt_linear gate, up, down; /* [I, C], [I, C], [C, I] */
} mt_moe_expert;

typedef struct mt_moe {
    mt_linear router;        /* [E, C] */
    mt_moe_expert *experts;  /* [E] */
    int64_t n_experts, top_k;
    bool norm_topk;
    mt_act act;
    bool has_shared;         /* shared is used */
    mt_moe_expert shared;    /* [S, C], [S, C], [C, S]: over every row */
    bool has_shared_gate;    /* shared_gate scales the shared expert (needs has_shared) */
    mt_linear shared_gate;   /* [1, C] */
} mt_moe;

/* x [T, C] -> [T, C]. When chosen is not NULL it gets the k expert indices of every row [T * k], highest first (the
 * order torch.topk gives; ties go to the lower index). */
mt_tensor *mt_nn_moe(mt_ctx *ctx, const mt_moe *moe, const mt_tensor *x, int64_t *chosen);

#endif
