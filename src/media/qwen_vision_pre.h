/* media/qwen_vision_pre: Qwen2-VL / Qwen2.5-VL / Qwen3-VL image preprocessing (pixel_values and image_grid_thw).
 *
 * Usage:
 *     mt_qwen_preproc_cfg cfg;   mt_qwen_preproc_cfg_load(model_dir, &cfg, &err);
 *     float *pv;  int64_t n, thw[3];
 *     mt_qwen_preprocess(&img, &cfg, &pv, &n, thw, &err);      // pv: (n, 3 * T * P * P), free with mt_free
 * A family whose checkpoints need other values when the folder has no preprocessor_config.json passes them:
 *     mt_qwen_preproc_cfg d;     mt_qwen3_vl_preproc_cfg_default(&d);
 *     mt_qwen_preproc_cfg_load_with(model_dir, &d, &cfg, &err);
 *
 * Reference: transformers 4.57 models/qwen2_vl/image_processing_qwen2_vl.py (the slow Qwen2VLImageProcessor:
 * smart_resize, _preprocess) and image_transforms.py (resize through PIL, rescale, normalize). Qwen3-VL has no
 * image processor of its own: its preprocessor_config.json names Qwen2VLImageProcessorFast, whose __init__ and
 * _further_process_kwargs (image_processing_qwen2_vl_fast.py, read at transformers 5.0.0.dev0, commit e9d73c31)
 * decide how `size` and min/max_pixels combine.
 *
 * Shape legend: P patch_size, T temporal_patch_size, M merge_size, C = 3 channels, H x W the resized image,
 * gh = H / P, gw = W / P (both multiples of M), N = gh * gw patches for one image (grid_t = 1).
 *
 * Steps, with the dtype HF uses at each:
 *     (H, W) = smart_resize(h, w, factor = P * M, min_pixels, max_pixels)
 *     u8     = PIL bicubic resize to (W, H)                      (a copy when the size is unchanged)
 *     x      = float32(float64(u8) * rescale_factor)            (rescale computes in float64, then casts)
 *     x      = (x - float32(mean[c])) / float32(std[c])         (normalize: float32 throughout)
 *     frames = T copies of the image                             (an image is padded to T frames)
 *     pixel_values[row, col] with
 *         row = ((bh * (gw / M) + bw) * M + mh) * M + mw          (patches of one M x M merge window adjacent)
 *         col = ((c * T + t) * P + ph) * P + pw
 *         value = x[c, (bh * M + mh) * P + ph, (bw * M + mw) * P + pw]
 *     which is HF's reshape to (1, T, C, gh/M, M, P, gw/M, M, P), transpose (0,3,6,4,7,2,1,5,8), flatten.
 *
 * preprocessor_config.json fields read (all validated; unknown fields ignored). A field the file omits gets
 * transformers' class default (third column), since that is what transformers gives it; a folder without the
 * file gets the family's defaults (last two columns).
 *     | field                           | meaning                             | omitted  | no file: 2.5-VL | 3-VL     |
 *     | ------------------------------- | ----------------------------------- | -------- | --------------- | -------- |
 *     | size.shortest_edge, min_pixels  | smart_resize lower bound            | 3136     | 3136            | 65536    |
 *     | size.longest_edge, max_pixels   | smart_resize upper bound            | 1003520  | 12845056        | 16777216 |
 *     | patch_size                      | P                                   | 14       | 14              | 16       |
 *     | temporal_patch_size             | T                                   | 2        | 2               | 2        |
 *     | merge_size                      | M                                   | 2        | 2               | 2        |
 *     | image_mean, image_std           | 3 numbers each (or one, broadcast)  | CLIP     | CLIP            | 0.5      |
 *     | rescale_factor                  | multiplier before normalising       | 1/255    | 1/255           | 1/255    |
 *     | do_resize, do_rescale           | must be true when given             | true     | true            | true     |
 *     | do_normalize, do_convert_rgb    | must be true when given             | true     | true            | true     |
 *     | resample                        | must be 3 (PIL BICUBIC) when given  | 3        | 3               | 3        |
 * The bounds, as Qwen2VLImageProcessorFast combines them (null counts as absent):
 *     - `size`, when given, must be an object; its shortest_edge is min_pixels and its longest_edge max_pixels.
 *       Without `size` both start at the class default {3136, 1003520}.
 *     - A top-level min_pixels replaces size.shortest_edge, a top-level max_pixels size.longest_edge, each on its
 *       own (transformers' "backward compatibility" rule); a key "min_pixels" / "max_pixels" inside `size` (the
 *       form transformers 4.45 saved) is dropped when its top-level twin is given.
 *     - After that both bounds must be known and `size` may hold nothing else, or transformers raises; so does
 *       mitten, naming the field. Bounds are integers in [1, 2^30] and the lower may not exceed the upper.
 * (The slow Qwen2VLImageProcessor of the same version discards a valid `size` in __init__ and falls back to
 * {3136, 1003520} unless min/max_pixels are given: a bug mitten does not copy.)
 */
#ifndef MT_MEDIA_QWEN_VISION_PRE_H
#define MT_MEDIA_QWEN_VISION_PRE_H

#include "media/image.h"

typedef struct mt_qwen_preproc_cfg {
    int64_t patch_size, temporal_patch_size, merge_size, min_pixels, max_pixels;
    float mean[3], std[3];
    double rescale_factor;
} mt_qwen_preproc_cfg;

/* Fills out with the Qwen2.5-VL column of the table above (its published preprocessor_config.json). */
void mt_qwen_preproc_cfg_default(mt_qwen_preproc_cfg *out);

/* Fills out with the Qwen3-VL column (the published Qwen3-VL-4B-Instruct file: patch 16, mean and std 0.5). */
void mt_qwen3_vl_preproc_cfg_default(mt_qwen_preproc_cfg *out);

/* Reads model_dir/preprocessor_config.json; *defaults (mt_qwen_preproc_cfg_default when NULL) when the file does
 * not exist. MT_ERR_FORMAT names the file and the field for wrong types, absurd or inconsistent values,
 * MT_ERR_UNSUPPORTED for options mitten does not implement, MT_ERR_INVALID_ARG for defaults that cannot work.
 * out is written only on success. */
mt_status mt_qwen_preproc_cfg_load_with(const char *model_dir, const mt_qwen_preproc_cfg *defaults,
                                        mt_qwen_preproc_cfg *out, mt_err *err);

/* mt_qwen_preproc_cfg_load_with with the Qwen2.5-VL defaults. */
mt_status mt_qwen_preproc_cfg_load(const char *model_dir, mt_qwen_preproc_cfg *out, mt_err *err);

/* transformers' smart_resize: both sides multiples of factor, area within [min_pixels, max_pixels] where it can
 * be, aspect ratio kept. MT_ERR_LIMIT for an aspect ratio over 200 (HF raises), MT_ERR_INVALID_ARG for sizes
 * below 1 or so large that double arithmetic would no longer match Python's. */
mt_status mt_qwen_smart_resize(int64_t h, int64_t w, int64_t factor, int64_t min_pixels, int64_t max_pixels,
                               int64_t *out_h, int64_t *out_w, mt_err *err);

/* pixel_values (n_patches, 3 * T * P * P) float32, allocated (free with mt_free); grid_thw = {1, gh, gw}. Errors
 * begin with img->name where the image has one (the file an aspect ratio over 200 came from). */
mt_status mt_qwen_preprocess(const mt_image *img, const mt_qwen_preproc_cfg *cfg, float **pixel_values,
                             int64_t *n_patches, int64_t grid_thw[3], mt_err *err);

/* Shared with the video processor (qwen_video_pre.c). The table maps each byte of channel c to
 * (float32(byte * rescale_factor) - mean[c]) / std[c]. patchify writes frame f of a clip (f = gt * T + t) into its
 * rows of pixel_values, whose grid is (grid_t, H / P, W / P) for frames of H x W (multiples of P * M):
 *     row = (((gt * (gh / M) + bh) * (gw / M) + bw) * M + mh) * M + mw,  col = ((c * T + t) * P + ph) * P + pw
 * (HF's reshape to (grid_t, T, C, gh/M, M, P, gw/M, M, P) and the transpose above). */
void mt_qwen_norm_table(const mt_qwen_preproc_cfg *cfg, float lut[3][256]);
void mt_qwen_patchify_frame(const mt_image *frame, int64_t f, const mt_qwen_preproc_cfg *cfg, const float lut[3][256],
                            float *pixel_values);

#endif
