/* tensor/cpu: the body of the quantized GEMV kernels (gemm_quant.c describes the path) on 256-bit vectors, Q8_0/Q4_0
 * optionally on 512, with the activation quantizer and the row dequantizer; included by one file per instruction set,
 * which defines before the #include:
 *
 *   | macro     | meaning                                                                                    |
 *   |-----------|--------------------------------------------------------------------------------------------|
 *   | QK_NAME   | the kernel's name (the isa table's gemv_q or gemv_q_vnni)                                 |
 *   | QK_VNNI   | 0: u8 x s8 products by vpmaddubsw + vpmaddwd; 1: vpdpbusd / vpdpwssd (AVX-VNNI, VEX);       |
 *   |           | 2: the same with AVX-512-VNNI (EVEX)                                                       |
 *   | QK_ACT    | optional: the name of the activation quantizer (the isa table's quant_act); with it       |
 *   | QK_DEQUANT| the name of the row dequantizer (dequant)                                                 |
 *   | QK_512    | 1: Q8_0/Q4_0 two blocks per 512-bit vector, Q6_K half a block, Q4_K_R8's code sums two      |
 *   |           | chunks a vector (AVX-512 BW); plain Q4_K stays on 256 bits (a model loads it as Q4_K_R8)    |
 *
 * Products of unsigned by signed bytes are all these instructions have, so a signed weight w multiplies a as
 * |w| * (a with w's sign) (Q8_0, Q4_0), and Q6_K's codes stay unsigned (q in 0..63) with 32 * sum(a) taken off
 * after (from the activation block's bsums). No pair sum overflows int16 in vpmaddubsw: 2 * 128 * 127 at most.
 * Each block's integer sums end in 8 int32 lanes, converted and accumulated in f32 lanes with the block's two scales;
 * the lanes are summed once per output. The sums per lane are exact, so the maddubs and VNNI variants of one level
 * give the same floats.
 */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "tensor/cpu/cpu_int.h"
#include "tensor/quant.h"

#ifndef QK_512
#define QK_512 0
#endif
#define QK_INLINE static inline __attribute__((always_inline))
/* Rows of A in one pass over W: 8 with AVX-512's 32 registers (8 rows' accumulators fit), else 4; the entry point
 * takes up to 8 and runs two passes over the caller's L2-sized slice of W where it holds 4. */
#define GEMV_Q_MAX_M (QK_512 ? 8 : 4)
/* Prefetch of the W stream QK_PF bytes ahead: a row runs into the next (rows are adjacent), and the hardware
 * prefetcher stops at every 4 KiB page. 1, 2 and 4 KiB ahead measured on 2 threads: 4 KiB best (the Q4_K LM head
 * 18.9 / 16.6 / 13.8 ms, Q8_0 gate_proj 2.03 / 1.80 / 1.79 ms); without it the kernels streamed 55-65% of what the
 * bf16 GEMV does. */
#define QK_PF 4096
QK_INLINE void qk_prefetch(const void *p, size_t bytes) {
    for (size_t o = 0; o < bytes; o += 64) _mm_prefetch((const char *)p + QK_PF + o, _MM_HINT_T0);
}
/* Loops over the rows of A, unrolled so that each row's accumulators live in registers. */
#define QK_ROWS(i, M) _Pragma("GCC unroll 8") for (int i = 0; i < (M); i++)
/* The loops over a block's parts unrolled whole, so that arrays of accumulators indexed by them stay in registers: at
 * -O2 GCC keeps some of them rolled and the arrays on the stack (Q4_K_R8 from L2: 21 GB/s rolled, 37 unrolled). */
#define QK_UNROLL _Pragma("GCC unroll 8")

#if QK_VNNI == 1
#define QK_DPBUSD(acc, u, s) _mm256_dpbusd_avx_epi32(acc, u, s)
#elif QK_VNNI == 2
#define QK_DPBUSD(acc, u, s) _mm256_dpbusd_epi32(acc, u, s)
#endif

/* Sums of 4 adjacent products u8 * s8, in 8 int32 lanes. */
QK_INLINE __m256i qk_dot(__m256i u, __m256i s) {
#if QK_VNNI
    return QK_DPBUSD(_mm256_setzero_si256(), u, s);
#else
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
#endif
}

/* Byte shuffles that spread block scales over int16 lanes, from a vector holding the scales in both 128-bit halves:
 * qk_pick_u[j] puts scale byte j, zero-extended, in all 16 lanes (Q4_K); qk_pick_s[t] puts byte 2t in the low half's
 * lanes and byte 2t+1 in the high half's, in the upper byte of each lane, for an arithmetic shift to sign-extend (Q6_K,
 * a scale per 16 values). */
#define QK_U8(j) j, 0x80, j, 0x80, j, 0x80, j, 0x80, j, 0x80, j, 0x80, j, 0x80, j, 0x80
#define QK_S8(j) 0x80, j, 0x80, j, 0x80, j, 0x80, j, 0x80, j, 0x80, j, 0x80, j, 0x80, j
static const uint8_t qk_pick_u[8][32] __attribute__((aligned(32))) = {
    {QK_U8(0), QK_U8(0)}, {QK_U8(1), QK_U8(1)}, {QK_U8(2), QK_U8(2)}, {QK_U8(3), QK_U8(3)},
    {QK_U8(4), QK_U8(4)}, {QK_U8(5), QK_U8(5)}, {QK_U8(6), QK_U8(6)}, {QK_U8(7), QK_U8(7)},
};
static const uint8_t qk_pick_s[8][32] __attribute__((aligned(32))) = {
    {QK_S8(0), QK_S8(1)},   {QK_S8(2), QK_S8(3)},   {QK_S8(4), QK_S8(5)},   {QK_S8(6), QK_S8(7)},
    {QK_S8(8), QK_S8(9)},   {QK_S8(10), QK_S8(11)}, {QK_S8(12), QK_S8(13)}, {QK_S8(14), QK_S8(15)},
};

QK_INLINE __m256i qk_pick(__m256i scales, const uint8_t *mask) {
    return _mm256_shuffle_epi8(scales, _mm256_load_si256((const __m256i *)mask));
}

/* acc + pair sums of u8 x s8 products times their scale: vpmaddubsw, then vpmaddwd + add or vpdpwssd. vpdpbusd
 * would need a 32-bit multiply by the scale after it; the 16-bit products of vpmaddubsw take the scale in one. */
QK_INLINE __m256i qk_dot_sc(__m256i acc, __m256i u, __m256i s, __m256i sc) {
    __m256i p = _mm256_maddubs_epi16(u, s);
#if QK_VNNI == 1
    return _mm256_dpwssd_avx_epi32(acc, p, sc);
#elif QK_VNNI == 2
    return _mm256_dpwssd_epi32(acc, p, sc);
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p, sc));
#endif
}

QK_INLINE float qk_hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Block b of a Q8_0 or Q4_0 row against M rows of Q8_0 activations: qa[i] is row i's values, da[i] its block scales
 * and sa[i] scale * sum of its values per block, each 8 times (mt_q8_0_act_bytes). Q8_0's signed weights take the
 * sign trick; Q4_0's codes q stay unsigned and each of the 8 lanes takes off sa, so the block loses 8 * scale * sum,
 * the -8 of its codes. */
QK_INLINE void qk_block_x0(int M, mt_dtype wt, const void *w, int64_t b, const int8_t *const *qa,
                           const float *const *da, const float *const *sa, __m256 *acc) {
    __m256i q, u;
    __m256 dw;
    if (wt == MT_Q8_0) {
        const mt_block_q8_0 *x = (const mt_block_q8_0 *)w + b;
        dw = _mm256_cvtph_ps(_mm_set1_epi16((short)x->d));
        q = _mm256_loadu_si256((const __m256i *)x->qs);
        u = _mm256_sign_epi8(q, q);
    } else {
        const mt_block_q4_0 *x = (const mt_block_q4_0 *)w + b;
        dw = _mm256_cvtph_ps(_mm_set1_epi16((short)x->d));
        __m128i h = _mm_loadu_si128((const __m128i *)x->qs);
        u = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(h, 4), h), _mm256_set1_epi8(0xF));
        q = u;
    }
    QK_ROWS(i, M) {
        __m256i y = _mm256_loadu_si256((const __m256i *)(qa[i] + 32 * b));
        __m256 p = _mm256_cvtepi32_ps(qk_dot(u, wt == MT_Q8_0 ? _mm256_sign_epi8(y, q) : y));
        p = wt == MT_Q8_0 ? _mm256_mul_ps(p, _mm256_loadu_ps(da[i] + 8 * b))
                          : _mm256_fmsub_ps(p, _mm256_loadu_ps(da[i] + 8 * b), _mm256_loadu_ps(sa[i] + 8 * b));
        acc[i] = _mm256_fmadd_ps(p, dw, acc[i]);
    }
}

#if QK_512
/* Sums of 4 adjacent products u8 * s8, in 16 int32 lanes. */
QK_INLINE __m512i qk_dot512(__m512i u, __m512i s) {
#if QK_VNNI
    return _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, s);
#else
    return _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1));
#endif
}

/* Blocks b and b+1 in one 512-bit vector, 64 values; the weight scales over 8 lanes each. */
QK_INLINE void qk_pair_x0(int M, mt_dtype wt, const void *w, int64_t b, const int8_t *const *qa,
                          const float *const *da, const float *const *sa, __m512 *acc) {
    __m512i u;
    __mmask64 neg = 0;
    uint16_t d0, d1;
    if (wt == MT_Q8_0) {
        const mt_block_q8_0 *x = (const mt_block_q8_0 *)w + b;
        __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)x[0].qs)),
                                       _mm256_loadu_si256((const __m256i *)x[1].qs), 1);
        u = _mm512_abs_epi8(q);
        neg = _mm512_movepi8_mask(q);
        d0 = x[0].d;
        d1 = x[1].d;
    } else {
        const mt_block_q4_0 *x = (const mt_block_q4_0 *)w + b;
        __m256i h = _mm256_set_m128i(_mm_loadu_si128((const __m128i *)x[1].qs),
                                     _mm_loadu_si128((const __m128i *)x[0].qs));
        __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(h), _mm256_srli_epi16(h, 4), 1); /* lo0 lo1 hi0 hi1 */
        u = _mm512_and_si512(_mm512_shuffle_i64x2(v, v, _MM_SHUFFLE(3, 1, 2, 0)), _mm512_set1_epi8(0xF));
        d0 = x[0].d;
        d1 = x[1].d;
    }
    __m512 dw = _mm512_cvtph_ps(_mm256_set_m128i(_mm_set1_epi16((short)d1), _mm_set1_epi16((short)d0)));
    QK_ROWS(i, M) {
        __m512i y = _mm512_loadu_si512(qa[i] + 32 * b);
        if (wt == MT_Q8_0) y = _mm512_mask_sub_epi8(y, neg, _mm512_setzero_si512(), y);
        __m512 p = _mm512_cvtepi32_ps(qk_dot512(u, y));
        p = wt == MT_Q8_0 ? _mm512_mul_ps(p, _mm512_loadu_ps(da[i] + 8 * b))
                          : _mm512_fmsub_ps(p, _mm512_loadu_ps(da[i] + 8 * b), _mm512_loadu_ps(sa[i] + 8 * b));
        acc[i] = _mm512_fmadd_ps(p, dw, acc[i]);
    }
}

/* Two pairs in flight; an odd last block through the 256-bit step. */
QK_INLINE void qk_row_x0(int M, mt_dtype wt, int64_t nb, const void *w, const int8_t *const *qa, float *out) {
    const float *da[GEMV_Q_MAX_M], *sa[GEMV_Q_MAX_M];
    __m512 acc0[GEMV_Q_MAX_M], acc1[GEMV_Q_MAX_M];
    __m256 tail[GEMV_Q_MAX_M];
    QK_ROWS(i, M) {
        da[i] = (const float *)(qa[i] + 32 * nb);
        sa[i] = da[i] + 8 * nb;
        acc0[i] = acc1[i] = _mm512_setzero_ps();
        tail[i] = _mm256_setzero_ps();
    }
    int64_t b = 0;
    size_t bb = wt == MT_Q8_0 ? sizeof(mt_block_q8_0) : sizeof(mt_block_q4_0);
    for (; b + 4 <= nb; b += 4) {
        qk_prefetch((const char *)w + b * bb, 4 * bb);
        qk_pair_x0(M, wt, w, b, qa, da, sa, acc0);
        qk_pair_x0(M, wt, w, b + 2, qa, da, sa, acc1);
    }
    if (b + 2 <= nb) {
        qk_pair_x0(M, wt, w, b, qa, da, sa, acc0);
        b += 2;
    }
    if (b < nb) qk_block_x0(M, wt, w, b, qa, da, sa, tail);
    QK_ROWS(i, M) out[i] = _mm512_reduce_add_ps(_mm512_add_ps(acc0[i], acc1[i])) + qk_hsum(tail[i]);
}
#else
/* U accumulators per row (four for one row, else two) keep U blocks in flight past the multiply-add latency. */
QK_INLINE void qk_row_x0(int M, mt_dtype wt, int64_t nb, const void *w, const int8_t *const *qa, float *out) {
    enum { U = 4 };
    const int u = M == 1 ? 4 : 2;
    const float *da[GEMV_Q_MAX_M], *sa[GEMV_Q_MAX_M];
    __m256 acc[U][GEMV_Q_MAX_M];
    QK_ROWS(i, M) {
        da[i] = (const float *)(qa[i] + 32 * nb);
        sa[i] = da[i] + 8 * nb;
        for (int r = 0; r < U; r++) acc[r][i] = _mm256_setzero_ps();
    }
    int64_t b = 0;
    size_t bb = wt == MT_Q8_0 ? sizeof(mt_block_q8_0) : sizeof(mt_block_q4_0);
    for (; b + u <= nb; b += u) {
        qk_prefetch((const char *)w + b * bb, (size_t)u * bb);
        _Pragma("GCC unroll 4") for (int r = 0; r < u; r++) qk_block_x0(M, wt, w, b + r, qa, da, sa, acc[r]);
    }
    for (; b < nb; b++) qk_block_x0(M, wt, w, b, qa, da, sa, acc[0]);
    QK_ROWS(i, M) {
        __m256 t = _mm256_add_ps(_mm256_add_ps(acc[0][i], acc[1][i]), _mm256_add_ps(acc[2][i], acc[3][i]));
        out[i] = qk_hsum(t);
    }
}
#endif

/* The 8 6-bit scales and 8 mins of a Q4_K block, a byte each, from the 12 packed bytes (tensor/quant.h's
 * mt_q4_K_scale_min, four at a time on 32-bit words). */
QK_INLINE void qk_q4_K_scales(const uint8_t *s12, uint64_t *sc, uint64_t *mn) {
    uint32_t w0, w1, w2;
    memcpy(&w0, s12, 4);
    memcpy(&w1, s12 + 4, 4);
    memcpy(&w2, s12 + 8, 4);
    uint32_t s_lo = w0 & 0x3f3f3f3fu, m_lo = w1 & 0x3f3f3f3fu;
    uint32_t s_hi = (w2 & 0x0f0f0f0fu) | (((w0 >> 6) & 0x03030303u) << 4);
    uint32_t m_hi = ((w2 >> 4) & 0x0f0f0f0fu) | (((w1 >> 6) & 0x03030303u) << 4);
    *sc = s_lo | (uint64_t)s_hi << 32;
    *mn = m_lo | (uint64_t)m_hi << 32;
}

QK_INLINE void qk_row_q4_K(int M, int64_t nb, const mt_block_q4_K *w, const mt_block_q8_K *const *a, float *out) {
    __m256 acc[GEMV_Q_MAX_M], accm[GEMV_Q_MAX_M];
    QK_ROWS(i, M) acc[i] = accm[i] = _mm256_setzero_ps();
    const __m256i low4 = _mm256_set1_epi8(0xF);
    for (int64_t b = 0; b < nb; b++) {
        const mt_block_q4_K *x = &w[b];
        qk_prefetch(x, sizeof *x);
        uint64_t sc, mn;
        qk_q4_K_scales(x->scales, &sc, &mn);
        float d = _cvtsh_ss(x->d), dmin = _cvtsh_ss(x->dmin);
        __m256i scv = _mm256_broadcastsi128_si256(_mm_cvtsi64_si128((long long)sc));
        __m256i sumi[GEMV_Q_MAX_M];
        QK_ROWS(i, M) sumi[i] = _mm256_setzero_si256();
        QK_UNROLL for (int p = 0; p < 4; p++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(x->qs + 32 * p));
            __m256i lo = _mm256_and_si256(q, low4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
            __m256i v0 = qk_pick(scv, qk_pick_u[2 * p]), v1 = qk_pick(scv, qk_pick_u[2 * p + 1]);
            QK_ROWS(i, M) {
                const int8_t *y = a[i][b].qs + 64 * p;
                sumi[i] = qk_dot_sc(sumi[i], lo, _mm256_loadu_si256((const __m256i *)y), v0);
                sumi[i] = qk_dot_sc(sumi[i], hi, _mm256_loadu_si256((const __m256i *)(y + 32)), v1);
            }
        }
        /* the min term: m_j * (bsums[2j] + bsums[2j+1]), each min repeated over its two sums of 16 */
        __m128i m8 = _mm_cvtsi64_si128((long long)mn);
        __m256i m16 = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m8, m8));
        QK_ROWS(i, M) {
            const mt_block_q8_K *y = &a[i][b];
            __m256i bs = _mm256_loadu_si256((const __m256i *)y->bsums);
            __m256 mins = _mm256_cvtepi32_ps(_mm256_madd_epi16(bs, m16));
            acc[i] = _mm256_fmadd_ps(_mm256_set1_ps(d * y->d), _mm256_cvtepi32_ps(sumi[i]), acc[i]);
            accm[i] = _mm256_fmadd_ps(_mm256_set1_ps(dmin * y->d), mins, accm[i]);
        }
    }
    QK_ROWS(i, M) out[i] = qk_hsum(_mm256_sub_ps(acc[i], accm[i]));
}

/* The 6-bit codes (0..63) of half h of a Q6_K block, values 128h + [0,32), [32,64), [64,96), [96,128): the low
 * nibbles of the two 32-byte runs of ql, then their high nibbles, each with 2 bits of qh on top. */
QK_INLINE void qk_q6_K_codes(const mt_block_q6_K *x, int h, __m256i q[4]) {
    const __m256i low4 = _mm256_set1_epi8(0xF), two = _mm256_set1_epi8(0x30);
    __m256i l0 = _mm256_loadu_si256((const __m256i *)(x->ql + 64 * h));
    __m256i l1 = _mm256_loadu_si256((const __m256i *)(x->ql + 64 * h + 32));
    __m256i qh = _mm256_loadu_si256((const __m256i *)(x->qh + 32 * h));
    q[0] = _mm256_or_si256(_mm256_and_si256(l0, low4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), two));
    q[1] = _mm256_or_si256(_mm256_and_si256(l1, low4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), two));
    q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), low4), _mm256_and_si256(qh, two));
    q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), low4),
                           _mm256_and_si256(_mm256_srli_epi16(qh, 2), two));
}

#if QK_512
/* qk_pick_s512[P]: the int16 lanes of 128-bit lane L take scale byte 4P + L, in the upper byte (Q6_K on 512 bits:
 * each 128-bit lane of a code vector holds one 16-value group) */
static const uint8_t qk_pick_s512[4][64] __attribute__((aligned(64))) = {
    {QK_S8(0), QK_S8(1), QK_S8(2), QK_S8(3)},     {QK_S8(4), QK_S8(5), QK_S8(6), QK_S8(7)},
    {QK_S8(8), QK_S8(9), QK_S8(10), QK_S8(11)},   {QK_S8(12), QK_S8(13), QK_S8(14), QK_S8(15)},
};

/* The scaled code sums of one Q6_K block against M rows, in 8 int32 lanes a row. Per half h of the block one 64-byte
 * load holds both 32-byte runs of low bits: their low nibbles are values 128h + [0, 64) in order, their high nibbles
 * 128h + [64, 128), and each run's 2 high bits come from qh by a shift that differs between the vector's 256-bit
 * halves. Half the instructions of the 256-bit loop, which held one core to 30 GB/s of Q6_K from L2. */
QK_INLINE void qk_sums_q6_K(int M, const mt_block_q6_K *x, const mt_block_q8_K *const *a, int64_t b, __m256i *sumi) {
    const __m512i low4 = _mm512_set1_epi8(0xF), two = _mm512_set1_epi8(0x30);
    const __m512i up_lo = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
    const __m512i down_hi = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
    __m512i scv = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)x->scales));
    __m512i acc[GEMV_Q_MAX_M];
    QK_ROWS(i, M) acc[i] = _mm512_setzero_si512();
    QK_UNROLL for (int h = 0; h < 2; h++) {
        __m512i l = _mm512_loadu_si512(x->ql + 64 * h);
        __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(x->qh + 32 * h)));
        __m512i q[2] = {
            _mm512_or_si512(_mm512_and_si512(l, low4), _mm512_and_si512(_mm512_sllv_epi16(qh, up_lo), two)),
            _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), low4),
                            _mm512_and_si512(_mm512_srlv_epi16(qh, down_hi), two)),
        };
        QK_UNROLL for (int g = 0; g < 2; g++) {
            __m512i v = _mm512_srai_epi16(
                _mm512_shuffle_epi8(scv, _mm512_load_si512((const __m512i *)qk_pick_s512[2 * h + g])), 8);
            QK_ROWS(i, M) {
                __m512i y = _mm512_loadu_si512(a[i][b].qs + 128 * h + 64 * g);
                __m512i p = _mm512_maddubs_epi16(q[g], y);
#if QK_VNNI == 2
                acc[i] = _mm512_dpwssd_epi32(acc[i], p, v);
#else
                acc[i] = _mm512_add_epi32(acc[i], _mm512_madd_epi16(p, v));
#endif
            }
        }
    }
    QK_ROWS(i, M) sumi[i] = _mm256_add_epi32(_mm512_castsi512_si256(acc[i]), _mm512_extracti64x4_epi64(acc[i], 1));
}
#else
/* The scaled code sums of one Q6_K block against M rows, in 8 int32 lanes a row. */
QK_INLINE void qk_sums_q6_K(int M, const mt_block_q6_K *x, const mt_block_q8_K *const *a, int64_t b, __m256i *sumi) {
    __m256i scv = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)x->scales));
    QK_ROWS(i, M) sumi[i] = _mm256_setzero_si256();
    QK_UNROLL for (int h = 0; h < 2; h++) {
        __m256i q[4];
        qk_q6_K_codes(x, h, q);
        QK_UNROLL for (int g = 0; g < 4; g++) {
            __m256i v = _mm256_srai_epi16(qk_pick(scv, qk_pick_s[4 * h + g]), 8);
            QK_ROWS(i, M) {
                __m256i y = _mm256_loadu_si256((const __m256i *)(a[i][b].qs + 128 * h + 32 * g));
                sumi[i] = qk_dot_sc(sumi[i], q[g], y, v);
            }
        }
    }
}
#endif

QK_INLINE void qk_row_q6_K(int M, int64_t nb, const mt_block_q6_K *w, const mt_block_q8_K *const *a, float *out) {
    __m256 acc[GEMV_Q_MAX_M];
    QK_ROWS(i, M) acc[i] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const mt_block_q6_K *x = &w[b];
        qk_prefetch(x, sizeof *x);
        float d = _cvtsh_ss(x->d);
        __m256i sumi[GEMV_Q_MAX_M];
        qk_sums_q6_K(M, x, a, b, sumi);
        /* the offset: 32 * sum over the 16 groups of scale * bsum */
        __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x->scales));
        QK_ROWS(i, M) {
            __m256i bs = _mm256_loadu_si256((const __m256i *)a[i][b].bsums);
            __m256i off = _mm256_slli_epi32(_mm256_madd_epi16(bs, sc16), 5);
            acc[i] = _mm256_fmadd_ps(_mm256_set1_ps(d * a[i][b].d), _mm256_cvtepi32_ps(_mm256_sub_epi32(sumi[i], off)),
                                     acc[i]);
        }
    }
    QK_ROWS(i, M) out[i] = qk_hsum(acc[i]);
}

/* Q4_K_R8 (tensor/quant.h): 8 rows of W in the 8 int32 lanes, so a sub-block's scale and min multiply lane-wise and
 * the 8 outputs leave as one vector. Per 32 bytes of codes: one AND gives the low nibbles (sub-block 2p) and one AND
 * with 0xF0 the high ones times 16 (sub-block 2p + 1; the 16 is shifted out of the sum, exactly, after the scale); each
 * meets 4 activations broadcast to all lanes in one vpdpbusd (or vpmaddubsw + vpmaddwd, where 16 * 15 * 127 * 2
 * would saturate: there the high nibbles are shifted down first). Per group block of 8 x 256 weights and row of A:
 * 64 products, 8 scale multiplies (vpmulld), the 8 mins against the activation's sums in 4 vpmaddwd, 2 f32 FMAs;
 * shared by the rows of A: 64 nibble ANDs, 11 ops of 6-bit scale unpacking, 8 scale picks. */
#define QK_R8_MAX_M 4
#define QK_R8_HI_SHIFT (QK_VNNI ? 4 : 0)
#define QK_B4(t) t, 0x80, 0x80, 0x80, 4 + t, 0x80, 0x80, 0x80, 8 + t, 0x80, 0x80, 0x80, 12 + t, 0x80, 0x80, 0x80
/* qk_r8_pick[t]: byte t of each int32 lane, zero-extended (a sub-block's scale in each row's lane) */
static const uint8_t qk_r8_pick[4][32] __attribute__((aligned(32))) = {
    {QK_B4(0), QK_B4(0)}, {QK_B4(1), QK_B4(1)}, {QK_B4(2), QK_B4(2)}, {QK_B4(3), QK_B4(3)}};

/* Sums of 4 adjacent products u8 * s8 added to acc, in 8 int32 lanes. */
QK_INLINE __m256i qk_dot_acc(__m256i acc, __m256i u, __m256i s) {
#if QK_VNNI
    return QK_DPBUSD(acc, u, s);
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
#endif
}

QK_INLINE __m256i qk_bcast4(const int8_t *y) {
    int32_t v;
    memcpy(&v, y, 4);
    return _mm256_set1_epi32(v);
}

#if QK_512
/* The two 256-bit halves of v added: sums over two chunks of an interleaved group's codes, one per half. */
QK_INLINE __m256i qk_fold512(__m512i v) {
    return _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
}

/* Sums of 4 adjacent products u8 * s8 added to acc, in 16 int32 lanes. */
QK_INLINE __m512i qk_dot_acc512(__m512i acc, __m512i u, __m512i s) {
#if QK_VNNI
    return _mm512_dpbusd_epi32(acc, u, s);
#else
    return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1)));
#endif
}

/* The code sums of sub-blocks 2p (lo[p][i]) and 2p + 1 (hi[p][i]) for p in [p0, p0 + np), 8 rows in 8 int32 lanes.
 * One 512-bit load takes chunks c and c + 1, so each half meets its own 4 activations: vpermd spreads them from the
 * sub-block pair's 64 activation bytes, held in a register, where the 256-bit step broadcasts each from memory (per
 * 64 bytes of codes 2 loads and 1 permute against 2 loads and 4 broadcast loads; loads beside the W stream cost it
 * bandwidth, docs/PERFORMANCE.md session 15). The halves are added at the end. */
QK_INLINE void qk_r8_sums(int M, int np, int p0, const mt_block_q4_K_r8 *x, const mt_block_q8_K *const *a, int64_t b,
                          __m256i lo[4][QK_R8_MAX_M], __m256i hi[4][QK_R8_MAX_M]) {
    const __m512i low4 = _mm512_set1_epi8(0xF);
    __m512i ya[4][QK_R8_MAX_M], slo[4][QK_R8_MAX_M], shi[4][QK_R8_MAX_M];
    QK_UNROLL for (int p = p0; p < p0 + np; p++) QK_ROWS(i, M) {
        ya[p][i] = _mm512_loadu_si512(a[i][b].qs + 64 * p);
        slo[p][i] = shi[p][i] = _mm512_setzero_si512();
    }
    QK_UNROLL for (int c = 0; c < 8; c += 2) {
        /* activation dwords c (lanes 0-7) and c + 1 (lanes 8-15); the high nibbles' are 8 dwords on */
        const __m512i ilo = _mm512_set_epi32(c + 1, c + 1, c + 1, c + 1, c + 1, c + 1, c + 1, c + 1, c, c, c, c, c, c,
                                             c, c);
        const __m512i ihi = _mm512_add_epi32(ilo, _mm512_set1_epi32(8));
        QK_UNROLL for (int p = p0; p < p0 + np; p++) {
            __m512i q = _mm512_loadu_si512(x->qs[8 * p + c]);
            __m512i l = _mm512_and_si512(q, low4);
#if QK_VNNI
            __m512i h = _mm512_andnot_si512(low4, q);
#else
            __m512i h = _mm512_and_si512(_mm512_srli_epi16(q, 4), low4);
#endif
            QK_ROWS(i, M) {
                slo[p][i] = qk_dot_acc512(slo[p][i], l, _mm512_permutexvar_epi32(ilo, ya[p][i]));
                shi[p][i] = qk_dot_acc512(shi[p][i], h, _mm512_permutexvar_epi32(ihi, ya[p][i]));
            }
        }
    }
    QK_UNROLL for (int p = p0; p < p0 + np; p++) QK_ROWS(i, M) {
        lo[p][i] = qk_fold512(slo[p][i]);
        hi[p][i] = qk_fold512(shi[p][i]);
    }
}
#else
/* The code sums of sub-blocks 2p (lo[p][i]) and 2p + 1 (hi[p][i]) for p in [p0, p0 + np), 8 rows in 8 int32 lanes:
 * per 32 bytes of codes, one AND each and 4 activations broadcast to all lanes. */
QK_INLINE void qk_r8_sums(int M, int np, int p0, const mt_block_q4_K_r8 *x, const mt_block_q8_K *const *a, int64_t b,
                          __m256i lo[4][QK_R8_MAX_M], __m256i hi[4][QK_R8_MAX_M]) {
    const __m256i low4 = _mm256_set1_epi8(0xF);
    QK_UNROLL for (int p = p0; p < p0 + np; p++) QK_ROWS(i, M) lo[p][i] = hi[p][i] = _mm256_setzero_si256();
    QK_UNROLL for (int c = 0; c < 8; c++)
        QK_UNROLL for (int p = p0; p < p0 + np; p++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)x->qs[8 * p + c]);
            __m256i l = _mm256_and_si256(q, low4);
#if QK_VNNI
            __m256i h = _mm256_andnot_si256(low4, q);
#else
            __m256i h = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
#endif
            QK_ROWS(i, M) {
                const int8_t *y = a[i][b].qs + 64 * p + 4 * c;
                lo[p][i] = qk_dot_acc(lo[p][i], l, qk_bcast4(y));
                hi[p][i] = qk_dot_acc(hi[p][i], h, qk_bcast4(y + 32));
            }
        }
}
#endif

QK_INLINE void qk_group_q4_K_r8(int M, int64_t nb, const mt_block_q4_K_r8 *w, const mt_block_q8_K *const *a,
                                __m256 *out) {
    __m256 acc[QK_R8_MAX_M];
    QK_ROWS(i, M) acc[i] = _mm256_setzero_ps();
    const __m256i low4 = _mm256_set1_epi8(0xF), six = _mm256_set1_epi8(0x3F), hi2 = _mm256_set1_epi8(0x30);
    const __m256i byte0 = _mm256_set1_epi32(0xFF00FF);
    const __m128i pair_bsums = _mm_setr_epi8(0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15);
    for (int64_t b = 0; b < nb; b++) {
        const mt_block_q4_K_r8 *x = &w[b];
        qk_prefetch(x, sizeof *x);
        __m256i w0 = _mm256_loadu_si256((const __m256i *)x->scales[0]);
        __m256i w1 = _mm256_loadu_si256((const __m256i *)x->scales[1]);
        __m256i w2 = _mm256_loadu_si256((const __m256i *)x->scales[2]);
        /* mt_q4_K_scale_min on 8 rows at once: bytes 0..3 of each lane are sub-blocks 0..3 (lo) or 4..7 (hi) */
        __m256i sc[2] = {_mm256_and_si256(w0, six), _mm256_or_si256(_mm256_and_si256(w2, low4),
                                                                     _mm256_and_si256(_mm256_srli_epi32(w0, 2), hi2))};
        __m256i m_lo = _mm256_and_si256(w1, six);
        __m256i m_hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(w2, 4), low4),
                                       _mm256_and_si256(_mm256_srli_epi32(w1, 2), hi2));
        /* the mins as int16 pairs per lane: (m0, m2), (m1, m3), (m4, m6), (m5, m7) */
        __m256i mp[4] = {_mm256_and_si256(m_lo, byte0), _mm256_and_si256(_mm256_srli_epi32(m_lo, 8), byte0),
                         _mm256_and_si256(m_hi, byte0), _mm256_and_si256(_mm256_srli_epi32(m_hi, 8), byte0)};
        /* the sums of sub-blocks 2p (lo) and 2p + 1 (hi) for row i of A at [p][i], scaled into sumi. One row of A
         * takes the 4 pairs at once, so that 8 chains of products are in flight, not 2 each waiting on its own
         * latency; more rows are chains enough, and take a pair at a time to stay in the registers. */
        const int np = M == 1 ? 4 : 1;
        __m256i alo[4][QK_R8_MAX_M], ahi[4][QK_R8_MAX_M], sumi[QK_R8_MAX_M];
        QK_ROWS(i, M) sumi[i] = _mm256_setzero_si256();
        QK_UNROLL for (int p0 = 0; p0 < 4; p0 += np) {
            qk_r8_sums(M, np, p0, x, a, b, alo, ahi);
            QK_UNROLL for (int p = p0; p < p0 + np; p++) {
                __m256i s_lo = qk_pick(sc[p / 2], qk_r8_pick[(2 * p) % 4]);
                __m256i s_hi = qk_pick(sc[p / 2], qk_r8_pick[(2 * p + 1) % 4]);
                QK_ROWS(i, M) {
                    __m256i t = _mm256_add_epi32(_mm256_mullo_epi32(alo[p][i], s_lo),
                                                 _mm256_srai_epi32(_mm256_mullo_epi32(ahi[p][i], s_hi), QK_R8_HI_SHIFT));
                    sumi[i] = _mm256_add_epi32(sumi[i], t);
                }
            }
        }
        __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)x->d));
        __m256 dmin = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)x->dmin));
        QK_ROWS(i, M) {
            const mt_block_q8_K *y = &a[i][b];
            /* the 8 sums of 32 activations, as the int16 pairs that meet mp[] */
            __m128i s8 = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)y->bsums),
                                        _mm_loadu_si128((const __m128i *)(y->bsums + 8)));
            s8 = _mm_shuffle_epi8(s8, pair_bsums);
            __m256i summ = _mm256_madd_epi16(mp[0], _mm256_broadcastd_epi32(s8));
            summ = _mm256_add_epi32(summ, _mm256_madd_epi16(mp[1], _mm256_broadcastd_epi32(_mm_srli_si128(s8, 4))));
            summ = _mm256_add_epi32(summ, _mm256_madd_epi16(mp[2], _mm256_broadcastd_epi32(_mm_srli_si128(s8, 8))));
            summ = _mm256_add_epi32(summ, _mm256_madd_epi16(mp[3], _mm256_broadcastd_epi32(_mm_srli_si128(s8, 12))));
            __m256 yd = _mm256_set1_ps(y->d);
            acc[i] = _mm256_fmadd_ps(_mm256_mul_ps(d, yd), _mm256_cvtepi32_ps(sumi[i]), acc[i]);
            acc[i] = _mm256_fnmadd_ps(_mm256_mul_ps(dmin, yd), _mm256_cvtepi32_ps(summ), acc[i]);
        }
    }
    QK_ROWS(i, M) out[i] = acc[i];
}

QK_INLINE void qk_rows_q4_K_r8(int M, int64_t n, int64_t k, const void *aq, size_t aq_stride, const void *w,
                               size_t ldw, const float *bias, float *c, int64_t ldc, bool accum) {
    const mt_block_q8_K *a[QK_R8_MAX_M];
    QK_ROWS(i, M) a[i] = (const mt_block_q8_K *)((const char *)aq + (size_t)i * aq_stride);
    for (int64_t j = 0; j < n; j += 8) {
        __m256 out[QK_R8_MAX_M];
        qk_group_q4_K_r8(M, k / MT_QK_K, (const mt_block_q4_K_r8 *)((const char *)w + (size_t)j * ldw), a, out);
        QK_ROWS(i, M) {
            __m256 s = bias ? _mm256_add_ps(out[i], _mm256_loadu_ps(bias + j)) : out[i];
            if (accum) s = _mm256_add_ps(_mm256_loadu_ps(c + i * ldc + j), s);
            _mm256_storeu_ps(c + i * ldc + j, s);
        }
    }
}

/* Q8_0_R8 (tensor/quant.h): 8 rows of W in the 8 int32 lanes, codes stored as q + 128. With VNNI each 32 bytes
 * (4 codes of each of the 8 rows) meet 4 activations broadcast to all lanes in one vpdpbusd, u8 code x s8 activation;
 * the + 128 adds 128 * (sum of the block's activations) to every lane, taken off in int32 (the activation row
 * carries it per block, mt_q8_0_r8_act_bytes), so the sums are the signed products' exactly and VNNI on and off give
 * the same floats. Per block of 8 x 32 weights and row of A: 8 vpdpbusd, 9 broadcast loads (load ports), 1 add of the
 * two chains, 1 subtract, 1 convert, 1 multiply, 1 FMA; shared by the rows of A: 8 loads of codes, 1 f16 convert of
 * the 8 scales. AVX-512 with VNNI takes two chunks a vector: 4 vpdpbusd, 1 load and 4 vpermd per block and row of A
 * (one core from L2: 76 -> 89 GB/s at one row, 234 -> 274-286 GFLOP/s at 8). Without VNNI the 16-bit pair sums of
 * vpmaddubsw would saturate at 255 * 127 * 2, so the codes go back to signed (1 xor) and take the sign trick: |w|
 * (1 abs per 32 bytes), then per row of A vpsignb + vpmaddubsw + vpmaddwd + add per 32 bytes, and no correction. */
QK_INLINE void qk_group_q8_0_r8(int M, int64_t nb, const mt_block_q8_0_r8 *w, const int8_t *const *qa,
                                const float *const *da, const int32_t *const *corr, __m256 *out) {
    __m256 acc[QK_R8_MAX_M];
    QK_ROWS(i, M) acc[i] = _mm256_setzero_ps();
#if !QK_VNNI
    const __m256i flip = _mm256_set1_epi8((char)0x80), ones = _mm256_set1_epi16(1);
#endif
    for (int64_t b = 0; b < nb; b++) {
        const mt_block_q8_0_r8 *x = &w[b];
        qk_prefetch(x, sizeof *x);
        __m256i sumi[2][QK_R8_MAX_M];
#if QK_512 && QK_VNNI
        /* two chunks a 512-bit load, each half's 4 activations spread by vpermd from the block's 32 (as Q4_K_R8) */
        __m512i s512[2][QK_R8_MAX_M], ya[QK_R8_MAX_M];
        QK_ROWS(i, M) {
            s512[0][i] = s512[1][i] = _mm512_setzero_si512();
            ya[i] = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(qa[i] + 32 * b)));
        }
        QK_UNROLL for (int c = 0; c < 8; c += 2) {
            const __m512i idx = _mm512_set_epi32(c + 1, c + 1, c + 1, c + 1, c + 1, c + 1, c + 1, c + 1, c, c, c, c, c,
                                                 c, c, c);
            __m512i q = _mm512_loadu_si512(x->qs[c]);
            QK_ROWS(i, M) s512[(c / 2) & 1][i] =
                _mm512_dpbusd_epi32(s512[(c / 2) & 1][i], q, _mm512_permutexvar_epi32(idx, ya[i]));
        }
        QK_ROWS(i, M) {
            sumi[0][i] = qk_fold512(s512[0][i]);
            sumi[1][i] = qk_fold512(s512[1][i]);
        }
#else
        QK_ROWS(i, M) sumi[0][i] = sumi[1][i] = _mm256_setzero_si256();
        QK_UNROLL for (int c = 0; c < 8; c++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)x->qs[c]);
#if QK_VNNI
            QK_ROWS(i, M) sumi[c & 1][i] = QK_DPBUSD(sumi[c & 1][i], q, qk_bcast4(qa[i] + 32 * b + 4 * c));
#else
            __m256i sq = _mm256_xor_si256(q, flip), u = _mm256_abs_epi8(sq);
            QK_ROWS(i, M) {
                __m256i y = _mm256_sign_epi8(qk_bcast4(qa[i] + 32 * b + 4 * c), sq);
                sumi[c & 1][i] = _mm256_add_epi32(sumi[c & 1][i], _mm256_madd_epi16(_mm256_maddubs_epi16(u, y), ones));
            }
#endif
        }
#endif
        __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)x->d));
        QK_ROWS(i, M) {
            __m256i t = _mm256_add_epi32(sumi[0][i], sumi[1][i]);
#if QK_VNNI
            t = _mm256_sub_epi32(t, _mm256_set1_epi32(corr[i][b]));
#endif
            __m256 p = _mm256_mul_ps(_mm256_cvtepi32_ps(t), _mm256_loadu_ps(da[i] + 8 * b));
            acc[i] = _mm256_fmadd_ps(p, dw, acc[i]);
        }
    }
    QK_ROWS(i, M) out[i] = acc[i];
}

/* Groups of 8 rows through qk_group_q8_0_r8, then the last n % 8 rows, plain Q8_0, through qk_row_x0. */
QK_INLINE void qk_rows_q8_0_r8(int M, int64_t n, int64_t k, const void *aq, size_t aq_stride, const void *w,
                               size_t ldw, const float *bias, float *c, int64_t ldc, bool accum) {
    const int8_t *qa[QK_R8_MAX_M];
    const float *da[QK_R8_MAX_M];
    const int32_t *corr[QK_R8_MAX_M];
    int64_t nb = k / MT_QK8_0, n8 = n / 8 * 8;
    QK_ROWS(i, M) {
        qa[i] = (const int8_t *)aq + (size_t)i * aq_stride;
        da[i] = (const float *)(qa[i] + k);
        corr[i] = (const int32_t *)(qa[i] + mt_q8_0_act_bytes(k));
    }
    for (int64_t j = 0; j < n8; j += 8) {
        __m256 out[QK_R8_MAX_M];
        qk_group_q8_0_r8(M, nb, (const mt_block_q8_0_r8 *)((const char *)w + (size_t)j * ldw), qa, da, corr, out);
        QK_ROWS(i, M) {
            __m256 s = bias ? _mm256_add_ps(out[i], _mm256_loadu_ps(bias + j)) : out[i];
            if (accum) s = _mm256_add_ps(_mm256_loadu_ps(c + i * ldc + j), s);
            _mm256_storeu_ps(c + i * ldc + j, s);
        }
    }
    for (int64_t j = n8; j < n; j++) {
        float out[GEMV_Q_MAX_M];
        qk_row_x0(M, MT_Q8_0, nb, (const char *)w + (size_t)j * ldw, qa, out);
        QK_ROWS(i, M) {
            float s = out[i] + (bias ? bias[j] : 0.0f);
            c[i * ldc + j] = accum ? c[i * ldc + j] + s : s;
        }
    }
}

QK_INLINE void qk_rows(int M, int64_t n, int64_t k, const void *aq, size_t aq_stride, const void *w, mt_dtype wt,
                       size_t ldw, const float *bias, float *c, int64_t ldc, bool accum) {
    const void *a[GEMV_Q_MAX_M];
    QK_ROWS(i, M) a[i] = (const char *)aq + (size_t)i * aq_stride;
    for (int64_t j = 0; j < n; j++) {
        const void *wj = (const char *)w + (size_t)j * ldw;
        float out[GEMV_Q_MAX_M];
        if (wt == MT_Q4_K) qk_row_q4_K(M, k / MT_QK_K, wj, (const mt_block_q8_K *const *)a, out);
        else if (wt == MT_Q6_K) qk_row_q6_K(M, k / MT_QK_K, wj, (const mt_block_q8_K *const *)a, out);
        else if (wt == MT_Q8_0) qk_row_x0(M, MT_Q8_0, k / MT_QK8_0, wj, (const int8_t *const *)a, out);
        else qk_row_x0(M, MT_Q4_0, k / MT_QK4_0, wj, (const int8_t *const *)a, out);
        QK_ROWS(i, M) {
            float s = out[i] + (bias ? bias[j] : 0.0f);
            c[i * ldc + j] = accum ? c[i * ldc + j] + s : s;
        }
    }
}

/* One instance per row count and weight type, so every loop above is unrolled with constants. */
#define QK_CASE(MM, WT) qk_rows(MM, n, k, aq, aq_stride, w, WT, ldw, bias, c, ldc, acc)
#define QK_TYPES(MM)                                                                                                 \
    switch (wt) {                                                                                                    \
    case MT_Q8_0: QK_CASE(MM, MT_Q8_0); break;                                                                       \
    case MT_Q4_0: QK_CASE(MM, MT_Q4_0); break;                                                                       \
    case MT_Q4_K: QK_CASE(MM, MT_Q4_K); break;                                                                       \
    default: QK_CASE(MM, MT_Q6_K); break;                                                                            \
    }

static void qk_pass(int64_t m, int64_t n, int64_t k, const void *aq, size_t aq_stride, const void *w, mt_dtype wt,
                    size_t ldw, const float *bias, float *c, int64_t ldc, bool acc) {
    switch (m) {
    case 1: QK_TYPES(1); break;
    case 2: QK_TYPES(2); break;
    case 3: QK_TYPES(3); break;
#if QK_512
    case 4: QK_TYPES(4); break;
    case 5: QK_TYPES(5); break;
    case 6: QK_TYPES(6); break;
    case 7: QK_TYPES(7); break;
    default: QK_TYPES(8); break;
#else
    default: QK_TYPES(4); break;
#endif
    }
}

/* The interleaved types up to QK_R8_MAX_M rows of A at a time, one instance per row count. */
#define QK_R8_CASE(FN, MM) FN(MM, n, k, a, aq_stride, w, ldw, bias, cm, ldc, acc)
#define QK_R8_PASSES(FN)                                                                                             \
    for (int64_t m0 = 0; m0 < m; m0 += QK_R8_MAX_M) {                                                                \
        const char *a = (const char *)aq + (size_t)m0 * aq_stride;                                                   \
        float *cm = c + m0 * ldc;                                                                                    \
        switch (MT_MIN((int64_t)QK_R8_MAX_M, m - m0)) {                                                              \
        case 1: QK_R8_CASE(FN, 1); break;                                                                            \
        case 2: QK_R8_CASE(FN, 2); break;                                                                            \
        case 3: QK_R8_CASE(FN, 3); break;                                                                            \
        default: QK_R8_CASE(FN, 4); break;                                                                           \
        }                                                                                                            \
    }

void QK_NAME(int64_t m, int64_t n, int64_t k, const void *aq, size_t aq_stride, const void *w, mt_dtype wt, size_t ldw,
             const float *bias, float *c, int64_t ldc, bool acc) {
    if (wt == MT_Q4_K_R8) {
        QK_R8_PASSES(qk_rows_q4_K_r8);
        return;
    }
    if (wt == MT_Q8_0_R8) {
        QK_R8_PASSES(qk_rows_q8_0_r8);
        return;
    }
    for (int64_t m0 = 0; m0 < m; m0 += GEMV_Q_MAX_M)
        qk_pass(MT_MIN((int64_t)GEMV_Q_MAX_M, m - m0), n, k, (const char *)aq + (size_t)m0 * aq_stride, aq_stride, w,
                wt, ldw, bias, c + m0 * ldc, ldc, acc);
}

#ifdef QK_ACT
/* roundf (halves away from zero) of 8 floats: the truncation plus one where the fraction reaches a half. */
QK_INLINE __m256i qk_round_away(__m256 v) {
    __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC), f = _mm256_sub_ps(v, t);
    __m256 up = _mm256_and_ps(_mm256_cmp_ps(f, _mm256_set1_ps(0.5f), _CMP_GE_OQ), _mm256_set1_ps(1.0f));
    __m256 down = _mm256_and_ps(_mm256_cmp_ps(f, _mm256_set1_ps(-0.5f), _CMP_LE_OQ), _mm256_set1_ps(1.0f));
    return _mm256_cvttps_epi32(_mm256_sub_ps(_mm256_add_ps(t, up), down));
}

/* 32 int32 (four vectors of 8, in order) to 32 int8, saturating. */
QK_INLINE __m256i qk_pack32(__m256i a, __m256i b, __m256i c, __m256i d) {
    __m256i v = _mm256_packs_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(c, d));
    return _mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

QK_INLINE int qk_hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* The bytes of mt_quantize_row_q8_0 (ggml's quantize_row_q8_0_ref): the same scale, then x * (1/d) rounded as
 * roundf rounds. */
static void qk_act_q8_0(int64_t k, const float *x, mt_block_q8_0 *y) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t b = 0; b < k / MT_QK8_0; b++, x += MT_QK8_0) {
        __m256 v[4], m = _mm256_setzero_ps();
        for (int r = 0; r < 4; r++) {
            v[r] = _mm256_loadu_ps(x + 8 * r);
            m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v[r]));
        }
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_movehdup_ps(h));
        float amax = _mm_cvtss_f32(h), d = amax / 127, id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = mt_f32_to_f16(d);
        __m256 s = _mm256_set1_ps(id);
        __m256i q = qk_pack32(qk_round_away(_mm256_mul_ps(v[0], s)), qk_round_away(_mm256_mul_ps(v[1], s)),
                              qk_round_away(_mm256_mul_ps(v[2], s)), qk_round_away(_mm256_mul_ps(v[3], s)));
        _mm256_storeu_si256((__m256i *)y[b].qs, q);
    }
}

/* The bytes of mt_quantize_row_q8_K: the first value of largest magnitude sets the scale; round to nearest even
 * (the conversion's default mode, as ggml's nearest_int), capped at 127. */
static void qk_act_q8_K(int64_t k, const float *x, mt_block_q8_K *y) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t b = 0; b < k / MT_QK_K; b++, x += MT_QK_K) {
        __m256 m = _mm256_setzero_ps();
        for (int r = 0; r < MT_QK_K / 8; r++) m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8 * r)));
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_movehdup_ps(h));
        float amax = _mm_cvtss_f32(h);
        mt_block_q8_K *q = &y[b];
        if (amax == 0.0f) {
            memset(q, 0, sizeof *q);
            continue;
        }
        int first = 0;
        while (fabsf(x[first]) != amax) first++;
        float iscale = -127.f / x[first];
        __m256 s = _mm256_set1_ps(iscale);
        const __m256i cap = _mm256_set1_epi32(127);
        for (int g = 0; g < MT_QK_K / 32; g++) {
            __m256i v[4];
            for (int r = 0; r < 4; r++)
                v[r] = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 32 * g + 8 * r), s)), cap);
            _mm256_storeu_si256((__m256i *)(q->qs + 32 * g), qk_pack32(v[0], v[1], v[2], v[3]));
            q->bsums[2 * g] = (int16_t)qk_hsum_i32(_mm256_add_epi32(v[0], v[1]));
            q->bsums[2 * g + 1] = (int16_t)qk_hsum_i32(_mm256_add_epi32(v[2], v[3]));
        }
        q->d = 1 / iscale;
    }
}

/* 32 int8 values times d, to y. */
QK_INLINE void qk_store_scaled(__m256i q, __m256 d, float *y) {
    __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
    __m128i part[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
    for (int r = 0; r < 4; r++)
        _mm256_storeu_ps(y + 8 * r, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(part[r])), d));
}

/* 32 unsigned 4-bit values times d1 minus m1 (Q4_K), each product rounded before the subtraction as in
 * mt_dequantize_row_q4_K; the attribute keeps the compiler from fusing the two into a multiply-add. */
#if defined(__clang__)
static void qk_store_q4_K(__m256i q, __m256 d1, __m256 m1, float *y) {
#pragma clang fp contract(off)
#else
__attribute__((optimize("fp-contract=off"))) static void qk_store_q4_K(__m256i q, __m256 d1, __m256 m1, float *y) {
#endif
    __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
    __m128i part[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
    for (int r = 0; r < 4; r++) {
        __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(part[r])), d1);
        _mm256_storeu_ps(y + 8 * r, _mm256_sub_ps(v, m1));
    }
}

/* Q4_K_R8: 4 weights of rows 2t and 2t + 1 (8 unsigned 4-bit values in bytes) times their row's d1 minus m1, as
 * qk_store_q4_K rounds them, to y0 and y1. */
#if defined(__clang__)
static void qk_store_q4_K_pair(__m128i q, __m256 d1, __m256 m1, float *y0, float *y1) {
#pragma clang fp contract(off)
#else
__attribute__((optimize("fp-contract=off"))) static void qk_store_q4_K_pair(__m128i q, __m256 d1, __m256 m1, float *y0,
                                                                            float *y1) {
#endif
    __m256 v = _mm256_sub_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(q)), d1), m1);
    _mm_storeu_ps(y0, _mm256_castps256_ps128(v));
    _mm_storeu_ps(y1, _mm256_extractf128_ps(v, 1));
}

/* A Q4_K_R8 group's k values of each of its 8 rows, rows k apart (gemm_quant.c packs a group at once): per 32 bytes
 * of qs 4 weights of each row, low nibbles then high, rows 2t and 2t + 1 converted together. */
static void qk_dequant_q4_K_r8(int64_t k, const mt_block_q4_K_r8 *g, float *y) {
    const __m256i low4 = _mm256_set1_epi8(0xF);
    for (int64_t b = 0; b < k / MT_QK_K; b++, g++) {
        float d1[8][8], m1[8][8]; /* [sub-block][row] */
        mt_q4_K_r8_factors(g, d1, m1);
        for (int p = 0; p < 4; p++)
            for (int h = 0; h < 2; h++) {
                __m256 dv[4], mv[4];
                for (int t = 0; t < 4; t++) {
                    __m256i pick = _mm256_setr_epi32(2 * t, 2 * t, 2 * t, 2 * t, 2 * t + 1, 2 * t + 1, 2 * t + 1,
                                                     2 * t + 1);
                    dv[t] = _mm256_permutevar8x32_ps(_mm256_loadu_ps(d1[2 * p + h]), pick);
                    mv[t] = _mm256_permutevar8x32_ps(_mm256_loadu_ps(m1[2 * p + h]), pick);
                }
                for (int c = 0; c < 8; c++) {
                    __m256i q = _mm256_loadu_si256((const __m256i *)g->qs[8 * p + c]);
                    q = _mm256_and_si256(h ? _mm256_srli_epi16(q, 4) : q, low4);
                    __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
                    __m128i part[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
                    float *yc = y + b * MT_QK_K + 64 * p + 32 * h + 4 * c;
                    for (int t = 0; t < 4; t++)
                        qk_store_q4_K_pair(part[t], dv[t], mv[t], yc + 2 * t * k, yc + (2 * t + 1) * k);
                }
            }
    }
}

/* The floats mt_dequantize_row gives, 8 at a time. */
static void qk_dequant(int64_t k, const void *x, float *y, mt_dtype wt) {
    const __m256i low4 = _mm256_set1_epi8(0xF);
    if (wt == MT_F16) {
        const uint16_t *h = x;
        int64_t i = 0;
        for (; i + 8 <= k; i += 8) _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))));
        for (; i < k; i++) y[i] = _cvtsh_ss(h[i]);
        return;
    }
    if (wt == MT_Q4_K_R8) {
        qk_dequant_q4_K_r8(k, x, y);
        return;
    }
    if (wt == MT_Q8_0_R8) {
        /* a group: per 32 bytes 4 values of each row, rows 2t and 2t + 1 converted together */
        const mt_block_q8_0_r8 *g = x;
        const __m256i flip = _mm256_set1_epi8((char)0x80);
        for (int64_t b = 0; b < k / MT_QK8_0; b++) {
            __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)g[b].d)), dp[4];
            for (int t = 0; t < 4; t++)
                dp[t] = _mm256_permutevar8x32_ps(d, _mm256_setr_epi32(2 * t, 2 * t, 2 * t, 2 * t, 2 * t + 1, 2 * t + 1,
                                                                      2 * t + 1, 2 * t + 1));
            for (int c = 0; c < 8; c++) {
                __m256i q = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)g[b].qs[c]), flip);
                __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
                __m128i part[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
                for (int t = 0; t < 4; t++) {
                    __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(part[t])), dp[t]);
                    float *yr = y + 2 * t * k + b * MT_QK8_0 + 4 * c;
                    _mm_storeu_ps(yr, _mm256_castps256_ps128(v));
                    _mm_storeu_ps(yr + k, _mm256_extractf128_ps(v, 1));
                }
            }
        }
        return;
    }
    if (wt == MT_Q8_0 || wt == MT_Q4_0) {
        for (int64_t b = 0; b < k / 32; b++, y += 32) {
            float d;
            __m256i q;
            if (wt == MT_Q8_0) {
                const mt_block_q8_0 *w = (const mt_block_q8_0 *)x + b;
                d = _cvtsh_ss(w->d);
                q = _mm256_loadu_si256((const __m256i *)w->qs);
            } else {
                const mt_block_q4_0 *w = (const mt_block_q4_0 *)x + b;
                d = _cvtsh_ss(w->d);
                __m128i h = _mm_loadu_si128((const __m128i *)w->qs);
                q = _mm256_sub_epi8(_mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(h, 4), h), low4),
                                    _mm256_set1_epi8(8));
            }
            qk_store_scaled(q, _mm256_set1_ps(d), y);
        }
        return;
    }
    for (int64_t b = 0; b < k / MT_QK_K; b++) {
        if (wt == MT_Q4_K) {
            const mt_block_q4_K *w = (const mt_block_q4_K *)x + b;
            float d = _cvtsh_ss(w->d), dmin = _cvtsh_ss(w->dmin);
            for (int p = 0; p < 4; p++, y += 64) {
                uint8_t sc, m;
                __m256i q = _mm256_loadu_si256((const __m256i *)(w->qs + 32 * p));
                mt_q4_K_scale_min(2 * p, w->scales, &sc, &m);
                qk_store_q4_K(_mm256_and_si256(q, low4), _mm256_set1_ps(d * sc), _mm256_set1_ps(dmin * m), y);
                mt_q4_K_scale_min(2 * p + 1, w->scales, &sc, &m);
                qk_store_q4_K(_mm256_and_si256(_mm256_srli_epi16(q, 4), low4), _mm256_set1_ps(d * sc),
                              _mm256_set1_ps(dmin * m), y + 32);
            }
            continue;
        }
        const mt_block_q6_K *w = (const mt_block_q6_K *)x + b;
        float d = _cvtsh_ss(w->d);
        const __m256i off = _mm256_set1_epi8(32);
        for (int h = 0; h < 2; h++, y += 128) {
            __m256i q[4];
            qk_q6_K_codes(w, h, q);
            const int8_t *sc = w->scales + 8 * h;
            for (int g = 0; g < 4; g++) {
                /* 16 values per scale; d * scale first, as mt_dequantize_row_q6_K */
                __m256i v = _mm256_sub_epi8(q[g], off);
                __m128i lo = _mm256_castsi256_si128(v), hi = _mm256_extracti128_si256(v, 1);
                __m256 s0 = _mm256_set1_ps(d * sc[2 * g]), s1 = _mm256_set1_ps(d * sc[2 * g + 1]);
                __m128i part[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
                for (int r = 0; r < 4; r++) {
                    __m256 f = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(part[r]));
                    _mm256_storeu_ps(y + 32 * g + 8 * r, _mm256_mul_ps(r < 2 ? s0 : s1, f));
                }
            }
        }
    }
}

void QK_DEQUANT(int64_t k, const void *x, float *y, mt_dtype wt) { qk_dequant(k, x, y, wt); }

void QK_ACT(int64_t k, const float *x, void *y, mt_dtype wt) {
    if (wt == MT_Q4_K || wt == MT_Q6_K || wt == MT_Q4_K_R8) qk_act_q8_K(k, x, y);
    else qk_act_q8_0(k, x, y);
}
#endif
