/* tensor: a linear layer whose weight is a transposed view (stored [K, N], as fused MoE expert stacks are) gives the
 * row-major layer's output and input gradient, in f32 and bf16, for decode-sized and prefill-sized inputs, on every
 * kernel path this CPU has (cpu_paths.h). */
#include <math.h>
#include <string.h>

#include "check.h"
#include "cpu_paths.h"
#include "tensor/autograd.h"

static float rnd(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return (float)(*s >> 8) / (float)(1u << 23) - 1.0f;
}

static void check_case(int64_t T, int64_t N, int64_t K, mt_dtype dt, mt_pool *pool, int path) {
    mt_arena arena;
    mt_arena_init(&arena, (size_t)8 << 20);
    mt_tape *tape;
    mt_err err;
    CHECK(mt_tape_new(&tape, &err) == MT_OK);
    mt_ctx ctx = {.arena = &arena, .pool = pool, .tape = tape};
    uint32_t s = (uint32_t)(T * 131 + N);
    size_t es = mt_dtype_size(dt);
    int64_t ld = N + 3; /* the stored rows are longer than N, as gate_up_proj's [K, 2N] are */
    char *row_major = mt_malloc((size_t)(N * K) * es), *stored = mt_malloc((size_t)(K * ld) * es);
    float *x = mt_malloc((size_t)(T * K) * sizeof(float)), bias[64];
    for (int64_t n = 0; n < N; n++)
        for (int64_t k = 0; k < K; k++) {
            float v = rnd(&s);
            uint16_t h = mt_f32_to_bf16(v);
            if (dt == MT_F32) ((float *)row_major)[n * K + k] = ((float *)stored)[k * ld + n] = v;
            else ((uint16_t *)row_major)[n * K + k] = ((uint16_t *)stored)[k * ld + n] = h;
        }
    for (int64_t i = 0; i < T * K; i++) x[i] = rnd(&s);
    for (int64_t n = 0; n < N; n++) bias[n] = rnd(&s);
    mt_tensor w = mt_tensor_wrap(dt, 2, (int64_t[]){N, K}, row_major);
    mt_tensor wt = mt_tensor_wrap(dt, 2, (int64_t[]){N, K}, stored);
    wt.stride[0] = 1;
    wt.stride[1] = ld;
    mt_tensor b = mt_tensor_wrap(MT_F32, 1, &N, bias);
    mt_tensor *xin[2];
    float *dx[2];
    mt_tensor *y[2];
    for (int v = 0; v < 2; v++) {
        xin[v] = mt_tensor_new_2d(&ctx, MT_F32, T, K);
        memcpy(xin[v]->data, x, (size_t)(T * K) * sizeof(float));
        xin[v]->requires_grad = true;
        y[v] = mt_op_linear(&ctx, xin[v], v ? &wt : &w, &b);
        mt_tensor *loss = mt_op_cross_entropy(&ctx, y[v], (int32_t[]){1, 0, 2, 1, 0, 2, 1, 0}, 1.0f);
        CHECK(y[v] && loss && mt_backward(&ctx, loss) == MT_OK);
        dx[v] = xin[v]->grad ? mt_f32(xin[v]->grad) : NULL;
        mt_tape_reset(tape);
    }
    float gy = 0, gx = 0;
    for (int64_t i = 0; y[0] && y[1] && i < T * N; i++) gy = fmaxf(gy, fabsf(mt_f32(y[0])[i] - mt_f32(y[1])[i]));
    for (int64_t i = 0; dx[0] && dx[1] && i < T * K; i++) gx = fmaxf(gx, fabsf(dx[0][i] - dx[1][i]));
    /* The bf16 dot takes the row-major bf16 layer's GEMV only (a transposed view has no contiguous rows): the two
     * then differ by the rounding of x to bf16, at most 2^-9 of sum_k |x w| per output, and dx by what that does to
     * the softmax (at most twice as much per output, summed over N). */
    float tol_y = 1e-5f, tol_x = 1e-5f;
    if (path == CPU_PATH_AVX512_BF16 && dt == MT_BF16) {
        float s_max = 0;
        for (int64_t t = 0; t < T; t++)
            for (int64_t n = 0; n < N; n++) {
                float s_tn = 0;
                for (int64_t k = 0; k < K; k++)
                    s_tn += fabsf(x[t * K + k] * mt_bf16_to_f32(((uint16_t *)row_major)[n * K + k]));
                s_max = fmaxf(s_max, s_tn);
            }
        tol_y = s_max / 512.0f + 1e-5f;
        tol_x = 2.0f * (float)N * tol_y;
    }
    CHECK_MSG(dx[0] && dx[1] && gy <= tol_y && gx <= tol_x,
              "T %lld N %lld K %lld %s at %s: y differs by %g (bound %g), dx by %g (bound %g)", (long long)T,
              (long long)N, (long long)K, mt_dtype_name(dt), cpu_path_names[path], gy, tol_y, gx, tol_x);
    mt_free(row_major);
    mt_free(stored);
    mt_free(x);
    mt_tape_free(tape);
    mt_arena_free(&arena);
}

int main(void) {
    mt_pool *pool;
    mt_err err;
    CHECK(mt_pool_new(3, &pool, &err) == MT_OK);
    int64_t sizes[][3] = {{1, 24, 40}, {3, 17, 33}, {8, 64, 48}, {8, 5, 130}};
    for (int p = 0; p < CPU_PATHS; p++) {
        if (!cpu_path_enter(p, CPU_PATHS_ALL)) continue;
        for (size_t i = 0; i < MT_ARRAY_LEN(sizes); i++) {
            check_case(sizes[i][0], sizes[i][1], sizes[i][2], MT_F32, pool, p);
            check_case(sizes[i][0], sizes[i][1], sizes[i][2], MT_BF16, pool, p);
        }
    }
    mt_pool_free(pool);
    cpu_paths_report("test_linear_transposed", CPU_PATHS_ALL);
    return check_report();
}
