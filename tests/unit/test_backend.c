/* tensor/backend: ops reach the heavy kernels through the context's backend table (a counting table that forwards to
 * the CPU sees every linear, attention and their backward, with the CPU's results), and a tensor stored on another
 * device is refused by name, never read. */
#include <string.h>

#include "check.h"
#include "tensor/autograd.h"
#include "tensor/backend.h"

static int n_linear, n_matmul, n_attn, n_attn_bw;

static void count_linear(mt_pool *p, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const void *W,
                         mt_dtype wt, int64_t ldw, const float *bias, float *C, int64_t ldc, bool acc) {
    n_linear++;
    mt_cpu_linear(p, M, N, K, A, lda, W, wt, ldw, bias, C, ldc, acc);
}
static void count_matmul(mt_pool *p, int64_t M, int64_t N, int64_t K, const float *A, int64_t rsa, int64_t csa,
                         const void *B, mt_dtype bt, int64_t rsb, int64_t csb, float *C, int64_t ldc, bool acc) {
    n_matmul++;
    mt_cpu_matmul(p, M, N, K, A, rsa, csa, B, bt, rsb, csb, C, ldc, acc);
}
static void count_attn(mt_pool *p, const mt_attn_args *a) {
    n_attn++;
    mt_cpu_attention(p, a);
}
static void count_attn_bw(mt_pool *p, const mt_attn_args *a, const mt_attn_grad *g) {
    n_attn_bw++;
    mt_cpu_attention_backward(p, a, g);
}

static const mt_backend counting = {"counting", MT_DEVICE_CPU, count_linear, count_matmul, count_attn, count_attn_bw, NULL};

/* A linear, a causal attention over it and a loss; returns the loss (NAN on failure). */
static float run(mt_ctx *ctx, const float *xv, const float *wv) {
    mt_tensor *x = mt_tensor_new_2d(ctx, MT_F32, 6, 8);
    memcpy(x->data, xv, sizeof(float) * 48);
    x->requires_grad = true;
    mt_tensor w = mt_tensor_wrap(MT_F32, 2, (int64_t[]){8, 8}, wv);
    mt_tensor *h = mt_op_linear(ctx, x, &w, NULL);
    mt_attn_opts ao = {.scale = 0.5f, .causal = true};
    mt_tensor *a = mt_op_attention(ctx, h, h, h, 2, 2, &ao);
    mt_tensor *loss = mt_op_cross_entropy(ctx, a, (int32_t[]){1, 2, 3, 4, 5, 6}, 1.0f);
    if (!loss || mt_backward(ctx, loss)) {
        fprintf(stderr, "run: %s\n", ctx->err.msg);
        return NAN;
    }
    return mt_f32(loss)[0];
}

int main(void) {
    mt_arena arena;
    mt_arena_init(&arena, 1 << 20);
    mt_tape *tape;
    mt_err err;
    CHECK(mt_tape_new(&tape, &err) == MT_OK);
    float xv[48], wv[64];
    for (int i = 0; i < 48; i++) xv[i] = (float)((i * 37) % 11) / 11.0f - 0.5f;
    for (int i = 0; i < 64; i++) wv[i] = (float)((i * 53) % 13) / 13.0f - 0.5f;
    mt_ctx cpu = {.arena = &arena, .tape = tape};
    float ref = run(&cpu, xv, wv);
    mt_tape_reset(tape);
    mt_ctx via = {.arena = &arena, .tape = tape, .backend = &counting};
    float got = run(&via, xv, wv);
    CHECK_MSG(ref == got && !isnan(ref), "loss %g through the table, %g on the CPU", got, ref);
    CHECK_MSG(n_linear == 1 && n_matmul == 1 && n_attn == 1 && n_attn_bw == 1,
              "kernels through the table: linear %d, matmul %d, attention %d, attention backward %d", n_linear,
              n_matmul, n_attn, n_attn_bw);
    CHECK(mt_ctx_backend(&cpu) == &mt_backend_cpu && mt_ctx_backend(&via) == &counting);

    /* storage elsewhere: refused by the op, named in the message */
    mt_tape_reset(tape);
    mt_ctx plain = {.arena = &arena};
    mt_tensor dev = mt_tensor_wrap(MT_F32, 2, (int64_t[]){6, 8}, xv), wn = mt_tensor_wrap(MT_F32, 1, (int64_t[]){8}, wv);
    dev.device = MT_DEVICE_CUDA;
    CHECK(mt_op_rms_norm(&plain, &dev, &wn, 1e-6f) == NULL && plain.status == MT_ERR_UNSUPPORTED &&
          strstr(plain.err.msg, "cuda"));
    mt_ctx plain2 = {.arena = &arena};
    mt_tensor w = mt_tensor_wrap(MT_F32, 2, (int64_t[]){8, 8}, wv), host = mt_tensor_wrap(MT_F32, 2, (int64_t[]){6, 8}, xv);
    w.device = MT_DEVICE_CUDA;
    CHECK(mt_op_linear(&plain2, &host, &w, NULL) == NULL && plain2.status == MT_ERR_UNSUPPORTED &&
          strstr(plain2.err.msg, "linear") && strstr(plain2.err.msg, "cpu backend"));
    printf("backend table: linear, matmul, attention and its backward dispatched; other devices refused\n");
    mt_tape_free(tape);
    mt_arena_free(&arena);
    return check_report();
}
