/* engine/session: a conversation as one sequence of a KV memory, and the prefill / decode steps over the model's
 * batch-first forward. */
#include "engine/session.h"

#include <stdio.h>
#include <string.h>

struct mt_session {
    const mt_model *model;
    mt_pool *pool;
    mt_arena arena;
    mt_kv *kv;
    int seq;
    int64_t capacity;  /* context limit in tokens */
    float *logits;     /* the last step's logits [V] */
    int32_t *history;  /* every token so far, for the repetition penalty and prefix reuse */
    int64_t *next_pos; /* next_pos[i]: the position that follows token i (M-RoPE compresses image spans) */
    int64_t n_history, cap_history;
    uint64_t *image_hash; /* mt_image_input_hash of each image in history, in order */
    int n_images, cap_images;
    mt_chat_media *chat_media;
};

mt_status mt_session_new(const mt_model *m, const mt_session_params *p, mt_session **out, mt_err *err) {
    mt_status st = p ? mt_model_check_context(m, p->n_ctx, err) : MT_OK;
    if (st) return st;
    mt_session *s = mt_calloc(1, sizeof *s);
    if (!s) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    s->model = m;
    mt_arena_init(&s->arena, (size_t)64 << 20);
    s->capacity = p && p->n_ctx > 0 ? p->n_ctx : 4096;
    if (s->capacity > m->desc.max_positions) s->capacity = m->desc.max_positions;
    st = mt_pool_new(p ? p->n_threads : 0, &s->pool, err);
    if (!st) st = mt_model_kv_new(m, 1, s->capacity, &s->kv, err);
    if (!st) st = mt_kv_seq_new(s->kv, &s->seq, err);
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
    mt_kv_free(s->kv);
    mt_arena_free(&s->arena);
    mt_pool_free(s->pool);
    mt_free(s->logits);
    mt_free(s->history);
    mt_free(s->next_pos);
    mt_free(s->image_hash);
    mt_chat_media_free(s->chat_media);
    mt_free(s);
}

/* Keeps the first n tokens, which hold the first n_images images. */
static void truncate_to(mt_session *s, int64_t n, int n_images) {
    mt_kv_seq_truncate(s->kv, s->seq, n);
    s->n_history = n;
    s->n_images = n_images;
}

void mt_session_reset(mt_session *s) {
    truncate_to(s, 0, 0);
    mt_chat_media_free(s->chat_media);
    s->chat_media = NULL;
}

static mt_status remember_images(mt_session *s, const mt_image_input *images, int n, mt_err *err) {
    if (s->n_images + n > s->cap_images) {
        int cap = MT_MAX(s->cap_images * 2, s->n_images + n + 4);
        uint64_t *h = mt_realloc(s->image_hash, (size_t)cap * sizeof *h);
        if (!h) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
        s->image_hash = h;
        s->cap_images = cap;
    }
    for (int i = 0; i < n; i++) s->image_hash[s->n_images++] = mt_image_input_hash(&images[i]);
    return MT_OK;
}

int64_t mt_session_n_past(const mt_session *s) { return s->n_history; }

static int64_t position_now(const mt_session *s) { return s->n_history ? s->next_pos[s->n_history - 1] : 0; }

/* Appends ids with the positions that follow each of them. */
static mt_status remember(mt_session *s, const int32_t *ids, const int64_t *follow, int64_t n, mt_err *err) {
    if (s->n_history + n > s->cap_history) {
        int64_t cap = MT_MAX(s->cap_history * 2, s->n_history + n + 256);
        int32_t *h = mt_realloc(s->history, (size_t)cap * sizeof(int32_t));
        if (h) s->history = h;
        int64_t *p = h ? mt_realloc(s->next_pos, (size_t)cap * sizeof(int64_t)) : NULL;
        if (!p) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
        s->next_pos = p;
        s->cap_history = cap;
    }
    memcpy(s->history + s->n_history, ids, (size_t)n * sizeof(int32_t));
    memcpy(s->next_pos + s->n_history, follow, (size_t)n * sizeof(int64_t));
    s->n_history += n;
    return MT_OK;
}

static mt_status ctx_status(mt_ctx *ctx, mt_err *err) {
    if (err) *err = ctx->err;
    return ctx->status ? ctx->status : MT_ERR_INTERNAL;
}

mt_status mt_session_prefill(mt_session *s, const int32_t *ids, int64_t L, const mt_image_input *images,
                             int n_images, const mt_prefill_opts *opts, const float **logits, mt_err *err) {
    const mt_model *m = s->model;
    if (L <= 0) return mt_err_set(err, MT_ERR_INVALID_ARG, "empty prompt");
    if (n_images < 0 || n_images > 4096) return mt_err_set(err, MT_ERR_LIMIT, "%d images is too many", n_images);
    if (s->n_history + L > s->capacity)
        return mt_err_set(err, MT_ERR_CONTEXT, "a prompt of %lld tokens does not fit the %lld-token context%s",
                          (long long)(s->n_history + L), (long long)s->capacity,
                          s->capacity < m->desc.max_positions ? "" : " (the model's maximum)");
    for (int64_t i = 0; i < L; i++)
        if (ids[i] < 0 || ids[i] >= m->desc.vocab_size)
            return mt_err_set(err, MT_ERR_INVALID_ARG, "token id %d at position %lld is outside the vocabulary [0, %lld)",
                              ids[i], (long long)i, (long long)m->desc.vocab_size);
    for (int i = 0; i < n_images; i++) {
        mt_image_grid g = images[i].grid;
        const char *what = images[i].video ? "video" : "image";
        if (images[i].n_patches != g.t * g.h * g.w)
            return mt_err_set(err, MT_ERR_INVALID_ARG, "%s %d: grid %lldx%lldx%lld does not fit %lld patches", what,
                              i + 1, (long long)g.t, (long long)g.h, (long long)g.w, (long long)images[i].n_patches);
        int32_t *expansion; /* the processor checks the grid and says what is wrong with it */
        int64_t n_exp;
        if (mt_model_input_tokens(m, &images[i], &expansion, &n_exp, err))
            return mt_err_prefix(err, "%s %d", what, i + 1);
        mt_free(expansion);
    }
    mt_arena_reset(&s->arena);
    mt_ctx ctx = {.arena = &s->arena, .pool = s->pool};
    const mt_dump *dump = opts ? opts->dump : NULL;
    int axes = m->desc.pos_axes;
    int64_t *pos = mt_arena_alloc(&s->arena, (size_t)(L * axes) * sizeof(int64_t));
    int64_t *follow = mt_arena_alloc(&s->arena, (size_t)L * sizeof(int64_t));
    if (!pos || !follow) return mt_err_set(err, MT_ERR_NOMEM, "out of memory for %lld positions", (long long)L);
    int64_t next;
    mt_status st = mt_model_positions(m, ids, L, images, n_images, position_now(s), pos, &next, err);
    if (st) return st;
    /* the position after token i: one past the largest so far (the last token's is the prompt's next) */
    for (int64_t i = 0, hi = position_now(s) - 1; i < L; i++) {
        for (int a = 0; a < axes; a++) hi = MT_MAX(hi, pos[a * L + i]);
        follow[i] = hi + 1;
    }
    follow[L - 1] = next;
    if (dump && dump->fn) {
        mt_tensor p = mt_tensor_wrap(MT_I64, 2, (int64_t[]){axes, L}, pos);
        mt_dump_tensor(dump, &p, "position_ids");
    }
    mt_batch b;
    if ((st = mt_model_assemble(m, &ctx, ids, L, images, n_images, pos, dump, &b, err))) return st;
    mt_tensor *h = mt_model_forward(m, &ctx, s->kv, &b, dump);
    bool all = opts && opts->all_logits;
    int64_t last = L - 1;
    mt_tensor *out = h ? mt_model_logits(m, &ctx, h, all ? NULL : &last, all ? L : 1) : NULL;
    if (!out) return ctx_status(&ctx, err);
    if ((st = remember(s, ids, follow, L, err)) || (st = remember_images(s, images, n_images, err))) return st;
    int64_t V = m->desc.vocab_size;
    memcpy(s->logits, mt_f32(out) + (out->shape[0] - 1) * V, (size_t)V * sizeof(float));
    *logits = all ? mt_f32(out) : s->logits;
    return MT_OK;
}

mt_status mt_session_decode(mt_session *s, int32_t token, const float **logits, mt_err *err) {
    const mt_model *m = s->model;
    if (token < 0 || token >= m->desc.vocab_size)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "token id %d is outside the vocabulary", token);
    if (s->n_history >= s->capacity)
        return mt_err_set(err, MT_ERR_LIMIT, "context full (%lld tokens)", (long long)s->capacity);
    mt_arena_reset(&s->arena);
    mt_ctx ctx = {.arena = &s->arena, .pool = s->pool};
    int64_t p = position_now(s), pos[MT_POS_AXES] = {p, p, p}, follow = p + 1;
    mt_batch b = {.n = 1, .embeds = mt_model_embed(m, &ctx, &token, 1), .pos = pos};
    mt_tensor *h = mt_model_forward(m, &ctx, s->kv, &b, NULL);
    mt_tensor *out = h ? mt_model_logits(m, &ctx, h, NULL, 1) : NULL;
    if (!out) return ctx_status(&ctx, err);
    mt_status st = remember(s, &token, &follow, 1, err);
    if (st) return st;
    memcpy(s->logits, out->data, (size_t)m->desc.vocab_size * sizeof(float));
    *logits = s->logits;
    return MT_OK;
}

int64_t mt_session_reuse_prefix(mt_session *s, const int32_t *ids, int64_t L, const mt_image_input *images, int n_images,
                                int *images_kept) {
    const mt_model *m = s->model;
    int64_t c = 0;
    while (c < s->n_history && c < L - 1 && s->history[c] == ids[c]) c++;
    int img = 0;
    for (int64_t i = 0; i < c;) {
        bool image = ids[i] == m->desc.image_token_id && m->desc.image_token_id >= 0;
        bool video = ids[i] == m->desc.video_row_id && m->desc.video_row_id >= 0;
        if (!image && !video) {
            i++;
            continue;
        }
        if (image && video) video = img < n_images && images[img].video; /* InternVL: frames are image rows */
        int64_t span = img < n_images && images[img].video == video ? mt_model_input_rows(m, &images[img]) : 0;
        /* equal tokens say the image had the same size; only its pixels say it is the same image */
        bool same = span > 0 && img < s->n_images && s->image_hash[img] == mt_image_input_hash(&images[img]);
        /* the input ends after its span-th row: a Qwen3-VL video has timestamp text between its frames' rows */
        int64_t end = i;
        for (int64_t rows = 0; rows < span && end < L; end++) rows += ids[end] == ids[i];
        if (!same || end > c) {
            c = i;
            break;
        }
        i = end;
        img++;
    }
    truncate_to(s, c, img);
    *images_kept = img;
    return c;
}

mt_status mt_session_generate(mt_session *s, const int32_t *ids, int64_t L, const mt_image_input *images,
                              int n_images, int64_t max_new, const mt_sampling *sampling, mt_token_fn on_token,
                              void *user, mt_gen_stats *stats, mt_err *err) {
    mt_sampler smp;
    mt_sampling sm = *sampling;
    if (sm.seed == MT_SEED_RANDOM) sm.seed = mt_sampler_draw_seed();
    mt_status st = mt_sampler_init(&smp, &sm, s->model->desc.vocab_size, err);
    if (st) return st;
    const float *logits;
    mt_gen_stats gs = {.prompt_tokens = L, .seed = sm.seed, .stop = MT_STOP_MAX_TOKENS, .eos_token = -1};
    for (int i = 0; i < n_images; i++) gs.image_tokens += MT_MAX(0, mt_model_input_rows(s->model, &images[i]));
    double t0 = mt_time_now();
    int kept_images = 0;
    gs.reused_tokens = L > 0 ? mt_session_reuse_prefix(s, ids, L, images, n_images, &kept_images) : 0;
    st = mt_session_prefill(s, ids + gs.reused_tokens, L - gs.reused_tokens, images + kept_images,
                            n_images - kept_images, NULL, &logits, err);
    smp.output_start = s->n_history;
    double t1 = mt_time_now();
    while (!st && gs.new_tokens < max_new) {
        int32_t tok = mt_sampler_pick(&smp, s->logits, s->history, s->n_history);
        gs.new_tokens++;
        if (mt_model_is_eos(s->model, tok)) {
            gs.stop = MT_STOP_EOS;
            gs.eos_token = tok;
            break;
        }
        if (on_token && !on_token(user, tok)) {
            gs.stop = MT_STOP_CALLER;
            break;
        }
        if (gs.new_tokens < max_new && s->n_history >= s->capacity) {
            gs.stop = MT_STOP_CONTEXT; /* the answer so far stands; the caller says so */
            break;
        }
        if (gs.new_tokens < max_new) st = mt_session_decode(s, tok, &logits, err);
    }
    mt_sampler_release(&smp);
    gs.prefill_seconds = t1 - t0;
    gs.decode_seconds = mt_time_now() - t1;
    if (stats) *stats = gs;
    return st;
}

const mt_model *mt_session_model(const mt_session *s) { return s->model; }

mt_chat_media **mt_session_chat_media(mt_session *s) { return &s->chat_media; }
