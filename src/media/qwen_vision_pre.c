/* media/qwen_vision_pre: Qwen2-VL image preprocessing, matching transformers' slow Qwen2VLImageProcessor (pixels)
 * and Qwen2VLImageProcessorFast (how preprocessor_config.json's size and min/max_pixels combine).
 *
 * Reference and shapes: see qwen_vision_pre.h. smart_resize does its arithmetic in double exactly as Python
 * does (true division, round half to even, floor, ceil, sqrt), which is exact to Python's answer while h * w
 * stays below 2^53.
 */
#include "media/qwen_vision_pre.h"

#include <math.h>
#include <string.h>

#include "base/file.h"
#include "base/json.h"
#include "media/media_int.h"
#include "tensor/cpu/cpu.h"

#define MAX_CFG_PIXELS ((int64_t)1 << 30)

static const float CLIP_MEAN[3] = {0.48145466f, 0.4578275f, 0.40821073f};
static const float CLIP_STD[3] = {0.26862954f, 0.26130258f, 0.27577711f};

void mt_qwen_preproc_cfg_default(mt_qwen_preproc_cfg *out) {
    *out = (mt_qwen_preproc_cfg){.patch_size = 14,
                                 .temporal_patch_size = 2,
                                 .merge_size = 2,
                                 .min_pixels = 3136,
                                 .max_pixels = 12845056,
                                 .rescale_factor = 1.0 / 255.0};
    memcpy(out->mean, CLIP_MEAN, sizeof CLIP_MEAN);
    memcpy(out->std, CLIP_STD, sizeof CLIP_STD);
}

void mt_qwen3_vl_preproc_cfg_default(mt_qwen_preproc_cfg *out) {
    *out = (mt_qwen_preproc_cfg){.patch_size = 16,
                                 .temporal_patch_size = 2,
                                 .merge_size = 2,
                                 .min_pixels = 65536,
                                 .max_pixels = 16777216,
                                 .mean = {0.5f, 0.5f, 0.5f},
                                 .std = {0.5f, 0.5f, 0.5f},
                                 .rescale_factor = 1.0 / 255.0};
}

/* transformers' Qwen2VLImageProcessor(Fast) class defaults: what a field the file omits gets. */
static void hf_class_defaults(mt_qwen_preproc_cfg *out) {
    mt_qwen_preproc_cfg_default(out);
    out->min_pixels = 56 * 56;
    out->max_pixels = 28 * 28 * 1280;
}

/* image_mean / image_std: three numbers, or one that HF repeats for every channel. */
static mt_status read_triple(const cJSON *root, const char *key, const char *what, double lo, double hi,
                             float out[3], mt_err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) return MT_OK;
    double d[3];
    if (cJSON_IsNumber(v)) {
        d[0] = d[1] = d[2] = v->valuedouble;
    } else if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 3) {
        for (int i = 0; i < 3; i++) {
            const cJSON *e = cJSON_GetArrayItem(v, i);
            if (!cJSON_IsNumber(e))
                return mt_err_set(err, MT_ERR_FORMAT, "%s: field \"%s\" must hold numbers", what, key);
            d[i] = e->valuedouble;
        }
    } else {
        return mt_err_set(err, MT_ERR_FORMAT, "%s: field \"%s\" must be a number or an array of 3 numbers", what,
                          key);
    }
    for (int i = 0; i < 3; i++)
        if (!(d[i] >= lo && d[i] <= hi))
            return mt_err_set(err, MT_ERR_FORMAT, "%s: field \"%s\"[%d] = %g is outside [%g, %g]", what, key, i, d[i],
                              lo, hi);
    for (int i = 0; i < 3; i++) out[i] = (float)d[i];
    return MT_OK;
}

static mt_status require_true(const cJSON *root, const char *key, const char *what, mt_err *err) {
    bool v = true;
    mt_status st = mt_json_bool_opt(root, key, what, &v, err);
    if (!st && !v)
        st = mt_err_set(err, MT_ERR_UNSUPPORTED, "%s: \"%s\": false is not supported for Qwen2-VL images", what, key);
    return st;
}

/* One bound: an integer in [1, MAX_CFG_PIXELS]; `name` is how messages call the field. */
static mt_status read_bound(const cJSON *v, const char *name, const char *what, int64_t *out, mt_err *err) {
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble))
        return mt_err_set(err, MT_ERR_FORMAT, "%s: field \"%s\" must be an integer", what, name);
    if (!(v->valuedouble >= 1 && v->valuedouble <= (double)MAX_CFG_PIXELS))
        return mt_err_set(err, MT_ERR_FORMAT, "%s: field \"%s\" = %.17g is outside [1, %lld]", what, name,
                          v->valuedouble, (long long)MAX_CFG_PIXELS);
    *out = (int64_t)v->valuedouble;
    return MT_OK;
}

static const cJSON *non_null(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

/* min_pixels and max_pixels from `size` and the top-level keys, as Qwen2VLImageProcessorFast.__init__ combines them
 * (see the header): size's edges, each replaced by its top-level twin when that is given. */
static mt_status read_bounds(const cJSON *root, const char *what, mt_qwen_preproc_cfg *c, mt_err *err) {
    const cJSON *size = non_null(root, "size"), *top_min = non_null(root, "min_pixels");
    const cJSON *top_max = non_null(root, "max_pixels");
    const char *lo_name = "the default shortest_edge", *hi_name = "the default longest_edge";
    int64_t lo = 56 * 56, hi = 28 * 28 * 1280;
    bool have_lo = true, have_hi = true;
    mt_status st;
    if (size) {
        if (!cJSON_IsObject(size)) return mt_err_set(err, MT_ERR_FORMAT, "%s: field \"size\" must be an object", what);
        have_lo = have_hi = false;
        for (const cJSON *e = size->child; e; e = e->next) {
            if (strcmp(e->string, "shortest_edge") == 0) {
                lo_name = "\"size.shortest_edge\"";
                if ((st = read_bound(e, "size.shortest_edge", what, &lo, err))) return st;
                have_lo = true;
            } else if (strcmp(e->string, "longest_edge") == 0) {
                hi_name = "\"size.longest_edge\"";
                if ((st = read_bound(e, "size.longest_edge", what, &hi, err))) return st;
                have_hi = true;
            } else if (!((top_min && strcmp(e->string, "min_pixels") == 0) ||
                         (top_max && strcmp(e->string, "max_pixels") == 0))) {
                return mt_err_set(err, MT_ERR_FORMAT,
                                  "%s: field \"size.%s\": size may hold only \"shortest_edge\" and "
                                  "\"longest_edge\" (transformers refuses other keys)",
                                  what, e->string);
            }
        }
    }
    if (top_min) {
        lo_name = "\"min_pixels\"";
        if ((st = read_bound(top_min, "min_pixels", what, &lo, err))) return st;
        have_lo = true;
    }
    if (top_max) {
        hi_name = "\"max_pixels\"";
        if ((st = read_bound(top_max, "max_pixels", what, &hi, err))) return st;
        have_hi = true;
    }
    if (!have_lo || !have_hi)
        return mt_err_set(err, MT_ERR_FORMAT,
                          "%s: field \"size\" lacks \"%s\" and no top-level \"%s\" replaces it (transformers "
                          "needs both shortest_edge and longest_edge)",
                          what, have_lo ? "longest_edge" : "shortest_edge", have_lo ? "max_pixels" : "min_pixels");
    if (lo > hi)
        return mt_err_set(err, MT_ERR_FORMAT,
                          "%s: %s = %lld (the lower pixel bound) is more than %s = %lld (the upper)", what,
                          lo_name, (long long)lo, hi_name, (long long)hi);
    c->min_pixels = lo;
    c->max_pixels = hi;
    return MT_OK;
}

static mt_status parse_cfg(const cJSON *root, const char *what, mt_qwen_preproc_cfg *c, mt_err *err) {
    if (!cJSON_IsObject(root)) return mt_err_set(err, MT_ERR_FORMAT, "%s: top level must be an object", what);
    mt_status st;
    const char *flags[] = {"do_resize", "do_rescale", "do_normalize", "do_convert_rgb"};
    for (size_t i = 0; i < MT_ARRAY_LEN(flags); i++)
        if ((st = require_true(root, flags[i], what, err))) return st;
    int64_t resample = 3;
    if ((st = mt_json_int_opt(root, "resample", what, 0, 5, &resample, err))) return st;
    if (resample != 3)
        return mt_err_set(err, MT_ERR_UNSUPPORTED, "%s: \"resample\": %lld (only 3, bicubic, is supported)", what,
                          (long long)resample);

    if ((st = read_bounds(root, what, c, err))) return st;
    if ((st = mt_json_int_opt(root, "patch_size", what, 1, 256, &c->patch_size, err)) ||
        (st = mt_json_int_opt(root, "temporal_patch_size", what, 1, 16, &c->temporal_patch_size, err)) ||
        (st = mt_json_int_opt(root, "merge_size", what, 1, 16, &c->merge_size, err)) ||
        (st = mt_json_num_opt(root, "rescale_factor", what, 1e-6, 1.0, &c->rescale_factor, err)) ||
        (st = read_triple(root, "image_mean", what, -1e3, 1e3, c->mean, err)) ||
        (st = read_triple(root, "image_std", what, 1e-6, 1e3, c->std, err)))
        return st;
    return MT_OK;
}

static bool cfg_ok(const mt_qwen_preproc_cfg *c) {
    bool ok = c->patch_size >= 1 && c->patch_size <= 256 && c->temporal_patch_size >= 1 &&
              c->temporal_patch_size <= 16 && c->merge_size >= 1 && c->merge_size <= 16 && c->min_pixels >= 1 &&
              c->max_pixels >= c->min_pixels && c->max_pixels <= MAX_CFG_PIXELS && c->rescale_factor > 0 &&
              isfinite(c->rescale_factor);
    for (int i = 0; i < 3; i++) ok = ok && isfinite(c->mean[i]) && isfinite(c->std[i]) && c->std[i] != 0;
    return ok;
}

mt_status mt_qwen_preproc_cfg_load_with(const char *model_dir, const mt_qwen_preproc_cfg *defaults,
                                        mt_qwen_preproc_cfg *out, mt_err *err) {
    mt_qwen_preproc_cfg fallback, c;
    if (!defaults) {
        mt_qwen_preproc_cfg_default(&fallback);
        defaults = &fallback;
    }
    if (!model_dir || !out || !cfg_ok(defaults))
        return mt_err_set(err, MT_ERR_INVALID_ARG, "qwen preprocessor config: missing folder or output, or defaults "
                                                   "that cannot work");
    char path[4096];
    mt_status st = mt_path_join(path, sizeof path, model_dir, "preprocessor_config.json", err);
    if (st) return st;
    if (!mt_file_exists(path)) {
        *out = *defaults;
        return MT_OK;
    }
    cJSON *root;
    if ((st = mt_json_parse_file(path, 1 << 20, &root, err))) return st;
    hf_class_defaults(&c);
    st = parse_cfg(root, path, &c, err);
    cJSON_Delete(root);
    if (!st) *out = c;
    return st;
}

mt_status mt_qwen_preproc_cfg_load(const char *model_dir, mt_qwen_preproc_cfg *out, mt_err *err) {
    return mt_qwen_preproc_cfg_load_with(model_dir, NULL, out, err);
}

mt_status mt_qwen_smart_resize(int64_t h, int64_t w, int64_t factor, int64_t min_pixels, int64_t max_pixels,
                               int64_t *out_h, int64_t *out_w, mt_err *err) {
    int64_t area;
    if (h < 1 || w < 1 || !mt_mul_i64_ok(h, w, &area) || area > ((int64_t)1 << 53) || factor < 1 ||
        factor > 4096 || min_pixels < 1 || max_pixels < min_pixels || max_pixels > ((int64_t)1 << 53))
        return mt_err_set(err, MT_ERR_INVALID_ARG,
                          "smart_resize: bad arguments (%lldx%lld, factor %lld, pixels [%lld, %lld])", (long long)h,
                          (long long)w, (long long)factor, (long long)min_pixels, (long long)max_pixels);
    double ratio = (double)MT_MAX(h, w) / (double)MT_MIN(h, w);
    if (ratio > 200)
        return mt_err_set(err, MT_ERR_LIMIT, "image %lldx%lld: aspect ratio %g is over the 200 Qwen2-VL allows",
                          (long long)w, (long long)h, ratio);
    double f = (double)factor;
    int64_t hb = (int64_t)rint((double)h / f) * factor;
    int64_t wb = (int64_t)rint((double)w / f) * factor;
    if (hb * wb > max_pixels) {
        double beta = sqrt((double)area / (double)max_pixels);
        hb = MT_MAX(factor, (int64_t)floor((double)h / beta / f) * factor);
        wb = MT_MAX(factor, (int64_t)floor((double)w / beta / f) * factor);
    } else if (hb * wb < min_pixels) {
        double beta = sqrt((double)min_pixels / (double)area);
        hb = (int64_t)ceil((double)h * beta / f) * factor;
        wb = (int64_t)ceil((double)w * beta / f) * factor;
    }
    *out_h = hb;
    *out_w = wb;
    return MT_OK;
}

/* A pixel's value depends only on its byte and channel, so one table per channel holds every result. */
void mt_qwen_norm_table(const mt_qwen_preproc_cfg *cfg, float lut[3][256]) {
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++) {
            float x = (float)((double)v * cfg->rescale_factor);
            lut[c][v] = (x - cfg->mean[c]) / cfg->std[c];
        }
}

void mt_qwen_patchify_frame(const mt_image *frame, int64_t f, const mt_qwen_preproc_cfg *cfg, const float lut[3][256],
                            float *pixel_values) {
    const int64_t P = cfg->patch_size, T = cfg->temporal_patch_size, M = cfg->merge_size;
    const int64_t gh = frame->height / P, gw = frame->width / P, cols = 3 * T * P * P, t = f % T;
    float *row = pixel_values + (size_t)(f / T) * (size_t)(gh * gw) * (size_t)cols;
    if (P <= 16 && mt_cpu_level_get() >= MT_CPU_AVX512) {
        mt_qwen_patchify_frame_avx512(frame->rgb, frame->width, gh, gw, P, T, M, t, lut, row);
        return;
    }
    for (int64_t bh = 0; bh < gh / M; bh++)
        for (int64_t bw = 0; bw < gw / M; bw++)
            for (int64_t mh = 0; mh < M; mh++)
                for (int64_t mw = 0; mw < M; mw++, row += cols) {
                    int64_t y0 = (bh * M + mh) * P, x0 = (bw * M + mw) * P;
                    for (int c = 0; c < 3; c++) {
                        float *dst = row + (c * T + t) * P * P;
                        for (int64_t ph = 0; ph < P; ph++) {
                            const uint8_t *s =
                                frame->rgb + ((size_t)(y0 + ph) * (size_t)frame->width + (size_t)x0) * 3 + c;
                            for (int64_t pw = 0; pw < P; pw++) dst[ph * P + pw] = lut[c][s[3 * pw]];
                        }
                    }
                }
}

static mt_status preprocess(const mt_image *img, const mt_qwen_preproc_cfg *cfg, float **pixel_values,
                            int64_t *n_patches, int64_t grid_thw[3], mt_err *err) {
    if (!img || !img->rgb || !cfg || !pixel_values || !n_patches || !grid_thw)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "qwen preprocess: missing image, config or output");
    if (!cfg_ok(cfg)) return mt_err_set(err, MT_ERR_INVALID_ARG, "qwen preprocess: invalid configuration values");
    const int64_t P = cfg->patch_size, T = cfg->temporal_patch_size, M = cfg->merge_size;
    int64_t rh, rw;
    mt_status st = mt_qwen_smart_resize(img->height, img->width, P * M, cfg->min_pixels, cfg->max_pixels, &rh, &rw,
                                        err);
    if (st) return st;

    const int64_t gh = rh / P, gw = rw / P, n = gh * gw, cols = 3 * T * P * P;
    size_t total;
    if (!mt_mul_ok((size_t)n, (size_t)cols, &total))
        return mt_err_set(err, MT_ERR_LIMIT, "qwen preprocess: %lld patches do not fit in memory", (long long)n);
    float *pv = mt_malloc_array(total, sizeof *pv);
    if (!pv) return mt_err_set(err, MT_ERR_NOMEM, "qwen preprocess: out of memory for %lld patches", (long long)n);
    mt_image resized = {0};
    const mt_image *src = img;
    if (rh != img->height || rw != img->width) {
        if ((st = mt_image_resize_bicubic(img, rw, rh, &resized, err))) {
            mt_free(pv);
            return st;
        }
        src = &resized;
    }

    float lut[3][256];
    mt_qwen_norm_table(cfg, lut);
    for (int64_t t = 0; t < T; t++) mt_qwen_patchify_frame(src, t, cfg, lut, pv);
    mt_image_free(&resized);
    *pixel_values = pv;
    *n_patches = n;
    grid_thw[0] = 1;
    grid_thw[1] = gh;
    grid_thw[2] = gw;
    return MT_OK;
}

mt_status mt_qwen_preprocess(const mt_image *img, const mt_qwen_preproc_cfg *cfg, float **pixel_values,
                             int64_t *n_patches, int64_t grid_thw[3], mt_err *err) {
    mt_status st = preprocess(img, cfg, pixel_values, n_patches, grid_thw, err);
    return st && img && img->name ? mt_err_prefix(err, "%s", img->name) : st;
}
