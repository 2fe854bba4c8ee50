/* tensor/cpu internals: the table of per-instruction-set kernels the drivers (gemm.c, attention.c, vec.c) call.
 *
 * Packed layouts the GEMM micro-kernel reads:
 *
 *   | operand | layout                                                    | produced by        |
 *   |---------|-----------------------------------------------------------|--------------------|
 *   | A       | MR rows, row r at a + r*rsa, k contiguous (rsa >= kc)     | A itself or a copy |
 *   | B panel | [kc][NR] f32, column j of the panel at b[k*NR + j]        | pack_b             |
 *   | C tile  | MR x NR f32 at c[r*ldc + j]                               | the micro-kernel   |
 *
 * pack_b reads element (k, n) of B at src + (k*rs + n*cs) elements of dtype dt, converts it to f32 and writes
 * ceil(nc/NR) panels of kc*NR floats, one after the other, zero-padding the columns past nc.
 */
#ifndef MT_CPU_INT_H
#define MT_CPU_INT_H

#include "tensor/cpu/cpu.h"

/* The padding rows_bf16 reads A with: rows to a multiple of MT_ROWS_BF16_M, values to a multiple of MT_ROWS_BF16_K. */
#define MT_ROWS_BF16_M 4
#define MT_ROWS_BF16_K 32

typedef struct mt_cpu_isa {
    const char *name;
    int mr, nr;
    int gemv_m;
    /* C[MR,NR] = (load_c ? C : 0) + A[MR,kc] . Bpanel[kc,NR] */
    void (*ukr)(int64_t kc, const float *a, int64_t rsa, const float *b, float *c, int64_t ldc, bool load_c);
    void (*pack_b)(int64_t kc, int64_t nc, const void *src, mt_dtype dt, int64_t rs, int64_t cs, float *dst);
    /* m rows of A against W rows [0, n): C[i, j] = A_i . W_j (+ bias[j]) (+ C[i, j] if acc). Any m works; up to
     * gemv_m rows the kernel reads each W row once (the driver slices W through L2 for more). */
    void (*gemv)(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const void *w, mt_dtype wt, int64_t ldw,
                 const float *bias, float *c, int64_t ldc, bool acc);
    /* The GEMM on bf16 dot products (vdpbf16ps), same MR x NR tile: A rows of bf16 (row r at a + r*rsa, k
     * contiguous, padded with a zero to an even length), B panels [kp][NR][2] of k pairs from a bf16 weight
     * (column n, element k at src[n*ld + k]), kp = ceil(kc/2); NULL where the CPU lacks it. */
    void (*ukr_bf16)(int64_t kp, const uint16_t *a, int64_t rsa, const uint16_t *b, float *c, int64_t ldc,
                     bool load_c);
    void (*pack_b_bf16)(int64_t kc, int64_t nc, const uint16_t *src, int64_t ld, uint16_t *dst);
    /* The same panels from a Q4_K_R8 or Q8_0_R8 W in one pass, as dequant, round_bf16 and pack_b_bf16 make them: nc
     * (a multiple of 8) columns from whole groups at w (group g at w + 8 g wrow bytes, each at the block of the first
     * k), kc a multiple of the block. NULL where the CPU lacks it. */
    void (*pack_b_r8_bf16)(int64_t kc, int64_t nc, const void *w, size_t wrow, mt_dtype wt, uint16_t *dst);
    /* n floats of A rounded to bf16 for ukr_bf16: to nearest even, as mt_f32_to_bf16, but for inputs under the
     * smallest normal, which become zero (the instruction's DAZ; ukr_bf16 treats bf16 denormals as zero anyway). */
    void (*round_bf16)(int64_t n, const float *x, uint16_t *y);
    /* B panels for ukr_bf16 from a B stored by rows of k (element (k, n) at src[k*rs + n], f32 or bf16). */
    void (*pack_rows_bf16)(int64_t kc, int64_t nc, const void *src, mt_dtype dt, int64_t rs, uint16_t *dst);
    /* A few rows of bf16 A against bf16 W rows read in place, no panels: C[i, j] = A_i . W_j (+ bias[j]) (+ C[i, j]
     * if acc) for i < m, j < n. A's rows are lda apart, as round_bf16 gives them, zero-padded to a multiple of
     * MT_ROWS_BF16_M rows and each to a multiple of MT_ROWS_BF16_K values. NULL where the CPU lacks it. */
    void (*rows_bf16)(int64_t m, int64_t n, int64_t k, const uint16_t *a, int64_t lda, const uint16_t *w, int64_t ldw,
                      const float *bias, float *c, int64_t ldc, bool acc);
    /* Batched decode on bf16 W (2..16 rows): A packed once per call by pack_pairs, then gemv_pairs as gemv. Packed A:
     * per block of 2 pair_lanes k (the last zero-padded), per row, that row's pair_lanes even then pair_lanes odd
     * values; row i of block b at ap + (b*mp + i)*2*pair_lanes. gemv_pairs takes rows [0, m) at ap (a row offset
     * into a packing of mp rows) and reads each W row once for up to gemv_m rows. NULL where there is none.
     * mt_cpu_linear packs each pass's rows on their own (mp = m). */
    int pair_lanes;
    void (*pack_pairs)(int64_t m, int64_t k, const float *a, int64_t lda, float *ap);
    void (*gemv_pairs)(int64_t m, int64_t n, int64_t k, const float *ap, int64_t mp, const uint16_t *w, int64_t ldw,
                       const float *bias, float *c, int64_t ldc, bool acc);
    /* Quantized W (tensor/quant.h; W_j at w + j*ldw bytes, or in its group of 8 for Q4_K_R8 / Q8_0_R8, whose n
     * rows start a group) against m = 1..8 rows of activations quantized once (row i at aq + i*aq_stride bytes: Q8_0
     * values and scales for Q8_0/Q4_0 weights as mt_q8_0_act_bytes says, for Q8_0_R8 as mt_q8_0_r8_act_bytes, Q8_K
     * blocks for Q4_K/Q6_K/Q4_K_R8), integer dot
     * products per block: C[i, j] = A_i . W_j (+ bias[j]) (+ C[i, j] if acc). k is a multiple of the block. */
    void (*gemv_q)(int64_t m, int64_t n, int64_t k, const void *aq, size_t aq_stride, const void *w, mt_dtype wt,
                   size_t ldw, const float *bias, float *c, int64_t ldc, bool acc);
    /* One row of k activations quantized for weights of type wt: Q8_0 blocks for Q8_0/Q4_0, Q8_K for Q4_K/Q6_K,
     * the bytes mt_quantize_row_q8_0 / _q8_K give. */
    void (*quant_act)(int64_t k, const float *x, void *y, mt_dtype wt);
    /* A row of k quantized weights to the floats mt_dequantize_row gives (the prefill path's panels), or of f16
     * weights widened (their panels on the bf16 path). Q8_0_R8 and Q4_K_R8: x is a group's blocks, and k values of
     * each of its 8 rows go to y, rows k apart (Q8_0's and Q4_K's floats). */
    void (*dequant)(int64_t k, const void *x, float *y, mt_dtype wt);
    /* The same with vpdpbusd (AVX-VNNI at the avx2 level, AVX-512-VNNI at avx512); NULL at the scalar level. */
    void (*gemv_q_vnni)(int64_t m, int64_t n, int64_t k, const void *aq, size_t aq_stride, const void *w, mt_dtype wt,
                        size_t ldw, const float *bias, float *c, int64_t ldc, bool acc);
    float (*dot)(int64_t n, const float *x, const float *y);
    void (*axpy)(int64_t n, float a, const float *x, float *y);
    void (*scale)(int64_t n, float a, float *x);
    float (*max)(int64_t n, const float *x);
    float (*exp_sum)(int64_t n, const float *x, float shift, float *y);
    float (*sumsq)(int64_t n, const float *x);
    void (*mul_w)(int64_t n, const float *x, float s, const void *w, mt_dtype wt, float *y); /* y = x*s*w */
    void (*silu)(int64_t n, const float *x, float *y);
    void (*sigmoid)(int64_t n, const float *x, float *y);
    void (*swiglu)(int64_t n, const float *g, const float *u, float *y);
    void (*gelu_erf)(int64_t n, const float *x, float *y);
    void (*gelu_tanh)(int64_t n, const float *x, float *y);
    void (*to_f32)(int64_t n, const void *x, mt_dtype xt, float *y);
    void (*from_f32)(int64_t n, const float *x, void *y, mt_dtype yt);
    /* Roofline loops: `iters` rounds of independent FMA chains; returns the flops done (and a sink value in *out
     * so the work cannot be optimised away). */
    double (*fma_loop)(int64_t iters, float *out);
    double (*bf16_loop)(int64_t iters, float *out); /* NULL where there is no bf16 dot instruction */
    double (*read_sum)(int64_t n, const float *x, float *out); /* returns bytes read */
} mt_cpu_isa;

extern const mt_cpu_isa mt_cpu_isa_scalar, mt_cpu_isa_avx2, mt_cpu_isa_avx512;

/* The table of the current level. */
const mt_cpu_isa *mt_cpu_isa_get(void);
/* Whether the VNNI quantized GEMV is on and the CPU has it at the current level (AVX-VNNI at avx2, AVX-512-VNNI at
 * avx512). */
bool mt_cpu_vnni_on(void);
/* The calling thread's scratch, at least `bytes` long and 64-byte aligned; NULL when it cannot grow. Valid until
 * the next call on the same thread. */
void *mt_cpu_scratch(size_t bytes);

/* Portable pieces the ISA files share (cpu_scalar.c). */
void mt_cpu_pack_b_generic(int nr, int64_t kc, int64_t nc, const void *src, mt_dtype dt, int64_t rs, int64_t cs,
                           float *dst);
void mt_cpu_gemv_generic(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const void *w, mt_dtype wt,
                         int64_t ldw, const float *bias, float *c, int64_t ldc, bool acc);
static inline float mt_cpu_load(const void *p, mt_dtype dt, int64_t i) {
    if (dt == MT_BF16) return mt_bf16_to_f32(((const uint16_t *)p)[i]);
    if (dt == MT_F16) return mt_f16_to_f32(((const uint16_t *)p)[i]);
    return ((const float *)p)[i];
}

/* Quantized linear layers (gemm_quant.c). mt_cpu_linear hands quantized W here first: M <= 16 (the GEMV that streams
 * W), no K and shapes off the block are done here (true); M > 16 with shapes on the block is left to the GEMM
 * (false), which packs its B panels from W with mt_cpu_pack_b_quant. */
bool mt_cpu_linear_quant(mt_pool *pool, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const void *W,
                         mt_dtype wt, int64_t ldw, const float *bias, float *C, int64_t ldc, bool accumulate);
/* The GEMM's B panels from quantized (or f16) W of N rows (row j at W + j * mt_dtype_row_bytes(wt, ldw), or in its
 * group of 8 for the interleaved types): columns [k0, k0 + kc) of rows [n0, n0 + nc), dequantized as isa->dequant
 * does, in pack_b's f32 layout, or with bf16 rounded to bf16 in pack_b_bf16's; k0 and kc multiples of the block. */
void mt_cpu_pack_b_quant(const mt_cpu_isa *isa, int64_t kc, int64_t nc, const void *W, mt_dtype wt, int64_t ldw,
                         int64_t N, int64_t k0, int64_t n0, bool bf16, void *dst);
/* C (+)= A W^T + bias one block of W at a time, for when no scratch memory can be had. */
void mt_cpu_linear_quant_unblocked(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const void *W,
                                   mt_dtype wt, int64_t ldw, const float *bias, float *C, int64_t ldc, bool acc);
/* A row of k activations for Q8_0/Q4_0 weights as the quantized GEMV reads it: the k int8 values of its Q8_0 blocks,
 * contiguous; then per block its scale 8 times (a vector load gives a block's, or two blocks', lanes their scale);
 * then per block scale * sum of its values, 8 times (for Q4_0's -8 offset). Bytes of such a row: */
static inline size_t mt_q8_0_act_bytes(int64_t k) { return (size_t)k * 3; }
/* For Q8_0_R8 weights the row goes on with 128 * (sum of the block's values) per block, one int32 each: the + 128 of
 * the interleaved codes (tensor/quant.h) taken off in integers. Bytes of such a row: */
static inline size_t mt_q8_0_r8_act_bytes(int64_t k) { return mt_q8_0_act_bytes(k) + (size_t)(k / 32) * 4; }
/* Lanes [0, n) of a 16-lane (512-bit f32) mask, n clamped to [0, 16]: a row's tail, or a panel's part of a vector. */
static inline uint16_t mt_lanes16(int64_t n) { return n >= 16 ? 0xffff : n <= 0 ? 0 : (uint16_t)((1u << n) - 1u); }
/* The quantized GEMV kernels per instruction set (gemv_quant_*.c). */
void mt_cpu_gemv_q_scalar(int64_t m, int64_t n, int64_t k, const void *aq, size_t aq_stride, const void *w,
                          mt_dtype wt, size_t ldw, const float *bias, float *c, int64_t ldc, bool acc);
void mt_cpu_quant_act_scalar(int64_t k, const float *x, void *y, mt_dtype wt);
void mt_avx2_quant_act(int64_t k, const float *x, void *y, mt_dtype wt);
void mt_cpu_dequant_scalar(int64_t k, const void *x, float *y, mt_dtype wt);
void mt_avx2_dequant(int64_t k, const void *x, float *y, mt_dtype wt);
void mt_avx512_dequant(int64_t k, const void *x, float *y, mt_dtype wt);
void mt_avx2_pack_pairs(int64_t m, int64_t k, const float *a, int64_t lda, float *ap);
void mt_avx2_gemv_pairs(int64_t m, int64_t n, int64_t k, const float *ap, int64_t mp, const uint16_t *w, int64_t ldw,
                        const float *bias, float *c, int64_t ldc, bool acc);
void mt_avx512_pack_pairs(int64_t m, int64_t k, const float *a, int64_t lda, float *ap);
void mt_avx512_gemv_pairs(int64_t m, int64_t n, int64_t k, const float *ap, int64_t mp, const uint16_t *w,
                          int64_t ldw, const float *bias, float *c, int64_t ldc, bool acc);
void mt_avx512_quant_act(int64_t k, const float *x, void *y, mt_dtype wt);
void mt_avx2_gemv_q(int64_t m, int64_t n, int64_t k, const void *aq, size_t aq_stride, const void *w, mt_dtype wt,
                    size_t ldw, const float *bias, float *c, int64_t ldc, bool acc);
void mt_avxvnni_gemv_q(int64_t m, int64_t n, int64_t k, const void *aq, size_t aq_stride, const void *w, mt_dtype wt,
                       size_t ldw, const float *bias, float *c, int64_t ldc, bool acc);
void mt_avx512_gemv_q(int64_t m, int64_t n, int64_t k, const void *aq, size_t aq_stride, const void *w, mt_dtype wt,
                      size_t ldw, const float *bias, float *c, int64_t ldc, bool acc);
void mt_avx512vnni_gemv_q(int64_t m, int64_t n, int64_t k, const void *aq, size_t aq_stride, const void *w,
                          mt_dtype wt, size_t ldw, const float *bias, float *c, int64_t ldc, bool acc);

/* vec_avx512.c: the softmax row helpers of the AVX-512 table. */
float mt_avx512_exp_sum(int64_t n, const float *x, float shift, float *y);
float mt_avx512_max(int64_t n, const float *x);

/* AVX2 kernels the AVX-512 table reuses where 256-bit vectors are enough (memory-bound rows). */
float mt_avx2_dot(int64_t n, const float *x, const float *y);
void mt_avx2_axpy(int64_t n, float a, const float *x, float *y);
float mt_avx2_sumsq(int64_t n, const float *x);
void mt_avx2_scale(int64_t n, float a, float *x);
void mt_avx2_mul_w(int64_t n, const float *x, float s, const void *w, mt_dtype wt, float *y);
void mt_avx2_silu(int64_t n, const float *x, float *y);
void mt_avx2_sigmoid(int64_t n, const float *x, float *y);
void mt_avx2_swiglu(int64_t n, const float *g, const float *u, float *y);
void mt_avx2_gelu_erf(int64_t n, const float *x, float *y);
void mt_avx2_gelu_tanh(int64_t n, const float *x, float *y);
void mt_avx2_to_f32(int64_t n, const void *x, mt_dtype xt, float *y);
void mt_avx2_from_f32(int64_t n, const float *x, void *y, mt_dtype yt);
double mt_avx2_read_sum(int64_t n, const float *x, float *out);

#define MT_ROUND_UP(x, m) (((x) + (m)-1) / (m) * (m))

#endif
