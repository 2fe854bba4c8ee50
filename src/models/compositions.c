/* models/compositions: the architectures mitten runs, each a list of parts (see model.h). Adding a family adds the
 * parts it lacks and one entry here. */
#include <string.h>

#include "models/model.h"

extern const mt_vision_part mt_vision_qwen2_vl, mt_vision_qwen2_5_vl, mt_vision_qwen3_vl, mt_vision_internvit,
    mt_vision_internvit_hf;
extern const mt_processor_part mt_processor_qwen2_vl, mt_processor_qwen2_5_vl, mt_processor_qwen3_vl,
    mt_processor_internvl;

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

/* InternVL's fine-tuning scripts (internvl_chat_finetune.py with the shipped shell recipes: freeze_backbone,
 * mlp1 unfrozen, the LLM trained fully or by use_llm_lora) train the projector with the LLM: so does mitten train
 * when --train is not given. */
/* InternVL's language models: InternVLChatModel builds the one llm_config.architectures[0] names (InternVL 2.5:
 * InternLM2, InternVL3: Qwen2, InternVL3.5: Qwen3 / Qwen3-MoE, InternVL2-40B / -76B: Llama);
 * InternVLForConditionalGeneration the one of text_config.model_type, qwen2 when absent (InternVLConfig's default;
 * transformers has no internlm2 model type, but a converted folder may name the remote code's). */
static const char *const internvl_llms[] = {"Qwen2ForCausalLM", "qwen2", "Qwen3ForCausalLM", "qwen3",
                                            "Qwen3MoeForCausalLM", "qwen3_moe", "InternLM2ForCausalLM", "internlm2",
                                            "LlamaForCausalLM", "llama", NULL};
static const char *const internvl_hf_llms[] = {"qwen2", "qwen2", "qwen3", "qwen3", "qwen3_moe", "qwen3_moe",
                                               "internlm2", "internlm2", "llama", "llama", NULL};

static const mt_composition compositions[] = {
    {.name = "qwen2.5-vl", .architectures = NAMES("Qwen2_5_VLForConditionalGeneration"), .decoder_kind = "qwen2_vl",
     .vision = &mt_vision_qwen2_5_vl, .processor = &mt_processor_qwen2_5_vl, .text_config_key = "text_config",
     .text_prefixes = vl_text_prefixes, .vision_prefixes = vl_vision_prefixes,
     .default_chat_template = default_chat_template, .module_renames = qwen2_vl_renames},
    {.name = "qwen2-vl", .architectures = NAMES("Qwen2VLForConditionalGeneration"), .decoder_kind = "qwen2_vl",
     .vision = &mt_vision_qwen2_vl, .processor = &mt_processor_qwen2_vl, .text_config_key = "text_config",
     .text_prefixes = vl_text_prefixes, .vision_prefixes = vl_vision_prefixes,
     .default_chat_template = default_chat_template, .module_renames = qwen2_vl_renames},
    {.name = "qwen3-vl", .architectures = NAMES("Qwen3VLForConditionalGeneration"), .decoder_kind = "qwen3_vl",
     .vision = &mt_vision_qwen3_vl, .processor = &mt_processor_qwen3_vl, .text_config_key = "text_config",
     .text_prefixes = vl_text_prefixes, .vision_prefixes = vl_vision_prefixes},
    {.name = "qwen3-vl-moe", .architectures = NAMES("Qwen3VLMoeForConditionalGeneration"),
     .decoder_kind = "qwen3_vl_moe", .vision = &mt_vision_qwen3_vl, .processor = &mt_processor_qwen3_vl,
     .text_config_key = "text_config", .text_prefixes = vl_text_prefixes, .vision_prefixes = vl_vision_prefixes},
    /* InternVLChatConfig forces tie_word_embeddings false on the LLM, whatever llm_config says */
    {.name = "internvl-chat", .architectures = NAMES("InternVLChatModel"), .decoder_kind_key = "architectures",
     .decoder_kinds = internvl_llms, .vision = &mt_vision_internvit, .processor = &mt_processor_internvl,
     .text_config_key = "llm_config", .text_prefixes = NAMES("language_model.model."),
     .vision_prefixes = NAMES("vision_model."), .projector_prefixes = NAMES("mlp1."),
     .lm_head = "language_model.lm_head.weight", .untied_head = true, .image_token_text = "<IMG_CONTEXT>",
     .image_text = "<image>", .trains_projector_by_default = true},
    {.name = "internvl", .architectures = NAMES("InternVLForConditionalGeneration"), .decoder_kind = "qwen2",
     .decoder_kind_key = "model_type", .decoder_kinds = internvl_hf_llms, .vision = &mt_vision_internvit_hf,
     .processor = &mt_processor_internvl, .text_config_key = "text_config",
     .text_prefixes = NAMES("model.language_model."), .vision_prefixes = NAMES("model.vision_tower."),
     .projector_prefixes = NAMES("model.multi_modal_projector."), .image_token_text = "<IMG_CONTEXT>",
     .ignored_suffixes = NAMES("embeddings.mask_token"), .trains_projector_by_default = true},
    {.name = "qwen2", .architectures = NAMES("Qwen2ForCausalLM"), .decoder_kind = "qwen2",
     .text_prefixes = text_prefixes},
    {.name = "qwen3", .architectures = NAMES("Qwen3ForCausalLM"), .decoder_kind = "qwen3",
     .text_prefixes = text_prefixes},
    {.name = "qwen3-moe", .architectures = NAMES("Qwen3MoeForCausalLM"), .decoder_kind = "qwen3_moe",
     .text_prefixes = text_prefixes},
    {.name = "qwen2-moe", .architectures = NAMES("Qwen2MoeForCausalLM"), .decoder_kind = "qwen2_moe",
     .text_prefixes = text_prefixes},
    {.name = "llama", .architectures = NAMES("LlamaForCausalLM"), .decoder_kind = "llama",
     .text_prefixes = text_prefixes},
    {.name = "internlm2", .architectures = NAMES("InternLM2ForCausalLM"), .decoder_kind = "internlm2",
     .text_prefixes = text_prefixes},
};

const mt_composition *mt_composition_find(const char *architecture) {
    for (size_t c = 0; c < MT_ARRAY_LEN(compositions); c++)
        for (const char *const *a = compositions[c].architectures; *a; a++)
            if (strcmp(*a, architecture) == 0) return &compositions[c];
    return NULL;
}
