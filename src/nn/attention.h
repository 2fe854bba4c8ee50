/* nn/attention: the self-attention block every decoder (and vision tower) is configured from, not copied into:
 * q/k/v projections (split, or one fused weight viewed as three), optional biases, per-head q/k RMSNorm, rotary
 * tables from nn/rope.h, grouped-query attention over the KV memory (nn/kv.h) with masks from sequence ids, and the
 * output projection.
 *
 * Shapes: T rows of the batch, C model width, Hq / Hkv query / key-value heads, D head dim.
 */
#ifndef MT_NN_ATTENTION_H
#define MT_NN_ATTENTION_H

#include "nn/kv.h"
#include "nn/nn.h"

typedef struct mt_attn_block {
    mt_linear q, k, v, o; /* q [Hq*D, C], k and v [Hkv*D, C], o [C, Hq*D]; biases optional */
    /* packed_qkv: qkv [(Hq + 2 Hkv)*D, C] replaces q, k and v, its rows in InternLM2's grouped order: for each KV
     * head j, the g = Hq / Hkv query heads j*g .. j*g+g-1, then key head j, then value head j. A strided view of the
     * weight cannot pick q out (its rows jump once per group), so the projection runs whole and its output columns
     * are regrouped: one copy of q, k and v, not of the weight */
    mt_linear qkv;
    bool packed_qkv;
    mt_norm q_norm, k_norm; /* RMSNorm over each head's D values (Qwen3), w.data NULL when absent */
    int n_heads, n_kv_heads;
    int64_t head_dim;
    float scale; /* usually 1 / sqrt(D) */
    int64_t window; /* sliding window, 0 = none: a row at position p sees positions p - window < j <= p only */
} mt_attn_block;

/* Causal self-attention of the batch rows x [T, C]: every row sees the rows of its own sequence before it (those in
 * plan->kv and those of this batch), the last a->window of them when a->window is set. Keys and values of layer `layer` go into plan->kv when there is one; without one,
 * each group of the plan attends only within itself (training and scoring: keys stay on the autograd tape).
 * cos, sin [T, D/2]: the rotary tables of the rows. Returns [T, C]. */
mt_tensor *mt_nn_self_attention(mt_ctx *ctx, const mt_attn_block *a, const mt_tensor *x, const mt_tensor *cos,
                                const mt_tensor *sin, const mt_kv_plan *plan, int layer);

#endif
