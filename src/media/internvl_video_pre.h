/* media/internvl_video_pre: InternVL video input - frames sampled from a video file, each made one S x S tile -
 * in the two published forms.
 *
 * Usage:
 *     mt_internvl_video_params vp;  mt_internvl_video_params_default(MT_INTERNVL_TILING_ORIGINAL, &vp);
 *     mt_internvl_video clip;
 *     mt_internvl_video_from_file("clip.mp4", &vp, &pre, &clip, &err);  // pre: the processor's image config
 *     ... clip.pixel_values (clip.n_frames, 3, S, S), clip.frame_indices (clip.n_frames) ...
 *     mt_internvl_video_free(&clip);
 *
 * References (read for the facts, no code taken):
 *   - original: the InternVL model cards' load_video (OpenGVLab/InternVL3-1B README, "video multi-round
 *     conversation"): decord's VideoReader, get_index(bound=None, fps, max_frame = len - 1, first_idx=0,
 *     num_segments=32), each frame Image.fromarray(...).convert('RGB'), dynamic_preprocess(image_size=input_size,
 *     use_thumbnail=True, max_num=1) and build_transform (ImageNet mean and std);
 *   - hf: transformers' InternVLVideoProcessor (feisenyu/transformers_4573, models/internvl/
 *     video_processing_internvl.py: sample_frames, _preprocess; video_processing_utils.py: the config files read
 *     and do_sample_frames).
 *
 * Shape legend: S tile side, N frames sampled, T the video's frame count (its header's, mt_video_info.n_frames).
 *
 * Which frames:
 *     original: seg = (T - 1) / N;  index[k] = int(seg / 2 + round_half_even(seg * k))    (N = num_segments)
 *     hf, sampling: step = T / N;  shift = step / 2 (initial_shift True) or the given number;
 *                   index[k] = int(float32(shift + k * step)) while shift + k * step < T   (torch.arange(...).int())
 *               N = num_frames, or int(T / video_fps * fps) when only fps is given; N > T is refused, as the
 *               reference raises there
 *     hf, not sampling (do_sample_frames false, the class default): every frame, index[k] = k
 * mitten's caps come on top: N above max_frames is lowered to it (hf without sampling then samples max_frames).
 * How each tile is made:
 *     original: PIL bicubic resize to S x S (dynamic_preprocess with one tile), float32(byte) / 255, ImageNet
 *               normalise (internvl_pre.h with tiling off)
 *     hf:       torchvision's antialiased bicubic on the uint8 frame to S x S (mt_image_resize_bicubic_torch, the
 *               float kernel, as mitten resizes Qwen's frames), then transformers' fused rescale and normalise,
 *               (float32(byte) - mean / rescale) / (std / rescale) in float32
 *
 * Memory: one decoded frame and one resized frame at a time, written into pixel_values as they arrive.
 */
#ifndef MT_MEDIA_INTERNVL_VIDEO_PRE_H
#define MT_MEDIA_INTERNVL_VIDEO_PRE_H

#include "media/internvl_pre.h"

/* The original's num_segments default in load_video. */
#define MT_INTERNVL_DEFAULT_SEGMENTS 32
/* A cap on frames sampled, whatever the parameters ask: 4096 tiles are a million tokens at 256 a tile. */
#define MT_INTERNVL_MAX_VIDEO_FRAMES 4096

typedef struct mt_internvl_video_params {
    mt_internvl_tiling form;
    int64_t num_frames;    /* original: num_segments (0: 32); hf: num_frames (0: from fps, else every frame) */
    double fps;            /* > 0, when num_frames is 0: int(T / video_fps * fps) frames (original: at least 1) */
    int64_t max_frames;    /* > 0: at most this many frames */
    bool sample;           /* hf: do_sample_frames (the file's, false by default); num_frames or fps set it */
    double initial_shift;  /* hf: the first index's offset when sampling; < 0: True (half a step), the default */
    int64_t max_source_pixels; /* cap on a decoded frame's width * height; MT_VIDEO_DEFAULT_MAX_PIXELS */
} mt_internvl_video_params;

typedef struct mt_internvl_video {
    float *pixel_values;     /* (n_frames, 3, S, S), owned */
    int64_t *frame_indices;  /* (n_frames), owned */
    int64_t n_frames, tile_size;
    int64_t source_frames;   /* T */
    double video_fps;
} mt_internvl_video;

void mt_internvl_video_params_default(mt_internvl_tiling form, mt_internvl_video_params *out);

/* The n source frames of a T-frame video at video_fps that vp samples, into idx (cap of them); *n may exceed cap
 * (then call again with more room). MT_ERR_INVALID_ARG naming the parameter when the count is 0 or over T (hf) or
 * over MT_INTERNVL_MAX_VIDEO_FRAMES. */
mt_status mt_internvl_video_indices(const mt_internvl_video_params *vp, int64_t T, double video_fps, int64_t *idx,
                                    int64_t cap, int64_t *n, mt_err *err);

/* From a video file, with pre the processor's image config (its tile side, mean, std, rescale; its tiling form
 * must be vp->form). Errors name the file: those of mt_video_open / mt_video_read_frame, and the sampling's. out is
 * written only on success; free with mt_internvl_video_free. */
mt_status mt_internvl_video_from_file(const char *path, const mt_internvl_video_params *vp,
                                      const mt_internvl_pre_cfg *pre, mt_internvl_video *out, mt_err *err);

/* Accepts NULL and a zeroed or already-freed clip. */
void mt_internvl_video_free(mt_internvl_video *v);

#endif
