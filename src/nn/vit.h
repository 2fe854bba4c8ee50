/* nn/vit: the pre-norm transformer block of the ViT-style vision towers (Qwen2-VL, Qwen2.5-VL, Qwen3-VL, InternViT),
 * configured by which MLP it has, and the patch coordinates of the Qwen processors' merge-block order.
 *
 *     x = x + ls1 * proj(attention(rope(qn(q(norm1 x))), rope(kn(k(norm1 x))), v(norm1 x)))
 *     x = x + ls2 * down(act(gate(norm2 x)) * up(norm2 x))   gated MLP (Qwen2.5-VL)
 *     x = x + ls2 * fc2(act(fc1(norm2 x)))                  plain MLP (Qwen2-VL, Qwen3-VL)
 * ls1, ls2: per-channel layer scale (InternViT), absent for the Qwen towers. qn, kn: RMSNorm over the whole width
 * (not per head: InternViT-6B's qk_normalization), absent elsewhere. rope: only when the tower gives rotary tables
 * (the Qwen towers; InternViT adds absolute position embeddings before the first block instead).
 *
 * Shapes: N patches, E width, H heads.
 */
#ifndef MT_NN_VIT_H
#define MT_NN_VIT_H

#include "nn/nn.h"

typedef struct mt_vit_block {
    mt_norm norm1, norm2;
    mt_linear qkv;             /* as stored; q, k and v are row views of it */
    mt_linear q, k, v, proj;
    mt_linear gate, up, down;  /* the gated MLP, when gate.w.data */
    mt_linear fc1, fc2;        /* the plain MLP otherwise */
    mt_tensor ls1, ls2;        /* layer scale [E] f32, data NULL when absent */
    mt_norm q_norm, k_norm;    /* over the E values of a row, w.data NULL when absent */
} mt_vit_block;

/* One block over x [N, E] with H heads; cos, sin [N, E/H/2] the patches' rotary tables, or both NULL for none; ao the
 * attention segments. */
mt_tensor *mt_nn_vit_block(mt_ctx *ctx, const mt_vit_block *b, const mt_tensor *x, int heads, const mt_tensor *cos,
                           const mt_tensor *sin, const mt_attn_opts *ao, mt_act act);

/* Row and column of each patch of a t x h x w grid listed in merge-block order (frame, block row, block column, then
 * the m x m patches of a block row-major), as the Qwen image processors emit them. rows, cols [t * h * w]. */
void mt_nn_merge_block_coords(int64_t t, int64_t h, int64_t w, int64_t m, int64_t *rows, int64_t *cols);

#endif
