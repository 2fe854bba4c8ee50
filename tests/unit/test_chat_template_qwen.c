/* The Qwen2-VL family's default chat template renders conversations as Qwen2.5-VL's published chat_template.json
 * does (add_vision_id unset); expected strings written from that template. */
#include <string.h>

#include "check.h"
#include "models/model.h"

static mt_chat_template *tmpl;

static void expect(const char *messages_json, bool gen, const char *want, int line) {
    cJSON *msgs = cJSON_Parse(messages_json);
    char *out = NULL;
    mt_err err;
    mt_status st = mt_chat_template_render(tmpl, msgs, NULL, gen, NULL, &out, NULL, &err);
    CHECK_MSG(st == MT_OK && !strcmp(out, want), "line %d: got \"%s\"", line, st ? err.msg : out);
    mt_free(out);
    cJSON_Delete(msgs);
}

int main(void) {
    const mt_composition *f = mt_composition_find("Qwen2_5_VLForConditionalGeneration");
    CHECK(f && f->default_chat_template &&
          f->default_chat_template == mt_composition_find("Qwen2VLForConditionalGeneration")->default_chat_template);
    mt_err err;
    const char *src = f->default_chat_template;
    CHECK(mt_chat_template_parse(src, strlen(src), "qwen2-vl", &tmpl, &err) == MT_OK);
    expect("[{\"role\": \"user\", \"content\": \"Hi!\"}]", true,
           "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n"
           "<|im_start|>assistant\n",
           __LINE__);
    expect("[{\"role\": \"system\", \"content\": \"Be brief.\"},"
           " {\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"Compare \"}, {\"type\": \"image\"},"
           "  {\"type\": \"text\", \"text\": \" and \"}, {\"type\": \"image_url\", \"image_url\": {\"url\": \"x\"}},"
           "  {\"type\": \"video\"}, {\"type\": \"text\", \"text\": \".\"}]},"
           " {\"role\": \"assistant\", \"content\": \"Hello.\"}]",
           false,
           "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nCompare "
           "<|vision_start|><|image_pad|><|vision_end|> and <|vision_start|><|image_pad|><|vision_end|>"
           "<|vision_start|><|video_pad|><|vision_end|>.<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n",
           __LINE__);
    expect("[{\"role\": \"user\", \"content\": []}]", false,
           "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<|im_end|>\n", __LINE__);
    expect("[]", true, "<|im_start|>assistant\n", __LINE__);
    mt_chat_template_free(tmpl);
    return check_report();
}
