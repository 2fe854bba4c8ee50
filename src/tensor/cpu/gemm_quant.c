/* tensor/cpu: linear layers with block-quantized weights (Q8_0, Q4_0, Q4_K, Q6_K; tensor/quant.h), as ggml runs them,
 * and the interleaved Q4_K_R8 / Q8_0_R8 a model loads its Q4_K / Q8_0 linears as.
 *
 *   | M        | path                                                                                       |
 *   |----------|--------------------------------------------------------------------------------------------|
 *   | 1..16    | each row of A quantized once (Q8_0 for Q8_0/Q4_0 W, Q8_K for Q4_K/Q6_K W), then integer   |
 *   |          | dot products block by block, W streamed once (past 4 rows by L2-sized slices, each read   |
 *   |          | from L2 by each pass of up to 8 rows), threads over N (isa->gemv_q or gemv_q_vnni)         |
 *   | > 16     | the GEMM of gemm.c with W as its B: where it packs a KC x NR panel of B it dequantizes     |
 *   |          | those blocks (mt_cpu_pack_b_quant), so each weight is dequantized once per call, into a   |
 *   |          | 32 KB scratch, and packed A is shared by all of N, as for bf16 W; where bf16 dot products  |
 *   |          | are on the panels are rounded to bf16 and run on the bf16 micro-kernel, as bf16 W do       |
 *
 * Decode reads every weight byte once per token, so it is bound by memory bandwidth; 8-bit activations keep the
 * inner loop in integer SIMD (vpmaddubsw / vpdpbusd, 32 or 64 products per instruction) at the cost of their
 * rounding, about 1% of |a| |w| / sqrt(K) per output, as in ggml, whose CPU path pairs the same formats (Q4_0 and
 * Q8_0 weights with Q8_0 activations, Q4_K and Q6_K with Q8_K).
 *
 * The scalar kernel here is the reference the SIMD ones are tested against: per block an exact integer sum, then one
 * float multiply-add with the two scales, in block order.
 */
#include <math.h>
#include <string.h>

#include "tensor/cpu/cpu_int.h"
#include "tensor/quant.h"

/* Up to GEMV_BATCH_M rows (a batch of decode rows: gemm.c's limit for bf16 W too) take the integer GEMV: on Zen 5
 * (2 threads, an 11008 x 2048 weight) it ran at 400 GFLOP/s for Q4_K_R8 and Q8_0_R8 and 285 for Q6_K at every M
 * from 9 to 128 (Q6_K on 512 bits since: 411 at 8 rows), where the GEMM, which dequantizes all of W once per call,
 * reached 105-130 GFLOP/s at 16 rows. Prompt
 * rows past that keep f32 activations: at 32 the 8-bit ones moved the tiny InternVL q8_0 GGUF's logits from 3.6e-2
 * to 5.9e-2 of the largest away from its folder's, at 16 to 4.3e-2 (PERFORMANCE.md, session 12). */
enum { GEMV_MAX_M = 4, GEMV_BATCH_M = 16, GEMV_SLICE_BYTES = 256 << 10, PACK_NR = 32, PACK_KC = 256 };

/* K-quant weights pair with Q8_K activations, the others with Q8_0. */
static bool is_k_quant(mt_dtype wt) { return wt == MT_Q4_K || wt == MT_Q6_K || wt == MT_Q4_K_R8; }

static size_t act_row_bytes(mt_dtype wt, int64_t k) {
    if (wt == MT_Q8_0_R8) return mt_q8_0_r8_act_bytes(k);
    return is_k_quant(wt) ? (size_t)(k / MT_QK_K) * sizeof(mt_block_q8_K) : mt_q8_0_act_bytes(k);
}

/* Quantizes a row of activations into y (act_row_bytes); Q8_0 blocks go through tmp (k/32 blocks) and are laid out
 * as mt_q8_0_act_bytes says. */
static void quant_act_row(const mt_cpu_isa *isa, int64_t k, const float *x, char *y, mt_block_q8_0 *tmp, mt_dtype wt) {
    if (is_k_quant(wt)) {
        isa->quant_act(k, x, y, wt);
        return;
    }
    isa->quant_act(k, x, tmp, wt);
    int64_t nb = k / MT_QK8_0;
    float *d = (float *)(y + k), *s = d + 8 * nb;
    int32_t *corr = (int32_t *)(y + mt_q8_0_act_bytes(k));
    for (int64_t b = 0; b < nb; b++) {
        int sum = 0;
        for (int j = 0; j < MT_QK8_0; j++) sum += tmp[b].qs[j];
        if (wt == MT_Q8_0_R8) corr[b] = 128 * sum;
        memcpy(y + b * MT_QK8_0, tmp[b].qs, MT_QK8_0);
        float db = mt_f16_to_f32(tmp[b].d);
        for (int l = 0; l < 8; l++) {
            d[8 * b + l] = db;
            s[8 * b + l] = db * (float)sum;
        }
    }
}

/* Q8_0 / Q4_0 W against activation values qa with block scales da[8 * b] (mt_q8_0_act_bytes). */
static float dot_q8_0(int64_t nb, const mt_block_q8_0 *w, const int8_t *qa, const float *da) {
    float s = 0;
    for (int64_t b = 0; b < nb; b++) {
        int sum = 0;
        for (int j = 0; j < MT_QK8_0; j++) sum += w[b].qs[j] * qa[32 * b + j];
        s += (float)sum * (mt_f16_to_f32(w[b].d) * da[8 * b]);
    }
    return s;
}

static float dot_q4_0(int64_t nb, const mt_block_q4_0 *w, const int8_t *qa, const float *da) {
    float s = 0;
    for (int64_t b = 0; b < nb; b++) {
        const int8_t *y = qa + 32 * b;
        int sum = 0;
        for (int j = 0; j < MT_QK4_0 / 2; j++)
            sum += ((w[b].qs[j] & 0xF) - 8) * y[j] + ((w[b].qs[j] >> 4) - 8) * y[j + MT_QK4_0 / 2];
        s += (float)sum * (mt_f16_to_f32(w[b].d) * da[8 * b]);
    }
    return s;
}

/* Q4_K: x = d*sc*q - dmin*m per sub-block of 32, so x.a = d*sum(sc * q.a) - dmin*sum(m * sum(a)); the activation
 * block's bsums give sum(a) per 16. */
static float dot_q4_K(int64_t nb, const mt_block_q4_K *w, const mt_block_q8_K *a) {
    float s = 0;
    for (int64_t b = 0; b < nb; b++) {
        int sumi = 0, summ = 0;
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            mt_q4_K_scale_min(j, w[b].scales, &sc, &m);
            const uint8_t *q = w[b].qs + 32 * (j / 2);
            const int8_t *y = a[b].qs + 32 * j;
            int sub = 0;
            for (int l = 0; l < 32; l++) sub += (j % 2 ? q[l] >> 4 : q[l] & 0xF) * y[l];
            sumi += sc * sub;
            summ += m * (a[b].bsums[2 * j] + a[b].bsums[2 * j + 1]);
        }
        s += mt_f16_to_f32(w[b].d) * a[b].d * (float)sumi - mt_f16_to_f32(w[b].dmin) * a[b].d * (float)summ;
    }
    return s;
}

/* Q6_K: x = d*sc*(q - 32) per sub-block of 16. */
static float dot_q6_K(int64_t nb, const mt_block_q6_K *w, const mt_block_q8_K *a) {
    float s = 0;
    for (int64_t b = 0; b < nb; b++) {
        int q[MT_QK_K];
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = w[b].ql + 64 * h, *qh = w[b].qh + 32 * h;
            int *o = q + 128 * h;
            for (int l = 0; l < 32; l++) {
                o[l] = (ql[l] & 0xF) | ((qh[l] & 3) << 4);
                o[l + 32] = (ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4);
                o[l + 64] = (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4);
                o[l + 96] = (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4);
            }
        }
        int sumi = 0;
        for (int g = 0; g < 16; g++) {
            int sub = 0;
            for (int l = 0; l < 16; l++) sub += (q[16 * g + l] - 32) * a[b].qs[16 * g + l];
            sumi += w[b].scales[g] * sub;
        }
        s += mt_f16_to_f32(w[b].d) * a[b].d * (float)sumi;
    }
    return s;
}

/* Q4_K_R8: row j's blocks taken out of their groups, then dot_q4_K's sums in its order, so the floats are Q4_K's. */
static float dot_q4_K_r8(int64_t nb, const void *w, size_t ldw, int64_t j, const mt_block_q8_K *a) {
    float s = 0;
    for (int64_t b = 0; b < nb; b++) {
        mt_block_q4_K x;
        mt_q4_K_r8_get(w, ldw, j, b, &x);
        s += dot_q4_K(1, &x, a + b);
    }
    return s;
}

/* Q8_0_R8 (n rows at w): row j's blocks taken back, then dot_q8_0's sums in its order, so the floats are Q8_0's. */
static float dot_q8_0_r8(int64_t nb, const void *w, size_t ldw, int64_t n, int64_t j, const int8_t *qa,
                         const float *da) {
    float s = 0;
    for (int64_t b = 0; b < nb; b++) {
        mt_block_q8_0 x;
        mt_q8_0_r8_get(w, ldw, n, j, b, &x);
        s += dot_q8_0(1, &x, qa + 32 * b, da + 8 * b);
    }
    return s;
}

void mt_cpu_gemv_q_scalar(int64_t m, int64_t n, int64_t k, const void *aq, size_t aq_stride, const void *w,
                          mt_dtype wt, size_t ldw, const float *bias, float *c, int64_t ldc, bool acc) {
    for (int64_t j = 0; j < n; j++) {
        const void *wj = (const char *)w + (size_t)j * ldw;
        for (int64_t i = 0; i < m; i++) {
            const void *ai = (const char *)aq + (size_t)i * aq_stride;
            float s = 0;
            switch (wt) {
            case MT_Q8_0: s = dot_q8_0(k / MT_QK8_0, wj, ai, (const float *)((const char *)ai + k)); break;
            case MT_Q4_0: s = dot_q4_0(k / MT_QK4_0, wj, ai, (const float *)((const char *)ai + k)); break;
            case MT_Q4_K: s = dot_q4_K(k / MT_QK_K, wj, ai); break;
            case MT_Q6_K: s = dot_q6_K(k / MT_QK_K, wj, ai); break;
            case MT_Q4_K_R8: s = dot_q4_K_r8(k / MT_QK_K, w, ldw, j, ai); break;
            case MT_Q8_0_R8:
                s = dot_q8_0_r8(k / MT_QK8_0, w, ldw, n, j, ai, (const float *)((const char *)ai + k));
                break;
            default: s = NAN; break;
            }
            if (bias) s += bias[j];
            c[i * ldc + j] = acc ? c[i * ldc + j] + s : s;
        }
    }
}

void mt_cpu_quant_act_scalar(int64_t k, const float *x, void *y, mt_dtype wt) {
    if (is_k_quant(wt)) mt_quantize_row_q8_K(x, y, k);
    else mt_quantize_row_q8_0(x, y, k);
}

void mt_cpu_dequant_scalar(int64_t k, const void *x, float *y, mt_dtype wt) {
    if (wt == MT_F16) {
        for (int64_t i = 0; i < k; i++) y[i] = mt_f16_to_f32(((const uint16_t *)x)[i]);
        return;
    }
    if (wt == MT_Q4_K_R8) {
        for (int64_t b = 0; b < k / MT_QK_K; b++)
            for (int r = 0; r < 8; r++) {
                mt_block_q4_K blk;
                mt_q4_K_r8_get(x, 0, r, b, &blk); /* row r < 8: the group at x itself */
                mt_dequantize_row_q4_K(&blk, y + r * k + b * MT_QK_K, MT_QK_K);
            }
        return;
    }
    if (wt != MT_Q8_0_R8) {
        mt_dequantize_row(wt, x, y, k);
        return;
    }
    const mt_block_q8_0_r8 *g = x;
    for (int64_t b = 0; b < k / MT_QK8_0; b++)
        for (int r = 0; r < 8; r++) {
            float d = mt_f16_to_f32(g[b].d[r]);
            for (int c = 0; c < 8; c++)
                for (int l = 0; l < 4; l++)
                    y[r * k + b * MT_QK8_0 + 4 * c + l] = (float)(int8_t)(g[b].qs[c][r][l] ^ 0x80) * d;
        }
}

typedef struct qgemv_job {
    void (*kernel)(int64_t m, int64_t n, int64_t k, const void *aq, size_t aq_stride, const void *w, mt_dtype wt,
                   size_t ldw, const float *bias, float *c, int64_t ldc, bool acc);
    int64_t M, N, K, nb;
    const char *aq;
    size_t aq_stride;
    const char *W;
    mt_dtype wt;
    size_t ldw; /* bytes */
    const float *bias;
    float *C;
    int64_t ldc;
    bool acc;
} qgemv_job;

/* Columns [t*nb, t*nb+nb), all rows of A in one call; past four rows over L2-sized slices of W, so that a kernel
 * that takes the rows in two passes (four at a time, on 256-bit levels) still reads W from DRAM once. */
static void qgemv_task(void *ctx, int64_t t, int thread) {
    const qgemv_job *j = ctx;
    int64_t n0 = t * j->nb, n = MT_MIN(j->nb, j->N - n0);
    int64_t slice = j->M <= GEMV_MAX_M ? n : MT_MAX((int64_t)16, GEMV_SLICE_BYTES / (int64_t)j->ldw / 16 * 16);
    for (int64_t s0 = n0; s0 < n0 + n; s0 += slice) {
        int64_t ns = MT_MIN(slice, n0 + n - s0);
        j->kernel(j->M, ns, j->K, j->aq, j->aq_stride, j->W + (size_t)s0 * j->ldw, j->wt, j->ldw,
                  j->bias ? j->bias + s0 : NULL, j->C + s0, j->ldc, j->acc);
    }
}

/* Blocks [b0, b0 + nb) of row j of a Q8_0_R8 W (N rows) past its last group of 8, where rows are plain Q8_0,
 * dequantized to y. */
static void dequant_q8_0_r8_tail(const mt_cpu_isa *isa, const void *W, size_t wrow, int64_t N, int64_t j, int64_t b0,
                                 int64_t nb, float *y) {
    for (int64_t b = 0; b < nb; b++) {
        mt_block_q8_0 x;
        mt_q8_0_r8_get(W, wrow, N, j, b0 + b, &x);
        isa->dequant(MT_QK8_0, &x, y + b * MT_QK8_0, MT_Q8_0);
    }
}

void mt_cpu_pack_b_quant(const mt_cpu_isa *isa, int64_t kc, int64_t nc, const void *W, mt_dtype wt, int64_t ldw,
                         int64_t N, int64_t k0, int64_t n0, bool bf16, void *dst) {
    size_t wrow = mt_dtype_row_bytes(wt, ldw), bb = mt_dtype_block_bytes(wt);
    /* panels are ka apart: a bf16 panel holds kc rounded up to whole k pairs (an f16 W's K may be odd) */
    int64_t blk = mt_dtype_block_elems(wt), nr = isa->nr, ka = bf16 ? MT_ROUND_UP(kc, 2) : kc;
    /* whole groups (Q8_0_R8's last N % 8 rows are plain Q8_0) in one pass */
    if (bf16 && (wt == MT_Q4_K_R8 || wt == MT_Q8_0_R8) && isa->pack_b_r8_bf16 && n0 % 8 == 0 && nc % 8 == 0 &&
        n0 + nc <= N / 8 * 8) {
        isa->pack_b_r8_bf16(kc, nc, (const char *)W + (size_t)n0 * wrow + (size_t)(k0 / blk) * 8 * bb, wrow, wt, dst);
        return;
    }
    float tmp[PACK_NR * PACK_KC];
    uint16_t tmp16[PACK_NR * PACK_KC];
    /* nr rows of up to PACK_KC values dequantized row-major into tmp, then packed as B (the isa's transposing
     * pack; on the bf16 path rounded to bf16 first); kc is a multiple of the block, and so is every chunk. Chunks of
     * 64 for Q8_0 (tmp 8 KB) were slower. */
    for (int64_t p = 0; p * nr < nc; p++) {
        int64_t r0 = p * nr, rows = MT_MIN(nr, nc - r0);
        for (int64_t k = 0; k < kc; k += PACK_KC) {
            int64_t kk = MT_MIN((int64_t)PACK_KC, kc - k);
            const char *src = (const char *)W + (size_t)(n0 + r0) * wrow + (size_t)((k0 + k) / blk) * bb;
            for (int64_t r = 0; r < rows; r++) {
                int64_t j = n0 + r0 + r;
                if ((wt == MT_Q8_0_R8 || wt == MT_Q4_K_R8) && j % 8 == 0 && r + 8 <= rows && j + 8 <= N / 8 * 8) {
                    /* a whole group at once: taken back a block at a time, prefill of 16 rows ran 65% slower than
                     * Q8_0's (2048 x 2048, one thread: 2.6 -> 4.3 ms) */
                    isa->dequant(kk, (const char *)W + (size_t)j * wrow + (size_t)((k0 + k) / blk) * 8 * bb,
                                 tmp + r * kk, wt);
                    r += 7;
                } else if (wt == MT_Q8_0_R8) /* Q4_K_R8 has no tail: its N is a multiple of 8, and so are n0 and nr */
                    dequant_q8_0_r8_tail(isa, W, wrow, N, j, (k0 + k) / blk, kk / blk, tmp + r * kk);
                else
                    isa->dequant(kk, src + (size_t)r * wrow, tmp + r * kk, wt);
            }
            /* a panel is [kc][nr] values, or [kc / 2][nr][2] on the bf16 path: chunk k starts k * nr values in */
            if (bf16) {
                isa->round_bf16(rows * kk, tmp, tmp16);
                isa->pack_b_bf16(kk, rows, tmp16, kk, (uint16_t *)dst + p * ka * nr + k * nr);
            } else {
                isa->pack_b(kk, rows, tmp, MT_F32, 1, kk, (float *)dst + p * ka * nr + k * nr);
            }
        }
    }
}

void mt_cpu_linear_quant_unblocked(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const void *W,
                                   mt_dtype wt, int64_t ldw_elems, const float *bias, float *C, int64_t ldc, bool acc) {
    size_t ldw = mt_dtype_row_bytes(wt, ldw_elems);
    int64_t blk = mt_dtype_block_elems(wt);
    size_t bb = mt_dtype_block_bytes(wt);
    float x[MT_QK_K];
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            float s = 0;
            for (int64_t b = 0; b < K / blk; b++) {
                if (wt == MT_Q4_K_R8) {
                    mt_block_q4_K blkq;
                    mt_q4_K_r8_get(W, ldw, n, b, &blkq);
                    mt_dequantize_row_q4_K(&blkq, x, blk);
                } else if (wt == MT_Q8_0_R8) {
                    mt_block_q8_0 blkq;
                    mt_q8_0_r8_get(W, ldw, N, n, b, &blkq);
                    mt_dequantize_row_q8_0(&blkq, x, blk);
                } else {
                    mt_dequantize_row(wt, (const char *)W + (size_t)n * ldw + (size_t)b * bb, x, blk);
                }
                for (int64_t l = 0; l < blk; l++) s += A[m * lda + b * blk + l] * x[l];
            }
            if (bias) s += bias[n];
            C[m * ldc + n] = acc ? C[m * ldc + n] + s : s;
        }
}

bool mt_cpu_linear_quant(mt_pool *pool, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const void *W,
                         mt_dtype wt, int64_t ldw, const float *bias, float *C, int64_t ldc, bool accumulate) {
    if (M <= 0 || N <= 0) return true;
    int64_t blk = mt_dtype_block_elems(wt);
    if (K <= 0) {
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++) {
                float b = bias ? bias[n] : 0.0f;
                C[m * ldc + n] = accumulate ? C[m * ldc + n] + b : b;
            }
        return true;
    }
    if (K % blk != 0 || ldw < K || ldw % blk != 0 || (wt == MT_Q4_K_R8 && N % 8 != 0)) {
        /* the loader checks shapes against the block; a call that slipped through gives NaN, never a wild read */
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++) C[m * ldc + n] = NAN;
        return true;
    }
    const mt_cpu_isa *isa = mt_cpu_isa_get();
    if (M > GEMV_BATCH_M) {
        /* mt_cpu_pack_b_quant's scratch holds PACK_NR rows, the widest micro-kernel's (avx512: 32) */
        if (isa->nr <= PACK_NR) return false;
        mt_cpu_linear_quant_unblocked(M, N, K, A, lda, W, wt, ldw, bias, C, ldc, accumulate);
        return true;
    }
    size_t wrow = mt_dtype_row_bytes(wt, ldw);
    size_t arow = act_row_bytes(wt, K);
    size_t tmp_at = MT_ROUND_UP(arow * (size_t)M, 64);
    char *aq = mt_cpu_scratch(tmp_at + (size_t)(K / MT_QK8_0) * sizeof(mt_block_q8_0));
    if (!aq) {
        mt_cpu_linear_quant_unblocked(M, N, K, A, lda, W, wt, ldw, bias, C, ldc, accumulate);
        return true;
    }
    for (int64_t m = 0; m < M; m++)
        quant_act_row(isa, K, A + m * lda, aq + (size_t)m * arow, (mt_block_q8_0 *)(aq + tmp_at), wt);
    int T = mt_pool_threads(pool);
    qgemv_job g = {.kernel = isa->gemv_q_vnni && mt_cpu_vnni_on() ? isa->gemv_q_vnni : isa->gemv_q,
                   .M = M, .N = N, .K = K, .aq = aq, .aq_stride = arow, .W = W, .wt = wt, .ldw = wrow,
                   .bias = bias, .C = C, .ldc = ldc, .acc = accumulate};
    g.nb = MT_MAX((int64_t)16, MT_ROUND_UP((N + 8 * T - 1) / (8 * T), 16));
    mt_pool_run(pool, (N + g.nb - 1) / g.nb, qgemv_task, &g);
    return true;
}
