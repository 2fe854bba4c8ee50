/* models/internvl_processor: the placeholder side of InternVL's processor - each image becomes <img>, then
 * <IMG_CONTEXT> once per feature row of its tiles, then </img> - and 1-D positions. Images reach the model as
 * pixel_values [tiles, 3, S, S] (mitten logits --pixel-values); the tiling itself (dynamic_preprocess /
 * GotOcr2ImageProcessor) is not here yet, so preprocess refuses an image, saying so.
 *
 * Reference: OpenGVLab/InternVL modeling_internvl_chat.py (chat: IMG_START_TOKEN + IMG_CONTEXT_TOKEN *
 * num_image_token * num_patches + IMG_END_TOKEN) and transformers models/internvl/processing_internvl.py.
 */

#include "models/config.h"
#include "models/model.h"

typedef struct internvl_proc {
    int64_t shuffle; /* 1 / downsample_ratio */
    int32_t image, start, end;
} internvl_proc;

static void release(void *impl) { mt_free(impl); }

static mt_status load(mt_model *m, const cJSON *cfg, const char *path, void **impl, mt_err *err) {
    mt_cfg r = {path, "", err, MT_OK};
    double ratio = mt_cfg_num_opt(&r, cfg, "downsample_ratio", 1.0 / 64, 1.0, 0.5);
    if (r.st) return r.st;
    int32_t start = m->tok ? mt_tokenizer_token_id(m->tok, "<img>") : -1;
    int32_t end = m->tok ? mt_tokenizer_token_id(m->tok, "</img>") : -1;
    if (start < 0 || end < 0 || start >= m->desc.vocab_size || end >= m->desc.vocab_size)
        return mt_err_set(err, MT_ERR_FORMAT, "%s/tokenizer.json %s the image wrapper tokens \"<img>\" and \"</img>\"",
                          m->dir, m->tok ? "lacks" : "is missing: it names");
    internvl_proc *p = mt_calloc(1, sizeof *p);
    if (!p) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    *p = (internvl_proc){(int64_t)(1.0 / ratio + 1e-9), (int32_t)m->desc.image_token_id, start, end};
    *impl = p;
    return MT_OK;
}

static mt_status preprocess(const void *impl, const mt_image *img, float **pixels, int64_t *n_patches,
                            mt_image_grid *grid, int64_t *patch_dim, mt_err *err) {
    (void)impl, (void)pixels, (void)n_patches, (void)grid, (void)patch_dim;
    return mt_err_set(err, MT_ERR_UNSUPPORTED, "%s: InternVL's image tiling is not implemented yet; give the "
                      "processor's pixel_values [tiles, 3, S, S] (mitten logits --pixel-values)", img->name);
}

static mt_status image_tokens(const void *impl, mt_image_grid g, int32_t *out, int64_t cap, int64_t *n, mt_err *err) {
    const internvl_proc *p = impl;
    int64_t s = p->shuffle;
    if (g.t < 1 || g.h < 1 || g.h != g.w || g.h % s || g.t > 4096 || g.h > 65536)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "image grid %lldx%lldx%lld: InternVL takes square tiles of a patch "
                          "grid divisible by %lld", (long long)g.t, (long long)g.h, (long long)g.w, (long long)s);
    int64_t rows = g.t * (g.h / s) * (g.w / s);
    *n = rows + 2;
    for (int64_t i = 0; i < *n && i < cap; i++) out[i] = i == 0 ? p->start : i == rows + 1 ? p->end : p->image;
    return MT_OK;
}

static mt_status positions(const mt_model *m, const void *impl, const int32_t *ids, int64_t L,
                           const mt_image_input *images, int n_images, int64_t start, int64_t *pos, int64_t *next,
                           mt_err *err) {
    (void)impl, (void)ids, (void)images, (void)n_images, (void)err;
    for (int a = 0; a < m->desc.pos_axes; a++)
        for (int64_t i = 0; i < L; i++) pos[a * L + i] = start + i;
    *next = start + L;
    return MT_OK;
}

const mt_processor_part mt_processor_internvl = {"internvl processor", load, release, preprocess, image_tokens,
                                                 positions};
