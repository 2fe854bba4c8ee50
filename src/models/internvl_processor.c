/* models/internvl_processor: the multimodal processor of the InternVL family, in both checkpoint layouts - images
 * tiled as media/internvl_pre.h describes, each image placeholder replaced by `<img>` + `<IMG_CONTEXT>` x (tiles *
 * num_image_token) + `</img>`, and 1D positions.
 *
 * References: OpenGVLab/InternVL internvl_chat/internvl/model/internvl_chat/modeling_internvl_chat.py
 * (InternVLChatModel.__init__: image_size = force_image_size or vision_config.image_size, num_image_token; chat():
 * the placeholder text) and configuration_internvl_chat.py (the defaults below); transformers 4.57
 * models/internvl/processing_internvl.py (InternVLProcessor: image_seq_length, the tokenizer's start / end / context
 * image tokens, crop_to_patches forced on) and configuration_internvl.py.
 *
 * Shape legend: S tile side, p patch side, g = S / p patches per tile side, k = 1 / downsample_ratio, n tiles
 * (thumbnail included).
 *
 * The layout is told by config.json: "llm_config" (InternVLChatConfig) is the original one, "text_config"
 * (InternVLConfig) the transformers one. What each reads:
 *     | value           | original: config.json (default)                | hf                                        |
 *     | --------------- | ---------------------------------------------- | ----------------------------------------- |
 *     | S               | force_image_size, else vision_config.image_size| preprocessor_config.json size (384)       |
 *     | p               | vision_config.patch_size (14)                  | vision_config.patch_size (an int or [p,p])|
 *     | tiles min..max  | min_dynamic_patch (1), max_dynamic_patch (6)   | min_patches (1), max_patches (12)         |
 *     | tiling on       | dynamic_image_size (false)                     | always (InternVLProcessor forces          |
 *     |                 |                                                | crop_to_patches; the file's value is not  |
 *     |                 |                                                | read)                                     |
 *     | thumbnail       | use_thumbnail (false)                          | always                                    |
 *     | mean, std       | ImageNet                                       | image_mean, image_std (CLIP)              |
 *     | downsample      | downsample_ratio (0.5)                         | downsample_ratio (0.5)                    |
 *     | tokens per tile | (g / k)^2                                      | the same; image_seq_length in config.json |
 *     |                 |                                                | and processor_config.json must agree      |
 * A run's max_pixels (mt_model_params) lowers the most tiles to max(1, max_pixels / S^2).
 * An hf folder without preprocessor_config.json gets the values transformers' converter writes (S 448, tiles
 * 1..12, ImageNet), with an error in the log. Token texts are `<img>`, `</img>`, `<IMG_CONTEXT>`
 * (tokenizer_config.json's start_image_token / end_image_token / context_image_token when it names others); their
 * ids come from
 * tokenizer.json (added_tokens, then the model's vocab). Loading sets desc.image_token_id (the placeholder and
 * feature rows), vision_start_id and vision_end_id from them.
 *
 * pixels: (n, 3, S, S) float32, which the contract of mt_processor_part reads as n * g * g patches of 3 * p * p
 * values (the same floats); grid = {n, g, g}.
 *
 * Videos (media/internvl_video_pre.h; references: the model card's load_video, transformers 5.0.0.dev0 in
 * feisenyu/transformers_4573 InternVLVideoProcessor and InternVLProcessor._insert_media_placeholders): F frames of
 * one tile each, grid {F, g, g}; the placeholder (hf: <video>, when the tokenizer has it; else <IMG_CONTEXT>, the
 * input's kind telling) becomes, per frame i from 1, "Frame{i}: " <img> <IMG_CONTEXT> x num_image_token </img>,
 * the frames joined by "\n". The frames' rows hold <IMG_CONTEXT> (desc.video_row_id).
 *     | value           | original                                   | hf                                          |
 *     | --------------- | ------------------------------------------ | ------------------------------------------- |
 *     | frames          | num_segments (32) segment midpoints        | every frame; when sampling, num_frames from |
 *     |                 |                                            | video_preprocessor_config.json or the run   |
 *     | tile            | the image tile side, ImageNet              | the video processor's size (must be S),     |
 *     |                 |                                            | mean, std (else preprocessor_config.json's) |
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "base/file.h"
#include "base/json.h"
#include "media/internvl_video_pre.h"
#include "models/config.h"
#include "models/internvl_processor.h"

typedef struct ivl_proc {
    mt_internvl_pre_cfg pre;
    mt_internvl_pre_cfg video_pre;   /* a frame's tile: its side, mean and std (hf: the video processor's) */
    mt_internvl_video_params video;  /* the sampling the folder asks for, before a run's mt_video_params */
    const mt_tokenizer *tok;         /* for the frames' "FrameN: " text (NULL: the folder has none) */
    int64_t patch;           /* p */
    int64_t tokens_per_tile; /* num_image_token */
    int32_t img_start, img_end, img_context; /* -1: the folder has no tokenizer.json */
    int32_t video_token;                     /* hf's <video>, or -1: a video takes the image placeholder */
    char tokenizer_path[4200];
} ivl_proc;

static void release(void *impl) { mt_free(impl); }

/* An image side or patch side: an integer, or [n, n] (transformers' InternVLVisionConfig writes lists). */
static int64_t read_side(mt_cfg *r, const cJSON *o, const char *key, int64_t dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (r->st || !cJSON_IsArray(v)) return mt_cfg_int_opt(r, o, key, 1, 1 << 16, dflt);
    const cJSON *a = cJSON_GetArrayItem(v, 0), *b = cJSON_GetArrayItem(v, 1);
    if (cJSON_GetArraySize(v) != 2 || !cJSON_IsNumber(a) || !cJSON_IsNumber(b) ||
        a->valuedouble != floor(a->valuedouble) || !(a->valuedouble >= 1 && a->valuedouble <= 1 << 16)) {
        mt_cfg_fail(r, MT_ERR_FORMAT, "field \"%s\" must be an integer in [1, 65536] or a list of two", key);
        return dflt;
    }
    if (a->valuedouble != b->valuedouble)
        mt_cfg_fail(r, MT_ERR_UNSUPPORTED, "field \"%s\" = [%g, %g]: only square sides are supported", key,
                    a->valuedouble, b->valuedouble);
    return (int64_t)a->valuedouble;
}

/* min..max tiles: each in [1, 40], min <= max; names are the fields in r's file. */
static void read_tile_range(mt_cfg *r, const cJSON *o, const char *min_key, const char *max_key, int64_t dmin,
                            int64_t dmax, mt_internvl_pre_cfg *pre) {
    pre->min_tiles = mt_cfg_int_opt(r, o, min_key, 1, MT_INTERNVL_MAX_TILES, dmin);
    pre->max_tiles = mt_cfg_int_opt(r, o, max_key, 1, MT_INTERNVL_MAX_TILES, dmax);
    if (!r->st && pre->min_tiles > pre->max_tiles)
        mt_cfg_fail(r, MT_ERR_FORMAT, "field \"%s\" = %lld is more than \"%s\" = %lld", min_key,
                    (long long)pre->min_tiles, max_key, (long long)pre->max_tiles);
}

static void require_true(mt_cfg *r, const cJSON *o, const char *key) {
    if (!mt_cfg_bool_opt(r, o, key, true))
        mt_cfg_fail(r, MT_ERR_UNSUPPORTED, "field \"%s\": false is not supported for InternVL images", key);
}

/* image_mean / image_std: three numbers, or one that transformers repeats for every channel. */
static void read_triple(mt_cfg *r, const cJSON *o, const char *key, double lo, double hi, float out[3]) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (r->st || !v || cJSON_IsNull(v)) return;
    double d[3];
    bool ok = true;
    if (cJSON_IsNumber(v)) {
        d[0] = d[1] = d[2] = v->valuedouble;
    } else if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 3) {
        for (int i = 0; i < 3; i++) {
            const cJSON *e = cJSON_GetArrayItem(v, i);
            ok = ok && cJSON_IsNumber(e);
            d[i] = ok ? e->valuedouble : 0.0;
        }
    } else {
        ok = false;
    }
    for (int i = 0; i < 3 && ok; i++)
        if (!(d[i] >= lo && d[i] <= hi)) {
            mt_cfg_fail(r, MT_ERR_FORMAT, "field \"%s\"[%d] = %g is outside [%g, %g]", key, i, d[i], lo, hi);
            return;
        }
    if (!ok) mt_cfg_fail(r, MT_ERR_FORMAT, "field \"%s\" must be a number or an array of 3 numbers", key);
    for (int i = 0; i < 3 && ok; i++) out[i] = (float)d[i];
}

/* GotOcr2ImageProcessor's size: an int (a square) or {"height", "width"} of one side. */
static int64_t read_hf_size(mt_cfg *r, const cJSON *o, int64_t dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "size");
    if (r->st || !v || cJSON_IsNull(v) || cJSON_IsNumber(v)) return mt_cfg_int_opt(r, o, "size", 1, 4096, dflt);
    if (!cJSON_IsObject(v)) {
        mt_cfg_fail(r, MT_ERR_FORMAT, "field \"size\" must be an integer or {\"height\", \"width\"}");
        return dflt;
    }
    mt_cfg sub = {r->path, "size", r->err, MT_OK};
    int64_t h = mt_cfg_int(&sub, v, "height", 1, 4096), w = mt_cfg_int(&sub, v, "width", 1, 4096);
    if (!sub.st && h != w)
        mt_cfg_fail(&sub, MT_ERR_UNSUPPORTED, "height %lld and width %lld differ: only square tiles are supported",
                    (long long)h, (long long)w);
    r->st = sub.st;
    return h;
}

/* The hf layout's preprocessor_config.json (GotOcr2ImageProcessor's class defaults for what it omits). */
static mt_status load_hf_pre(const char *dir, int64_t vision_side, mt_internvl_pre_cfg *pre, mt_err *err) {
    char path[4200];
    snprintf(path, sizeof path, "%s/preprocessor_config.json", dir);
    mt_internvl_pre_cfg_default(MT_INTERNVL_TILING_HF, pre);
    if (!mt_file_exists(path)) {
        /* the tower's own tile side, which every published preprocessor_config.json repeats */
        pre->tile_size = vision_side;
        mt_log(MT_LOG_ERROR, "%s has no preprocessor_config.json: images are tiled with InternVL-hf's published "
               "values (tiles of vision_config.image_size = %lld pixels, 1..12 of them, ImageNet mean and std)", dir,
               (long long)vision_side);
        return MT_OK;
    }
    cJSON *root;
    mt_status st = mt_json_parse_file(path, MT_JSON_MAX_FILE, &root, err);
    if (st) return st;
    mt_cfg r = {path, "", err, MT_OK};
    if (!cJSON_IsObject(root)) mt_cfg_fail(&r, MT_ERR_FORMAT, "top level must be an object");
    const char *type = mt_cfg_str_opt(&r, root, "image_processor_type", NULL);
    if (type && strcmp(type, "GotOcr2ImageProcessor") != 0 && strcmp(type, "GotOcr2ImageProcessorFast") != 0)
        mt_cfg_fail(&r, MT_ERR_UNSUPPORTED, "field \"image_processor_type\" = \"%.80s\": InternVL images are made by "
                    "GotOcr2ImageProcessor", type);
    static const float clip_mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
    static const float clip_std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
    memcpy(pre->mean, clip_mean, sizeof clip_mean);
    memcpy(pre->std, clip_std, sizeof clip_std);
    pre->tile_size = read_hf_size(&r, root, 384);
    read_tile_range(&r, root, "min_patches", "max_patches", 1, 12, pre);
    const char *flags[] = {"do_resize", "do_rescale", "do_normalize", "do_convert_rgb"};
    for (size_t i = 0; i < MT_ARRAY_LEN(flags); i++) require_true(&r, root, flags[i]);
    /* only a one-tile image (max_patches 1) is resized with the file's filter; tiles always use BICUBIC */
    if (mt_cfg_int_opt(&r, root, "resample", 0, 5, 3) != 3)
        mt_cfg_fail(&r, MT_ERR_UNSUPPORTED, "field \"resample\": only 3 (PIL BICUBIC) is supported");
    read_triple(&r, root, "image_mean", -10.0, 10.0, pre->mean);
    read_triple(&r, root, "image_std", 1e-6, 10.0, pre->std);
    pre->rescale_factor = mt_cfg_num_opt(&r, root, "rescale_factor", 1e-12, 1.0, pre->rescale_factor);
    cJSON_Delete(root);
    return r.st;
}

/* The id of a token by its text: tokenizer.json's added_tokens, then its model's vocab; -1 when absent. */
static int64_t token_id(const cJSON *tok, const char *text) {
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(tok, "added_tokens"), *e;
    cJSON_ArrayForEach(e, added) {
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(e, "content");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
        if (cJSON_IsString(content) && cJSON_IsNumber(id) && strcmp(content->valuestring, text) == 0)
            return (int64_t)id->valuedouble;
    }
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(tok, "model"), "vocab");
    const cJSON *id = cJSON_IsObject(vocab) ? cJSON_GetObjectItemCaseSensitive(vocab, text) : NULL;
    return cJSON_IsNumber(id) ? (int64_t)id->valuedouble : -1;
}

/* The hf layout's video processor: video_preprocessor_config.json, else preprocessor_config.json (transformers'
 * fallback for folders saved before video processors), else the image tiles' values; the class defaults for what the
 * file omits (InternVLVideoProcessor: size 384, CLIP mean and std, do_sample_frames false, initial_shift true). */
static mt_status load_hf_video(const char *dir, ivl_proc *p, mt_err *err) {
    char path[4200];
    snprintf(path, sizeof path, "%s/video_preprocessor_config.json", dir);
    bool own = mt_file_exists(path);
    if (!own) snprintf(path, sizeof path, "%s/preprocessor_config.json", dir);
    p->video_pre = p->pre;
    p->video_pre.min_tiles = p->video_pre.max_tiles = 1;
    p->video_pre.dynamic = p->video_pre.thumbnail = false;
    if (!mt_file_exists(path)) return MT_OK;
    cJSON *root;
    mt_status st = mt_json_parse_file(path, MT_JSON_MAX_FILE, &root, err);
    if (st) return st;
    mt_cfg r = {path, "", err, MT_OK};
    if (!cJSON_IsObject(root)) mt_cfg_fail(&r, MT_ERR_FORMAT, "top level must be an object");
    const char *type = own ? mt_cfg_str_opt(&r, root, "video_processor_type", NULL) : NULL;
    if (type && strcmp(type, "InternVLVideoProcessor") != 0)
        mt_cfg_fail(&r, MT_ERR_UNSUPPORTED, "field \"video_processor_type\" = \"%.80s\": InternVL videos are made by "
                    "InternVLVideoProcessor", type);
    static const float clip_mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
    static const float clip_std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
    memcpy(p->video_pre.mean, clip_mean, sizeof clip_mean);
    memcpy(p->video_pre.std, clip_std, sizeof clip_std);
    p->video_pre.tile_size = read_hf_size(&r, root, 384);
    const char *flags[] = {"do_resize", "do_rescale", "do_normalize", "do_convert_rgb"};
    for (size_t i = 0; i < MT_ARRAY_LEN(flags); i++) require_true(&r, root, flags[i]);
    if (mt_cfg_bool_opt(&r, root, "do_center_crop", false))
        mt_cfg_fail(&r, MT_ERR_UNSUPPORTED, "field \"do_center_crop\": true is not supported for InternVL videos");
    if (mt_cfg_int_opt(&r, root, "resample", 0, 5, 3) != 3)
        mt_cfg_fail(&r, MT_ERR_UNSUPPORTED, "field \"resample\": only 3 (BICUBIC) is supported");
    read_triple(&r, root, "image_mean", -10.0, 10.0, p->video_pre.mean);
    read_triple(&r, root, "image_std", 1e-6, 10.0, p->video_pre.std);
    p->video_pre.rescale_factor = mt_cfg_num_opt(&r, root, "rescale_factor", 1e-12, 1.0, p->video_pre.rescale_factor);
    if (own) {
        p->video.sample = mt_cfg_bool_opt(&r, root, "do_sample_frames", false);
        p->video.num_frames = mt_cfg_int_opt(&r, root, "num_frames", 0, MT_INTERNVL_MAX_VIDEO_FRAMES, 0);
        p->video.fps = mt_cfg_num_opt(&r, root, "fps", 0.0, 1000.0, 0.0);
        const cJSON *shift = cJSON_GetObjectItemCaseSensitive(root, "initial_shift");
        if (cJSON_IsBool(shift)) p->video.initial_shift = cJSON_IsTrue(shift) ? -1.0 : 0.0;
        else if (shift && !cJSON_IsNull(shift)) p->video.initial_shift = mt_cfg_num_opt(&r, root, "initial_shift", 0.0, 1e9, 0.0);
    }
    cJSON_Delete(root);
    return r.st;
}

/* The three image tokens' ids; all -1 when the folder has no tokenizer.json (image_tokens then refuses). hf: the
 * video placeholder's id too (tokenizer_config.json's video_token, "<video>"), -1 when the tokenizer lacks it. */
static mt_status load_tokens(const mt_model *m, ivl_proc *p, bool hf, mt_err *err) {
    const char *names[3] = {"<img>", "</img>", "<IMG_CONTEXT>"};
    const char *keys[3] = {"start_image_token", "end_image_token", "context_image_token"};
    char path[4200];
    cJSON *tc = NULL, *tok = NULL;
    snprintf(path, sizeof path, "%s/tokenizer_config.json", m->dir);
    mt_status st = mt_file_exists(path) ? mt_json_parse_file(path, MT_JSON_MAX_FILE, &tc, err) : MT_OK;
    for (int i = 0; i < 3 && !st; i++) {
        const char *s = NULL;
        st = mt_json_str_opt(tc, keys[i], path, &s, err);
        if (s) names[i] = s;
    }
    int32_t *ids[3] = {&p->img_start, &p->img_end, &p->img_context};
    snprintf(p->tokenizer_path, sizeof p->tokenizer_path, "%s/tokenizer.json", m->dir);
    if (!st && mt_file_exists(p->tokenizer_path))
        st = mt_json_parse_file(p->tokenizer_path, MT_JSON_MAX_FILE, &tok, err);
    for (int i = 0; i < 3 && !st; i++) {
        int64_t id = tok ? token_id(tok, names[i]) : -1;
        int64_t V = m->desc.vocab_size > 0 ? m->desc.vocab_size : INT32_MAX;
        if (tok && id < 0)
            st = mt_err_set(err, MT_ERR_FORMAT, "%s: no token \"%s\", which InternVL needs around image features",
                            p->tokenizer_path, names[i]);
        else if (id >= V)
            st = mt_err_set(err, MT_ERR_FORMAT, "%s: token \"%s\" has id %lld, outside the vocabulary of %lld",
                            p->tokenizer_path, names[i], (long long)id, (long long)V);
        *ids[i] = (int32_t)id;
    }
    const char *video = NULL;
    p->video_token = -1;
    if (!st && hf && tok) st = mt_json_str_opt(tc, "video_token", path, &video, err);
    if (!video) video = "<video>";
    if (!st && hf && tok) {
        int64_t id = token_id(tok, video);
        p->video_token = id >= 0 && id < (m->desc.vocab_size > 0 ? m->desc.vocab_size : INT32_MAX) ? (int32_t)id : -1;
    }
    cJSON_Delete(tc);
    cJSON_Delete(tok);
    return st;
}

/* An hf folder's image_seq_length (config.json, processor_config.json) must be the tokens a tile becomes. */
static void check_seq_length(mt_cfg *r, const cJSON *o, int64_t want) {
    int64_t got = mt_cfg_int_opt(r, o, "image_seq_length", 1, 1 << 20, want);
    if (!r->st && got != want)
        mt_cfg_fail(r, MT_ERR_FORMAT, "field \"image_seq_length\" = %lld, but a tile of the vision config becomes "
                    "%lld tokens", (long long)got, (long long)want);
}

static mt_status load(mt_model *m, const cJSON *cfg, const char *path, void **impl, mt_err *err) {
    const cJSON *vc = mt_cfg_section(cfg, "vision_config", false);
    if (!vc) return mt_err_set(err, MT_ERR_FORMAT, "%s: missing object \"vision_config\"", path);
    bool original = cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(cfg, "llm_config"));
    if (!original && !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(cfg, "text_config")))
        return mt_err_set(err, MT_ERR_FORMAT, "%s: neither \"llm_config\" (InternVLChatModel) nor \"text_config\" "
                          "(InternVLForConditionalGeneration): not an InternVL config", path);
    ivl_proc *p = mt_calloc(1, sizeof *p);
    if (!p) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    mt_cfg r = {path, "", err, MT_OK}, rv = {path, "vision_config", err, MT_OK};
    p->patch = read_side(&rv, vc, "patch_size", 14);
    int64_t vision_side = read_side(&rv, vc, "image_size", original ? 224 : 448); /* the config classes' defaults */
    mt_status st = rv.st;
    if (!st && original) {
        mt_internvl_pre_cfg_default(MT_INTERNVL_TILING_ORIGINAL, &p->pre);
        int64_t forced = mt_cfg_int_opt(&r, cfg, "force_image_size", 0, 4096, 0);
        p->pre.tile_size = forced ? forced : vision_side;
        p->pre.dynamic = mt_cfg_bool_opt(&r, cfg, "dynamic_image_size", false);
        p->pre.thumbnail = mt_cfg_bool_opt(&r, cfg, "use_thumbnail", false);
        read_tile_range(&r, cfg, "min_dynamic_patch", "max_dynamic_patch", 1, 6, &p->pre);
        if (mt_cfg_bool_opt(&r, cfg, "pad2square", false))
            mt_cfg_fail(&r, MT_ERR_UNSUPPORTED, "field \"pad2square\": true is not supported");
        st = r.st;
        /* the model card's load_video: one tile per frame (max_num 1), no thumbnail */
        p->video_pre = p->pre;
        p->video_pre.min_tiles = p->video_pre.max_tiles = 1;
        p->video_pre.dynamic = p->video_pre.thumbnail = false;
        mt_internvl_video_params_default(MT_INTERNVL_TILING_ORIGINAL, &p->video);
    } else if (!st) {
        st = load_hf_pre(m->dir, vision_side, &p->pre, err);
        mt_internvl_video_params_default(MT_INTERNVL_TILING_HF, &p->video);
        if (!st) st = load_hf_video(m->dir, p, err);
    }
    const char *side_name = original ? "the tile side (force_image_size or vision_config.image_size)"
                                     : "the tile side (preprocessor_config.json's size; vision_config.image_size where it has none)";
    if (!st && p->pre.tile_size % p->patch)
        st = mt_err_set(err, MT_ERR_FORMAT, "%s: %s %lld is not a multiple of vision_config.patch_size %lld",
                        original ? path : m->dir, side_name, (long long)p->pre.tile_size, (long long)p->patch);
    double ratio = st ? 0.5 : mt_cfg_num_opt(&r, cfg, "downsample_ratio", 0.0, 1.0, 0.5);
    st = st ? st : r.st;
    int64_t g = p->pre.tile_size / p->patch, k = ratio >= 1e-6 ? (int64_t)llround(1.0 / ratio) : 0;
    if (!st && (k < 1 || fabs(1.0 / ratio - (double)k) > 1e-9 * (double)k || g % k))
        st = mt_err_set(err, MT_ERR_FORMAT, "%s: field \"downsample_ratio\" = %g does not divide the %lld x %lld "
                        "patch grid of a tile (it must be 1/k for a k dividing %lld)", path, ratio, (long long)g,
                        (long long)g, (long long)g);
    p->tokens_per_tile = k ? (g / k) * (g / k) : 0;
    if (!st && !original) {
        check_seq_length(&r, cfg, p->tokens_per_tile);
        char pc_path[4200];
        snprintf(pc_path, sizeof pc_path, "%s/processor_config.json", m->dir);
        cJSON *pc = NULL;
        st = r.st ? r.st : mt_file_exists(pc_path) ? mt_json_parse_file(pc_path, MT_JSON_MAX_FILE, &pc, err) : MT_OK;
        mt_cfg rp = {pc_path, "", err, MT_OK};
        if (!st && pc) check_seq_length(&rp, pc, p->tokens_per_tile);
        cJSON_Delete(pc);
        st = st ? st : rp.st;
    }
    /* the caller's pixel cap for this run (mitten serve sets one by default) bounds the tile canvas, as
     * processor(images, max_patches=N) would; the thumbnail is not counted */
    int64_t cap = m->params.max_pixels, S2 = p->pre.tile_size * p->pre.tile_size;
    if (!st && cap > 0 && cap / S2 < p->pre.max_tiles) {
        p->pre.max_tiles = MT_MAX(cap / S2, 1);
        p->pre.min_tiles = MT_MIN(p->pre.min_tiles, p->pre.max_tiles);
    }
    if (!st) st = mt_internvl_pre_cfg_check(&p->pre, err);
    /* InternVLProcessor gives every frame image_seq_length tokens: frames of another side would not fill them */
    if (!st && p->video_pre.tile_size != p->pre.tile_size)
        st = mt_err_set(err, MT_ERR_FORMAT, "%s: video frames of %lld pixels a side (the video processor's size) differ "
                        "from the image tiles' %lld, whose token count every frame takes", m->dir,
                        (long long)p->video_pre.tile_size, (long long)p->pre.tile_size);
    if (!st) st = mt_internvl_pre_cfg_check(&p->video_pre, err);
    if (!st) st = load_tokens(m, p, !original, err);
    mt_model_desc *d = &m->desc;
    if (!st && p->img_context >= 0 && d->image_token_id >= 0 && d->image_token_id != p->img_context)
        st = mt_err_set(err, MT_ERR_FORMAT, "%s: field \"image_token_id\" = %lld, but %s gives <IMG_CONTEXT> id %d",
                        path, (long long)d->image_token_id, p->tokenizer_path, (int)p->img_context);
    if (st) {
        release(p);
        return st;
    }
    if (p->img_context >= 0) {
        d->image_token_id = p->img_context;
        d->vision_start_id = p->img_start;
        d->vision_end_id = p->img_end;
        /* a frame is an image tile: its rows hold <IMG_CONTEXT>; the prompt marks a video by <video> where the
         * tokenizer has it, else by the image placeholder itself (the original's model card writes <image> per
         * frame), the input's kind then telling them apart */
        d->video_row_id = p->img_context;
        d->video_token_id = p->video_token >= 0 ? p->video_token : p->img_context;
    }
    p->tok = m->tok;
    *impl = p;
    return MT_OK;
}

static mt_status preprocess(const void *impl, const mt_image *img, float **pixels, int64_t *n_patches,
                            mt_image_grid *grid, int64_t *patch_dim, mt_err *err) {
    const ivl_proc *p = impl;
    int64_t tiles, g = p->pre.tile_size / p->patch;
    mt_status st = mt_internvl_preprocess(img, &p->pre, pixels, &tiles, err);
    if (st) return st;
    *n_patches = tiles * g * g;
    *grid = (mt_image_grid){tiles, g, g};
    *patch_dim = 3 * p->patch * p->patch;
    return MT_OK;
}

/* Pixel values given directly (mitten logits --pixel-values) may hold tiles of another side than the processor
 * makes: the tower interpolates its position embedding, as InternViT does, so any square tile whose patch grid the
 * pixel shuffle divides is taken. *per_tile gets its feature rows. */
static mt_status check_grid(const ivl_proc *p, mt_image_grid g, int64_t *per_tile, mt_err *err) {
    int64_t side = p->pre.tile_size / p->patch, k = side * side / MT_MAX(p->tokens_per_tile, 1);
    k = (int64_t)llround(sqrt((double)k));
    if (g.t < 1 || g.t > MT_INTERNVL_MAX_TILES + 1 || g.h != g.w || g.h < 1)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "image grid %lldx%lldx%lld: InternVL takes 1..%d square tiles "
                          "(%lldx%lld patches from its processor)", (long long)g.t, (long long)g.h, (long long)g.w,
                          MT_INTERNVL_MAX_TILES + 1, (long long)side, (long long)side);
    if (k < 1 || g.h % k)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "image grid %lldx%lldx%lld: a tile's %lld patches a side are not "
                          "divisible by %lld (1 / downsample_ratio)", (long long)g.t, (long long)g.h, (long long)g.w,
                          (long long)g.h, (long long)k);
    *per_tile = (g.h / k) * (g.w / k);
    return MT_OK;
}

static mt_status image_tokens(const void *impl, mt_image_grid g, int32_t *out, int64_t cap, int64_t *n, mt_err *err) {
    const ivl_proc *p = impl;
    int64_t per_tile;
    mt_status st = check_grid(p, g, &per_tile, err);
    if (st) return st;
    if (p->img_context < 0)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "%s is needed for the ids of <img>, <IMG_CONTEXT> and </img>",
                          p->tokenizer_path);
    *n = 2 + g.t * per_tile;
    for (int64_t i = 0; i < *n && i < cap; i++)
        out[i] = i == 0 ? p->img_start : i == *n - 1 ? p->img_end : p->img_context;
    return MT_OK;
}

/* The feature rows of an input: a video's frames are one tile each (any number of them). */
static mt_status input_rows(const ivl_proc *p, const mt_image_input *in, int64_t *rows, mt_err *err) {
    mt_image_grid g = in->grid;
    int64_t per_tile;
    if (in->video && (g.t < 1 || g.t > MT_INTERNVL_MAX_VIDEO_FRAMES))
        return mt_err_set(err, MT_ERR_INVALID_ARG, "video grid %lldx%lldx%lld: InternVL takes 1..%d frames",
                          (long long)g.t, (long long)g.h, (long long)g.w, MT_INTERNVL_MAX_VIDEO_FRAMES);
    mt_status st = check_grid(p, in->video ? (mt_image_grid){1, g.h, g.w} : g, &per_tile, err);
    if (!st) *rows = g.t * per_tile;
    return st;
}

/* Appends k ids at out + *n where they fit (cap), counting them all in *n. */
static void put_ids(int32_t *out, int64_t cap, int64_t *n, const int32_t *ids, int64_t k) {
    for (int64_t i = 0; i < k; i++, (*n)++)
        if (out && *n < cap) out[*n] = ids[i];
}

/* A video's placeholder becomes, per frame i from 1, "Frame{i}: " <img> <IMG_CONTEXT> x rows </img>, the frames
 * joined by "\n" (InternVLProcessor's "\n".join; the model card's video_prefix ends every frame with "\n", the last
 * one being the newline a chat template writes after the placeholder). The text is tokenized piece by piece: the
 * image tokens are special, so only a prompt whose text runs into the placeholder without a newline would
 * tokenize "Frame1: " otherwise. */
static mt_status video_tokens(const void *impl, const mt_image_input *in, int32_t *out, int64_t cap, int64_t *n,
                              mt_err *err) {
    const ivl_proc *p = impl;
    int64_t rows;
    mt_status st = input_rows(p, in, &rows, err);
    if (st) return st;
    if (p->img_context < 0)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "%s is needed for the ids of <img>, <IMG_CONTEXT> and </img>",
                          p->tokenizer_path);
    if (!p->tok)
        return mt_err_set(err, MT_ERR_UNSUPPORTED, "an InternVL video needs the model's tokenizer: each frame is "
                          "introduced by the text \"FrameN: \"");
    int64_t per = rows / in->grid.t;
    *n = 0;
    for (int64_t f = 0; f < in->grid.t; f++) {
        char text[48];
        int len = snprintf(text, sizeof text, "%sFrame%lld: ", f ? "\n" : "", (long long)(f + 1));
        int32_t *ids = NULL;
        size_t k = 0;
        if ((st = mt_tokenizer_encode(p->tok, text, (size_t)len, false, &ids, &k, err)))
            return mt_err_prefix(err, "video frame text \"%s\"", text);
        put_ids(out, cap, n, ids, (int64_t)k);
        mt_free(ids);
        put_ids(out, cap, n, &p->img_start, 1);
        for (int64_t r = 0; r < per; r++) put_ids(out, cap, n, &p->img_context, 1);
        put_ids(out, cap, n, &p->img_end, 1);
    }
    return MT_OK;
}

/* The run's sampling (mt_video_params) over the folder's: nframes or fps choose the count and turn sampling on,
 * max_frames caps it; the others size Qwen's frames and have no meaning for one-tile frames. */
static mt_internvl_video_params video_params(const ivl_proc *p, const mt_video_params *vp) {
    mt_internvl_video_params q = p->video;
    if (vp->nframes > 0) {
        q.num_frames = vp->nframes;
        q.fps = 0;
        q.sample = true;
    } else if (vp->fps > 0) {
        q.num_frames = 0;
        q.fps = vp->fps;
        q.sample = true;
    }
    if (vp->max_frames > 0) q.max_frames = vp->max_frames;
    return q;
}

static mt_status preprocess_video(const void *impl, const char *path, const mt_video_params *vp, float **pixels,
                                  mt_image_input *out, mt_err *err) {
    const ivl_proc *p = impl;
    mt_internvl_video clip;
    mt_status st = mt_internvl_video_sample(p, path, vp, &clip, err);
    if (st) return st;
    int64_t g = clip.tile_size / p->patch;
    *pixels = clip.pixel_values;
    clip.pixel_values = NULL;
    *out = (mt_image_input){.pixels = *pixels, .n_patches = clip.n_frames * g * g, .grid = {clip.n_frames, g, g},
                            .patch_dim = 3 * p->patch * p->patch, .video = true};
    mt_internvl_video_free(&clip);
    return MT_OK;
}

mt_status mt_internvl_video_sample(const void *impl, const char *path, const mt_video_params *vp,
                                   mt_internvl_video *out, mt_err *err) {
    const ivl_proc *p = impl;
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return mt_err_set(err, MT_ERR_UNSUPPORTED, "%s: a folder of frames; InternVL samples video files only", path);
    /* a model that cannot place a video refuses it before the decoding, which may take long */
    int64_t g = p->video_pre.tile_size / p->patch, n;
    mt_image_input probe = {.grid = {1, g, g}, .video = true};
    mt_status st = video_tokens(p, &probe, NULL, 0, &n, err);
    if (st) return st;
    mt_internvl_video_params q = video_params(p, vp);
    return mt_internvl_video_from_file(path, &q, &p->video_pre, out, err);
}

/* Positions count up from start over every row, image rows included; the images only have to match the feature
 * rows the prompt holds. */
static mt_status positions(const mt_model *m, const void *impl, const int32_t *ids, int64_t L,
                           const mt_image_input *images, int n_images, int64_t start, int64_t *pos, int64_t *next,
                           mt_err *err) {
    const ivl_proc *p = impl;
    int64_t want = 0, have = 0;
    for (int i = 0; i < n_images; i++) {
        int64_t rows;
        mt_status st = input_rows(p, &images[i], &rows, err);
        if (st) return mt_err_prefix(err, "%s %d", images[i].video ? "video" : "image", i + 1);
        want += rows;
    }
    for (int64_t i = 0; i < L; i++) have += p->img_context >= 0 && ids[i] == p->img_context;
    if (have != want)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "the prompt holds %lld image tokens (<IMG_CONTEXT>), its %d "
                          "image(s) need %lld", (long long)have, n_images, (long long)want);
    for (int a = 0; a < MT_MAX(m->desc.pos_axes, 1); a++)
        for (int64_t i = 0; i < L; i++) pos[a * L + i] = start + i;
    *next = start + L;
    return MT_OK;
}

/* transformers' pixel_values: (n, 3, S, S). */
static int pixel_shape(const void *impl, const mt_image_input *img, int64_t shape[4]) {
    const ivl_proc *p = impl;
    shape[0] = img->grid.t;
    shape[1] = 3;
    shape[2] = shape[3] = p->pre.tile_size;
    return 4;
}

const mt_processor_part mt_processor_internvl = {"internvl processor", load, release, preprocess, image_tokens,
                                                 positions, pixel_shape, video_tokens, preprocess_video, NULL};
