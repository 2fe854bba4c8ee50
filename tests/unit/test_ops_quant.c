/* tensor: the linear and embedding ops on weights in GGUF's quantized types (Q8_0, Q4_0, Q4_K, Q6_K), as a model
 * loaded from a GGUF file holds them: the same as on the dequantized f32 weights - exactly for the embedding rows
 * and prefill-sized inputs (dequantized panels), within the 8-bit rounding of the activations for decode-sized ones -
 * and refused, naming the type, when a gradient would have to pass through them. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "tensor/autograd.h"
#include "tensor/cpu/cpu.h"
#include "tensor/quant.h"

static float rnd(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return (float)(*s >> 8) / (float)(1u << 23) - 1.0f;
}

static void check_type(mt_dtype dt, mt_pool *pool) {
    enum { N = 48, K = 512, V = 7 };
    mt_arena arena;
    mt_arena_init(&arena, (size_t)8 << 20);
    mt_ctx ctx = {.arena = &arena, .pool = pool};
    uint32_t s = 7u + (uint32_t)dt;
    static float w[N * K], deq[N * K], x[17 * K], bias[N];
    for (int i = 0; i < N * K; i++) w[i] = rnd(&s);
    for (int i = 0; i < 17 * K; i++) x[i] = rnd(&s);
    for (int i = 0; i < N; i++) bias[i] = rnd(&s);
    size_t row = mt_dtype_row_bytes(dt, K);
    void *q = mt_malloc(row * N);
    mt_err err;
    CHECK(mt_quantize(dt, w, N, K, q, &err) == MT_OK && mt_dequantize(dt, q, N, K, deq, &err) == MT_OK);
    mt_tensor wq = mt_tensor_wrap(dt, 2, (int64_t[]){N, K}, q), wf = mt_tensor_wrap(MT_F32, 2, (int64_t[]){N, K}, deq);
    mt_tensor b = mt_tensor_wrap(MT_F32, 1, (int64_t[]){N}, bias);
    for (int T = 1; T <= 17; T += 16) { /* decode (8-bit activations up to 16 rows), then the GEMM */
        mt_tensor xt = mt_tensor_wrap(MT_F32, 2, (int64_t[]){T, K}, x);
        mt_tensor *yq = mt_op_linear(&ctx, &xt, &wq, &b), *yf = mt_op_linear(&ctx, &xt, &wf, &b);
        CHECK_MSG(yq && yf, "%s linear T=%d: %s", mt_dtype_name(dt), T, ctx.err.msg);
        /* decode rounds x to 8 bits per block (scale max/127): at most half a step of each |x|, summed against |w| */
        double gap = 0, bound = 0;
        for (int t = 0; yq && yf && t < T; t++)
            for (int n = 0; n < N; n++) {
                double sum_abs = 0;
                for (int k = 0; k < K; k++) sum_abs += fabs(deq[n * K + k]) / 127.0 * 0.5 * 2;
                gap = fmax(gap, fabs(mt_f32(yq)[t * N + n] - mt_f32(yf)[t * N + n]));
                bound = fmax(bound, T == 1 ? sum_abs : 1e-4);
            }
        CHECK_MSG(gap <= bound, "%s linear T=%d: off by %g (bound %g)", mt_dtype_name(dt), T, gap, bound);
    }
    int32_t ids[3] = {0, V - 1, 3};
    mt_tensor *e = mt_op_embedding(&ctx, &wq, ids, 3);
    CHECK_MSG(e, "%s embedding: %s", mt_dtype_name(dt), ctx.err.msg);
    for (int t = 0; e && t < 3; t++)
        CHECK_MSG(!memcmp(mt_f32(e) + t * K, deq + ids[t] * K, K * sizeof(float)), "%s embedding row %d",
                  mt_dtype_name(dt), ids[t]);

    mt_tape *tape;
    CHECK(mt_tape_new(&tape, &err) == MT_OK);
    ctx.tape = tape;
    mt_tensor *xg = mt_tensor_new_2d(&ctx, MT_F32, 1, K);
    memcpy(xg->data, x, K * sizeof(float));
    xg->requires_grad = true;
    CHECK(!mt_op_linear(&ctx, xg, &wq, NULL) && ctx.status == MT_ERR_UNSUPPORTED &&
          strstr(ctx.err.msg, mt_dtype_name(dt)));
    ctx.status = MT_OK;
    mt_tensor wqg = wq;
    wqg.requires_grad = true;
    CHECK(!mt_op_embedding(&ctx, &wqg, ids, 1) && ctx.status == MT_ERR_UNSUPPORTED);
    mt_tape_free(tape);
    mt_free(q);
    mt_arena_free(&arena);
}

int main(void) {
    mt_pool *pool;
    mt_err err;
    /* the 17-row bounds are for the GEMM on f32 products (test_gemm_quant checks the bf16 ones): fixed here, as
     * ctest fixes MT_BF16_DOT=0, so that a run by hand on a CPU with bf16 dot products checks the same */
    mt_cpu_set_bf16_dot(false);
    CHECK(mt_pool_new(2, &pool, &err) == MT_OK);
    const mt_dtype types[] = {MT_Q8_0, MT_Q4_0, MT_Q4_K, MT_Q6_K};
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) check_type(types[i], pool);
    mt_pool_free(pool);
    return check_report();
}
