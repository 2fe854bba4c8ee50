/* engine/session: prompt assembly (token embeddings with image features scattered in, M-RoPE positions) and the
 * prefill / decode steps over the family's forward. */
#include "engine/session.h"

#include <string.h>

struct mt_session {
    const mt_model *model;
    mt_pool *pool;
    mt_arena arena;
    mt_kv_cache cache;
    int64_t rope_delta;  /* decode position = cache position + delta (M-RoPE compresses image spans) */
    float *logits;       /* the last step's logits [V] */
    int32_t *history;    /* every token so far, for the repetition penalty */
    int64_t n_history, cap_history;
    int64_t image_end;   /* cache position just past the last image token: rope_delta holds from there on */
};

mt_status mt_session_new(const mt_model *m, const mt_session_params *p, mt_session **out, mt_err *err) {
    mt_session *s = mt_calloc(1, sizeof *s);
    if (!s) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    s->model = m;
    mt_arena_init(&s->arena, (size_t)64 << 20);
    int64_t n_ctx = p && p->n_ctx > 0 ? p->n_ctx : 4096;
    if (n_ctx > m->desc.max_positions) n_ctx = m->desc.max_positions;
    mt_status st = mt_pool_new(p ? p->n_threads : 0, &s->pool, err);
    if (!st) st = mt_kv_cache_init(&s->cache, (int)m->desc.n_layers, n_ctx, m->desc.kv_width, err);
    if (!st) {
        s->logits = mt_malloc_array((size_t)m->desc.vocab_size, sizeof(float));
        if (!s->logits) st = mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    }
    if (st) {
        mt_session_free(s);
        return st;
    }
    *out = s;
    return MT_OK;
}

void mt_session_free(mt_session *s) {
    if (!s) return;
    mt_kv_cache_release(&s->cache);
    mt_arena_free(&s->arena);
    mt_pool_free(s->pool);
    mt_free(s->logits);
    mt_free(s->history);
    mt_free(s);
}

void mt_session_reset(mt_session *s) {
    s->cache.n_past = 0;
    s->rope_delta = 0;
    s->n_history = 0;
    s->image_end = 0;
}

int64_t mt_session_n_past(const mt_session *s) { return s->cache.n_past; }

int64_t mt_image_token_count(const mt_model *m, mt_image_grid g) {
    return g.t * g.h * g.w / (m->desc.merge_size * m->desc.merge_size);
}

static mt_status remember(mt_session *s, const int32_t *ids, int64_t n, mt_err *err) {
    if (s->n_history + n > s->cap_history) {
        int64_t cap = MT_MAX(s->cap_history * 2, s->n_history + n + 256);
        int32_t *h = mt_realloc(s->history, (size_t)cap * sizeof(int32_t));
        if (!h) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
        s->history = h;
        s->cap_history = cap;
    }
    memcpy(s->history + s->n_history, ids, (size_t)n * sizeof(int32_t));
    s->n_history += n;
    return MT_OK;
}

mt_status mt_expand_image_tokens(const mt_model *m, const int32_t *ids, int64_t n, const mt_image_grid *grids,
                                 int n_images, int32_t **out, int64_t *out_n, mt_err *err) {
    int64_t total = n;
    int found = 0;
    for (int64_t i = 0; i < n; i++) {
        if (ids[i] != m->desc.image_token_id) continue;
        if (found >= n_images)
            return mt_err_set(err, MT_ERR_INVALID_ARG, "the prompt has more image placeholders than the %d image(s)",
                              n_images);
        total += mt_image_token_count(m, grids[found++]) - 1;
    }
    if (found != n_images)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "%d image(s) given but the prompt has %d placeholder(s)", n_images,
                          found);
    int32_t *e = mt_malloc_array((size_t)total, sizeof(int32_t));
    if (!e) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    int64_t k = 0;
    int img = 0;
    for (int64_t i = 0; i < n; i++) {
        if (ids[i] != m->desc.image_token_id) {
            e[k++] = ids[i];
            continue;
        }
        for (int64_t j = mt_image_token_count(m, grids[img++]); j > 0; j--) e[k++] = ids[i];
    }
    *out = e;
    *out_n = total;
    return MT_OK;
}

static mt_status ctx_status(mt_ctx *ctx, mt_err *err) {
    if (err) *err = ctx->err;
    return ctx->status ? ctx->status : MT_ERR_INTERNAL;
}

mt_status mt_session_prefill(mt_session *s, const int32_t *ids, int64_t L, const mt_image_input *images,
                             int n_images, const mt_prefill_opts *opts, const float **logits, mt_err *err) {
    const mt_model *m = s->model;
    const mt_family *f = m->family;
    if (L <= 0) return mt_err_set(err, MT_ERR_INVALID_ARG, "empty prompt");
    if (n_images < 0 || n_images > 4096) return mt_err_set(err, MT_ERR_LIMIT, "%d images is too many", n_images);
    if (s->cache.n_past + L > s->cache.capacity)
        return mt_err_set(err, MT_ERR_LIMIT, "prompt of %lld tokens does not fit the %lld-token context (%lld used)",
                          (long long)L, (long long)s->cache.capacity, (long long)s->cache.n_past);
    for (int64_t i = 0; i < L; i++)
        if (ids[i] < 0 || ids[i] >= m->desc.vocab_size)
            return mt_err_set(err, MT_ERR_INVALID_ARG, "token id %d at position %lld is outside the vocabulary [0, %lld)",
                              ids[i], (long long)i, (long long)m->desc.vocab_size);
    mt_arena_reset(&s->arena);
    mt_ctx ctx = {.arena = &s->arena, .pool = s->pool};
    const mt_dump *dump = opts ? opts->dump : NULL;

    mt_image_grid *grids = mt_arena_alloc(&s->arena, (size_t)(n_images + 1) * sizeof *grids);
    if (!grids) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    int64_t M = m->desc.merge_size;
    for (int i = 0; i < n_images; i++) {
        mt_image_grid g = images[i].grid;
        if (g.t < 1 || g.h < 1 || g.w < 1 || g.h % M || g.w % M || g.t > 4096 || g.h > 65536 || g.w > 65536 ||
            images[i].n_patches != g.t * g.h * g.w)
            return mt_err_set(err, MT_ERR_INVALID_ARG,
                              "image %d: grid %lldx%lldx%lld does not fit %lld patches (sides must be multiples of %lld)",
                              i + 1, (long long)g.t, (long long)g.h, (long long)g.w, (long long)images[i].n_patches,
                              (long long)M);
        grids[i] = g;
    }
    int64_t *pos = mt_arena_alloc(&s->arena, (size_t)L * 3 * sizeof(int64_t));
    if (!pos) return mt_err_set(err, MT_ERR_NOMEM, "out of memory for %lld positions", (long long)L);
    int64_t delta = 0;
    mt_status st = f->positions(m, ids, L, grids, n_images, pos, &delta, err);
    if (st) return st;
    for (int64_t i = 0; i < 3 * L; i++) pos[i] += s->cache.n_past + s->rope_delta;

    mt_tensor *x = f->embed(m, &ctx, ids, L);
    int64_t row = 0, H = m->desc.hidden_size, image_end = s->image_end;
    for (int i = 0; i < n_images && x; i++) {
        mt_arena_mark mark = mt_arena_save(&s->arena);
        mt_tensor *feat = f->encode_image(m, &ctx, images[i].pixels, images[i].n_patches, images[i].grid, dump);
        if (!feat) return ctx_status(&ctx, err);
        for (int64_t r = 0; r < feat->shape[0]; r++) {
            while (row < L && ids[row] != m->desc.image_token_id) row++;
            if (row == L) return mt_err_set(err, MT_ERR_INTERNAL, "image tokens ran out");
            memcpy(mt_f32(x) + row * H, mt_f32(feat) + r * H, (size_t)H * sizeof(float));
            row++;
        }
        image_end = s->cache.n_past + row;
        if (!dump || !dump->fn) mt_arena_restore(&s->arena, mark);
    }
    if (dump && dump->fn) {
        mt_tensor p = mt_tensor_wrap(MT_I64, 2, (int64_t[]){3, L}, pos);
        mt_dump_tensor(dump, &p, "position_ids");
        mt_dump_tensor(dump, x, "inputs_embeds");
    }
    mt_tensor *out = f->forward(m, &ctx, &s->cache, x, pos, opts && opts->all_logits, dump);
    if (!out) return ctx_status(&ctx, err);
    s->rope_delta += delta;
    s->image_end = image_end;
    st = remember(s, ids, L, err);
    if (st) return st;
    int64_t V = m->desc.vocab_size;
    memcpy(s->logits, mt_f32(out) + (out->shape[0] - 1) * V, (size_t)V * sizeof(float));
    *logits = opts && opts->all_logits ? mt_f32(out) : s->logits;
    return MT_OK;
}

mt_status mt_session_decode(mt_session *s, int32_t token, const float **logits, mt_err *err) {
    const mt_model *m = s->model;
    if (token < 0 || token >= m->desc.vocab_size)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "token id %d is outside the vocabulary", token);
    if (s->cache.n_past >= s->cache.capacity)
        return mt_err_set(err, MT_ERR_LIMIT, "context full (%lld tokens)", (long long)s->cache.capacity);
    mt_arena_reset(&s->arena);
    mt_ctx ctx = {.arena = &s->arena, .pool = s->pool};
    int64_t p = s->cache.n_past + s->rope_delta, pos[3] = {p, p, p};
    mt_tensor *out = m->family->forward(m, &ctx, &s->cache, m->family->embed(m, &ctx, &token, 1), pos, false, NULL);
    if (!out) return ctx_status(&ctx, err);
    mt_status st = remember(s, &token, 1, err);
    if (st) return st;
    memcpy(s->logits, out->data, (size_t)m->desc.vocab_size * sizeof(float));
    *logits = s->logits;
    return MT_OK;
}

static bool is_eos(const mt_model *m, int32_t t) {
    for (size_t i = 0; i < m->desc.n_eos; i++)
        if (m->desc.eos_ids[i] == t) return true;
    return false;
}

int64_t mt_session_reuse_prefix(mt_session *s, const int32_t *ids, int64_t L, const mt_image_input *images, int n_images,
                            int *images_kept) {
    const mt_model *m = s->model;
    int64_t c = 0;
    while (c < s->n_history && c < L - 1 && s->history[c] == ids[c]) c++;
    int img = 0;
    for (int64_t i = 0; i < c;) {
        if (ids[i] != m->desc.image_token_id) {
            i++;
            continue;
        }
        int64_t span = img < n_images ? mt_image_token_count(m, images[img].grid) : 0;
        if (span == 0 || i + span > c) {
            c = i;
            break;
        }
        i += span;
        img++;
    }
    if (c < s->image_end) {
        c = 0;
        img = 0;
    }
    if (c == 0) mt_session_reset(s);
    s->cache.n_past = c;
    s->n_history = c;
    *images_kept = img;
    return c;
}

mt_status mt_session_generate(mt_session *s, const int32_t *ids, int64_t L, const mt_image_input *images,
                              int n_images, int64_t max_new, const mt_sampling *sampling, mt_token_fn on_token,
                              void *user, mt_gen_stats *stats, mt_err *err) {
    mt_sampler smp;
    mt_status st = mt_sampler_init(&smp, sampling, s->model->desc.vocab_size, err);
    if (st) return st;
    const float *logits;
    mt_gen_stats gs = {.prompt_tokens = L};
    for (int i = 0; i < n_images; i++) gs.image_tokens += mt_image_token_count(s->model, images[i].grid);
    double t0 = mt_time_now();
    int kept_images = 0;
    gs.reused_tokens = L > 0 ? mt_session_reuse_prefix(s, ids, L, images, n_images, &kept_images) : 0;
    st = mt_session_prefill(s, ids + gs.reused_tokens, L - gs.reused_tokens, images + kept_images,
                            n_images - kept_images, NULL, &logits, err);
    double t1 = mt_time_now();
    while (!st && gs.new_tokens < max_new) {
        int32_t tok = mt_sampler_pick(&smp, s->logits, s->history, s->n_history);
        gs.new_tokens++;
        if (is_eos(s->model, tok)) break;
        if (on_token && !on_token(user, tok)) break;
        if (gs.new_tokens < max_new) st = mt_session_decode(s, tok, &logits, err);
    }
    mt_sampler_release(&smp);
    gs.prefill_seconds = t1 - t0;
    gs.decode_seconds = mt_time_now() - t1;
    if (stats) *stats = gs;
    return st;
}

const mt_model *mt_session_model(const mt_session *s) { return s->model; }
