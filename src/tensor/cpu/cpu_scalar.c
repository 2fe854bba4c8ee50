/* tensor/cpu: the scalar reference kernels (plain C, libm for exp/erf/tanh) and the portable packing and GEMV loops
 * the SIMD files fall back to for odd strides. Every SIMD kernel is tested against these.
 *
 *   | kernel   | shape                                  | notes                                       |
 *   |----------|----------------------------------------|---------------------------------------------|
 *   | ukr      | C[4,8] (+)= A[4,kc] . B[kc,8]          | f32 accumulation                            |
 *   | gemv     | C[m<=4, n] = A . W^T                   | f32 accumulation, W f32/bf16/f16            |
 *   | dot etc. | rows                                   | dot, sumsq accumulate in double             |
 */
#include <math.h>

#include "tensor/cpu/cpu_int.h"

enum { MR = 4, NR = 8 };

void mt_cpu_pack_b_generic(int nr, int64_t kc, int64_t nc, const void *src, mt_dtype dt, int64_t rs, int64_t cs,
                           float *dst) {
    for (int64_t p = 0; p * nr < nc; p++) {
        float *d = dst + p * kc * nr;
        int64_t n0 = p * nr, w = MT_MIN((int64_t)nr, nc - n0);
        for (int64_t k = 0; k < kc; k++) {
            for (int64_t j = 0; j < w; j++) d[k * nr + j] = mt_cpu_load(src, dt, k * rs + (n0 + j) * cs);
            for (int64_t j = w; j < nr; j++) d[k * nr + j] = 0.0f;
        }
    }
}

void mt_cpu_gemv_generic(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const void *w, mt_dtype wt,
                         int64_t ldw, const float *bias, float *c, int64_t ldc, bool acc) {
    for (int64_t j = 0; j < n; j++) {
        for (int64_t i = 0; i < m; i++) {
            float s = 0.0f;
            for (int64_t x = 0; x < k; x++) s += a[i * lda + x] * mt_cpu_load(w, wt, j * ldw + x);
            if (bias) s += bias[j];
            c[i * ldc + j] = acc ? c[i * ldc + j] + s : s;
        }
    }
}

static void ukr(int64_t kc, const float *a, int64_t rsa, const float *b, float *c, int64_t ldc, bool load_c) {
    float t[MR][NR] = {{0}};
    for (int64_t k = 0; k < kc; k++)
        for (int i = 0; i < MR; i++) {
            float ai = a[i * rsa + k];
            for (int j = 0; j < NR; j++) t[i][j] += ai * b[k * NR + j];
        }
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) c[i * ldc + j] = load_c ? c[i * ldc + j] + t[i][j] : t[i][j];
}

static void pack_b(int64_t kc, int64_t nc, const void *src, mt_dtype dt, int64_t rs, int64_t cs, float *dst) {
    mt_cpu_pack_b_generic(NR, kc, nc, src, dt, rs, cs, dst);
}

static float dot(int64_t n, const float *x, const float *y) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)x[i] * y[i];
    return (float)s;
}

static void axpy(int64_t n, float a, const float *x, float *y) {
    for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

static void scale(int64_t n, float a, float *x) {
    for (int64_t i = 0; i < n; i++) x[i] *= a;
}

static float vmax(int64_t n, const float *x) {
    float m = -INFINITY;
    for (int64_t i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

static float exp_sum(int64_t n, const float *x, float shift, float *y) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) {
        y[i] = expf(x[i] - shift);
        s += y[i];
    }
    return (float)s;
}

static float sumsq(int64_t n, const float *x) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return (float)s;
}

static void mul_w(int64_t n, const float *x, float s, const void *w, mt_dtype wt, float *y) {
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * s * mt_cpu_load(w, wt, i);
}

static void silu(int64_t n, const float *x, float *y) {
    for (int64_t i = 0; i < n; i++) y[i] = x[i] / (1.0f + expf(-x[i]));
}

static void sigmoid(int64_t n, const float *x, float *y) {
    for (int64_t i = 0; i < n; i++) y[i] = 1.0f / (1.0f + expf(-x[i]));
}

static void swiglu(int64_t n, const float *g, const float *u, float *y) {
    for (int64_t i = 0; i < n; i++) y[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

static void gelu_erf(int64_t n, const float *x, float *y) {
    for (int64_t i = 0; i < n; i++) y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * (float)M_SQRT1_2));
}

static void gelu_tanh(int64_t n, const float *x, float *y) {
    const float k0 = 0.7978845608028654f; /* sqrt(2/pi) */
    for (int64_t i = 0; i < n; i++) y[i] = 0.5f * x[i] * (1.0f + tanhf(k0 * (x[i] + 0.044715f * x[i] * x[i] * x[i])));
}

static void to_f32(int64_t n, const void *x, mt_dtype xt, float *y) {
    for (int64_t i = 0; i < n; i++) y[i] = mt_cpu_load(x, xt, i);
}

static void from_f32(int64_t n, const float *x, void *y, mt_dtype yt) {
    uint16_t *h = y;
    for (int64_t i = 0; i < n; i++) {
        if (yt == MT_BF16) h[i] = mt_f32_to_bf16(x[i]);
        else if (yt == MT_F16) h[i] = mt_f32_to_f16(x[i]);
        else ((float *)y)[i] = x[i];
    }
}

/* Eight independent multiply-add chains; without FMA in the baseline ISA the compiler emits mul + add. */
static double fma_loop(int64_t iters, float *out) {
    float acc[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    const float m = 0.999999f, c = 1e-7f;
    for (int64_t it = 0; it < iters; it++)
        for (int j = 0; j < 8; j++) acc[j] = acc[j] * m + c;
    float s = 0;
    for (int j = 0; j < 8; j++) s += acc[j];
    *out = s;
    return 16.0 * (double)iters;
}

static double read_sum(int64_t n, const float *x, float *out) {
    float s[4] = {0};
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int j = 0; j < 4; j++) s[j] += x[i + j];
    for (; i < n; i++) s[0] += x[i];
    *out = s[0] + s[1] + s[2] + s[3];
    return 4.0 * (double)n;
}

const mt_cpu_isa mt_cpu_isa_scalar = {
    .name = "scalar", .mr = MR, .nr = NR, .ukr = ukr, .pack_b = pack_b, .gemv = mt_cpu_gemv_generic, .gemv_m = 4,
    .gemv_q = mt_cpu_gemv_q_scalar, .quant_act = mt_cpu_quant_act_scalar, .gemv_q_vnni = NULL,
    .dequant = mt_cpu_dequant_scalar, .dot = dot, .axpy = axpy, .scale = scale, .max = vmax, .exp_sum = exp_sum,
    .sumsq = sumsq,
    .mul_w = mul_w, .silu = silu, .sigmoid = sigmoid, .swiglu = swiglu, .gelu_erf = gelu_erf, .gelu_tanh = gelu_tanh,
    .to_f32 = to_f32, .from_f32 = from_f32, .fma_loop = fma_loop, .bf16_loop = NULL, .read_sum = read_sum,
};
