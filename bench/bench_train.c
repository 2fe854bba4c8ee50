/* bench_train: training-step throughput, time split and peak memory of mitten's trainer on one batch, the figures
 * bench/bench_train_ref.py measures for PyTorch on the same model, data and batch (bench/bench_train.sh runs both
 * and prints the ratios; docs/PERFORMANCE.md, "Training", keeps the results).
 *
 *     bench_train MODEL_DIR IMAGE [--mode full|lora] [--threads T] [--batch B] [--steps S] [--warmup W]
 *                 [--user U] [--assistant A] [--json OUT]
 *
 * A step is what src/train/trainer.c does for one batch (one forward and backward per sample, gradients
 * accumulating), timed by phase:
 *
 *   | phase     | timed                                                                                     |
 *   |-----------|-------------------------------------------------------------------------------------------|
 *   | data      | image file decode + the model's processor (resize, normalise, patchify), per sample          |
 *   | vision    | token embeddings + encode_image (vision tower and merger) + scatter into the image rows   |
 *   | lm        | the language model to the logits of every row                                             |
 *   | loss      | cross-entropy over the vocabulary                                                         |
 *   | backward  | the autograd tape walked back                                                             |
 *   | optimizer | zero grads, clip to norm 1, AdamW (lr 1e-5, weight decay 0.01 on tensors of 2+ dims)      |
 *
 * full: every weight trained (vision tower, merger, language model; f32 masters). lora: rank 16, alpha 32, no
 * dropout, on every linear of the language model (PEFT's q/k/v/o/gate/up/down), the rest frozen in the checkpoint's
 * dtype. Sample k (as bench_train_ref.py builds it): U user ids (masked), <|vision_start|>, the image's merged
 * tokens, <|vision_end|>, A assistant ids (supervised); text id i of sample k = (1000003 (k + 1) + 7919 i) mod
 * 150000. Every sample carries the image.
 *
 * Work counted (FLOPs, 2 per multiply-add), for the share of the machine's peak (mt_roofline_measure, f32 FMA):
 * each matrix weight [rows, cols] times the rows it multiplies (patches for the vision tower, merged units for the
 * merger, tokens for the language model and the tied LM head): 2 forward, 2 more for the input gradient where one
 * flows back, 2 more for the weight gradient where it trains; LoRA adds its adapters the same way. Attention: 4 x
 * width x (query, key) pairs forward, 8 x backward (no recomputation counted). Norms, RoPE, activations, the loss
 * and the optimizer are left out. "step_gflop" counts the LM head's backward on every row, as a framework without
 * the zero-row skip does it; "executed_gflop" only on the supervised rows (what mitten runs), and the share of peak
 * uses that one.
 *
 * The figures are those of the fastest timed step (on a shared machine other processes only ever slow a step down).
 * Peak RSS is getrusage's ru_maxrss for the whole process (weights mapped from the file count once touched).
 *
 * Shape legend: N tokens of a sample, P patches of the image, V vocabulary, H text hidden.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "base/json.h"
#include "media/image.h"
#include "models/assemble.h"
#include "tensor/autograd.h"
#include "tensor/cpu/roofline.h"
#include "train/optim.h"
#include "train/step.h"
#include "train/trainable.h"

#define MAX_BATCH 64
#define IGNORE (-100)

typedef struct opts {
    const char *model, *image, *json;
    bool lora;
    int threads, batch, steps, warmup;
    int64_t user, assistant;
} opts;

typedef struct phases {
    double data, vision, lm, loss, backward, optimizer, total;
} phases;

static double peak_rss_mib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

static int usage(void) {
    fprintf(stderr, "usage: bench_train MODEL_DIR IMAGE [--mode full|lora] [--threads T] [--batch B] [--steps S]\n"
                    "                   [--warmup W] [--user U] [--assistant A] [--json OUT]\n");
    return 2;
}

static bool parse(int argc, char **argv, opts *o) {
    *o = (opts){.threads = 2, .batch = 2, .steps = 2, .warmup = 1, .user = 30, .assistant = 224};
    if (argc < 3) return false;
    o->model = argv[1];
    o->image = argv[2];
    for (int i = 3; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--mode") && (!strcmp(v, "full") || !strcmp(v, "lora"))) o->lora = !strcmp(v, "lora");
        else if (!strcmp(k, "--threads")) o->threads = atoi(v);
        else if (!strcmp(k, "--batch")) o->batch = atoi(v);
        else if (!strcmp(k, "--steps")) o->steps = atoi(v);
        else if (!strcmp(k, "--warmup")) o->warmup = atoi(v);
        else if (!strcmp(k, "--user")) o->user = atoll(v);
        else if (!strcmp(k, "--assistant")) o->assistant = atoll(v);
        else if (!strcmp(k, "--json")) o->json = v;
        else return false;
    }
    return (argc - 3) % 2 == 0 && o->threads >= 1 && o->batch >= 1 && o->batch <= MAX_BATCH && o->steps >= 1 &&
           o->warmup >= 0 && o->user >= 1 && o->assistant >= 1;
}

/* ---- the batch ---- */

typedef struct batch {
    int32_t *ids[MAX_BATCH], *labels[MAX_BATCH];
    int64_t n[MAX_BATCH], tokens, supervised, image_tokens;
    mt_image_grid grid;
    int64_t n_patches;
} batch;

static mt_status load_pixels(const mt_model *m, const char *path, float **pixels, int64_t *n, mt_image_grid *grid,
                             mt_err *err) {
    mt_image img = {0};
    mt_status st = mt_image_load(path, MT_IMAGE_DEFAULT_MAX_PIXELS, &img, err);
    mt_image_input in;
    if (!st) st = mt_model_preprocess_image(m, &img, pixels, &in, err);
    if (!st) *n = in.n_patches, *grid = in.grid;
    mt_image_free(&img);
    return st;
}

static mt_status make_batch(const mt_model *m, const opts *o, batch *b, mt_err *err) {
    float *pixels = NULL;
    mt_status st = load_pixels(m, o->image, &pixels, &b->n_patches, &b->grid, err);
    mt_free(pixels);
    if (st) return st;
    int64_t n_image = mt_model_image_rows(m, b->grid);
    for (int k = 0; k < o->batch; k++) {
        int64_t n = o->user + 2 + n_image + o->assistant, at = 0;
        int32_t *ids = mt_malloc_array((size_t)n, sizeof *ids), *labels = mt_malloc_array((size_t)n, sizeof *labels);
        b->ids[k] = ids;
        b->labels[k] = labels;
        if (!ids || !labels) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
        for (int64_t i = 0; i < o->user; i++) ids[at++] = (int32_t)((1000003LL * (k + 1) + 7919LL * i) % 150000);
        ids[at++] = (int32_t)m->desc.vision_start_id;
        for (int64_t i = 0; i < n_image; i++) ids[at++] = (int32_t)m->desc.image_token_id;
        ids[at++] = (int32_t)m->desc.vision_end_id;
        int64_t masked = at;
        for (int64_t i = 0; i < o->assistant; i++)
            ids[at++] = (int32_t)((1000003LL * (k + 1) + 7919LL * (o->user + i)) % 150000);
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

typedef struct bench {
    const opts *o;
    mt_model *m;
    mt_pool *pool;
    mt_trainable *tr;
    mt_param *params;
    size_t n_params;
    mt_adamw *opt;
    mt_tape *tape;
    mt_arena arena;
    batch b;
} bench;

static mt_status run_step(bench *B, phases *ph, double *loss, mt_err *err) {
    const opts *o = B->o;
    float *pixels[MAX_BATCH] = {0};
    int64_t n_patches[MAX_BATCH];
    mt_image_grid grids[MAX_BATCH];
    mt_status st = MT_OK;
    *ph = (phases){0};
    double t0 = mt_time_now();
    for (int k = 0; k < o->batch && !st; k++) st = load_pixels(B->m, o->image, &pixels[k], &n_patches[k], &grids[k], err);
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

static mt_status setup(bench *B, mt_err *err) {
    const opts *o = B->o;
    mt_status st = mt_pool_new(o->threads, &B->pool, err);
    if (!st) st = mt_model_open(o->model, &B->m, err);
    if (!st) st = make_batch(B->m, o, &B->b, err);
    if (st) return st;
    mt_train_spec spec = mt_train_spec_default();
    spec.vision = spec.projector = !o->lora;
    spec.language = true;
    if (o->lora) {
        spec.lora_rank = 16;
        spec.lora_alpha = 32.0f;
    }
    if ((st = mt_trainable_setup(B->m, &spec, &B->tr, err))) return st;
    B->params = mt_trainable_params(B->tr, &B->n_params);
    mt_adamw_config cfg = mt_adamw_config_default();
    cfg.n_groups = 3;
    for (int g = 0; g < 3; g++) cfg.groups[g] = (mt_adamw_group){1e-5, 0.01};
    if ((st = mt_adamw_new(B->params, B->n_params, &cfg, &B->opt, err))) return st;
    mt_arena_init(&B->arena, (size_t)64 << 20);
    return mt_tape_new(&B->tape, err);
}

static void teardown(bench *B) {
    mt_tape_free(B->tape);
    mt_arena_free(&B->arena);
    mt_adamw_free(B->opt);
    mt_trainable_free(B->tr);
    batch_free(&B->b);
    mt_model_close(B->m);
    mt_pool_free(B->pool);
}

static void print_json(FILE *f, const bench *B, const phases *ph, const double *losses, int n_losses,
                       double flops, double done, const mt_roofline *rf, double rss0, double rss_loaded) {
    const opts *o = B->o;
    size_t trained = 0;
    for (size_t i = 0; i < B->n_params; i++) trained += (size_t)B->params[i].n;
    fprintf(f, "{\n \"side\": \"mitten\",\n \"mode\": \"%s\",\n \"threads\": %d,\n \"isa\": \"%s\",\n", o->lora ? "lora" : "full",
            o->threads, mt_cpu_level_name(mt_cpu_level_get()));
    fprintf(f, " \"weights\": \"%s\",\n \"batch\": %d,\n \"tokens\": %lld,\n \"image_tokens\": %lld,\n",
            mt_dtype_name(B->m->desc.weight_dtype), o->batch, (long long)B->b.tokens, (long long)B->b.image_tokens);
    fprintf(f, " \"supervised\": %lld,\n \"trained_params\": %zu,\n \"steps\": %d,\n \"losses\": [",
            (long long)B->b.supervised, trained, o->steps);
    for (int i = 0; i < n_losses; i++) fprintf(f, "%s%.8f", i ? ", " : "", losses[i]);
    fprintf(f, "],\n \"time\": {\"data\": %.6f, \"vision\": %.6f, \"lm\": %.6f, \"loss\": %.6f, \"backward\": %.6f, "
               "\"optimizer\": %.6f, \"total\": %.6f},\n", ph->data, ph->vision, ph->lm, ph->loss,
            ph->backward, ph->optimizer, ph->total);
    fprintf(f, " \"tokens_per_s\": %.3f,\n \"samples_per_s\": %.4f,\n \"step_gflop\": %.2f,\n \"gflops\": %.2f,\n",
            (double)B->b.tokens / ph->total, o->batch / ph->total, flops / 1e9, flops / ph->total / 1e9);
    fprintf(f, " \"executed_gflop\": %.2f,\n \"executed_gflops\": %.2f,\n", done / 1e9, done / ph->total / 1e9);
    fprintf(f, " \"peak_gflops\": %.2f,\n \"share_of_peak\": %.4f,\n", rf->f32_gflops,
            done / ph->total / 1e9 / rf->f32_gflops);
    fprintf(f, " \"rss_start_mib\": %.1f,\n \"rss_loaded_mib\": %.1f,\n \"peak_rss_mib\": %.1f\n}\n", rss0, rss_loaded,
            peak_rss_mib());
}

int main(int argc, char **argv) {
    opts o;
    if (!parse(argc, argv, &o)) return usage();
    double rss0 = peak_rss_mib();
    bench B = {.o = &o};
    mt_err err = {0};
    mt_roofline rf = {0};
    mt_status st = setup(&B, &err);
    if (!st) st = mt_roofline_measure(B.pool, 0, &rf, &err);
    double rss_loaded = peak_rss_mib();
    double losses[256];
    int n_losses = 0;
    phases best = {0};
    for (int i = 0; i < o.warmup + o.steps && !st; i++) {
        phases ph;
        double loss;
        if ((st = run_step(&B, &ph, &loss, &err))) break;
        if (n_losses < 256) losses[n_losses++] = loss;
        fprintf(stderr, "mitten step %d: loss %.6f  %.2f s (data %.2f vision %.2f lm %.2f loss %.2f backward %.2f "
                        "optimizer %.2f)\n", i + 1, loss, ph.total, ph.data, ph.vision, ph.lm, ph.loss, ph.backward,
                ph.optimizer);
        if (i >= o.warmup && (i == o.warmup || ph.total < best.total)) best = ph;
    }
    if (st) {
        fprintf(stderr, "bench_train: %s\n", err.msg);
        teardown(&B);
        return 1;
    }
    double flops = step_flops(B.m, &o, &B.b, B.params, B.n_params, false);
    double done = step_flops(B.m, &o, &B.b, B.params, B.n_params, true);
    print_json(stdout, &B, &best, losses, n_losses, flops, done, &rf, rss0, rss_loaded);
    if (o.json) {
        FILE *f = fopen(o.json, "w");
        if (f) {
            print_json(f, &B, &best, losses, n_losses, flops, done, &rf, rss0, rss_loaded);
            fclose(f);
        }
    }
    teardown(&B);
    return 0;
}
