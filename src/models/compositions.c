/* models/compositions: the architectures mitten runs, each a list of parts (see model.h). Adding a family adds the
 * parts it lacks and one entry here. */
#include <string.h>

#include "models/model.h"

extern const mt_vision_part mt_vision_qwen2_vl, mt_vision_qwen2_5_vl, mt_vision_qwen3_vl;
extern const mt_processor_part mt_processor_qwen_vl, mt_processor_qwen3_vl;

/* The chat template of the Qwen2-VL / Qwen2.5-VL checkpoints (ChatML with vision placeholders, a default system
 * message), used when a folder ships none of its own. Images and videos become <|vision_start|><|image_pad|>
 * <|vision_end|> (or <|video_pad|>) where their part stands in the message. */
static const char default_chat_template[] =
    "{%- set image_count = namespace(value=0) -%}\n"
    "{%- set video_count = namespace(value=0) -%}\n"
    "{%- for message in messages -%}\n"
    "    {%- if loop.first and message['role'] != 'system' %}\n"
    "<|im_start|>system\n"
    "You are a helpful assistant.<|im_end|>\n"
    "    {% endif -%}\n"
    "<|im_start|>{{ message['role'] }}\n"
    "    {% if message['content'] is string -%}\n"
    "        {{ message['content'] }}<|im_end|>\n"
    "    {%- else -%}\n"
    "        {%- for content in message['content'] -%}\n"
    "            {%- if content['type'] == 'image' or 'image' in content or 'image_url' in content -%}\n"
    "                {%- set image_count.value = image_count.value + 1 -%}\n"
    "                {%- if add_vision_id %}Picture {{ image_count.value }}: {% endif -%}\n"
    "<|vision_start|><|image_pad|><|vision_end|>\n"
    "            {%- elif content['type'] == 'video' or 'video' in content -%}\n"
    "                {%- set video_count.value = video_count.value + 1 -%}\n"
    "                {%- if add_vision_id %}Video {{ video_count.value }}: {% endif -%}\n"
    "<|vision_start|><|video_pad|><|vision_end|>\n"
    "            {%- elif 'text' in content -%}\n"
    "                {{ content['text'] }}\n"
    "            {%- endif -%}\n"
    "        {%- endfor -%}<|im_end|>\n"
    "    {%- endif %}\n"
    "\n"
    "{% endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "<|im_start|>assistant\n"
    "{% endif -%}\n";

/* transformers 4.52 moved the language model under model.language_model and the vision tower under model.visual;
 * published Qwen2-VL / Qwen2.5-VL checkpoints keep the old names, which it maps on load */
static const char *const qwen2_vl_renames[] = {"model.layers.", "model.language_model.layers.",
                                               "model.embed_tokens", "model.language_model.embed_tokens",
                                               "model.norm", "model.language_model.norm",
                                               "visual.", "model.visual.", NULL};
static const char *const vl_text_prefixes[] = {"model.language_model.", "model.", NULL};
static const char *const vl_vision_prefixes[] = {"model.visual.", "visual.", NULL};
static const char *const text_prefixes[] = {"model.", NULL};

#define NAMES(...) ((const char *const[]){__VA_ARGS__, NULL})

static const mt_composition compositions[] = {
    {.name = "qwen2.5-vl", .architectures = NAMES("Qwen2_5_VLForConditionalGeneration"), .decoder_kind = "qwen2_vl",
     .vision = &mt_vision_qwen2_5_vl, .processor = &mt_processor_qwen_vl, .text_config_key = "text_config",
     .text_prefixes = vl_text_prefixes, .vision_prefixes = vl_vision_prefixes,
     .default_chat_template = default_chat_template, .module_renames = qwen2_vl_renames},
    {.name = "qwen2-vl", .architectures = NAMES("Qwen2VLForConditionalGeneration"), .decoder_kind = "qwen2_vl",
     .vision = &mt_vision_qwen2_vl, .processor = &mt_processor_qwen_vl, .text_config_key = "text_config",
     .text_prefixes = vl_text_prefixes, .vision_prefixes = vl_vision_prefixes,
     .default_chat_template = default_chat_template, .module_renames = qwen2_vl_renames},
    {.name = "qwen3-vl", .architectures = NAMES("Qwen3VLForConditionalGeneration"), .decoder_kind = "qwen3_vl",
     .vision = &mt_vision_qwen3_vl, .processor = &mt_processor_qwen3_vl, .text_config_key = "text_config",
     .text_prefixes = vl_text_prefixes, .vision_prefixes = vl_vision_prefixes},
    {.name = "qwen3-vl-moe", .architectures = NAMES("Qwen3VLMoeForConditionalGeneration"),
     .decoder_kind = "qwen3_vl_moe", .vision = &mt_vision_qwen3_vl, .processor = &mt_processor_qwen3_vl,
     .text_config_key = "text_config", .text_prefixes = vl_text_prefixes, .vision_prefixes = vl_vision_prefixes},
    {.name = "qwen2", .architectures = NAMES("Qwen2ForCausalLM"), .decoder_kind = "qwen2",
     .text_prefixes = text_prefixes},
    {.name = "qwen3", .architectures = NAMES("Qwen3ForCausalLM"), .decoder_kind = "qwen3",
     .text_prefixes = text_prefixes},
    {.name = "qwen3-moe", .architectures = NAMES("Qwen3MoeForCausalLM"), .decoder_kind = "qwen3_moe",
     .text_prefixes = text_prefixes},
    {.name = "qwen2-moe", .architectures = NAMES("Qwen2MoeForCausalLM"), .decoder_kind = "qwen2_moe",
     .text_prefixes = text_prefixes},
};

const mt_composition *mt_composition_find(const char *architecture) {
    for (size_t c = 0; c < MT_ARRAY_LEN(compositions); c++)
        for (const char *const *a = compositions[c].architectures; *a; a++)
            if (strcmp(*a, architecture) == 0) return &compositions[c];
    return NULL;
}
