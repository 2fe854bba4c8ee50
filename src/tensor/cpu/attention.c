/* tensor/cpu: fused attention with an online softmax over key tiles (FlashAttention, Dao et al. 2022, forward pass
 * on a CPU): the T x S score matrix never exists, only an R x BK tile of it.
 *
 * One task = one kv head, a group of the query heads that share it (GQA) and a block of queries. Its rows are
 * (query, head) pairs, r = (t - t0) * gsz + g, so a K/V tile is converted and packed once for all of them.
 *
 *   | buffer | shape         | holds                                                            |
 *   |--------|---------------|------------------------------------------------------------------|
 *   | Qb     | [Rp][D]       | scale * q rows (rows past R are zero)                            |
 *   | kp     | D x BK panels | K tile packed as the micro-kernel's B (k = d, n = key); unused   |
 *   |        |               | when R <= 4 (decode), where a GEMV reads the K rows in place     |
 *   | S      | [Rp][BK]      | scores, then in place the probabilities P of the tile            |
 *   | vp     | BK x Dp panels| V tile packed as B (k = key, n = d)                               |
 *   | O      | [Rp][Dp]      | unnormalised output; m[r], l[r] running max and sum              |
 *   | Qh     | [Rp][Dk]      | bf16 products (a->bf16): Q rounded, Dk = D rounded up to even    |
 *   | Kh     | [BK][Dk]      | bf16 products on f32 K: the tile's rows rounded, then packed     |
 *   | Ph     | [Rp][BK]      | bf16 products: P rounded; kp and vp then hold bf16 k pairs       |
 *
 * Row t sees keys [row_start, row_limit): its segment, cut by the causal limit and the sliding window. Both bounds
 * grow with t, so a task runs its tiles from the first row's start to the last row's limit - with a window that
 * skips every tile below it - and masks the keys of a tile outside a row's own range.
 *
 * Per tile, row r with n visible keys: m' = max(m, max S), P = e^(S - m'), l = l e^(m - m') + sum P,
 * O = O e^(m - m') + P V. At the end out = O / l (zeros when the row saw no key).
 */
#include <math.h>

#include "tensor/cpu/cpu_int.h"

/* GEMV_ROWS: with this few rows (decode) scores come from the GEMV kernel reading K rows in place. SPLIT_KEYS: the
 * fewest keys per task when decode splits the keys. ROWS: rows per task; each task packs every K and V tile it reads,
 * so more rows share that packing (64 rows spent a third of a 1024-token vision head packing at head dim 80; 256
 * rows run it 15% faster, and 512-token text prefill 8%). */
enum { BK = 64, ROWS = 256, GEMV_ROWS = 4, SPLIT_KEYS = 512 };

typedef struct attn_job {
    const mt_attn_args *a;
    const mt_cpu_isa *isa;
    int G, gsz;             /* query heads per kv head, per task */
    int64_t bq, n_qb, n_hg; /* queries per task, query blocks, head groups per kv head */
    int64_t rp, dp, bkp;    /* padded rows, head dim, tile width */
    bool bf16;              /* Q K^T and P V on bf16 dot products (rows past the GEMV's) */
    int64_t n_split, chunk; /* key ranges per kv head (1: none), keys per range */
    float *scratch;
    int64_t per_thread;
    float *part; /* n_split > 1: [kv head][range][row][D + 2], a range's unnormalised O, then m and l */
} attn_job;

static inline int64_t row_limit(const mt_attn_args *a, int64_t t, int64_t kv1) {
    return a->causal ? MT_MIN(kv1, a->q_pos0 + t + 1) : kv1;
}

/* The first key query t sees: kv0, or the first of its sliding window (the `window` keys up to q_pos0 + t). */
static inline int64_t row_start(const mt_attn_args *a, int64_t t, int64_t kv0) {
    return a->causal && a->window > 0 ? MT_MAX(kv0, a->q_pos0 + t - a->window + 1) : kv0;
}

/* Queries [t0, t1) of heads h0 .. h0+gsz-1 against keys [kv0, kv1); into out, or with part set, the rows'
 * unnormalised O, m and l into part (a range of a split decode). */
static void attn_block(const attn_job *j, float *buf, int64_t t0, int64_t t1, int h0, int hk, int64_t kv0,
                       int64_t kv1, float *part) {
    const mt_attn_args *a = j->a;
    const mt_cpu_isa *isa = j->isa;
    const int MR = isa->mr, NR = isa->nr, gsz = j->gsz;
    const int64_t D = a->head_dim, Dp = j->dp, BKP = j->bkp;
    const int64_t R = (t1 - t0) * gsz, Rp = MT_ROUND_UP(R, MR);
    size_t es = mt_dtype_size(a->kv_dtype);
    float *Qb = buf, *kp = Qb + MT_ROUND_UP(j->rp * D, 16), *S = kp + MT_ROUND_UP(D * BKP, 16);
    float *vp = S + j->rp * BKP, *O = vp + BK * Dp, *m = O + j->rp * Dp, *l = m + j->rp;
    const int64_t Dk = MT_ROUND_UP(D, 2); /* bf16: the head dim in whole k pairs */
    uint16_t *Qh = (uint16_t *)(l + MT_ROUND_UP(j->rp, 16)), *Kh = Qh + MT_ROUND_UP(j->rp * Dk, 32);
    uint16_t *Ph = Kh + MT_ROUND_UP(BK * Dk, 32);
    const bool gemv = R <= MT_MAX((int64_t)GEMV_ROWS, (int64_t)isa->gemv_m), bf16 = j->bf16 && !gemv;
    for (int64_t r = 0; r < Rp; r++) {
        float *qr = Qb + r * D;
        if (r < R) {
            const float *src = a->q + (t0 + r / gsz) * a->q_st + (h0 + r % gsz) * a->q_sh;
            for (int64_t d = 0; d < D; d++) qr[d] = src[d] * a->scale;
        } else {
            for (int64_t d = 0; d < D; d++) qr[d] = 0.0f;
        }
        for (int64_t d = 0; d < Dp; d++) O[r * Dp + d] = 0.0f;
        m[r] = -INFINITY;
        l[r] = 0.0f;
    }
    if (bf16)
        for (int64_t r = 0; r < Rp; r++) {
            isa->round_bf16(D, Qb + r * D, Qh + r * Dk);
            if (Dk > D) Qh[r * Dk + D] = 0;
        }
    /* rows see keys [row_start, row_limit), both growing with t: tiles below the first row's window are skipped */
    int64_t kv_end = row_limit(a, t1 - 1, kv1);
    for (int64_t j0 = row_start(a, t0, kv0); j0 < kv_end; j0 += BK) {
        int64_t bk = MT_MIN((int64_t)BK, kv_end - j0);
        const char *kt = (const char *)a->k + (size_t)(j0 * a->k_st + hk * a->k_sh) * es;
        if (gemv) {
            isa->gemv(R, bk, D, Qb, D, kt, a->kv_dtype, a->k_st, NULL, S, BKP, false);
        } else if (bf16) { /* f32 K rows are rounded first; a bf16 KV is packed in place */
            const uint16_t *ks = (const uint16_t *)kt;
            int64_t kld = a->k_st;
            if (a->kv_dtype != MT_BF16) {
                for (int64_t x = 0; x < bk; x++) isa->round_bf16(D, (const float *)kt + x * a->k_st, Kh + x * Dk);
                ks = Kh, kld = Dk;
            }
            isa->pack_b_bf16(D, bk, ks, kld, (uint16_t *)kp);
            for (int64_t jr = 0; jr < bk; jr += NR)
                for (int64_t ir = 0; ir < Rp; ir += MR)
                    isa->ukr_bf16(Dk / 2, Qh + ir * Dk, Dk, (const uint16_t *)kp + (jr / NR) * Dk * NR,
                                  S + ir * BKP + jr, BKP, false);
        } else {
            isa->pack_b(D, bk, kt, a->kv_dtype, 1, a->k_st, kp);
            for (int64_t jr = 0; jr < bk; jr += NR)
                for (int64_t ir = 0; ir < Rp; ir += MR)
                    isa->ukr(D, Qb + ir * D, D, kp + (jr / NR) * D * NR, S + ir * BKP + jr, BKP, false);
        }
        for (int64_t r = 0; r < R; r++) {
            float *s = S + r * BKP;
            int64_t t = t0 + r / gsz, xa = MT_MAX(row_start(a, t, kv0) - j0, (int64_t)0);
            int64_t xb = MT_MIN(bk, row_limit(a, t, kv1) - j0);
            if (xb <= xa) {
                for (int64_t x = 0; x < bk; x++) s[x] = 0.0f;
                continue;
            }
            float mx = isa->max(xb - xa, s + xa);
            float mn = mx > m[r] ? mx : m[r];
            float alpha = expf(m[r] - mn);
            float sum = isa->exp_sum(xb - xa, s + xa, mn, s + xa);
            for (int64_t x = 0; x < xa; x++) s[x] = 0.0f;
            for (int64_t x = xb; x < bk; x++) s[x] = 0.0f;
            l[r] = l[r] * alpha + sum;
            if (alpha != 1.0f) isa->scale(Dp, alpha, O + r * Dp);
            m[r] = mn;
        }
        const char *vt = (const char *)a->v + (size_t)(j0 * a->v_st + hk * a->v_sh) * es;
        if (bf16) { /* P rounded row by row, an odd tile's last pair completed by S's zero column */
            int64_t kpv = (bk + 1) / 2;
            for (int64_t r = 0; r < Rp; r++) isa->round_bf16(2 * kpv, S + r * BKP, Ph + r * BK);
            isa->pack_rows_bf16(bk, D, vt, a->kv_dtype, a->v_st, (uint16_t *)vp);
            for (int64_t jr = 0; jr < Dp; jr += NR)
                for (int64_t ir = 0; ir < Rp; ir += MR)
                    isa->ukr_bf16(kpv, Ph + ir * BK, BK, (const uint16_t *)vp + (jr / NR) * kpv * 2 * NR,
                                  O + ir * Dp + jr, Dp, true);
            continue;
        }
        isa->pack_b(bk, D, vt, a->kv_dtype, a->v_st, 1, vp);
        for (int64_t jr = 0; jr < Dp; jr += NR)
            for (int64_t ir = 0; ir < Rp; ir += MR)
                isa->ukr(bk, S + ir * BKP, BKP, vp + (jr / NR) * bk * NR, O + ir * Dp + jr, Dp, true);
    }
    if (part) {
        for (int64_t r = 0; r < R; r++) {
            float *p = part + r * (D + 2);
            for (int64_t d = 0; d < D; d++) p[d] = O[r * Dp + d];
            p[D] = m[r], p[D + 1] = l[r];
        }
        return;
    }
    for (int64_t r = 0; r < R; r++) {
        float *dst = a->out + (t0 + r / gsz) * a->o_st + (h0 + r % gsz) * a->o_sh;
        float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
        for (int64_t d = 0; d < D; d++) dst[d] = O[r * Dp + d] * inv;
    }
}

/* Query rows [t0, t1) split at segment boundaries; queries outside every segment see no key. */
static void attn_range(const attn_job *j, float *buf, int64_t t0, int64_t t1, int h0, int hk) {
    const mt_attn_args *a = j->a;
    if (!a->cu_seqlens) {
        attn_block(j, buf, t0, t1, h0, hk, 0, a->n_kv, NULL);
        return;
    }
    const int64_t *cu = a->cu_seqlens;
    while (t0 < t1) {
        int64_t lo = 0, hi = a->n_seg; /* last s with cu[s] <= t0 */
        while (hi - lo > 1) {
            int64_t mid = (lo + hi) / 2;
            if (cu[mid] <= t0) lo = mid;
            else hi = mid;
        }
        int64_t end, kv0 = 0, kv1 = 0;
        if (t0 < cu[0]) {
            end = MT_MIN(t1, cu[0]);
        } else if (t0 >= cu[a->n_seg]) {
            end = t1;
        } else {
            end = MT_MIN(t1, cu[lo + 1]);
            kv0 = MT_MAX((int64_t)0, MT_MIN(cu[lo], a->n_kv));
            kv1 = MT_MAX(kv0, MT_MIN(cu[lo + 1], a->n_kv));
        }
        if (end <= t0) end = t0 + 1;
        attn_block(j, buf, t0, end, h0, hk, kv0, kv1, NULL);
        t0 = end;
    }
}

static void attn_task(void *ctx, int64_t t, int thread) {
    const attn_job *j = ctx;
    if (j->n_split > 1) {
        const mt_attn_args *a = j->a;
        int64_t c = t % j->n_split, kv0 = c * j->chunk, R = a->n_q * j->G;
        int hk = (int)(t / j->n_split);
        attn_block(j, j->scratch + thread * j->per_thread, 0, a->n_q, hk * j->G, hk, kv0,
                   MT_MIN(a->n_kv, kv0 + j->chunk), j->part + t * R * (a->head_dim + 2));
        return;
    }
    int64_t qb = t % j->n_qb, rest = t / j->n_qb;
    int hg = (int)(rest % j->n_hg), hk = (int)(rest / j->n_hg);
    int64_t t0 = qb * j->bq, t1 = MT_MIN(j->a->n_q, t0 + j->bq);
    attn_range(j, j->scratch + thread * j->per_thread, t0, t1, hk * j->G + hg * j->gsz, hk);
}

/* The fallback when no scratch can be had: two passes per (query, head), accumulating straight into out. */
static void attn_naive(const mt_attn_args *a, int G) {
    for (int64_t t = 0; t < a->n_q; t++)
        for (int h = 0; h < a->n_heads; h++) {
            int hk = h / G;
            int64_t kv0 = 0, kv1 = a->n_kv;
            if (a->cu_seqlens) {
                kv1 = 0;
                for (int64_t s = 0; s < a->n_seg; s++)
                    if (a->cu_seqlens[s] <= t && t < a->cu_seqlens[s + 1]) {
                        kv0 = MT_MAX((int64_t)0, MT_MIN(a->cu_seqlens[s], a->n_kv));
                        kv1 = MT_MAX(kv0, MT_MIN(a->cu_seqlens[s + 1], a->n_kv));
                    }
            }
            kv1 = row_limit(a, t, kv1);
            kv0 = row_start(a, t, kv0);
            const float *q = a->q + t * a->q_st + h * a->q_sh;
            float *o = a->out + t * a->o_st + h * a->o_sh, mx = -INFINITY, l = 0.0f;
            for (int64_t x = kv0; x < kv1; x++) {
                float s = 0.0f;
                for (int d = 0; d < a->head_dim; d++)
                    s += q[d] * mt_cpu_load(a->k, a->kv_dtype, x * a->k_st + hk * a->k_sh + d);
                mx = MT_MAX(mx, s * a->scale);
            }
            for (int d = 0; d < a->head_dim; d++) o[d] = 0.0f;
            for (int64_t x = kv0; x < kv1; x++) {
                float s = 0.0f;
                for (int d = 0; d < a->head_dim; d++)
                    s += q[d] * mt_cpu_load(a->k, a->kv_dtype, x * a->k_st + hk * a->k_sh + d);
                float p = expf(s * a->scale - mx);
                l += p;
                for (int d = 0; d < a->head_dim; d++)
                    o[d] += p * mt_cpu_load(a->v, a->kv_dtype, x * a->v_st + hk * a->v_sh + d);
            }
            for (int d = 0; d < a->head_dim; d++) o[d] = l > 0.0f ? o[d] / l : 0.0f;
        }
}

void mt_cpu_attention(mt_pool *pool, const mt_attn_args *a) {
    if (!a || a->n_q <= 0 || a->head_dim <= 0 || a->n_heads <= 0 || a->n_kv_heads <= 0 ||
        a->n_heads % a->n_kv_heads || a->n_kv < 0 || (a->cu_seqlens && a->n_seg <= 0))
        return;
    attn_job j = {.a = a, .isa = mt_cpu_isa_get(), .G = a->n_heads / a->n_kv_heads, .n_split = 1};
    int T = mt_pool_threads(pool);
    /* All heads of a group in one task shares the K/V tiles; split the group when that leaves threads idle. Decode
     * on a long KV splits the keys instead: each range is read by one task for all the group's heads, where a split
     * group reads every key once per part (and pads its rows to the micro-kernel's). */
    j.gsz = j.G;
    if (!a->cu_seqlens && a->n_q * j.G <= ROWS && a->n_kv_heads < 2 * T && a->n_kv >= 2 * SPLIT_KEYS) {
        j.n_split = MT_MIN((2 * (int64_t)T + a->n_kv_heads - 1) / a->n_kv_heads, a->n_kv / SPLIT_KEYS);
        j.chunk = MT_ROUND_UP((a->n_kv + j.n_split - 1) / j.n_split, (int64_t)BK);
        j.n_split = (a->n_kv + j.chunk - 1) / j.chunk;
        j.bq = a->n_q, j.n_qb = 1, j.n_hg = 1;
    }
    while (j.n_split == 1) {
        j.bq = MT_MAX((int64_t)1, ROWS / j.gsz);
        j.n_qb = (a->n_q + j.bq - 1) / j.bq;
        j.n_hg = j.G / j.gsz;
        if (j.gsz % 2 || a->n_kv_heads * j.n_hg * j.n_qb >= 2 * (int64_t)T) break;
        j.gsz /= 2;
    }
    const int64_t D = a->head_dim, MR = j.isa->mr, NR = j.isa->nr;
    j.rp = MT_ROUND_UP(j.bq * j.gsz, MR);
    j.dp = MT_ROUND_UP(D, NR);
    j.bkp = MT_ROUND_UP((int64_t)BK, NR);
    j.bf16 = a->bf16 && j.isa->ukr_bf16 && j.isa->pack_rows_bf16 && mt_cpu_bf16_dot_on();
    j.per_thread = MT_ROUND_UP(j.rp * D, 16) + MT_ROUND_UP(D * j.bkp, 16) + j.rp * j.bkp + BK * j.dp + j.rp * j.dp +
                   j.rp + MT_ROUND_UP(j.rp, 16);
    const int64_t Dk = MT_ROUND_UP(D, 2); /* Qh, Kh and Ph, as attn_block lays them out */
    if (j.bf16) j.per_thread += (MT_ROUND_UP(j.rp * Dk, 32) + MT_ROUND_UP(BK * Dk, 32) + j.rp * BK) / 2;
    j.per_thread = MT_ROUND_UP(j.per_thread, 16);
    int64_t R = a->n_q * j.G, n_part = j.n_split > 1 ? a->n_kv_heads * j.n_split * R * (D + 2) : 0;
    size_t bytes;
    if (!mt_mul_ok((size_t)j.per_thread * sizeof(float), (size_t)T, &bytes) ||
        !mt_add_ok(bytes, (size_t)n_part * sizeof(float), &bytes) || !(j.scratch = mt_cpu_scratch(bytes))) {
        attn_naive(a, j.G);
        return;
    }
    if (j.n_split == 1) {
        mt_pool_run(pool, a->n_kv_heads * j.n_hg * j.n_qb, attn_task, &j);
        return;
    }
    j.part = j.scratch + (size_t)j.per_thread * (size_t)T;
    mt_pool_run(pool, a->n_kv_heads * j.n_split, attn_task, &j);
    /* merge the ranges of each row: out = sum_c O_c e^(m_c - M) / sum_c l_c e^(m_c - M), M the largest m_c */
    for (int hk = 0; hk < a->n_kv_heads; hk++)
        for (int64_t r = 0; r < R; r++) {
            const float *p0 = j.part + (hk * j.n_split * R + r) * (D + 2);
            float M = -INFINITY, L = 0.0f;
            for (int64_t c = 0; c < j.n_split; c++) {
                const float *p = p0 + c * R * (D + 2);
                if (p[D + 1] > 0.0f) M = MT_MAX(M, p[D]);
            }
            float *dst = a->out + (r / j.G) * a->o_st + (hk * j.G + r % j.G) * a->o_sh;
            for (int64_t d = 0; d < D; d++) dst[d] = 0.0f;
            for (int64_t c = 0; c < j.n_split; c++) {
                const float *p = p0 + c * R * (D + 2);
                if (!(p[D + 1] > 0.0f)) continue;
                float e = expf(p[D] - M);
                L += p[D + 1] * e;
                for (int64_t d = 0; d < D; d++) dst[d] += p[d] * e;
            }
            float inv = L > 0.0f ? 1.0f / L : 0.0f;
            for (int64_t d = 0; d < D; d++) dst[d] *= inv;
        }
}
