/* models/gguf_mmproj: the vision part as the projector file llama.cpp's mtmd library reads (tools/mtmd/clip.cpp),
 * as the converter writes it with --mmproj (conversion/qwenvl.py Qwen2VLVisionModel; Qwen3-VL's and InternVL's
 * below, from qwen3vl.py and internvl.py):
 *
 *     | key                                        | type  | value                                         |
 *     |--------------------------------------------|-------|-----------------------------------------------|
 *     | clip.projector_type                        | str   | qwen2vl_merger / qwen2.5vl_merger             |
 *     | clip.has_vision_encoder                    | bool  | true                                          |
 *     | clip.vision.projection_dim                 | u32   | the language model's width                    |
 *     | clip.vision.image_size / patch_size        | u32   | image_size (560 when absent) / patch_size     |
 *     | clip.vision.embedding_length               | u32   | the tower's width (Qwen2-VL: embed_dim)       |
 *     | clip.vision.feed_forward_length            | u32   | intermediate_size (Qwen2-VL: its hidden_size) |
 *     | clip.vision.block_count / attention.*      | u32   | depth, num_heads; layer_norm_epsilon f32      |
 *     | clip.vision.image_mean / image_std         | [f32] | preprocessor_config.json's                    |
 *     | clip.vision.spatial_merge_size             | u32   | spatial_merge_size                            |
 *     | clip.use_silu, clip.vision.n_wa_pattern    |       | Qwen2.5-VL: true; first full-attention block+1 |
 *     | mitten.preprocessor.min_pixels / max_pixels| u32   | preprocessor_config.json's (mitten's reader)  |
 *
 * Tensors: the Conv3d patch embedding as two Conv2d kernels (v.patch_embd.weight and .weight.1, one per temporal
 * slice), each block's fused qkv as attn_q / attn_k / attn_v, merger.ln_q as v.post_ln, merger.mlp.0 / .2 as
 * mm.0 / mm.2. Vectors and the patch embedding are F32 (the patch embedding F16 in an F16 file); the matrices take
 * the file's type for F32, F16, BF16 and Q8_0, and Q8_0 in the 4- and 6-bit files: llama.cpp's converter writes no
 * lower projector type, and a vision tower loses more than a language model at 4 bits. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/file.h"
#include "base/json.h"
#include "models/config.h"
#include "models/decoder.h"
#include "models/gguf_export_int.h"

enum { MAX_DEPTH = 256 };

typedef struct vision_cfg {
    bool qwen2_5;
    int64_t width, ff, depth, heads, patch, temporal, merge, image_size, projection, wa_pattern;
    int64_t min_pixels, max_pixels; /* preprocessor_config.json's, or -1 */
    double eps;
    float mean[3], std[3];
} vision_cfg;

/* The processor's image_mean / image_std (3 numbers each) where preprocessor_config.json gives them; mean and std
 * keep the family's defaults otherwise. */
static mt_status read_norm(const cJSON *pre, const char *pre_path, float mean[3], float std[3], mt_err *err) {
    for (int s = 0; s < 2 && pre; s++) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(pre, s ? "image_std" : "image_mean");
        if (!a) continue;
        if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != 3)
            return mt_err_set(err, MT_ERR_FORMAT, "%s: %s must be 3 numbers", pre_path, s ? "image_std" : "image_mean");
        int k = 0;
        for (const cJSON *x = a->child; x; x = x->next, k++) (s ? std : mean)[k] = (float)x->valuedouble;
    }
    return MT_OK;
}

/* The keys every projector file has: its type, the vision encoder flag, the tower's shape (u32), one u32 key of the
 * family's own (the merge size or InternVL's scale factor), epsilon, mean and std. */
static mt_status common_keys(mt_gguf_writer *w, const char *type, const int64_t shape[7], const char *own_key,
                             int64_t own_val, double eps, const float mean[3], const float std[3], mt_err *err) {
    static const char *const shape_keys[7] = {"clip.vision.projection_dim",      "clip.vision.image_size",
                                              "clip.vision.patch_size",          "clip.vision.embedding_length",
                                              "clip.vision.feed_forward_length", "clip.vision.block_count",
                                              "clip.vision.attention.head_count"};
    bool yes = true;
    float e = (float)eps;
    mt_status st = mt_gguf_writer_add_str(w, "clip.projector_type", type, strlen(type), err);
    if (!st) st = mt_gguf_writer_add(w, "clip.has_vision_encoder", MT_GGUF_BOOL, &yes, err);
    for (int i = 0; i <= 7 && !st; i++) {
        uint32_t u = (uint32_t)(i < 7 ? shape[i] : own_val);
        st = mt_gguf_writer_add(w, i < 7 ? shape_keys[i] : own_key, MT_GGUF_U32, &u, err);
    }
    if (!st) st = mt_gguf_writer_add(w, "clip.vision.attention.layer_norm_epsilon", MT_GGUF_F32, &e, err);
    if (!st) st = mt_gguf_writer_add_array(w, "clip.vision.image_mean", MT_GGUF_F32, mean, 3, err);
    if (!st) st = mt_gguf_writer_add_array(w, "clip.vision.image_std", MT_GGUF_F32, std, 3, err);
    return st;
}

/* The processor's pixel bounds, for mitten's reader (llama.cpp has no key for them and ignores these). */
static mt_status pixel_bound_keys(mt_gguf_writer *w, int64_t min_pixels, int64_t max_pixels, mt_err *err) {
    static const char *const keys[] = {"mitten.preprocessor.min_pixels", "mitten.preprocessor.max_pixels"};
    const int64_t px[] = {min_pixels, max_pixels};
    mt_status st = MT_OK;
    for (int k = 0; k < 2 && !st; k++) {
        uint32_t u = (uint32_t)px[k];
        if (px[k] > 0) st = mt_gguf_writer_add(w, keys[k], MT_GGUF_U32, &u, err);
    }
    return st;
}

static mt_status read_cfg(const mt_model *m, vision_cfg *v, mt_err *err) {
    char path[4096], pre_path[4096];
    cJSON *cfg = NULL, *pre = NULL;
    mt_status st = mt_path_join(path, sizeof path, m->dir, "config.json", err);
    if (!st) st = mt_path_join(pre_path, sizeof pre_path, m->dir, "preprocessor_config.json", err);
    if (!st) st = mt_json_parse_file(path, MT_JSON_MAX_FILE, &cfg, err);
    if (!st && mt_file_exists(pre_path)) st = mt_json_parse_file(pre_path, MT_JSON_MAX_FILE, &pre, err);
    if (st) return st;
    mt_cfg r = {.path = path, .what = "vision_config", .err = err};
    const cJSON *vc = cJSON_GetObjectItemCaseSensitive(cfg, "vision_config");
    v->qwen2_5 = !strcmp(m->comp->name, "qwen2.5-vl");
    bool embed_dim = cJSON_HasObjectItem(vc, "embed_dim"); /* Qwen2-VL names its width so */
    v->width = mt_cfg_int(&r, vc, embed_dim ? "embed_dim" : "hidden_size", 1, 1 << 20);
    v->ff = embed_dim ? mt_cfg_int(&r, vc, "hidden_size", 1, 1 << 20) : mt_cfg_int(&r, vc, "intermediate_size", 1, 1 << 22);
    v->depth = mt_cfg_int(&r, vc, "depth", 1, MAX_DEPTH);
    v->heads = mt_cfg_int(&r, vc, "num_heads", 1, 4096);
    v->patch = mt_cfg_int(&r, vc, "patch_size", 1, 1024);
    v->temporal = mt_cfg_int_opt(&r, vc, "temporal_patch_size", 1, 16, 2);
    v->merge = mt_cfg_int_opt(&r, vc, "spatial_merge_size", 1, 16, 2);
    v->image_size = mt_cfg_int_opt(&r, vc, "image_size", 1, 1 << 20, 560);
    v->projection = mt_decoder_get_cfg(m->decoder)->hidden;
    mt_cfg top = {.path = path, .what = "", .err = err};
    v->eps = mt_cfg_num_opt(&top, cfg, "rms_norm_eps", 0, 1, 1e-6);
    if (!r.st && top.st) r.st = top.st;
    if (!r.st && v->temporal != 2)
        mt_cfg_fail(&r, MT_ERR_UNSUPPORTED, "temporal_patch_size %lld: llama.cpp's projector takes a kernel of 2",
                    (long long)v->temporal);
    if (!r.st && v->qwen2_5) {
        int64_t full[MAX_DEPTH];
        size_t n = mt_cfg_int_list(&r, vc, "fullatt_block_indexes", 0, v->depth - 1, full, MAX_DEPTH);
        /* llama.cpp keeps only a period: every n_wa_pattern-th block attends fully */
        for (size_t i = 0; !r.st && i < n; i++)
            if (full[i] != (int64_t)(i + 1) * (full[0] + 1) - 1)
                mt_cfg_fail(&r, MT_ERR_UNSUPPORTED,
                            "fullatt_block_indexes are not evenly spaced; llama.cpp keeps one period (n_wa_pattern)");
        if (!r.st && n == 0) mt_cfg_fail(&r, MT_ERR_UNSUPPORTED, "no fullatt_block_indexes");
        v->wa_pattern = n ? full[0] + 1 : 0;
    }
    mt_cfg pr = {.path = pre_path, .what = "", .err = err};
    v->min_pixels = pre ? mt_cfg_int_opt(&pr, pre, "min_pixels", 1, UINT32_MAX, -1) : -1;
    v->max_pixels = pre ? mt_cfg_int_opt(&pr, pre, "max_pixels", 1, UINT32_MAX, -1) : -1;
    if (!r.st && pr.st) r.st = pr.st;
    static const float clip_mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
    static const float clip_std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
    for (int k = 0; k < 3; k++) v->mean[k] = clip_mean[k], v->std[k] = clip_std[k];
    if (!r.st) r.st = read_norm(pre, pre_path, v->mean, v->std, err);
    cJSON_Delete(cfg);
    cJSON_Delete(pre);
    return r.st;
}

static mt_status add_keys(mt_gguf_writer *w, const vision_cfg *v, mt_err *err) {
    const int64_t shape[7] = {v->projection, v->image_size, v->patch, v->width, v->ff, v->depth, v->heads};
    const char *type = v->qwen2_5 ? "qwen2.5vl_merger" : "qwen2vl_merger";
    bool yes = true;
    mt_status st =
        common_keys(w, type, shape, "clip.vision.spatial_merge_size", v->merge, v->eps, v->mean, v->std, err);
    if (!st) st = pixel_bound_keys(w, v->min_pixels, v->max_pixels, err);
    if (!st && v->qwen2_5) {
        uint32_t wa = (uint32_t)v->wa_pattern;
        st = mt_gguf_writer_add(w, "clip.use_silu", MT_GGUF_BOOL, &yes, err);
        if (!st) st = mt_gguf_writer_add(w, "clip.vision.n_wa_pattern", MT_GGUF_U32, &wa, err);
    }
    return st;
}

/* The projector's matrix type for a file type (see the header). */
static mt_dtype projector_type(mt_dtype file_type) {
    return file_type == MT_Q4_0 || file_type == MT_Q4_K || file_type == MT_Q6_K ? MT_Q8_0 : file_type;
}

/* weight and, when the checkpoint has one, bias of module src as gguf. */
static mt_status module(mt_gguf_plan *p, const mt_model *m, const char *gguf, const char *src, mt_dtype ft,
                        mt_err *err) {
    char s[512], d[MT_GGUF_MAX_NAME];
    snprintf(s, sizeof s, "%s%sweight", m->vision_prefix, src);
    snprintf(d, sizeof d, "%s.weight", gguf);
    mt_status st = mt_gguf_plan_whole(p, m, d, s, ft, MT_GGUF_ROLE_OTHER, 0, 1, err);
    snprintf(s, sizeof s, "%s%sbias", m->vision_prefix, src);
    snprintf(d, sizeof d, "%s.bias", gguf);
    if (!st && mt_safetensors_find(m->st, s)) st = mt_gguf_plan_whole(p, m, d, s, ft, MT_GGUF_ROLE_OTHER, 0, 1, err);
    return st;
}

/* A fused [3C, C] qkv weight and its [3C] bias (at + "attn.qkv") as three. */
static mt_status split_qkv_at(mt_gguf_plan *p, const mt_model *m, const char *at, int64_t layer, int64_t C,
                              mt_dtype ft, mt_err *err) {
    static const char *const parts[] = {"attn_q", "attn_k", "attn_v"};
    char s[512], d[MT_GGUF_MAX_NAME];
    mt_status st = MT_OK;
    for (int b = 0; b < 2 && !st; b++) {
        snprintf(s, sizeof s, "%sattn.qkv.%s", at, b ? "bias" : "weight");
        const mt_st_tensor *t;
        if (b && !mt_safetensors_find(m->st, s)) break;
        if ((st = mt_gguf_checkpoint_tensor(m, s, &t, err))) break;
        int64_t want_rows = 3 * C;
        if (t->shape[0] != want_rows || (b == 0 && (t->ndim != 2 || t->shape[1] != C)) || (b && t->ndim != 1)) {
            st = mt_err_set(err, MT_ERR_FORMAT, "%s: %s has the wrong shape for a fused qkv of width %lld", m->dir, s,
                            (long long)C);
            break;
        }
        size_t part = (size_t)(b ? C : C * C);
        int64_t shape[2] = {C, C};
        for (int k = 0; k < 3 && !st; k++) {
            snprintf(d, sizeof d, "v.blk.%lld.%s.%s", (long long)layer, parts[k], b ? "bias" : "weight");
            mt_dtype type = b ? MT_F32 : mt_gguf_matrix_type(ft, MT_GGUF_ROLE_OTHER, 0, 1, C);
            st = mt_gguf_plan_add(p, d, t, b ? 1 : 2, shape, (size_t)k * part, part, part, type, err);
        }
    }
    return st;
}

static mt_status split_qkv(mt_gguf_plan *p, const mt_model *m, int64_t layer, int64_t C, mt_dtype ft, mt_err *err) {
    char at[512];
    snprintf(at, sizeof at, "%sblocks.%lld.", m->vision_prefix, (long long)layer);
    return split_qkv_at(p, m, at, layer, C, ft, err);
}

/* The Conv3d kernel [C, 3, 2, P, P] as two Conv2d kernels [C, 3, P, P], one per temporal slice. */
static mt_status split_patch_embed(mt_gguf_plan *p, const mt_model *m, const vision_cfg *v, mt_dtype ft, mt_err *err) {
    char s[512];
    snprintf(s, sizeof s, "%spatch_embed.proj.weight", m->vision_prefix);
    const mt_st_tensor *t;
    mt_status st = mt_gguf_checkpoint_tensor(m, s, &t, err);
    if (st) return st;
    int64_t C = v->width, P = v->patch;
    if (t->ndim != 5 || t->shape[0] != C || t->shape[1] != 3 || t->shape[2] != 2 || t->shape[3] != P ||
        t->shape[4] != P)
        return mt_err_set(err, MT_ERR_FORMAT, "%s: %s is not a [%lld, 3, 2, %lld, %lld] Conv3d kernel", m->dir, s,
                          (long long)C, (long long)P, (long long)P);
    int64_t shape[4] = {C, 3, P, P};
    size_t plane = (size_t)(P * P);
    mt_dtype type = ft == MT_F16 ? MT_F16 : MT_F32;
    st = mt_gguf_plan_add(p, "v.patch_embd.weight", t, 4, shape, 0, 2 * plane, plane, type, err);
    if (!st) st = mt_gguf_plan_add(p, "v.patch_embd.weight.1", t, 4, shape, plane, 2 * plane, plane, type, err);
    return st;
}

static mt_status tensors(mt_gguf_plan *p, const mt_model *m, const vision_cfg *v, mt_dtype file_type, mt_err *err) {
    mt_dtype ft = projector_type(file_type);
    mt_status st = split_patch_embed(p, m, v, file_type, err);
    char src[128], dst[MT_GGUF_MAX_NAME];
    size_t n;
    const mt_gguf_name *block = mt_gguf_vision_block(v->qwen2_5, &n);
    for (int64_t l = 0; l < v->depth && !st; l++) {
        st = split_qkv(p, m, l, v->width, ft, err);
        for (size_t k = 0; k < n && !st; k++) {
            snprintf(src, sizeof src, "blocks.%lld.%s.", (long long)l, block[k].hf);
            snprintf(dst, sizeof dst, "v.blk.%lld.%s", (long long)l, block[k].gguf);
            st = module(p, m, dst, src, ft, err);
        }
    }
    for (size_t k = 0; k < mt_gguf_n_merger && !st; k++) {
        snprintf(src, sizeof src, "%s.", mt_gguf_merger[k].hf);
        st = module(p, m, mt_gguf_merger[k].gguf, src, ft, err);
    }
    return st;
}

/* ---- InternVL (conversion/internvl.py InternVisionModel; projector_type internvl) ---- */

typedef struct internvl_cfg {
    bool hf;
    int64_t width, ff, depth, heads, patch, image_size, projection, scale, min_tiles, max_tiles;
    double eps;
    float mean[3], std[3];
} internvl_cfg;

/* An int, or the first of a list (transformers' [h, w] sizes). */
static int64_t int_or_first(mt_cfg *r, const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsArray(v) && cJSON_IsNumber(v->child) && v->child->valuedouble >= 1) return (int64_t)v->child->valuedouble;
    return mt_cfg_int(r, o, key, 1, 1 << 16);
}

static mt_status read_internvl(const mt_model *m, internvl_cfg *v, mt_err *err) {
    char path[4096], pre_path[4096];
    cJSON *cfg = NULL, *pre = NULL;
    mt_status st = mt_path_join(path, sizeof path, m->dir, "config.json", err);
    if (!st) st = mt_path_join(pre_path, sizeof pre_path, m->dir, "preprocessor_config.json", err);
    if (!st) st = mt_json_parse_file(path, MT_JSON_MAX_FILE, &cfg, err);
    if (!st && mt_file_exists(pre_path)) st = mt_json_parse_file(pre_path, MT_JSON_MAX_FILE, &pre, err);
    if (st) return st;
    v->hf = !strcmp(m->comp->name, "internvl");
    mt_cfg r = {.path = path, .what = "vision_config", .err = err}, top = {.path = path, .what = "", .err = err};
    const cJSON *vc = cJSON_GetObjectItemCaseSensitive(cfg, "vision_config");
    v->width = mt_cfg_int(&r, vc, "hidden_size", 1, 1 << 16);
    v->ff = mt_cfg_int(&r, vc, "intermediate_size", 1, 1 << 20);
    v->depth = mt_cfg_int(&r, vc, "num_hidden_layers", 1, MAX_DEPTH);
    v->heads = mt_cfg_int(&r, vc, "num_attention_heads", 1, 1024);
    v->patch = int_or_first(&r, vc, "patch_size");
    v->image_size = int_or_first(&r, vc, "image_size");
    v->eps = mt_cfg_num_opt(&r, vc, "layer_norm_eps", 1e-12, 1e-1, 1e-6);
    const char *act = mt_cfg_str_opt(&r, vc, "hidden_act", "gelu");
    const char *norm = mt_cfg_str_opt(&r, vc, "norm_type", v->hf ? "layer_norm" : "rms_norm");
    v->projection = mt_decoder_get_cfg(m->decoder)->hidden;
    double ratio = mt_cfg_num_opt(&top, cfg, "downsample_ratio", 1e-3, 1.0, 0.5);
    v->scale = (int64_t)(1.0 / ratio + 0.5);
    int64_t layer = mt_cfg_int_opt(&top, cfg, v->hf ? "vision_feature_layer" : "select_layer", -1024, 1024, -1);
    const char *ps = v->hf ? "v2" : mt_cfg_str_opt(&top, cfg, "ps_version", "v1");
    v->min_tiles = mt_cfg_int_opt(&top, cfg, "min_dynamic_patch", 0, 1024, 0);
    v->max_tiles = mt_cfg_int_opt(&top, cfg, "max_dynamic_patch", 0, 1024, 0);
    if (!r.st && top.st) r.st = top.st;
    /* what llama.cpp's internvl graph cannot express is refused rather than written as another model */
    if (!r.st && strcmp(act, "gelu"))
        mt_cfg_fail(&r, MT_ERR_UNSUPPORTED, "hidden_act \"%.40s\": llama.cpp's InternViT takes gelu", act);
    if (!r.st && strcmp(norm, "layer_norm") && !(v->width == 3200 && v->depth == 45))
        mt_cfg_fail(&r, MT_ERR_UNSUPPORTED, "norm_type \"%.40s\": llama.cpp uses RMSNorm only for the 6B tower (3200 "
                    "wide, 45 blocks)", norm);
    if (!r.st && (layer != -1 && layer != v->depth - 1))
        r.st = mt_err_set(err, MT_ERR_UNSUPPORTED, "%s: %s %lld: llama.cpp's InternViT runs every block (-1)", path,
                          v->hf ? "vision_feature_layer" : "select_layer", (long long)layer);
    if (!r.st && strcmp(ps, "v2"))
        r.st = mt_err_set(err, MT_ERR_UNSUPPORTED, "%s: ps_version \"%.40s\": llama.cpp's pixel shuffle is v2's", path,
                          ps);
    if (!r.st && (v->scale < 1 || fabs(1.0 / (double)v->scale - ratio) > 1e-6))
        r.st = mt_err_set(err, MT_ERR_UNSUPPORTED, "%s: downsample_ratio %g is not 1 / an integer", path, ratio);
    /* InternVL's processor normalises with ImageNet's mean and std */
    static const float imagenet_mean[3] = {0.485f, 0.456f, 0.406f}, imagenet_std[3] = {0.229f, 0.224f, 0.225f};
    for (int k = 0; k < 3; k++) v->mean[k] = imagenet_mean[k], v->std[k] = imagenet_std[k];
    if (!r.st) r.st = read_norm(pre, pre_path, v->mean, v->std, err);
    cJSON_Delete(cfg);
    cJSON_Delete(pre);
    return r.st;
}

static mt_status internvl_keys(mt_gguf_writer *w, const internvl_cfg *v, mt_err *err) {
    const int64_t shape[7] = {v->projection, v->image_size, v->patch, v->width, v->ff, v->depth, v->heads};
    bool yes = true;
    mt_status st = common_keys(w, "internvl", shape, "clip.vision.projector.scale_factor", v->scale, v->eps, v->mean,
                               v->std, err);
    if (!st) st = mt_gguf_writer_add(w, "clip.use_gelu", MT_GGUF_BOOL, &yes, err);
    /* the converter writes the tile bounds only when the config gives them (transformers' layout does not) */
    static const char *const tile_keys[] = {"clip.vision.preproc_min_tiles", "clip.vision.preproc_max_tiles"};
    const int64_t tiles[] = {v->min_tiles, v->max_tiles};
    for (int k = 0; k < 2 && !st; k++) {
        uint32_t u = (uint32_t)tiles[k];
        if (tiles[k] > 0) st = mt_gguf_writer_add(w, tile_keys[k], MT_GGUF_U32, &u, err);
    }
    return st;
}

/* weight and bias (when there is one) of module src under prefix as gguf */
static mt_status module_at(mt_gguf_plan *p, const mt_model *m, const char *prefix, const char *gguf, const char *src,
                           bool optional, mt_dtype ft, mt_err *err) {
    char s[512], d[MT_GGUF_MAX_NAME];
    mt_status st = MT_OK;
    for (int b = 0; b < 2 && !st; b++) {
        snprintf(s, sizeof s, "%s%s.%s", prefix, src, b ? "bias" : "weight");
        snprintf(d, sizeof d, "%s.%s", gguf, b ? "bias" : "weight");
        if ((b || optional) && !mt_safetensors_find(m->st, s)) continue;
        st = mt_gguf_plan_whole(p, m, d, s, ft, MT_GGUF_ROLE_OTHER, 0, 1, err);
    }
    return st;
}

static mt_status internvl_tensors(mt_gguf_plan *p, const mt_model *m, const internvl_cfg *v, mt_dtype file_type,
                                  mt_err *err) {
    const mt_gguf_internvit *nm = mt_gguf_internvit_names(v->hf);
    mt_dtype ft = projector_type(file_type);
    const char *vp = m->vision_prefix;
    char s[512], d[MT_GGUF_MAX_NAME];
    /* the patch embedding F32 (F16 in an F16 file), class and position embeddings F32, as the converter leaves them */
    snprintf(s, sizeof s, "%s%sweight", vp, nm->patch);
    const mt_st_tensor *t;
    mt_status st = mt_gguf_checkpoint_tensor(m, s, &t, err);
    if (!st && (t->ndim != 4 || t->shape[0] != v->width || t->shape[1] != 3 || t->shape[2] != v->patch ||
                t->shape[3] != v->patch))
        st = mt_err_set(err, MT_ERR_FORMAT, "%s: %s is not a [%lld, 3, %lld, %lld] Conv2d kernel", m->dir, s,
                        (long long)v->width, (long long)v->patch, (long long)v->patch);
    if (!st) {
        size_t n = (size_t)(v->width * 3 * v->patch * v->patch);
        st = mt_gguf_plan_add(p, "v.patch_embd.weight", t, 4, t->shape, 0, n, n, file_type == MT_F16 ? MT_F16 : MT_F32,
                              err);
    }
    snprintf(s, sizeof s, "%s%sbias", vp, nm->patch);
    if (!st) st = mt_gguf_plan_whole(p, m, "v.patch_embd.bias", s, ft, MT_GGUF_ROLE_OTHER, 0, 1, err);
    snprintf(s, sizeof s, "%s%s", vp, nm->cls);
    if (!st) st = mt_gguf_plan_whole(p, m, "v.class_embd", s, ft, MT_GGUF_ROLE_KEEP_F32, 0, 1, err);
    snprintf(s, sizeof s, "%s%s", vp, nm->pos);
    if (!st) st = mt_gguf_plan_whole(p, m, "v.position_embd.weight", s, ft, MT_GGUF_ROLE_KEEP_F32, 0, 1, err);
    char at[256];
    for (int64_t l = 0; l < v->depth && !st; l++) {
        snprintf(at, sizeof at, "%s%s%lld.", vp, nm->layers, (long long)l);
        if (!v->hf) st = split_qkv_at(p, m, at, l, v->width, ft, err); /* the original's fused qkv */
        for (size_t k = 0; k < nm->n_block && !st; k++) {
            snprintf(d, sizeof d, "v.blk.%lld.%s", (long long)l, nm->block[k].gguf);
            st = module_at(p, m, at, d, nm->block[k].hf, nm->block[k].optional, ft, err);
        }
        for (int k = 0; k < 2 && !st; k++) {
            snprintf(s, sizeof s, "%s%s", at, k ? nm->ls2 : nm->ls1);
            snprintf(d, sizeof d, "v.blk.%lld.ls%d.weight", (long long)l, k + 1);
            st = mt_gguf_plan_whole(p, m, d, s, ft, MT_GGUF_ROLE_OTHER, 0, 1, err);
        }
    }
    for (size_t k = 0; k < nm->n_proj && !st; k++)
        st = module_at(p, m, m->projector_prefix, nm->proj[k].gguf, nm->proj[k].hf, false, ft, err);
    return st;
}

/* ---- Qwen3-VL (conversion/qwen3vl.py Qwen3VLVisionModel; projector_type qwen3vl_merger) ---- */

typedef struct qwen3vl_cfg {
    int64_t width, ff, depth, heads, patch, merge, image_size, projection, n_deep;
    int64_t min_pixels, max_pixels; /* preprocessor_config.json's size, or -1 */
    int64_t deep[MAX_DEPTH];
    double eps;
    float mean[3], std[3];
} qwen3vl_cfg;

static mt_status read_qwen3vl(const mt_model *m, qwen3vl_cfg *v, mt_err *err) {
    char path[4096], pre_path[4096];
    cJSON *cfg = NULL, *pre = NULL;
    mt_status st = mt_path_join(path, sizeof path, m->dir, "config.json", err);
    if (!st) st = mt_path_join(pre_path, sizeof pre_path, m->dir, "preprocessor_config.json", err);
    if (!st) st = mt_json_parse_file(path, MT_JSON_MAX_FILE, &cfg, err);
    if (!st && mt_file_exists(pre_path)) st = mt_json_parse_file(pre_path, MT_JSON_MAX_FILE, &pre, err);
    if (st) return st;
    mt_cfg r = {.path = path, .what = "vision_config", .err = err}, t = {.path = path, .what = "text_config", .err = err};
    const cJSON *vc = cJSON_GetObjectItemCaseSensitive(cfg, "vision_config");
    v->width = mt_cfg_int(&r, vc, "hidden_size", 1, 1 << 16);
    v->ff = mt_cfg_int(&r, vc, "intermediate_size", 1, 1 << 20);
    v->depth = mt_cfg_int(&r, vc, "depth", 1, MAX_DEPTH);
    v->heads = mt_cfg_int(&r, vc, "num_heads", 1, 1024);
    v->patch = mt_cfg_int(&r, vc, "patch_size", 1, 1024);
    v->merge = mt_cfg_int_opt(&r, vc, "spatial_merge_size", 1, 16, 2);
    int64_t temporal = mt_cfg_int_opt(&r, vc, "temporal_patch_size", 1, 16, 2);
    int64_t n_pos = mt_cfg_int(&r, vc, "num_position_embeddings", 1, 1 << 24);
    /* the converter's image size when the config has none: the position grid's side in pixels */
    int64_t side = (int64_t)llround(sqrt((double)n_pos));
    v->image_size = mt_cfg_int_opt(&r, vc, "image_size", 1, 1 << 20, side * v->patch);
    v->n_deep = (int64_t)mt_cfg_int_list(&r, vc, "deepstack_visual_indexes", 0, v->depth - 1, v->deep, MAX_DEPTH);
    v->eps = mt_cfg_num_opt(&t, cJSON_GetObjectItemCaseSensitive(cfg, "text_config"), "rms_norm_eps", 0, 1, 1e-6);
    v->projection = mt_decoder_get_cfg(m->decoder)->hidden;
    if (!r.st && t.st) r.st = t.st;
    if (!r.st && temporal != 2)
        mt_cfg_fail(&r, MT_ERR_UNSUPPORTED, "temporal_patch_size %lld: llama.cpp's projector takes a kernel of 2",
                    (long long)temporal);
    for (int k = 0; k < 3; k++) v->mean[k] = v->std[k] = 0.5f; /* Qwen3-VL's published preprocessor values */
    mt_cfg pr = {.path = pre_path, .what = "size", .err = err};
    const cJSON *size = pre ? cJSON_GetObjectItemCaseSensitive(pre, "size") : NULL;
    v->min_pixels = size ? mt_cfg_int_opt(&pr, size, "shortest_edge", 1, UINT32_MAX, -1) : -1;
    v->max_pixels = size ? mt_cfg_int_opt(&pr, size, "longest_edge", 1, UINT32_MAX, -1) : -1;
    if (!r.st && pr.st) r.st = pr.st;
    if (!r.st) r.st = read_norm(pre, pre_path, v->mean, v->std, err);
    cJSON_Delete(cfg);
    cJSON_Delete(pre);
    return r.st;
}

static mt_status qwen3vl_keys(mt_gguf_writer *w, const qwen3vl_cfg *v, mt_err *err) {
    const int64_t shape[7] = {v->projection, v->image_size, v->patch, v->width, v->ff, v->depth, v->heads};
    bool yes = true, deep[MAX_DEPTH] = {0};
    mt_status st = common_keys(w, "qwen3vl_merger", shape, "clip.vision.spatial_merge_size", v->merge, v->eps,
                               v->mean, v->std, err);
    if (!st) st = mt_gguf_writer_add(w, "clip.use_gelu", MT_GGUF_BOOL, &yes, err);
    if (!st) st = pixel_bound_keys(w, v->min_pixels, v->max_pixels, err);
    for (int64_t k = 0; k < v->n_deep; k++) deep[v->deep[k]] = true;
    if (!st) st = mt_gguf_writer_add_array(w, "clip.vision.is_deepstack_layers", MT_GGUF_BOOL, deep, (size_t)v->depth, err);
    return st;
}

static mt_status qwen3vl_tensors(mt_gguf_plan *p, const mt_model *m, const qwen3vl_cfg *v, mt_dtype file_type,
                                 mt_err *err) {
    mt_dtype ft = projector_type(file_type);
    const vision_cfg pv = {.width = v->width, .patch = v->patch};
    mt_status st = split_patch_embed(p, m, &pv, file_type, err);
    char s[512], d[MT_GGUF_MAX_NAME], at[256];
    snprintf(s, sizeof s, "%spatch_embed.proj.bias", m->vision_prefix);
    if (!st) st = mt_gguf_plan_whole(p, m, "v.patch_embd.bias", s, ft, MT_GGUF_ROLE_OTHER, 0, 1, err);
    snprintf(s, sizeof s, "%spos_embed.weight", m->vision_prefix);
    if (!st) st = mt_gguf_plan_whole(p, m, "v.position_embd.weight", s, ft, MT_GGUF_ROLE_KEEP_F32, 0, 1, err);
    for (int64_t l = 0; l < v->depth && !st; l++) {
        snprintf(at, sizeof at, "%sblocks.%lld.", m->vision_prefix, (long long)l);
        for (size_t k = 0; k < mt_gguf_n_qwen3vl_block && !st; k++) {
            snprintf(d, sizeof d, "v.blk.%lld.%s", (long long)l, mt_gguf_qwen3vl_block[k].gguf);
            st = module_at(p, m, at, d, mt_gguf_qwen3vl_block[k].hf, false, ft, err);
        }
    }
    for (size_t k = 0; k < mt_gguf_n_qwen3vl_merger && !st; k++)
        st = module_at(p, m, m->vision_prefix, mt_gguf_qwen3vl_merger[k].gguf, mt_gguf_qwen3vl_merger[k].hf, false, ft,
                       err);
    /* by the block each level is taken after, as the converter numbers them */
    for (int64_t j = 0; j < v->n_deep && !st; j++) {
        snprintf(at, sizeof at, "%sdeepstack_merger_list.%lld.", m->vision_prefix, (long long)j);
        for (size_t k = 0; k < mt_gguf_n_qwen3vl_merger && !st; k++) {
            snprintf(d, sizeof d, "v.deepstack.%lld.%s", (long long)v->deep[j], mt_gguf_qwen3vl_deepstack[k].gguf);
            st = module_at(p, m, at, d, mt_gguf_qwen3vl_deepstack[k].hf, false, ft, err);
        }
    }
    return st;
}

static bool is_internvl(const mt_model *m) {
    return !strcmp(m->comp->name, "internvl-chat") || !strcmp(m->comp->name, "internvl");
}

mt_status mt_gguf_write_mmproj(const mt_model *m, const mt_gguf_export_opts *o, mt_err *err) {
    bool qwen3vl = !strcmp(m->comp->name, "qwen3-vl"), internvl = is_internvl(m);
    if (strcmp(m->comp->name, "qwen2.5-vl") && strcmp(m->comp->name, "qwen2-vl") && !internvl && !qwen3vl)
        return mt_err_set(err, MT_ERR_UNSUPPORTED, "%s: the mmproj file is written for Qwen2-VL, Qwen2.5-VL, Qwen3-VL "
                          "and InternVL; this model is %s", m->dir, m->comp->name);
    vision_cfg v = {0};
    internvl_cfg iv = {0};
    qwen3vl_cfg *q3 = qwen3vl ? mt_calloc(1, sizeof *q3) : NULL;
    mt_gguf_writer *w = NULL;
    mt_gguf_plan p = {0};
    mt_status st = qwen3vl && !q3 ? mt_err_set(err, MT_ERR_NOMEM, "out of memory")
                   : qwen3vl      ? read_qwen3vl(m, q3, err)
                   : internvl     ? read_internvl(m, &iv, err)
                                  : read_cfg(m, &v, err);
    if (!st) st = mt_gguf_writer_new(&w, err);
    if (!st) st = mt_gguf_add_general(w, m, "clip", "mmproj", o->type, err);
    if (!st) st = qwen3vl ? qwen3vl_keys(w, q3, err) : internvl ? internvl_keys(w, &iv, err) : add_keys(w, &v, err);
    if (!st)
        st = qwen3vl    ? qwen3vl_tensors(&p, m, q3, o->type, err)
             : internvl ? internvl_tensors(&p, m, &iv, o->type, err)
                        : tensors(&p, m, &v, o->type, err);
    if (!st) st = mt_gguf_write_plan(w, &p, o->mmproj_out, o, err);
    mt_gguf_plan_free(&p);
    mt_gguf_writer_free(w);
    mt_free(q3);
    return st;
}
