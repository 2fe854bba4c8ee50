/* media/qwen_video_pre: qwen-vl-utils' frame sampling and resize, then the Qwen2-VL processor, for video.
 *
 * Reference and shapes: see qwen_video_pre.h. Python's arithmetic is kept: true division and math.floor / ceil in
 * double, round() as round half to even (rint).
 */
#include "media/qwen_video_pre.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/file.h"
#include "media/video.h"
#include "media/video_sample.h"

enum { FRAME_FACTOR = 2, FPS_MIN_FRAMES = 4, FPS_MAX_FRAMES = 768, VIDEO_MIN_TOKENS = 128, VIDEO_MAX_TOKENS = 768,
       IMAGE_MIN_TOKENS = 4, IMAGE_MAX_TOKENS = 16384, MODEL_SEQ_LEN = 128000, MAX_LIST = 100000 };

#define MAX_PARAM_PIXELS ((int64_t)1 << 40)

void mt_qwen_video_params_default(mt_qwen_video_params *out) {
    *out = (mt_qwen_video_params){.fps = 2.0, .min_frames = FPS_MIN_FRAMES,
                                  .max_source_pixels = MT_VIDEO_DEFAULT_MAX_PIXELS};
}

void mt_qwen_video_free(mt_qwen_video *v) {
    if (!v) return;
    mt_free(v->pixel_values);
    mt_free(v->frame_indices);
    *v = (mt_qwen_video){0};
}

static mt_status check_params(const mt_qwen_video_params *p, const char *what, mt_err *err) {
    if (!(p->fps > 0 && p->fps <= 1000))
        return mt_err_set(err, MT_ERR_INVALID_ARG, "%s: fps %g is outside (0, 1000]", what, p->fps);
    const struct {
        const char *name;
        int64_t v, hi;
    } ints[] = {{"nframes", p->nframes, FPS_MAX_FRAMES * 64},  {"min_frames", p->min_frames, FPS_MAX_FRAMES * 64},
                {"max_frames", p->max_frames, FPS_MAX_FRAMES * 64}, {"min_pixels", p->min_pixels, MAX_PARAM_PIXELS},
                {"max_pixels", p->max_pixels, MAX_PARAM_PIXELS},    {"total_pixels", p->total_pixels, MAX_PARAM_PIXELS},
                {"max_source_pixels", p->max_source_pixels, MAX_PARAM_PIXELS}, {"threads", p->threads, 1024}};
    for (size_t i = 0; i < MT_ARRAY_LEN(ints); i++)
        if (ints[i].v < 0 || ints[i].v > ints[i].hi)
            return mt_err_set(err, MT_ERR_INVALID_ARG, "%s: %s %lld is outside [0, %lld]", what, ints[i].name,
                              (long long)ints[i].v, (long long)ints[i].hi);
    if (p->max_source_pixels < 1)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "%s: max_source_pixels must be at least 1", what);
    return MT_OK;
}

/* smart_nframes: how many frames to sample from a video of total frames at video_fps. */
static mt_status smart_nframes(const mt_qwen_video_params *p, int64_t total, double video_fps, const char *what,
                               int64_t *out, mt_err *err) {
    if (total == 1) {
        *out = 1;
        return MT_OK;
    }
    double n;
    if (p->nframes > 0) {
        n = rint((double)p->nframes / FRAME_FACTOR) * FRAME_FACTOR;
    } else {
        double min_f = ceil((double)p->min_frames / FRAME_FACTOR) * FRAME_FACTOR;
        double max_given = p->max_frames > 0 ? (double)p->max_frames : (double)MT_MIN(FPS_MAX_FRAMES, total);
        double max_f = floor(max_given / FRAME_FACTOR) * FRAME_FACTOR;
        n = (double)total / video_fps * p->fps;
        n = fmin(fmin(fmax(n, min_f), max_f), (double)total);
        n = floor(n / FRAME_FACTOR) * FRAME_FACTOR;
    }
    if (!(n >= FRAME_FACTOR && n <= (double)total))
        return mt_err_set(err, MT_ERR_INVALID_ARG,
                          "%s: %.0f frames to sample (from %s) is outside [%d, %lld], the video's frame count", what,
                          n, p->nframes > 0 ? "nframes" : "fps, min_frames and max_frames", FRAME_FACTOR,
                          (long long)total);
    *out = (int64_t)n;
    return MT_OK;
}

/* qwen-vl-utils' smart_resize: like transformers' but the rounded sides start at no less than factor, and the
 * bounds may be fractional. */
static mt_status vu_smart_resize(int64_t h, int64_t w, int64_t factor, double min_px, double max_px,
                                 const char *what, int64_t *out_h, int64_t *out_w, mt_err *err) {
    if (max_px < min_px)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "%s: max_pixels %.0f is below min_pixels %.0f", what, max_px,
                          min_px);
    double ratio = (double)MT_MAX(h, w) / (double)MT_MIN(h, w), f = (double)factor;
    if (ratio > 200)
        return mt_err_set(err, MT_ERR_LIMIT, "%s: %lldx%lld frames: aspect ratio %g is over the 200 Qwen2-VL allows",
                          what, (long long)w, (long long)h, ratio);
    double hb = fmax(f, rint((double)h / f) * f), wb = fmax(f, rint((double)w / f) * f);
    double area = (double)h * (double)w;
    if (hb * wb > max_px) {
        double beta = sqrt(area / max_px);
        hb = floor((double)h / beta / f) * f;
        wb = floor((double)w / beta / f) * f;
    } else if (hb * wb < min_px) {
        double beta = sqrt(min_px / area);
        hb = ceil((double)h * beta / f) * f;
        wb = ceil((double)w * beta / f) * f;
    }
    if (hb < f || wb < f || hb * wb > (double)MAX_PARAM_PIXELS)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "%s: %lldx%lld frames would be resized to %.0fx%.0f", what,
                          (long long)w, (long long)h, wb, hb);
    *out_h = (int64_t)hb;
    *out_w = (int64_t)wb;
    return MT_OK;
}

/* The frames' target size and the output buffers, once the source size and the frame count n are known. */
typedef struct clip_plan {
    int64_t H, W, n_pad;
    float lut[3][256];
} clip_plan;

/* decode false: out without pixel_values (a plan) */
static mt_status plan_clip(int64_t h, int64_t w, int64_t n, const mt_qwen_video_params *p,
                           const mt_qwen_preproc_cfg *cfg, const char *what, bool decode, clip_plan *plan,
                           mt_qwen_video *out, mt_err *err) {
    const int64_t P = cfg->patch_size, T = cfg->temporal_patch_size, F = P * cfg->merge_size;
    double min_px = p->min_pixels ? (double)p->min_pixels : (double)(VIDEO_MIN_TOKENS * F * F);
    double total_px = p->total_pixels ? (double)p->total_pixels : (double)(MODEL_SEQ_LEN * F * F) * 0.9;
    double max_px = fmax(fmin((double)(VIDEO_MAX_TOKENS * F * F), total_px / (double)n * FRAME_FACTOR),
                         (double)(int64_t)(min_px * 1.05));
    if (p->max_pixels) max_px = fmin((double)p->max_pixels, max_px);
    mt_status st = vu_smart_resize(h, w, F, min_px, max_px, what, &plan->H, &plan->W, err);
    if (st) return st;
    int64_t ph, pw;
    mt_err e2;
    if (mt_qwen_smart_resize(plan->H, plan->W, F, cfg->min_pixels, cfg->max_pixels, &ph, &pw, &e2) ||
        ph != plan->H || pw != plan->W)
        return mt_err_set(err, MT_ERR_UNSUPPORTED,
                          "%s: frames resized to %lldx%lld fall outside the processor's pixel bounds [%lld, %lld], "
                          "where transformers would resize them again",
                          what, (long long)plan->W, (long long)plan->H, (long long)cfg->min_pixels,
                          (long long)cfg->max_pixels);
    plan->n_pad = (n + T - 1) / T * T;
    int64_t gh = plan->H / P, gw = plan->W / P, n_patches = plan->n_pad / T * gh * gw;
    size_t total;
    if (!mt_mul_ok((size_t)n_patches, (size_t)(3 * T * P * P), &total))
        return mt_err_set(err, MT_ERR_LIMIT, "%s: %lld patches do not fit in memory", what, (long long)n_patches);
    *out = (mt_qwen_video){.n_patches = n_patches, .grid_thw = {plan->n_pad / T, gh, gw}, .n_frames = n};
    if ((decode && !(out->pixel_values = mt_malloc_array(total, sizeof(float)))) ||
        !(out->frame_indices = mt_malloc_array((size_t)n, sizeof(int64_t)))) {
        mt_qwen_video_free(out);
        return mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory for %lld patches", what, (long long)n_patches);
    }
    mt_qwen_norm_table(cfg, plan->lut);
    return MT_OK;
}

/* Where sampled frames go: resized to the plan's size and patchified into clip; the last one is kept for the
 * padding. take_frame runs on the sampler's threads, each on its own k. */
typedef struct frame_sink {
    const clip_plan *plan;
    const mt_qwen_preproc_cfg *cfg;
    mt_qwen_video *clip;
    int64_t n;
    mt_image last;
} frame_sink;

static mt_status take_frame(void *user, int64_t k, mt_image *frame, mt_err *err) {
    frame_sink *s = user;
    mt_image sized = {0};
    if (frame->width == s->plan->W && frame->height == s->plan->H) {
        sized = *frame;
        *frame = (mt_image){0};
    } else {
        mt_status st = mt_image_resize_bicubic_torch(frame, s->plan->W, s->plan->H, &sized, err);
        mt_image_free(frame);
        if (st) return st;
    }
    mt_qwen_patchify_frame(&sized, k, s->cfg, s->plan->lut, s->clip->pixel_values);
    if (k == s->n - 1) s->last = sized;
    else mt_image_free(&sized);
    return MT_OK;
}

static void pad_frames(int64_t n, const clip_plan *plan, const mt_qwen_preproc_cfg *cfg, const mt_image *last,
                       mt_qwen_video *out) {
    for (int64_t f = n; f < plan->n_pad; f++) mt_qwen_patchify_frame(last, f, cfg, plan->lut, out->pixel_values);
}

int64_t mt_qwen_video_frame_index(int64_t k, int64_t n, int64_t total) {
    return n <= 1 ? 0 : (int64_t)rint((double)k * (double)(total - 1) / (double)(n - 1));
}

static void finish(mt_qwen_video *out, const mt_qwen_preproc_cfg *cfg, double sample_fps, double video_fps,
                   int64_t source_frames) {
    out->sample_fps = sample_fps;
    out->video_fps = video_fps;
    out->source_frames = source_frames;
    out->second_per_grid = (float)((double)cfg->temporal_patch_size / sample_fps);
}

static mt_status from_file(const char *path, const mt_qwen_video_params *p, const mt_qwen_preproc_cfg *cfg,
                           bool decode, mt_qwen_video *out, mt_err *err) {
    mt_video *v;
    mt_status st = mt_video_open(path, p->max_source_pixels, &v, err);
    if (st) return st;
    const mt_video_info *info = mt_video_get_info(v);
    int64_t total = info->n_frames, n = 0;
    clip_plan plan;
    mt_qwen_video clip = {0};
    frame_sink sink = {.plan = &plan, .cfg = cfg, .clip = &clip, .n = 0};
    if ((st = smart_nframes(p, total, info->fps, path, &n, err)) ||
        (st = plan_clip(info->height, info->width, n, p, cfg, path, decode, &plan, &clip, err)))
        goto done;
    for (int64_t k = 0; k < n; k++)
        clip.frame_indices[k] = mt_qwen_video_frame_index(k, n, total);
    sink.n = n;
    if (decode && (st = mt_video_sample(v, clip.frame_indices, n, (int)p->threads, take_frame, &sink, err))) goto done;
    if (decode) pad_frames(n, &plan, cfg, &sink.last, &clip);
    finish(&clip, cfg, (double)n / (double)total * info->fps, info->fps, total);
done:
    mt_image_free(&sink.last);
    mt_video_close(v);
    if (st) {
        mt_qwen_video_free(&clip);
        return st;
    }
    *out = clip;
    return MT_OK;
}

mt_status mt_qwen_video_from_file(const char *path, const mt_qwen_video_params *vp, const mt_qwen_preproc_cfg *cfg,
                                  mt_qwen_video *out, mt_err *err) {
    if (!path || !vp || !cfg || !out)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "qwen video: missing path, parameters, config or output");
    mt_status st = check_params(vp, path, err);
    return st ? st : from_file(path, vp, cfg, true, out, err);
}

mt_status mt_qwen_video_plan_file(const char *path, const mt_qwen_video_params *vp, const mt_qwen_preproc_cfg *cfg,
                                  mt_qwen_video *out, mt_err *err) {
    if (!path || !vp || !cfg || !out)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "qwen video: missing path, parameters, config or output");
    mt_status st = check_params(vp, path, err);
    return st ? st : from_file(path, vp, cfg, false, out, err);
}

/* fetch_image for one list entry: decoded and PIL-resized within the image bounds. */
static mt_status load_list_image(const char *path, const mt_qwen_video_params *p, int64_t F, mt_image *out,
                                 mt_err *err) {
    mt_image img;
    mt_status st = mt_image_load(path, p->max_source_pixels, &img, err);
    if (st) return st;
    double min_px = p->min_pixels ? (double)p->min_pixels : (double)(IMAGE_MIN_TOKENS * F * F);
    double max_px = p->max_pixels ? (double)p->max_pixels : (double)(IMAGE_MAX_TOKENS * F * F);
    int64_t h, w;
    if (!(st = vu_smart_resize(img.height, img.width, F, min_px, max_px, path, &h, &w, err))) {
        if (h == img.height && w == img.width) {
            *out = img;
            return MT_OK;
        }
        st = mt_image_resize_bicubic(&img, w, h, out, err);
        if (!st && !(out->name = mt_strdup(path))) st = mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory", path);
        if (st) mt_image_free(out);
    }
    mt_image_free(&img);
    return st;
}

/* decode false: the first image alone sizes the plan */
static mt_status from_images(const char *const *paths, int64_t n, const mt_qwen_video_params *vp,
                             const mt_qwen_preproc_cfg *cfg, bool decode, mt_qwen_video *out, mt_err *err) {
    if (!paths || n < 1 || n > MAX_LIST || !vp || !cfg || !out)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "qwen video: needs 1 to %d image files, parameters, config and "
                                                   "an output", MAX_LIST);
    mt_status st = check_params(vp, paths[0], err);
    if (st) return st;
    const int64_t F = cfg->patch_size * cfg->merge_size, n_even = (n + 1) / 2 * 2;
    clip_plan plan;
    mt_qwen_video clip = {0};
    mt_image img = {0};
    frame_sink sink = {.plan = &plan, .cfg = cfg, .clip = &clip, .n = n_even};
    int64_t h0 = 0, w0 = 0;
    for (int64_t k = 0; k < n_even && !st; k++) {
        const char *path = paths[MT_MIN(k, n - 1)];
        if (k > 0 && !decode) {
            clip.frame_indices[k] = k;
            continue;
        }
        if ((st = load_list_image(path, vp, F, &img, err))) break;
        if (k == 0) {
            h0 = img.height;
            w0 = img.width;
            st = plan_clip(h0, w0, n_even, vp, cfg, path, decode, &plan, &clip, err);
        } else if (img.height != h0 || img.width != w0) {
            st = mt_err_set(err, MT_ERR_FORMAT, "%s: resized to %lldx%lld, but the first frame (%s) to %lldx%lld: "
                            "the frames of a video must share one size", path, (long long)img.width,
                            (long long)img.height, paths[0], (long long)w0, (long long)h0);
        }
        if (!st) {
            clip.frame_indices[k] = k;
            if (decode) st = take_frame(&sink, k, &img, err);
            else mt_image_free(&img);
        }
    }
    if (!st) {
        if (decode) pad_frames(n_even, &plan, cfg, &sink.last, &clip);
        finish(&clip, cfg, vp->fps, vp->fps, clip.n_frames);
    }
    mt_image_free(&img);
    mt_image_free(&sink.last);
    if (st) {
        mt_qwen_video_free(&clip);
        return st;
    }
    *out = clip;
    return MT_OK;
}

mt_status mt_qwen_video_from_images(const char *const *paths, int64_t n, const mt_qwen_video_params *vp,
                                    const mt_qwen_preproc_cfg *cfg, mt_qwen_video *out, mt_err *err) {
    return from_images(paths, n, vp, cfg, true, out, err);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static mt_status from_dir(const char *dir, const mt_qwen_video_params *vp, const mt_qwen_preproc_cfg *cfg,
                          bool decode, mt_qwen_video *out, mt_err *err) {
    if (!dir) return mt_err_set(err, MT_ERR_INVALID_ARG, "qwen video: missing folder");
    DIR *d = opendir(dir);
    if (!d) return mt_err_set(err, MT_ERR_IO, "%s: cannot open the folder of frames", dir);
    char **names = NULL;
    size_t n = 0, cap = 0;
    mt_status st = MT_OK;
    for (struct dirent *e; !st && (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char path[4096];
        struct stat sb;
        if ((st = mt_path_join(path, sizeof path, dir, e->d_name, err))) break;
        if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) continue;
        if (n >= MAX_LIST) {
            st = mt_err_set(err, MT_ERR_LIMIT, "%s: more than %d frames", dir, MAX_LIST);
        } else if (!mt_grow((void **)&names, &cap, n + 1, sizeof *names) || !(names[n] = mt_strdup(path))) {
            st = mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory listing the frames", dir);
        } else {
            n++;
        }
    }
    closedir(d);
    if (!st && n == 0) st = mt_err_set(err, MT_ERR_FORMAT, "%s: the folder holds no frame files", dir);
    if (!st) {
        qsort(names, n, sizeof *names, cmp_str);
        st = from_images((const char *const *)names, (int64_t)n, vp, cfg, decode, out, err);
    }
    for (size_t i = 0; i < n; i++) mt_free(names[i]);
    mt_free(names);
    return st;
}

mt_status mt_qwen_video_from_dir(const char *dir, const mt_qwen_video_params *vp, const mt_qwen_preproc_cfg *cfg,
                                 mt_qwen_video *out, mt_err *err) {
    return from_dir(dir, vp, cfg, true, out, err);
}

mt_status mt_qwen_video_plan_dir(const char *dir, const mt_qwen_video_params *vp, const mt_qwen_preproc_cfg *cfg,
                                 mt_qwen_video *out, mt_err *err) {
    return from_dir(dir, vp, cfg, false, out, err);
}
