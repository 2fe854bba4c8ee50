/* models/qwen_processor with videos: the video placeholder's expansion, M-RoPE positions of prompts mixing images and
 * videos (Qwen2-VL's frame index, Qwen2.5-VL's seconds index truncated as transformers 4.57.3 does, Qwen3-VL's
 * "<T seconds>" text between frames), and the refusals of bad grids, bad seconds and inputs whose kind differs from
 * their placeholder's. The logits of the same cases against PyTorch are ref_parity_qwen2_5_vl_video,
 * ref_parity_qwen2_vl_video and ref_parity_qwen3_vl_video. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/file.h"
#include "base/json.h"
#include "check.h"
#include "models/assemble.h"
#include "models/model.h"
#include "test_tokenizer_tiny.h"

extern const mt_processor_part mt_processor_qwen2_vl, mt_processor_qwen2_5_vl, mt_processor_qwen3_vl;

enum { IMG = 5, VID = 6, TEXT = 1, VS = 7, VE = 8 };

static mt_tokenizer *tiny_tok; /* the tokenizer `load` gives its stand-in model (NULL: none) */

static char tmpdir[256];

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

/* The part loaded from a config whose vision_config has `extra` fields; *m is its stand-in model. */
static void *load(const mt_processor_part *part, const char *extra, mt_model *m) {
    char config[512], path[512];
    snprintf(config, sizeof config,
             "{\"vision_config\": {\"patch_size\": 14, \"temporal_patch_size\": 2, \"spatial_merge_size\": 2%s}}",
             extra);
    snprintf(path, sizeof path, "%s/config.json", tmpdir);
    cJSON *cfg;
    mt_err err;
    void *impl = NULL;
    CHECK(mt_json_parse(config, strlen(config), path, &cfg, &err) == MT_OK);
    *m = (mt_model){.dir = tmpdir};
    m->desc.image_token_id = IMG;
    m->desc.video_token_id = m->desc.video_row_id = VID;
    m->desc.pos_axes = 3;
    m->desc.vision_start_id = VS;
    m->desc.vision_end_id = VE;
    m->tok = tiny_tok;
    CHECK_MSG(part->load(m, cfg, path, &impl, &err) == MT_OK, "%s: %s", part->name, err.msg);
    cJSON_Delete(cfg);
    return impl;
}

/* Appends n text tokens; add_input appends the placeholder run of input `in` (merge 2). Both return the new length. */
static int64_t add_text(int32_t *ids, int64_t at, int64_t n) {
    for (int64_t i = 0; i < n; i++) ids[at + i] = TEXT;
    return at + n;
}

static int64_t add_input(int32_t *ids, int64_t at, const mt_image_input *in) {
    int64_t n = in->grid.t * (in->grid.h / 2) * (in->grid.w / 2);
    for (int64_t i = 0; i < n; i++) ids[at + i] = in->video ? VID : IMG;
    return at + n;
}

/* Text 2, a video (3 groups of 2 x 4 merged), text 1, an image (1 x 2 x 2 merged), text 1; expected (t, h, w) of the
 * video rows' first column and of what follows, for a video time step `step`. */
static void check_mixed(const mt_processor_part *part, const void *impl, const mt_model *m, double seconds,
                        int64_t step) {
    mt_image_input in[2] = {{.grid = {3, 4, 8}, .n_patches = 96, .video = true, .seconds_per_grid = seconds},
                            {.grid = {1, 4, 4}, .n_patches = 16}};
    int32_t ids[64];
    int64_t L = add_text(ids, 0, 2);
    L = add_input(ids, L, &in[0]);
    L = add_text(ids, L, 1);
    L = add_input(ids, L, &in[1]);
    L = add_text(ids, L, 1);
    int64_t pos[3 * 64], next = -1;
    mt_err err;
    CHECK_MSG(part->positions(m, impl, ids, L, in, 2, 0, pos, &next, &err) == MT_OK, "%s", err.msg);
    for (int64_t f = 0; f < 3; f++) {
        int64_t row = 2 + f * 8 + 5; /* frame f, merged row 1, column 1 */
        CHECK_MSG(pos[row] == 2 + f * step && pos[L + row] == 3 && pos[2 * L + row] == 3,
                  "%s seconds %g frame %lld: (%lld, %lld, %lld)", part->name, seconds, (long long)f,
                  (long long)pos[row], (long long)pos[L + row], (long long)pos[2 * L + row]);
    }
    /* the text after the video follows the largest of its positions: time 2 + 2 * step, or width 2 + 3 */
    int64_t after = 2 + MT_MAX(2 * step, 3) + 1;
    CHECK_MSG(pos[26] == after && pos[L + 26] == after, "%s: text after the video at %lld, want %lld", part->name,
              (long long)pos[26], (long long)after);
    CHECK(pos[27] == after + 1 && pos[L + 27 + 3] == after + 2 && pos[2 * L + 27 + 3] == after + 2);
    CHECK(pos[31] == after + 3 && next == after + 4);
}

static void expect_refused(const mt_processor_part *part, const void *impl, const mt_model *m, const int32_t *ids,
                           int64_t L, const mt_image_input *in, int n, const char *needle) {
    int64_t pos[3 * 64], next;
    mt_err err = {0};
    mt_status st = part->positions(m, impl, ids, L, in, n, 0, pos, &next, &err);
    CHECK_MSG(st == MT_ERR_INVALID_ARG && strstr(err.msg, needle), "%s: status %d \"%s\" lacks \"%s\"", part->name,
              (int)st, err.msg, needle);
}

static void test_positions(void) {
    mt_model m;
    void *q2 = load(&mt_processor_qwen2_vl, "", &m);
    check_mixed(&mt_processor_qwen2_vl, q2, &m, 7.0, 1); /* Qwen2-VL: the frame index, whatever the rate */
    mt_processor_qwen2_vl.release(q2);

    void *q25 = load(&mt_processor_qwen2_5_vl, ", \"tokens_per_second\": 2", &m);
    check_mixed(&mt_processor_qwen2_5_vl, q25, &m, 1.0, 2);
    check_mixed(&mt_processor_qwen2_5_vl, q25, &m, 2.0, 4);
    check_mixed(&mt_processor_qwen2_5_vl, q25, &m, 1.5, 2); /* int64(1.5) = 1 before the product */
    check_mixed(&mt_processor_qwen2_5_vl, q25, &m, 0.5, 0);

    int32_t ids[64];
    mt_image_input video = {.grid = {2, 4, 4}, .n_patches = 32, .video = true, .seconds_per_grid = NAN};
    int64_t L = add_input(ids, add_text(ids, 0, 1), &video);
    expect_refused(&mt_processor_qwen2_5_vl, q25, &m, ids, L, &video, 1, "second_per_grid nan");
    video.seconds_per_grid = -1.0;
    expect_refused(&mt_processor_qwen2_5_vl, q25, &m, ids, L, &video, 1, "second_per_grid -1");
    video.seconds_per_grid = INFINITY;
    expect_refused(&mt_processor_qwen2_5_vl, q25, &m, ids, L, &video, 1, "second_per_grid inf");
    video.seconds_per_grid = 1.0;
    mt_image_input image = {.grid = {2, 4, 4}, .n_patches = 32};
    expect_refused(&mt_processor_qwen2_5_vl, q25, &m, ids, L, &image, 1, "input 1 is an image");
    expect_refused(&mt_processor_qwen2_5_vl, q25, &m, ids, L - 1, &video, 1, "needs 8 video tokens");
    expect_refused(&mt_processor_qwen2_5_vl, q25, &m, ids, L, &video, 0, "more video placeholders");
    mt_processor_qwen2_5_vl.release(q25);

    /* transformers' Qwen2_5_VLVisionConfig default when the config has none */
    void *dflt = load(&mt_processor_qwen2_5_vl, "", &m);
    check_mixed(&mt_processor_qwen2_5_vl, dflt, &m, 1.0, 4);
    mt_processor_qwen2_5_vl.release(dflt);
}

static void test_tokens(void) {
    mt_model m;
    void *q = load(&mt_processor_qwen2_5_vl, "", &m);
    int32_t out[32];
    int64_t n = 0;
    mt_err err = {0};
    mt_image_input v348 = {.grid = {3, 4, 8}, .video = true};
    CHECK(mt_processor_qwen2_5_vl.video_tokens(q, &v348, out, 32, &n, &err) == MT_OK && n == 24);
    bool all = n == 24;
    for (int64_t i = 0; i < n && i < 32; i++) all &= out[i] == VID;
    CHECK(all);
    mt_image_grid bad[] = {{0, 4, 4}, {-1, 4, 4}, {4097, 4, 4}, {2, 3, 4}, {2, 4, 0}};
    for (size_t i = 0; i < MT_ARRAY_LEN(bad); i++) {
        mt_image_input v = {.grid = bad[i], .video = true};
        mt_status st = mt_processor_qwen2_5_vl.video_tokens(q, &v, NULL, 0, &n, &err);
        CHECK_MSG(st == MT_ERR_INVALID_ARG && strstr(err.msg, "video grid"), "grid %lldx%lldx%lld: %d \"%s\"",
                  (long long)bad[i].t, (long long)bad[i].h, (long long)bad[i].w, (int)st, err.msg);
    }
    mt_processor_qwen2_5_vl.release(q);

    /* Qwen3-VL without tokenizer.json cannot write its timestamps: refused, not run wrong */
    void *q3 = load(&mt_processor_qwen3_vl, "", &m);
    mt_image_input v244 = {.grid = {2, 4, 4}, .video = true, .seconds_per_grid = 1.0};
    CHECK(mt_processor_qwen3_vl.video_tokens(q3, &v244, NULL, 0, &n, &err) == MT_ERR_UNSUPPORTED &&
          strstr(err.msg, "tokenizer.json"));
    mt_processor_qwen3_vl.release(q3);
}

/* Appends the byte ids of text (the tiny tokenizer has no merges among these characters). */
static int64_t add_bytes(int32_t *ids, int64_t at, const char *text) {
    for (const char *c = text; *c; c++) ids[at++] = (unsigned char)*c;
    return at;
}

/* Appends one Qwen3-VL frame of `frame` merged tokens after its time text. */
static int64_t add_frame(int32_t *ids, int64_t at, const char *time, int64_t frame) {
    at = add_bytes(ids, at, time);
    ids[at++] = VS;
    for (int64_t i = 0; i < frame; i++) ids[at++] = VID;
    ids[at++] = VE;
    return at;
}

/* Qwen3-VL: <|vision_start|><|video_pad|><|vision_end|> becomes "<T seconds>" + the frame between its own edges per
 * temporal group (processing_qwen3_vl.py); T is the mean of the group's first and last frame times, "%.1f" as Python
 * rounds it (0.25 -> 0.2). Each frame is then placed as an image of its own, the text between counted as text. */
static void test_qwen3(void) {
    mt_err err = {0};
    CHECK_MSG(tiny_load(tiny_tokenizer(false), &tiny_tok, &err) == MT_OK, "%s", err.msg);
    mt_model m;
    void *q = load(&mt_processor_qwen3_vl, "", &m);
    m.comp = mt_composition_find("Qwen3VLForConditionalGeneration");
    m.processor = q;
    CHECK(m.comp != NULL && tiny_tok != NULL);
    if (!m.comp || !tiny_tok) return;
    /* frames evenly spaced at 1 s per group of 2: groups at (0 + 0.5) / 2 = 0.25 s and (1 + 1.5) / 2 = 1.25 s */
    const int32_t ids[] = {TEXT, VS, VID, VE, TEXT, IMG, TEXT};
    mt_image_input in[2] = {{.grid = {2, 4, 8}, .n_patches = 64, .video = true, .seconds_per_grid = 1.0},
                            {.grid = {1, 4, 4}, .n_patches = 16}};
    int32_t *out = NULL, want[128];
    int64_t n = 0;
    CHECK_MSG(mt_model_expand_inputs(&m, ids, 7, in, 2, &out, &n, &err) == MT_OK, "%s", err.msg);
    int64_t w = add_text(want, 0, 1);
    w = add_frame(want, w, "<0.2 seconds>", 8);
    w = add_frame(want, w, "<1.2 seconds>", 8);
    w = add_text(want, w, 1);
    w = add_input(want, w, &in[1]);
    w = add_text(want, w, 1);
    CHECK_MSG(n == w && out && memcmp(out, want, (size_t)w * sizeof(int32_t)) == 0, "expanded to %lld ids, want %lld",
              (long long)n, (long long)w);
    CHECK(mt_model_input_rows(&m, &in[0]) == 16);

    /* positions: text 0; frame 0's time text 1..13, <vs> 14, its rows at 15 (row r, col c: 15 + r, 15 + c); <ve> 19 */
    int64_t pos[3 * 128], next = -1;
    CHECK_MSG(mt_model_positions(&m, out, n, in, 2, 0, pos, &next, &err) == MT_OK, "%s", err.msg);
    CHECK(pos[14] == 14 && pos[15] == 15 && pos[n + 15] == 15 && pos[2 * n + 15] == 15);
    CHECK(pos[15 + 7] == 15 && pos[n + 15 + 7] == 16 && pos[2 * n + 15 + 7] == 18);
    CHECK(pos[23] == 19 && pos[24] == 20);                              /* <ve>, then "<" of frame 1's time */
    int64_t f1 = 24 + 13 + 1;                                           /* frame 1's first row */
    CHECK(pos[f1] == 34 && pos[n + f1 + 7] == 35 && pos[2 * n + f1 + 7] == 37);
    CHECK_MSG(next == 34 + 4 + 1 + 1 + 2 + 1, "next %lld", (long long)next);
    mt_free(out);

    /* timestamps as given; without the edges in the prompt only the placeholder is replaced */
    const double stamps[2] = {0.05, 2.96};
    in[0].timestamps = stamps;
    const int32_t bare[] = {VID, IMG};
    CHECK_MSG(mt_model_expand_inputs(&m, bare, 2, in, 2, &out, &n, &err) == MT_OK, "%s", err.msg);
    w = add_frame(want, 0, "<0.1 seconds>", 8);
    w = add_frame(want, w, "<3.0 seconds>", 8);
    w = add_input(want, w, &in[1]);
    CHECK_MSG(n == w && out && memcmp(out, want, (size_t)w * sizeof(int32_t)) == 0, "bare: %lld ids, want %lld",
              (long long)n, (long long)w);
    mt_free(out);

    /* frames sampled by mitten: 3 of 1800 at 30 fps are source frames 0, 900 and 1799 (linspace, rounded), the
     * last repeated to fill group 1: (0 + 30) / 2 = 15 s and (59.9667 + 59.9667) / 2 s, which evenly spaced
     * frames at seconds_per_grid would not give */
    in[0].timestamps = NULL;
    in[0].sampled.total = 1800, in[0].sampled.n = 3, in[0].sampled.fps = 30.0;
    CHECK_MSG(mt_model_expand_inputs(&m, bare, 2, in, 2, &out, &n, &err) == MT_OK, "%s", err.msg);
    w = add_frame(want, 0, "<15.0 seconds>", 8);
    w = add_frame(want, w, "<60.0 seconds>", 8);
    w = add_input(want, w, &in[1]);
    CHECK_MSG(n == w && out && memcmp(out, want, (size_t)w * sizeof(int32_t)) == 0, "sampled: %lld ids, want %lld",
              (long long)n, (long long)w);
    mt_free(out);
    in[0].sampled.fps = 0;
    CHECK(mt_model_expand_inputs(&m, bare, 2, in, 2, &out, &n, &err) == MT_ERR_INVALID_ARG &&
          strstr(err.msg, "video sampling"));
    in[0].sampled.n = 0;

    const double bad[2] = {0.5, NAN};
    in[0].timestamps = bad;
    CHECK(mt_model_expand_inputs(&m, ids, 7, in, 2, &out, &n, &err) == MT_ERR_INVALID_ARG &&
          strstr(err.msg, "timestamp 1"));
    in[0].timestamps = NULL;
    in[0].seconds_per_grid = -2.0;
    CHECK(mt_model_expand_inputs(&m, ids, 7, in, 2, &out, &n, &err) == MT_ERR_INVALID_ARG &&
          strstr(err.msg, "second_per_grid -2"));

    /* a prompt with one frame of a two-frame video */
    in[0].seconds_per_grid = 1.0;
    w = add_frame(want, 0, "<0.2 seconds>", 8);
    w = add_input(want, w, &in[1]);
    CHECK(mt_model_positions(&m, want, w, in, 2, 0, pos, &next, &err) == MT_ERR_INVALID_ARG &&
          strstr(err.msg, "video 1 has 1 more frame"));
    w = add_frame(want, 0, "<0.2 seconds>", 8);
    CHECK(mt_model_positions(&m, want, w, in, 1, 0, pos, &next, &err) == MT_ERR_INVALID_ARG &&
          strstr(err.msg, "video 1 has 2 frames, the prompt has video tokens for 1"));
    mt_processor_qwen3_vl.release(q);
    mt_tokenizer_free(tiny_tok);
    tiny_tok = NULL;
}

/* The chat template writes one <|video_pad|> per video: it becomes the video's merged token count, images' theirs,
 * each input by its own placeholder in prompt order. */
static void test_expand(void) {
    mt_model m;
    void *q = load(&mt_processor_qwen2_5_vl, "", &m);
    m.comp = mt_composition_find("Qwen2_5_VLForConditionalGeneration");
    m.processor = q;
    CHECK(m.comp != NULL);
    if (!m.comp) return;
    const int32_t ids[] = {TEXT, VID, TEXT, IMG, TEXT, VID};
    mt_image_input in[3] = {{.grid = {3, 4, 8}, .video = true}, {.grid = {1, 4, 4}}, {.grid = {2, 2, 2}, .video = true}};
    int32_t *out = NULL;
    int64_t n = 0;
    mt_err err = {0};
    CHECK_MSG(mt_model_expand_inputs(&m, ids, 6, in, 3, &out, &n, &err) == MT_OK, "%s", err.msg);
    int32_t want[64];
    int64_t w = add_text(want, 0, 1);
    w = add_input(want, w, &in[0]);
    w = add_text(want, w, 1);
    w = add_input(want, w, &in[1]);
    w = add_text(want, w, 1);
    w = add_input(want, w, &in[2]);
    CHECK_MSG(n == w && n == 3 + 24 + 4 + 2 && out && memcmp(out, want, (size_t)w * sizeof(int32_t)) == 0,
              "expanded to %lld ids, want %lld", (long long)n, (long long)w);
    mt_free(out);
    CHECK(mt_model_input_rows(&m, &in[0]) == 24 && mt_model_input_rows(&m, &in[1]) == 4);
    mt_image_input swapped[3] = {in[1], in[0], in[2]};
    CHECK(mt_model_expand_inputs(&m, ids, 6, swapped, 3, &out, &n, &err) == MT_ERR_INVALID_ARG &&
          strstr(err.msg, "input 1 is an image") && strstr(err.msg, "video token"));
    CHECK(mt_model_expand_inputs(&m, ids, 6, in, 2, &out, &n, &err) == MT_ERR_INVALID_ARG &&
          strstr(err.msg, "more placeholders"));
    mt_processor_qwen2_5_vl.release(q);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/mt_test_qwen_video.XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    put("preprocessor_config.json", "{\"patch_size\": 14, \"temporal_patch_size\": 2, \"merge_size\": 2}");
    test_positions();
    test_tokens();
    test_expand();
    test_qwen3();
    put("preprocessor_config.json", NULL);
    rmdir(tmpdir);
    return check_report();
}
