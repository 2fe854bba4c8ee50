/* media/qwen_vision_pre: Qwen2-VL / Qwen2.5-VL image preprocessing (pixel_values and image_grid_thw).
 *
 * Usage:
 *     mt_qwen_preproc_cfg cfg;   mt_qwen_preproc_cfg_load(model_dir, &cfg, &err);
 *     float *pv;  int64_t n, thw[3];
 *     mt_qwen_preprocess(&img, &cfg, &pv, &n, thw, &err);      // pv: (n, 3 * T * P * P), free with mt_free
 *
 * Reference: transformers 4.57 models/qwen2_vl/image_processing_qwen2_vl.py (the slow Qwen2VLImageProcessor:
 * smart_resize, _preprocess) and image_transforms.py (resize through PIL, rescale, normalize).
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
 * preprocessor_config.json fields read (all validated; unknown fields ignored):
 *     | field                           | meaning                                | absent file default |
 *     | ------------------------------- | -------------------------------------- | ------------------- |
 *     | min_pixels / size.shortest_edge | smart_resize lower bound (top wins)    | 3136                |
 *     | max_pixels / size.longest_edge  | smart_resize upper bound (top wins)    | 12845056            |
 *     | patch_size                      | P                                      | 14                  |
 *     | temporal_patch_size             | T                                      | 2                   |
 *     | merge_size                      | M                                      | 2                   |
 *     | image_mean, image_std           | 3 numbers each (or one, broadcast)     | OpenAI CLIP         |
 *     | rescale_factor                  | multiplier before normalising          | 1/255               |
 *     | do_resize/do_rescale/do_normalize/do_convert_rgb | must be true when given | true           |
 *     | resample                        | must be 3 (PIL BICUBIC) when given     | 3                   |
 * A file that exists but omits min/max pixels gets transformers' own defaults, 56*56 and 28*28*1280.
 */
#ifndef MT_MEDIA_QWEN_VISION_PRE_H
#define MT_MEDIA_QWEN_VISION_PRE_H

#include "media/image.h"

typedef struct mt_qwen_preproc_cfg {
    int64_t patch_size, temporal_patch_size, merge_size, min_pixels, max_pixels;
    float mean[3], std[3];
    double rescale_factor;
} mt_qwen_preproc_cfg;

/* Fills out with the defaults of the table above (the published Qwen2.5-VL values). */
void mt_qwen_preproc_cfg_default(mt_qwen_preproc_cfg *out);

/* Reads model_dir/preprocessor_config.json; defaults when the file does not exist. MT_ERR_FORMAT names the file
 * and the field for wrong types and absurd values, MT_ERR_UNSUPPORTED for options mitten does not implement. */
mt_status mt_qwen_preproc_cfg_load(const char *model_dir, mt_qwen_preproc_cfg *out, mt_err *err);

/* transformers' smart_resize: both sides multiples of factor, area within [min_pixels, max_pixels] where it can
 * be, aspect ratio kept. MT_ERR_LIMIT for an aspect ratio over 200 (HF raises), MT_ERR_INVALID_ARG for sizes
 * below 1 or so large that double arithmetic would no longer match Python's. */
mt_status mt_qwen_smart_resize(int64_t h, int64_t w, int64_t factor, int64_t min_pixels, int64_t max_pixels,
                               int64_t *out_h, int64_t *out_w, mt_err *err);

/* pixel_values (n_patches, 3 * T * P * P) float32, allocated (free with mt_free); grid_thw = {1, gh, gw}. */
mt_status mt_qwen_preprocess(const mt_image *img, const mt_qwen_preproc_cfg *cfg, float **pixel_values,
                             int64_t *n_patches, int64_t grid_thw[3], mt_err *err);

#endif
