/* tensor/cpu: the public row helpers, dispatched to the kernel table of the current level. Softmax and RMSNorm are
 * composed here from the table's pieces so every level shares one definition:
 *
 *   | op      | definition                                                              |
 *   |---------|-------------------------------------------------------------------------|
 *   | softmax | y = e^(x - max x) / sum; a row of all -inf gives zeros                  |
 *   | rmsnorm | y = x * (1 / sqrt(sum(x^2)/n + eps)) * w  (transformers Qwen2RMSNorm)    |
 */
#include <math.h>

#include "tensor/cpu/cpu_int.h"

float mt_cpu_dot(int64_t n, const float *x, const float *y) { return n > 0 ? mt_cpu_isa_get()->dot(n, x, y) : 0.0f; }

void mt_cpu_axpy(int64_t n, float a, const float *x, float *y) {
    if (n > 0) mt_cpu_isa_get()->axpy(n, a, x, y);
}

void mt_cpu_scale(int64_t n, float a, float *x) {
    if (n > 0) mt_cpu_isa_get()->scale(n, a, x);
}

float mt_cpu_max(int64_t n, const float *x) { return n > 0 ? mt_cpu_isa_get()->max(n, x) : -INFINITY; }

void mt_cpu_exp(int64_t n, const float *x, float *y) {
    if (n > 0) mt_cpu_isa_get()->exp_sum(n, x, 0.0f, y);
}

float mt_cpu_exp_sum(int64_t n, const float *x, float shift, float *y) {
    return n > 0 ? mt_cpu_isa_get()->exp_sum(n, x, shift, y) : 0.0f;
}

void mt_cpu_softmax(int64_t n, const float *x, float *y) {
    if (n <= 0) return;
    const mt_cpu_isa *isa = mt_cpu_isa_get();
    float m = isa->max(n, x);
    if (m == -INFINITY) {
        for (int64_t i = 0; i < n; i++) y[i] = 0.0f;
        return;
    }
    float s = isa->exp_sum(n, x, m, y);
    isa->scale(n, 1.0f / s, y);
}

void mt_cpu_rmsnorm(int64_t n, const float *x, const void *w, mt_dtype wt, float eps, float *y) {
    if (n <= 0) return;
    const mt_cpu_isa *isa = mt_cpu_isa_get();
    float r = 1.0f / sqrtf(isa->sumsq(n, x) / (float)n + eps);
    isa->mul_w(n, x, r, w, wt, y);
}

void mt_cpu_silu(int64_t n, const float *x, float *y) {
    if (n > 0) mt_cpu_isa_get()->silu(n, x, y);
}

void mt_cpu_sigmoid(int64_t n, const float *x, float *y) {
    if (n > 0) mt_cpu_isa_get()->sigmoid(n, x, y);
}

void mt_cpu_swiglu(int64_t n, const float *gate, const float *up, float *y) {
    if (n > 0) mt_cpu_isa_get()->swiglu(n, gate, up, y);
}

void mt_cpu_gelu_erf(int64_t n, const float *x, float *y) {
    if (n > 0) mt_cpu_isa_get()->gelu_erf(n, x, y);
}

void mt_cpu_gelu_tanh(int64_t n, const float *x, float *y) {
    if (n > 0) mt_cpu_isa_get()->gelu_tanh(n, x, y);
}

void mt_cpu_to_f32(int64_t n, const void *x, mt_dtype xt, float *y) {
    if (n > 0) mt_cpu_isa_get()->to_f32(n, x, xt, y);
}

void mt_cpu_from_f32(int64_t n, const float *x, void *y, mt_dtype yt) {
    if (n > 0) mt_cpu_isa_get()->from_f32(n, x, y, yt);
}
