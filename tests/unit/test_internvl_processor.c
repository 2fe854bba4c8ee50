/* models/internvl_processor: loading from folders this test writes (both layouts, no weights), the refusals of bad
 * configs and images with the field or file they name, the placeholder expansion, positions, and allocation
 * failures. The pixel comparison with PIL + torch lives in tests/media/internvl_pre_ref.py. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/file.h"
#include "base/json.h"
#include "check.h"
#include "media/internvl_pre.h"
#include "models/model.h"

extern const mt_processor_part mt_processor_internvl;

static char tmpdir[256];

enum { IMG_START = 151665, IMG_END = 151666, IMG_CONTEXT = 151667 };

static const char *TOKENIZER = "{\"added_tokens\": [{\"id\": 151665, \"content\": \"<img>\"}, {\"id\": 151666, "
                               "\"content\": \"</img>\"}, {\"id\": 151667, \"content\": \"<IMG_CONTEXT>\"}], "
                               "\"model\": {\"vocab\": {\"a\": 0}}}";

/* An original-layout config.json with extra fields (",\"key\": value" text) replacing the defaults' keys. */
static void original_cfg(char *buf, size_t cap, const char *extra) {
    snprintf(buf, cap,
             "{\"architectures\": [\"InternVLChatModel\"], \"llm_config\": {\"vocab_size\": 151674}, "
             "\"vision_config\": {\"image_size\": 448, \"patch_size\": 14}%s%s}",
             strstr(extra, "\"dynamic_image_size\"") ? "" : ", \"dynamic_image_size\": true, \"use_thumbnail\": true, "
                                                             "\"max_dynamic_patch\": 12",
             extra);
}

static void hf_cfg(char *buf, size_t cap, const char *extra) {
    snprintf(buf, cap,
             "{\"architectures\": [\"InternVLForConditionalGeneration\"], \"text_config\": {\"vocab_size\": 151674},"
             " \"vision_config\": {\"image_size\": [448, 448], \"patch_size\": [14, 14]}%s}",
             extra);
}

static void put(const char *name, const char *text) {
    char path[512];
    mt_err err;
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    if (!text) {
        unlink(path);
        return;
    }
    CHECK(mt_file_write_atomic(path, text, strlen(text), &err) == MT_OK);
}

/* Loads the part from tmpdir with config text (and whatever files tmpdir holds), as model loading does. */
static mt_status load(const char *config, mt_model *m, void **impl, mt_err *err) {
    cJSON *cfg;
    char path[512];
    snprintf(path, sizeof path, "%s/config.json", tmpdir);
    put("config.json", config);
    *impl = NULL;
    mt_status st = mt_json_parse(config, strlen(config), path, &cfg, err);
    if (st) return st;
    *m = (mt_model){.dir = tmpdir};
    m->desc.image_token_id = m->desc.vision_start_id = m->desc.vision_end_id = -1;
    m->desc.vocab_size = 151674;
    m->desc.pos_axes = 1;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(cfg, "image_token_id");
    if (cJSON_IsNumber(id)) m->desc.image_token_id = (int64_t)id->valuedouble;
    st = mt_processor_internvl.load(m, cfg, path, impl, err);
    cJSON_Delete(cfg);
    return st;
}

/* A config must be refused with code, and the message must hold both needles (NULL: not checked). */
static void refused(const char *config, mt_status code, const char *needle1, const char *needle2) {
    mt_model m;
    void *impl;
    mt_err err = {0};
    mt_status st = load(config, &m, &impl, &err);
    CHECK_MSG(st == code, "status %d, want %d: %s\n  config: %s", (int)st, (int)code, err.msg, config);
    CHECK_MSG(st && (!needle1 || strstr(err.msg, needle1)) && (!needle2 || strstr(err.msg, needle2)),
              "message \"%s\" lacks \"%s\" / \"%s\"", err.msg, needle1 ? needle1 : "", needle2 ? needle2 : "");
    if (!st) mt_processor_internvl.release(impl);
}

static void test_bad_configs(void) {
    char c[2048];
    put("tokenizer.json", TOKENIZER);
    struct {
        const char *extra;
        mt_status code;
        const char *n1, *n2;
    } orig[] = {
        {", \"downsample_ratio\": 0.3", MT_ERR_FORMAT, "\"downsample_ratio\"", "patch grid"},
        {", \"downsample_ratio\": 0", MT_ERR_FORMAT, "\"downsample_ratio\"", NULL},
        {", \"downsample_ratio\": 1.5", MT_ERR_FORMAT, "\"downsample_ratio\"", NULL},
        {", \"downsample_ratio\": 0.25, \"force_image_size\": 420", MT_ERR_FORMAT, "\"downsample_ratio\"", "30 x 30"},
        {", \"min_dynamic_patch\": 0", MT_ERR_FORMAT, "\"min_dynamic_patch\"", "[1, 40]"},
        {", \"dynamic_image_size\": true, \"max_dynamic_patch\": 0", MT_ERR_FORMAT, "\"max_dynamic_patch\"", "[1, 40]"},
        {", \"dynamic_image_size\": true, \"max_dynamic_patch\": 41", MT_ERR_FORMAT, "\"max_dynamic_patch\"",
         "[1, 40]"},
        {", \"dynamic_image_size\": true, \"min_dynamic_patch\": 5, \"max_dynamic_patch\": 3", MT_ERR_FORMAT,
         "\"min_dynamic_patch\" = 5", "\"max_dynamic_patch\" = 3"},
        {", \"force_image_size\": 450", MT_ERR_FORMAT, "450", "patch_size"},
        {", \"pad2square\": true", MT_ERR_UNSUPPORTED, "\"pad2square\"", NULL},
        {", \"dynamic_image_size\": true, \"use_thumbnail\": \"yes\"", MT_ERR_FORMAT, "\"use_thumbnail\"", NULL},
    };
    for (size_t i = 0; i < MT_ARRAY_LEN(orig); i++) {
        original_cfg(c, sizeof c, orig[i].extra);
        refused(c, orig[i].code, orig[i].n1, orig[i].n2);
    }
    refused("{\"architectures\": [\"InternVLChatModel\"], \"vision_config\": {}}", MT_ERR_FORMAT, "llm_config",
            "config.json");
    refused("{\"llm_config\": {}, \"vision_config\": {\"patch_size\": [14, 16]}}", MT_ERR_UNSUPPORTED,
            "\"patch_size\"", "square");

    struct {
        const char *pre;
        mt_status code;
        const char *n1, *n2;
    } hf[] = {
        {"{\"size\": {\"height\": 448, \"width\": 448}, \"max_patches\": 41}", MT_ERR_FORMAT, "\"max_patches\"",
         "preprocessor_config.json"},
        {"{\"size\": {\"height\": 448, \"width\": 448}, \"min_patches\": 0}", MT_ERR_FORMAT, "\"min_patches\"",
         "[1, 40]"},
        {"{\"size\": {\"height\": 448, \"width\": 448}, \"max_patches\": 0}", MT_ERR_FORMAT, "\"max_patches\"",
         "[1, 40]"},
        {"{\"size\": {\"height\": 448, \"width\": 448}, \"min_patches\": 8, \"max_patches\": 4}", MT_ERR_FORMAT,
         "\"min_patches\" = 8", "\"max_patches\" = 4"},
        {"{\"size\": {\"height\": 448, \"width\": 224}}", MT_ERR_UNSUPPORTED, "size", "square"},
        {"{\"size\": {\"shortest_edge\": 448}}", MT_ERR_FORMAT, "\"height\"", "preprocessor_config.json"},
        {"{\"image_processor_type\": \"CLIPImageProcessor\"}", MT_ERR_UNSUPPORTED, "CLIPImageProcessor", NULL},
        {"{\"size\": 448, \"do_normalize\": false}", MT_ERR_UNSUPPORTED, "\"do_normalize\"", NULL},
        {"{\"size\": 448, \"resample\": 2}", MT_ERR_UNSUPPORTED, "\"resample\"", NULL},
        {"{\"size\": 448, \"image_std\": [0.2, 0, 0.2]}", MT_ERR_FORMAT, "\"image_std\"[1]", NULL},
        {"{}", MT_ERR_FORMAT, "384", "patch_size"}, /* the class default size, 384, is no multiple of 14 */
    };
    hf_cfg(c, sizeof c, "");
    for (size_t i = 0; i < MT_ARRAY_LEN(hf); i++) {
        put("preprocessor_config.json", hf[i].pre);
        refused(c, hf[i].code, hf[i].n1, hf[i].n2);
    }
    put("preprocessor_config.json", "{\"size\": 448}");
    hf_cfg(c, sizeof c, ", \"image_seq_length\": 100");
    refused(c, MT_ERR_FORMAT, "\"image_seq_length\" = 100", "256");
    hf_cfg(c, sizeof c, "");
    put("processor_config.json", "{\"image_seq_length\": 64}");
    refused(c, MT_ERR_FORMAT, "processor_config.json", "\"image_seq_length\" = 64");
    put("processor_config.json", NULL);
    hf_cfg(c, sizeof c, ", \"image_token_id\": 5");
    refused(c, MT_ERR_FORMAT, "\"image_token_id\" = 5", "151667");
    put("preprocessor_config.json", NULL);
}

static void test_tokens(void) {
    char c[2048];
    original_cfg(c, sizeof c, "");
    put("tokenizer.json", "{\"added_tokens\": [{\"id\": 1, \"content\": \"<img>\"}, {\"id\": 2, \"content\": "
                          "\"</img>\"}], \"model\": {\"vocab\": {}}}");
    refused(c, MT_ERR_FORMAT, "\"<IMG_CONTEXT>\"", "tokenizer.json");

    /* a token in the vocabulary rather than added_tokens, and names from tokenizer_config.json */
    put("tokenizer.json", "{\"added_tokens\": [{\"id\": 1, \"content\": \"<s_img>\"}, {\"id\": 2, \"content\": "
                          "\"</img>\"}], \"model\": {\"vocab\": {\"<IMG_CONTEXT>\": 3}}}");
    put("tokenizer_config.json", "{\"start_image_token\": \"<s_img>\"}");
    mt_model m;
    void *impl;
    mt_err err;
    CHECK(load(c, &m, &impl, &err) == MT_OK);
    CHECK(m.desc.image_token_id == 3 && m.desc.vision_start_id == 1 && m.desc.vision_end_id == 2);
    mt_processor_internvl.release(impl);
    put("tokenizer_config.json", NULL);

    /* without tokenizer.json the folder loads (logits needs no tokenizer), and expansion names the file */
    put("tokenizer.json", NULL);
    CHECK(load(c, &m, &impl, &err) == MT_OK);
    CHECK(m.desc.image_token_id == -1);
    int64_t n = 0;
    CHECK(mt_processor_internvl.image_tokens(impl, (mt_image_grid){1, 32, 32}, NULL, 0, &n, &err) != MT_OK);
    CHECK(strstr(err.msg, "tokenizer.json") && strstr(err.msg, "<IMG_CONTEXT>"));
    mt_processor_internvl.release(impl);

    put("tokenizer.json", TOKENIZER);
    CHECK(load(c, &m, &impl, &err) == MT_OK);
    CHECK(m.desc.image_token_id == IMG_CONTEXT && m.desc.vision_start_id == IMG_START &&
          m.desc.vision_end_id == IMG_END);
    int32_t out[8] = {0};
    CHECK(mt_processor_internvl.image_tokens(impl, (mt_image_grid){3, 32, 32}, out, 8, &n, &err) == MT_OK);
    CHECK(n == 2 + 3 * 256 && out[0] == IMG_START && out[1] == IMG_CONTEXT && out[7] == IMG_CONTEXT);
    int32_t *all = malloc((size_t)n * sizeof *all);
    CHECK(all && mt_processor_internvl.image_tokens(impl, (mt_image_grid){3, 32, 32}, all, n, &n, &err) == MT_OK);
    int64_t ctx = 0;
    for (int64_t i = 0; all && i < n; i++) ctx += all[i] == IMG_CONTEXT;
    CHECK(all && all[n - 1] == IMG_END && ctx == 3 * 256);
    free(all);
    /* pixel values given directly may hold tiles of another side (the tower interpolates): 16x16 patches are 64 rows */
    CHECK(mt_processor_internvl.image_tokens(impl, (mt_image_grid){2, 16, 16}, NULL, 0, &n, &err) == MT_OK &&
          n == 2 + 2 * 64);
    mt_image_grid bad[] = {{0, 32, 32}, {42, 32, 32}, {2, 15, 15}, {2, 32, 16}};
    for (size_t i = 0; i < MT_ARRAY_LEN(bad); i++) {
        CHECK(mt_processor_internvl.image_tokens(impl, bad[i], NULL, 0, &n, &err) == MT_ERR_INVALID_ARG);
        CHECK(strstr(err.msg, "image grid") != NULL);
    }

    /* positions: 1D and sequential, the image rows counted against the images' tiles */
    int32_t ids[2 + 256 + 3];
    int64_t L = MT_ARRAY_LEN(ids), pos[MT_ARRAY_LEN(ids)], next = 0;
    ids[0] = 9;
    ids[1] = IMG_START;
    for (int i = 0; i < 256; i++) ids[2 + i] = IMG_CONTEXT;
    ids[258] = IMG_END;
    ids[259] = ids[260] = 9;
    mt_image_input one = {.grid = {1, 32, 32}}, two = {.grid = {2, 32, 32}};
    CHECK(mt_processor_internvl.positions(&m, impl, ids, L, &one, 1, 7, pos, &next, &err) == MT_OK);
    CHECK(next == 7 + L && pos[0] == 7 && pos[L - 1] == 7 + L - 1 && pos[100] == 107);
    CHECK(mt_processor_internvl.positions(&m, impl, ids, L, &two, 1, 0, pos, &next, &err) == MT_ERR_INVALID_ARG);
    CHECK(strstr(err.msg, "256") && strstr(err.msg, "512"));
    CHECK(mt_processor_internvl.positions(&m, impl, ids, L, NULL, 0, 0, pos, &next, &err) == MT_ERR_INVALID_ARG);
    mt_processor_internvl.release(impl);

    /* a smaller tile: force_image_size 224 -> 16 x 16 patches -> 64 tokens a tile */
    original_cfg(c, sizeof c, ", \"force_image_size\": 224");
    CHECK(load(c, &m, &impl, &err) == MT_OK);
    CHECK(mt_processor_internvl.image_tokens(impl, (mt_image_grid){2, 16, 16}, NULL, 0, &n, &err) == MT_OK &&
          n == 2 + 2 * 64);
    mt_processor_internvl.release(impl);
}

static void test_images(void) {
    char c[2048];
    put("tokenizer.json", TOKENIZER);
    original_cfg(c, sizeof c, "");
    mt_model m;
    void *impl;
    mt_err err;
    CHECK(load(c, &m, &impl, &err) == MT_OK);
    uint8_t px[3 * 201] = {0};
    mt_image wide = {.width = 201, .height = 1, .rgb = px, .name = "wide.png"};
    mt_image tall = {.width = 1, .height = 201, .rgb = px, .name = "tall.png"};
    mt_image edge = {.width = 200, .height = 1, .rgb = px, .name = "edge.png"};
    float *pv = NULL;
    int64_t n = 0, dim = 0;
    mt_image_grid g;
    CHECK(mt_processor_internvl.preprocess(impl, &wide, &pv, &n, &g, &dim, &err) == MT_ERR_LIMIT);
    CHECK(strstr(err.msg, "wide.png") && strstr(err.msg, "aspect ratio"));
    CHECK(mt_processor_internvl.preprocess(impl, &tall, &pv, &n, &g, &dim, &err) == MT_ERR_LIMIT);
    CHECK(strstr(err.msg, "tall.png") != NULL);
    CHECK(pv == NULL);
    CHECK(mt_processor_internvl.preprocess(impl, &edge, &pv, &n, &g, &dim, &err) == MT_OK);
    /* 200:1 under 1..12 tiles: a 12 x 1 grid and the thumbnail */
    CHECK(g.t == 13 && g.h == 32 && g.w == 32 && n == 13 * 32 * 32 && dim == 3 * 14 * 14);
    CHECK(pv && pv[0] == (0.0f - 0.485f) / 0.229f);
    int64_t shape[4];
    CHECK(mt_processor_internvl.pixel_shape(impl, &(mt_image_input){.grid = g}, shape) == 4);
    CHECK(shape[0] == 13 && shape[1] == 3 && shape[2] == 448 && shape[3] == 448);
    mt_free(pv);
    pv = NULL;

    /* every allocation of preprocess may fail: MT_ERR_NOMEM, nothing returned */
    int k, bad = 0;
    for (k = 1; k < 40; k++) {
        mt_alloc_fail_after((size_t)k);
        mt_status st = mt_processor_internvl.preprocess(impl, &edge, &pv, &n, &g, &dim, &err);
        mt_alloc_fail_after(0);
        if (st == MT_OK) {
            mt_free(pv);
            break;
        }
        bad += st != MT_ERR_NOMEM || pv != NULL;
    }
    CHECK(bad == 0 && k > 1 && k < 40);
    mt_processor_internvl.release(impl);

    /* a run's pixel cap lowers the most tiles: 802816 pixels = 4 tiles of 448, so 200:1 takes 4 x 1 + thumbnail */
    m.params.max_pixels = 802816;
    void *capped;
    cJSON *cj;
    CHECK(mt_json_parse(c, strlen(c), "config.json", &cj, &err) == MT_OK);
    CHECK(mt_processor_internvl.load(&m, cj, "config.json", &capped, &err) == MT_OK);
    cJSON_Delete(cj);
    CHECK(mt_processor_internvl.preprocess(capped, &edge, &pv, &n, &g, &dim, &err) == MT_OK && g.t == 5);
    mt_free(pv);
    mt_processor_internvl.release(capped);

    /* the same folder with dynamic_image_size false: one tile whatever the shape */
    original_cfg(c, sizeof c, ", \"dynamic_image_size\": false");
    CHECK(load(c, &m, &impl, &err) == MT_OK);
    CHECK(mt_processor_internvl.preprocess(impl, &edge, &pv, &n, &g, &dim, &err) == MT_OK && g.t == 1);
    mt_free(pv);
    mt_processor_internvl.release(impl);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/mt_test_internvl.XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    test_bad_configs();
    test_tokens();
    test_images();
    const char *files[] = {"config.json", "tokenizer.json", "tokenizer_config.json", "preprocessor_config.json",
                           "processor_config.json"};
    for (size_t i = 0; i < MT_ARRAY_LEN(files); i++) put(files[i], NULL);
    rmdir(tmpdir);
    return check_report();
}
