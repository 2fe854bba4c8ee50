/* models/decoder: the text decoder part - every decoder-only transformer our families use, configured from its
 * config.json section, never copied per family.
 *
 *     | kind       | attention                               | FFN                                    | e.g.       |
 *     |------------|-----------------------------------------|----------------------------------------|------------|
 *     | qwen2      | q/k/v biases, o without                 | gated SiLU                             | Qwen2(.5)  |
 *     | qwen2_vl   | as qwen2, never sliding                 | gated SiLU                             | Qwen2-VL   |
 *     | qwen3      | attention_bias (default none), q/k norm | gated SiLU                             | Qwen3      |
 *     | qwen3_vl   | as qwen3, never sliding                 | gated SiLU                             | Qwen3-VL   |
 *     | qwen3_moe  | as qwen3                                | MoE: router, top-k, norm_topk_prob;    | Qwen3-MoE  |
 *     |            |                                         | dense where mlp_only_layers / step say |            |
 *     | qwen3_vl_  | as qwen3                                | MoE, experts as fused stacks, always   | Qwen3-VL-  |
 *     | moe        |                                         | renormalised                           | MoE        |
 *     | qwen2_moe  | q/k/v biases (qkv_bias, default on),    | MoE as qwen3_moe, plus a shared expert | Qwen1.5-   |
 *     |            | o without                               | with a sigmoid gate                    | MoE, Qwen2-|
 *     |            |                                         |                                        | 57B-A14B   |
 *     | llama      | attention_bias (default none)           | gated SiLU                             | Llama 3    |
 *     | internlm2  | packed wqkv in grouped order, its bias  | gated SiLU (w1 gate, w3 up, w2 down)   | InternLM2, |
 *     |            | and wo's from "bias" (default on)       |                                        | InternVL2.5|
 * All: RMSNorm pre-norm blocks, head_dim from the config (else hidden / heads), GQA, any rope of nn/rope.h, tied or
 * untied LM head. MoE routers are MT_WEIGHT_OPT_IN (frozen unless training asks for them); fused expert stacks are
 * read in place through transposed views and are MT_WEIGHT_FROZEN.
 * Sliding-window attention as transformers 5 decides it: qwen2 and qwen3 slide the layers layer_types marks
 * "sliding_attention" (without layer_types, those from max_window_layers on), qwen3_moe every layer, all only when
 * use_sliding_window is true; qwen3_vl_moe refuses it.
 *
 * Shapes: T batch rows, H hidden, V vocabulary, E experts.
 */
#ifndef MT_MODELS_DECODER_H
#define MT_MODELS_DECODER_H

#include "models/config.h"
#include "models/model.h"
#include "nn/moe.h"

#define MT_DECODER_MAX_LAYERS 1024

/* A kind's tensor names after the text prefix (Qwen's: embed_tokens, self_attn.q_proj, ...; InternLM2's:
 * tok_embeddings, attention.wqkv, ...). qkv set: one packed projection instead of q, k and v (see nn/attention.h). */
typedef struct mt_decoder_names {
    const char *embed, *ln1, *ln2, *q, *k, *v, *qkv, *o, *gate, *up, *down;
    const char *head; /* the LM head's last name part, replacing "lm_head.weight" in the composition's head name */
} mt_decoder_names;

typedef struct mt_decoder_cfg {
    int64_t hidden, inter, n_layers, n_heads, n_kv, head_dim, vocab, max_positions;
    float rms_eps;
    bool qkv_bias, o_bias, qk_norm, tied;
    /* sliding-window attention: layer l attends to the last `window` positions (its own included) when
     * window_layer[l]; window 0 = none */
    int64_t window;
    uint8_t window_layer[MT_DECODER_MAX_LAYERS];
    const mt_decoder_names *names;
    mt_act act;
    double attn_dropout; /* attention_dropout: the forward never drops (inference ignores it, as transformers does) */
    mt_rope_cfg rope;
    /* MoE (n_experts 0: dense) */
    int64_t n_experts, top_k, moe_inter, sparse_step;
    bool norm_topk, fused_experts;
    int64_t shared_inter; /* shared expert width (shared_expert_intermediate_size), 0: none; gated by a sigmoid */
    uint8_t *dense_layer; /* [n_layers]: 1 where the layer keeps a dense FFN (mlp_only_layers, sparse step) */
} mt_decoder_cfg;

/* The decoder kind of composition c for its text section: c->decoder_kind, or, with c->decoder_kinds, the kind
 * the text section's c->decoder_kind_key names (c->decoder_kind when the field is absent). A name with no kind is
 * refused, listing those there are. what: the section's name for messages. */
mt_status mt_decoder_kind(const mt_composition *c, const cJSON *text, const char *path, const char *what,
                          const char **kind, mt_err *err);

/* Reads the decoder's config for the given kind: text is the text section of config.json (root when flat); keys such
 * as tie_word_embeddings may sit in either. */
mt_status mt_decoder_config(const char *kind, const cJSON *root, const cJSON *text, const char *path, const char *what,
                            mt_decoder_cfg *out, mt_err *err);

/* Loads the decoder's weights: prefix + cfg->names' (embed "weight", "layers.N....", "norm.weight"); lm_head_name unless
 * tied (a tied checkpoint that saved it anyway ties it, as transformers loads it). The decoder takes cfg's
 * allocations (dense_layer), on failure too. */
mt_status mt_decoder_load(mt_model *m, const mt_decoder_cfg *cfg, const char *prefix, const char *lm_head_name,
                          mt_decoder **out, mt_err *err);
void mt_decoder_free(mt_decoder *d);
const mt_decoder_cfg *mt_decoder_get_cfg(const mt_decoder *d);

/* Token embeddings [n, H]. */
mt_tensor *mt_decoder_embed(const mt_decoder *d, mt_ctx *ctx, const int32_t *ids, int64_t n);
/* The batch through every layer and the final norm: hidden states [T, H]. The rows go into kv (NULL: each sequence
 * of the batch attends within itself, the training pass); kv's lengths move only when the whole pass succeeds. */
mt_tensor *mt_decoder_forward(const mt_decoder *d, mt_ctx *ctx, mt_kv *kv, const mt_batch *b, const mt_dump *dump);
/* The LM head [V, H]. */
const mt_tensor *mt_decoder_lm_head(const mt_decoder *d);

#endif
