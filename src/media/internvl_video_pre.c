/* media/internvl_video_pre: InternVL's video frames (see internvl_video_pre.h). Python's arithmetic is kept: true
 * division in double, np.round as round half to even (rint), int() as truncation. */
#include "media/internvl_video_pre.h"

#include <math.h>
#include <string.h>

#include "media/video.h"
#include "media/video_sample.h"

void mt_internvl_video_params_default(mt_internvl_tiling form, mt_internvl_video_params *out) {
    *out = (mt_internvl_video_params){.form = form, .initial_shift = -1.0,
                                      .max_source_pixels = MT_VIDEO_DEFAULT_MAX_PIXELS};
}

void mt_internvl_video_free(mt_internvl_video *v) {
    if (!v) return;
    mt_free(v->pixel_values);
    mt_free(v->frame_indices);
    *v = (mt_internvl_video){0};
}

static mt_status check_params(const mt_internvl_video_params *p, mt_err *err) {
    if (p->num_frames < 0 || p->num_frames > MT_INTERNVL_MAX_VIDEO_FRAMES)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "InternVL video: num_frames %lld is outside [0, %d]",
                          (long long)p->num_frames, MT_INTERNVL_MAX_VIDEO_FRAMES);
    if (p->max_frames < 0)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "InternVL video: max_frames %lld is negative",
                          (long long)p->max_frames);
    if (!(p->fps >= 0 && p->fps <= 1000))
        return mt_err_set(err, MT_ERR_INVALID_ARG, "InternVL video: fps %g is outside [0, 1000]", p->fps);
    if (!(p->initial_shift < 0 || p->initial_shift <= 1e9))
        return mt_err_set(err, MT_ERR_INVALID_ARG, "InternVL video: initial_shift %g is not a number of frames",
                          p->initial_shift);
    if (p->max_source_pixels < 1)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "InternVL video: max_source_pixels must be at least 1");
    return MT_OK;
}

/* How many frames the form samples from T at video_fps; *all: hf without sampling (every frame, in order). */
static mt_status frame_count(const mt_internvl_video_params *p, int64_t T, double video_fps, int64_t *n, bool *all,
                             mt_err *err) {
    bool orig = p->form == MT_INTERNVL_TILING_ORIGINAL;
    double from_fps = p->fps > 0 ? floor((double)T / video_fps * p->fps) : 0;
    const char *by = p->num_frames ? "num_frames" : p->fps > 0 ? "fps" : orig ? "num_segments" : "every frame";
    *all = false;
    if (p->num_frames) {
        *n = p->num_frames;
    } else if (p->fps > 0) {
        *n = (int64_t)fmin(from_fps, 1e9);
        if (orig) *n = MT_MAX(*n, 1);
    } else if (orig) {
        *n = MT_INTERNVL_DEFAULT_SEGMENTS;
    } else {
        *n = T;
        *all = !p->sample;
    }
    if (p->max_frames > 0 && *n > p->max_frames) {
        *n = p->max_frames;
        *all = false;
        by = "max_frames";
    }
    if (*n < 1)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "InternVL video: %s gives no frames from %lld at %g fps", by,
                          (long long)T, video_fps);
    if (!orig && *n > T)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "InternVL video: %s asks for %lld frames, the video has %lld", by,
                          (long long)*n, (long long)T);
    if (*n > MT_INTERNVL_MAX_VIDEO_FRAMES)
        return mt_err_set(err, MT_ERR_LIMIT, "InternVL video: %lld frames (from %s) is over the %d mitten takes; "
                          "lower the frames sampled (--max-frames)", (long long)*n, by, MT_INTERNVL_MAX_VIDEO_FRAMES);
    return MT_OK;
}

mt_status mt_internvl_video_indices(const mt_internvl_video_params *vp, int64_t T, double video_fps, int64_t *idx,
                                    int64_t cap, int64_t *n, mt_err *err) {
    mt_status st = check_params(vp, err);
    if (st) return st;
    if (T < 1 || !(video_fps > 0))
        return mt_err_set(err, MT_ERR_INVALID_ARG, "InternVL video: %lld frames at %g fps", (long long)T, video_fps);
    bool all;
    int64_t count;
    if ((st = frame_count(vp, T, video_fps, &count, &all, err))) return st;
    if (vp->form == MT_INTERNVL_TILING_ORIGINAL) {
        double seg = (double)(T - 1) / (double)count;
        for (int64_t k = 0; k < count && k < cap; k++) idx[k] = (int64_t)(seg / 2.0 + rint(seg * (double)k));
        *n = count;
        return MT_OK;
    }
    if (all) {
        for (int64_t k = 0; k < count && k < cap; k++) idx[k] = k;
        *n = count;
        return MT_OK;
    }
    /* torch.arange(shift, T, T / N) in float32 (the CPU kernel adds in double and rounds each value), then .int() */
    double step = (double)T / (double)count, shift = vp->initial_shift < 0 ? step / 2.0 : vp->initial_shift;
    int64_t len = shift < (double)T ? (int64_t)ceil(((double)T - shift) / step) : 0;
    for (int64_t k = 0; k < len && k < cap; k++) idx[k] = (int64_t)(float)(shift + (double)k * step);
    if (len < 1)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "InternVL video: initial_shift %g is past the video's %lld frames",
                          shift, (long long)T);
    *n = len;
    return MT_OK;
}

/* The tile of one frame (consumed) into dst (3, S, S), as the form makes it. */
static mt_status put_frame(mt_image *frame, const mt_internvl_pre_cfg *pre, const float lut[3][256], float *dst,
                           mt_err *err) {
    const int64_t S = pre->tile_size;
    if (pre->tiling == MT_INTERNVL_TILING_ORIGINAL) {
        mt_internvl_pre_cfg one = *pre;
        one.dynamic = false;
        one.min_tiles = one.max_tiles = 1;
        float *pv;
        int64_t tiles;
        mt_status st = mt_internvl_preprocess(frame, &one, &pv, &tiles, err);
        mt_image_free(frame);
        if (st) return st;
        memcpy(dst, pv, (size_t)(3 * S * S) * sizeof(float));
        mt_free(pv);
        return MT_OK;
    }
    mt_image tile = {0};
    mt_status st = MT_OK;
    if (frame->width == S && frame->height == S) {
        tile = *frame; /* bicubic at scale 1 is the identity */
        *frame = (mt_image){0};
    } else {
        st = mt_image_resize_bicubic_torch(frame, S, S, &tile, err);
        mt_image_free(frame);
    }
    if (st) return st;
    for (int c = 0; c < 3; c++)
        for (int64_t i = 0; i < S * S; i++) dst[c * S * S + i] = lut[c][tile.rgb[3 * i + c]];
    mt_image_free(&tile);
    return MT_OK;
}

typedef struct frame_sink {
    const mt_internvl_pre_cfg *pre;
    const float (*lut)[256];
    float *pixel_values;
    size_t per; /* floats per frame */
} frame_sink;

/* Sample k into its slot; on the sampler's threads, each its own k. */
static mt_status take_frame(void *user, int64_t k, mt_image *frame, mt_err *err) {
    const frame_sink *s = user;
    return put_frame(frame, s->pre, s->lut, s->pixel_values + (size_t)k * s->per, err);
}

mt_status mt_internvl_video_from_file(const char *path, const mt_internvl_video_params *vp,
                                      const mt_internvl_pre_cfg *pre, mt_internvl_video *out, mt_err *err) {
    if (!path || !vp || !pre || !out)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "InternVL video: missing path, parameters, config or output");
    mt_status st = mt_internvl_pre_cfg_check(pre, err);
    if (!st && pre->tiling != vp->form)
        st = mt_err_set(err, MT_ERR_INVALID_ARG, "InternVL video: the image config and the sampling are of "
                        "different forms");
    if (!st) st = check_params(vp, err);
    if (st) return mt_err_prefix(err, "%s", path);
    mt_video *v;
    if ((st = mt_video_open(path, vp->max_source_pixels, &v, err))) return st;
    const mt_video_info *info = mt_video_get_info(v);
    mt_internvl_video clip = {.tile_size = pre->tile_size, .source_frames = info->n_frames,
                              .video_fps = info->fps};
    int64_t n = 0, S = pre->tile_size;
    size_t per = (size_t)(3 * S * S), total;
    st = mt_internvl_video_indices(vp, info->n_frames, info->fps, NULL, 0, &n, err);
    if (!st && !mt_mul_ok((size_t)n, per, &total))
        st = mt_err_set(err, MT_ERR_LIMIT, "%lld frames of %lld x %lld do not fit in memory", (long long)n,
                        (long long)S, (long long)S);
    if (!st && (!(clip.frame_indices = mt_malloc_array((size_t)n, sizeof(int64_t))) ||
                !(clip.pixel_values = mt_malloc_array(total, sizeof(float)))))
        st = mt_err_set(err, MT_ERR_NOMEM, "out of memory for %lld frames", (long long)n);
    if (!st) st = mt_internvl_video_indices(vp, info->n_frames, info->fps, clip.frame_indices, n, &clip.n_frames, err);
    /* transformers fuses the rescale into the mean and std (float32 tensors times 1 / rescale_factor) */
    float lut[3][256];
    for (int c = 0; c < 3; c++) {
        float m = pre->mean[c] * (float)(1.0 / pre->rescale_factor), s = pre->std[c] * (float)(1.0 / pre->rescale_factor);
        for (int b = 0; b < 256; b++) lut[c][b] = ((float)b - m) / s;
    }
    frame_sink sink = {.pre = pre, .lut = lut, .pixel_values = clip.pixel_values, .per = per};
    if (!st) st = mt_video_sample(v, clip.frame_indices, n, 0, take_frame, &sink, err);
    mt_video_close(v);
    if (st) {
        mt_internvl_video_free(&clip);
        return err && !strstr(err->msg, path) ? mt_err_prefix(err, "%s", path) : st;
    }
    *out = clip;
    return MT_OK;
}
