/* tensor/cpu: the CPU compute kernels - GEMM for linear layers, a strided f32 matmul, fused attention and row-wise
 * vector helpers - with run-time dispatch between a scalar reference path, AVX2+FMA+F16C and AVX-512.
 *
 * Raw-pointer APIs: no tensor struct, the tensor layer sits on top. Threads come from one mt_pool (NULL runs on the
 * caller). All arithmetic accumulates in f32. Shape legend used below:
 *
 *   | letter | meaning                                   | storage                                   |
 *   |--------|-------------------------------------------|-------------------------------------------|
 *   | M      | rows of A and C (tokens)                  | A[m*lda + k], C[m*ldc + n]                |
 *   | N      | output features                           | W[n*ldw + k] (HF row-major [out, in])     |
 *   | K      | input features (reduction)                | contiguous in A rows and W rows           |
 *   | T, S   | queries, keys of attention                | q[t*q_st + h*q_sh + d]                    |
 *   | H, Hk  | query heads, key/value heads (GQA)        | head h reads kv head h / (H / Hk)         |
 *   | D      | head dimension                            | contiguous                                |
 *
 * Instruction-set level: the best the CPU has (cpuid + xgetbv), lowered by the environment variable
 * MT_CPU=scalar|avx2|avx512 or by mt_cpu_set_level(); a request above what the CPU has is capped. The scalar path
 * is the reference every other path is tested against.
 *
 * bf16 dot products (AVX-512-BF16, vdpbf16ps) serve the GEMM (M > 16) of linears of bf16 and of quantized weights
 * (their panels dequantized, then rounded to bf16) and change the numerics: the activations are rounded to bf16
 * before the product, as llama.cpp and PyTorch's CPU autocast do. The GEMV of decode stays on f32 FMAs. By
 * default (auto) they run where they pay: where this core's vdpbf16ps throughput is at least MT_BF16_DOT_PAYS times
 * its f32 FMA throughput (Zen 4/5 yes; Sapphire Rapids, at about half, no), measured once in a fraction of a
 * millisecond. MT_BF16_DOT=0 / 1 or mt_cpu_set_bf16_dot() forces them off / on; training turns them off (its
 * results are f32 throughout). docs/DESIGN.md gives the decision and the logit error.
 *
 * Scratch: GEMM and attention keep a per-thread scratch buffer that grows to the largest call and is reused, so a
 * forward pass does not allocate in its hot loop. If it cannot grow, the kernels fall back to an unblocked loop
 * that needs no memory: slower, same result.
 */
#ifndef MT_CPU_H
#define MT_CPU_H

#include "base/base.h"
#include "base/pool.h"
#include "tensor/dtype.h"

typedef enum mt_cpu_level { MT_CPU_SCALAR = 0, MT_CPU_AVX2 = 1, MT_CPU_AVX512 = 2 } mt_cpu_level;

/* The best level this CPU and OS support (AVX2 needs AVX2+FMA+F16C; AVX-512 needs F/BW/VL/DQ and OS zmm state). */
mt_cpu_level mt_cpu_detect(void);
/* One core's L2 cache in bytes (1 MiB where the system does not say): the GEMM sizes its B block by it. */
int64_t mt_cpu_l2_bytes(void);
/* True when the CPU has AVX-512-BF16 on top of the AVX-512 level. */
/* Why MT_CPU (scalar, avx2, avx512 or best) or MT_BF16_DOT (0 or 1) was not understood or cannot be honoured, or
 * NULL: the kernels then run on the levels the CPU has, and a program should refuse to start. */
const char *mt_cpu_env_problem(void);
bool mt_cpu_has_avx512bf16(void);
/* The level kernels use now. */
mt_cpu_level mt_cpu_level_get(void);
/* Asks for a level; returns the one in effect (capped at mt_cpu_detect()). Not to be called while kernels run. */
mt_cpu_level mt_cpu_set_level(mt_cpu_level level);
/* "scalar", "avx2", "avx512". */
const char *mt_cpu_level_name(mt_cpu_level level);
/* Turns the bf16 dot-product path on or off; returns whether it is on (false when the CPU lacks AVX-512-BF16 or the
 * level is below AVX-512). */
bool mt_cpu_set_bf16_dot(bool on);
typedef enum mt_bf16_dot_mode { MT_BF16_DOT_OFF = 0, MT_BF16_DOT_ON = 1, MT_BF16_DOT_AUTO = 2 } mt_bf16_dot_mode;
#define MT_BF16_DOT_PAYS 1.3
void mt_cpu_set_bf16_dot_mode(mt_bf16_dot_mode mode);
mt_bf16_dot_mode mt_cpu_bf16_dot_mode(void);
/* Whether the bf16 dot path is on and usable at the current level. */
bool mt_cpu_bf16_dot_on(void);
/* vdpbf16ps over f32 FMA throughput on this core (counted as flops), measured on first use; 0 without the
 * instruction. */
double mt_cpu_bf16_dot_ratio(void);
/* True when the CPU has AVX-VNNI (VEX vpdpbusd) / AVX-512-VNNI on top of the avx2 / avx512 level. */
bool mt_cpu_has_avxvnni(void);
bool mt_cpu_has_avx512vnni(void);
/* Turns the VNNI kernels of quantized linears on or off (on by default); returns whether they run at the current
 * level. The integer dot products are exact either way, so this changes speed, not results. */
bool mt_cpu_set_vnni(bool on);
/* The kernel paths in effect, for reports: the level, whether bf16 dot products run, and which int8 dot products
 * quantized linears use ("avx512; bf16 dot products off (...); int8 dot products avx512-vnni"). Returns buf. */
const char *mt_cpu_paths(char *buf, size_t cap);
/* Frees the calling thread's scratch buffer (it would be freed at thread exit anyway). */
void mt_cpu_scratch_release(void);

/* C[M,N] = A[M,K] . W[N,K]^T (+ bias[N]) (+ C when accumulate).
 * A: f32, row stride lda. W: f32, bf16 or f16, row stride ldw (elements), read in place (e.g. from mmap).
 * bias: f32 or NULL. C: f32, row stride ldc; must not overlap A or W. M = 1..16 takes a GEMV path that streams W
 * once; larger M packs panels of W (converted to f32) and runs a register-blocked micro-kernel. */
void mt_cpu_linear(mt_pool *pool, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const void *W,
                   mt_dtype wt, int64_t ldw, const float *bias, float *C, int64_t ldc, bool accumulate);

/* The gated linear's epilogue over n columns of one row: up_y[i] = act(gate[i]) * up_y[i]; gate may be
 * overwritten. arg is the caller's (the activation). */
typedef void (*mt_cpu_gate_fn)(const void *arg, int64_t n, float *gate, float *up_y);

/* C[M,N] = fn(A . Wg^T + bg, A . Wu^T + bu): a gated MLP's gate and up products in one pass over the pool (SwiGLU and
 * kin; bg, bu: [N] or NULL).
 * A is read (GEMV: rounded to bf16, GEMM: packed) once; each task computes its block of both products and runs
 * fn on it while it is in cache, so no [M, 2N] intermediate goes to memory. Each product is computed exactly as
 * mt_cpu_linear computes it (same kernels, same order), so C equals the unfused result bit for bit. Wg and Wu: same
 * dtype (f32, bf16, f16) and row stride ldw. Returns false, computing nothing, when it cannot fuse (a quantized
 * weight, K too long for one packed block of A, no scratch): the caller then runs the two linears. */
bool mt_cpu_gated_linear(mt_pool *pool, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
                         const void *Wg, const void *Wu, mt_dtype wt, int64_t ldw, const float *bg, const float *bu,
                         mt_cpu_gate_fn fn, const void *arg, float *C, int64_t ldc);

/* C[M,N] = A[M,K] . B[K,N] (+ C when accumulate), all f32. Element (m,k) of A is A[m*rsa + k*csa] and (k,n) of B is
 * B[k*rsb + n*csb], so transposed operands cost nothing: A^T.B is (rsa, csa) = (1, lda). C: row stride ldc. */
void mt_cpu_matmul_f32(mt_pool *pool, int64_t M, int64_t N, int64_t K, const float *A, int64_t rsa, int64_t csa,
                       const float *B, int64_t rsb, int64_t csb, float *C, int64_t ldc, bool accumulate);
/* The same with B in any weight dtype (f32, bf16, f16), widened to f32 panel by panel as mt_cpu_linear does: the
 * input gradient of a linear layer, dY . W, reads a frozen bf16 weight in place with (rsb, csb) = (ldw, 1). */
void mt_cpu_matmul(mt_pool *pool, int64_t M, int64_t N, int64_t K, const float *A, int64_t rsa, int64_t csa,
                   const void *B, mt_dtype bt, int64_t rsb, int64_t csb, float *C, int64_t ldc, bool accumulate);

/* Fused attention: out = softmax(scale * q k^T + mask) v per head, tiled over keys with an online softmax (no T x S
 * matrix). Threads over (kv head, query block); query heads sharing a kv head are computed together. */
typedef struct mt_attn_args {
    const float *q;
    int64_t q_st, q_sh; /* q[t*q_st + h*q_sh + d], d contiguous */
    const void *k;
    int64_t k_st, k_sh;
    const void *v;
    int64_t v_st, v_sh;
    mt_dtype kv_dtype; /* MT_F32 or MT_BF16 (KV cache) */
    float *out;
    int64_t o_st, o_sh;
    int64_t n_q, n_kv;
    int n_heads, n_kv_heads, head_dim; /* GQA: head h uses kv head h / (n_heads / n_kv_heads) */
    float scale;
    bool causal;
    int64_t q_pos0; /* causal: query i sees keys j <= q_pos0 + i */
    int64_t window; /* causal and > 0: query i sees only keys j > q_pos0 + i - window (`window` keys, itself too) */
    const int64_t *cu_seqlens;
    int64_t n_seg; /* if cu_seqlens != NULL (n_q == n_kv): query i sees the keys of its segment
                      [cu[s], cu[s+1]), s < n_seg, cu[0] = 0, cu[n_seg] = n_q */
    bool bf16;     /* Q K^T and P V may take bf16 dot products where linears do (mt_cpu_bf16_dot_on): Q, K, P and V
                      rounded to bf16, scores, softmax and O in f32; decode rows (the GEMV's) stay f32 */
} mt_attn_args;

/* A query that sees no key gets zeros. Does nothing when the head counts do not divide or a size is not positive. */
void mt_cpu_attention(mt_pool *pool, const mt_attn_args *a);

/* Gradients of out = softmax(scale * q k^T + mask) v with respect to q, k and v, with the masks of mt_cpu_attention
 * (attention_backward.c). dout is laid out like out (a->o_st, a->o_sh) and a->out must hold the forward's output;
 * the gradients are ADDED into dq (laid out like q: a->q_st, a->q_sh), dk (a->k_st, a->k_sh) and dv (a->v_st,
 * a->v_sh); any of the three may be NULL to skip it. dk and dv of a kv head sum over its query heads; a query that
 * sees no key adds nothing. The result is the same bit for bit on any number of threads.
 * f32 K/V only: does nothing for bf16 K/V, when dout is NULL, or where mt_cpu_attention would do nothing. */
typedef struct mt_attn_grad {
    const float *dout;
    float *dq, *dk, *dv;
} mt_attn_grad;
void mt_cpu_attention_backward(mt_pool *pool, const mt_attn_args *a, const mt_attn_grad *g);

/* Row-wise vector helpers (single-threaded; SIMD at the current level). y may equal x (in place). */
float mt_cpu_dot(int64_t n, const float *x, const float *y);
void mt_cpu_axpy(int64_t n, float a, const float *x, float *y);                       /* y += a*x */
void mt_cpu_scale(int64_t n, float a, float *x);                                      /* x *= a */
float mt_cpu_max(int64_t n, const float *x);                                          /* -inf when n == 0 */
void mt_cpu_exp(int64_t n, const float *x, float *y);                                 /* y = e^x */
float mt_cpu_exp_sum(int64_t n, const float *x, float shift, float *y);               /* y = e^(x-shift); sum y */
void mt_cpu_softmax(int64_t n, const float *x, float *y);                             /* over the row */
/* y = x * rsqrt(mean(x^2) + eps) * w, w f32 or bf16 (as HF Qwen2RMSNorm in f32). */
void mt_cpu_rmsnorm(int64_t n, const float *x, const void *w, mt_dtype wt, float eps, float *y);
void mt_cpu_silu(int64_t n, const float *x, float *y);                                /* x * sigmoid(x) */
void mt_cpu_sigmoid(int64_t n, const float *x, float *y);                             /* 1 / (1 + e^-x) */
void mt_cpu_swiglu(int64_t n, const float *gate, const float *up, float *y);          /* silu(gate) * up */
void mt_cpu_gelu_erf(int64_t n, const float *x, float *y);                            /* x/2 (1 + erf(x/sqrt 2)) */
void mt_cpu_gelu_tanh(int64_t n, const float *x, float *y);                           /* the tanh approximation */
/* Conversions between f32 and f32/bf16/f16 rows (round to nearest even, NaN stays NaN, as dtype.h). */
void mt_cpu_to_f32(int64_t n, const void *x, mt_dtype xt, float *y);
void mt_cpu_from_f32(int64_t n, const float *x, void *y, mt_dtype yt);

#endif
