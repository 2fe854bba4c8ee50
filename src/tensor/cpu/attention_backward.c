/* tensor/cpu: the backward pass of fused attention (FlashAttention-2, Dao 2023, "FlashAttention-2: Faster Attention
 * with Better Parallelism and Work Partitioning", Algorithm 2, on a CPU): the gradients of
 * out = softmax(scale q k^T + mask) v with respect to q, k and v, added into dq, dk and dv. The masks are those of
 * mt_cpu_attention (attention.c) exactly; a query that sees no key has zero output and adds nothing.
 *
 * Per query row i (a query t of head h) and each key j it sees (kv head h / G):
 *
 *   S_ij  = scale q_i.k_j          P_ij = e^(S_ij - lse_i)          D_i = dout_i.out_i (= sum_j P_ij dP_ij)
 *   dP_ij = dout_i.v_j             dS_ij = P_ij (dP_ij - D_i)
 *   dq_i += scale sum_j dS_ij k_j  dk_j += scale sum_i dS_ij q_i     dv_j += sum_i P_ij dout_i
 *
 * Two passes, so that every row of dq, dk and dv is written by exactly one task: no atomics, no per-thread copies,
 * and the result is the same bit for bit on any number of threads (block sizes never depend on the thread count).
 *
 *   | pass | task                      | rows of a tile       | computes                                             |
 *   |------|---------------------------|----------------------|------------------------------------------------------|
 *   | 1    | kv head, block of queries | (query, head of the  | online softmax over key tiles as the forward: lse_i  |
 *   |      |                           | group) r = (t-t0)G+g | and dq_i = scale/l_i sum_j e^(S_ij-m_i)(dP_ij-D_i)   |
 *   |      |                           |                      | k_j, rescaled when the running max m_i grows         |
 *   | 2    | kv head, block of keys    | keys                 | for each head of the group and each query block that |
 *   |      |                           |                      | sees the keys: S^T, dP^T -> dv_j, dk_j               |
 *
 * That is 7 tile products per (query, key) pair against FlashAttention-2's 5 (which accumulates dq with atomics);
 * the price of a race-free, deterministic dq that needs no memory growing with T (measured: 3.5-4.1x the forward's
 * time, AVX2 and AVX-512, 1 and 16 threads). Pass 1 hands lse and D to pass 2 in two [H][T] arrays. The products
 * run on the GEMM micro-kernel of the current level (cpu_int.h), the exponentials on its exp_sum, so the SIMD paths
 * need no code of their own here.
 *
 *   | buffer  | shape          | holds                                                               |
 *   |---------|----------------|---------------------------------------------------------------------|
 *   | Qb, Ob  | [Rp][D]        | pass 1: q and dout rows (rows past R are zero)                      |
 *   | kt, vt  | D x BK panels  | pass 1: K and V tiles packed as B (k = d, n = key) for S and dP     |
 *   | kn      | BK x Dp panels | pass 1: K tile packed as B (k = key, n = d) for dq                  |
 *   | S, dP   | [Rp][BKP]      | pass 1: scores, then in place e^(S - m) (dP - D)                    |
 *   | A       | [Rp][Dp]       | pass 1: unnormalised dq; m, l, dd: running max, sum and D per row   |
 *   | Kb, Vb  | [Kp][D]        | pass 2: the key block's K and V rows (rows past the block are zero) |
 *   | qt, ot  | D x QB panels  | pass 2: q and dout of a query block as B (k = d, n = query)         |
 *   | qn, on  | QB x Dp panels | pass 2: the same as B (k = query, n = d) for dk and dv              |
 *   | ST,dPT  | [Kp][QBP]      | pass 2: P^T, and dS^T in place of dP^T                              |
 *   | dKa,dVa | [Kp][Dp]       | pass 2: dk / scale and dv of the block, over all heads and queries  |
 */
#include <math.h>

#include "tensor/cpu/cpu_int.h"

/* BK: key tile of pass 1; ROWS: (query, head) rows of a pass-1 task; KB, QB: keys of a pass-2 task, queries of its
 * tiles. */
enum { BK = 64, ROWS = 64, KB = 64, QB = 64 };

typedef struct bw_job {
    const mt_attn_args *a;
    const mt_attn_grad *g;
    const mt_cpu_isa *isa;
    int G;                       /* query heads per kv head */
    int64_t bq, n_qb, n_kb;      /* pass 1: queries per task, query blocks; pass 2: key blocks */
    int64_t rp, kp, dp, bkp, qbp; /* padded pass-1 rows, pass-2 rows, head dim, tile widths */
    float *lse, *dd;             /* [H][T] */
    int64_t *lo, *hi;            /* [T]: query t sees keys [lo, hi) */
    float *scratch;
    int64_t per_thread;
} bw_job;

static int64_t al(int64_t n) { return MT_ROUND_UP(n, 16); }

static float *carve(float **p, int64_t n) {
    float *r = *p;
    *p += al(n);
    return r;
}

/* The keys query t sees, as attention.c decides them: its segment's keys (none outside every segment), cut by the
 * causal limit and the sliding window. */
static void query_keys(const mt_attn_args *a, int64_t t, int64_t *lo, int64_t *hi) {
    int64_t kv0 = 0, kv1 = a->n_kv;
    if (a->cu_seqlens) {
        const int64_t *cu = a->cu_seqlens;
        kv1 = 0;
        if (t >= cu[0] && t < cu[a->n_seg]) {
            int64_t s = 0, e = a->n_seg; /* last s with cu[s] <= t */
            while (e - s > 1) {
                int64_t mid = (s + e) / 2;
                if (cu[mid] <= t) s = mid;
                else e = mid;
            }
            kv0 = MT_MAX((int64_t)0, MT_MIN(cu[s], a->n_kv));
            kv1 = MT_MAX(kv0, MT_MIN(cu[s + 1], a->n_kv));
        }
    }
    if (a->causal) kv1 = MT_MIN(kv1, a->q_pos0 + t + 1);
    if (a->causal && a->window > 0) kv0 = MT_MAX(kv0, a->q_pos0 + t - a->window + 1);
    *lo = kv0;
    *hi = MT_MAX(kv0, kv1);
}

/* The queries that may see key x - those of x's segment - and the first key past that segment. */
static void key_queries(const mt_attn_args *a, int64_t x, int64_t *qa, int64_t *qb, int64_t *xend) {
    *qa = 0, *qb = a->n_q, *xend = a->n_kv;
    if (!a->cu_seqlens) return;
    const int64_t *cu = a->cu_seqlens;
    *qa = *qb = 0;
    if (x < cu[0]) {
        *xend = cu[0];
    } else if (x < cu[a->n_seg]) {
        int64_t s = 0, e = a->n_seg;
        while (e - s > 1) {
            int64_t mid = (s + e) / 2;
            if (cu[mid] <= x) s = mid;
            else e = mid;
        }
        *qa = MT_MAX((int64_t)0, MT_MIN(cu[s], a->n_q));
        *qb = MT_MAX(*qa, MT_MIN(cu[s + 1], a->n_q));
        *xend = cu[s + 1];
    }
    *xend = MT_MAX(*xend, x + 1);
}

/* Pass 1 for queries [ta, tb) whose keys overlap (one segment), all heads of kv head hk: key tiles from the first
 * query's first key (the smallest) to the last key any of them sees. */
static void bw_queries(const bw_job *j, float *buf, int64_t ta, int64_t tb, int hk) {
    const mt_attn_args *a = j->a;
    const mt_attn_grad *g = j->g;
    const mt_cpu_isa *isa = j->isa;
    const int MR = isa->mr, NR = isa->nr, G = j->G;
    const int64_t D = a->head_dim, Dp = j->dp, BKP = j->bkp, R = (tb - ta) * G, Rp = MT_ROUND_UP(R, MR);
    const bool want_dq = g->dq != NULL;
    float *Qb = carve(&buf, j->rp * D), *Ob = carve(&buf, j->rp * D), *kt = carve(&buf, D * BKP);
    float *vt = carve(&buf, D * BKP), *kn = carve(&buf, BK * Dp), *S = carve(&buf, j->rp * BKP);
    float *dP = carve(&buf, j->rp * BKP), *A = carve(&buf, j->rp * Dp), *m = carve(&buf, j->rp);
    float *l = carve(&buf, j->rp), *dd = carve(&buf, j->rp);
    int64_t kv0 = j->lo[ta], kv1 = kv0;
    for (int64_t t = ta; t < tb; t++) kv0 = MT_MIN(kv0, j->lo[t]);
    for (int64_t t = ta; t < tb; t++) kv1 = MT_MAX(kv1, j->hi[t]);
    for (int64_t r = 0; r < Rp; r++) {
        int64_t t = ta + r / G, h = (int64_t)hk * G + r % G;
        float *qr = Qb + r * D, *orow = Ob + r * D;
        if (r < R) {
            const float *qs = a->q + t * a->q_st + h * a->q_sh, *os = g->dout + t * a->o_st + h * a->o_sh;
            for (int64_t d = 0; d < D; d++) qr[d] = qs[d], orow[d] = os[d];
            dd[r] = isa->dot(D, os, a->out + t * a->o_st + h * a->o_sh);
        } else {
            for (int64_t d = 0; d < D; d++) qr[d] = orow[d] = 0.0f;
        }
        for (int64_t d = 0; d < Dp; d++) A[r * Dp + d] = 0.0f;
        m[r] = -INFINITY;
        l[r] = 0.0f;
    }
    for (int64_t j0 = kv0; j0 < kv1; j0 += BK) {
        int64_t bk = MT_MIN((int64_t)BK, kv1 - j0);
        const float *ks = (const float *)a->k + j0 * a->k_st + hk * a->k_sh;
        const float *vs = (const float *)a->v + j0 * a->v_st + hk * a->v_sh;
        isa->pack_b(D, bk, ks, MT_F32, 1, a->k_st, kt);
        if (want_dq) isa->pack_b(D, bk, vs, MT_F32, 1, a->v_st, vt);
        for (int64_t jr = 0; jr < bk; jr += NR)
            for (int64_t ir = 0; ir < Rp; ir += MR) {
                isa->ukr(D, Qb + ir * D, D, kt + (jr / NR) * D * NR, S + ir * BKP + jr, BKP, false);
                if (want_dq) isa->ukr(D, Ob + ir * D, D, vt + (jr / NR) * D * NR, dP + ir * BKP + jr, BKP, false);
            }
        for (int64_t r = 0; r < R; r++) {
            int64_t t = ta + r / G;
            int64_t xa = MT_MAX(j->lo[t], j0) - j0, xb = MT_MIN(j->hi[t], j0 + bk) - j0, n = xb - xa;
            float *s = S + r * BKP;
            if (n <= 0) {
                for (int64_t x = 0; x < bk; x++) s[x] = 0.0f;
                continue;
            }
            isa->scale(n, a->scale, s + xa);
            float mx = isa->max(n, s + xa), mn = MT_MAX(mx, m[r]), alpha = expf(m[r] - mn);
            float sum = isa->exp_sum(n, s + xa, mn, s + xa);
            for (int64_t x = 0; x < xa; x++) s[x] = 0.0f;
            for (int64_t x = xb; x < bk; x++) s[x] = 0.0f;
            l[r] = l[r] * alpha + sum;
            m[r] = mn;
            if (!want_dq) continue;
            if (alpha != 1.0f) isa->scale(Dp, alpha, A + r * Dp);
            const float *p = dP + r * BKP;
            for (int64_t x = xa; x < xb; x++) s[x] *= p[x] - dd[r];
        }
        if (!want_dq) continue;
        isa->pack_b(bk, D, ks, MT_F32, a->k_st, 1, kn);
        for (int64_t jr = 0; jr < Dp; jr += NR)
            for (int64_t ir = 0; ir < Rp; ir += MR)
                isa->ukr(bk, S + ir * BKP, BKP, kn + (jr / NR) * bk * NR, A + ir * Dp + jr, Dp, true);
    }
    for (int64_t r = 0; r < R; r++) {
        int64_t t = ta + r / G, h = (int64_t)hk * G + r % G;
        j->lse[h * a->n_q + t] = l[r] > 0.0f ? m[r] + logf(l[r]) : 0.0f;
        j->dd[h * a->n_q + t] = dd[r];
        if (want_dq && l[r] > 0.0f) isa->axpy(D, a->scale / l[r], A + r * Dp, g->dq + t * a->q_st + h * a->q_sh);
    }
}

static void pass1_task(void *ctx, int64_t task, int thread) {
    const bw_job *j = ctx;
    int64_t b = task % j->n_qb, t0 = b * j->bq, t1 = MT_MIN(j->a->n_q, t0 + j->bq);
    int hk = (int)(task / j->n_qb);
    float *buf = j->scratch + thread * j->per_thread;
    /* Runs of queries in one segment, so a tile's keys are ones some of its rows see; with a sliding window the
     * first key moves with every query, and a run goes on while its keys overlap the run's so far. */
    bool window = j->a->causal && j->a->window > 0;
    while (t0 < t1) {
        int64_t te = t0 + 1, end = j->hi[t0];
        for (; te < t1 && (j->lo[te] == j->lo[t0] || (window && j->lo[te] < end)); te++) end = MT_MAX(end, j->hi[te]);
        bw_queries(j, buf, t0, te, hk);
        t0 = te;
    }
}

/* Pass 2 for keys [xa, xb) of kv head hk against queries [qa, qb) of every head of its group. */
static void bw_keys(const bw_job *j, float *buf, int64_t xa, int64_t xb, int64_t qa, int64_t qb, int hk) {
    const mt_attn_args *a = j->a;
    const mt_attn_grad *g = j->g;
    const mt_cpu_isa *isa = j->isa;
    const int MR = isa->mr, NR = isa->nr;
    const int64_t D = a->head_dim, Dp = j->dp, QBP = j->qbp, nk = xb - xa, Kp = MT_ROUND_UP(nk, MR);
    float *Kb = carve(&buf, j->kp * D), *Vb = carve(&buf, j->kp * D), *qt = carve(&buf, D * QBP);
    float *ot = carve(&buf, D * QBP), *qn = carve(&buf, QB * Dp), *on = carve(&buf, QB * Dp);
    float *ST = carve(&buf, j->kp * QBP), *dPT = carve(&buf, j->kp * QBP), *dKa = carve(&buf, j->kp * Dp);
    float *dVa = carve(&buf, j->kp * Dp);
    for (int64_t i = 0; i < Kp; i++) {
        if (i < nk) {
            const float *ks = (const float *)a->k + (xa + i) * a->k_st + hk * a->k_sh;
            const float *vs = (const float *)a->v + (xa + i) * a->v_st + hk * a->v_sh;
            for (int64_t d = 0; d < D; d++) Kb[i * D + d] = ks[d], Vb[i * D + d] = vs[d];
        } else {
            for (int64_t d = 0; d < D; d++) Kb[i * D + d] = Vb[i * D + d] = 0.0f;
        }
        for (int64_t d = 0; d < Dp; d++) dKa[i * Dp + d] = dVa[i * Dp + d] = 0.0f;
    }
    for (int h = hk * j->G; h < (hk + 1) * j->G; h++)
        for (int64_t t0 = qa; t0 < qb; t0 += QB) {
            int64_t bq = MT_MIN((int64_t)QB, qb - t0);
            bool seen = false;
            for (int64_t c = 0; c < bq && !seen; c++)
                seen = j->lo[t0 + c] < j->hi[t0 + c] && j->lo[t0 + c] < xb && j->hi[t0 + c] > xa;
            if (!seen) continue;
            const float *qs = a->q + t0 * a->q_st + h * a->q_sh, *os = g->dout + t0 * a->o_st + h * a->o_sh;
            const float *lse = j->lse + h * a->n_q + t0, *dd = j->dd + h * a->n_q + t0;
            isa->pack_b(D, bq, qs, MT_F32, 1, a->q_st, qt);
            if (g->dk) isa->pack_b(D, bq, os, MT_F32, 1, a->o_st, ot);
            for (int64_t jr = 0; jr < bq; jr += NR)
                for (int64_t ir = 0; ir < Kp; ir += MR) {
                    isa->ukr(D, Kb + ir * D, D, qt + (jr / NR) * D * NR, ST + ir * QBP + jr, QBP, false);
                    if (g->dk) isa->ukr(D, Vb + ir * D, D, ot + (jr / NR) * D * NR, dPT + ir * QBP + jr, QBP, false);
                }
            for (int64_t i = 0; i < nk; i++) {
                int64_t x = xa + i;
                float *st = ST + i * QBP, *dp = dPT + i * QBP;
                for (int64_t c = 0; c < bq; c++) st[c] = st[c] * a->scale - lse[c];
                isa->exp_sum(bq, st, 0.0f, st);
                for (int64_t c = 0; c < bq; c++) {
                    if (j->lo[t0 + c] <= x && x < j->hi[t0 + c]) {
                        if (g->dk) dp[c] = st[c] * (dp[c] - dd[c]);
                    } else {
                        st[c] = dp[c] = 0.0f;
                    }
                }
            }
            if (g->dv) {
                isa->pack_b(bq, D, os, MT_F32, a->o_st, 1, on);
                for (int64_t jr = 0; jr < Dp; jr += NR)
                    for (int64_t ir = 0; ir < Kp; ir += MR)
                        isa->ukr(bq, ST + ir * QBP, QBP, on + (jr / NR) * bq * NR, dVa + ir * Dp + jr, Dp, true);
            }
            if (g->dk) {
                isa->pack_b(bq, D, qs, MT_F32, a->q_st, 1, qn);
                for (int64_t jr = 0; jr < Dp; jr += NR)
                    for (int64_t ir = 0; ir < Kp; ir += MR)
                        isa->ukr(bq, dPT + ir * QBP, QBP, qn + (jr / NR) * bq * NR, dKa + ir * Dp + jr, Dp, true);
            }
        }
    for (int64_t i = 0; i < nk; i++) {
        if (g->dk) isa->axpy(D, a->scale, dKa + i * Dp, g->dk + (xa + i) * a->k_st + hk * a->k_sh);
        if (g->dv) isa->axpy(D, 1.0f, dVa + i * Dp, g->dv + (xa + i) * a->v_st + hk * a->v_sh);
    }
}

static void pass2_task(void *ctx, int64_t task, int thread) {
    const bw_job *j = ctx;
    const mt_attn_args *a = j->a;
    int64_t b = task % j->n_kb, x0 = b * KB, x1 = MT_MIN(a->n_kv, x0 + KB);
    int hk = (int)(task / j->n_kb);
    /* Runs of keys in one segment; a causal key x is seen from query x - q_pos0 on, and with a sliding window up to
     * query x - q_pos0 + window - 1. */
    while (x0 < x1) {
        int64_t qa, qb, xe;
        key_queries(a, x0, &qa, &qb, &xe);
        xe = MT_MIN(xe, x1);
        if (a->causal) qa = MT_MAX(qa, MT_MIN(x0 - a->q_pos0, qb));
        if (a->causal && a->window > 0) qb = MT_MAX(qa, MT_MIN(qb, xe - 1 - a->q_pos0 + a->window));
        if (qa < qb) bw_keys(j, j->scratch + thread * j->per_thread, x0, xe, qa, qb, hk);
        x0 = xe;
    }
}

/* The fallback when no scratch can be had: per (query, head) a pass for the max, one for the sum and one that adds
 * every term straight into dq, dk and dv. Single-threaded; the same sums in another order. */
static void bw_naive(const mt_attn_args *a, const mt_attn_grad *g, int G) {
    const int64_t D = a->head_dim;
    const float *K = a->k, *V = a->v;
    for (int64_t t = 0; t < a->n_q; t++)
        for (int h = 0; h < a->n_heads; h++) {
            int hk = h / G;
            int64_t lo, hi;
            query_keys(a, t, &lo, &hi);
            const float *q = a->q + t * a->q_st + h * a->q_sh, *dout = g->dout + t * a->o_st + h * a->o_sh;
            const float *out = a->out + t * a->o_st + h * a->o_sh;
            float mx = -INFINITY, l = 0.0f, dd = 0.0f;
            for (int64_t x = lo; x < hi; x++) {
                const float *k = K + x * a->k_st + hk * a->k_sh;
                float s = 0.0f;
                for (int64_t d = 0; d < D; d++) s += q[d] * k[d];
                mx = MT_MAX(mx, s * a->scale);
            }
            for (int64_t x = lo; x < hi; x++) {
                const float *k = K + x * a->k_st + hk * a->k_sh;
                float s = 0.0f;
                for (int64_t d = 0; d < D; d++) s += q[d] * k[d];
                l += expf(s * a->scale - mx);
            }
            for (int64_t d = 0; d < D; d++) dd += dout[d] * out[d];
            for (int64_t x = lo; x < hi; x++) {
                const float *k = K + x * a->k_st + hk * a->k_sh, *v = V + x * a->v_st + hk * a->v_sh;
                float s = 0.0f, dp = 0.0f;
                for (int64_t d = 0; d < D; d++) s += q[d] * k[d], dp += dout[d] * v[d];
                float p = expf(s * a->scale - mx) / l, ds = p * (dp - dd) * a->scale;
                if (g->dq)
                    for (int64_t d = 0; d < D; d++) g->dq[t * a->q_st + h * a->q_sh + d] += ds * k[d];
                if (g->dk)
                    for (int64_t d = 0; d < D; d++) g->dk[x * a->k_st + hk * a->k_sh + d] += ds * q[d];
                if (g->dv)
                    for (int64_t d = 0; d < D; d++) g->dv[x * a->v_st + hk * a->v_sh + d] += p * dout[d];
            }
        }
}

void mt_cpu_attention_backward(mt_pool *pool, const mt_attn_args *a, const mt_attn_grad *g) {
    if (!a || !g || !g->dout || a->kv_dtype != MT_F32 || a->n_q <= 0 || a->head_dim <= 0 || a->n_heads <= 0 ||
        a->n_kv_heads <= 0 || a->n_heads % a->n_kv_heads || a->n_kv <= 0 || (a->cu_seqlens && a->n_seg <= 0) ||
        (!g->dq && !g->dk && !g->dv))
        return;
    bw_job j = {.a = a, .g = g, .isa = mt_cpu_isa_get(), .G = a->n_heads / a->n_kv_heads};
    const int64_t D = a->head_dim, MR = j.isa->mr, NR = j.isa->nr;
    j.bq = MT_MAX((int64_t)1, ROWS / j.G);
    j.n_qb = (a->n_q + j.bq - 1) / j.bq;
    j.n_kb = (a->n_kv + KB - 1) / KB;
    j.rp = MT_ROUND_UP(j.bq * j.G, MR);
    j.kp = MT_ROUND_UP((int64_t)KB, MR);
    j.dp = MT_ROUND_UP(D, NR);
    j.bkp = MT_ROUND_UP((int64_t)BK, NR);
    j.qbp = MT_ROUND_UP((int64_t)QB, NR);
    int64_t p1 = 2 * al(j.rp * D) + 2 * al(D * j.bkp) + al(BK * j.dp) + 2 * al(j.rp * j.bkp) + al(j.rp * j.dp) +
                 3 * al(j.rp);
    int64_t p2 = 2 * al(j.kp * D) + 2 * al(D * j.qbp) + 2 * al(QB * j.dp) + 2 * al(j.kp * j.qbp) + 2 * al(j.kp * j.dp);
    j.per_thread = MT_MAX(p1, p2);
    int T = mt_pool_threads(pool);
    size_t rows, shared, threads, bytes;
    bool ok = mt_mul_ok((size_t)a->n_q, (size_t)a->n_heads, &rows) && mt_mul_ok(al((int64_t)rows), 2, &shared) &&
              mt_add_ok(shared, 4 * al(a->n_q), &shared) && mt_mul_ok((size_t)j.per_thread, (size_t)T, &threads) &&
              mt_add_ok(shared, threads, &bytes) && mt_mul_ok(bytes, sizeof(float), &bytes);
    float *base = ok ? mt_cpu_scratch(bytes) : NULL;
    if (!base) {
        bw_naive(a, g, j.G);
        return;
    }
    j.lse = base;
    j.dd = j.lse + al((int64_t)rows);
    j.lo = (int64_t *)(j.dd + al((int64_t)rows));
    j.hi = j.lo + al(a->n_q);
    j.scratch = (float *)(j.hi + al(a->n_q));
    for (int64_t t = 0; t < a->n_q; t++) query_keys(a, t, &j.lo[t], &j.hi[t]);
    mt_pool_run(pool, a->n_kv_heads * j.n_qb, pass1_task, &j);
    if (g->dk || g->dv) mt_pool_run(pool, a->n_kv_heads * j.n_kb, pass2_task, &j);
}
