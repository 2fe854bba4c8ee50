/* train/labels on a byte tokenizer, where every byte is its own id and the ChatML tokens are added specials, so the
 * expected ids and labels are written by hand from the rendered text:
 *
 *   | id  | token            |     | id  | token            |
 *   |-----|------------------|     |-----|------------------|
 *   | b   | byte b (0..255)  |     | 303 | <|vision_end|>   |
 *   | 300 | <|im_start|>     |     | 304 | <|image_pad|>    |
 *   | 301 | <|im_end|>       |     | 305 | <|video_pad|>    |
 *   | 302 | <|vision_start|> |     |     |                  |
 *
 * The template is the Qwen2-VL family default. tests/train/ compares with jinja2 + the npm tokenizer on real
 * vocabularies.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "test_tokenizer_tiny.h"
#include "train/labels.h"

static const char *const specials[] = {"<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                                       "<|image_pad|>", "<|video_pad|>"};

static mt_tokenizer *byte_tokenizer(void) {
    cJSON *root = cJSON_CreateObject();
    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    for (int i = 0; i < 6; i++) tiny_added(added, 300 + i, specials[i], true, false, false);
    cJSON *pre = cJSON_AddObjectToObject(root, "pre_tokenizer");
    cJSON_AddStringToObject(pre, "type", "ByteLevel");
    cJSON_AddBoolToObject(pre, "add_prefix_space", false);
    cJSON_AddBoolToObject(pre, "use_regex", true);
    cJSON *dec = cJSON_AddObjectToObject(root, "decoder");
    cJSON_AddStringToObject(dec, "type", "ByteLevel");
    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
    for (int b = 0; b < 256; b++) {
        char c[4];
        tiny_byte_char(b, c);
        cJSON_AddNumberToObject(vocab, c, b);
    }
    cJSON_AddArrayToObject(model, "merges");
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    mt_tokenizer *tok = NULL;
    mt_err err;
    if (mt_tokenizer_load_json(json, strlen(json), "byte tokenizer", &tok, &err)) fprintf(stderr, "%s\n", err.msg);
    free(json);
    return tok;
}

/* Ids of text written with the special tokens above, "#" for one image token and "." for a masked position (-1):
 * the hand-made reference. */
static int64_t ref_ids(const char *text, bool dots, int32_t *ids) {
    int64_t n = 0;
    while (*text) {
        int hit = -1;
        for (int i = 0; i < 6 && hit < 0; i++)
            if (!strncmp(text, specials[i], strlen(specials[i]))) hit = i;
        if (hit >= 0) ids[n++] = 300 + hit, text += strlen(specials[hit]);
        else if (*text == '#') ids[n++] = 304, text++;
        else if (*text == '.' && dots) ids[n++] = -1, text++;
        else ids[n++] = (unsigned char)*text++;
    }
    return n;
}

typedef struct {
    mt_tokenizer *tok;
    mt_chat_template *tmpl;
    mt_labels_src src;
} fixture;

static fixture setup(const char *template_source) {
    fixture f = {0};
    mt_err err;
    f.tok = byte_tokenizer();
    const char *src = template_source;
    if (!src) src = mt_composition_find("Qwen2_5_VLForConditionalGeneration")->default_chat_template;
    if (mt_chat_template_parse(src, strlen(src), "template", &f.tmpl, &err)) fprintf(stderr, "%s\n", err.msg);
    f.src = (mt_labels_src){.tok = f.tok, .tmpl = f.tmpl, .image_token_id = 304, .video_token_id = 305,
                            .vision_start_id = 302, .vision_end_id = 303};
    return f;
}

static void teardown(fixture *f) {
    mt_tokenizer_free(f->tok);
    mt_chat_template_free(f->tmpl);
}

/* Builds messages and compares with the input text (no "." in it) and the labels: the same text with "." for
 * each masked token (supervised text has no "."). */
static void expect_sample(const fixture *f, const char *messages_json, const int64_t *img, int n_img,
                          const mt_labels_opts *o, const char *want_text, const char *want_labels) {
    cJSON *msgs = cJSON_Parse(messages_json);
    mt_sample_tokens s;
    mt_err err;
    mt_status st = mt_labels_build(&f->src, msgs, NULL, img, n_img, o, &s, &err);
    CHECK_MSG(st == MT_OK, "%s", err.msg);
    int32_t *ids = malloc((strlen(want_text) + 1) * sizeof *ids);
    int32_t *labels = malloc((strlen(want_labels) + 1) * sizeof *labels);
    int64_t n = ref_ids(want_text, false, ids), nl = ref_ids(want_labels, true, labels);
    CHECK_MSG(s.n == n && nl == n, "n %lld, want %lld (labels %lld)", (long long)s.n, (long long)n, (long long)nl);
    int64_t sup = 0, imgs = 0;
    for (int64_t i = 0; i < n && i < s.n && nl == n; i++) {
        int32_t want = labels[i] < 0 ? MT_LABEL_IGNORE : labels[i];
        if (s.ids[i] != ids[i] || s.labels[i] != want) {
            CHECK_MSG(0, "token %lld: id %d label %d, want id %d label %d", (long long)i, s.ids[i], s.labels[i], ids[i], want);
            break;
        }
        sup += want != MT_LABEL_IGNORE;
        imgs += ids[i] == 304;
    }
    CHECK(s.n_supervised == sup && s.n_image_tokens == imgs && s.n_images == n_img && s.n_truncated == 0);
    free(ids);
    free(labels);
    mt_sample_tokens_release(&s);
    cJSON_Delete(msgs);
}

/* The mask string for a prompt of n masked tokens followed by text (ASCII + specials). */
static char *mask(int dots, const char *rest) {
    static char buf[4][512];
    static int which;
    char *b = buf[which++ & 3];
    memset(b, '.', (size_t)dots);
    strcpy(b + dots, rest);
    return b;
}

static const char two_turns[] =
    "[{\"role\":\"user\",\"content\":[{\"type\":\"image\"},{\"type\":\"text\",\"text\":\"Q1\"}]},"
    "{\"role\":\"assistant\",\"content\":\"A1\"},"
    "{\"role\":\"user\",\"content\":\"Q2\"},"
    "{\"role\":\"assistant\",\"content\":\"A2\"}]";

/* prompt: 49 tokens of the default system turn + user header; image span; "Q1<|im_end|>\n<|im_start|>assistant\n" */
static void test_every_turn(void) {
    fixture f = setup(NULL);
    int64_t img[] = {3};
    const char *text = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
                       "<|vision_start|>###<|vision_end|>Q1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n"
                       "<|im_start|>user\nQ2<|im_end|>\n<|im_start|>assistant\nA2<|im_end|>\n";
    int32_t ids[256];
    int64_t before_a1 = ref_ids("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
                                "<|vision_start|>###<|vision_end|>Q1<|im_end|>\n<|im_start|>assistant\n", false, ids);
    int64_t between = ref_ids("<|im_start|>user\nQ2<|im_end|>\n<|im_start|>assistant\n", false, ids);
    char want[512];
    snprintf(want, sizeof want, "%sA1<|im_end|>\n%s", mask((int)before_a1, ""), mask((int)between, "A2<|im_end|>\n"));
    expect_sample(&f, two_turns, img, 1, NULL, text, want);

    mt_labels_opts o = mt_labels_default_opts();
    o.last_turn_only = true;
    snprintf(want, sizeof want, "%s", mask((int)(before_a1 + 4 + between), "A2<|im_end|>\n"));
    expect_sample(&f, two_turns, img, 1, &o, text, want);
    teardown(&f);
}

/* Several images of different sizes, a system turn, a tool turn, a trailing user turn (masked). */
static void test_images_tools_tail(void) {
    fixture f = setup(NULL);
    int64_t img[] = {2, 1, 4};
    const char *msgs =
        "[{\"role\":\"system\",\"content\":\"S\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"image\"},{\"type\":\"image\"},{\"type\":\"text\",\"text\":\"Q\"}]},"
        "{\"role\":\"assistant\",\"content\":\"call\"},"
        "{\"role\":\"tool\",\"content\":\"r\"},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"A\"},{\"type\":\"image\"}]},"
        "{\"role\":\"user\",\"content\":\"more\"}]";
    const char *p1 = "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\n<|vision_start|>##<|vision_end|>"
                     "<|vision_start|>#<|vision_end|>Q<|im_end|>\n<|im_start|>assistant\n";
    const char *p2 = "<|im_start|>tool\nr<|im_end|>\n<|im_start|>assistant\n";
    const char *tail = "<|im_start|>user\nmore<|im_end|>\n";
    char text[1024], want[1024];
    snprintf(text, sizeof text, "%scall<|im_end|>\n%sA<|vision_start|>####<|vision_end|><|im_end|>\n%s", p1, p2, tail);
    int32_t ids[512];
    /* an image inside an assistant turn stays masked; its vision start / end tokens are supervised text */
    snprintf(want, sizeof want, "%scall<|im_end|>\n%sA<|vision_start|>....<|vision_end|><|im_end|>\n%s",
             mask((int)ref_ids(p1, false, ids), ""), mask((int)ref_ids(p2, false, ids), ""), mask((int)ref_ids(tail, false, ids), ""));
    expect_sample(&f, msgs, img, 3, NULL, text, want);
    teardown(&f);
}

static mt_status build(const fixture *f, const char *json, const int64_t *img, int n_img, const mt_labels_opts *o,
                       mt_sample_tokens *s, mt_err *err) {
    cJSON *msgs = cJSON_Parse(json);
    mt_status st = mt_labels_build(&f->src, msgs, NULL, img, n_img, o, s, err);
    cJSON_Delete(msgs);
    return st;
}

static void test_truncation(void) {
    fixture f = setup(NULL);
    int64_t img[] = {3};
    mt_labels_opts o = mt_labels_default_opts();
    mt_sample_tokens s;
    mt_err err;
    CHECK(build(&f, two_turns, img, 1, NULL, &s, &err) == MT_OK);
    int64_t full = s.n, sup = s.n_supervised;
    mt_sample_tokens_release(&s);
    /* cut before the last "\n": one supervised token fewer */
    o.max_len = full - 1;
    CHECK(build(&f, two_turns, img, 1, &o, &s, &err) == MT_OK);
    CHECK(s.n == full - 1 && s.n_supervised == sup - 1 && s.n_truncated == 1 && s.n_images == 1);
    mt_sample_tokens_release(&s);
    /* the image span: <|vision_start|> at vs, three image tokens, <|vision_end|> at vs + 4 */
    int32_t ids[128];
    int64_t vs = ref_ids("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n", false, ids);
    for (int64_t cut = vs + 1; cut <= vs + 4; cut++) {
        o.max_len = cut;
        CHECK(build(&f, two_turns, img, 1, &o, &s, &err) == MT_ERR_LIMIT);
        CHECK_MSG(strstr(err.msg, "split image 0") != NULL, "cut %lld: %s", (long long)cut, err.msg);
        CHECK(s.ids == NULL && s.n == 0);
    }
    /* cutting whole spans is allowed, but here nothing supervised is left */
    o.max_len = vs;
    CHECK(build(&f, two_turns, img, 1, &o, &s, &err) == MT_ERR_LIMIT && strstr(err.msg, "no supervised"));
    o.max_len = vs + 5;
    CHECK(build(&f, two_turns, img, 1, &o, &s, &err) == MT_ERR_LIMIT && strstr(err.msg, "no supervised"));
    o.max_len = full;
    CHECK(build(&f, two_turns, img, 1, &o, &s, &err) == MT_OK && s.n_truncated == 0);
    mt_sample_tokens_release(&s);

    /* an image after the last answer is dropped with the cut */
    const char *late = "[{\"role\":\"user\",\"content\":\"Q\"},{\"role\":\"assistant\",\"content\":\"A\"},"
                       "{\"role\":\"user\",\"content\":[{\"type\":\"image\"}]}]";
    CHECK(build(&f, late, img, 1, NULL, &s, &err) == MT_OK && s.n_images == 1 && s.n_image_tokens == 3);
    full = s.n;
    mt_sample_tokens_release(&s);
    o.max_len = full - 12; /* "<|im_start|>user\n" left, span and "<|im_end|>\n" cut */
    CHECK(build(&f, late, img, 1, &o, &s, &err) == MT_OK);
    CHECK(s.n_images == 0 && s.n_image_tokens == 0 && s.n == full - 12);
    mt_sample_tokens_release(&s);
    teardown(&f);
}

/* Drops the content of assistant turns before the last user message, as Qwen3 drops their <think> blocks. */
static const char unstable_template[] =
    "{%- set ns = namespace(last=-1) -%}"
    "{%- for m in messages %}{% if m.role == 'user' %}{% set ns.last = loop.index0 %}{% endif %}{% endfor -%}"
    "{%- for m in messages -%}"
    "<|im_start|>{{ m.role }}\n{% if m.role == 'assistant' and loop.index0 < ns.last %}-{% else %}{{ m.content }}"
    "{% endif %}<|im_end|>\n"
    "{% endfor -%}"
    "{%- if add_generation_prompt %}<|im_start|>assistant\n{% endif -%}";

static void test_prefix_stability(void) {
    fixture f = setup(unstable_template);
    const char *msgs = "[{\"role\":\"user\",\"content\":\"Q1\"},{\"role\":\"assistant\",\"content\":\"A1\"},"
                       "{\"role\":\"user\",\"content\":\"Q2\"},{\"role\":\"assistant\",\"content\":\"A2\"}]";
    mt_sample_tokens s;
    mt_err err;
    CHECK(build(&f, msgs, NULL, 0, NULL, &s, &err) == MT_ERR_INVALID_ARG);
    CHECK_MSG(strstr(err.msg, "assistant turn at message 1") && strstr(err.msg, "not prefix-stable"), "%s", err.msg);
    mt_labels_opts o = mt_labels_default_opts();
    o.last_turn_only = true;
    CHECK(build(&f, msgs, NULL, 0, &o, &s, &err) == MT_OK);
    /* the supervised tokens are "A2<|im_end|>\n" at the end; the earlier answer renders as "-" */
    CHECK(s.n_supervised == 4 && s.labels[s.n - 4] == 'A' && s.labels[s.n - 2] == 301 && s.labels[s.n - 5] == MT_LABEL_IGNORE);
    int dash = 0;
    for (int64_t i = 0; i < s.n; i++) dash += s.ids[i] == '-';
    CHECK(dash == 1);
    mt_sample_tokens_release(&s);
    teardown(&f);
}

static void test_bad_input(void) {
    fixture f = setup(NULL);
    mt_sample_tokens s;
    mt_err err;
    int64_t img[] = {3, 2};
    const char *one_image = "[{\"role\":\"user\",\"content\":[{\"type\":\"image\"}]},{\"role\":\"assistant\",\"content\":\"A\"}]";
    CHECK(build(&f, "{}", NULL, 0, NULL, &s, &err) == MT_ERR_INVALID_ARG);
    CHECK(build(&f, "[{\"role\":\"user\",\"content\":\"x\"}]", NULL, 0, NULL, &s, &err) == MT_ERR_INVALID_ARG);
    CHECK(strstr(err.msg, "no assistant turn"));
    CHECK(build(&f, "[{\"content\":\"x\"}]", NULL, 0, NULL, &s, &err) == MT_ERR_INVALID_ARG && strstr(err.msg, "message 0"));
    CHECK(build(&f, "[{\"role\":\"user\",\"content\":\"x\"}, 3]", NULL, 0, NULL, &s, &err) == MT_ERR_INVALID_ARG);
    CHECK(build(&f, one_image, img, 2, NULL, &s, &err) == MT_ERR_INVALID_ARG && strstr(err.msg, "2 image(s) given"));
    CHECK(build(&f, one_image, NULL, 0, NULL, &s, &err) == MT_ERR_INVALID_ARG && strstr(err.msg, "more image and video placeholders"));
    CHECK(build(&f, one_image, NULL, 1, NULL, &s, &err) == MT_ERR_INVALID_ARG);
    CHECK(build(&f, one_image, img, -1, NULL, &s, &err) == MT_ERR_INVALID_ARG);
    int64_t zero[] = {0}, huge[] = {(int64_t)1 << 40};
    CHECK(build(&f, one_image, zero, 1, NULL, &s, &err) == MT_ERR_INVALID_ARG);
    CHECK(build(&f, one_image, huge, 1, NULL, &s, &err) == MT_ERR_INVALID_ARG);
    int64_t big[] = {MT_LABELS_MAX_TOKENS};
    CHECK(build(&f, one_image, big, 1, NULL, &s, &err) == MT_ERR_LIMIT);
    /* a placeholder typed into user text counts as an image */
    CHECK(build(&f, "[{\"role\":\"user\",\"content\":\"<|image_pad|>\"},{\"role\":\"assistant\",\"content\":\"A\"}]", NULL, 0,
                NULL, &s, &err) == MT_ERR_INVALID_ARG);
    const char *video_then_image = "[{\"role\":\"user\",\"content\":[{\"type\":\"video\"},{\"type\":\"image\"}]},"
                                   "{\"role\":\"assistant\",\"content\":\"A\"}]";
    CHECK(build(&f, video_then_image, img, 1, NULL, &s, &err) == MT_ERR_INVALID_ARG &&
          strstr(err.msg, "more image and video placeholders"));
    /* a video's placeholder takes the next count in text order and is masked as an image's */
    CHECK(build(&f, video_then_image, img, 2, NULL, &s, &err) == MT_OK);
    int64_t nv = 0, ni = 0, first_v = -1, first_i = -1;
    for (int64_t i = 0; i < s.n; i++) {
        if (s.ids[i] == 305 && first_v < 0) first_v = i;
        if (s.ids[i] == 304 && first_i < 0) first_i = i;
        nv += s.ids[i] == 305 && s.labels[i] == MT_LABEL_IGNORE;
        ni += s.ids[i] == 304 && s.labels[i] == MT_LABEL_IGNORE;
    }
    CHECK_MSG(nv == 3 && ni == 2 && first_v < first_i && s.n_image_tokens == 5 && s.n_images == 2,
              "%lld video, %lld image tokens", (long long)nv, (long long)ni);
    mt_sample_tokens_release(&s);
    mt_labels_opts o = mt_labels_default_opts();
    o.max_len = -1;
    CHECK(build(&f, one_image, img, 1, &o, &s, &err) == MT_ERR_INVALID_ARG);
    cJSON *kw = cJSON_CreateArray();
    o = mt_labels_default_opts();
    o.template_kwargs = kw;
    CHECK(build(&f, one_image, img, 1, &o, &s, &err) == MT_ERR_INVALID_ARG);
    cJSON_Delete(kw);
    cJSON *msgs = cJSON_Parse(one_image), *tools = cJSON_CreateObject();
    CHECK(mt_labels_build(&f.src, msgs, tools, img, 1, NULL, &s, &err) == MT_ERR_INVALID_ARG);
    mt_labels_src none = {0};
    CHECK(mt_labels_build(&none, msgs, NULL, img, 1, NULL, &s, &err) == MT_ERR_INVALID_ARG && strstr(err.msg, "tokenizer"));
    cJSON *many = cJSON_CreateArray();
    for (int i = 0; i <= MT_LABELS_MAX_MESSAGES; i++) cJSON_AddItemReferenceToArray(many, msgs->child);
    CHECK(mt_labels_build(&f.src, many, NULL, NULL, 0, NULL, &s, &err) == MT_ERR_LIMIT);
    cJSON_Delete(many);
    cJSON_Delete(tools);
    cJSON_Delete(msgs);
    /* a template that raises */
    teardown(&f);
    f = setup("{{ raise_exception('no assistant here') }}");
    CHECK(build(&f, one_image, img, 1, NULL, &s, &err) == MT_ERR_INVALID_ARG && strstr(err.msg, "no assistant here"));
    teardown(&f);
    /* an assistant turn that renders to nothing */
    f = setup("{% for m in messages %}{% if m.role == 'user' %}{{ m.content }}{% endif %}{% endfor %}");
    CHECK(build(&f, "[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"assistant\",\"content\":\"A\"}]", NULL, 0, NULL, &s,
                &err) == MT_ERR_INVALID_ARG);
    teardown(&f);
    mt_sample_tokens_release(NULL);
}

/* Every allocation of a build fails in turn: each gives MT_ERR_NOMEM and leaks nothing (ASan builds check). */
static void test_alloc_failures(void) {
    fixture f = setup(NULL);
    cJSON *msgs = cJSON_Parse(two_turns);
    int64_t img[] = {3};
    int failures = 0;
    for (size_t k = 1; k < 5000; k++) {
        mt_sample_tokens s;
        mt_err err;
        mt_alloc_fail_after(k);
        mt_status st = mt_labels_build(&f.src, msgs, NULL, img, 1, NULL, &s, &err);
        mt_alloc_fail_after(0);
        if (st == MT_OK) {
            mt_sample_tokens_release(&s);
            break;
        }
        failures++;
        CHECK_MSG(st == MT_ERR_NOMEM && s.ids == NULL, "k=%zu: status %d (%s)", k, st, err.msg);
    }
    CHECK(failures > 10);
    cJSON_Delete(msgs);
    teardown(&f);
}

static void test_stats(void) {
    mt_labels_stats st = {0};
    mt_sample_tokens a = {.n = 100, .n_supervised = 10, .n_image_tokens = 50};
    mt_sample_tokens b = {.n = 300, .n_supervised = 30, .n_image_tokens = 0, .n_truncated = 5};
    mt_labels_stats_add(&st, &a);
    mt_labels_stats_add(&st, &b);
    mt_labels_stats_skip(&st);
    CHECK(st.samples == 2 && st.skipped == 1 && st.tokens_min == 100 && st.tokens_max == 300 && st.tokens == 400);
    CHECK(st.supervised == 40 && st.image_tokens == 50 && st.truncated_samples == 1);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    mt_labels_stats_print(&st, f);
    fclose(f);
    CHECK_MSG(strstr(buf, "100 / 200.0 / 300") && strstr(buf, "50 (12.5%)") && strstr(buf, "40 (10.0%)"), "%s", buf);
    free(buf);
    mt_labels_stats empty = {0};
    f = open_memstream(&buf, &len);
    mt_labels_stats_print(&empty, f);
    fclose(f);
    CHECK(strstr(buf, "0 / 0.0 / 0") != NULL);
    free(buf);
}

/* A processor whose images become a wrapper around the feature tokens (InternVL's <img> ... </img>): the whole span
 * is the expansion, masked, and only the feature tokens count as image tokens. Image 1 fails to expand. */
static mt_status wrap_image(const void *user, int image, const int32_t *ids, int64_t n, int64_t at, int32_t **out,
                            int64_t *len, int64_t *before, int64_t *after, mt_err *err) {
    (void)user, (void)ids, (void)n, (void)at;
    if (image == 1) return mt_err_set(err, MT_ERR_INVALID_ARG, "image 2 refused by the processor");
    static const int32_t span[] = {300, 304, 304, 304, 301};
    *out = malloc(sizeof span);
    memcpy(*out, span, sizeof span);
    *len = 5;
    *before = *after = 0;
    return MT_OK;
}

/* A processor whose video becomes, per frame, its time as text and the frame between its own edges (Qwen3-VL):
 * the expansion replaces the vision edges the template wrote around the placeholder, where they are. */
static const char stamped[] = "<0.5 seconds><|vision_start|>##<|vision_end|><1.5 seconds><|vision_start|>##<|vision_end|>";

static mt_status stamp_video(const void *user, int image, const int32_t *ids, int64_t n, int64_t at, int32_t **out,
                             int64_t *len, int64_t *before, int64_t *after, mt_err *err) {
    (void)user, (void)image, (void)err;
    *out = malloc(sizeof stamped * sizeof **out);
    *len = ref_ids(stamped, false, *out);
    for (int64_t i = 0; i < *len; i++)
        if ((*out)[i] == 304) (*out)[i] = 305;
    *before = *after = at > 0 && at + 1 < n && ids[at - 1] == 302 && ids[at + 1] == 303;
    return MT_OK;
}

static void test_stamped_video(void) {
    fixture f = setup(NULL);
    f.src.expand = stamp_video;
    const char *msgs = "[{\"role\":\"user\",\"content\":[{\"type\":\"video\"},{\"type\":\"text\",\"text\":\"Hi\"}]},"
                       "{\"role\":\"assistant\",\"content\":\"A\"}]";
    int64_t counts[] = {4};
    char want[512];
    /* the default system prompt, the user turn with the stamped frames in place of the template's edges, the answer */
    snprintf(want, sizeof want, "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n%sHi"
             "<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n", stamped);
    int32_t ids[512];
    int64_t n = ref_ids(want, false, ids), prompt = n - 3; /* "A<|im_end|>\n" supervised */
    for (int64_t i = 0; i < n; i++)
        if (ids[i] == 304) ids[i] = 305;
    cJSON *m = cJSON_Parse(msgs);
    mt_sample_tokens s;
    mt_err err;
    mt_status st = mt_labels_build(&f.src, m, NULL, counts, 1, NULL, &s, &err);
    CHECK_MSG(st == MT_OK, "%s", err.msg);
    CHECK_MSG(st == MT_OK && s.n == n, "n %lld, want %lld", (long long)s.n, (long long)n);
    for (int64_t i = 0; st == MT_OK && i < n && i < s.n; i++) {
        int32_t label = i < prompt ? MT_LABEL_IGNORE : ids[i];
        if (s.ids[i] != ids[i] || s.labels[i] != label) {
            CHECK_MSG(0, "token %lld: id %d label %d, want id %d label %d", (long long)i, s.ids[i], s.labels[i],
                      ids[i], label);
            break;
        }
    }
    CHECK(st || (s.n_image_tokens == 4 && s.n_images == 1));
    mt_sample_tokens_release(&s);
    /* the expansion is one span for truncation, its text and edges included: 18 tokens follow it */
    mt_labels_opts o = mt_labels_default_opts();
    o.max_len = n - 20;
    CHECK(mt_labels_build(&f.src, m, NULL, counts, 1, &o, &s, &err) == MT_ERR_LIMIT && strstr(err.msg, "split image 0"));
    cJSON_Delete(m);
    teardown(&f);
}

static void test_wrapped_expansion(void) {
    fixture f = setup(NULL);
    f.src.expand = wrap_image;
    mt_sample_tokens s;
    mt_err err;
    int64_t img[] = {9, 9};
    const char *one = "[{\"role\":\"user\",\"content\":[{\"type\":\"image\"},{\"type\":\"text\",\"text\":\"Hi\"}]},"
                      "{\"role\":\"assistant\",\"content\":\"A\"}]";
    CHECK(build(&f, one, img, 1, NULL, &s, &err) == MT_OK);
    int64_t at = -1;
    for (int64_t i = 0; i + 4 < s.n && at < 0; i++)
        if (s.ids[i] == 300 && s.ids[i + 4] == 301) at = i;
    CHECK_MSG(at >= 0 && s.ids[at - 1] == 302 && s.ids[at + 5] == 303, "the wrapped span is not between the vision edges");
    for (int64_t i = at; at >= 0 && i < at + 5; i++) CHECK(s.labels[i] == MT_LABEL_IGNORE);
    CHECK(s.n_image_tokens == 3 && s.n_images == 1);
    mt_sample_tokens_release(&s);
    const char *two = "[{\"role\":\"user\",\"content\":[{\"type\":\"image\"},{\"type\":\"image\"}]},"
                      "{\"role\":\"assistant\",\"content\":\"A\"}]";
    CHECK(build(&f, two, img, 2, NULL, &s, &err) == MT_ERR_INVALID_ARG && strstr(err.msg, "refused"));
    teardown(&f);
}

int main(void) {
    test_wrapped_expansion();
    test_stamped_video();
    test_every_turn();
    test_images_tools_tail();
    test_truncation();
    test_prefix_stability();
    test_bad_input();
    test_alloc_failures();
    test_stats();
    return check_report();
}
