/* tensor: the fused gated linear (mt_op_gated_linear, mt_cpu_gated_linear) equals gated_act(linear, linear) bit
 * for bit - GEMV (M <= 8) and GEMM shapes, odd sizes, f32 / bf16 / f16 weights, every activation, on every kernel
 * path this CPU has (cpu_paths.h); the kernel reports that it fused, and declines (the op then runs the two linears)
 * for a quantized weight and for a K too long for one packed block of A. With a gradient wanted the op builds the
 * unfused graph: its input gradient equals the unfused ops' exactly. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "cpu_paths.h"
#include "tensor/autograd.h"
#include "tensor/quant.h"

static float rnd(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return (float)(*s >> 8) / (float)(1u << 23) - 1.0f;
}

static void fill_weight(mt_dtype dt, int64_t n, uint32_t *s, void *w) {
    for (int64_t i = 0; i < n; i++) {
        float v = rnd(s);
        if (dt == MT_F32) ((float *)w)[i] = v;
        else if (dt == MT_BF16) ((uint16_t *)w)[i] = mt_f32_to_bf16(v);
        else ((uint16_t *)w)[i] = mt_f32_to_f16(v);
    }
}

static float max_diff(const mt_tensor *a, const mt_tensor *b) {
    if (!a || !b || mt_tensor_numel(a) != mt_tensor_numel(b)) return INFINITY;
    float d = 0;
    for (int64_t i = 0; i < mt_tensor_numel(a); i++) {
        float e = fabsf(mt_f32(a)[i] - mt_f32(b)[i]);
        d = e == e ? fmaxf(d, e) : INFINITY;
    }
    return d;
}

/* The kernel's own check: a plain epilogue, so the products are compared as mt_cpu_linear computes them. */
static void mul_epilogue(const void *arg, int64_t n, float *gate, float *up_y) {
    float k = *(const float *)arg;
    for (int64_t i = 0; i < n; i++) up_y[i] = (gate[i] + k) * up_y[i];
}

static void check_case(mt_pool *pool, int path, int64_t M, int64_t N, int64_t K, mt_dtype dt, mt_act act,
                       bool fuses, bool biased) {
    mt_arena arena;
    mt_arena_init(&arena, (size_t)64 << 20);
    mt_ctx ctx = {.arena = &arena, .pool = pool};
    uint32_t s = (uint32_t)(M * 7919 + N * 31 + K + act);
    size_t es = mt_dtype_size(dt);
    void *gw = mt_malloc((size_t)(N * K) * es), *uw = mt_malloc((size_t)(N * K) * es);
    float *c = mt_malloc((size_t)(M * N) * sizeof(float) * 3), *cg = c + M * N, *cu = cg + M * N;
    fill_weight(dt, N * K, &s, gw);
    fill_weight(dt, N * K, &s, uw);
    mt_tensor g = mt_tensor_wrap(dt, 2, (int64_t[]){N, K}, gw), u = mt_tensor_wrap(dt, 2, (int64_t[]){N, K}, uw);
    mt_tensor *x = mt_tensor_new_2d(&ctx, MT_F32, M, K);
    for (int64_t i = 0; x && i < M * K; i++) mt_f32(x)[i] = 2.0f * rnd(&s);
    /* biases (Qwen2.5-VL's vision MLP has them) go on each product before the epilogue */
    mt_tensor *gb = biased ? mt_tensor_new_2d(&ctx, MT_F32, 1, N) : NULL;
    mt_tensor *ub = biased ? mt_tensor_new_2d(&ctx, MT_F32, 1, N) : NULL;
    for (int64_t i = 0; gb && ub && i < N; i++) mt_f32(gb)[i] = rnd(&s), mt_f32(ub)[i] = rnd(&s);
    const float *bg = gb ? mt_f32(gb) : NULL, *bu = ub ? mt_f32(ub) : NULL;
    mt_tensor *ref = mt_op_gated_act(&ctx, mt_op_linear(&ctx, x, &g, gb), mt_op_linear(&ctx, x, &u, ub), act);
    mt_tensor *y = mt_op_gated_linear(&ctx, x, &g, gb, &u, ub, act);
    float d = max_diff(y, ref);
    CHECK_MSG(d == 0.0f, "M %lld N %lld K %lld %s act %d bias %d at %s: the op differs from the unfused ops by %g",
              (long long)M, (long long)N, (long long)K, mt_dtype_name(dt), (int)act, biased, cpu_path_names[path], d);
    float k = 0.25f;
    bool fused = mt_cpu_gated_linear(pool, M, N, K, mt_f32(x), K, gw, uw, dt, K, bg, bu, mul_epilogue, &k, c, N);
    mt_cpu_linear(pool, M, N, K, mt_f32(x), K, gw, dt, K, bg, cg, N, false);
    mt_cpu_linear(pool, M, N, K, mt_f32(x), K, uw, dt, K, bu, cu, N, false);
    float e = 0;
    for (int64_t m = 0; fused && m < M; m++) {
        mul_epilogue(&k, N, cg + m * N, cu + m * N);
        for (int64_t n = 0; n < N; n++) e = fmaxf(e, fabsf(c[m * N + n] - cu[m * N + n]));
    }
    CHECK_MSG(fused == fuses && e == 0.0f, "M %lld N %lld K %lld %s at %s: the kernel %s (expected %s), differs by %g",
              (long long)M, (long long)N, (long long)K, mt_dtype_name(dt), cpu_path_names[path],
              fused ? "fused" : "declined", fuses ? "to fuse" : "to decline", e);
    mt_free(c);
    mt_free(gw);
    mt_free(uw);
    mt_arena_free(&arena);
}

/* A quantized pair declines in the kernel; the op gives the unfused result. */
static void check_quant(mt_pool *pool) {
    enum { M = 3, N = 40, K = 64 };
    mt_arena arena;
    mt_arena_init(&arena, (size_t)8 << 20);
    mt_ctx ctx = {.arena = &arena, .pool = pool};
    uint32_t s = 5;
    static float wf[2][N * K], x[M * K], c[M * N];
    static char q[2][N * K * 2];
    mt_err err;
    for (int i = 0; i < 2; i++) {
        for (int j = 0; j < N * K; j++) wf[i][j] = rnd(&s);
        CHECK(mt_quantize(MT_Q8_0, wf[i], N, K, q[i], &err) == MT_OK);
    }
    for (int j = 0; j < M * K; j++) x[j] = rnd(&s);
    mt_tensor g = mt_tensor_wrap(MT_Q8_0, 2, (int64_t[]){N, K}, q[0]);
    mt_tensor u = mt_tensor_wrap(MT_Q8_0, 2, (int64_t[]){N, K}, q[1]);
    mt_tensor xt = mt_tensor_wrap(MT_F32, 2, (int64_t[]){M, K}, x);
    mt_tensor *ref =
        mt_op_gated_act(&ctx, mt_op_linear(&ctx, &xt, &g, NULL), mt_op_linear(&ctx, &xt, &u, NULL), MT_ACT_SILU);
    mt_tensor *y = mt_op_gated_linear(&ctx, &xt, &g, NULL, &u, NULL, MT_ACT_SILU);
    float k = 0;
    CHECK_MSG(!mt_cpu_gated_linear(pool, M, N, K, x, K, q[0], q[1], MT_Q8_0, K, NULL, NULL, mul_epilogue, &k, c, N),
              "the kernel fused a Q8_0 pair");
    CHECK_MSG(max_diff(y, ref) == 0.0f, "Q8_0: the op differs from the unfused ops by %g", max_diff(y, ref));
    mt_arena_free(&arena);
}

/* With a gradient wanted the op is the unfused graph, its gradients the unfused ops' exactly: x and the gate weight
 * wanting them, or (bias_only) just the up bias, the weights and x not. */
static void check_grad(mt_pool *pool, bool bias_only) {
    enum { M = 5, N = 24, K = 20 };
    mt_arena arena;
    mt_arena_init(&arena, (size_t)8 << 20);
    mt_tape *tape;
    mt_err err;
    CHECK(mt_tape_new(&tape, &err) == MT_OK);
    mt_ctx ctx = {.arena = &arena, .pool = pool, .tape = tape};
    uint32_t s = 11;
    static float gw[N * K], uw[N * K];
    fill_weight(MT_F32, N * K, &s, gw);
    fill_weight(MT_F32, N * K, &s, uw);
    float *dx[2] = {0}, *dg[2] = {0}, *db[2] = {0};
    for (int v = 0; v < 2; v++) {
        mt_tensor *g = mt_tensor_new_2d(&ctx, MT_F32, N, K), *u = mt_tensor_new_2d(&ctx, MT_F32, N, K);
        mt_tensor *x = mt_tensor_new_2d(&ctx, MT_F32, M, K), *ub = mt_tensor_new_2d(&ctx, MT_F32, 1, N);
        CHECK(g && u && x && ub);
        if (!g || !u || !x || !ub) break;
        memcpy(g->data, gw, sizeof gw);
        memcpy(u->data, uw, sizeof uw);
        uint32_t sx = 3;
        for (int i = 0; i < M * K; i++) mt_f32(x)[i] = rnd(&sx);
        for (int i = 0; i < N; i++) mt_f32(ub)[i] = rnd(&sx);
        x->requires_grad = g->requires_grad = !bias_only;
        ub->requires_grad = bias_only;
        mt_tensor *h = v ? mt_op_gated_linear(&ctx, x, g, NULL, u, ub, MT_ACT_GELU_TANH)
                         : mt_op_gated_act(&ctx, mt_op_linear(&ctx, x, g, NULL), mt_op_linear(&ctx, x, u, ub),
                                           MT_ACT_GELU_TANH);
        mt_tensor *loss = mt_op_cross_entropy(&ctx, h, (int32_t[]){1, 0, 2, 1, 0}, 1.0f);
        CHECK(h && loss && mt_backward(&ctx, loss) == MT_OK);
        dx[v] = x->grad ? mt_f32(x->grad) : NULL;
        dg[v] = g->grad ? mt_f32(g->grad) : NULL;
        db[v] = ub->grad ? mt_f32(ub->grad) : NULL;
        mt_tape_reset(tape);
    }
    bool same = bias_only ? db[0] && db[1] && !memcmp(db[0], db[1], sizeof(float) * N)
                          : dx[0] && dx[1] && dg[0] && dg[1] && !memcmp(dx[0], dx[1], sizeof(float) * M * K) &&
                                !memcmp(dg[0], dg[1], sizeof(float) * N * K);
    CHECK_MSG(same, "with a gradient (%s) the fused op's gradients differ from the unfused ops'",
              bias_only ? "the up bias only" : "x and the gate weight");
    mt_tape_free(tape);
    mt_arena_free(&arena);
}

int main(void) {
    mt_pool *pool;
    mt_err err;
    CHECK(mt_pool_new(3, &pool, &err) == MT_OK);
    /* GEMV (M <= 8), GEMM with edge tiles and several column and row tasks, and one K that packed A cannot hold
     * in one block (M 600: 16 MB of packed A covers K 6912) */
    int64_t sizes[][4] = {{1, 37, 53, 1}, {3, 100, 29, 1}, {8, 45, 70, 1}, {9, 51, 33, 1},
                          {130, 67, 300, 1}, {17, 1000, 257, 1}, {29, 97, 130, 1}, {600, 8, 7000, 0}};
    mt_dtype dts[] = {MT_F32, MT_BF16, MT_F16};
    mt_act acts[] = {MT_ACT_SILU, MT_ACT_GELU_ERF, MT_ACT_GELU_TANH, MT_ACT_QUICK_GELU, MT_ACT_SIGMOID};
    for (int p = 0; p < CPU_PATHS; p++) {
        if (!cpu_path_enter(p, CPU_PATHS_ALL)) continue;
        for (size_t i = 0; i < MT_ARRAY_LEN(sizes); i++)
            for (size_t d = 0; d < MT_ARRAY_LEN(dts); d++)
                for (size_t a = 0; a < MT_ARRAY_LEN(acts); a++) {
                    if (sizes[i][0] > 200 && (d || a)) continue; /* the long-K case once per path */
                    check_case(pool, p, sizes[i][0], sizes[i][1], sizes[i][2], dts[d], acts[a], sizes[i][3] != 0,
                               (d + a) % 2 != 0);
                }
    }
    cpu_path_leave();
    check_quant(pool);
    check_grad(pool, false);
    check_grad(pool, true);
    mt_pool_free(pool);
    cpu_paths_report("test_gated_linear", CPU_PATHS_ALL);
    return check_report();
}
