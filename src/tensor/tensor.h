/* tensor: strided tensors, the op context, and the ops every model family is written with.
 *
 * Shape legend used across ops: T tokens (rows), C channels, H heads, D head dim, N output features, K input
 * features. Activations are f32 and row-major; weights may be f32, bf16 or f16 and are used where they lie
 * (often inside a mapped checkpoint).
 *
 * Error handling: an op returns NULL when it fails (out of scratch memory, shape mismatch) and records the first
 * failure in ctx->status / ctx->err; every op given a NULL input returns NULL at once. A forward pass can thus be
 * written as a chain of calls and checked once at the end:
 *
 *     mt_tensor *h = mt_op_rms_norm(ctx, x, w, eps);
 *     h = mt_op_linear(ctx, h, wq, bq);
 *     ...
 *     if (!out) return ctx->status;
 *
 * Outputs live in ctx->arena until the caller resets it. ctx->tape is the autograd tape (tensor/autograd.h): NULL
 * in inference; in training every op with an input that requires a gradient records itself there, and its output
 * requires a gradient too. A tensor that requires a gradient must outlive mt_backward (arena, model or trainer
 * memory; never a stack wrapper).
 */
#ifndef MT_TENSOR_H
#define MT_TENSOR_H

#include "base/arena.h"
#include "base/pool.h"
#include "tensor/dtype.h"

#define MT_MAX_DIMS 4

typedef struct mt_tape mt_tape;

typedef struct mt_tensor {
    mt_dtype dtype;
    int ndim;
    int64_t shape[MT_MAX_DIMS];
    int64_t stride[MT_MAX_DIMS]; /* in elements */
    void *data;
    struct mt_tensor *grad; /* training: gradient of the loss, f32, contiguous in this tensor's shape */
    bool requires_grad;     /* training: ops record their backward for it (parameters set it; outputs inherit it) */
    int device;             /* where data lives: an mt_device of tensor/backend.h, 0 = the CPU */
} mt_tensor;

typedef struct mt_backend mt_backend;

typedef struct mt_ctx {
    mt_arena *arena;
    mt_pool *pool;
    mt_tape *tape;
    const mt_backend *backend; /* the kernels ops run on (tensor/backend.h); NULL = the CPU */
    mt_status status; /* first failure, sticky */
    mt_err err;
} mt_ctx;

/* The backend of ctx (the CPU when unset); a tensor not on its device (MT_ERR_UNSUPPORTED, NULL returned) or on the
 * CPU only (mt_need_host: ops with no kernel in the backend table). Both pass NULL through. */
const mt_backend *mt_ctx_backend(const mt_ctx *ctx);
mt_tensor *mt_need_device(mt_ctx *ctx, const mt_tensor *x, const char *op);
mt_tensor *mt_need_host(mt_ctx *ctx, const mt_tensor *x, const char *op);

/* Records a failure in ctx (the first one wins) and returns NULL, for `return mt_ctx_fail(ctx, ...)` in ops. */
mt_tensor *mt_ctx_fail(mt_ctx *ctx, mt_status code, const char *fmt, ...) MT_PRINTF(3, 4);

/* Copies x into res (same size, allocated before mark) and rewinds the arena to mark; returns res (NULL when x or
 * res is NULL). A layer loop calls it at the end of each layer so a forward pass needs the scratch of one layer,
 * not of all of them. In training (ctx->tape set) the activations are kept for backward: it returns x as it is. */
mt_tensor *mt_ctx_rewind_keep(mt_ctx *ctx, mt_arena_mark mark, mt_tensor *res, const mt_tensor *x);

/* A copy of bytes in ctx->arena (for what a tape node keeps), or NULL with the failure in ctx. */
void *mt_ctx_copy(mt_ctx *ctx, const void *src, size_t bytes);

/* A contiguous tensor in the arena, uninitialised / zeroed. */
mt_tensor *mt_tensor_new(mt_ctx *ctx, mt_dtype dtype, int ndim, const int64_t *shape);
mt_tensor *mt_tensor_zeros(mt_ctx *ctx, mt_dtype dtype, int ndim, const int64_t *shape);
mt_tensor *mt_tensor_new_2d(mt_ctx *ctx, mt_dtype dtype, int64_t rows, int64_t cols);

/* Describes existing memory as a contiguous tensor (no copy, no ownership). */
mt_tensor mt_tensor_wrap(mt_dtype dtype, int ndim, const int64_t *shape, const void *data);

int64_t mt_tensor_numel(const mt_tensor *t);
bool mt_tensor_is_contiguous(const mt_tensor *t);
/* Rows of a 2D tensor [r0, r0+n) as a view (no copy). */
mt_tensor *mt_tensor_rows(mt_ctx *ctx, const mt_tensor *t, int64_t r0, int64_t n);
/* Columns [c0, c0+n) of a 2D tensor as a strided view (no copy; mt_op_contiguous materialises it). */
mt_tensor *mt_tensor_cols(mt_ctx *ctx, const mt_tensor *t, int64_t c0, int64_t n);
static inline float *mt_f32(const mt_tensor *t) { return (float *)t->data; }

/* ---- ops (all outputs f32, contiguous) ---- */

/* x [T, K] f32 · w [N, K]^T (f32/bf16/f16) + b [N] (f32 or NULL) -> [T, N]. w is row-major, or a transposed view
 * (stride {1, ld}: stored [K, N] as fused MoE expert stacks are), read in place either way. */
mt_tensor *mt_op_linear(mt_ctx *ctx, const mt_tensor *x, const mt_tensor *w, const mt_tensor *b);
/* rows of table [V, C] (any float dtype) picked by ids [T] (i32) -> [T, C]; ids are checked against V */
mt_tensor *mt_op_embedding(mt_ctx *ctx, const mt_tensor *table, const int32_t *ids, int64_t n);
/* x [T, C]: x * rsqrt(mean(x^2) + eps) * w */
mt_tensor *mt_op_rms_norm(mt_ctx *ctx, const mt_tensor *x, const mt_tensor *w, float eps);
/* x [T, C]: (x - mean) / sqrt(var + eps) * w + b */
mt_tensor *mt_op_layer_norm(mt_ctx *ctx, const mt_tensor *x, const mt_tensor *w, const mt_tensor *b, float eps);

/* MT_ACT_SIGMOID is 1 / (1 + e^-x) (Qwen2-MoE's shared-expert gate). */
typedef enum { MT_ACT_SILU, MT_ACT_GELU_ERF, MT_ACT_GELU_TANH, MT_ACT_QUICK_GELU, MT_ACT_SIGMOID } mt_act;
/* Parses "silu", "gelu", "gelu_pytorch_tanh", "quick_gelu", "sigmoid" (transformers' ACT2FN names); false when
 * unknown. */
bool mt_act_parse(const char *name, mt_act *out);
/* The names mt_act_parse takes, comma-separated, for messages (cut to fit cap). */
void mt_act_list(char *out, size_t cap);
mt_tensor *mt_op_act(mt_ctx *ctx, const mt_tensor *x, mt_act act);
/* act(gate) * up, the gated MLP's middle */
mt_tensor *mt_op_gated_act(mt_ctx *ctx, const mt_tensor *gate, const mt_tensor *up, mt_act act);
/* gated_act(linear(x, gate_w, gate_b), linear(x, up_w, up_b), act), biases optional (NULL): in one pass over x
 * (mt_cpu_gated_linear) for inference, equal to the unfused ops bit for bit; the unfused graph whenever a gradient
 * is wanted, the weights are quantized or stored transposed, or the backend cannot fuse. */
mt_tensor *mt_op_gated_linear(mt_ctx *ctx, const mt_tensor *x, const mt_tensor *gate_w, const mt_tensor *gate_b,
                              const mt_tensor *up_w, const mt_tensor *up_b, mt_act act);
mt_tensor *mt_op_add(mt_ctx *ctx, const mt_tensor *a, const mt_tensor *b);
mt_tensor *mt_op_mul(mt_ctx *ctx, const mt_tensor *a, const mt_tensor *b);
/* softmax over the last dim of [T, C] */
mt_tensor *mt_op_softmax(mt_ctx *ctx, const mt_tensor *x);
/* x [T, C] / rowsum(x) -> [T, C]: the chosen experts' routing weights renormalised to sum to 1 (transformers'
 * norm_topk_prob). Fails on a row that sums to exactly zero. */
mt_tensor *mt_op_row_normalize(mt_ctx *ctx, const mt_tensor *x);

/* Rotary embedding in the rotate-half layout: x [T, H*D] viewed as [T, H, D]; cos, sin [T, D/2] hold the angle
 * of the pair (i, i + D/2). 1D, 2D-vision and M-RoPE differ only in how the caller fills cos and sin. */
mt_tensor *mt_op_rope(mt_ctx *ctx, const mt_tensor *x, int n_heads, const mt_tensor *cos, const mt_tensor *sin);

typedef struct mt_attn_opts {
    float scale;
    bool causal;
    int64_t q_pos0;             /* causal: query i sees keys j <= q_pos0 + i */
    int64_t window;             /* causal sliding window, 0 = none: query i also needs j > q_pos0 + i - window, so it
                                   sees `window` keys counting itself (transformers' sliding_window_overlay,
                                   kv_idx > q_idx - sliding_window); needs causal, never negative */
    const int64_t *cu_seqlens;  /* bidirectional block-diagonal segments, or NULL */
    int64_t n_seg;
    bool bf16_products;         /* inference may multiply on bf16 dot products where the linears do (vision towers:
                                   mt_attn_args.bf16); a recorded (training) forward stays f32 */
} mt_attn_opts;
/* q [Tq, Hq*D], k and v [Tk, Hkv*D] (f32 or bf16) -> [Tq, Hq*D] */
mt_tensor *mt_op_attention(mt_ctx *ctx, const mt_tensor *q, const mt_tensor *k, const mt_tensor *v, int n_heads,
                           int n_kv_heads, const mt_attn_opts *opts);

/* rows of x [T, C] in the order idx [n] -> [n, C]; indices are checked */
mt_tensor *mt_op_gather_rows(mt_ctx *ctx, const mt_tensor *x, const int64_t *idx, int64_t n);
/* k columns of each row of x [T, C]: y[t, j] = x[t, idx[t*k + j]] -> [T, k] (the probabilities of each token's
 * chosen experts). idx holds T*k entries, each checked against C; a column may repeat (gradients add up). */
mt_tensor *mt_op_gather_cols(mt_ctx *ctx, const mt_tensor *x, const int64_t *idx, int64_t k);
/* Elements of a contiguous x picked by flat index: y[i] = x.flat[flat[i]] -> [n, 1] (the weights of one expert's
 * (token, slot) pairs out of [T, k], flat = t*k + slot). Each index is checked against x's size; repeats add up
 * in backward. */
mt_tensor *mt_op_pick(mt_ctx *ctx, const mt_tensor *x, const int64_t *flat, int64_t n);
/* [Ta, C] ++ [Tb, C] -> [Ta+Tb, C] */
mt_tensor *mt_op_concat_rows(mt_ctx *ctx, const mt_tensor *a, const mt_tensor *b);
/* reinterpret a contiguous tensor with a new shape of the same size (a view) */
mt_tensor *mt_op_reshape(mt_ctx *ctx, const mt_tensor *x, int ndim, const int64_t *shape);
/* any-strided tensor to a contiguous copy (f32 output for float inputs) */
mt_tensor *mt_op_contiguous(mt_ctx *ctx, const mt_tensor *x);
/* swaps two dims (a view; follow with mt_op_contiguous to materialise) */
mt_tensor *mt_op_transpose(mt_ctx *ctx, const mt_tensor *x, int d0, int d1);

/* y = s * x */
mt_tensor *mt_op_scale(mt_ctx *ctx, const mt_tensor *x, float s);
/* x [T, C] * g[None, :] with g f32 [C]: a per-channel scale (layer scale, as InternViT's ls1 / ls2); gradients to
 * both (dg sums over the rows). */
mt_tensor *mt_op_scale_cols(mt_ctx *ctx, const mt_tensor *x, const mt_tensor *g);
/* x [n, C] * w[:, None] with w f32 [n] or [n, 1] -> [n, C]; gradients flow to both (an expert's output times its
 * routing weight). */
mt_tensor *mt_op_scale_rows(mt_ctx *ctx, const mt_tensor *x, const mt_tensor *w);
/* base [T, C] with row idx[i] replaced by row i of src [n, C] (image features into token embeddings); indices are
 * checked and must be distinct. */
mt_tensor *mt_op_scatter_rows(mt_ctx *ctx, const mt_tensor *base, const int64_t *idx, const mt_tensor *src);
/* A new [T, C]: base [T, C] with row i of src [n, C] added to row idx[i] (torch index_add along dim 0; repeated
 * indices add up), e.g. an expert's weighted outputs into the layer output. Every index is checked against T
 * before anything is written. Gradients: dbase = dy, dsrc = dy[idx]; either input may be a constant. */
mt_tensor *mt_op_index_add_rows(mt_ctx *ctx, const mt_tensor *base, const int64_t *idx, const mt_tensor *src);
/* The same sum, written into base itself where that cannot be observed: no tape is set (inference, so no node can
 * read base later), base needs no gradient and src does not overlap it; returns base then. Otherwise it returns
 * mt_op_index_add_rows's new tensor and leaves base as it was. Either way use the returned tensor, and pass as base
 * writable scratch of your own that nothing reads afterwards (the zeros a MoE layer accumulates its experts into,
 * then this op's previous result). On failure base is unchanged. */
mt_tensor *mt_op_index_add_rows_inplace(mt_ctx *ctx, mt_tensor *base, const int64_t *idx, const mt_tensor *src);
/* Mean-free token cross-entropy: logits [T, V], targets [T] (a negative target is ignored, as -100 in
 * transformers) -> [1] = inv_norm * sum over kept rows of (logsumexp(row) - row[target]). The caller picks inv_norm
 * (1 / supervised tokens of the whole global batch), so micro-batches and processes add up to the true mean.
 * Targets are checked against V. */
mt_tensor *mt_op_cross_entropy(mt_ctx *ctx, const mt_tensor *logits, const int32_t *targets, float inv_norm);
/* The same with a weight per row: [1] = sum over kept rows of weights[t] * (logsumexp(row) - row[target]), the
 * gradient of each row scaled by its weight (GRPO: a loss that is a function of each token's log-probability
 * back-propagates as d loss / d logp_t = -weight_t). row_nll [T] (may be NULL) gets each row's
 * logsumexp - row[target], 0 for ignored rows. */
mt_tensor *mt_op_cross_entropy_weighted(mt_ctx *ctx, const mt_tensor *logits, const int32_t *targets,
                                        const float *weights, float *row_nll);
/* Inverted dropout: zeroes each element with probability p and scales the rest by 1 / (1 - p). The mask is a pure
 * function of (seed, element index), so backward and a resumed run see the same mask without storing it. */
mt_tensor *mt_op_dropout(mt_ctx *ctx, const mt_tensor *x, float p, uint64_t seed);

/* Runs fn(user, r0, r1) over [0, rows) split across ctx->pool in chunks of about 16K elements of width C. */
void mt_ctx_parallel_rows(mt_ctx *ctx, int64_t rows, int64_t C, void (*fn)(void *user, int64_t r0, int64_t r1),
                          void *user);

/* Reads element i of a 1D-or-any float tensor (contiguous) as f32. */
float mt_tensor_get_f32(const mt_tensor *t, int64_t i);
/* Converts a float tensor of any dtype to a freshly mt_malloc'd f32 array (for small weights kept as f32). */
mt_status mt_tensor_to_f32_alloc(const mt_tensor *t, float **out, mt_err *err);

#endif
