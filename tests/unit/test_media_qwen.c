/* media/qwen_vision_pre: smart_resize values (from transformers' function run in Python), config loading and
 * validation, the patch layout of pixel_values, allocation failures. The PIL + numpy comparison of whole images
 * lives in tests/media/ref_media.py. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/file.h"
#include "check.h"
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

static char tmpdir[256];

static mt_status load_text(const char *json, mt_qwen_preproc_cfg *cfg, mt_err *err) {
    char path[512];
    snprintf(path, sizeof path, "%s/preprocessor_config.json", tmpdir);
    if (mt_file_write_atomic(path, json, strlen(json), err) != MT_OK) return MT_ERR_IO;
    return mt_qwen_preproc_cfg_load(tmpdir, cfg, err);
}

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

/* A 56 x 56 image is already a multiple of 28 with 3136 pixels, so nothing is resized and every pixel_values entry
 * can be traced back to the pixel it must hold: R = 4x, G = 4y, B = 2(x + y). */
static void test_layout(void) {
    enum { S = 56 };
    uint8_t rgb[S * S * 3];
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            rgb[(y * S + x) * 3] = (uint8_t)(4 * x);
            rgb[(y * S + x) * 3 + 1] = (uint8_t)(4 * y);
            rgb[(y * S + x) * 3 + 2] = (uint8_t)(2 * (x + y));
        }
    mt_image img = {S, S, rgb};
    mt_qwen_preproc_cfg cfg;
    mt_qwen_preproc_cfg_default(&cfg);
    float *pv = NULL;
    int64_t n = 0, thw[3] = {0};
    mt_err err;
    CHECK(mt_qwen_preprocess(&img, &cfg, &pv, &n, thw, &err) == MT_OK);
    CHECK(n == 16 && thw[0] == 1 && thw[1] == 4 && thw[2] == 4);
    const int P = 14, T = 2, M = 2, cols = 3 * T * P * P;
    int wrong = 0;
    for (int r = 0; pv && r < n; r++) {
        int mw = r % M, mh = r / M % M, bw = r / (M * M) % (4 / M), bh = r / (M * M) / (4 / M);
        for (int col = 0; col < cols; col++) {
            int pw = col % P, ph = col / P % P, c = col / (P * P * T);
            int y = (bh * M + mh) * P + ph, x = (bw * M + mw) * P + pw;
            uint8_t v = rgb[(y * S + x) * 3 + c];
            float want = ((float)((double)v / 255.0) - cfg.mean[c]) / cfg.std[c];
            wrong += pv[(size_t)r * cols + col] != want;
        }
    }
    CHECK_MSG(wrong == 0, "%d pixel_values entries in the wrong place", wrong);
    mt_free(pv);

    /* A 5x4 image grows to 56x84 through the resampler: shape only here, values in ref_media.py. */
    mt_image tiny = {5, 4, rgb};
    CHECK(mt_qwen_preprocess(&tiny, &cfg, &pv, &n, thw, &err) == MT_OK && n == 24 && thw[1] == 4 && thw[2] == 6);
    mt_free(pv);
    mt_image strip = {450, 2, rgb};
    pv = NULL;
    CHECK(mt_qwen_preprocess(&strip, &cfg, &pv, &n, thw, &err) == MT_ERR_LIMIT && pv == NULL);
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

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/mt_test_media_qwen.XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    test_smart_resize();
    test_config();
    test_layout();
    rmdir(tmpdir);
    return check_report();
}
