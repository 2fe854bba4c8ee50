/* tools/bench_batch: n sequences prefilled one by one, then decoded together (see bench_batch.h). */
#include "bench_batch.h"

#include <string.h>

#include "models/assemble.h"

/* One forward of T rows: *next gets each row's argmax (the next token of its sequence). */
static mt_status step(const mt_model *m, mt_ctx *ctx, mt_kv *kv, const int32_t *ids, const int32_t *seq,
                      const int64_t *pos, int64_t T, int32_t *next, mt_err *err) {
    mt_arena_reset(ctx->arena);
    int axes = m->desc.pos_axes;
    int64_t *p = mt_arena_alloc(ctx->arena, (size_t)(axes * T) * sizeof *p);
    if (!p) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    for (int a = 0; a < axes; a++) memcpy(p + a * T, pos, (size_t)T * sizeof *p);
    mt_batch b = {.n = T, .embeds = mt_model_embed(m, ctx, ids, T), .pos = p, .seq = seq};
    mt_tensor *h = mt_model_forward(m, ctx, kv, &b, NULL);
    int64_t *last = mt_arena_alloc(ctx->arena, (size_t)T * sizeof *last), n_last = 0;
    for (int64_t t = 0; last && t < T; t++)
        if (t == T - 1 || seq[t] != seq[t + 1]) last[n_last++] = t;
    mt_tensor *l = h && last ? mt_model_logits(m, ctx, h, last, n_last) : NULL;
    if (!l) {
        *err = ctx->err;
        return ctx->status ? ctx->status : MT_ERR_NOMEM;
    }
    int64_t V = m->desc.vocab_size;
    for (int64_t r = 0; r < n_last; r++) {
        const float *x = mt_f32(l) + r * V;
        int64_t best = 0;
        for (int64_t v = 1; v < V; v++)
            if (x[v] > x[best]) best = v;
        next[r] = (int32_t)best;
    }
    return MT_OK;
}

mt_status mt_bench_decode_batch(const mt_model *m, mt_pool *pool, int n_seqs, int64_t L, int64_t D, double *seconds,
                                mt_err *err) {
    mt_arena arena;
    mt_arena_init(&arena, (size_t)64 << 20);
    mt_ctx ctx = {.arena = &arena, .pool = pool};
    mt_kv *kv = NULL;
    int32_t *ids = mt_malloc_array((size_t)L, sizeof *ids), *seq = mt_malloc_array((size_t)L, sizeof *seq);
    int32_t tok[256], sid[256];
    int64_t *pos = mt_malloc_array((size_t)L, sizeof *pos), spos[256];
    mt_status st = ids && seq && pos ? MT_OK : mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    if (!st && (n_seqs < 1 || n_seqs > 256)) st = mt_err_set(err, MT_ERR_INVALID_ARG, "%d sequences", n_seqs);
    if (!st) st = mt_model_kv_new(m, n_seqs, 0, &kv, err);
    uint32_t rnd = 7;
    for (int s = 0; s < n_seqs && !st; s++) {
        int id;
        st = mt_kv_seq_new(kv, &id, err);
        for (int64_t i = 0; i < L; i++) {
            rnd = rnd * 1664525u + 1013904223u;
            ids[i] = (int32_t)((rnd >> 8) % 256); /* below every special id */
            seq[i] = id;
            pos[i] = i;
        }
        if (!st) st = step(m, &ctx, kv, ids, seq, pos, L, &tok[s], err);
        sid[s] = id;
        spos[s] = L;
    }
    double t0 = mt_time_now();
    for (int64_t d = 0; d < D && !st; d++) {
        st = step(m, &ctx, kv, tok, sid, spos, n_seqs, tok, err);
        for (int s = 0; s < n_seqs; s++) spos[s]++;
    }
    *seconds = mt_time_now() - t0;
    mt_kv_free(kv);
    mt_free(ids);
    mt_free(seq);
    mt_free(pos);
    mt_arena_free(&arena);
    return st;
}
