/* Unit test of mt_op_layer_norm's forward against a double-precision reference: f32 and bf16 weights, widths below,
 * at and above the vector width with a tail, rows with a large common offset (where a one-pass variance would
 * cancel, and a float mean loses digits), on one thread and on a pool of three. Tolerance 6e-5 on outputs of
 * scale ~1.5: float rounding of the mean and of the deviations. */
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "tensor/dtype.h"
#include "tensor/tensor.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float frand(void) { /* uniform in [-1, 1) */
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)(rng >> 40) / 8388608.0f - 1.0f;
}

static uint16_t to_bf16(float f) {
    union {
        float f;
        uint32_t u;
    } v = {f};
    return (uint16_t)(v.u >> 16);
}

static void run_case(mt_pool *pool, int64_t T, int64_t C, float offset, bool bf16) {
    float *x = malloc((size_t)(T * C) * sizeof *x), *w = malloc((size_t)C * sizeof *w), *b = malloc((size_t)C * sizeof *b);
    uint16_t *wh = malloc((size_t)C * sizeof *wh), *bh = malloc((size_t)C * sizeof *bh);
    for (int64_t i = 0; i < T * C; i++) x[i] = offset + frand();
    for (int64_t c = 0; c < C; c++) {
        wh[c] = to_bf16(1 + 0.5f * frand()), bh[c] = to_bf16(0.3f * frand());
        w[c] = bf16 ? mt_bf16_to_f32(wh[c]) : 1 + 0.5f * frand();
        b[c] = bf16 ? mt_bf16_to_f32(bh[c]) : 0.3f * frand();
    }
    mt_arena arena;
    mt_arena_init(&arena, 1 << 16);
    mt_ctx ctx = {.arena = &arena, .pool = pool};
    mt_tensor tx = mt_tensor_wrap(MT_F32, 2, (int64_t[]){T, C}, x);
    mt_tensor tw = bf16 ? mt_tensor_wrap(MT_BF16, 1, &C, wh) : mt_tensor_wrap(MT_F32, 1, &C, w);
    mt_tensor tb = bf16 ? mt_tensor_wrap(MT_BF16, 1, &C, bh) : mt_tensor_wrap(MT_F32, 1, &C, b);
    mt_tensor *y = mt_op_layer_norm(&ctx, &tx, &tw, &tb, 1e-6f);
    CHECK_MSG(y != NULL, "layer_norm %lldx%lld failed: %s", (long long)T, (long long)C, ctx.err.msg);
    double worst = 0;
    for (int64_t t = 0; y && t < T; t++) {
        const float *r = x + t * C;
        double mean = 0, var = 0;
        for (int64_t c = 0; c < C; c++) mean += r[c];
        mean /= (double)C;
        for (int64_t c = 0; c < C; c++) var += (r[c] - mean) * (r[c] - mean);
        double inv = 1 / sqrt(var / (double)C + 1e-6);
        for (int64_t c = 0; c < C; c++) {
            double want = (r[c] - mean) * inv * w[c] + b[c], got = mt_f32(y)[t * C + c];
            worst = fmax(worst, fabs(got - want));
        }
    }
    CHECK_MSG(worst <= 6e-5, "layer_norm %lldx%lld offset %g %s: max error %g", (long long)T, (long long)C,
              (double)offset, bf16 ? "bf16" : "f32", worst);
    mt_arena_free(&arena);
    free(x), free(w), free(b), free(wh), free(bh);
}

int main(void) {
    mt_pool *pool = NULL;
    mt_err err = {0};
    CHECK(mt_pool_new(3, &pool, &err) == MT_OK);
    static const int64_t widths[] = {1, 5, 16, 37, 1024, 1100};
    for (size_t i = 0; i < sizeof widths / sizeof *widths; i++)
        for (int bf = 0; bf < 2; bf++) {
            run_case(NULL, 3, widths[i], 0, bf);
            run_case(pool, 40, widths[i], 0, bf);
            run_case(pool, 7, widths[i], 300, bf);
        }
    mt_pool_free(pool);
    return check_report();
}
