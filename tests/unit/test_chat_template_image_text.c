/* Text-only chat templates (InternVL's original repos) with an image marker: content lists become one string, image
 * parts "<image>" plus a newline unless the text after starts with one, and each marker of the prompt the image
 * token. Expected strings written from InternVL's chat() convention ('<image>\n' + question). */
#include <string.h>

#include "base/json.h"
#include "check.h"
#include "text/chat_template.h"

/* InternVL3's form: the content concatenated, which a list would make fail */
static const char chatml[] =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + "
    "'\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

static mt_chat_template *tmpl;

/* want_len: want's length, which may hold a 0 byte */
static void expect_n(const char *messages_json, const char *want, size_t want_len, int line) {
    cJSON *msgs = NULL;
    char *out = NULL;
    size_t len = 0;
    mt_err err;
    mt_status st = mt_json_parse(messages_json, strlen(messages_json), "messages", &msgs, &err);
    if (!st) st = mt_chat_template_render(tmpl, msgs, NULL, true, NULL, &out, &len, &err);
    CHECK_MSG(st == MT_OK && len == want_len && !memcmp(out, want, len), "line %d: got \"%s\"", line,
              st ? err.msg : out);
    mt_free(out);
    cJSON_Delete(msgs);
}

static void expect(const char *messages_json, const char *want, int line) {
    expect_n(messages_json, want, strlen(want), line);
}

static void expect_error(const char *messages_json, const char *want, int line) {
    cJSON *msgs = cJSON_Parse(messages_json);
    char *out = NULL;
    mt_err err = {0};
    mt_status st = mt_chat_template_render(tmpl, msgs, NULL, true, NULL, &out, NULL, &err);
    CHECK_MSG(st != MT_OK && strstr(err.msg, want) && !out, "line %d: got %d \"%s\"", line, st, err.msg);
    mt_free(out);
    cJSON_Delete(msgs);
}

int main(void) {
    mt_err err;
    CHECK(mt_chat_template_parse(chatml, strlen(chatml), "chatml", &tmpl, &err) == MT_OK);
    /* without a marker a list cannot be concatenated: the template's own error */
    expect_error("[{\"role\": \"user\", \"content\": [{\"type\": \"image\"}, {\"type\": \"text\", \"text\": \"Q\"}]}]",
                 "", __LINE__);

    CHECK(mt_chat_template_set_image_text(tmpl, "<image>", "<IMG_CONTEXT>", &err) == MT_OK);
    expect("[{\"role\": \"user\", \"content\": [{\"type\": \"image\"}, {\"type\": \"text\", \"text\": \"Q?\"}]}]",
           "<|im_start|>user\n<IMG_CONTEXT>\nQ?<|im_end|>\n<|im_start|>assistant\n", __LINE__);
    /* LLaVA-style data: "<image>\nQ" split into [image, "\nQ"] keeps one newline */
    expect("[{\"role\": \"user\", \"content\": [{\"type\": \"image_url\", \"image_url\": {\"url\": \"x\"}},"
           " {\"type\": \"text\", \"text\": \"\\nQ\"}]}, {\"role\": \"assistant\", \"content\": \"A\"}]",
           "<|im_start|>user\n<IMG_CONTEXT>\nQ<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n"
           "<|im_start|>assistant\n",
           __LINE__);
    /* in order, two images, text around them; a string content passes as it is, its "<image>" an image too */
    expect("[{\"role\": \"system\", \"content\": \"S\"}, {\"role\": \"user\", \"content\": [{\"type\": \"text\","
           " \"text\": \"A: \"}, {\"image\": \"a.png\"}, {\"type\": \"text\", \"text\": \"B: \"}, {\"type\": \"image\"}]},"
           " {\"role\": \"user\", \"content\": \"<image>\\nC\"}]",
           "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nA: <IMG_CONTEXT>\nB: <IMG_CONTEXT>\n<|im_end|>\n"
           "<|im_start|>user\n<IMG_CONTEXT>\nC<|im_end|>\n<|im_start|>assistant\n",
           __LINE__);
    expect("[{\"role\": \"user\", \"content\": []}]", "<|im_start|>user\n<|im_end|>\n<|im_start|>assistant\n",
           __LINE__);
    /* U+0000 in text survives the flattening */
    static const char with_nul[] = "<|im_start|>user\na\0b<|im_end|>\n<|im_start|>assistant\n";
    expect_n("[{\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"a\\u0000b\"}]}]", with_nul,
             sizeof with_nul - 1, __LINE__);
    /* a video is marked as an image is (InternVL's original: the input's kind tells them apart) */
    expect("[{\"role\": \"user\", \"content\": [{\"type\": \"video\"}, {\"type\": \"text\", \"text\": \"Q\"}]}]",
           "<|im_start|>user\n<IMG_CONTEXT>\nQ<|im_end|>\n<|im_start|>assistant\n", __LINE__);
    expect_error("[{\"role\": \"user\", \"content\": [{\"type\": \"audio\"}]}]",
                 "message 0, part 0: a \"audio\" part; this model's chat template takes text, images and videos only",
                 __LINE__);
    expect_error("[{\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"x\"}, {\"type\": 3}]}]",
                 "message 0, part 1: a \"(untyped)\" part", __LINE__);
    CHECK(mt_chat_template_set_image_text(tmpl, "", "<IMG_CONTEXT>", &err) == MT_ERR_INVALID_ARG);
    CHECK(mt_chat_template_set_image_text(tmpl, NULL, NULL, &err) == MT_OK);
    expect("[{\"role\": \"user\", \"content\": \"<image>\\nC\"}]",
           "<|im_start|>user\n<image>\nC<|im_end|>\n<|im_start|>assistant\n", __LINE__);
    mt_chat_template_free(tmpl);
    return check_report();
}
