/* models/qwen_processor: the multimodal processor of the Qwen VL families - images as Qwen2VLImageProcessor makes them
 * (media/qwen_vision_pre.h), each image or video placeholder repeated once per merged patch, and M-RoPE positions as
 * transformers' get_rope_index gives them.
 *
 * Reference: transformers 4.57.3, models/qwen2_5_vl/modeling_qwen2_5_vl.py and models/qwen2_vl/modeling_qwen2_vl.py
 * (get_rope_index); for Qwen3-VL the copy in feisenyu/transformers_4573 (its version string 5.0.0.dev0),
 * models/qwen3_vl/processing_qwen3_vl.py (__call__, _calculate_timestamps) and modeling_qwen3_vl.py (get_rope_index).
 *
 * The time index of a merged patch in temporal group f:
 *
 *     | family      | image | video                                                                   |
 *     |-------------|-------|-------------------------------------------------------------------------|
 *     | Qwen2-VL    | 0     | f                                                                       |
 *     | Qwen2.5-VL  | 0     | f * trunc(second_per_grid) * tokens_per_second (4.57.3 casts the seconds |
 *     |             |       | to the int64 of the frame range before multiplying: 0.5 s gives 0)      |
 *     | Qwen3-VL    | 0     | 0: each group is its own t = 1 input after the text "<T seconds>"       |
 *
 * Qwen3-VL's video placeholder <|vision_start|><|video_pad|><|vision_end|> becomes, per temporal group f,
 * "<%.1f seconds>" (tokenized) <|vision_start|> <|video_pad|> x (h w / merge^2) <|vision_end|>. T(f) is the mean of
 * the times of frames f M and f M + M - 1, M the processor's merge_size (transformers averages over the spatial
 * merge size, which equals temporal_patch_size in every published checkpoint).
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "base/file.h"
#include "media/qwen_video_pre.h"
#include "media/qwen_vision_pre.h"
#include "models/config.h"
#include "models/model.h"

/* How a video's temporal group becomes its time index (see the table above). */
typedef enum qwen_time { TIME_FRAME, TIME_SECONDS, TIME_STAMPS } qwen_time;

typedef struct qwen_proc {
    mt_qwen_preproc_cfg pre;
    mt_qwen_preproc_cfg video_pre; /* pre before the run's image cap: videos are sized by their own bounds */
    int64_t merge, image_token_id, video_token_id;
    qwen_time time;
    int64_t tokens_per_second; /* TIME_SECONDS: vision_config.tokens_per_second */
    int64_t vision_start, vision_end; /* TIME_STAMPS: the frame edges (-1 when config.json has none) */
    const mt_tokenizer *tok;          /* TIME_STAMPS: the model's, for the timestamps' text (NULL when it has none) */
} qwen_proc;

static void release(void *impl) { mt_free(impl); }

/* defaults: the family's preprocessor values, for folders without preprocessor_config.json */
static mt_status load(mt_model *m, const cJSON *cfg, const char *path, const mt_qwen_preproc_cfg *defaults,
                      qwen_time time, void **impl, mt_err *err) {
    const cJSON *vc = mt_cfg_section(cfg, "vision_config", false);
    if (!vc) return mt_err_set(err, MT_ERR_FORMAT, "%s: missing object \"vision_config\"", path);
    if (m->desc.image_token_id < 0) return mt_err_set(err, MT_ERR_FORMAT, "%s: missing field \"image_token_id\"", path);
    mt_cfg r = {path, "vision_config", err, MT_OK};
    int64_t patch = mt_cfg_int_opt(&r, vc, "patch_size", 1, 1024, 14);
    int64_t temporal = mt_cfg_int_opt(&r, vc, "temporal_patch_size", 1, 64, 2);
    int64_t merge = mt_cfg_int_opt(&r, vc, "spatial_merge_size", 1, 64, 2);
    /* transformers' Qwen2_5_VLVisionConfig default; the published checkpoints write 2 */
    int64_t tps = time == TIME_SECONDS ? mt_cfg_int_opt(&r, vc, "tokens_per_second", 0, 1 << 16, 4) : 0;
    if (r.st) return r.st;
    qwen_proc *p = mt_calloc(1, sizeof *p);
    if (!p) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    p->merge = merge;
    p->image_token_id = m->desc.image_token_id;
    p->video_token_id = m->desc.video_token_id;
    p->time = time;
    p->tokens_per_second = tps;
    p->vision_start = m->desc.vision_start_id;
    p->vision_end = m->desc.vision_end_id;
    p->tok = m->tok;
    char pre_path[4200];
    snprintf(pre_path, sizeof pre_path, "%s/preprocessor_config.json", m->dir);
    if (!mt_file_exists(pre_path))
        mt_log(MT_LOG_ERROR, "%s has no preprocessor_config.json: images are prepared with %s's published defaults "
               "(patch %lld, merge %lld); a checkpoint trained otherwise would see wrong pixels", m->dir, m->comp->name,
               (long long)defaults->patch_size, (long long)defaults->merge_size);
    mt_status st = mt_qwen_preproc_cfg_load_with(m->dir, defaults, &p->pre, err);
    if (!st && (p->pre.patch_size != patch || p->pre.temporal_patch_size != temporal || p->pre.merge_size != merge))
        st = mt_err_set(err, MT_ERR_FORMAT, "%s/preprocessor_config.json: patch %lld / temporal %lld / merge %lld "
                        "differ from config.json's %lld / %lld / %lld", m->dir, (long long)p->pre.patch_size,
                        (long long)p->pre.temporal_patch_size, (long long)p->pre.merge_size, (long long)patch,
                        (long long)temporal, (long long)merge);
    p->video_pre = p->pre;
    /* the caller's cap for this run, as processor(images, max_pixels=N) */
    int64_t cap = m->params.max_pixels;
    if (!st && cap > 0 && cap < p->pre.min_pixels)
        st = mt_err_set(err, MT_ERR_INVALID_ARG, "max_pixels %lld is below the processor's min_pixels %lld (%s)",
                        (long long)cap, (long long)p->pre.min_pixels, m->dir);
    if (!st && cap > 0 && cap < p->pre.max_pixels) p->pre.max_pixels = cap;
    if (st) {
        release(p);
        return st;
    }
    *impl = p;
    return MT_OK;
}

static mt_status load_qwen2(mt_model *m, const cJSON *cfg, const char *path, void **impl, mt_err *err) {
    mt_qwen_preproc_cfg d;
    mt_qwen_preproc_cfg_default(&d);
    return load(m, cfg, path, &d, TIME_FRAME, impl, err);
}

static mt_status load_qwen2_5(mt_model *m, const cJSON *cfg, const char *path, void **impl, mt_err *err) {
    mt_qwen_preproc_cfg d;
    mt_qwen_preproc_cfg_default(&d);
    return load(m, cfg, path, &d, TIME_SECONDS, impl, err);
}

static mt_status load_qwen3(mt_model *m, const cJSON *cfg, const char *path, void **impl, mt_err *err) {
    mt_qwen_preproc_cfg d;
    mt_qwen3_vl_preproc_cfg_default(&d);
    return load(m, cfg, path, &d, TIME_STAMPS, impl, err);
}

static mt_status preprocess(const void *impl, const mt_image *img, float **pixels, int64_t *n_patches,
                            mt_image_grid *grid, int64_t *patch_dim, mt_err *err) {
    const qwen_proc *p = impl;
    int64_t thw[3];
    mt_status st = mt_qwen_preprocess(img, &p->pre, pixels, n_patches, thw, err);
    if (!st) *grid = (mt_image_grid){thw[0], thw[1], thw[2]};
    *patch_dim = 3 * p->pre.temporal_patch_size * p->pre.patch_size * p->pre.patch_size;
    return st;
}

/* The placeholder `id` repeated once per merged patch of grid g (what, "image" or "video", names it in errors). */
static mt_status placeholder_run(const qwen_proc *p, const char *what, int64_t id, mt_image_grid g, int32_t *out,
                                 int64_t cap, int64_t *n, mt_err *err) {
    int64_t M = p->merge;
    if (g.t < 1 || g.h < 1 || g.w < 1 || g.h % M || g.w % M || g.t > 4096 || g.h > 65536 || g.w > 65536)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "%s grid %lldx%lldx%lld: t must be 1 to 4096, h and w positive "
                          "multiples of %lld", what, (long long)g.t, (long long)g.h, (long long)g.w, (long long)M);
    *n = g.t * (g.h / M) * (g.w / M);
    for (int64_t i = 0; i < *n && i < cap; i++) out[i] = (int32_t)id;
    return MT_OK;
}

static mt_status image_tokens(const void *impl, mt_image_grid g, int32_t *out, int64_t cap, int64_t *n, mt_err *err) {
    const qwen_proc *p = impl;
    return placeholder_run(p, "image", p->image_token_id, g, out, cap, n, err);
}

/* The time of temporal group f of a video, in seconds (see the top). */
static mt_status group_seconds(const qwen_proc *p, const mt_image_input *in, int64_t f, double *s, mt_err *err) {
    if (in->timestamps) {
        *s = in->timestamps[f];
        if (!(*s >= 0.0 && *s <= 1e9))
            return mt_err_set(err, MT_ERR_INVALID_ARG, "video timestamp %lld: %g must be a number from 0 to 1e9 "
                              "seconds", (long long)f, *s);
        return MT_OK;
    }
    if (in->sampled.n > 0) {
        /* transformers' _calculate_timestamps: the sampled frames' times, the last repeated to a whole group, the
         * mean of each group's first and last */
        int64_t m = p->pre.merge_size, n = in->sampled.n, total = in->sampled.total;
        double fps = in->sampled.fps;
        if (!(fps > 0.0 && fps <= 1e6) || total < n)
            return mt_err_set(err, MT_ERR_INVALID_ARG, "video sampling: %lld of %lld frames at %g fps", (long long)n,
                              (long long)total, fps);
        int64_t first = MT_MIN(f * m, n - 1), last = MT_MIN(f * m + m - 1, n - 1);
        *s = ((double)mt_qwen_video_frame_index(first, n, total) / fps +
              (double)mt_qwen_video_frame_index(last, n, total) / fps) / 2.0;
        return MT_OK;
    }
    double spg = in->seconds_per_grid;
    if (!(spg >= 0.0 && spg <= 1e6))
        return mt_err_set(err, MT_ERR_INVALID_ARG, "video second_per_grid %g must be a number from 0 to 1e6", spg);
    double frame = spg / (double)p->pre.temporal_patch_size, merge = (double)p->pre.merge_size;
    *s = (frame * (double)f * merge + frame * ((double)f * merge + merge - 1.0)) / 2.0;
    return MT_OK;
}

/* Appends k ids at out + *n where they fit (cap), counting them all in *n. */
static void put_ids(int32_t *out, int64_t cap, int64_t *n, const int32_t *ids, int64_t k) {
    for (int64_t i = 0; i < k; i++, (*n)++)
        if (*n < cap) out[*n] = ids[i];
}

/* Qwen3-VL: per temporal group its time as text, then the group's frame between its edges (see the top). */
static mt_status stamped_tokens(const qwen_proc *p, const mt_image_input *in, int32_t *out, int64_t cap, int64_t *n,
                                mt_err *err) {
    mt_image_grid g = in->grid, frame_grid = {1, g.h, g.w};
    int64_t frame;
    mt_status st = placeholder_run(p, "video", p->video_token_id, g, NULL, 0, &frame, err);
    if (st) return st;
    frame /= g.t;
    if (p->vision_start < 0 || p->vision_end < 0)
        return mt_err_set(err, MT_ERR_UNSUPPORTED, "the model's config.json has no vision_start_token_id or "
                          "vision_end_token_id, which frame a Qwen3-VL video");
    if (!p->tok)
        return mt_err_set(err, MT_ERR_UNSUPPORTED, "a Qwen3-VL video needs the model's tokenizer.json: each frame's "
                          "time is written as text");
    *n = 0;
    for (int64_t f = 0; f < g.t; f++) {
        double s = 0.0;
        if ((st = group_seconds(p, in, f, &s, err))) return st;
        char text[64];
        int len = snprintf(text, sizeof text, "<%.1f seconds>", s);
        int32_t *ids = NULL;
        size_t k = 0;
        if ((st = mt_tokenizer_encode(p->tok, text, (size_t)len, true, &ids, &k, err)))
            return mt_err_prefix(err, "video timestamp \"%s\"", text);
        put_ids(out, cap, n, ids, (int64_t)k);
        mt_free(ids);
        int32_t edge = (int32_t)p->vision_start;
        put_ids(out, cap, n, &edge, 1);
        int64_t run;
        st = placeholder_run(p, "video", p->video_token_id, frame_grid, out && *n < cap ? out + *n : NULL,
                             out ? cap - *n : 0, &run, err);
        if (st) return st;
        *n += run;
        edge = (int32_t)p->vision_end;
        put_ids(out, cap, n, &edge, 1);
    }
    return MT_OK;
}

static mt_status video_tokens(const void *impl, const mt_image_input *in, int32_t *out, int64_t cap, int64_t *n,
                              mt_err *err) {
    const qwen_proc *p = impl;
    if (p->video_token_id < 0)
        return mt_err_set(err, MT_ERR_UNSUPPORTED, "the model's config.json has no video_token_id");
    if (p->time == TIME_STAMPS) return stamped_tokens(p, in, out, cap, n, err);
    return placeholder_run(p, "video", p->video_token_id, in->grid, out, cap, n, err);
}

/* The clip sampled and sized as vp says; decode false: its plan, no pixels. */
static mt_status sample_video(const qwen_proc *p, const char *path, const mt_video_params *vp, bool decode,
                              float **pixels, mt_image_input *out, mt_err *err) {
    int64_t n;
    /* a model that cannot place a video refuses it before the decoding, which may take long */
    mt_image_input probe = {.grid = {1, p->merge, p->merge}, .video = true, .seconds_per_grid = 1};
    mt_status st = video_tokens(p, &probe, NULL, 0, &n, err);
    if (st) return st;
    mt_qwen_video_params q;
    mt_qwen_video_params_default(&q);
    if (vp->fps != 0) q.fps = vp->fps;
    if (vp->min_frames != 0) q.min_frames = vp->min_frames;
    q.nframes = vp->nframes;
    q.max_frames = vp->max_frames;
    /* qwen-vl-utils' frame bounds, kept inside the processor's own, which would otherwise resize the frames
     * again (transformers does): a checkpoint with small images (mitten-tiny) gets frames its size */
    const mt_qwen_preproc_cfg *c = &p->video_pre;
    int64_t F = c->patch_size * c->merge_size;
    q.max_pixels = vp->max_pixels > 0 ? MT_MIN(vp->max_pixels, c->max_pixels) : c->max_pixels;
    if (128 * F * F > q.max_pixels) q.min_pixels = MT_MIN(c->min_pixels, q.max_pixels);
    q.total_pixels = vp->total_pixels;
    struct stat sb;
    mt_qwen_video clip = {0};
    bool dir = stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
    if (decode) st = (dir ? mt_qwen_video_from_dir : mt_qwen_video_from_file)(path, &q, c, &clip, err);
    else st = (dir ? mt_qwen_video_plan_dir : mt_qwen_video_plan_file)(path, &q, c, &clip, err);
    if (st) return st;
    if (decode) *pixels = clip.pixel_values;
    clip.pixel_values = NULL;
    *out = (mt_image_input){.pixels = decode ? *pixels : NULL, .n_patches = clip.n_patches,
                            .grid = {clip.grid_thw[0], clip.grid_thw[1], clip.grid_thw[2]},
                            .patch_dim = 3 * c->temporal_patch_size * c->patch_size * c->patch_size, .video = true,
                            .seconds_per_grid = clip.second_per_grid,
                            .sampled = {clip.source_frames, clip.n_frames, clip.video_fps}};
    mt_qwen_video_free(&clip);
    return MT_OK;
}

static mt_status preprocess_video(const void *impl, const char *path, const mt_video_params *vp, float **pixels,
                                 mt_image_input *out, mt_err *err) {
    return sample_video(impl, path, vp, true, pixels, out, err);
}

static mt_status plan_video(const void *impl, const char *path, const mt_video_params *vp, mt_image_input *out,
                            mt_err *err) {
    return sample_video(impl, path, vp, false, NULL, out, err);
}

/* A video's time index step per temporal group (see the table at the top). */
static mt_status time_step(const qwen_proc *p, const mt_image_input *in, int k, int64_t *step, mt_err *err) {
    *step = 0;
    if (!in->video || p->time == TIME_STAMPS) return MT_OK;
    if (p->time == TIME_FRAME) {
        *step = 1;
        return MT_OK;
    }
    double s = in->seconds_per_grid;
    if (!(s >= 0.0 && s <= 1e6))
        return mt_err_set(err, MT_ERR_INVALID_ARG, "input %d (a video): second_per_grid %g must be a number from 0 "
                          "to 1e6", k, s);
    *step = (int64_t)s * p->tokens_per_second;
    return MT_OK;
}

/* Text runs count up from the largest position so far + 1; an image or video at text offset s takes
 * (s + time index, s + row, s + col) over its merged grid, and the next text follows the largest of them. Inputs are
 * taken in order, each by the placeholder of its kind. A Qwen3-VL video is grid.t runs of one frame each, the text
 * between them counted as text: every run is placed as an image. */
static mt_status positions(const mt_model *m, const void *impl, const int32_t *ids, int64_t L,
                           const mt_image_input *images, int n_images, int64_t start, int64_t *pos, int64_t *next,
                           mt_err *err) {
    const qwen_proc *p = impl;
    (void)m;
    int64_t M = p->merge, at = start, max_pos = start - 1, frames_left = 0;
    int k = 0;
    const mt_image_input *in = NULL;
    for (int64_t i = 0; i < L;) {
        bool is_image = ids[i] == p->image_token_id, is_video = p->video_token_id >= 0 && ids[i] == p->video_token_id;
        if (!is_image && !is_video) {
            for (int a = 0; a < 3; a++) pos[a * L + i] = at;
            max_pos = at++;
            i++;
            continue;
        }
        const char *what = is_video ? "video" : "image";
        if (frames_left && !is_video)
            return mt_err_set(err, MT_ERR_INVALID_ARG, "video %d has %lld more frame(s) than the prompt's video "
                              "tokens before the image at position %lld", k, (long long)frames_left, (long long)i);
        if (!frames_left) {
            if (k >= n_images)
                return mt_err_set(err, MT_ERR_INVALID_ARG, "prompt has more %s placeholders than the %d image(s) and "
                                  "video(s) given", what, n_images);
            in = &images[k++];
            if (in->video != is_video)
                return mt_err_set(err, MT_ERR_INVALID_ARG, "input %d is %s but the prompt has %s tokens at position "
                                  "%lld", k, in->video ? "a video" : "an image", is_video ? "video" : "image",
                                  (long long)i);
            frames_left = is_video && p->time == TIME_STAMPS ? in->grid.t : 1;
        }
        int64_t step;
        mt_status st = time_step(p, in, k, &step, err);
        if (st) return st;
        mt_image_grid g = in->grid;
        int64_t gh = g.h / M, gw = g.w / M, t = is_video && p->time == TIME_STAMPS ? 1 : g.t;
        int64_t count = t * gh * gw;
        for (int64_t j = 0; j < count; j++) {
            if (i + j >= L || ids[i + j] != ids[i])
                return mt_err_set(err, MT_ERR_INVALID_ARG, "%s %d needs %lld %s tokens%s, the prompt has %lld", what,
                                  k, (long long)count, what, t < g.t ? " per frame" : "", (long long)j);
            int64_t f = j / (gh * gw), hw = j % (gh * gw);
            pos[0 * L + i + j] = at + f * step;
            pos[1 * L + i + j] = at + hw / gw;
            pos[2 * L + i + j] = at + hw % gw;
        }
        max_pos = at + MT_MAX((t - 1) * step, MT_MAX(gh, gw) - 1);
        at = max_pos + 1;
        i += count;
        frames_left--;
    }
    if (frames_left)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "video %d has %lld frames, the prompt has video tokens for %lld",
                          k, (long long)in->grid.t, (long long)(in->grid.t - frames_left));
    if (k != n_images)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "%d image(s) and video(s) given, the prompt has placeholders for %d",
                          n_images, k);
    *next = max_pos + 1;
    return MT_OK;
}

const mt_processor_part mt_processor_qwen2_vl = {"qwen2-vl processor", load_qwen2, release, preprocess,
                                                 image_tokens, positions, NULL, video_tokens,
                                                 preprocess_video, plan_video};
const mt_processor_part mt_processor_qwen2_5_vl = {"qwen2.5-vl processor", load_qwen2_5, release, preprocess,
                                                   image_tokens, positions, NULL, video_tokens,
                                                   preprocess_video, plan_video};
const mt_processor_part mt_processor_qwen3_vl = {"qwen3-vl processor", load_qwen3, release, preprocess, image_tokens,
                                                 positions, NULL, video_tokens, preprocess_video,
                                                 plan_video};
