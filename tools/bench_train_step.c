/* tools/bench_train_step: see bench_train_step.h. */
#include "bench_train_step.h"

#include <string.h>

#include "base/json.h"
#include "models/assemble.h"
#include "tensor/autograd.h"
#include "train/optim.h"
#include "train/step.h"
#include "train/trainable.h"

#define IGNORE (-100)
#define MAX_BATCH MT_TRAIN_BENCH_MAX_BATCH

typedef mt_train_bench_opts opts;
typedef mt_train_bench_phases phases;

/* ---- the batch ---- */

typedef struct batch {
    int32_t *ids[MAX_BATCH], *labels[MAX_BATCH];
    int64_t n[MAX_BATCH], tokens, supervised, image_tokens;
    mt_image_grid grid;
    int64_t n_patches;
} batch;

static mt_status load_pixels(const mt_model *m, const opts *o, float **pixels, int64_t *n, mt_image_grid *grid,
                             mt_err *err) {
    mt_image img = {0};
    mt_status st = o->image ? mt_image_load(o->image, MT_IMAGE_DEFAULT_MAX_PIXELS, &img, err) : MT_OK;
    mt_image_input in;
    if (!st) st = mt_model_preprocess_image(m, o->image ? &img : o->picture, pixels, &in, err);
    if (!st) *n = in.n_patches, *grid = in.grid;
    mt_image_free(&img);
    return st;
}

static mt_status make_batch(const mt_model *m, const opts *o, batch *b, mt_err *err) {
    float *pixels = NULL;
    mt_status st = load_pixels(m, o, &pixels, &b->n_patches, &b->grid, err);
    mt_free(pixels);
    if (st) return st;
    int64_t n_image = mt_model_image_rows(m, b->grid);
    /* below every special id of the families benched (Qwen's start at 151643; the shipped tiny's at 449 of 512) */
    int64_t text_vocab = MT_MIN(150000, m->desc.vocab_size - 128);
    for (int k = 0; k < o->batch; k++) {
        int64_t n = o->user + 2 + n_image + o->assistant, at = 0;
        int32_t *ids = mt_malloc_array((size_t)n, sizeof *ids), *labels = mt_malloc_array((size_t)n, sizeof *labels);
        b->ids[k] = ids;
        b->labels[k] = labels;
        if (!ids || !labels) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
        for (int64_t i = 0; i < o->user; i++) ids[at++] = (int32_t)((1000003LL * (k + 1) + 7919LL * i) % text_vocab);
        ids[at++] = (int32_t)m->desc.vision_start_id;
        for (int64_t i = 0; i < n_image; i++) ids[at++] = (int32_t)m->desc.image_token_id;
        ids[at++] = (int32_t)m->desc.vision_end_id;
        int64_t masked = at;
        for (int64_t i = 0; i < o->assistant; i++)
            ids[at++] = (int32_t)((1000003LL * (k + 1) + 7919LL * (o->user + i)) % text_vocab);
        for (int64_t i = 0; i < n; i++) labels[i] = i < masked ? IGNORE : ids[i];
        b->n[k] = n;
        b->tokens += n;
        b->image_tokens += n_image;
        b->supervised += mt_train_sample_supervised(labels, n);
    }
    return MT_OK;
}

static void batch_free(batch *b) {
    for (int k = 0; k < MAX_BATCH; k++) {
        mt_free(b->ids[k]);
        mt_free(b->labels[k]);
    }
}

/* ---- work counted ---- */

static int64_t cfg_int(const cJSON *o, const char *key, int64_t dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : dflt;
}

/* (query, key) pairs x width of every vision block for one image, from config.json's vision_config. */
static double vision_pair_width(const char *model_dir, const batch *b) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", model_dir);
    cJSON *j = NULL;
    mt_err err;
    if (mt_json_parse_file(path, MT_JSON_MAX_FILE, &j, &err)) return 0;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "vision_config");
    int64_t depth = cfg_int(v, "depth", 0), width = cfg_int(v, "hidden_size", 0);
    int64_t ws = cfg_int(v, "window_size", 112) / cfg_int(v, "patch_size", 14); /* window side in patches */
    const cJSON *full = cJSON_GetObjectItemCaseSensitive(v, "fullatt_block_indexes");
    int64_t n_full = cJSON_IsArray(full) ? cJSON_GetArraySize(full) : depth;
    double h = (double)b->grid.h, w = (double)b->grid.w, p = h * w;
    double windowed = 0; /* windows of ws x ws patches, the last row and column cut short */
    for (int64_t y = 0; y < b->grid.h; y += ws)
        for (int64_t x = 0; x < b->grid.w; x += ws) {
            double c = (double)(MT_MIN(ws, b->grid.h - y) * MT_MIN(ws, b->grid.w - x));
            windowed += c * c;
        }
    cJSON_Delete(j);
    return (double)width * ((double)n_full * p * p + (double)(depth - n_full) * windowed) * (double)b->grid.t;
}

/* FLOPs of one step (see the header); executed: less the LM head's backward on rows without a label. */
static double step_flops(const mt_model *m, const opts *o, const batch *b, const mt_param *params, size_t n_params,
                         bool executed) {
    double rows_part[3] = {0, 0, 0}, fwd = 0, back = 0;
    rows_part[MT_PART_VISION] = (double)b->n_patches * o->batch;
    rows_part[MT_PART_PROJECTOR] = (double)mt_model_image_rows(m, b->grid) * o->batch;
    rows_part[MT_PART_LANGUAGE] = (double)b->tokens;
    bool tied = mt_weight_find(m, "lm_head.weight") == NULL;
    for (size_t i = 0; i < m->n_weights; i++) {
        const mt_weight *w = &m->weights[i];
        if (w->cols <= 1) continue;
        if (strstr(w->name, "embed_tokens") && !tied) continue; /* a lookup, no product */
        double f = 2.0 * (double)w->rows * (double)w->cols * rows_part[w->part];
        fwd += f;
        bool trained = false, grad_in = w->part == MT_PART_LANGUAGE || !o->lora;
        for (size_t k = 0; k < n_params; k++) trained |= params[k].data && !strcmp(params[k].name, w->name);
        back += (grad_in ? f : 0) + (trained ? f : 0);
        bool head = (tied && strstr(w->name, "embed_tokens")) || strstr(w->name, "lm_head");
        if (head && executed) /* only supervised rows carry a gradient: the others are skipped */
            back -= ((grad_in ? f : 0) + (trained ? f : 0)) * (1.0 - (double)b->supervised / (double)b->tokens);
    }
    if (o->lora) /* adapters A [r, in], B [out, r] on LM rows: forward, input and weight gradients */
        for (size_t k = 0; k < n_params; k++) fwd += 2.0 * (double)params[k].n * (double)b->tokens * 3.0;
    double pw_v = vision_pair_width(o->model, b) * o->batch, pw_t = 0;
    for (int k = 0; k < o->batch; k++)
        pw_t += (double)m->desc.hidden_size * (double)m->desc.n_layers * (double)b->n[k] * (double)(b->n[k] + 1) / 2;
    fwd += 4.0 * (pw_v + pw_t);
    back += 8.0 * ((o->lora ? 0 : pw_v) + pw_t);
    return fwd + back;
}

/* ---- the step ---- */

struct mt_train_bench {
    opts o;
    mt_model *m;
    mt_pool *pool;
    mt_trainable *tr;
    mt_param *params;
    size_t n_params;
    mt_adamw *opt;
    mt_tape *tape;
    mt_arena arena;
    batch b;
};

mt_status mt_train_bench_step(mt_train_bench *B, phases *ph, double *loss, mt_err *err) {
    const opts *o = &B->o;
    float *pixels[MAX_BATCH] = {0};
    int64_t n_patches[MAX_BATCH];
    mt_image_grid grids[MAX_BATCH];
    mt_status st = MT_OK;
    *ph = (phases){0};
    double t0 = mt_time_now();
    for (int k = 0; k < o->batch && !st; k++) st = load_pixels(B->m, o, &pixels[k], &n_patches[k], &grids[k], err);
    double t1 = mt_time_now();
    ph->data = t1 - t0;
    mt_trainable_zero_grad(B->tr);
    ph->optimizer = mt_time_now() - t1;
    mt_train_timing tm = {0};
    *loss = 0;
    for (int k = 0; k < o->batch && !st; k++) {
        mt_ctx ctx = {.arena = &B->arena, .pool = B->pool, .tape = B->tape};
        const float *px[1] = {pixels[k]};
        mt_train_sample s = {.ids = B->b.ids[k], .labels = B->b.labels[k], .n = B->b.n[k], .pixels = px,
                             .n_patches = &n_patches[k], .grids = &grids[k], .n_images = 1};
        double l = 0;
        st = mt_train_sample_run_timed(B->m, &ctx, &s, 1.0f / (float)B->b.supervised, &l, &tm, err);
        *loss += l;
        mt_tape_reset(B->tape);
        mt_arena_reset(&B->arena);
    }
    for (int k = 0; k < o->batch; k++) mt_free(pixels[k]);
    if (st) return st;
    t0 = mt_time_now();
    double norm;
    if ((st = mt_grad_clip_norm(B->params, B->n_params, 1.0, B->pool, &norm, err))) return st;
    mt_adamw_step(B->opt, 1.0, B->pool);
    ph->optimizer += mt_time_now() - t0;
    ph->vision = tm.vision;
    ph->lm = tm.lm;
    ph->loss = tm.loss;
    ph->backward = tm.backward;
    ph->total = ph->data + ph->vision + ph->lm + ph->loss + ph->backward + ph->optimizer;
    return MT_OK;
}

mt_status mt_train_bench_open(const opts *o, mt_pool *pool, mt_train_bench **out, mt_err *err) {
    *out = NULL;
    if (o->batch < 1 || o->batch > MAX_BATCH || o->user < 1 || o->assistant < 1 || (!o->image && !o->picture))
        return mt_err_set(err, MT_ERR_INVALID_ARG, "training bench: batch 1..%d, user and assistant ids >= 1, a picture",
                          MAX_BATCH);
    mt_train_bench *B = mt_calloc(1, sizeof *B);
    if (!B) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    B->o = *o;
    B->pool = pool;
    mt_arena_init(&B->arena, (size_t)64 << 20);
    mt_status st = mt_model_open(o->model, &B->m, err);
    if (!st) st = make_batch(B->m, o, &B->b, err);
    mt_train_spec spec = mt_train_spec_default();
    spec.vision = spec.projector = !o->lora;
    spec.language = true;
    if (o->lora) {
        spec.lora_rank = 16;
        spec.lora_alpha = 32.0f;
    }
    if (!st) st = mt_trainable_setup(B->m, &spec, &B->tr, err);
    if (!st) {
        B->params = mt_trainable_params(B->tr, &B->n_params);
        mt_adamw_config cfg = mt_adamw_config_default();
        cfg.n_groups = 3;
        for (int g = 0; g < 3; g++) cfg.groups[g] = (mt_adamw_group){1e-5, 0.01};
        st = mt_adamw_new(B->params, B->n_params, &cfg, &B->opt, err);
    }
    if (!st) st = mt_tape_new(&B->tape, err);
    if (st) {
        mt_train_bench_close(B);
        return st;
    }
    *out = B;
    return MT_OK;
}

mt_train_bench_info mt_train_bench_info_of(const mt_train_bench *B) {
    mt_train_bench_info in = {.tokens = B->b.tokens, .supervised = B->b.supervised,
                              .image_tokens = B->b.image_tokens, .weights = B->m->desc.weight_dtype};
    for (size_t i = 0; i < B->n_params; i++) in.trained_params += (size_t)B->params[i].n;
    in.flop = step_flops(B->m, &B->o, &B->b, B->params, B->n_params, false);
    in.executed = step_flops(B->m, &B->o, &B->b, B->params, B->n_params, true);
    return in;
}

void mt_train_bench_close(mt_train_bench *B) {
    if (!B) return;
    mt_tape_free(B->tape);
    mt_arena_free(&B->arena);
    mt_adamw_free(B->opt);
    mt_trainable_free(B->tr);
    batch_free(&B->b);
    mt_model_close(B->m);
    mt_free(B);
}
