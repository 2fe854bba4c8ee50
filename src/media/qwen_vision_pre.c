/* media/qwen_vision_pre: Qwen2-VL image preprocessing, matching transformers' slow Qwen2VLImageProcessor.
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

    /* transformers' own defaults for a file that names neither bound. */
    c->min_pixels = 56 * 56;
    c->max_pixels = 28 * 28 * 1280;
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(root, "size");
    if (size && !cJSON_IsNull(size)) {
        if (!cJSON_IsObject(size)) return mt_err_set(err, MT_ERR_FORMAT, "%s: field \"size\" must be an object", what);
        if ((st = mt_json_int_req(size, "shortest_edge", what, 1, MAX_CFG_PIXELS, &c->min_pixels, err)) ||
            (st = mt_json_int_req(size, "longest_edge", what, 1, MAX_CFG_PIXELS, &c->max_pixels, err)))
            return st;
    }
    if ((st = mt_json_int_opt(root, "min_pixels", what, 1, MAX_CFG_PIXELS, &c->min_pixels, err)) ||
        (st = mt_json_int_opt(root, "max_pixels", what, 1, MAX_CFG_PIXELS, &c->max_pixels, err)) ||
        (st = mt_json_int_opt(root, "patch_size", what, 1, 256, &c->patch_size, err)) ||
        (st = mt_json_int_opt(root, "temporal_patch_size", what, 1, 16, &c->temporal_patch_size, err)) ||
        (st = mt_json_int_opt(root, "merge_size", what, 1, 16, &c->merge_size, err)) ||
        (st = mt_json_num_opt(root, "rescale_factor", what, 1e-6, 1.0, &c->rescale_factor, err)) ||
        (st = read_triple(root, "image_mean", what, -1e3, 1e3, c->mean, err)) ||
        (st = read_triple(root, "image_std", what, 1e-6, 1e3, c->std, err)))
        return st;
    if (c->min_pixels > c->max_pixels)
        return mt_err_set(err, MT_ERR_FORMAT, "%s: min_pixels %lld is more than max_pixels %lld", what,
                          (long long)c->min_pixels, (long long)c->max_pixels);
    return MT_OK;
}

mt_status mt_qwen_preproc_cfg_load(const char *model_dir, mt_qwen_preproc_cfg *out, mt_err *err) {
    char path[4096];
    mt_status st = mt_path_join(path, sizeof path, model_dir, "preprocessor_config.json", err);
    if (st) return st;
    mt_qwen_preproc_cfg c;
    mt_qwen_preproc_cfg_default(&c);
    if (!mt_file_exists(path)) {
        *out = c;
        return MT_OK;
    }
    cJSON *root;
    if ((st = mt_json_parse_file(path, 1 << 20, &root, err))) return st;
    st = parse_cfg(root, path, &c, err);
    cJSON_Delete(root);
    if (!st) *out = c;
    return st;
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

static bool cfg_ok(const mt_qwen_preproc_cfg *c) {
    bool ok = c->patch_size >= 1 && c->patch_size <= 256 && c->temporal_patch_size >= 1 &&
              c->temporal_patch_size <= 16 && c->merge_size >= 1 && c->merge_size <= 16 && c->min_pixels >= 1 &&
              c->max_pixels >= c->min_pixels && c->max_pixels <= MAX_CFG_PIXELS && c->rescale_factor > 0 &&
              isfinite(c->rescale_factor);
    for (int i = 0; i < 3; i++) ok = ok && isfinite(c->mean[i]) && isfinite(c->std[i]) && c->std[i] != 0;
    return ok;
}

mt_status mt_qwen_preprocess(const mt_image *img, const mt_qwen_preproc_cfg *cfg, float **pixel_values,
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

    /* A pixel's value depends only on its byte and channel, so one table per channel holds every result. */
    float lut[3][256];
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++) {
            float x = (float)((double)v * cfg->rescale_factor);
            lut[c][v] = (x - cfg->mean[c]) / cfg->std[c];
        }

    float *row = pv;
    for (int64_t bh = 0; bh < gh / M; bh++)
        for (int64_t bw = 0; bw < gw / M; bw++)
            for (int64_t mh = 0; mh < M; mh++)
                for (int64_t mw = 0; mw < M; mw++, row += cols) {
                    int64_t y0 = (bh * M + mh) * P, x0 = (bw * M + mw) * P;
                    for (int c = 0; c < 3; c++) {
                        float *dst = row + c * T * P * P;
                        for (int64_t ph = 0; ph < P; ph++) {
                            const uint8_t *s = src->rgb + ((size_t)(y0 + ph) * (size_t)rw + (size_t)x0) * 3 + c;
                            for (int64_t pw = 0; pw < P; pw++) dst[ph * P + pw] = lut[c][s[3 * pw]];
                        }
                        for (int64_t t = 1; t < T; t++) memcpy(dst + t * P * P, dst, (size_t)(P * P) * sizeof *dst);
                    }
                }
    mt_image_free(&resized);
    *pixel_values = pv;
    *n_patches = n;
    grid_thw[0] = 1;
    grid_thw[1] = gh;
    grid_thw[2] = gw;
    return MT_OK;
}
