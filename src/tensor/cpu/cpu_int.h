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
    /* As gemv with bf16 A and bf16 W (vdpbf16ps); NULL where the CPU lacks it. */
    void (*gemv_bf16)(int64_t m, int64_t n, int64_t k, const uint16_t *a, int64_t lda, const uint16_t *w, int64_t ldw,
                      const float *bias, float *c, int64_t ldc, bool acc);
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
/* Whether the bf16 dot path is on and usable at the current level. */
bool mt_cpu_bf16_dot_on(void);
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

/* AVX2 kernels the AVX-512 table reuses where 256-bit vectors are enough (memory-bound rows). */
float mt_avx2_dot(int64_t n, const float *x, const float *y);
void mt_avx2_axpy(int64_t n, float a, const float *x, float *y);
float mt_avx2_exp_sum(int64_t n, const float *x, float shift, float *y);
float mt_avx2_max(int64_t n, const float *x);
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
