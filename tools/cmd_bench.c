/* mitten bench: how fast this build runs a model on this machine, each figure as a share of what the machine can
 * do (mt_roofline_measure: peak FMA and bf16 throughput, memory read bandwidth). docs/PERFORMANCE.md keeps results.
 *
 * Phases (each after a warm-up run; the cheap ones report the best of a few repetitions):
 *
 *   | phase   | timed                                         | work, FLOPs (2 per multiply-add)       | share of  |
 *   |---------|-----------------------------------------------|----------------------------------------|-----------|
 *   | vision  | the vision tower on a random picture          | 2 N Pv + 2 (N / m^2) Pm + 4 E pairs    | bf16 peak |
 *   | prefill | mt_session_prefill of L random ids, no image  | 2 L Pt + 2 V H + 4 Q L (L + 1) / 2     | bf16 peak |
 *   | decode  | D mt_session_decode steps after the prefill   | per token 2 (Pt + V H) + 4 Q (p + 1)   | read bw   |
 *   | batch   | D steps of n sequences in one forward each    | per step n x decode's, weights once    | read bw   |
 *   | linear  | mt_cpu_linear on the model's own weights; the | 2 M N K                                | both      |
 *   |         | text ones at M = 1 also as Q8_0 and Q4_K      |                                        |           |
 *
 *   N patches of the image, Pv matrix parameters a patch passes through (patch embedding and vision blocks), Pm the
 *   merger's matrix parameters (once per merged unit of m x m patches), E vision heads x head dim, pairs the
 *   (query, key) pairs attention visits summed over blocks (the whole image in full-attention blocks, each window
 *   in the others), Pt matrix parameters of the text layers, V H the LM head (prefill computes the last row's
 *   logits only), Q text query heads x head dim summed over the layers, p the cache position of the decoded
 *   token. Norms, RoPE, biases and activations are left out: they are under 1% of the work.
 *   Decode bytes per token: the text layers' weights + the LM head + the KV cache rows attention reads,
 *   layers (p + 1) (k_width + v_width) x 4 (the cache is f32). M = 1 linears rotate through every layer's copy of the weight,
 *   so each call reads from DRAM as decoding does.
 *
 * The parameter groups are the model's parts (mt_model_part_of: vision tower, projector, language) and "layers." in
 * the language part; position and class-token tables are looked up, not multiplied, and count nothing. Towers that
 * take tiles (InternViT) encode each tile on its own with a class token: N is per tile, E pairs count the tile's
 * patches + 1, and the whole is times the tiles. Peak RSS per phase comes from VmHWM, reset before the phase
 * through /proc/self/clear_refs, and is checked against weights + KV cache + 1 GiB.
 *
 * --shape NAME benchmarks a cached random checkpoint of a named shape (tools/bench_shape.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "base/file.h"
#include "base/json.h"
#include "bench_batch.h"
#include "bench_rollout.h"
#include "bench_int.h"
#include "bench_shape.h"
#include "cli.h"
#include "engine/session.h"
#include "tensor/cpu/cpu.h"
#include "tensor/cpu/roofline.h"
#include "tensor/quant.h"
#include "bench_torch.h"
#include "bench_train_step.h"

static const char usage[] =
    "usage: mitten bench [-m DIR | -m F.gguf [--mmproj P.gguf] | --shape NAME [--dir DIR]] [--threads N]\n"
    "                    [--skip-vision] [--skip-linears] [--prefill N] [--decode N] [--train full|lora [--torch]]\n"
    "                    [--video F] [--mmap] [--json]\n\n"
    "Times vision encoding of a 448x448 and an 896x896 image (InternVL: one 448 tile, and a 3:2 picture that\n"
    "becomes 6 tiles + a thumbnail), a prefill of N tokens (512), decoding M tokens (128) and linears on the\n"
    "model's weights, each against this machine's measured limits. --shape qwen2.5-vl-3b or internvl3-1b uses\n"
    "random weights of that shape, cached in $XDG_CACHE_HOME/mitten/shapes (or --dir) and made on first use.\n"
    "A GGUF file is timed with its weights as stored (quantized types too), its vision part from --mmproj.\n"
    "--train adds one training step of a checkpoint folder (2 samples of 30 user ids, a 448x448 picture and 224\n"
    "supervised ids; full: every weight, f32 masters; lora: rank 16 on the language model), and --torch the same\n"
    "step in PyTorch (bench/bench_train_ref.py, python3-torch) on the same model and threads, for the ratio.\n"
    "--video F adds the decoding and sampling of a video file as the processor does by default (its target: a\n"
    "minute of 720p H.264 in under 2 s), and the vision encode of its first 2 temporal groups of frames.\n"
    "Rollouts (GRPO): 8 sampled answers of M/8 tokens to one prompt, batched, against the same 8 one by one.\n"
    "--mmap reads the weights in place from the file, as mitten run --mmap does, instead of copying them.\n";


#define MAX_ROTATE 256
#define GiB (1024.0 * 1024.0 * 1024.0)

/* ---- machine and process facts ---- */

/* The source tree this binary was built from (for the commit and the checkpoint generator). */
static void source_dir(char *buf, size_t cap) { snprintf(buf, cap, "%s", MT_SOURCE_DIR); }

static void read_command(const char *cmd, char *out, size_t cap) {
    snprintf(out, cap, "unknown");
    FILE *p = popen(cmd, "r");
    if (!p) return;
    if (fgets(out, (int)cap, p)) out[strcspn(out, "\n")] = 0;
    else snprintf(out, cap, "unknown");
    pclose(p);
}

static void commit_of(const char *src, char *out, size_t cap) {
    char cmd[4400];
    snprintf(cmd, sizeof cmd,
             "cd '%s' 2>/dev/null && git rev-parse --short HEAD 2>/dev/null | tr -d '\\n' && "
             "(git diff --quiet HEAD 2>/dev/null || printf -- -dirty)", src);
    read_command(cmd, out, cap);
}

static void cpu_model(char *out, size_t cap) {
    read_command("sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1", out, cap);
}

/* Bytes of a "VmHWM:"-style line of /proc/self/status, 0 when unreadable. */
static double proc_status_bytes(const char *key) {
    char line[256];
    double kb = 0;
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, key, strlen(key)) == 0) kb = atof(line + strlen(key));
    if (f) fclose(f);
    return kb * 1024.0;
}

/* Makes VmHWM start again from the current RSS (Linux >= 4.0), so each phase gets its own peak. */
static void reset_peak_rss(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (f) fputs("5", f), fclose(f);
}

static double cpu_seconds(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru)) return 0;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* Starts a figure's process counters; finish_figure reads them. */
typedef struct span {
    double wall, cpu;
} span;

static span start_figure(void) {
    reset_peak_rss();
    return (span){mt_time_now(), cpu_seconds()};
}

static void finish_figure(const bench *b, figure *f, span s) {
    f->peak_rss = proc_status_bytes("VmHWM:");
    f->cpu = (cpu_seconds() - s.cpu) / ((mt_time_now() - s.wall) * b->rf.threads);
}

/* ---- the work model ---- */

static bool ends_with(const char *s, const char *tail) {
    size_t a = strlen(s), b = strlen(tail);
    return a >= b && strcmp(s + a - b, tail) == 0;
}

/* A learned table read by index rather than multiplied: no matrix work. */
static bool is_lookup_table(const char *name) {
    static const char *const keys[] = {"position_embedding", "pos_embed", "class_embedding", "cls_token"};
    for (size_t i = 0; i < MT_ARRAY_LEN(keys); i++)
        if (strstr(name, keys[i])) return true;
    return false;
}

static mt_status work_model_init(const mt_model *m, work_model *w, mt_err *err) {
    const mt_st_tensor *head = NULL, *embed = NULL;
    for (size_t i = 0; i < mt_safetensors_count(m->st); i++) {
        const mt_st_tensor *t = mt_safetensors_at(m->st, i);
        if (t->ndim < 2) continue;
        double n = 1;
        for (int d = 0; d < t->ndim; d++) n *= (double)t->shape[d];
        mt_model_part part = mt_model_part_of(m, t->name);
        if (part == MT_PART_PROJECTOR) {
            w->vis_unit_params += n;
        } else if (part == MT_PART_VISION) {
            if (is_lookup_table(t->name)) continue;
            *(strstr(t->name, "patch_embed") ? &w->vis_embed_params : &w->vis_patch_params) += n;
            /* the first block's query width: fused qkv (Qwen, original InternViT) or q_proj (InternViT in HF) */
            if (!w->vis_width && ends_with(t->name, "0.attn.qkv.weight")) w->vis_width = (double)t->shape[0] / 3;
            if (!w->vis_width && ends_with(t->name, "0.attention.q_proj.weight")) w->vis_width = (double)t->shape[0];
        } else if (strstr(t->name, "layers.")) {
            w->text_params += n;
            w->text_bytes += (double)t->nbytes;
            if (ends_with(t->name, "self_attn.q_proj.weight")) w->q_width += (double)t->shape[0];
        } else if (ends_with(t->name, "lm_head.weight")) {
            head = t;
        } else if (ends_with(t->name, "embed_tokens.weight")) {
            embed = t;
        }
    }
    if (!head) head = embed;
    if (head) w->head_params = (double)head->shape[0] * (double)head->shape[1], w->head_bytes = (double)head->nbytes;

    char path[4400];
    snprintf(path, sizeof path, "%s/config.json", m->dir);
    cJSON *cfg = NULL;
    mt_status st = mt_json_parse_file(path, MT_JSON_MAX_FILE, &cfg, err);
    if (st) return st;
    const cJSON *vc = cJSON_GetObjectItemCaseSensitive(cfg, "vision_config");
    int64_t window = 0, full[512];
    size_t n_full = 0;
    double ratio = 0;
    w->patch = 14, w->merge = 2, w->depth = 0;
    bool tiled = m->comp && m->comp->vision && m->comp->vision->tiles_input;
    if (cJSON_IsObject(vc) && tiled) {
        /* InternViT: a class token per tile, every block attends within its tile; pixel shuffle by 1 / ratio */
        int64_t side = 448;
        const cJSON *ps = cJSON_GetObjectItemCaseSensitive(vc, "patch_size");
        if (cJSON_IsArray(ps)) ps = cJSON_GetArrayItem(ps, 0); /* HF: [14, 14] */
        w->patch = cJSON_IsNumber(ps) && ps->valuedouble >= 1 && ps->valuedouble <= 1024 ? (int64_t)ps->valuedouble : 14;
        const cJSON *is = cJSON_GetObjectItemCaseSensitive(vc, "image_size");
        if (cJSON_IsArray(is)) is = cJSON_GetArrayItem(is, 0);
        if (cJSON_IsNumber(is) && is->valuedouble >= 1 && is->valuedouble <= 1 << 16) side = (int64_t)is->valuedouble;
        st = mt_json_int_opt(cfg, "force_image_size", path, 1, 1 << 16, &side, err);
        if (!st) st = mt_json_int_opt(vc, "num_hidden_layers", path, 0, 512, &w->depth, err);
        if (!st) st = mt_json_num_opt(cfg, "downsample_ratio", path, 0.01, 1, &ratio, err);
        w->tile = side, w->cls = 1;
        w->merge = ratio > 0 ? (int64_t)(1 / ratio + 0.5) : 2;
    } else if (cJSON_IsObject(vc)) {
        st = mt_json_int_opt(vc, "patch_size", path, 1, 1024, &w->patch, err);
        if (!st) st = mt_json_int_opt(vc, "spatial_merge_size", path, 1, 64, &w->merge, err);
        if (!st) st = mt_json_int_opt(vc, "depth", path, 0, 512, &w->depth, err);
        if (!st) st = mt_json_int_opt(vc, "window_size", path, 0, 1 << 16, &window, err);
        if (!st) st = mt_json_int_array_opt(vc, "fullatt_block_indexes", path, 0, 511, full, 512, &n_full, err);
    }
    cJSON_Delete(cfg);
    if (st) return st;
    w->window_units = window / MT_MAX(1, w->merge * w->patch);
    w->full_blocks = w->window_units ? (int64_t)n_full : w->depth;
    if (!w->text_params || !w->q_width || !w->head_params)
        return mt_err_set(err, MT_ERR_UNSUPPORTED, "%s: no Qwen2-style text layers found to count the work of", m->dir);
    return MT_OK;
}

/* (query, key) pairs of one block that attends within windows of window_units^2 merged units of an h x w grid. */
static double window_pairs(const work_model *w, int64_t gh, int64_t gw) {
    int64_t lh = gh / w->merge, lw = gw / w->merge, ws = w->window_units, m2 = w->merge * w->merge;
    double pairs = 0;
    for (int64_t r = 0; r < lh; r += ws)
        for (int64_t c = 0; c < lw; c += ws) {
            double n = (double)(MT_MIN(ws, lh - r) * MT_MIN(ws, lw - c) * m2);
            pairs += n * n;
        }
    return pairs;
}

/* An image of t tiles (1 for towers that take the whole image) of gh x gw patches each. */
static double vision_flop(const work_model *w, int64_t t, int64_t gh, int64_t gw) {
    double n = (double)(gh * gw), tokens = n + (double)w->cls, m2 = (double)(w->merge * w->merge);
    double pairs = (double)w->full_blocks * tokens * tokens;
    if (w->window_units) pairs += (double)(w->depth - w->full_blocks) * window_pairs(w, gh, gw);
    return (double)t * (2 * n * w->vis_embed_params + 2 * tokens * w->vis_patch_params +
                        2 * (n / m2) * w->vis_unit_params + 4 * w->vis_width * pairs);
}

/* ---- phases ---- */

static figure *add_figure(bench *b, const char *unit, bool mem_bound, double target, const char *fmt, ...)
    MT_PRINTF(5, 6);
static figure *add_figure(bench *b, const char *unit, bool mem_bound, double target, const char *fmt, ...) {
    static figure spare;
    figure *f = b->n_fig < MAX_FIGURES ? &b->fig[b->n_fig++] : &spare;
    *f = (figure){.unit = unit, .mem_bound = mem_bound, .target = target};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->name, sizeof f->name, fmt, ap);
    va_end(ap);
    fprintf(stderr, "mitten bench: %s\n", f->name);
    return f;
}

static void fill_random(float *x, int64_t n, uint32_t seed) {
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)(seed >> 8) / (float)(1u << 23) - 1.0f;
    }
}

/* One encode of a width x height image; *seconds gets the time and *grid the processor's grid (tiles or frames,
 * patches high, patches wide). The arena is reset afterwards. */
static mt_status encode_once(bench *b, mt_arena *arena, int64_t width, int64_t height, double *seconds,
                             mt_image_grid *grid, mt_err *err) {
    const mt_model *m = b->m;
    /* a noise picture of exactly width x height, made into pixels by the model's own processor */
    mt_image img = {.width = width, .height = height, .rgb = mt_malloc_array((size_t)(width * height), 3)};
    if (!img.rgb) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    uint32_t seed = (uint32_t)width;
    for (int64_t i = 0; i < width * height * 3; i++) img.rgb[i] = (uint8_t)((seed = seed * 1103515245u + 12345u) >> 16);
    float *px = NULL;
    mt_image_input in;
    mt_status st = mt_model_preprocess_image(m, &img, &px, &in, err);
    mt_image_free(&img);
    if (st) return st;
    *grid = in.grid;
    mt_ctx ctx = {.arena = arena, .pool = b->pool};
    double t0 = mt_time_now();
    mt_tensor *y = mt_model_encode_image(m, &ctx, &in, NULL);
    *seconds = mt_time_now() - t0;
    mt_free(px);
    mt_arena_reset(arena);
    if (!y) {
        if (err) *err = ctx.err;
        return ctx.status ? ctx.status : MT_ERR_INTERNAL;
    }
    return MT_OK;
}

/* Qwen: 448x448 and 896x896. Tiled towers: one tile, and a 3:2 picture of 3 x 2 tiles, which InternVL's
 * processors cut into 6 tiles and a thumbnail. */
static mt_status bench_vision(bench *b, mt_err *err) {
    int64_t T = b->w.tile;
    const int64_t sizes[2][2] = {{T ? T : 448, T ? T : 448}, {T ? 3 * T : 896, T ? 2 * T : 896}};
    mt_arena arena;
    mt_arena_init(&arena, (size_t)64 << 20);
    double t;
    mt_image_grid g;
    int64_t small = 4 * b->w.patch * b->w.merge;
    mt_status st = encode_once(b, &arena, small, small, &t, &g, err); /* warm-up: a small image */
    for (size_t i = 0; i < MT_ARRAY_LEN(sizes) && !st; i++) {
        int64_t w = sizes[i][0], h = sizes[i][1];
        figure *f = add_figure(b, "img", false, 0.40, "vision %lldx%lld", (long long)w, (long long)h);
        f->count = 1;
        f->seconds = 1e30;
        span sp = start_figure();
        double spent = 0;
        for (int rep = 0; rep < 3 && !st && (rep == 0 || spent + f->seconds < 8); rep++) {
            st = encode_once(b, &arena, w, h, &t, &g, err);
            f->seconds = MT_MIN(f->seconds, t);
            spent += t;
        }
        finish_figure(b, f, sp);
        if (st) break;
        int64_t n = g.h * g.w;
        if (T) {
            f->flop = vision_flop(&b->w, g.t, g.h, g.w);
            snprintf(f->name, sizeof f->name, "vision %lldx%lld (%lld tile%s, %lld patches)", (long long)w,
                     (long long)h, (long long)g.t, g.t == 1 ? "" : "s", (long long)(g.t * n));
        } else {
            f->flop = vision_flop(&b->w, 1, g.h, g.w);
            snprintf(f->name, sizeof f->name, "vision %lldx%lld (%lld patches)", (long long)w, (long long)h,
                     (long long)n);
        }
    }
    mt_arena_free(&arena);
    return st;
}

/* Temporal groups of the video whose vision encode is timed: a default-sampled minute holds ~60, minutes of work. */
#define VIDEO_ENCODE_GROUPS 2

/* A video file sampled as the model's processor does with the default settings (issue 13's target: a minute of 720p
 * H.264 in under 2 s), then the vision encode of its first VIDEO_ENCODE_GROUPS temporal groups, as a share of the
 * roofline like pictures (each group attends within itself, as tiles do). */
static mt_status bench_video(bench *b, const char *path, mt_err *err) {
    const mt_model *m = b->m;
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    figure *f = add_figure(b, "group", false, 0, "video decode+sample %.40s", base);
    f->target_seconds = 2;
    mt_image_ref ref = {.path = path, .kind = MT_MEDIA_VIDEO};
    float *px = NULL;
    mt_image_input in;
    span sp = start_figure();
    double t0 = mt_time_now();
    mt_status st = mt_model_preprocess_video(m, &ref, path, &px, &in, err);
    f->seconds = mt_time_now() - t0;
    finish_figure(b, f, sp);
    if (st) return st;
    f->count = (double)in.grid.t;
    snprintf(f->name, sizeof f->name, "video decode+sample %.22s (%lld groups)", base, (long long)in.grid.t);
    int64_t groups = MT_MIN(in.grid.t, (int64_t)VIDEO_ENCODE_GROUPS), per = in.grid.h * in.grid.w;
    figure *e = add_figure(b, "group", false, 0.40, "vision video %lld of %lld groups", (long long)groups,
                           (long long)in.grid.t);
    mt_image_input part = in;
    part.grid.t = groups;
    part.n_patches = groups * per;
    mt_arena arena;
    mt_arena_init(&arena, (size_t)64 << 20);
    mt_ctx ctx = {.arena = &arena, .pool = b->pool};
    sp = start_figure();
    t0 = mt_time_now();
    mt_tensor *y = mt_model_encode_image(m, &ctx, &part, NULL);
    e->seconds = mt_time_now() - t0;
    finish_figure(b, e, sp);
    mt_arena_free(&arena);
    mt_free(px);
    if (!y) {
        if (err) *err = ctx.err;
        return ctx.status ? ctx.status : MT_ERR_INTERNAL;
    }
    e->count = (double)groups;
    e->flop = vision_flop(&b->w, groups, in.grid.h, in.grid.w);
    snprintf(e->name, sizeof e->name, "vision video %lld of %lld groups (%lldx%lld patches)", (long long)groups,
             (long long)in.grid.t, (long long)in.grid.h, (long long)in.grid.w);
    return MT_OK;
}

#define TRAIN_BATCH 2
#define TRAIN_USER 30
#define TRAIN_ASSISTANT 224
#define TRAIN_STEPS 2

/* One training step (the fastest of TRAIN_STEPS after a warm-up), and PyTorch's on the same model when asked. */
static mt_status bench_train(bench *b, const char *dir, bool lora, bool torch, mt_err *err) {
    const int64_t side = 448;
    mt_image pic = {.width = side, .height = side, .rgb = mt_malloc((size_t)(side * side * 3))};
    if (!pic.rgb) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < side * side * 3; i++) pic.rgb[i] = (uint8_t)((i * 2654435761u) >> 24);
    mt_train_bench_opts o = {.model = dir, .picture = &pic, .lora = lora, .batch = TRAIN_BATCH, .user = TRAIN_USER,
                             .assistant = TRAIN_ASSISTANT};
    mt_train_bench *tb = NULL;
    mt_status st = mt_train_bench_open(&o, b->pool, &tb, err);
    mt_train_bench_info in = {0};
    if (!st) in = mt_train_bench_info_of(tb);
    figure *f = NULL;
    if (!st) {
        f = add_figure(b, "tok", false, 0, "train step %s, %d x %lld tokens", lora ? "lora" : "full", TRAIN_BATCH,
                       (long long)(in.tokens / TRAIN_BATCH));
        f->count = (double)in.tokens;
        f->flop = in.executed;
        f->training = true;
        f->seconds = 1e30;
    }
    span sp = start_figure();
    for (int i = 0; i <= TRAIN_STEPS && !st; i++) {
        mt_train_bench_phases ph;
        double loss;
        st = mt_train_bench_step(tb, &ph, &loss, err);
        if (!st) fprintf(stderr, "  step %d: loss %.4f, %.2f s\n", i, loss, ph.total);
        if (!st && i > 0) f->seconds = MT_MIN(f->seconds, ph.total);
    }
    if (f) finish_figure(b, f, sp);
    mt_train_bench_close(tb);
    mt_free(pic.rgb);
    if (st || !torch) return st;
    mt_torch_train t;
    st = mt_bench_torch_train(dir, lora, mt_pool_threads(b->pool), TRAIN_BATCH, TRAIN_USER, TRAIN_ASSISTANT,
                              TRAIN_STEPS, &t, err);
    if (st) return st;
    double mitten_rate = f->count / f->seconds;
    figure *g = add_figure(b, "tok", false, 0, "PyTorch %s step, torch %s (mitten %.2fx)", lora ? "lora" : "full",
                           t.version, mitten_rate / (t.tokens / t.seconds));
    g->count = t.tokens;
    g->seconds = t.seconds;
    g->flop = in.flop; /* torch runs the LM head's backward on every row */
    g->peak_rss = t.peak_rss_mib * 1024.0 * 1024.0;
    g->training = g->peer = true;
    fprintf(stderr, "mitten bench: PyTorch's BLAS: %s\n", t.blas);
    return MT_OK;
}

static int32_t argmax(const float *x, int64_t n) {
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return (int32_t)best;
}

static mt_status bench_text(bench *b, int threads, int64_t L, int64_t D, mt_err *err) {
    const mt_model *m = b->m;
    const mt_model_desc *d = &m->desc;
    mt_session *s = NULL;
    mt_session_params params = {.n_ctx = L + D + 2, .n_threads = threads};
    /* Ids below every special token, so the prompt holds no image placeholder. */
    int64_t limit = d->vocab_size;
    int64_t specials[] = {d->image_token_id, d->video_token_id, d->vision_start_id, d->vision_end_id, d->bos_id};
    for (size_t i = 0; i < MT_ARRAY_LEN(specials); i++)
        if (specials[i] > 0 && specials[i] < limit) limit = specials[i];
    int32_t *ids = mt_malloc_array((size_t)L, sizeof(int32_t));
    if (!ids) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    uint32_t seed = 7;
    for (int64_t i = 0; i < L; i++) seed = seed * 1664525u + 1013904223u, ids[i] = (int32_t)((seed >> 8) % limit);
    const float *logits;
    mt_status st = mt_session_new(m, &params, &s, err);
    if (!st) b->kv_bytes = (double)d->n_layers * (double)params.n_ctx * (double)(d->k_width + d->v_width) * sizeof(float);
    if (!st) st = mt_session_prefill(s, ids, MT_MIN(L, 16), NULL, 0, NULL, &logits, err); /* warm-up */
    if (!st) {
        mt_session_reset(s);
        figure *f = add_figure(b, "tok", false, 0.40, "prefill %lld tokens", (long long)L);
        span sp = start_figure();
        st = mt_session_prefill(s, ids, L, NULL, 0, NULL, &logits, err);
        f->seconds = mt_time_now() - sp.wall;
        finish_figure(b, f, sp);
        f->count = (double)L;
        f->flop = 2 * (double)L * b->w.text_params + 2 * b->w.head_params + 4 * b->w.q_width * (double)L * (L + 1) / 2;
    }
    if (!st && D > 0) st = mt_session_decode(s, argmax(logits, d->vocab_size), &logits, err); /* warm-up */
    if (!st && D > 0) {
        figure *f = add_figure(b, "tok", true, 0.60, "decode %lld tokens after %lld", (long long)D, (long long)L);
        span sp = start_figure();
        for (int64_t i = 0; i < D && !st; i++) {
            double keys = (double)(mt_session_n_past(s) + 1);
            f->flop += 2 * (b->w.text_params + b->w.head_params) + 4 * b->w.q_width * keys;
            f->bytes += b->w.text_bytes + b->w.head_bytes + (double)d->n_layers * keys * (double)(d->k_width + d->v_width) * 4;
            st = mt_session_decode(s, argmax(logits, d->vocab_size), &logits, err);
        }
        f->seconds = mt_time_now() - sp.wall;
        finish_figure(b, f, sp);
        f->count = (double)D;
    }
    mt_session_free(s);
    mt_free(ids);
    return st;
}

/* Decoding n = 1, 2, 4, 8 sequences at once: weights are read once per step, so the aggregate rate should grow
 * nearly n-fold while decoding stays bound by reading them. */
static mt_status bench_batch(bench *b, int64_t L, int64_t D, mt_err *err) {
    const mt_model_desc *d = &b->m->desc;
    double one = 0, t;
    D = MT_MAX(D / 4, 8);
    L = MT_MIN(L, 64);
    mt_status st = mt_bench_decode_batch(b->m, b->pool, 1, L, 2, &t, err); /* warm-up */
    for (int n = 1; n <= 8 && !st; n *= 2) {
        span sp = start_figure();
        st = mt_bench_decode_batch(b->m, b->pool, n, L, D, &t, err);
        double rate = (double)(n * D) / t;
        if (n == 1) one = rate;
        figure *f = add_figure(b, "tok", true, 0, "decode %d seqs x %lld after %lld (%.2fx one)", n, (long long)D,
                               (long long)L, rate / one);
        f->seconds = t;
        f->count = (double)(n * D);
        for (int64_t i = 0; i < D; i++) {
            double keys = (double)(L + i + 1);
            f->flop += n * (2 * (b->w.text_params + b->w.head_params) + 4 * b->w.q_width * keys);
            f->bytes += b->w.text_bytes + b->w.head_bytes + n * (double)d->n_layers * keys * (double)(d->k_width + d->v_width) * 4;
        }
        finish_figure(b, f, sp);
    }
    return st;
}

/* GRPO's rollouts: 8 sampled answers to one prompt batched (issue 14's target: at least 4x the rate of the same 8
 * one after another), then one after another. */
static mt_status bench_rollouts(bench *b, int64_t L, int64_t D, mt_err *err) {
    enum { GROUP = 8 };
    int64_t max_new = MT_MAX(D / 8, 8);
    mt_bench_rollout_result r;
    span sp = start_figure();
    mt_status st = mt_bench_rollout(b->m, mt_pool_threads(b->pool), GROUP, L, max_new, &r, err);
    if (st) return st;
    double batch = (double)r.tokens / r.batch_seconds, seq = (double)r.tokens / r.seq_seconds;
    figure *f = add_figure(b, "tok", true, 0, "rollouts G=%d x %lld after %lld (%.2fx sequential)", GROUP,
                           (long long)max_new, (long long)L, batch / seq);
    f->seconds = r.batch_seconds;
    f->count = (double)r.tokens;
    f->bytes = (double)r.tokens / GROUP * (b->w.text_bytes + b->w.head_bytes);
    f->flop = (double)L * 2 * (b->w.text_params + b->w.head_params) +
              (double)r.tokens * 2 * (b->w.text_params + b->w.head_params);
    finish_figure(b, f, sp);
    figure *g = add_figure(b, "tok", true, 0, "rollouts 1 x %lld after %lld, %d in turn", (long long)max_new,
                           (long long)L, GROUP);
    g->seconds = r.seq_seconds;
    g->count = (double)r.tokens;
    g->bytes = (double)r.tokens * (b->w.text_bytes + b->w.head_bytes);
    g->flop = f->flop;
    finish_figure(b, g, sp);
    return MT_OK;
}

/* mt_cpu_linear over M rows, each call on the next of ws[] (the same weight in successive layers). */
typedef struct lin_case {
    const mt_st_tensor *ws[MAX_ROTATE];
    int n;
    bool rows_read; /* a table read by rows too (a tied LM head): the model keeps the file's layout */
} lin_case;

/* Times mt_cpu_linear over M rows of random input, calls cycling through ws[0..calls) (weights of dtype wt, bytes
 * each), into the figure named so. */
static mt_status time_linear(bench *b, const char *name, int64_t M, int64_t N, int64_t K, const void *const *ws,
                             int calls, mt_dtype wt, size_t bytes, mt_err *err) {
    float *A = mt_malloc_array((size_t)(M * K), sizeof(float)), *C = mt_malloc_array((size_t)(M * N), sizeof(float));
    if (!A || !C) {
        mt_free(A), mt_free(C);
        return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    }
    fill_random(A, M * K, 3);
    figure *f = add_figure(b, "call", M <= 4, 0, "%s", name);
    f->seconds = 1e30;
    double spent = 0;
    span sp = start_figure();
    for (int rep = 0; rep < 6 && (rep < 2 || spent < 1.5); rep++) { /* rep 0 is the warm-up */
        double t0 = mt_time_now();
        for (int i = 0; i < calls; i++) mt_cpu_linear(b->pool, M, N, K, A, K, ws[i], wt, K, NULL, C, N, false);
        double t = (mt_time_now() - t0) / calls;
        if (rep) f->seconds = MT_MIN(f->seconds, t);
        spent += t * calls;
    }
    finish_figure(b, f, sp);
    f->peak_rss = 0; /* the weights are loaded already: nothing to learn */
    f->count = 1;
    f->flop = 2.0 * (double)(M * N * K);
    f->bytes = (double)bytes;
    mt_free(A), mt_free(C);
    return MT_OK;
}

/* Rotated layers a quantized copy may take: enough bytes to stream from DRAM, not so many that quantizing them
 * (Q4_K's scale search is the slow one) dominates the run. */
#define QUANT_ROTATE_BYTES ((size_t)192 << 20)

/* *out: a new interleaved copy (mt_repack_type's) of q, N x K of type, as mt_weights_place makes it. */
static mt_status repack_copy(const void *q, mt_dtype type, int64_t N, int64_t K, void **out, mt_err *err) {
    void *r8 = mt_malloc(mt_dtype_row_bytes(type, K) * (size_t)N);
    if (!r8) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    mt_status st = mt_repack(type, q, N, K, r8, err);
    if (st) {
        mt_free(r8);
        return st;
    }
    *out = r8;
    return MT_OK;
}

/* A quantized file's linears are timed in the layout the model runs them in: interleaved copies of as many rotated
 * layers as QUANT_ROTATE_BYTES holds. */
static mt_status bench_linear(bench *b, const char *label, const lin_case *c, int64_t M, mt_err *err) {
    int64_t N = c->ws[0]->shape[0], K = c->ws[0]->shape[1];
    mt_dtype type = c->ws[0]->dtype, run = c->rows_read ? type : mt_repack_type(type, N, K);
    const void *ws[MAX_ROTATE];
    void *own[MAX_ROTATE] = {0};
    int n = M <= 4 ? c->n : 1;
    mt_status st = MT_OK;
    if (run != type) n = (int)MT_MAX((size_t)1, MT_MIN((size_t)n, QUANT_ROTATE_BYTES / c->ws[0]->nbytes));
    for (int i = 0; i < n && !st; i++) {
        ws[i] = c->ws[i]->data;
        if (run == type) continue;
        st = repack_copy(c->ws[i]->data, type, N, K, &own[i], err);
        ws[i] = own[i];
    }
    char name[160];
    snprintf(name, sizeof name, "linear M=%lld N=%lld K=%lld %s", (long long)M, (long long)N, (long long)K, label);
    if (!st) st = time_linear(b, name, M, N, K, ws, n, run, c->ws[0]->nbytes, err);
    for (int i = 0; i < n; i++) mt_free(own[i]);
    return st;
}

/* The decode linear (M = 1) with the weights quantized as GGUF holds them: each rotated layer's weight quantized in
 * memory first, then timed as bench_linear times the model's own. */
static mt_status bench_linear_quant(bench *b, const char *label, const lin_case *c, mt_dtype type, mt_err *err) {
    int64_t N = c->ws[0]->shape[0], K = c->ws[0]->shape[1];
    if (K % mt_dtype_block_elems(type)) return MT_OK; /* rows GGUF would keep in another type */
    size_t bytes = mt_dtype_row_bytes(type, K) * (size_t)N;
    int n = (int)MT_MAX((size_t)1, MT_MIN((size_t)c->n, QUANT_ROTATE_BYTES / bytes));
    void *q[MAX_ROTATE] = {0};
    float *row = mt_malloc_array((size_t)K, sizeof *row);
    mt_status st = row ? MT_OK : mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n && !st; i++) {
        if (!(q[i] = mt_malloc(bytes))) st = mt_err_set(err, MT_ERR_NOMEM, "out of memory");
        size_t in_row = (size_t)K * mt_dtype_size(c->ws[i]->dtype);
        for (int64_t r = 0; r < N && !st; r++) {
            mt_cpu_to_f32(K, (const char *)c->ws[i]->data + (size_t)r * in_row, c->ws[i]->dtype, row);
            st = mt_quantize(type, row, 1, K, (char *)q[i] + (size_t)r * mt_dtype_row_bytes(type, K), err);
        }
    }
    /* as a model loads it for its linears (mt_weights_place) */
    if (mt_repack_type(type, N, K) != type) {
        for (int i = 0; i < n && !st; i++) {
            void *r8 = NULL;
            if (!(st = repack_copy(q[i], type, N, K, &r8, err))) {
                mt_free(q[i]);
                q[i] = r8;
            }
        }
        type = mt_repack_type(type, N, K);
    }
    if (!st) {
        char name[160];
        snprintf(name, sizeof name, "linear M=1 N=%lld K=%lld %s %s", (long long)N, (long long)K, label,
                 mt_dtype_name(type));
        st = time_linear(b, name, 1, N, K, (const void *const *)q, n, type, bytes, err);
    }
    for (int i = 0; i < n; i++) mt_free(q[i]);
    mt_free(row);
    return st;
}

/* The GGUF types whose decode linears the bench times beside the checkpoint's own (issue 12's targets). */
static const mt_dtype bench_quant_types[] = {MT_Q8_0, MT_Q4_K};

/* Every distinct weight shape of the first text layer and the first vision block, then the LM head (M = 1 only:
 * prefill computes one row of logits). Text linears and the head are also timed quantized (bench_quant_types). */
static mt_status bench_linears(bench *b, mt_err *err) {
    static const char *const firsts[] = {"layers.0.", "blocks.0."};
    int64_t seen[64][2];
    int n_seen = 0;
    mt_status st = MT_OK;
    const mt_st_tensor *head = NULL;
    for (size_t i = 0; i < mt_safetensors_count(b->m->st) && !st; i++) {
        const mt_st_tensor *t = mt_safetensors_at(b->m->st, i);
        if (ends_with(t->name, "lm_head.weight") || (!head && ends_with(t->name, "embed_tokens.weight"))) head = t;
        const char *at = NULL;
        for (size_t k = 0; k < MT_ARRAY_LEN(firsts) && !at; k++) at = strstr(t->name, firsts[k]);
        if (!at || t->ndim != 2 || !ends_with(t->name, ".weight") || n_seen == (int)MT_ARRAY_LEN(seen)) continue;
        bool dup = false;
        for (int k = 0; k < n_seen; k++) dup |= seen[k][0] == t->shape[0] && seen[k][1] == t->shape[1];
        if (dup) continue;
        seen[n_seen][0] = t->shape[0], seen[n_seen][1] = t->shape[1], n_seen++;
        static lin_case c;
        c.n = 0;
        char name[512];
        size_t stem = (size_t)(strchr(at, '.') - t->name) + 1, rest = stem + 2;
        for (int l = 0; l < MAX_ROTATE; l++) {
            if (snprintf(name, sizeof name, "%.*s%d.%s", (int)stem, t->name, l, t->name + rest) >= (int)sizeof name)
                break;
            const mt_st_tensor *u = mt_safetensors_find(b->m->st, name);
            if (!u || u->ndim != 2 || u->shape[0] != t->shape[0] || u->shape[1] != t->shape[1] || u->dtype != t->dtype)
                break;
            c.ws[c.n++] = u;
        }
        if (!c.n) continue;
        char label[96];
        const char *leaf = t->name + strlen(t->name) - 7; /* ".weight" */
        while (leaf > t->name + rest && leaf[-1] != '.') leaf--;
        snprintf(label, sizeof label, "%s %.*s",
                 mt_model_part_of(b->m, t->name) == MT_PART_LANGUAGE ? "text" : "vision", (int)strcspn(leaf, "."), leaf);
        st = bench_linear(b, label, &c, 512, err);
        if (!st) st = bench_linear(b, label, &c, 1, err);
        /* a quantized file's weights are timed as they are; float ones also as GGUF's types */
        bool text = mt_model_part_of(b->m, t->name) == MT_PART_LANGUAGE && !mt_dtype_is_quant(t->dtype);
        for (size_t k = 0; text && k < MT_ARRAY_LEN(bench_quant_types) && !st; k++)
            st = bench_linear_quant(b, label, &c, bench_quant_types[k], err);
    }
    if (!st && head && head->ndim == 2) {
        static lin_case c;
        c.ws[0] = head, c.n = 1;
        c.rows_read = ends_with(head->name, "embed_tokens.weight");
        st = bench_linear(b, "LM head", &c, 1, err);
        for (size_t k = 0; k < MT_ARRAY_LEN(bench_quant_types) && !st && !mt_dtype_is_quant(head->dtype); k++)
            st = bench_linear_quant(b, "LM head", &c, bench_quant_types[k], err);
    }
    return st;
}

/* The machine's limits: three measurements before the phases and three after, each figure the highest seen. One
 * measurement times only milliseconds of FMA work, so a pool thread that wakes late, or another process on the
 * cores, can halve it; the best of several is what the machine can do. */
static mt_status measure_roofline(bench *b, mt_err *err) {
    fprintf(stderr, "mitten bench: measuring this machine's roofline\n");
    for (int i = 0; i < 3; i++) {
        mt_roofline r;
        mt_status st = mt_roofline_measure(b->pool, 0, &r, err);
        if (st) return st;
        if (b->rf.threads == 0) {
            b->rf = r;
            continue;
        }
        b->rf.f32_gflops = MT_MAX(b->rf.f32_gflops, r.f32_gflops);
        b->rf.bf16_gflops = MT_MAX(b->rf.bf16_gflops, r.bf16_gflops);
        b->rf.read_gbs = MT_MAX(b->rf.read_gbs, r.read_gbs);
    }
    return MT_OK;
}

int mt_cmd_bench(int argc, char **argv) {
    if (mt_cli_help(argc, argv)) return printf("%s", usage), MT_EXIT_OK;
    const char *model_dir = NULL, *shape = NULL, *dir_opt = NULL, *video = NULL, *v;
    int64_t threads = 0, L = 512, D = 128;
    bool skip_vision = false, skip_linears = false, json = false, torch = false;
    const char *train = NULL;
    int bad = 0;
    mt_model_params mp = {0};
    for (mt_cli_args a = {argc, argv, 1}; a.i < argc && !bad; a.i++) {
        if (mt_cli_opt(&a, "-m", &model_dir, &bad) || mt_cli_opt(&a, "--shape", &shape, &bad) ||
            mt_cli_opt(&a, "--dir", &dir_opt, &bad) || mt_cli_opt(&a, "--mmproj", &mp.mmproj, &bad) ||
            mt_cli_opt(&a, "--video", &video, &bad))
            continue;
        if (mt_cli_flag(&a, "--skip-vision")) {
            skip_vision = true;
        } else if (mt_cli_flag(&a, "--skip-linears")) {
            skip_linears = true;
        } else if (mt_cli_flag(&a, "--torch")) {
            torch = true;
        } else if (mt_cli_flag(&a, "--mmap")) {
            mp.mmap = true;
        } else if (mt_cli_opt(&a, "--train", &train, &bad)) {
            if (!bad && strcmp(train, "full") && strcmp(train, "lora"))
                return mt_cli_usage(usage, "--train takes full or lora, not %s", train);
        } else if (mt_cli_flag(&a, "--json")) {
            json = true;
        } else if (mt_cli_opt(&a, "--threads", &v, &bad)) {
            if (!bad && !mt_cli_parse_i64(v, 0, 1024, &threads)) return mt_cli_usage(usage, "bad --threads %s", v);
        } else if (mt_cli_opt(&a, "--prefill", &v, &bad)) {
            if (!bad && !mt_cli_parse_i64(v, 1, 1 << 20, &L)) return mt_cli_usage(usage, "bad --prefill %s", v);
        } else if (mt_cli_opt(&a, "--decode", &v, &bad)) {
            if (!bad && !mt_cli_parse_i64(v, 0, 1 << 20, &D)) return mt_cli_usage(usage, "bad --decode %s", v);
        } else {
            return mt_cli_usage(usage, "unknown option %s", argv[a.i]);
        }
    }
    if (bad) return MT_EXIT_USAGE;
    if (model_dir && shape) return mt_cli_usage(usage, "-m and --shape exclude each other");
    if (dir_opt && !shape) return mt_cli_usage(usage, "--dir goes with --shape");
    if (torch && !train) return mt_cli_usage(usage, "--torch goes with --train");
    if (train && mp.mmproj) return mt_cli_usage(usage, "--train needs a checkpoint folder, not a GGUF file");

    mt_err err = {0};
    mt_model *m = NULL;
    bench *b = mt_calloc(1, sizeof *b);
    char dir[4096], src[4096], commit[64], cpu[200], date[64], load[64];
    /* Read before the run: the source tree may move on while it lasts. */
    read_command("cut -d' ' -f1-3 /proc/loadavg", load, sizeof load);
    source_dir(src, sizeof src);
    commit_of(src, commit, sizeof commit);
    mt_status st = b ? MT_OK : mt_err_set(&err, MT_ERR_NOMEM, "out of memory");
    if (!st && shape) st = mt_bench_shape_checkpoint(shape, dir_opt, dir, sizeof dir, &err);
    else if (!st) snprintf(dir, sizeof dir, "%s", model_dir ? model_dir : mt_cli_default_model());
    if (!st) st = mt_model_open_params(dir, &mp, &m, &err);
    if (!st) b->m = m, st = work_model_init(m, &b->w, &err);
    if (!st && L + D + 2 > m->desc.max_positions)
        st = mt_err_set(&err, MT_ERR_LIMIT, "--prefill %lld + --decode %lld exceed the model's %lld positions",
                        (long long)L, (long long)D, (long long)m->desc.max_positions);
    if (!st) st = mt_pool_new((int)threads, &b->pool, &err);
    if (!st) st = measure_roofline(b, &err);
    if (!st && !skip_vision && b->w.vis_width > 0) st = bench_vision(b, &err);
    if (!st && video) st = bench_video(b, video, &err);
    if (!st) st = bench_text(b, mt_pool_threads(b->pool), L, D, &err);
    if (!st && D > 0) st = bench_batch(b, L, D, &err);
    if (!st && D > 0) st = bench_rollouts(b, MT_MIN(L, 128), D, &err);
    if (!st && !skip_linears) st = bench_linears(b, &err);
    if (!st && train) st = bench_train(b, dir, !strcmp(train, "lora"), torch, &err);
    if (!st) st = measure_roofline(b, &err);
    if (!st) {
        cpu_model(cpu, sizeof cpu);
        time_t now = time(NULL);
        strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&now));
        (json ? mt_bench_print_json : mt_bench_print_table)(b, commit, cpu, date, load);
    }
    if (b) mt_pool_free(b->pool);
    mt_free(b);
    mt_model_close(m);
    return st ? mt_cli_fail(&err) : MT_EXIT_OK;
}
