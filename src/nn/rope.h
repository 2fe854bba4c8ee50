/* nn/rope: rotary tables cos, sin [T, D/2] for mt_op_rope (rotate-half layout), for every rope variant a config can
 * name. Angles are position * inv_freq[i], computed in f32 as transformers does, times the variant's attention factor.
 *
 * Reference: transformers modeling_rope_utils (ROPE_INIT_FUNCTIONS: default, linear, dynamic, yarn, llama3) and the
 * multimodal rotary of Qwen2-VL (mrope_section) and Qwen3-VL (mrope_interleaved).
 *
 *     | type    | inv_freq[i], i < D/2, from base = theta^(-2i/D) (f32 pow)                  | cos, sin times |
 *     |---------|-----------------------------------------------------------------------------|----------------|
 *     | default | base                                                                        | 1              |
 *     | linear  | base / factor                                                               | 1              |
 *     | dynamic | base of theta' = theta (factor S / M - (factor - 1))^(D / (D - 2)) once     | 1              |
 *     |         | S = max position + 1 of the call exceeds M = max_position_embeddings        |                |
 *     | yarn    | base and base / factor blended by a linear ramp between the correction dims | A (below)      |
 *     |         | of beta_fast and beta_slow over O (floored / ceiled unless truncate false)  |                |
 *     | llama3  | base / factor for wavelengths over O / low_freq_factor, base under          | 1              |
 *     |         | O / high_freq_factor, smoothly interpolated between                         |                |
 *
 * O is original_max_position_embeddings. Yarn's A is attention_factor when given, else m(factor, mscale) /
 * m(factor, mscale_all_dim) when both are given and not 0 (DeepSeek), else m(factor, 1), with m(s, k) = 0.1 k ln s + 1
 * (1 for s <= 1).
 *
 * Each step is the f32 arithmetic transformers does on its tensors (torch's `a / t` being `t.reciprocal() * a`), so
 * frequencies differ from transformers' only where the platform's powf does (one ulp, rarely). Rotation covers the
 * whole head (partial_rotary_factor is refused by mt_cfg_rope).
 *
 * Multimodal positions: pos is [axes][T]. With sections (t, h, w) summing to D/2, frequency i takes the position of
 * axis a(i): contiguous sections (Qwen2-VL: i < s0 -> t, then h, then w) or interleaved (Qwen3-VL: i % 3 == 1 and
 * i < 3 s1 -> h, i % 3 == 2 and i < 3 s2 -> w, else t). Without sections every frequency uses axis 0.
 */
#ifndef MT_NN_ROPE_H
#define MT_NN_ROPE_H

#include "tensor/tensor.h"

typedef enum mt_rope_type { MT_ROPE_DEFAULT, MT_ROPE_LINEAR, MT_ROPE_DYNAMIC, MT_ROPE_YARN, MT_ROPE_LLAMA3 } mt_rope_type;

typedef struct mt_rope_cfg {
    mt_rope_type type;
    double theta;
    int64_t dim;          /* rotated dims per head (head_dim) */
    double factor;        /* linear, dynamic, yarn, llama3 */
    int64_t original_max; /* yarn, llama3: original_max_position_embeddings; dynamic: max_position_embeddings */
    double low_freq_factor, high_freq_factor; /* llama3 */
    double beta_fast, beta_slow, attention_factor; /* yarn; attention_factor 0: derived from factor (and mscale) */
    double mscale, mscale_all_dim;                 /* yarn (DeepSeek): 0 when absent */
    bool yarn_truncate;   /* yarn: correction dims floored / ceiled (transformers' default true) */
    int64_t sections[3];  /* M-RoPE (t, h, w) frequencies, or all 0 for 1-D */
    bool interleaved;     /* Qwen3-VL layout of the sections */
} mt_rope_cfg;

/* Names the type ("default", "linear", "dynamic", "yarn", "llama3"; "mrope" is default); false when unknown. */
bool mt_rope_type_parse(const char *name, mt_rope_type *out);
/* Whether the config is usable (dim even, theta positive, sections summing to dim/2, factor >= 1 for scaled types,
 * llama3 high_freq_factor > low_freq_factor, yarn beta_fast >= beta_slow); msg says why not, naming the field. */
bool mt_rope_cfg_check(const mt_rope_cfg *c, char *msg, size_t cap);
/* Positions per axis: 3 with sections, else 1. */
int mt_rope_axes(const mt_rope_cfg *c);
/* inv_freq [dim/2] for rows whose largest position is max_pos, and the factor cos and sin are scaled by. */
void mt_rope_inv_freq(const mt_rope_cfg *c, int64_t max_pos, float *inv_freq, float *scale);
/* cos, sin [T, dim/2] of positions pos [mt_rope_axes(c)][T] (row stride T). */
mt_status mt_nn_rope(mt_ctx *ctx, const mt_rope_cfg *c, const int64_t *pos, int64_t T, mt_tensor **cos,
                     mt_tensor **sin);

/* Rotary tables cos, sin [N, D/2] for 2D vision RoPE: the first D/4 angles come from the patch row, the next D/4
 * from its column, with inverse frequencies theta^(-2k / (D/2)). */
mt_status mt_nn_rope_2d(mt_ctx *ctx, const int64_t *rows, const int64_t *cols, int64_t N, int64_t head_dim,
                        double theta, mt_tensor **cos, mt_tensor **sin);

#endif
