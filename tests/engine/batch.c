/* engine: a batch of rows from several sequences of different lengths gives, row for row, the logits each sequence
 * gives alone (within float reassociation: the GEMMs block differently), through prefill and decode; plus the KV
 * memory's fork, drop and refusals. usage: batch MODEL_DIR (a tiny checkpoint from tests/ref). */
#include <stdio.h>
#include <string.h>

#include "../unit/check.h"
#include "models/assemble.h"

#define N_SEQ 4
#define TOL 1e-5f

static const int64_t lens[N_SEQ] = {5, 9, 1, 13};

typedef struct runner {
    const mt_model *m;
    mt_arena arena;
    mt_pool *pool;
} runner;

/* Logits [T, V] of a batch: rows of sequence seq[i] at positions pos[i] (all axes alike); NULL on failure (err set). */
static float *run(runner *r, mt_kv *kv, const int32_t *ids, const int32_t *seq, const int64_t *pos, int64_t T,
                  mt_err *err) {
    mt_arena_reset(&r->arena);
    mt_ctx ctx = {.arena = &r->arena, .pool = r->pool};
    int axes = r->m->desc.pos_axes;
    int64_t *p = mt_arena_alloc(&r->arena, (size_t)(axes * T) * sizeof *p);
    for (int a = 0; a < axes; a++) memcpy(p + a * T, pos, (size_t)T * sizeof *p);
    mt_batch b = {.n = T, .embeds = mt_model_embed(r->m, &ctx, ids, T), .pos = p, .seq = seq};
    mt_tensor *h = mt_model_forward(r->m, &ctx, kv, &b, NULL);
    mt_tensor *l = h ? mt_model_logits(r->m, &ctx, h, NULL, T) : NULL;
    if (!l) {
        *err = ctx.err;
        return NULL;
    }
    float *out = mt_malloc_array((size_t)(T * r->m->desc.vocab_size), sizeof(float));
    memcpy(out, l->data, (size_t)(T * r->m->desc.vocab_size) * sizeof(float));
    return out;
}

static float rel_gap(const float *a, const float *b, int64_t n) {
    float gap = 0, scale = 1e-30f;
    for (int64_t i = 0; i < n; i++) {
        gap = fmaxf(gap, fabsf(a[i] - b[i]));
        scale = fmaxf(scale, fabsf(b[i]));
    }
    return gap / scale;
}

int main(int argc, char **argv) {
    if (argc != 2) return fprintf(stderr, "usage: batch MODEL_DIR\n"), 2;
    mt_err err;
    mt_model *m;
    if (mt_model_open(argv[1], &m, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    runner r = {.m = m};
    mt_arena_init(&r.arena, (size_t)16 << 20);
    CHECK(mt_pool_new(3, &r.pool, &err) == MT_OK);
    int64_t V = m->desc.vocab_size, total = 0;
    int32_t ids[64], seq[64], step_ids[N_SEQ], step_seq[N_SEQ];
    int64_t pos[64], step_pos[N_SEQ];
    for (int s = 0; s < N_SEQ; s++)
        for (int64_t i = 0; i < lens[s]; i++, total++) {
            ids[total] = (int32_t)((37 * total + 11 * s) % 300);
            seq[total] = s;
            pos[total] = i;
        }
    /* each sequence alone: its prompt, then one decode step */
    float *alone[N_SEQ], *alone_step[N_SEQ];
    for (int s = 0, at = 0; s < N_SEQ; at += (int)lens[s], s++) {
        mt_kv *kv;
        int id;
        CHECK(mt_model_kv_new(m, 1, 0, &kv, &err) == MT_OK && mt_kv_seq_new(kv, &id, &err) == MT_OK && id == 0);
        alone[s] = run(&r, kv, ids + at, NULL, pos + at, lens[s], &err);
        int32_t t = (int32_t)(100 + s);
        alone_step[s] = run(&r, kv, &t, NULL, &lens[s], 1, &err);
        CHECK_MSG(alone[s] && alone_step[s], "alone %d: %s", s, err.msg);
        mt_kv_free(kv);
    }
    /* all prompts in one batch, then one decode row per sequence in one batch */
    mt_kv *kv;
    int id;
    CHECK(mt_model_kv_new(m, N_SEQ + 2, 0, &kv, &err) == MT_OK);
    for (int s = 0; s < N_SEQ; s++) CHECK(mt_kv_seq_new(kv, &id, &err) == MT_OK && id == s);
    float *together = run(&r, kv, ids, seq, pos, total, &err);
    CHECK_MSG(together, "batched prefill: %s", err.msg);
    float worst = 0;
    for (int s = 0, at = 0; together && s < N_SEQ; at += (int)lens[s], s++)
        worst = fmaxf(worst, rel_gap(together + at * V, alone[s], lens[s] * V));
    CHECK_MSG(worst < TOL, "batched prefill differs from alone by %g of max |logit|", worst);
    for (int s = 0; s < N_SEQ; s++) {
        step_ids[s] = (int32_t)(100 + s);
        step_seq[s] = s;
        step_pos[s] = lens[s];
        CHECK(mt_kv_seq_len(kv, s) == lens[s]);
    }
    float *step = run(&r, kv, step_ids, step_seq, step_pos, N_SEQ, &err);
    CHECK_MSG(step, "batched decode: %s", err.msg);
    worst = 0;
    for (int s = 0; step && s < N_SEQ; s++) worst = fmaxf(worst, rel_gap(step + s * V, alone_step[s], V));
    CHECK_MSG(worst < TOL, "batched decode differs from alone by %g of max |logit|", worst);
    printf("batch of %d sequences (lengths 5, 9, 1, 13): prefill and decode within %g of each alone\n", N_SEQ, TOL);

    /* a fork continues exactly as its source; a dropped sequence's id is refused */
    int fork;
    CHECK(mt_kv_seq_fork(kv, 3, -1, &fork, &err) == MT_OK && mt_kv_seq_len(kv, fork) == lens[3] + 1);
    int32_t two_ids[2] = {42, 42}, two_seq[2] = {3, fork};
    int64_t two_pos[2] = {lens[3] + 1, lens[3] + 1};
    float *two = run(&r, kv, two_ids, two_seq, two_pos, 2, &err);
    CHECK_MSG(two && rel_gap(two, two + V, V) < TOL, "a fork does not continue as its source");
    mt_kv_seq_drop(kv, fork);
    CHECK(mt_kv_seq_len(kv, fork) == -1);
    int32_t bad_seq[3] = {0, 1, 0}, three_ids[3] = {42, 42, 42};
    int64_t three_pos[3] = {lens[0] + 1, lens[1] + 1, lens[0] + 2};
    CHECK(run(&r, kv, three_ids, bad_seq, three_pos, 3, &err) == NULL && strstr(err.msg, "not consecutive"));
    int32_t gone[1] = {fork};
    CHECK(run(&r, kv, two_ids, gone, two_pos, 1, &err) == NULL && strstr(err.msg, "not in the KV memory"));
    CHECK(mt_kv_seq_len(kv, 0) == lens[0] + 1); /* failed batches leave every sequence as it was */
    mt_kv_seq_truncate(kv, 1, 3);
    CHECK(mt_kv_seq_len(kv, 1) == 3 && mt_kv_rows_used(kv) > 0 && mt_kv_bytes(kv) > 0);
    mt_kv *small;
    CHECK(mt_model_kv_new(m, 1, 4, &small, &err) == MT_OK && mt_kv_seq_new(small, &id, &err) == MT_OK);
    CHECK(run(&r, small, ids, NULL, pos, 5, &err) == NULL && strstr(err.msg, "KV memory full"));
    mt_kv_free(small);

    mt_free(two);
    mt_free(step);
    mt_free(together);
    for (int s = 0; s < N_SEQ; s++) mt_free(alone[s]), mt_free(alone_step[s]);
    mt_kv_free(kv);
    mt_pool_free(r.pool);
    mt_arena_free(&r.arena);
    mt_model_close(m);
    return check_report();
}
