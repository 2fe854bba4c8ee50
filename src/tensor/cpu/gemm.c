/* tensor/cpu: the GEMM driver behind mt_cpu_linear and mt_cpu_matmul_f32 - cache blocking, threading and packing
 * around the per-ISA micro-kernel, after the loop structure of Goto & van de Geijn, "Anatomy of high-performance
 * matrix multiplication" (2008) and BLIS.
 *
 *   | loop | step | what stays where                                                       |
 *   |------|------|------------------------------------------------------------------------|
 *   | k0   | <=16MB | A[:, k0:k1] packed once, shared by all threads, in KC-wide blocks       |
 *   |      |      | (KC: 2 KB of a row, 512 f32 values; bf16: 8 KB, 4096 values)            |
 *   | task | nb   | a thread owns columns [n0, n0+nb) (and rows [m0, m0+mb) when N is small) |
 *   | pc   | KC   | B[pc:pc+KC, n0:n0+nb] packed (f32 or bf16 k pairs) in per-thread scratch |
 *   | ic   | MC   | rows of packed A that stay in L2                                        |
 *   | ir   | MR   | one A micro-panel (MR x KC, 16 KB on AVX-512) stays in L1               |
 *   | jr   | NR   | the micro-kernel: C[MR, NR] += A[MR, KC] . B[KC, NR], B from L2         |
 *
 * ir runs outside jr: the B panels of a task (KC x nb, at most half of L2: nb shrinks on small-L2 CPUs) stream from
 * L2 past an A micro-panel held in L1. The other order (a B panel held in L1 while A micro-panels stream; 32 KB of a
 * 48 KB L1 at KC = 256) ran at 78-82% of one core's FMA peak at M = 512; this order at KC = 256 at 80-88%, and at
 * KC = 512 (C read and written half as often) at 88-91% (PERFORMANCE.md, session 10). The micro-kernel alone, A in
 * L1 and 512 KB of B from L2, runs at the peak. The bf16 path kept those bytes, 1024 values (against 512 it ran the
 * vision shapes (M = 4096, K = 1280 and 3420) 5-8% faster on two threads, session 12), and takes 4096 since session
 * 16: each tile's C is then read and written once for K up to 4096, and the prefill and vision GEMMs ran 3-10%
 * faster on Zen 5 than at 1024 (2048 did about as well, 512 worse than 1024); its B panels (128 KB) stream from L2
 * as before, a task's nb shrinking to keep them within half of it.
 *
 * M <= 16 (decode, of up to 16 sequences at once) takes the GEMV path instead: W is streamed once, converted on the
 * fly, threads over N. Up to the kernel's gemv_m rows (8 on AVX-512, with 32 registers; 4 elsewhere) one pass
 * reads W; past that, rows reuse each slice of W from L2. bf16 weights against 2 or more rows take the pairs
 * kernel where the ISA has one (cpu_int.h: gemv_pairs), on A packed once per call. These stay on f32 FMAs where bf16
 * dot products are on: a vdpbf16ps GEMV (4 rows a pass) streamed W at 53-74% of the read bandwidth on Zen 5 where
 * this one streams at 80-87%, and at M = 8 ran at half the pairs kernel's rate (docs/PERFORMANCE.md, session 11).
 *
 * 17-32 rows against a bf16 W with bf16 dot products (a server step's prompt chunk, a short prompt) skip the panels:
 * isa->rows_bf16 reads W rows in place (rows_prepare says why and where it stops).
 */
#include <string.h>

#include "tensor/cpu/cpu_int.h"

/* Up to GEMV_BATCH_M rows (several sequences decoding in one batch) take the GEMV path; a kernel that streams fewer
 * rows at once (isa->gemv_m) runs over each L2-sized slice of W once per group of rows, so W still comes from DRAM
 * once. mt_cpu_matmul (activations times activations) takes it up to GEMV_MAX_M rows. */
enum {
    KC_BYTES = 2048,
    KC_BYTES_BF16 = 8192,
    MC = 144,
    NB_MAX = 512,
    GEMV_MAX_M = 4,
    GEMV_BATCH_M = 16,
    GEMV_SLICE_BYTES = 256 << 10
};

/* Shared packed A is capped; a K range whose packed A would be larger is done in several super-blocks. */
#define APACK_MAX_BYTES ((size_t)16 << 20)

typedef struct gemm_job {
    const mt_cpu_isa *isa;
    int64_t M, N, K;
    const float *A;
    int64_t rsa, csa;
    const void *B;
    mt_dtype bt;
    int64_t rsb, csb;
    const float *bias;
    float *C;
    int64_t ldc;
    bool acc;
    bool bf16;                        /* bf16 dot products: A packed to bf16, B (bf16 or quantized W) to k pairs */
    int64_t nb, mb, n_chunks, mc, mp; /* mp: M rounded up to MR */
    int64_t kc;                       /* KC: values of k per block, kc_bytes of packed elements */
    int64_t k0, k1;                   /* the K super-block in flight */
    float *apack;                     /* [K blocks of k0..k1][mp][kc] (bf16: uint16_t, rows padded to even kc) */
    float *scratch;                   /* per thread: B panels, one edge tile */
    int64_t per_thread;               /* floats */
} gemm_job;

/* The unblocked loop used when scratch memory cannot be had. */
static void gemm_naive(const gemm_job *j) {
    if (mt_dtype_is_quant(j->bt)) {
        mt_cpu_linear_quant_unblocked(j->M, j->N, j->K, j->A, j->rsa, j->B, j->bt, j->csb, j->bias, j->C, j->ldc,
                                      j->acc);
        return;
    }
    for (int64_t m = 0; m < j->M; m++)
        for (int64_t n = 0; n < j->N; n++) {
            float s = 0.0f;
            for (int64_t k = 0; k < j->K; k++)
                s += j->A[m * j->rsa + k * j->csa] * mt_cpu_load(j->B, j->bt, k * j->rsb + n * j->csb);
            if (j->bias) s += j->bias[n];
            float *c = &j->C[m * j->ldc + n];
            *c = j->acc ? *c + s : s;
        }
}

/* Task t packs rows [t*MC, t*MC+MC) of A for every KC block of the super-block: block b is [mp][kc] row-major,
 * so a micro-kernel reads MR rows kc apart (read in place, rows lda apart would alias in L1 when lda is a multiple
 * of 1 KB, as all LLM widths are). Rows past M are zero. */
static void pack_a_task(void *ctx, int64_t t, int thread) {
    const gemm_job *j = ctx;
    int64_t r0 = t * j->mc, r1 = MT_MIN(j->mp, r0 + j->mc);
    for (int64_t pc = j->k0; pc < j->k1; pc += j->kc) {
        int64_t kc = MT_MIN(j->kc, j->K - pc);
        if (j->bf16) { /* rows of A (k contiguous) rounded to bf16 */
            int64_t kcp = MT_ROUND_UP(kc, 2);
            uint16_t *dst = (uint16_t *)j->apack + (pc - j->k0) * j->mp;
            for (int64_t r = r0; r < r1; r++) {
                uint16_t *d = dst + r * kcp;
                if (r < j->M) j->isa->round_bf16(kc, j->A + r * j->rsa + pc, d);
                else memset(d, 0, sizeof *d * (size_t)kc);
                if (kcp > kc) d[kc] = 0;
            }
            continue;
        }
        float *dst = j->apack + (pc - j->k0) * j->mp;
        if (j->rsa == 1 && j->csa != 1) {
            /* A^T (a weight gradient's dy^T): a row of A is a column in memory, csa floats apart - often a
             * multiple of 4 KB, so reading it in place misses cache and TLB on every element. Read along memory
             * instead (contiguous runs of rows) and write the packed rows, which stay in L1/L2. */
            int64_t rm = MT_MIN(r1, j->M);
            for (int64_t k = 0; k < kc; k++) {
                const float *a = j->A + (pc + k) * j->csa;
                for (int64_t r = r0; r < rm; r++) dst[r * kc + k] = a[r];
            }
            for (int64_t r = rm; r < r1; r++) memset(dst + r * kc, 0, sizeof(float) * (size_t)kc);
            continue;
        }
        for (int64_t r = r0; r < r1; r++) {
            float *d = dst + r * kc;
            if (r >= j->M) {
                memset(d, 0, sizeof(float) * (size_t)kc);
            } else if (j->csa == 1) {
                memcpy(d, j->A + r * j->rsa + pc, sizeof(float) * (size_t)kc);
            } else {
                const float *a = j->A + r * j->rsa + pc * j->csa;
                for (int64_t k = 0; k < kc; k++) d[k] = a[k * j->csa];
            }
        }
    }
}

/* Whether a linear of weights of type wt multiplies on bf16 dot products (cpu.h says when). Quantized weights do
 * too: their panels are dequantized anyway, and rounding a Q8_0 weight to bf16 (2^-9 relative) adds less than its
 * own rounding (half a step of 1/127 of its block's largest value), Q4_K's far less. So do f16 weights (a GGUF
 * projector's matrices whose K no block divides, f16 checkpoints): rounded to bf16 as they are packed, they carry
 * a bf16 checkpoint's error, the size of the rounding the activations take anyway (docs/DESIGN.md). */
static bool bf16_gemm(const mt_cpu_isa *isa, mt_dtype wt) {
    return (wt == MT_BF16 || wt == MT_F16 || mt_dtype_is_quant(wt)) && isa->ukr_bf16 && mt_cpu_bf16_dot_on();
}

/* C[MR, NR] tile from packed A rows and one B panel, each ka elements of k long (ka: kc, or kc rounded up to even
 * k pairs on the bf16 path). */
static void micro(const gemm_job *j, int64_t ka, const void *a, const void *b, float *c, int64_t ldc, bool load) {
    if (j->bf16) j->isa->ukr_bf16(ka / 2, a, ka, b, c, ldc, load);
    else j->isa->ukr(ka, a, ka, b, c, ldc, load);
}

/* Bytes of packed A per row and K block (the file's header says why bf16 takes more). */
static int64_t kc_bytes(const gemm_job *j) { return j->bf16 ? KC_BYTES_BF16 : KC_BYTES; }

static void gemm_task(void *ctx, int64_t t, int thread) {
    const gemm_job *j = ctx;
    const mt_cpu_isa *isa = j->isa;
    const int MR = isa->mr, NR = isa->nr;
    int64_t n0 = (t % j->n_chunks) * j->nb, n1 = MT_MIN(j->N, n0 + j->nb);
    int64_t m0 = (t / j->n_chunks) * j->mb, m1 = MT_MIN(j->M, m0 + j->mb);
    float *bp = j->scratch + thread * j->per_thread, *tile = bp + kc_bytes(j) / (int64_t)sizeof(float) * j->nb;
    size_t es = mt_dtype_size(j->bt), packed = j->bf16 ? 2 : sizeof(float); /* bytes of a packed element */
    for (int64_t pc = j->k0; pc < j->k1; pc += j->kc) {
        int64_t kc = MT_MIN(j->kc, j->K - pc), ka = j->bf16 ? MT_ROUND_UP(kc, 2) : kc;
        const char *ap = (const char *)j->apack + (size_t)((pc - j->k0) * j->mp) * packed;
        if (mt_dtype_is_quant(j->bt) || (j->bf16 && j->bt == MT_F16))
            mt_cpu_pack_b_quant(isa, kc, n1 - n0, j->B, j->bt, j->csb, j->N, pc, n0, j->bf16, bp);
        else if (j->bf16)
            isa->pack_b_bf16(kc, n1 - n0, (const uint16_t *)j->B + n0 * j->csb + pc, j->csb, (uint16_t *)bp);
        else
            isa->pack_b(kc, n1 - n0, (const char *)j->B + (size_t)(pc * j->rsb + n0 * j->csb) * es, j->bt, j->rsb,
                        j->csb, bp);
        bool load = j->acc || pc > 0;
        /* the bias goes on each tile after its last K block, while the tile is still in L1 */
        const float *bias = j->bias && j->k1 == j->K && pc + j->kc >= j->k1 ? j->bias + n0 : NULL;
        for (int64_t ic = m0; ic < m1; ic += j->mc) {
            int64_t mc = MT_MIN(j->mc, m1 - ic);
            for (int64_t ir = 0; ir < mc; ir += MR) {
                int64_t mr = MT_MIN((int64_t)MR, mc - ir);
                const char *a = ap + (size_t)((ic + ir) * ka) * packed;
                for (int64_t jr = 0; jr < n1 - n0; jr += NR) {
                    int64_t nr = MT_MIN((int64_t)NR, n1 - n0 - jr);
                    const char *b = (const char *)bp + (size_t)((jr / NR) * ka * NR) * packed;
                    float *c = j->C + (ic + ir) * j->ldc + n0 + jr;
                    if (mr == MR && nr == NR) {
                        micro(j, ka, a, b, c, j->ldc, load);
                    } else {
                        micro(j, ka, a, b, tile, NR, false);
                        for (int64_t i = 0; i < mr; i++)
                            for (int64_t x = 0; x < nr; x++)
                                c[i * j->ldc + x] = load ? c[i * j->ldc + x] + tile[i * NR + x] : tile[i * NR + x];
                    }
                    if (bias)
                        for (int64_t i = 0; i < mr; i++) isa->axpy(nr, 1.0f, bias + jr, c + i * j->ldc);
                }
            }
        }
    }
}

/* Zero K: C is the bias (or keeps itself) */
static void gemm_k0(const gemm_job *j) {
    for (int64_t m = 0; m < j->M; m++)
        for (int64_t n = 0; n < j->N; n++) {
            float *c = &j->C[m * j->ldc + n];
            float b = j->bias ? j->bias[n] : 0.0f;
            *c = j->acc ? *c + b : b;
        }
}

/* Blocking, task split and scratch for j, with room for extra floats more at *extra_out (when not NULL). Returns the
 * number of tasks, 0 when no scratch could be had; *kb_out is the K super-block. */
static int64_t gemm_plan(mt_pool *pool, gemm_job *j, size_t extra, float **extra_out, int64_t *kb_out) {
    const mt_cpu_isa *isa = j->isa;
    int T = mt_pool_threads(pool);
    int64_t NR = isa->nr, MR = isa->mr;
    /* About four tasks per thread for balance; rows are split too only when columns alone give too few tasks,
     * since every row split packs B once more. */
    int64_t want = 4 * (int64_t)T;
    /* a task's packed B (KC x nb) streams past the A micro-panels from L2, so it takes at most half of it */
    int64_t nb_l2 = MT_MAX(NR, mt_cpu_l2_bytes() / 2 / kc_bytes(j) / NR * NR);
    j->nb = MT_MIN(MT_MIN((int64_t)NB_MAX, nb_l2), MT_ROUND_UP((j->N + want - 1) / want, NR));
    j->n_chunks = (j->N + j->nb - 1) / j->nb;
    int64_t m_chunks = j->n_chunks >= 2 * (int64_t)T ? 1 : (2 * (int64_t)T + j->n_chunks - 1) / j->n_chunks;
    j->mb = MT_ROUND_UP((j->M + m_chunks - 1) / m_chunks, MR);
    m_chunks = (j->M + j->mb - 1) / j->mb;
    j->mc = MC / MR * MR;
    j->mp = MT_ROUND_UP(j->M, MR);
    /* K super-block: as many KC blocks as keep packed A under the cap (at least one); bf16 packs 2 bytes a value */
    size_t packed = j->bf16 ? sizeof(uint16_t) : sizeof(float), row_bytes = (size_t)j->mp * (size_t)kc_bytes(j);
    j->kc = kc_bytes(j) / (int64_t)packed;
    int64_t kb = j->kc * (int64_t)MT_MAX((size_t)1, APACK_MAX_BYTES / row_bytes);
    kb = MT_MIN(kb, MT_ROUND_UP(j->K, j->kc));
    j->per_thread = MT_ROUND_UP(kc_bytes(j) / (int64_t)sizeof(float) * j->nb + MR * NR, 16);
    size_t abytes = MT_ROUND_UP((size_t)j->mp * (size_t)kb * packed, 64), bytes, xbytes;
    float *s = NULL;
    if (mt_mul_ok((size_t)j->per_thread * sizeof(float), (size_t)T, &bytes) && mt_add_ok(bytes, abytes, &bytes) &&
        mt_mul_ok(extra, sizeof(float), &xbytes) && mt_add_ok(bytes, xbytes, &bytes))
        s = mt_cpu_scratch(bytes);
    if (!s) return 0;
    j->apack = s;
    j->scratch = s + abytes / sizeof(float);
    if (extra_out) *extra_out = j->scratch + (size_t)j->per_thread * (size_t)T;
    *kb_out = kb;
    return j->n_chunks * m_chunks;
}

static void gemm_run(mt_pool *pool, gemm_job *j) {
    if (j->M <= 0 || j->N <= 0) return;
    if (j->K <= 0) {
        gemm_k0(j);
        return;
    }
    int64_t kb, tasks = gemm_plan(pool, j, 0, NULL, &kb);
    if (!tasks) {
        gemm_naive(j);
        return;
    }
    for (j->k0 = 0; j->k0 < j->K; j->k0 += kb) {
        j->k1 = MT_MIN(j->K, j->k0 + kb);
        mt_pool_run(pool, (j->mp + j->mc - 1) / j->mc, pack_a_task, j);
        mt_pool_run(pool, tasks, gemm_task, j);
    }
}

typedef struct gemv_job {
    const mt_cpu_isa *isa;
    int64_t M, N, K, nb;
    const float *A;
    const float *AP;     /* A packed for isa->gemv_pairs, else NULL: each pass's rows packed on their own */
    int64_t ap_row;      /* floats of AP per row of A */
    int64_t lda;
    const void *W;
    mt_dtype wt;
    int64_t ldw;
    const float *bias;
    float *C;
    int64_t ldc;
    bool acc;
} gemv_job;

/* Rows of A a pass over W takes: gemv_m, or for the pairs kernel groups as even as gemv_m allows (12 rows are 6 + 6,
 * not 8 + 4). */
static int64_t gemv_pass_rows(const mt_cpu_isa *isa, int64_t M, bool pairs) {
    int64_t rows = isa->gemv_m, passes = (M + rows - 1) / rows;
    return pairs ? (M + passes - 1) / passes : rows;
}

/* Columns [n0, n0+n) of C = A . W^T (+ bias). */
static void gemv_cols(const gemv_job *j, const void *W, const float *bias_all, float *C, int64_t ldc, int64_t n0,
                      int64_t n) {
    size_t es = mt_dtype_size(j->wt);
    int64_t rows = gemv_pass_rows(j->isa, j->M, j->AP != NULL);
    int64_t slice = j->M <= rows ? n : MT_MAX((int64_t)16, GEMV_SLICE_BYTES / (int64_t)((size_t)j->K * es) / 16 * 16);
    for (int64_t s0 = n0; s0 < n0 + n; s0 += slice) {
        int64_t ns = MT_MIN(slice, n0 + n - s0);
        const float *bias = bias_all ? bias_all + s0 : NULL;
        const char *w = (const char *)W + (size_t)(s0 * j->ldw) * es;
        for (int64_t m0 = 0; m0 < j->M; m0 += rows) {
            int64_t mm = MT_MIN(rows, j->M - m0);
            float *c = C + m0 * ldc + s0;
            if (j->AP)
                j->isa->gemv_pairs(mm, ns, j->K, j->AP + m0 * j->ap_row, mm, (const uint16_t *)w, j->ldw, bias, c,
                                   ldc, j->acc);
            else
                j->isa->gemv(mm, ns, j->K, j->A + m0 * j->lda, j->lda, w, j->wt, j->ldw, bias, c, ldc, j->acc);
        }
    }
}

static void gemv_task(void *ctx, int64_t t, int thread) {
    const gemv_job *j = ctx;
    int64_t n0 = t * j->nb;
    gemv_cols(j, j->W, j->bias, j->C, j->ldc, n0, MT_MIN(j->nb, j->N - n0));
}

/* Packs A for the pairs kernel where it runs, with room for extra floats after it (the gated linear's gate block);
 * returns those floats, or NULL when extra is 0 or no scratch could be had. */
static float *gemv_prepare(mt_pool *pool, gemv_job *j, size_t extra) {
    int T = mt_pool_threads(pool);
    /* one row stays on the plain GEMV, tuned for the bandwidth limit; from two rows the FMAs are the limit */
    bool pairs = j->wt == MT_BF16 && j->isa->gemv_pairs && j->M >= 2 && j->K > 0;
    /* the pairs kernel's tiles are 2, 3 or 4 W rows: a task of a multiple of 48 ends on no single-row tile */
    int64_t q = pairs ? 48 : 16;
    j->nb = MT_MAX(q, MT_ROUND_UP((j->N + 8 * T - 1) / (8 * T), q));
    size_t a_bytes = 0, xbytes, bytes;
    int64_t blk = pairs ? 2 * (int64_t)j->isa->pair_lanes : 1;
    if (pairs && !mt_mul_ok((size_t)(j->M * MT_ROUND_UP(j->K, blk)), sizeof(float), &a_bytes))
        pairs = false, a_bytes = 0;
    a_bytes = MT_ROUND_UP(a_bytes, 64);
    if (!mt_mul_ok(extra, sizeof(float), &xbytes) || !mt_add_ok(a_bytes, xbytes, &bytes)) return NULL;
    char *s = bytes ? mt_cpu_scratch(bytes) : NULL;
    if (!s) return NULL;
    if (pairs) {
        /* a pass reads its rows' blocks one after another: in one packing of all M rows they would be M rows of
         * blocks apart, and at 16 rows (2 KB, a power of two) half of L1's sets held the pass's A, which then
         * thrashed: 16 rows ran at 60% of 15 rows' rate (docs/PERFORMANCE.md, session 16) */
        int64_t rows = gemv_pass_rows(j->isa, j->M, true);
        j->ap_row = MT_ROUND_UP(j->K, blk);
        for (int64_t m0 = 0; m0 < j->M; m0 += rows)
            j->isa->pack_pairs(MT_MIN(rows, j->M - m0), j->K, j->A + m0 * j->lda, j->lda, (float *)s + m0 * j->ap_row);
        j->AP = (const float *)s;
    }
    return extra ? (float *)(s + a_bytes) : NULL;
}

static void gemv_run(mt_pool *pool, gemv_job *j) {
    gemv_prepare(pool, j, 0);
    mt_pool_run(pool, (j->N + j->nb - 1) / j->nb, gemv_task, j);
}

/* 17 to ROWS_MAX_M rows against a bf16 W with bf16 dot products take isa->rows_bf16: W rows read in place, A
 * rounded once. For so few rows, packing B cost as much as the products (45% of a 32-row GEMM's time); the direct
 * kernel ran 24 and 32 rows at K = 2048 30-45% faster, 64 rows no faster, and K = 11008 (A rows past L1) slower
 * (docs/PERFORMANCE.md, session 15). Tasks over N, each over ROWS_SLICE rows of W at a time (at most 384 KB, in L2). */
enum { ROWS_MAX_M = 32, ROWS_MAX_K = 4096, ROWS_SLICE = 48 };

typedef struct rows_job {
    const mt_cpu_isa *isa;
    int64_t M, N, K, kp, nb;
    const uint16_t *a, *W;
    int64_t ldw;
    const float *bias;
    float *C;
    int64_t ldc;
    bool acc;
} rows_job;

/* Columns [n0, n1) of C = A . W^T (+ bias), a slice of W at a time. */
static void rows_cols(const rows_job *j, const uint16_t *W, const float *bias_all, float *C, int64_t ldc, bool acc,
                      int64_t n0, int64_t n1) {
    for (int64_t s0 = n0; s0 < n1; s0 += ROWS_SLICE)
        j->isa->rows_bf16(j->M, MT_MIN((int64_t)ROWS_SLICE, n1 - s0), j->K, j->a, j->kp, W + s0 * j->ldw, j->ldw,
                          bias_all ? bias_all + s0 : NULL, C + s0, ldc, acc);
}

static void rows_task(void *ctx, int64_t t, int thread) {
    const rows_job *j = ctx;
    int64_t n0 = t * j->nb;
    rows_cols(j, j->W, j->bias, j->C, j->ldc, j->acc, n0, MT_MIN(j->N, n0 + j->nb));
}

/* Rounds A for the rows path into scratch, with room for extra floats after it (*x: the gated linear's gate
 * product), and sizes the tasks; false where the path does not apply or no scratch can be had (the GEMM runs). */
static bool rows_prepare(mt_pool *pool, rows_job *j, mt_dtype wt, const float *A, int64_t lda, size_t extra,
                         float **x) {
    const mt_cpu_isa *isa = j->isa;
    if (!isa->rows_bf16 || !bf16_gemm(isa, wt) || wt != MT_BF16 || j->M <= GEMV_BATCH_M || j->M > ROWS_MAX_M ||
        j->N < 1 || j->K < 1 || j->K > ROWS_MAX_K)
        return false;
    j->kp = MT_ROUND_UP(j->K, MT_ROWS_BF16_K);
    size_t a_bytes = MT_ROUND_UP((size_t)(MT_ROUND_UP(j->M, MT_ROWS_BF16_M) * j->kp) * sizeof(uint16_t), 64), xbytes,
           bytes;
    if (!mt_mul_ok(extra, sizeof(float), &xbytes) || !mt_add_ok(a_bytes, xbytes, &bytes)) return false;
    char *s = mt_cpu_scratch(bytes);
    if (!s) return false;
    memset(s, 0, a_bytes);
    uint16_t *a = (uint16_t *)s;
    for (int64_t i = 0; i < j->M; i++) isa->round_bf16(j->K, A + i * lda, a + i * j->kp);
    j->a = a;
    if (x) *x = (float *)(s + a_bytes);
    int64_t T = mt_pool_threads(pool);
    j->nb = MT_MAX((int64_t)ROWS_SLICE, MT_ROUND_UP((j->N + 8 * T - 1) / (8 * T), ROWS_SLICE));
    return true;
}

void mt_cpu_linear(mt_pool *pool, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const void *W,
                   mt_dtype wt, int64_t ldw, const float *bias, float *C, int64_t ldc, bool accumulate) {
    if (mt_dtype_is_quant(wt) && mt_cpu_linear_quant(pool, M, N, K, A, lda, W, wt, ldw, bias, C, ldc, accumulate))
        return;
    const mt_cpu_isa *isa = mt_cpu_isa_get();
    /* quantized W left here (17+ rows, mt_cpu_linear_quant's GEMV stops at 16) takes the GEMM's dequantized panels */
    if (M >= 1 && M <= GEMV_BATCH_M && N > 0 && K > 0 && !mt_dtype_is_quant(wt)) {
        gemv_job g = {.isa = isa, .M = M, .N = N, .K = K, .A = A, .lda = lda, .W = W, .wt = wt, .ldw = ldw,
                      .bias = bias, .C = C, .ldc = ldc, .acc = accumulate};
        gemv_run(pool, &g);
        return;
    }
    rows_job r = {.isa = isa, .M = M, .N = N, .K = K, .W = W, .ldw = ldw, .bias = bias, .C = C, .ldc = ldc,
                  .acc = accumulate};
    if (rows_prepare(pool, &r, wt, A, lda, 0, NULL)) {
        mt_pool_run(pool, (N + r.nb - 1) / r.nb, rows_task, &r);
        return;
    }
    gemm_job j = {.isa = isa, .M = M, .N = N, .K = K, .A = A, .rsa = lda, .csa = 1, .B = W, .bt = wt, .rsb = 1,
                  .csb = ldw, .bias = bias, .C = C, .ldc = ldc, .acc = accumulate, .bf16 = bf16_gemm(isa, wt)};
    gemm_run(pool, &j);
}

typedef struct gated_gemv {
    gemv_job j; /* the gate product's: W, bias */
    const void *Wu;
    const float *bu;
    float *G; /* [M, N]: the gate product, each task's columns written and read back while in cache */
    mt_cpu_gate_fn fn;
    const void *arg;
} gated_gemv;

static void gated_gemv_task(void *ctx, int64_t t, int thread) {
    const gated_gemv *g = ctx;
    const gemv_job *j = &g->j;
    int64_t n0 = t * j->nb, n = MT_MIN(j->nb, j->N - n0);
    gemv_cols(j, j->W, j->bias, g->G, j->N, n0, n);
    gemv_cols(j, g->Wu, g->bu, j->C, j->ldc, n0, n);
    for (int64_t m = 0; m < j->M; m++) g->fn(g->arg, n, g->G + m * j->N + n0, j->C + m * j->ldc + n0);
}

typedef struct gated_rows {
    rows_job j; /* the up product's: W, bias, C */
    const uint16_t *Wg;
    const float *bg;
    float *G; /* [M, N]: the gate product, as gated_gemv's */
    mt_cpu_gate_fn fn;
    const void *arg;
} gated_rows;

static void gated_rows_task(void *ctx, int64_t t, int thread) {
    const gated_rows *g = ctx;
    const rows_job *j = &g->j;
    int64_t n0 = t * j->nb, n1 = MT_MIN(j->N, n0 + j->nb);
    rows_cols(j, g->Wg, g->bg, g->G, j->N, false, n0, n1);
    rows_cols(j, j->W, j->bias, j->C, j->ldc, false, n0, n1);
    for (int64_t m = 0; m < j->M; m++) g->fn(g->arg, n1 - n0, g->G + m * j->N + n0, j->C + m * j->ldc + n0);
}

typedef struct gated_gemm {
    gemm_job g, u; /* g writes the gate product to scratch [M, N], u the up product to C; A packed once for both */
    mt_cpu_gate_fn fn;
    const void *arg;
} gated_gemm;

static void gated_gemm_task(void *ctx, int64_t t, int thread) {
    const gated_gemm *x = ctx;
    const gemm_job *j = &x->u;
    gemm_task((void *)&x->g, t, thread);
    gemm_task((void *)j, t, thread);
    int64_t n0 = (t % j->n_chunks) * j->nb, n1 = MT_MIN(j->N, n0 + j->nb);
    int64_t m0 = (t / j->n_chunks) * j->mb, m1 = MT_MIN(j->M, m0 + j->mb);
    for (int64_t m = m0; m < m1; m++) x->fn(x->arg, n1 - n0, x->g.C + m * j->N + n0, j->C + m * j->ldc + n0);
}

bool mt_cpu_gated_linear(mt_pool *pool, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
                         const void *Wg, const void *Wu, mt_dtype wt, int64_t ldw, const float *bg, const float *bu,
                         mt_cpu_gate_fn fn, const void *arg, float *C, int64_t ldc) {
    if (mt_dtype_is_quant(wt) || M < 1 || N < 1 || K < 1) return false;
    const mt_cpu_isa *isa = mt_cpu_isa_get();
    size_t gsize;
    if (!mt_mul_ok((size_t)M, (size_t)N, &gsize)) return false;
    if (M <= GEMV_BATCH_M) {
        gated_gemv g = {.j = {.isa = isa, .M = M, .N = N, .K = K, .A = A, .lda = lda, .W = Wg, .wt = wt, .ldw = ldw,
                              .bias = bg, .C = C, .ldc = ldc},
                        .Wu = Wu, .bu = bu, .fn = fn, .arg = arg};
        if (!(g.G = gemv_prepare(pool, &g.j, gsize))) return false;
        mt_pool_run(pool, (N + g.j.nb - 1) / g.j.nb, gated_gemv_task, &g);
        return true;
    }
    gated_rows r = {.j = {.isa = isa, .M = M, .N = N, .K = K, .W = Wu, .ldw = ldw, .bias = bu, .C = C, .ldc = ldc},
                    .Wg = Wg, .bg = bg, .fn = fn, .arg = arg};
    if (rows_prepare(pool, &r.j, wt, A, lda, gsize, &r.G)) {
        mt_pool_run(pool, (N + r.j.nb - 1) / r.j.nb, gated_rows_task, &r);
        return true;
    }
    gated_gemm x = {.u = {.isa = isa, .M = M, .N = N, .K = K, .A = A, .rsa = lda, .csa = 1, .B = Wu, .bt = wt,
                          .rsb = 1, .csb = ldw, .bias = bu, .C = C, .ldc = ldc, .bf16 = bf16_gemm(isa, wt)},
                    .fn = fn, .arg = arg};
    float *G;
    int64_t kb, tasks = gemm_plan(pool, &x.u, gsize, &G, &kb);
    /* one packed block of A must hold all of K: the epilogue needs both products complete */
    if (!tasks || kb < K) return false;
    x.u.k0 = 0;
    x.u.k1 = K;
    x.g = x.u;
    x.g.B = Wg;
    x.g.bias = bg;
    x.g.C = G;
    x.g.ldc = N;
    mt_pool_run(pool, (x.u.mp + x.u.mc - 1) / x.u.mc, pack_a_task, &x.u);
    mt_pool_run(pool, tasks, gated_gemm_task, &x);
    return true;
}

void mt_cpu_matmul(mt_pool *pool, int64_t M, int64_t N, int64_t K, const float *A, int64_t rsa, int64_t csa,
                   const void *B, mt_dtype bt, int64_t rsb, int64_t csb, float *C, int64_t ldc, bool accumulate) {
    const mt_cpu_isa *isa = mt_cpu_isa_get();
    if (M >= 1 && M <= GEMV_MAX_M && N > 0 && K > 0 && csa == 1 && rsb == 1) {
        gemv_job g = {.isa = isa, .M = M, .N = N, .K = K, .A = A, .lda = rsa, .W = B, .wt = bt, .ldw = csb,
                      .C = C, .ldc = ldc, .acc = accumulate};
        gemv_run(pool, &g);
        return;
    }
    gemm_job j = {.isa = isa, .M = M, .N = N, .K = K, .A = A, .rsa = rsa, .csa = csa, .B = B, .bt = bt,
                  .rsb = rsb, .csb = csb, .C = C, .ldc = ldc, .acc = accumulate};
    gemm_run(pool, &j);
}

void mt_cpu_matmul_f32(mt_pool *pool, int64_t M, int64_t N, int64_t K, const float *A, int64_t rsa, int64_t csa,
                       const float *B, int64_t rsb, int64_t csb, float *C, int64_t ldc, bool accumulate) {
    mt_cpu_matmul(pool, M, N, K, A, rsa, csa, B, MT_F32, rsb, csb, C, ldc, accumulate);
}
