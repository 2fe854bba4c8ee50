/* media/qwen_vision_pre: smart_resize values (from transformers' function run in Python), config loading and
 * validation (both key forms of the pixel bounds and their precedence, Qwen3-VL's published file, family defaults),
 * the patch layout of pixel_values, allocation failures, every patchify kernel path against the scalar one. The
 * PIL + numpy comparison of whole images lives in tests/media/ref_media.py. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/file.h"
#include "check.h"
#include "cpu_paths.h"
#include "media/qwen_vision_pre.h"

static void test_smart_resize(void) {
    /* h, w, factor, min, max -> out_h, out_w, as Python's transformers.smart_resize gives them. */
    static const int64_t cases[][7] = {
        {480, 640, 28, 3136, 12845056, 476, 644},   {1, 1, 28, 3136, 12845056, 56, 56},
        {20, 3000, 28, 3136, 12845056, 28, 2996},   {10000, 10000, 28, 3136, 1003520, 980, 980},
        {42, 70, 28, 3136, 12845056, 56, 56},       {42, 70, 28, 100, 12845056, 56, 56},
        {3000, 4000, 32, 65536, 16777216, 3008, 4000},
    };
    for (size_t i = 0; i < MT_ARRAY_LEN(cases); i++) {
        const int64_t *c = cases[i];
        int64_t h = 0, w = 0;
        mt_err err;
        CHECK(mt_qwen_smart_resize(c[0], c[1], c[2], c[3], c[4], &h, &w, &err) == MT_OK);
        CHECK_MSG(h == c[5] && w == c[6], "case %zu: got %lldx%lld", i, (long long)h, (long long)w);
    }
    int64_t h = -1, w = -1;
    mt_err err;
    CHECK(mt_qwen_smart_resize(1, 200, 28, 3136, 12845056, &h, &w, &err) == MT_OK);
    CHECK(mt_qwen_smart_resize(1, 201, 28, 3136, 12845056, &h, &w, &err) == MT_ERR_LIMIT);
    CHECK(strstr(err.msg, "aspect ratio") != NULL);
    CHECK(mt_qwen_smart_resize(0, 5, 28, 3136, 12845056, &h, &w, &err) == MT_ERR_INVALID_ARG);
    CHECK(mt_qwen_smart_resize(5, 5, 0, 3136, 12845056, &h, &w, &err) == MT_ERR_INVALID_ARG);
    CHECK(mt_qwen_smart_resize(5, 5, 28, 5000, 4000, &h, &w, &err) == MT_ERR_INVALID_ARG);
    CHECK(mt_qwen_smart_resize(INT64_MAX, 2, 28, 1, 10, &h, &w, &err) == MT_ERR_INVALID_ARG);
}

static char tmpdir[256], datadir[1024];

static void find_datadir(void) {
    const char *f = __FILE__, *slash = strrchr(f, '/');
    int n = slash ? (int)(slash - f) : 1;
    snprintf(datadir, sizeof datadir, "%.*s/../media/data", n, slash ? f : ".");
}

/* Writes json as tmpdir's preprocessor_config.json and loads it with the given defaults (Qwen2.5-VL's if NULL). */
static mt_status load_text_with(const char *json, const mt_qwen_preproc_cfg *defaults, mt_qwen_preproc_cfg *cfg,
                                mt_err *err) {
    char path[512];
    snprintf(path, sizeof path, "%s/preprocessor_config.json", tmpdir);
    if (mt_file_write_atomic(path, json, strlen(json), err) != MT_OK) return MT_ERR_IO;
    return defaults ? mt_qwen_preproc_cfg_load_with(tmpdir, defaults, cfg, err)
                    : mt_qwen_preproc_cfg_load(tmpdir, cfg, err);
}

static mt_status load_text(const char *json, mt_qwen_preproc_cfg *cfg, mt_err *err) {
    return load_text_with(json, NULL, cfg, err);
}

static bool all3(const float v[3], float want) { return v[0] == want && v[1] == want && v[2] == want; }

static void test_config(void) {
    mt_qwen_preproc_cfg c;
    mt_err err;
    CHECK(mt_qwen_preproc_cfg_load(tmpdir, &c, &err) == MT_OK); /* no file yet: Qwen2.5-VL defaults */
    CHECK(c.min_pixels == 3136 && c.max_pixels == 12845056 && c.patch_size == 14 && c.temporal_patch_size == 2 &&
          c.merge_size == 2 && c.mean[0] == 0.48145466f && c.std[2] == 0.27577711f && c.rescale_factor == 1.0 / 255);

    CHECK(load_text("{\"min_pixels\": 3136, \"max_pixels\": 12845056, \"patch_size\": 14, \"temporal_patch_size\": 2,"
                    "\"merge_size\": 2, \"image_mean\": [0.48145466, 0.4578275, 0.40821073], \"image_std\": "
                    "[0.26862954, 0.26130258, 0.27577711], \"image_processor_type\": \"Qwen2VLImageProcessor\"}",
                    &c, &err) == MT_OK);
    CHECK(c.max_pixels == 12845056 && c.mean[1] == 0.4578275f);
    /* transformers 5.x style, Qwen3-VL shape. */
    CHECK(load_text("{\"size\": {\"longest_edge\": 16777216, \"shortest_edge\": 65536}, \"patch_size\": 16,"
                    "\"image_mean\": [0.5, 0.5, 0.5], \"image_std\": 0.5}",
                    &c, &err) == MT_OK);
    CHECK(c.min_pixels == 65536 && c.max_pixels == 16777216 && c.patch_size == 16 && c.std[1] == 0.5f);
    /* Top-level min/max_pixels override size, as the processor's backward-compatibility rule does. */
    CHECK(load_text("{\"size\": {\"longest_edge\": 16777216, \"shortest_edge\": 65536}, \"max_pixels\": 100000}", &c,
                    &err) == MT_OK);
    CHECK(c.min_pixels == 65536 && c.max_pixels == 100000);
    /* A file without bounds gets transformers' defaults, not the published Qwen2.5-VL ones. */
    CHECK(load_text("{}", &c, &err) == MT_OK && c.min_pixels == 3136 && c.max_pixels == 1003520);
    CHECK(load_text("{\"size\": null, \"min_pixels\": null, \"max_pixels\": null}", &c, &err) == MT_OK &&
          c.min_pixels == 3136 && c.max_pixels == 1003520);

    /* Precedence, as Qwen2VLImageProcessorFast.__init__: each top-level key replaces its own edge of size. */
    static const struct {
        const char *json;
        int64_t lo, hi;
    } good[] = {
        {"{\"min_pixels\": 4096}", 4096, 1003520},
        {"{\"max_pixels\": 4096}", 3136, 4096},
        {"{\"min_pixels\": 100, \"max_pixels\": 200}", 100, 200},
        {"{\"size\": {\"shortest_edge\": 65536, \"longest_edge\": 16777216}, \"min_pixels\": 1000}", 1000, 16777216},
        {"{\"size\": {\"shortest_edge\": 65536, \"longest_edge\": 16777216}, \"min_pixels\": 1000, "
         "\"max_pixels\": 2000}",
         1000, 2000},
        {"{\"size\": {\"longest_edge\": 16777216}, \"min_pixels\": 1000}", 1000, 16777216},
        {"{\"size\": {\"shortest_edge\": 500}, \"max_pixels\": 700}", 500, 700},
        {"{\"size\": {}, \"min_pixels\": 10, \"max_pixels\": 20}", 10, 20},
        {"{\"size\": {\"shortest_edge\": 65536, \"longest_edge\": 16777216}, \"min_pixels\": null}", 65536, 16777216},
        {"{\"size\": {\"shortest_edge\": 65536.0, \"longest_edge\": 1.6777216e7}}", 65536, 16777216},
        {"{\"size\": {\"shortest_edge\": 77, \"longest_edge\": 77}}", 77, 77},
        /* transformers 4.45 saved the bounds twice, in size under their old names and at the top level. */
        {"{\"size\": {\"min_pixels\": 3136, \"max_pixels\": 12845056}, \"min_pixels\": 3136, "
         "\"max_pixels\": 12845056}",
         3136, 12845056},
    };
    for (size_t i = 0; i < MT_ARRAY_LEN(good); i++) {
        memset(&c, 0, sizeof c);
        mt_status st = load_text(good[i].json, &c, &err);
        CHECK_MSG(st == MT_OK && c.min_pixels == good[i].lo && c.max_pixels == good[i].hi,
                  "%s: status %d (%s), bounds [%lld, %lld]", good[i].json, st, st ? err.msg : "",
                  (long long)c.min_pixels, (long long)c.max_pixels);
    }

    static const struct {
        const char *json, *needle;
        mt_status want;
    } bad[] = {
        {"{\"patch_size\": 0}", "patch_size", MT_ERR_FORMAT},
        {"{\"patch_size\": \"14\"}", "patch_size", MT_ERR_FORMAT},
        {"{\"merge_size\": 2.5}", "merge_size", MT_ERR_FORMAT},
        {"{\"temporal_patch_size\": 1000}", "temporal_patch_size", MT_ERR_FORMAT},
        {"{\"min_pixels\": -1}", "min_pixels", MT_ERR_FORMAT},
        {"{\"max_pixels\": 1e300}", "max_pixels", MT_ERR_FORMAT},
        {"{\"min_pixels\": 5000, \"max_pixels\": 4000}", "min_pixels", MT_ERR_FORMAT},
        {"{\"image_mean\": [0.5, 0.5]}", "image_mean", MT_ERR_FORMAT},
        {"{\"image_mean\": [0.5, \"a\", 0.5]}", "image_mean", MT_ERR_FORMAT},
        {"{\"image_std\": [0.5, 0, 0.5]}", "image_std", MT_ERR_FORMAT},
        {"{\"image_std\": {}}", "image_std", MT_ERR_FORMAT},
        {"{\"rescale_factor\": 0}", "rescale_factor", MT_ERR_FORMAT},
        {"{\"size\": {\"shortest_edge\": 100}}", "longest_edge", MT_ERR_FORMAT},
        {"{\"size\": {\"height\": 224, \"width\": 224}}", "shortest_edge", MT_ERR_FORMAT},
        {"{\"size\": 5}", "size", MT_ERR_FORMAT},
        /* The bounds: types, ranges, consistency, the keys transformers requires. */
        {"{\"size\": {\"shortest_edge\": 65536.5, \"longest_edge\": 16777216}}",
         "\"size.shortest_edge\" must be an integer", MT_ERR_FORMAT},
        {"{\"size\": {\"shortest_edge\": 65536, \"longest_edge\": \"16777216\"}}",
         "\"size.longest_edge\" must be an integer", MT_ERR_FORMAT},
        {"{\"size\": {\"shortest_edge\": null, \"longest_edge\": 16777216}}", "size.shortest_edge", MT_ERR_FORMAT},
        {"{\"size\": {\"shortest_edge\": 0, \"longest_edge\": 16777216}}", "\"size.shortest_edge\" = 0 is outside",
         MT_ERR_FORMAT},
        {"{\"size\": {\"shortest_edge\": 1, \"longest_edge\": 1e10}}", "\"size.longest_edge\" = 10000000000 is outside",
         MT_ERR_FORMAT},
        {"{\"size\": {\"shortest_edge\": 16777216, \"longest_edge\": 65536}}",
         "\"size.shortest_edge\" = 16777216 (the lower pixel bound) is more than \"size.longest_edge\" = 65536",
         MT_ERR_FORMAT},
        {"{\"size\": {\"shortest_edge\": 65536, \"longest_edge\": 16777216}, \"max_pixels\": 1000}",
         "\"size.shortest_edge\" = 65536 (the lower pixel bound) is more than \"max_pixels\" = 1000", MT_ERR_FORMAT},
        {"{\"min_pixels\": 2000000}",
         "\"min_pixels\" = 2000000 (the lower pixel bound) is more than the default longest_edge", MT_ERR_FORMAT},
        {"{\"size\": {\"longest_edge\": 16777216}}", "lacks \"shortest_edge\" and no top-level \"min_pixels\"",
         MT_ERR_FORMAT},
        {"{\"size\": {}, \"min_pixels\": 3136}", "lacks \"longest_edge\"", MT_ERR_FORMAT},
        {"{\"size\": {\"shortest_edge\": 1, \"longest_edge\": 9, \"height\": 3}}", "\"size.height\"", MT_ERR_FORMAT},
        {"{\"size\": {\"min_pixels\": 3136, \"max_pixels\": 12845056}}", "\"size.min_pixels\"", MT_ERR_FORMAT},
        {"{\"size\": {\"min_pixels\": 3136, \"max_pixels\": 12845056}, \"min_pixels\": 3136}", "\"size.max_pixels\"",
         MT_ERR_FORMAT},
        {"{\"size\": [65536, 16777216]}", "\"size\" must be an object", MT_ERR_FORMAT},
        {"{\"max_pixels\": true}", "\"max_pixels\" must be an integer", MT_ERR_FORMAT},
        {"{\"do_normalize\": false}", "do_normalize", MT_ERR_UNSUPPORTED},
        {"{\"do_resize\": 1}", "do_resize", MT_ERR_FORMAT},
        {"{\"resample\": 2}", "resample", MT_ERR_UNSUPPORTED},
        {"[1, 2]", "object", MT_ERR_FORMAT},
        {"{\"patch_size\": 14,", "JSON", MT_ERR_FORMAT},
    };
    for (size_t i = 0; i < MT_ARRAY_LEN(bad); i++) {
        mt_qwen_preproc_cfg before, after;
        memset(&before, 0x5a, sizeof before);
        after = before;
        mt_status st = load_text(bad[i].json, &after, &err);
        CHECK_MSG(st == bad[i].want && strstr(err.msg, bad[i].needle) && strstr(err.msg, "preprocessor_config.json"),
                  "%s: status %d, message %s", bad[i].json, st, err.msg);
        CHECK(memcmp(&before, &after, sizeof before) == 0);
    }
    char path[512];
    snprintf(path, sizeof path, "%s/preprocessor_config.json", tmpdir);
    unlink(path);
}

/* The published Qwen3-VL-4B-Instruct file (a byte copy in tests/media/data), read with either function. */
static void test_qwen3_vl_file(void) {
    char dir[1100];
    snprintf(dir, sizeof dir, "%s/qwen3-vl-4b-instruct", datadir);
    mt_qwen_preproc_cfg d, a, b;
    mt_err err;
    mt_qwen3_vl_preproc_cfg_default(&d);
    CHECK_MSG(mt_qwen_preproc_cfg_load_with(dir, &d, &a, &err) == MT_OK, "%s", err.msg);
    CHECK_MSG(mt_qwen_preproc_cfg_load(dir, &b, &err) == MT_OK, "%s", err.msg);
    CHECK(memcmp(&a, &b, sizeof a) == 0);
    CHECK(a.min_pixels == 65536 && a.max_pixels == 16777216 && a.patch_size == 16 && a.temporal_patch_size == 2 &&
          a.merge_size == 2 && all3(a.mean, 0.5f) && all3(a.std, 0.5f) && a.rescale_factor == 1.0 / 255);
    /* ... and it says exactly what the Qwen3-VL defaults say. */
    CHECK(memcmp(&a, &d, sizeof a) == 0);
}

/* Family defaults: they fill a folder without the file; a field the file omits gets transformers' class default. */
static void test_defaults(void) {
    mt_qwen_preproc_cfg q3, q25, c;
    mt_err err;
    mt_qwen3_vl_preproc_cfg_default(&q3);
    mt_qwen_preproc_cfg_default(&q25);
    CHECK(q3.patch_size == 16 && q3.temporal_patch_size == 2 && q3.merge_size == 2 && q3.min_pixels == 65536 &&
          q3.max_pixels == 16777216 && all3(q3.mean, 0.5f) && all3(q3.std, 0.5f) && q3.rescale_factor == 1.0 / 255);
    CHECK(q25.patch_size == 14 && q25.min_pixels == 3136 && q25.max_pixels == 12845056);

    CHECK(mt_qwen_preproc_cfg_load_with(tmpdir, &q3, &c, &err) == MT_OK && memcmp(&c, &q3, sizeof c) == 0);
    CHECK(mt_qwen_preproc_cfg_load_with(tmpdir, NULL, &c, &err) == MT_OK && memcmp(&c, &q25, sizeof c) == 0);
    mt_qwen_preproc_cfg custom = q3;
    custom.min_pixels = 1234;
    custom.mean[1] = 0.25f;
    CHECK(mt_qwen_preproc_cfg_load_with(tmpdir, &custom, &c, &err) == MT_OK && memcmp(&c, &custom, sizeof c) == 0);

    /* Defaults that cannot work are the caller's mistake; out stays as it was. */
    mt_qwen_preproc_cfg broken = q3, before, after;
    broken.std[2] = 0;
    memset(&before, 0x5a, sizeof before);
    after = before;
    CHECK(mt_qwen_preproc_cfg_load_with(tmpdir, &broken, &after, &err) == MT_ERR_INVALID_ARG);
    CHECK(memcmp(&before, &after, sizeof before) == 0);
    broken = q3;
    broken.min_pixels = broken.max_pixels + 1;
    CHECK(mt_qwen_preproc_cfg_load_with(tmpdir, &broken, &after, &err) == MT_ERR_INVALID_ARG);
    CHECK(mt_qwen_preproc_cfg_load_with(NULL, &q3, &after, &err) == MT_ERR_INVALID_ARG);
    CHECK(mt_qwen_preproc_cfg_load_with(tmpdir, &q3, NULL, &err) == MT_ERR_INVALID_ARG);

    /* A present file decides as transformers does: Qwen2VLImageProcessorFast's class defaults for what it omits,
     * whichever family asks. */
    CHECK(load_text_with("{\"patch_size\": 16}", &q3, &c, &err) == MT_OK);
    CHECK(c.patch_size == 16 && c.min_pixels == 3136 && c.max_pixels == 1003520 && c.mean[0] == 0.48145466f &&
          c.std[2] == 0.27577711f);
    char path[512];
    snprintf(path, sizeof path, "%s/preprocessor_config.json", tmpdir);
    unlink(path);
}

/* An S x S image whose side is already a multiple of P * M, with S * S within the bounds, is not resized, so every
 * pixel_values entry can be traced back to the pixel it must hold: R = 4x, G = 4y, B = 2(x + y) (mod 256). */
static void check_layout(int S, const mt_qwen_preproc_cfg *cfg) {
    uint8_t *rgb = malloc((size_t)S * S * 3);
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            rgb[(y * S + x) * 3] = (uint8_t)(4 * x);
            rgb[(y * S + x) * 3 + 1] = (uint8_t)(4 * y);
            rgb[(y * S + x) * 3 + 2] = (uint8_t)(2 * (x + y));
        }
    mt_image img = {S, S, rgb, NULL};
    float *pv = NULL;
    int64_t n = 0, thw[3] = {0};
    mt_err err;
    const int P = (int)cfg->patch_size, T = (int)cfg->temporal_patch_size, M = (int)cfg->merge_size;
    const int G = S / P, cols = 3 * T * P * P;
    CHECK(mt_qwen_preprocess(&img, cfg, &pv, &n, thw, &err) == MT_OK);
    CHECK_MSG(n == G * G && thw[0] == 1 && thw[1] == G && thw[2] == G, "P %d: n %lld, grid %lldx%lld", P,
              (long long)n, (long long)thw[1], (long long)thw[2]);
    int wrong = 0;
    for (int r = 0; pv && r < n; r++) {
        int mw = r % M, mh = r / M % M, bw = r / (M * M) % (G / M), bh = r / (M * M) / (G / M);
        for (int col = 0; col < cols; col++) {
            int pw = col % P, ph = col / P % P, c = col / (P * P * T);
            int y = (bh * M + mh) * P + ph, x = (bw * M + mw) * P + pw;
            uint8_t v = rgb[(y * S + x) * 3 + c];
            float want = ((float)((double)v / 255.0) - cfg->mean[c]) / cfg->std[c];
            wrong += pv[(size_t)r * cols + col] != want;
        }
    }
    CHECK_MSG(wrong == 0, "P %d: %d pixel_values entries in the wrong place", P, wrong);
    mt_free(pv);
    free(rgb);
}

static void test_layout(void) {
    mt_qwen_preproc_cfg cfg;
    mt_qwen_preproc_cfg_default(&cfg);
    check_layout(56, &cfg);
    /* Qwen3-VL: P 16, M 2 (factor 32), mean and std 0.5; a 64 x 64 image with the lower bound moved to 64 * 64. */
    mt_qwen_preproc_cfg q3;
    mt_qwen3_vl_preproc_cfg_default(&q3);
    q3.min_pixels = 64 * 64;
    check_layout(64, &q3);
    /* With its own bounds a 64 x 64 image grows to 256 x 256 (65536 pixels): 256 patches of 1536 values. */
    mt_qwen3_vl_preproc_cfg_default(&q3);
    uint8_t rgb[64 * 64 * 3] = {0};
    mt_image small = {64, 64, rgb, NULL};
    float *pv = NULL;
    int64_t n = 0, thw[3] = {0};
    mt_err err;
    CHECK(mt_qwen_preprocess(&small, &q3, &pv, &n, thw, &err) == MT_OK && n == 256 && thw[1] == 16 && thw[2] == 16 &&
          pv[0] == -1.0f);
    mt_free(pv);

    mt_image img = {56, 56, rgb, NULL};
    /* A 5x4 image grows to 56x84 through the resampler: shape only here, values in ref_media.py. */
    mt_image tiny = {5, 4, rgb, NULL};
    CHECK(mt_qwen_preprocess(&tiny, &cfg, &pv, &n, thw, &err) == MT_OK && n == 24 && thw[1] == 4 && thw[2] == 6);
    mt_free(pv);
    /* an aspect ratio over 200: the message names the image's file and its size */
    mt_image strip = {450, 2, rgb, mt_strdup("dir/strip.png")};
    pv = NULL;
    CHECK(mt_qwen_preprocess(&strip, &cfg, &pv, &n, thw, &err) == MT_ERR_LIMIT && pv == NULL);
    CHECK_MSG(strstr(err.msg, "dir/strip.png: image 450x2: aspect ratio 225 is over the 200") == err.msg, "%s",
              err.msg);
    mt_free(strip.name);
    strip.name = NULL;
    CHECK(mt_qwen_preprocess(&strip, &cfg, &pv, &n, thw, &err) == MT_ERR_LIMIT &&
          strstr(err.msg, "image 450x2") == err.msg);
    mt_qwen_preproc_cfg broken = cfg;
    broken.std[1] = 0;
    CHECK(mt_qwen_preprocess(&img, &broken, &pv, &n, thw, &err) == MT_ERR_INVALID_ARG);
    CHECK(mt_qwen_preprocess(NULL, &cfg, &pv, &n, thw, &err) == MT_ERR_INVALID_ARG);

    int k, bad = 0;
    for (k = 1; k < 30; k++) {
        mt_alloc_fail_after((size_t)k);
        mt_status st = mt_qwen_preprocess(&tiny, &cfg, &pv, &n, thw, &err);
        mt_alloc_fail_after(0);
        if (st == MT_OK) {
            mt_free(pv);
            break;
        }
        bad += st != MT_ERR_NOMEM;
    }
    CHECK(bad == 0 && k > 1 && k < 30);
}

/* Every patchify path against the scalar loop, floats bit for bit: Qwen2-VL's patch 14, Qwen3-VL's 16 (a full
 * vector), an odd 5, and one over the AVX-512 loop's 16 (scalar on every path); each temporal slot; random bytes. */
static void test_patchify_paths(void) {
    static const int64_t shapes[][3] = {{14, 2, 2}, {16, 2, 2}, {5, 2, 2}, {17, 2, 1}, {14, 1, 3}};
    uint64_t seed = 7;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        mt_qwen_preproc_cfg cfg;
        mt_qwen_preproc_cfg_default(&cfg);
        cfg.patch_size = shapes[s][0];
        cfg.temporal_patch_size = shapes[s][1];
        cfg.merge_size = shapes[s][2];
        const int64_t F = cfg.patch_size * cfg.merge_size, h = 3 * F, w = 5 * F, T = cfg.temporal_patch_size;
        const size_t bytes = (size_t)(h * w * 3), floats = (size_t)(h * w * 3 * T) * 2;
        uint8_t *rgb = malloc(bytes);
        float *want = calloc(floats, sizeof *want), *got = calloc(floats, sizeof *got);
        for (size_t i = 0; i < bytes; i++) rgb[i] = (uint8_t)((seed = seed * 6364136223846793005u + 1) >> 56);
        mt_image frame = {w, h, rgb, NULL};
        float lut[3][256];
        mt_qwen_norm_table(&cfg, lut);
        for (int p = 0; p < CPU_PATHS; p++) {
            if (!cpu_path_enter(p, CPU_PATHS_NO_BF16)) continue;
            float *out = p == CPU_PATH_SCALAR ? want : got;
            memset(out, 0, floats * sizeof *out);
            for (int64_t f = 0; f < 2 * T; f++) mt_qwen_patchify_frame(&frame, f, &cfg, lut, out);
            if (p != CPU_PATH_SCALAR)
                CHECK_MSG(memcmp(want, got, floats * sizeof *got) == 0, "patchify P %lld T %lld M %lld: path %s differs",
                          (long long)shapes[s][0], (long long)shapes[s][1], (long long)shapes[s][2],
                          cpu_path_names[p]);
        }
        cpu_path_leave();
        free(rgb);
        free(want);
        free(got);
    }
    cpu_paths_report("test_media_qwen patchify", CPU_PATHS_NO_BF16);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/mt_test_media_qwen.XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    find_datadir();
    test_smart_resize();
    test_config();
    test_qwen3_vl_file();
    test_defaults();
    test_layout();
    test_patchify_paths();
    rmdir(tmpdir);
    return check_report();
}
