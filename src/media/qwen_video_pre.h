/* media/qwen_video_pre: Qwen2-VL / Qwen2.5-VL / Qwen3-VL video input (pixel_values_videos, video_grid_thw,
 * second_per_grid_ts) from a video file, a folder of frames or a list of image files.
 *
 * Usage:
 *     mt_qwen_video_params vp;  mt_qwen_video_params_default(&vp);  vp.fps = 1;
 *     mt_qwen_video clip;
 *     mt_qwen_video_from_file("clip.mp4", &vp, &cfg, &clip, &err);   // cfg from mt_qwen_preproc_cfg_load
 *     ... clip.pixel_values (clip.n_patches, 3 * T * P * P) ...
 *     mt_qwen_video_free(&clip);
 *
 * Reference: qwen-vl-utils 0.0.14 (github QwenLM/Qwen3-VL, qwen-vl-utils/src/qwen_vl_utils/vision_process.py,
 * commit 96588727; for patch 14 its numbers are those of 0.0.10 in QwenLM/Qwen2.5-VL) for sampling and resizing, then
 * transformers' Qwen2-VL processor (rescale, normalize, temporal patchify) as in qwen_vision_pre.h, and
 * processing_qwen2_5_vl.py for second_per_grid_ts = temporal_patch_size / sample_fps.
 *
 * Shape legend: F factor = P * M (patch * merge), N frames sampled, N' = N rounded up to a multiple of T.
 *
 * A video file (fetch_video with a path):
 *     total, video_fps  = the header's frame count and rate (mt_video_info)
 *     N = nframes given: round_half_even(nframes / 2) * 2
 *         else:          floor2(min(max(total / video_fps * fps, ceil2(min_frames)), floor2(max_frames), total))
 *                        with max_frames defaulting to min(768, total)
 *         N must lie in [2, total]; a 1-frame video gives N = 1 (qwen-vl-utils raises there; the processor
 *         pads it to T frames like any short clip)
 *     index[k] = round_half_even(k * (total - 1) / (N - 1))   (torch.linspace(0, total - 1, N).round(), computed
 *                                                               exactly rather than in float32, see VALIDATION.md)
 *     sample_fps = N / total * video_fps
 * A list of images (fetch_video with a list; a folder is its files sorted by name, dot files skipped):
 *     each image PIL-bicubic resized to smart_resize(h, w, F, min_pixels or 4 F^2, max_pixels or 16384 F^2),
 *     the list padded to an even length with its last image; all must then share one size; sample_fps = fps
 *     (qwen-vl-utils' "sample_fps", default 2); index[k] = k
 * Then for both, with the frames' size (h, w):
 *     min_px = min_pixels or 128 F^2;  total_px = total_pixels or 128000 F^2 * 0.9
 *     max_px = min(max_pixels or inf, max(min(768 F^2, total_px / N * 2), int(min_px * 1.05)))
 *     (H, W) = smart_resize(h, w, F, min_px, max_px)      (qwen-vl-utils' variant: initial sides at least F)
 *     every frame resized by torchvision's antialiased bicubic (mt_image_resize_bicubic_torch)
 *     frames padded to N' by repeating the last, normalized and patchified (mt_qwen_patchify_frame)
 *     grid_thw = {N' / T, H / P, W / P};  second_per_grid = T / sample_fps
 * The processor's own smart_resize (cfg's min/max_pixels) must leave (H, W) unchanged, as it does for the default
 * bounds; MT_ERR_UNSUPPORTED otherwise, since transformers would resize a second time.
 *
 * Memory: frames are decoded one at a time (from a file, up to 3 ahead of the resize, on their own thread), resized
 * and written into pixel_values at once; only the last resized frame is kept (for the padding).
 */
#ifndef MT_MEDIA_QWEN_VIDEO_PRE_H
#define MT_MEDIA_QWEN_VIDEO_PRE_H

#include "media/qwen_vision_pre.h"

typedef struct mt_qwen_video_params {
    double fps;         /* frames sampled per second of video (> 0), or the sample_fps of an image list; 2 */
    int64_t nframes;    /* > 0: this many frames instead of fps; 0 */
    int64_t min_frames; /* 4 */
    int64_t max_frames; /* 0: min(768, total) */
    int64_t min_pixels, max_pixels, total_pixels; /* 0: qwen-vl-utils' defaults for the factor */
    int64_t max_source_pixels; /* cap on a decoded frame's width * height; MT_VIDEO_DEFAULT_MAX_PIXELS */
    int64_t threads;    /* a video file's frames: 1 decodes and resizes them in turn on the caller; otherwise
                           runs of them at once on this many threads (0: one per CPU; media/video_sample.h); the
                           bytes are the same */
} mt_qwen_video_params;

typedef struct mt_qwen_video {
    float *pixel_values;      /* (n_patches, 3 * T * P * P), owned */
    int64_t n_patches, grid_thw[3];
    int64_t *frame_indices;   /* (n_frames), owned: the source frames sampled, before temporal padding */
    int64_t n_frames;
    double sample_fps;
    double video_fps;         /* the source's frame rate (an image list: its fps): frame_indices / video_fps are times */
    int64_t source_frames;    /* frames in the source (an image list: n_frames) */
    float second_per_grid;    /* T / sample_fps */
} mt_qwen_video;

void mt_qwen_video_params_default(mt_qwen_video_params *out);

/* Which of a source's total frames is sampled frame k of n (torch.linspace(0, total - 1, n).round(), exactly). */
int64_t mt_qwen_video_frame_index(int64_t k, int64_t n, int64_t total);

/* From a video file. Errors name the file: those of mt_video_open / mt_video_read_frame, MT_ERR_INVALID_ARG for
 * parameters qwen-vl-utils refuses (an nframes outside [2, total], min_pixels over max_pixels, ...), with the
 * parameter's name. out is written only on success; free with mt_qwen_video_free. */
mt_status mt_qwen_video_from_file(const char *path, const mt_qwen_video_params *vp, const mt_qwen_preproc_cfg *cfg,
                                  mt_qwen_video *out, mt_err *err);

/* From image files (n >= 1) taken as consecutive frames. Errors name the image. */
mt_status mt_qwen_video_from_images(const char *const *paths, int64_t n, const mt_qwen_video_params *vp,
                                    const mt_qwen_preproc_cfg *cfg, mt_qwen_video *out, mt_err *err);

/* The regular files of dir sorted by name (bytewise), names starting with '.' skipped, as from_images. */
mt_status mt_qwen_video_from_dir(const char *dir, const mt_qwen_video_params *vp, const mt_qwen_preproc_cfg *cfg,
                                 mt_qwen_video *out, mt_err *err);

/* As mt_qwen_video_from_file and mt_qwen_video_from_dir without the pixels (pixel_values NULL, every other field as
 * they fill it): the grid and sampling the clip will have, from the file's header alone (a folder: its file count
 * and first frame), no frame decoded. Errors: those of the header and the parameters; a frame that fails to decode
 * or a folder frame of another size is found only by the decoding. */
mt_status mt_qwen_video_plan_file(const char *path, const mt_qwen_video_params *vp, const mt_qwen_preproc_cfg *cfg,
                                  mt_qwen_video *out, mt_err *err);
mt_status mt_qwen_video_plan_dir(const char *dir, const mt_qwen_video_params *vp, const mt_qwen_preproc_cfg *cfg,
                                 mt_qwen_video *out, mt_err *err);

/* Accepts NULL and a zeroed or already-freed clip. */
void mt_qwen_video_free(mt_qwen_video *v);

#endif
