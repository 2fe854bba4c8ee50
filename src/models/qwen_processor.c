/* models/qwen_processor: the multimodal processor of the Qwen VL families - images as Qwen2VLImageProcessor makes them
 * (media/qwen_vision_pre.h), each image placeholder repeated once per merged patch, and M-RoPE positions as
 * transformers' get_rope_index gives them.
 *
 * Reference: transformers models/qwen2_5_vl/modeling_qwen2_5_vl.py (Qwen2_5_VLModel.get_rope_index) and
 * models/qwen3_vl/modeling_qwen3_vl.py (the same for images).
 */
#include <stdio.h>
#include <string.h>

#include "base/file.h"
#include "media/qwen_vision_pre.h"
#include "models/config.h"
#include "models/model.h"

typedef struct qwen_proc {
    mt_qwen_preproc_cfg pre;
    int64_t merge, image_token_id;
} qwen_proc;

static void release(void *impl) { mt_free(impl); }

/* defaults: the family's preprocessor values, for folders without preprocessor_config.json */
static mt_status load(mt_model *m, const cJSON *cfg, const char *path, const mt_qwen_preproc_cfg *defaults,
                      void **impl, mt_err *err) {
    const cJSON *vc = mt_cfg_section(cfg, "vision_config", false);
    if (!vc) return mt_err_set(err, MT_ERR_FORMAT, "%s: missing object \"vision_config\"", path);
    if (m->desc.image_token_id < 0) return mt_err_set(err, MT_ERR_FORMAT, "%s: missing field \"image_token_id\"", path);
    mt_cfg r = {path, "vision_config", err, MT_OK};
    int64_t patch = mt_cfg_int_opt(&r, vc, "patch_size", 1, 1024, 14);
    int64_t temporal = mt_cfg_int_opt(&r, vc, "temporal_patch_size", 1, 64, 2);
    int64_t merge = mt_cfg_int_opt(&r, vc, "spatial_merge_size", 1, 64, 2);
    if (r.st) return r.st;
    qwen_proc *p = mt_calloc(1, sizeof *p);
    if (!p) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    p->merge = merge;
    p->image_token_id = m->desc.image_token_id;
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

static mt_status load_qwen2_5(mt_model *m, const cJSON *cfg, const char *path, void **impl, mt_err *err) {
    mt_qwen_preproc_cfg d;
    mt_qwen_preproc_cfg_default(&d);
    return load(m, cfg, path, &d, impl, err);
}

static mt_status load_qwen3(mt_model *m, const cJSON *cfg, const char *path, void **impl, mt_err *err) {
    mt_qwen_preproc_cfg d;
    mt_qwen3_vl_preproc_cfg_default(&d);
    return load(m, cfg, path, &d, impl, err);
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

static mt_status image_tokens(const void *impl, mt_image_grid g, int32_t *out, int64_t cap, int64_t *n, mt_err *err) {
    const qwen_proc *p = impl;
    int64_t M = p->merge;
    if (g.t < 1 || g.h < 1 || g.w < 1 || g.h % M || g.w % M || g.t > 4096 || g.h > 65536 || g.w > 65536)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "image grid %lldx%lldx%lld: sides must be positive multiples of %lld",
                          (long long)g.t, (long long)g.h, (long long)g.w, (long long)M);
    *n = g.t * (g.h / M) * (g.w / M);
    for (int64_t i = 0; i < *n && i < cap; i++) out[i] = (int32_t)p->image_token_id;
    return MT_OK;
}

/* Text runs count up from the largest position so far + 1; an image at text offset s takes (s, s + row, s + col)
 * over its merged grid (images have no time axis: transformers scales the frame index by 0 seconds per grid step). */
static mt_status positions(const mt_model *m, const void *impl, const int32_t *ids, int64_t L,
                           const mt_image_input *images, int n_images, int64_t start, int64_t *pos, int64_t *next,
                           mt_err *err) {
    const qwen_proc *p = impl;
    (void)m;
    int64_t M = p->merge, at = start, max_pos = start - 1;
    int img = 0;
    for (int64_t i = 0; i < L;) {
        if (ids[i] != p->image_token_id) {
            for (int a = 0; a < 3; a++) pos[a * L + i] = at;
            max_pos = at++;
            i++;
            continue;
        }
        if (img >= n_images)
            return mt_err_set(err, MT_ERR_INVALID_ARG, "prompt has more image tokens than the %d image(s) given",
                              n_images);
        mt_image_grid g = images[img++].grid;
        int64_t gh = g.h / M, gw = g.w / M, count = g.t * gh * gw;
        if (i + count > L)
            return mt_err_set(err, MT_ERR_INVALID_ARG, "image %d needs %lld image tokens, the prompt has fewer", img,
                              (long long)count);
        for (int64_t k = 0; k < count; k++) {
            if (ids[i + k] != p->image_token_id)
                return mt_err_set(err, MT_ERR_INVALID_ARG, "image %d needs %lld image tokens, the prompt has %lld",
                                  img, (long long)count, (long long)k);
            int64_t hw = k % (gh * gw);
            pos[0 * L + i + k] = at;
            pos[1 * L + i + k] = at + hw / gw;
            pos[2 * L + i + k] = at + hw % gw;
        }
        max_pos = at + MT_MAX(gh, gw) - 1;
        at = max_pos + 1;
        i += count;
    }
    if (img != n_images)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "%d image(s) given, the prompt has image tokens for %d", n_images,
                          img);
    *next = max_pos + 1;
    return MT_OK;
}

const mt_processor_part mt_processor_qwen_vl = {"qwen2-vl processor", load_qwen2_5, release, preprocess, image_tokens,
                                                positions, NULL};
const mt_processor_part mt_processor_qwen3_vl = {"qwen3-vl processor", load_qwen3, release, preprocess, image_tokens,
                                                 positions, NULL};
