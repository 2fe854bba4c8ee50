/* bench_fuse: what issue 12's fusions can save in one Qwen2.5-VL-3B text layer (hidden 2048, MLP 11008, 16 query
 * heads and 2 key/value heads of 128, bf16 weights), through the ops a layer runs, at decode (M = 1) and prefill
 * (M = 128) sizes.
 *
 *     bench_fuse [threads] [seconds per case]
 *
 *   | line         | timed                                                                                   |
 *   |--------------|-----------------------------------------------------------------------------------------|
 *   | mlp unfused  | mt_op_linear gate, mt_op_linear up, mt_op_gated_act                                     |
 *   | mlp fused    | mt_op_gated_linear (one pool pass, act(g)*u in the epilogue)                            |
 *   | rms_norm     | mt_op_rms_norm of [M, 2048]: the most that fusing it into the next linear's A pass saves |
 *   | rope q + k   | mt_op_rope of q [M, 16x128] and k [M, 2x128]: the most a q/k projection epilogue saves  |
 *   | layer linear | q, k, v, o, gate, up, down (mt_op_linear): the layer's matrix work, for scale           |
 *
 * Each line is the best of its repetitions; the unfused and fused MLP alternate repetition by repetition so load
 * from other processes falls on both alike. M = 1 cases rotate through copies of the weights larger than the
 * last-level cache, as successive layers do.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/rope.h"
#include "tensor/tensor.h"

enum { H = 2048, I = 11008, HEADS = 16, KV = 2, D = 128, COPIES = 4 };

typedef struct layer_w {
    mt_tensor q, k, v, o, gate, up, down;
} layer_w;

static uint16_t *rand_bf16(int64_t n, uint32_t *s) {
    uint16_t *p = malloc((size_t)n * 2);
    if (!p) {
        fprintf(stderr, "bench_fuse: out of memory for %lld weights\n", (long long)n);
        exit(1);
    }
    for (int64_t i = 0; i < n; i++) {
        *s = *s * 1664525u + 1013904223u;
        p[i] = mt_f32_to_bf16(((float)(*s >> 8) / (float)(1u << 23) - 1.0f) * 0.02f);
    }
    return p;
}

static mt_tensor mat(int64_t n, int64_t k, uint32_t *s) {
    return mt_tensor_wrap(MT_BF16, 2, (int64_t[]){n, k}, rand_bf16(n * k, s));
}

enum { MLP_UNFUSED, MLP_FUSED, NORM, ROPE, LINEARS, N_CASES };

typedef struct bench {
    mt_ctx ctx;
    layer_w w[COPIES];
    int next, copies;
    mt_tensor *x, *q, *k, *cos, *sin, *norm_w;
    double best[N_CASES];
} bench;

static const char *const names[N_CASES] = {"mlp unfused (gate, up, gated_act)", "mlp fused (gated_linear)",
                                           "rms_norm [M, 2048]", "rope q + k", "layer linears (7)"};

static void run_case(bench *b, int c) {
    mt_ctx *ctx = &b->ctx;
    const layer_w *w = &b->w[b->next++ % b->copies];
    mt_arena_mark mark = mt_arena_save(ctx->arena);
    switch (c) {
    case MLP_UNFUSED:
        mt_op_gated_act(ctx, mt_op_linear(ctx, b->x, &w->gate, NULL), mt_op_linear(ctx, b->x, &w->up, NULL),
                        MT_ACT_SILU);
        break;
    case MLP_FUSED: mt_op_gated_linear(ctx, b->x, &w->gate, NULL, &w->up, NULL, MT_ACT_SILU); break;
    case NORM: mt_op_rms_norm(ctx, b->x, b->norm_w, 1e-6f); break;
    case ROPE:
        mt_op_rope(ctx, b->q, HEADS, b->cos, b->sin);
        mt_op_rope(ctx, b->k, KV, b->cos, b->sin);
        break;
    default: {
        const mt_tensor *ws[] = {&w->q, &w->k, &w->v, &w->o, &w->gate, &w->up};
        for (int i = 0; i < 6; i++) mt_op_linear(ctx, b->x, ws[i], NULL);
        mt_tensor *h = mt_tensor_new_2d(ctx, MT_F32, b->x->shape[0], I);
        if (h) memset(h->data, 0, (size_t)mt_tensor_numel(h) * 4);
        mt_op_linear(ctx, h, &w->down, NULL);
    }
    }
    if (ctx->err.code) {
        fprintf(stderr, "bench_fuse: %s\n", ctx->err.msg);
        exit(1);
    }
    mt_arena_restore(ctx->arena, mark);
}

static void measure(bench *b, const int *cases, int n, double seconds) {
    for (int i = 0; i < n; i++) {
        run_case(b, cases[i]);
        b->best[cases[i]] = 1e30;
    }
    double start = mt_time_now();
    for (int rep = 0; rep < 3 || mt_time_now() - start < seconds; rep++)
        for (int i = 0; i < n; i++) {
            double t0 = mt_time_now();
            run_case(b, cases[i]);
            double dt = mt_time_now() - t0;
            if (dt < b->best[cases[i]]) b->best[cases[i]] = dt;
        }
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    double seconds = argc > 2 ? atof(argv[2]) : 3.0;
    mt_pool *pool;
    mt_err err;
    if (threads < 1 || seconds <= 0 || mt_pool_new(threads, &pool, &err)) {
        fprintf(stderr, "usage: bench_fuse [threads >= 1] [seconds per case > 0]\n");
        return 2;
    }
    mt_arena arena;
    mt_arena_init(&arena, (size_t)256 << 20);
    bench b = {.ctx = {.arena = &arena, .pool = pool}};
    uint32_t s = 1;
    for (int i = 0; i < COPIES; i++)
        b.w[i] = (layer_w){mat(HEADS * D, H, &s), mat(KV * D, H, &s), mat(KV * D, H, &s), mat(H, HEADS * D, &s),
                           mat(I, H, &s), mat(I, H, &s), mat(H, I, &s)};
    mt_tensor nw = mt_tensor_wrap(MT_BF16, 1, (int64_t[]){H}, rand_bf16(H, &s));
    b.norm_w = &nw;
    printf("bench_fuse: Qwen2.5-VL-3B layer, %d threads, best of %.1f s per case; load average at start: ", threads,
           seconds);
    FILE *la = fopen("/proc/loadavg", "r");
    char buf[64] = "?";
    if (la && fgets(buf, sizeof buf, la)) buf[strcspn(buf, "\n")] = 0;
    if (la) fclose(la);
    printf("%s\n", buf);
    int64_t Ms[] = {1, 128};
    for (int mi = 0; mi < 2; mi++) {
        int64_t M = Ms[mi];
        mt_arena_mark top = mt_arena_save(&arena);
        b.copies = M == 1 ? COPIES : 1;
        b.x = mt_tensor_new_2d(&b.ctx, MT_F32, M, H);
        b.q = mt_tensor_new_2d(&b.ctx, MT_F32, M, HEADS * D);
        b.k = mt_tensor_new_2d(&b.ctx, MT_F32, M, KV * D);
        int64_t *pos = mt_arena_alloc(&arena, (size_t)(3 * M) * sizeof(int64_t));
        for (int64_t t = 0; t < M; t++) pos[t] = pos[M + t] = pos[2 * M + t] = 100 + t;
        mt_rope_cfg rc = {.theta = 1e6, .dim = D, .sections = {16, 24, 24}};
        if (mt_nn_rope(&b.ctx, &rc, pos, M, &b.cos, &b.sin)) {
            fprintf(stderr, "bench_fuse: rope tables: %s\n", b.ctx.err.msg);
            return 1;
        }
        for (int64_t i = 0; i < M * H; i++) mt_f32(b.x)[i] = (float)(i % 97) * 0.01f - 0.5f;
        for (int64_t i = 0; i < M * HEADS * D; i++) mt_f32(b.q)[i] = (float)(i % 89) * 0.01f;
        for (int64_t i = 0; i < M * KV * D; i++) mt_f32(b.k)[i] = (float)(i % 83) * 0.01f;
        measure(&b, (int[]){MLP_UNFUSED, MLP_FUSED}, 2, seconds);
        measure(&b, (int[]){NORM, ROPE, LINEARS}, 3, seconds);
        printf("\nM = %lld\n", (long long)M);
        for (int c = 0; c < N_CASES; c++)
            printf("  %-36s %10.1f us  %6.2f%% of the layer linears\n", names[c], b.best[c] * 1e6,
                   100.0 * b.best[c] / b.best[LINEARS]);
        printf("  %-36s %10.1f us  (%+.2f%% of the MLP pair)\n", "fused saves",
               (b.best[MLP_UNFUSED] - b.best[MLP_FUSED]) * 1e6,
               100.0 * (b.best[MLP_UNFUSED] - b.best[MLP_FUSED]) / b.best[MLP_UNFUSED]);
        mt_arena_restore(&arena, top);
    }
    mt_arena_free(&arena);
    mt_pool_free(pool);
    return 0;
}
