/* train/dataset: every file layout x sample format, path resolution, each bad-input case with its line, strict
 * mode, caps, check modes, the pool, allocation failure, and one render through Qwen2-VL's chat template.
 *
 * Fixtures are in tests/train/data (written by make_fixtures.py with PIL; found from this file's path); cases that
 * need absolute paths or odd sizes are written into a temporary folder here. Expected messages are the contract
 * drawn in src/train/dataset.h, written by hand.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/file.h"
#include "base/pool.h"
#include "check.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"
#include "train/dataset.h"
#include "train/labels.h"

static char data_dir[1024], tmp_dir[1024];

static void find_dirs(void) {
    const char *f = __FILE__, *slash = strrchr(f, '/');
    int n = slash ? (int)(slash - f) : 1;
    snprintf(data_dir, sizeof data_dir, "%.*s/../train/data", n, slash ? f : ".");
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/mt_dataset_XXXXXX");
    CHECK(mkdtemp(tmp_dir) != NULL);
}

static const char *at(const char *dir, const char *name) {
    static char buf[4][PATH_MAX];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], PATH_MAX, "%s/%s", dir, name);
    return buf[k];
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

static mt_dataset *load(const char *path, const mt_dataset_opts *o) {
    mt_dataset *ds = NULL;
    mt_err err = {0};
    mt_status st = mt_dataset_load(path, o, &ds, &err);
    CHECK_MSG(st == MT_OK, "%s: %s", path, err.msg);
    return ds;
}

static mt_status load_err(const char *path, const mt_dataset_opts *o, mt_err *err) {
    mt_dataset *ds = (mt_dataset *)1;
    mt_status st = mt_dataset_load(path, o, &ds, err);
    CHECK(st != MT_OK && ds == (mt_dataset *)1);
    return st;
}

static void check_messages(const mt_sample *s, const char *want) {
    char *got = s ? cJSON_PrintUnformatted(s->messages) : NULL;
    CHECK_MSG(got && strcmp(got, want) == 0, "line %lld:\n got  %s\n want %s", s ? (long long)s->line : -1LL,
              got ? got : "(null)", want);
    free(got);
}

static void check_images(const mt_sample *s, const char *a, const char *b) {
    size_t n = (a != NULL) + (b != NULL);
    CHECK_MSG(s && s->n_images == n, "%zu images, want %zu", s ? s->n_images : 0, n);
    if (!s || s->n_images != n) return;
    if (a) CHECK_MSG(strcmp(s->images[0], at(data_dir, a)) == 0, "%s != %s", s->images[0], at(data_dir, a));
    if (b) CHECK_MSG(strcmp(s->images[1], at(data_dir, b)) == 0, "%s != %s", s->images[1], at(data_dir, b));
}

#define U(x) "{\"role\":\"user\",\"content\":" x "}"
#define A(x) "{\"role\":\"assistant\",\"content\":" x "}"
#define IMG "{\"type\":\"image\"}"
#define TXT(x) "{\"type\":\"text\",\"text\":\"" x "\"}"

static void test_formats(void) {
    for (int jsonl = 0; jsonl < 2; jsonl++) {
        int64_t first_line = jsonl ? 1 : 2;
        mt_dataset *ds = load(at(data_dir, jsonl ? "llava.jsonl" : "llava.json"), NULL);
        CHECK(mt_dataset_count(ds) == 3 && mt_dataset_skipped(ds) == 0);
        const mt_sample *s = mt_dataset_sample(ds, 0);
        check_messages(s, "[" U("[" IMG "," TXT("\\nWhat colour is this?") "]") "," A("\"Red.\"") "]");
        check_images(s, "images/red.png", NULL);
        CHECK(s && s->line == first_line && s->index == 0 && s->id && strcmp(s->id, "l0") == 0);
        s = mt_dataset_sample(ds, 1);
        check_messages(s, "[" U("\"Say hi.\"") "," A("\"Hi.\"") "]");
        check_images(s, NULL, NULL);
        CHECK(s && s->images == NULL && s->line == first_line + 1 && s->index == 1);
        s = mt_dataset_sample(ds, 2);
        check_messages(s, "[" U("[" TXT("Compare ") "," IMG "," TXT(" and ") "," IMG "," TXT(".") "]") "," A(
                              "\"Red, blue.\"") "," U("\"Sure?\"") "," A("\"Yes.\"") "]");
        check_images(s, "images/red.png", "images/blue.jpg");
        CHECK(mt_dataset_sample(ds, 3) == NULL);
        mt_dataset_free(ds);

        ds = load(at(data_dir, jsonl ? "sharegpt.jsonl" : "sharegpt.json"), NULL);
        CHECK(mt_dataset_count(ds) == 2 && mt_dataset_skipped(ds) == 0);
        s = mt_dataset_sample(ds, 0);
        check_messages(s, "[{\"role\":\"system\",\"content\":\"Be brief.\"}," U("[" IMG "," TXT("Describe.") "]") "," A(
                              "\"Blue.\"") "]");
        check_images(s, "images/blue.jpg", NULL);
        CHECK(s && s->id == NULL);
        s = mt_dataset_sample(ds, 1);
        check_messages(s, "[" U("\"Weather?\"") "," A("\"{\\\"name\\\": \\\"w\\\", \\\"arguments\\\": {}}\"") ","
                          "{\"role\":\"tool\",\"content\":\"{\\\"t\\\": 20}\"}," A("\"20 degrees.\"") "]");
        CHECK(s && s->line == first_line + 1);
        mt_dataset_free(ds);

        ds = load(at(data_dir, jsonl ? "messages.jsonl" : "messages.json"), NULL);
        CHECK(mt_dataset_count(ds) == 3 && mt_dataset_skipped(ds) == 0);
        s = mt_dataset_sample(ds, 0);
        check_messages(s, "[" U("[" IMG "," TXT("What is it?") "]") "," A("\"Gray.\"") "]");
        check_images(s, "images/gray.png", NULL);
        s = mt_dataset_sample(ds, 1);
        check_messages(s, "[{\"role\":\"system\",\"content\":\"S.\"}," U("[" TXT("Look: ") "," IMG "," IMG "]") "," A(
                              "[" TXT("Gray, red.") "]") "]");
        check_images(s, "images/gray.png", "images/red.png");
        s = mt_dataset_sample(ds, 2);
        check_messages(s, "[" U("\"Q\"") "," A("\"A\"") ",{\"role\":\"tool\",\"content\":\"T\"}," A("\"B\"") "]");
        mt_dataset_free(ds);
    }
}

/* The normalised messages are what the chat template renderer takes: Qwen2-VL's template puts the vision tokens
 * where "<image>" was and keeps the newline after it. */
static void test_render(void) {
    char *src;
    size_t len;
    mt_err err;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/../../jinja/templates/qwen2_vl.jinja", data_dir);
    CHECK_MSG(mt_file_read_all(path, 1 << 20, &src, &len, &err) == MT_OK, "%s", err.msg);
    mt_chat_template *t = NULL;
    CHECK(mt_chat_template_parse(src, len, "qwen2_vl.jinja", &t, &err) == MT_OK);
    mt_free(src);
    mt_dataset *ds = load(at(data_dir, "llava.jsonl"), NULL);
    const mt_sample *s = mt_dataset_sample(ds, 0);
    char *out = NULL;
    if (t && s) CHECK(mt_chat_template_render(t, s->messages, NULL, false, NULL, &out, &len, &err) == MT_OK);
    const char *want = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
                       "<|vision_start|><|image_pad|><|vision_end|>\nWhat colour is this?<|im_end|>\n"
                       "<|im_start|>assistant\nRed.<|im_end|>\n";
    CHECK_MSG(out && strcmp(out, want) == 0, "rendered:\n%s", out ? out : "(null)");
    mt_free(out);
    mt_dataset_free(ds);
    mt_chat_template_free(t);
}

typedef struct skip_want {
    int64_t line, index;
    mt_dataset_reason reason;
    const char *detail;
} skip_want;

static void check_skips(const mt_dataset *ds, const char *file, const skip_want *w, size_t n) {
    CHECK_MSG(mt_dataset_skipped(ds) == n, "%zu skipped, want %zu", mt_dataset_skipped(ds), n);
    for (size_t i = 0; i < n; i++) {
        const mt_dataset_skip *k = mt_dataset_skip_at(ds, i);
        char head[PATH_MAX + 32];
        snprintf(head, sizeof head, "%s:%lld: %s: ", file, (long long)w[i].line, mt_dataset_reason_name(w[i].reason));
        CHECK_MSG(k && k->line == w[i].line && k->index == w[i].index && k->reason == w[i].reason &&
                      strncmp(k->msg, head, strlen(head)) == 0 && strstr(k->msg, w[i].detail),
                  "skip %zu: got %s (index %lld), want \"%s...%s\" (index %lld)", i, k ? k->msg : "(none)",
                  k ? (long long)k->index : -1LL, head, w[i].detail, (long long)w[i].index);
    }
    CHECK(mt_dataset_skip_at(ds, n) == NULL);
}

/* U+0000 in a sample's text ("\u0000" in the JSON line) reaches the token ids whole: the labels of the sample equal
 * the ids of the text the template renders, written here by hand, tokenized at once with mitten-tiny's tokenizer
 * (tests/text checks that tokenizer against transformers' on text holding U+0000). A path holding it is refused. */
static void test_nul(void) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/../../../models/mitten-tiny", data_dir);
    mt_err err;
    mt_tokenizer *tok = NULL;
    mt_chat_template *tmpl = NULL;
    CHECK_MSG(mt_tokenizer_load(at(dir, "tokenizer.json"), &tok, &err) == MT_OK, "%s", err.msg);
    CHECK_MSG(mt_chat_template_load(dir, NULL, &tmpl, &err) == MT_OK, "%s", err.msg);
    const char *path = at(tmp_dir, "nul.jsonl");
    write_file(path, "{\"messages\": [{\"role\": \"user\", \"content\": \"a\\u0000b\"}, "
                     "{\"role\": \"assistant\", \"content\": \"\\u0000x\\u0000\\u0000\"}]}\n"
                     "{\"images\": [\"red\\u0000.png\"], \"conversations\": [{\"from\": \"human\", "
                     "\"value\": \"<image>q\"}, {\"from\": \"gpt\", \"value\": \"a\"}]}\n");
    mt_dataset *ds = load(path, NULL);
    static const skip_want skips[] = {{2, 1, MT_DATASET_BAD_FIELDS, "an image path holds U+0000"}};
    if (ds) check_skips(ds, path, skips, MT_ARRAY_LEN(skips));
    const mt_sample *s = ds ? mt_dataset_sample(ds, 0) : NULL;
    static const char want[] = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\na\0b"
                               "<|im_end|>\n<|im_start|>assistant\n\0x\0\0<|im_end|>\n";
    char *text = NULL;
    size_t len = 0;
    if (s && tmpl) CHECK(mt_chat_template_render(tmpl, s->messages, NULL, false, NULL, &text, &len, &err) == MT_OK);
    CHECK_MSG(text && len == sizeof want - 1 && memcmp(text, want, len) == 0, "rendered %zu bytes, want %zu", len,
              sizeof want - 1);
    int32_t *ids = NULL;
    size_t n = 0;
    mt_sample_tokens st = {0};
    if (tok) CHECK(mt_tokenizer_encode(tok, want, sizeof want - 1, true, &ids, &n, &err) == MT_OK);
    mt_labels_src src = {.tok = tok, .tmpl = tmpl, .image_token_id = -1, .video_token_id = -1,
                         .vision_start_id = -1, .vision_end_id = -1};
    mt_labels_opts o = mt_labels_default_opts();
    if (s && tok && tmpl)
        CHECK_MSG(mt_labels_build(&src, s->messages, NULL, NULL, 0, &o, &st, &err) == MT_OK, "%s", err.msg);
    CHECK_MSG(ids && st.ids && (size_t)st.n == n && memcmp(st.ids, ids, n * sizeof *ids) == 0,
              "labels give %lld ids, the text %zu", (long long)st.n, n);
    mt_sample_tokens_release(&st);
    mt_free(ids);
    mt_free(text);
    mt_dataset_free(ds);
    mt_chat_template_free(tmpl);
    mt_tokenizer_free(tok);
}

/* OpenAI-form tool use: "tools" (an array, or LLaMA-Factory's JSON string of one), assistant tool_calls (arguments
 * parsed into objects), tool_call_id kept, parallel tool answers in a row; then the first sample rendered through the
 * tool-use template of tests/serve/tools, as the trainer renders it. */
#define TOOLS "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":{\"type\":\"object\"}}}]"
static void test_tools(void) {
    const char *text =
        "{\"tools\": " TOOLS ", \"messages\": [{\"role\": \"user\", \"content\": \"Weather in Paris?\"}, "
        "{\"role\": \"assistant\", \"tool_calls\": [{\"id\": \"c1\", \"type\": \"function\", \"function\": "
        "{\"name\": \"get_weather\", \"arguments\": \"{\\\"city\\\": \\\"Paris\\\"}\"}}]}, "
        "{\"role\": \"tool\", \"tool_call_id\": \"c1\", \"content\": \"sunny\"}, {\"role\": \"tool\", \"content\": \"22 C\"}, "
        "{\"role\": \"assistant\", \"content\": \"Sunny.\"}]}\n"
        "{\"tools\": \"[{\\\"name\\\": \\\"w\\\"}]\", \"conversations\": [{\"from\": \"human\", \"value\": \"Q\"}, "
        "{\"from\": \"function_call\", \"value\": \"{}\"}, {\"from\": \"observation\", \"value\": \"R\"}, "
        "{\"from\": \"gpt\", \"value\": \"A\", \"tool_calls\": [{\"function\": {\"name\": \"w\", \"arguments\": {}}}]}]}\n"
        "{\"tools\": \"\", \"messages\": [{\"role\": \"user\", \"content\": \"Q\"}, {\"role\": \"assistant\", \"content\": \"A\"}]}\n"
        "{\"tools\": 3, \"messages\": [{\"role\": \"user\", \"content\": \"Q\"}, {\"role\": \"assistant\", \"content\": \"A\"}]}\n"
        "{\"tools\": [1], \"messages\": [{\"role\": \"user\", \"content\": \"Q\"}, {\"role\": \"assistant\", \"content\": \"A\"}]}\n"
        "{\"tools\": \"[{\", \"messages\": [{\"role\": \"user\", \"content\": \"Q\"}, {\"role\": \"assistant\", \"content\": \"A\"}]}\n"
        "{\"messages\": [{\"role\": \"user\", \"content\": \"Q\", \"tool_calls\": []}, {\"role\": \"assistant\", \"content\": \"A\"}]}\n"
        "{\"messages\": [{\"role\": \"user\", \"content\": \"Q\"}, {\"role\": \"assistant\", \"tool_calls\": "
        "[{\"function\": {\"name\": \"w\", \"arguments\": \"not json\"}}]}]}\n"
        "{\"messages\": [{\"role\": \"user\", \"content\": \"Q\"}, {\"role\": \"assistant\", \"tool_calls\": "
        "[{\"function\": {\"arguments\": {}}}]}]}\n"
        "{\"messages\": [{\"role\": \"user\", \"content\": \"Q\"}, {\"role\": \"assistant\", \"tool_calls\": {}}]}\n"
        "{\"messages\": [{\"role\": \"user\", \"content\": \"Q\"}, {\"role\": \"assistant\", \"content\": null}]}\n"
        "{\"messages\": [{\"role\": \"user\", \"content\": \"Q\"}, {\"role\": \"tool\", \"content\": \"T\"}, "
        "{\"role\": \"assistant\", \"content\": \"A\"}]}\n"
        "{\"messages\": [{\"role\": \"user\", \"content\": \"Q\"}, {\"role\": \"assistant\", \"content\": \"A\"}, "
        "{\"role\": \"tool\", \"tool_call_id\": 5, \"content\": \"T\"}, {\"role\": \"assistant\", \"content\": \"B\"}]}\n";
    const char *path = at(tmp_dir, "tools.jsonl");
    write_file(path, text);
    mt_log_level lv = mt_log_get_level();
    mt_log_set_level(MT_LOG_ERROR);
    mt_dataset *ds = load(path, NULL);
    mt_log_set_level(lv);
    CHECK_MSG(mt_dataset_count(ds) == 3, "%zu samples", mt_dataset_count(ds));
    const mt_sample *s = mt_dataset_sample(ds, 0);
    check_messages(s, "[" U("\"Weather in Paris?\"") ",{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"id\":"
                      "\"c1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":{\"city\":"
                      "\"Paris\"}}}]},{\"role\":\"tool\",\"content\":\"sunny\",\"tool_call_id\":\"c1\"},{\"role\":"
                      "\"tool\",\"content\":\"22 C\"}," A("\"Sunny.\"") "]");
    char *got = s && s->tools ? cJSON_PrintUnformatted(s->tools) : NULL;
    CHECK_MSG(got && strcmp(got, TOOLS) == 0, "tools %s", got ? got : "(null)");
    free(got);
    const mt_sample *s2 = mt_dataset_sample(ds, 1);
    check_messages(s2, "[" U("\"Q\"") "," A("\"{}\"") ",{\"role\":\"tool\",\"content\":\"R\"},{\"role\":\"assistant\","
                       "\"content\":\"A\",\"tool_calls\":[{\"type\":\"function\",\"function\":{\"name\":\"w\","
                       "\"arguments\":{}}}]}]");
    got = s2 && s2->tools ? cJSON_PrintUnformatted(s2->tools) : NULL;
    CHECK_MSG(got && strcmp(got, "[{\"name\":\"w\"}]") == 0, "tools %s", got ? got : "(null)");
    free(got);
    const mt_sample *s3 = mt_dataset_sample(ds, 2);
    CHECK(s3 && s3->tools == NULL);
    static const skip_want bad[] = {
        {4, 3, MT_DATASET_BAD_FIELDS, "\"tools\" is not an array of tools or a JSON string of one"},
        {5, 4, MT_DATASET_BAD_FIELDS, "\"tools\"[0] is not an object"},
        {6, 5, MT_DATASET_BAD_FIELDS, "\"tools\" is not an array of tools"},
        {7, 6, MT_DATASET_BAD_FIELDS, "turn 0: only assistant turns have \"tool_calls\""},
        {8, 7, MT_DATASET_BAD_FIELDS, "turn 1: tool_calls[0] (w): \"arguments\" is not a JSON object"},
        {9, 8, MT_DATASET_BAD_FIELDS, "turn 1: tool_calls[0] has no \"function\" with a \"name\""},
        {10, 9, MT_DATASET_BAD_FIELDS, "turn 1: \"tool_calls\" is not a non-empty array"},
        {11, 10, MT_DATASET_BAD_FIELDS, "turn 1: the text is not a string or a parts array"},
        {12, 11, MT_DATASET_BAD_ORDER, "turn 1: \"tool\" where an assistant turn belongs"},
        {13, 12, MT_DATASET_BAD_FIELDS, "turn 2: \"tool_call_id\" is not a string"},
    };
    check_skips(ds, path, bad, MT_ARRAY_LEN(bad));

    char *src = NULL, *out = NULL;
    size_t len;
    mt_err err;
    char tpl[PATH_MAX];
    snprintf(tpl, sizeof tpl, "%s/../../serve/tools/chat_template.jinja", data_dir);
    CHECK_MSG(mt_file_read_all(tpl, 1 << 20, &src, &len, &err) == MT_OK, "%s", err.msg);
    mt_chat_template *t = NULL;
    if (src) CHECK_MSG(mt_chat_template_parse(src, len, tpl, &t, &err) == MT_OK, "%s", err.msg);
    mt_free(src);
    if (t && s) CHECK_MSG(mt_chat_template_render(t, s->messages, s->tools, false, NULL, &out, &len, &err) == MT_OK, "%s",
                          err.msg);
    const char *want = "<|im_start|>system\nYou are a helpful assistant.\n\nTools you can call:\n<tools>\n"
                       "{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"parameters\": "
                       "{\"type\": \"object\"}}}\n</tools>\nTo call one, answer with\n<tool_call>\n{\"name\": "
                       "\"its name\", \"arguments\": {\"parameter\": \"value\"}}\n</tool_call><|im_end|>\n"
                       "<|im_start|>user\nWeather in Paris?<|im_end|>\n<|im_start|>assistant\n<tool_call>\n"
                       "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call><|im_end|>\n"
                       "<|im_start|>user\n<tool_response>\nsunny\n</tool_response>\n<tool_response>\n22 C\n"
                       "</tool_response><|im_end|>\n<|im_start|>assistant\nSunny.<|im_end|>\n";
    CHECK_MSG(out && strcmp(out, want) == 0, "rendered:\n%s", out ? out : "(null)");
    mt_free(out);
    mt_chat_template_free(t);
    mt_dataset_free(ds);
}

static const skip_want BAD_JSONL[] = {
    {2, 1, MT_DATASET_BAD_JSON, "invalid JSON at line 2"},
    {4, 2, MT_DATASET_IMAGE_MISSING, "images/missing.png: no such file"},
    {5, 3, MT_DATASET_IMAGE_BAD, "corrupt.jpg"},
    {6, 4, MT_DATASET_BAD_PLACEHOLDERS, "2 image placeholders but 1 images"},
    {7, 5, MT_DATASET_BAD_ORDER, "no assistant turn"},
    {8, 6, MT_DATASET_BAD_ROLE, "turn 1: unknown role \"bing\""},
    {9, 7, MT_DATASET_IMAGE_MISSING, "v.mp4: no such video file or frame folder"},
    {11, 9, MT_DATASET_BAD_ORDER, "the last turn is not the assistant's"},
    {12, 10, MT_DATASET_IMAGE_BAD, "notimage.png: not a JPEG, PNG or WebP"},
    {13, 11, MT_DATASET_BAD_PLACEHOLDERS, "0 image placeholders but 1 images"},
    {14, 12, MT_DATASET_BAD_ORDER, "turn 1: \"system\" where an assistant turn belongs"},
    {15, 13, MT_DATASET_BAD_FIELDS, "turn 0: the text is not a string"},
    {16, 14, MT_DATASET_BAD_JSON, "text after the JSON value at line 16"},
    {17, 15, MT_DATASET_UNSUPPORTED, "image URLs are not supported"},
    {18, 16, MT_DATASET_IMAGE_MISSING, "images: is a directory"},
    {19, 17, MT_DATASET_BAD_JSON, "string not closed at line 19, column 32"},
};

static void test_bad_jsonl(mt_pool *pool) {
    mt_dataset_opts o = mt_dataset_opts_default();
    o.pool = pool;
    const char *path = at(data_dir, "bad.jsonl");
    mt_log_level lv = mt_log_get_level();
    mt_log_set_level(MT_LOG_ERROR);
    mt_dataset *ds = load(path, &o);
    mt_log_set_level(lv);
    CHECK(mt_dataset_count(ds) == 2);
    const mt_sample *a = mt_dataset_sample(ds, 0), *b = mt_dataset_sample(ds, 1);
    CHECK(a && a->line == 1 && a->index == 0 && b && b->line == 10 && b->index == 8);
    check_skips(ds, path, BAD_JSONL, MT_ARRAY_LEN(BAD_JSONL));
    CHECK(mt_dataset_skipped_for(ds, MT_DATASET_BAD_JSON) == 3);
    CHECK(mt_dataset_skipped_for(ds, MT_DATASET_BAD_ORDER) == 3);
    CHECK(mt_dataset_skipped_for(ds, MT_DATASET_IMAGE_BAD) == 2);
    CHECK(mt_dataset_skipped_for(ds, MT_DATASET_N_REASONS) == 0);
    mt_dataset_free(ds);

    /* Only existence is checked: the corrupt and the text "images" pass; the folder does not. */
    o.check_images = MT_DATASET_CHECK_EXISTS;
    mt_log_set_level(MT_LOG_ERROR);
    ds = load(path, &o);
    CHECK(mt_dataset_count(ds) == 4 && mt_dataset_skipped_for(ds, MT_DATASET_IMAGE_BAD) == 0 &&
          mt_dataset_skipped_for(ds, MT_DATASET_IMAGE_MISSING) == 3);
    mt_dataset_free(ds);
    o.check_images = MT_DATASET_CHECK_NONE;
    ds = load(path, &o);
    mt_log_set_level(lv);
    CHECK(mt_dataset_count(ds) == 7 && mt_dataset_skipped_for(ds, MT_DATASET_IMAGE_MISSING) == 0);
    mt_dataset_free(ds);
}

static void test_bad_json(void) {
    /* a .json file is one document: an element that does not parse fails the load, naming where */
    mt_err err;
    CHECK(load_err(at(data_dir, "bad.json"), NULL, &err) == MT_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, "bad.json:5: element 1: invalid JSON at line 5, column 78") &&
                  strstr(err.msg, "must parse whole"), "%s", err.msg);
    mt_dataset *ds;

    /* Broken structure fails the whole load. */
    static const struct {
        const char *text, *msg;
    } broken[] = {
        {"[{\"messages\": []} {\"messages\": []}]", ":1: expected ',' or ']' after element 0"},
        {"[{\"messages\": []}]\n]", ":2: text after the array's closing ']'"},
        {"[{\"messages\": []},\n]", ":2: expected element 1, found ']'"},
        {"[,{\"messages\": []}]", ":1: expected element 0, found ','"},
        {"hello", ":1: neither a JSON array nor JSON lines"},
        {" \n\t", "the file is empty"},
        {"", "the file is empty"},
    };
    for (size_t i = 0; i < MT_ARRAY_LEN(broken); i++) {
        write_file(at(tmp_dir, "broken.json"), broken[i].text);
        CHECK(load_err(at(tmp_dir, "broken.json"), NULL, &err) == MT_ERR_FORMAT);
        CHECK_MSG(strstr(err.msg, broken[i].msg), "case %zu: %s", i, err.msg);
    }
    /* A file cut short (after an element, or inside one) fails: training on the part that parsed would hide it. */
    const char *cut = "\xef\xbb\xbf[\n{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}, "
                      "{\"role\": \"assistant\", \"content\": \"a\"}]},\n";
    write_file(at(tmp_dir, "cut.json"), cut);
    CHECK(load_err(at(tmp_dir, "cut.json"), NULL, &err) == MT_ERR_FORMAT && strstr(err.msg, "closing ']'"));
    write_file(at(tmp_dir, "cut2.json"), "[{\"messages\": [{\"role\": \"user\"");
    CHECK(load_err(at(tmp_dir, "cut2.json"), NULL, &err) == MT_ERR_FORMAT && strstr(err.msg, "inside element 0"));
    write_file(at(tmp_dir, "empty.json"), "[ ]");
    ds = load(at(tmp_dir, "empty.json"), NULL);
    CHECK(mt_dataset_count(ds) == 0 && mt_dataset_skipped(ds) == 0);
    mt_dataset_free(ds);
}

static void test_strict(void) {
    mt_dataset_opts o = {.strict = true};
    mt_err err;
    CHECK(load_err(at(data_dir, "bad.jsonl"), &o, &err) == MT_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, "bad.jsonl:2: malformed JSON: invalid JSON"), "%s", err.msg);
    CHECK(load_err(at(data_dir, "bad.json"), &o, &err) == MT_ERR_FORMAT && strstr(err.msg, "bad.json:5: "));
    /* A bad image found in pass 2 comes before a parse error later in the file. */
    char text[2 * PATH_MAX];
    snprintf(text, sizeof text,
             "{\"image\": \"%s\", \"conversations\": [{\"from\": \"human\", \"value\": \"<image>\"}, "
             "{\"from\": \"gpt\", \"value\": \"a\"}]}\n{\"image\": \"%s\", \"conversations\": [{\"from\": \"human\", "
             "\"value\": \"<image>\"}, {\"from\": \"gpt\", \"value\": \"a\"}]}\n{oops\n",
             at(data_dir, "images/red.png"), at(data_dir, "images/missing.png"));
    write_file(at(tmp_dir, "strict.jsonl"), text);
    CHECK(load_err(at(tmp_dir, "strict.jsonl"), &o, &err) == MT_ERR_IO);
    CHECK_MSG(strstr(err.msg, "strict.jsonl:2: missing image: ") && strstr(err.msg, "missing.png"), "%s", err.msg);
    mt_dataset *ds = load(at(data_dir, "messages.json"), &o);
    CHECK(mt_dataset_count(ds) == 3);
    mt_dataset_free(ds);
    CHECK(load_err(at(tmp_dir, "no-such-file.jsonl"), NULL, &err) == MT_ERR_IO && strstr(err.msg, "no-such-file"));
}

static void test_paths(void) {
    char text[4 * PATH_MAX], sub[1100];
    snprintf(sub, sizeof sub, "%s/sub", tmp_dir);
    CHECK(mkdir(sub, 0755) == 0);
    char *png;
    size_t n;
    mt_err err;
    CHECK(mt_file_read_all(at(data_dir, "images/red.png"), 1 << 20, &png, &n, &err) == MT_OK);
    FILE *f = fopen(at(sub, "local.png"), "wb");
    CHECK(f && fwrite(png, 1, n, f) == n);
    if (f) fclose(f);
    mt_free(png);
    /* absolute, relative to the data file's folder, both in one sample */
    snprintf(text, sizeof text,
             "{\"messages\": [{\"role\": \"user\", \"content\": \"<image><image>\"}, {\"role\": \"assistant\", "
             "\"content\": \"a\"}], \"images\": [\"%s\", \"local.png\"]}\n",
             at(data_dir, "images/blue.jpg"));
    write_file(at(sub, "p.jsonl"), text);
    mt_dataset *ds = load(at(sub, "p.jsonl"), NULL);
    const mt_sample *s = mt_dataset_sample(ds, 0);
    CHECK(s && s->n_images == 2 && strcmp(s->images[0], at(data_dir, "images/blue.jpg")) == 0 &&
          strcmp(s->images[1], at(sub, "local.png")) == 0);
    mt_dataset_free(ds);
    /* image_dir replaces the data file's folder for relative paths */
    mt_dataset_opts o = {.image_dir = data_dir};
    write_file(at(sub, "q.jsonl"), "{\"conversations\": [{\"from\": \"human\", \"value\": \"<image>x\"}, {\"from\": "
                                   "\"gpt\", \"value\": \"y\"}], \"image\": \"images/gray.png\"}\n");
    ds = load(at(sub, "q.jsonl"), &o);
    check_images(mt_dataset_sample(ds, 0), "images/gray.png", NULL);
    mt_dataset_free(ds);
    mt_log_level lv = mt_log_get_level();
    mt_log_set_level(MT_LOG_ERROR);
    ds = load(at(sub, "q.jsonl"), NULL);
    mt_log_set_level(lv);
    CHECK(mt_dataset_count(ds) == 0 && mt_dataset_skipped_for(ds, MT_DATASET_IMAGE_MISSING) == 1);
    mt_dataset_free(ds);
    /* a buffer with no base_dir: relative paths stay under "." */
    ds = NULL;
    const char *buf = "{\"messages\": [{\"role\": \"user\", \"content\": \"<image>\"}, {\"role\": "
                      "\"assistant\", \"content\": \"y\"}], \"images\": \"a.png\"}";
    mt_dataset_opts none = {.check_images = MT_DATASET_CHECK_NONE};
    CHECK(mt_dataset_load_buffer(buf, strlen(buf), "buf", NULL, &none, &ds, &err) == MT_OK);
    s = mt_dataset_sample(ds, 0);
    CHECK(s && s->n_images == 1 && strcmp(s->images[0], "./a.png") == 0);
    mt_dataset_free(ds);
}

static void test_limits(void) {
    /* the loader skips what the trainer could not take: no sample over its image limit reaches a step */
    CHECK(mt_dataset_opts_default().max_images == MT_DATASET_MAX_IMAGES);
    mt_log_level lv = mt_log_get_level();
    mt_log_set_level(MT_LOG_ERROR);
    const char *good = "{\"conversations\": [{\"from\": \"human\", \"value\": \"q\"}, {\"from\": \"gpt\", \"value\": "
                       "\"a\"}]}\n";
    size_t glen = strlen(good);
    mt_dataset_opts o = {.max_sample_bytes = glen - 2}; /* the line without its newline is glen - 1 */
    mt_dataset *ds = NULL;
    mt_err err;
    CHECK(mt_dataset_load_buffer(good, glen, "b", NULL, &o, &ds, &err) == MT_OK);
    CHECK(mt_dataset_count(ds) == 0 && mt_dataset_skipped_for(ds, MT_DATASET_TOO_LARGE) == 1);
    mt_dataset_free(ds);
    o = (mt_dataset_opts){.max_file_bytes = glen - 1};
    CHECK(mt_dataset_load_buffer(good, glen, "b", NULL, &o, &ds, &err) == MT_ERR_LIMIT && strstr(err.msg, "max_file"));
    char three[1024];
    snprintf(three, sizeof three, "%s%s%s", good, good, good);
    o = (mt_dataset_opts){.max_samples = 2};
    CHECK(mt_dataset_load_buffer(three, strlen(three), "b", NULL, &o, &ds, &err) == MT_ERR_LIMIT);
    CHECK_MSG(strstr(err.msg, "b:3: more than 2 samples"), "%s", err.msg);

    /* too many images, a path over PATH_MAX, a picture over max_image_pixels, deep nesting, huge numbers */
    static char text[3 * PATH_MAX];
    char longname[PATH_MAX + 10];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    int k = snprintf(text, sizeof text,
                     "{\"image\": [\"a.png\", \"b.png\"], \"conversations\": [{\"from\": \"human\", \"value\": "
                     "\"<image><image>\"}, {\"from\": \"gpt\", \"value\": \"a\"}]}\n"
                     "{\"image\": \"%s\", \"conversations\": [{\"from\": \"human\", \"value\": \"<image>\"}, "
                     "{\"from\": \"gpt\", \"value\": \"a\"}]}\n"
                     "{\"image\": \"images/red.png\", \"id\": 1e999, \"n\": -1e400, \"conversations\": [{\"from\": "
                     "\"human\", \"value\": \"<image>\"}, {\"from\": \"gpt\", \"value\": \"a\"}]}\n{\"deep\": ",
                     longname);
    for (int i = 0; i < 3000; i++) text[k++] = '[';
    for (int i = 0; i < 3000; i++) text[k++] = ']';
    snprintf(text + k, sizeof text - (size_t)k, ", \"conversations\": []}\n");
    o = (mt_dataset_opts){.max_images = 1, .max_image_pixels = 47};
    CHECK(mt_dataset_load_buffer(text, strlen(text), "b", data_dir, &o, &ds, &err) == MT_OK);
    static const skip_want want[] = {
        {1, 0, MT_DATASET_TOO_LARGE, "2 images, more than the 1 allowed"},
        {2, 1, MT_DATASET_TOO_LARGE, "an image path is longer than"},
        {3, 2, MT_DATASET_IMAGE_BAD, "more than the 47 pixels allowed"},
        {4, 3, MT_DATASET_BAD_JSON, "nesting deeper than 1000 levels at line 4, column 1009"},
    };
    check_skips(ds, "b", want, MT_ARRAY_LEN(want));
    mt_dataset_free(ds);
    o.max_image_pixels = 48;
    CHECK(mt_dataset_load_buffer(text, strlen(text), "b", data_dir, &o, &ds, &err) == MT_OK);
    CHECK(mt_dataset_count(ds) == 1 && mt_dataset_sample(ds, 0)->line == 3);
    mt_dataset_free(ds);
    mt_log_set_level(lv);
}

static void test_api_edges(void) {
    mt_err err;
    mt_dataset *ds = NULL;
    CHECK(mt_dataset_load(NULL, NULL, &ds, &err) == MT_ERR_INVALID_ARG);
    CHECK(mt_dataset_load_buffer(NULL, 3, "x", NULL, NULL, &ds, &err) == MT_ERR_INVALID_ARG);
    CHECK(mt_dataset_count(NULL) == 0 && mt_dataset_sample(NULL, 0) == NULL && mt_dataset_skipped(NULL) == 0);
    CHECK(mt_dataset_skip_at(NULL, 0) == NULL && mt_dataset_skipped_for(NULL, MT_DATASET_BAD_JSON) == 0);
    CHECK(strcmp(mt_dataset_reason_name(MT_DATASET_IMAGE_MISSING), "missing image") == 0);
    CHECK(strcmp(mt_dataset_reason_name(MT_DATASET_N_REASONS), "unknown reason") == 0);
    mt_dataset_free(NULL);
    mt_dataset_log_summary(NULL);
    ds = load(at(data_dir, "llava.json"), NULL);
    mt_dataset_log_summary(ds);
    mt_dataset_free(ds);
}

/* Every allocation the loader makes through mt_malloc fails in turn: each load fails cleanly with MT_ERR_NOMEM or
 * succeeds with the full dataset (cJSON's own allocations are not counted by mt_alloc_fail_after). */
static void test_alloc_failure(void) {
    mt_log_level lv = mt_log_get_level();
    mt_log_set_level(MT_LOG_ERROR);
    int failed = 0, ok_at = 0;
    for (size_t k = 1; k < 500 && !ok_at; k++) {
        mt_alloc_fail_after(k);
        mt_dataset *ds = NULL;
        mt_err err;
        mt_status st = mt_dataset_load(at(data_dir, "bad.jsonl"), NULL, &ds, &err);
        mt_alloc_fail_after(0);
        if (st == MT_OK) {
            ok_at = (int)k;
            CHECK(mt_dataset_count(ds) == 2 && mt_dataset_skipped(ds) == MT_ARRAY_LEN(BAD_JSONL));
        } else if (st != MT_ERR_NOMEM) {
            failed++;
            fprintf(stderr, "k=%zu: %s\n", k, err.msg);
        }
        mt_dataset_free(ds);
    }
    mt_log_set_level(lv);
    CHECK(failed == 0 && ok_at > 10);
}

/* InternVL's meta file: name -> {root, annotation, repeat_time, length}; each set's images under its root, a
 * repeat_time below 1 keeps that share of the set from its start (int(len * r), as InternVL's dataset.py cuts
 * raw_data), above 1 repeats the whole set that many times. */
static void write_set(const char *path, const char *prefix, int n, bool images) {
    char text[8192];
    size_t len = 0;
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(text + len, sizeof text - len,
                                "{\"id\": \"%s%d\", %s\"conversations\": [{\"from\": \"human\", \"value\": \"%sq%d\"}, "
                                "{\"from\": \"gpt\", \"value\": \"a%d\"}]}\n", prefix, i,
                                !images ? "" : i == 1 ? "\"image\": [\"images/red.png\", \"images/gray.png\"], "
                                                      : "\"image\": \"images/red.png\", ",
                                !images ? "" : i == 1 ? "<image>\\n<image>\\n" : "<image>\\n", i, i);
    write_file(path, text);
}

static void test_meta(void) {
    char dir[1100], text[4 * PATH_MAX];
    snprintf(dir, sizeof dir, "%s/meta", tmp_dir);
    CHECK(mkdir(dir, 0755) == 0);
    write_set(at(dir, "a.jsonl"), "a", 5, true);
    write_set(at(dir, "b.jsonl"), "b", 3, false);
    snprintf(text, sizeof text,
             "{\"set_a\": {\"root\": \"%s\", \"annotation\": \"%s\", \"repeat_time\": 0.5, \"length\": 5},\n"
             " \"set_b\": {\"root\": \"\", \"annotation\": \"%s\", \"repeat_time\": 2}}\n",
             data_dir, at(dir, "a.jsonl"), at(dir, "b.jsonl"));
    write_file(at(dir, "meta.json"), text);
    mt_dataset *ds = load(at(dir, "meta.json"), NULL);
    static const char *const want[] = {"a0", "a1", "b0", "b1", "b2", "b0", "b1", "b2"};
    CHECK_MSG(mt_dataset_count(ds) == 8, "%zu samples, want 8", mt_dataset_count(ds));
    for (size_t i = 0; i < 8 && i < mt_dataset_count(ds); i++) {
        const mt_sample *s = mt_dataset_sample(ds, i);
        CHECK_MSG(s->id && strcmp(s->id, want[i]) == 0, "sample %zu is %s, want %s", i, s->id ? s->id : "-",
                  want[i]);
    }
    check_images(mt_dataset_sample(ds, 0), "images/red.png", NULL);
    check_images(mt_dataset_sample(ds, 1), "images/red.png", "images/gray.png");
    check_messages(mt_dataset_sample(ds, 1),
                   "[" U("[" IMG "," TXT("\\n") "," IMG "," TXT("\\nq1") "]") "," A("\"a1\"") "]");
    check_messages(mt_dataset_sample(ds, 7), "[" U("\"q2\"") "," A("\"a2\"") "]");
    mt_dataset_free(ds);
    /* InternVL's int(len * r): 0.7 of 5 is 3; a share too small for one sample keeps none */
    snprintf(text, sizeof text, "{\"s\": {\"root\": \"%s\", \"annotation\": \"%s\", \"repeat_time\": 0.7}, "
             "\"t\": {\"root\": \"%s\", \"annotation\": \"%s\", \"repeat_time\": 0.1}}",
             data_dir, at(dir, "a.jsonl"), data_dir, at(dir, "b.jsonl"));
    write_file(at(dir, "share.json"), text);
    ds = load(at(dir, "share.json"), NULL);
    CHECK_MSG(mt_dataset_count(ds) == 3, "%zu samples, want 3", mt_dataset_count(ds));
    mt_dataset_free(ds);

    struct { const char *set, *want; } bad[] = {
        {"\"repeat_time\": 1.5", "field \"repeat_time\" = 1.5: it must be above 0 and, above 1, a whole number"},
        {"\"repeat_time\": 0", "field \"repeat_time\" = 0: it must be above 0"},
        {"\"repeat_time\": -1", "\"repeat_time\""},
        {"\"repeat_time\": \"2\"", "\"repeat_time\""},
        {"\"length\": 3", "\"repeat_time\""},
        {"\"repeat_time\": 1, \"root\": 7", "\"root\""},
        {"\"repeat_time\": 1, \"length\": \"x\"", "\"length\""},
    };
    mt_err err;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(text, sizeof text, "{\"odd set\": {\"annotation\": \"%s\", %s}}", at(dir, "b.jsonl"), bad[i].set);
        write_file(at(dir, "bad.json"), text);
        CHECK(load_err(at(dir, "bad.json"), NULL, &err) == MT_ERR_FORMAT);
        CHECK_MSG(strstr(err.msg, "bad.json: \"odd set\"") && strstr(err.msg, bad[i].want), "%s: %s", bad[i].set,
                  err.msg);
    }
    /* a missing annotation names the set and the file */
    snprintf(text, sizeof text, "{\"gone\": {\"annotation\": \"%s\", \"repeat_time\": 1}}", at(dir, "nope.jsonl"));
    write_file(at(dir, "gone.json"), text);
    CHECK(load_err(at(dir, "gone.json"), NULL, &err) == MT_ERR_IO);
    CHECK_MSG(strstr(err.msg, "gone.json: \"gone\"") && strstr(err.msg, "nope.jsonl"), "%s", err.msg);
    /* a meta file listing a meta file (itself here) is refused, not followed */
    snprintf(text, sizeof text, "{\"loop\": {\"annotation\": \"%s\", \"repeat_time\": 1}}", at(dir, "loop.json"));
    write_file(at(dir, "loop.json"), text);
    CHECK(load_err(at(dir, "loop.json"), NULL, &err) == MT_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, "is itself a meta file"), "%s", err.msg);
    /* each set has its root: an image folder for the whole file does not apply */
    mt_dataset_opts o = {.image_dir = data_dir};
    CHECK(load_err(at(dir, "meta.json"), &o, &err) == MT_ERR_INVALID_ARG);
    CHECK_MSG(strstr(err.msg, "is a meta file") && strstr(err.msg, "--image-dir"), "%s", err.msg);
    /* a JSON-lines file of one sample is a sample, not a meta file */
    ds = load(at(dir, "b.jsonl"), NULL);
    CHECK(mt_dataset_count(ds) == 3);
    mt_dataset_free(ds);
}

#define VID "{\"type\":\"video\"}"

static void check_media(const mt_sample *s, const char *dir, const char *const *paths, const bool *videos, size_t n) {
    CHECK_MSG(s && s->n_images == n, "%zu media, want %zu", s ? s->n_images : 0, n);
    if (!s || s->n_images != n) return;
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        CHECK_MSG(strcmp(s->images[i], at(dir, paths[i])) == 0, "%s != %s", s->images[i], at(dir, paths[i]));
        CHECK_MSG(s->videos ? s->videos[i] == videos[i] : !videos[i], "media %zu: kind", i);
        any |= videos[i];
    }
    CHECK(any == (s->videos != NULL));
}

/* Videos in the LLaVA-Video / ShareGPT, LLaMA-Factory and OpenAI forms, mixed with images, paths relative to the
 * data file; a clip is only looked for at load (a file or a folder of frames), so any bytes stand for one. */
static void test_video(void) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/video", tmp_dir);
    CHECK(mkdir(dir, 0700) == 0 && mkdir(at(dir, "frames"), 0700) == 0);
    write_file(at(dir, "clip.mp4"), "not decoded at load");
    write_file(at(dir, "red.png"), "");
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s", at(dir, "v.jsonl"));
    write_file(path,
               "{\"video\": \"clip.mp4\", \"conversations\": [{\"from\": \"human\", \"value\": \"<video>\\nWhat "
               "happens?\"}, {\"from\": \"gpt\", \"value\": \"A ball.\"}]}\n"
               "{\"videos\": [\"frames\"], \"images\": [\"red.png\"], \"messages\": [{\"role\": \"user\", \"content\": "
               "\"<video>and<image>\"}, {\"role\": \"assistant\", \"content\": \"Same.\"}]}\n"
               "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image\", \"image\": \"red.png\"}, "
               "{\"type\": \"video\", \"video\": \"clip.mp4\"}, {\"type\": \"video_url\", \"video_url\": {\"url\": "
               "\"file://frames\"}}, {\"type\": \"text\", \"text\": \"Q\"}]}, {\"role\": \"assistant\", \"content\": "
               "\"A\"}]}\n"
               "{\"videos\": [\"clip.mp4\", \"clip.mp4\"], \"conversations\": [{\"from\": \"human\", \"value\": "
               "\"<video>\"}, {\"from\": \"gpt\", \"value\": \"x\"}]}\n"
               "{\"video\": \"gone.mp4\", \"conversations\": [{\"from\": \"human\", \"value\": \"<video>\"}, "
               "{\"from\": \"gpt\", \"value\": \"x\"}]}\n"
               "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"video_url\", \"video_url\": "
               "{\"url\": \"https://x/v.mp4\"}}]}, {\"role\": \"assistant\", \"content\": \"x\"}]}\n"
               "{\"video\": \"clip.mp4\", \"image\": \"red.png\", \"conversations\": [{\"from\": \"human\", \"value\": "
               "\"<image><image>\"}, {\"from\": \"gpt\", \"value\": \"x\"}]}\n");
    mt_dataset_opts o = mt_dataset_opts_default();
    o.check_images = MT_DATASET_CHECK_EXISTS;
    mt_log_level lv = mt_log_get_level();
    mt_log_set_level(MT_LOG_ERROR);
    mt_dataset *ds = load(path, &o);
    mt_log_set_level(lv);
    CHECK(mt_dataset_count(ds) == 3);
    const mt_sample *s = mt_dataset_sample(ds, 0);
    check_messages(s, "[" U("[" VID "," TXT("\\nWhat happens?") "]") "," A("\"A ball.\"") "]");
    check_media(s, dir, (const char *const[]){"clip.mp4"}, (const bool[]){true}, 1);
    s = mt_dataset_sample(ds, 1);
    check_messages(s, "[" U("[" VID "," TXT("and") "," IMG "]") "," A("\"Same.\"") "]");
    check_media(s, dir, (const char *const[]){"frames", "red.png"}, (const bool[]){true, false}, 2);
    s = mt_dataset_sample(ds, 2);
    check_messages(s, "[" U("[" IMG "," VID "," VID "," TXT("Q") "]") "," A("\"A\"") "]");
    check_media(s, dir, (const char *const[]){"red.png", "clip.mp4", "frames"}, (const bool[]){false, true, true}, 3);
    static const skip_want want[] = {
        {4, 3, MT_DATASET_BAD_PLACEHOLDERS, "1 video placeholders but 2 videos"},
        {5, 4, MT_DATASET_IMAGE_MISSING, "gone.mp4: no such video file or frame folder"},
        {6, 5, MT_DATASET_UNSUPPORTED, "turn 0: video URLs are not supported, give a file path (https://x/v.mp4)"},
        {7, 6, MT_DATASET_BAD_PLACEHOLDERS, "2 image placeholders but 1 images"},
    };
    check_skips(ds, path, want, MT_ARRAY_LEN(want));
    mt_dataset_free(ds);

    /* strict: the first bad sample names its line and what is wrong */
    o.strict = true;
    mt_err err = {0};
    CHECK(load_err(path, &o, &err) == MT_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, "v.jsonl:4:") && strstr(err.msg, "1 video placeholders but 2 videos"), "%s", err.msg);
}

int main(void) {
    find_dirs();
    test_video();
    test_formats();
    test_render();
    test_nul();

    test_tools();
    test_bad_jsonl(NULL);
    mt_pool *pool = NULL;
    mt_err err;
    CHECK(mt_pool_new(2, &pool, &err) == MT_OK);
    test_bad_jsonl(pool);
    mt_pool_free(pool);
    test_bad_json();
    test_strict();
    test_paths();
    test_limits();
    test_api_edges();
    test_alloc_failure();
    test_meta();
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
    CHECK(system(cmd) == 0);
    return check_report();
}
