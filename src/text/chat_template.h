/* text/chat_template: a checkpoint's chat template found as transformers finds it, rendered by text/jinja.
 *
 *     mt_chat_template *t;
 *     mt_chat_template_load("Qwen3-8B/", NULL, &t, &err);
 *     mt_chat_template_render(t, messages, NULL, true, NULL, &prompt, &len, &err);   // prompt: mt_malloc'd
 *
 * Where the template comes from, first match wins:
 *
 *   | file                   | field                                              |
 *   |------------------------|----------------------------------------------------|
 *   | chat_template.jinja    | the whole file                                     |
 *   | chat_template.json     | "chat_template": a string or [{name, template}]    |
 *   | tokenizer_config.json  | "chat_template": a string or [{name, template}]    |
 *
 * Named templates: the one called name; with name NULL, "tool_use" when tools are given and it exists, else
 * "default". Special tokens (bos_token, eos_token, unk_token, sep_token, pad_token, cls_token, mask_token: strings
 * or {"content": ...}; additional_special_tokens) come from tokenizer_config.json when it exists.
 *
 * Variables a render sees, as transformers' apply_chat_template passes them: messages, tools (null when none),
 * documents (null), add_generation_prompt, the special tokens that are set, then every member of extra_kwargs
 * (enable_thinking, ...), which may replace a special token but not messages, tools or add_generation_prompt;
 * extra_kwargs' "documents" (an array) is the documents variable, as apply_chat_template(documents=...) passes it.
 */
#ifndef MT_CHAT_TEMPLATE_H
#define MT_CHAT_TEMPLATE_H

#include <cjson/cJSON.h>
#include <stdbool.h>

#include "base/base.h"

typedef struct mt_chat_template mt_chat_template;

/* MT_ERR_IO when the folder has no template in any of the three places; MT_ERR_FORMAT for a malformed file or
 * template (what:LINE:COL); MT_ERR_INVALID_ARG when name is not among the named templates. */
mt_status mt_chat_template_load(const char *model_dir, const char *name, mt_chat_template **out, mt_err *err);

/* Whether the folder has a chat template where mt_chat_template_load looks (a file that exists, readable or not, or
 * a "chat_template" in tokenizer_config.json): when it does, a load failure is an error, never a cue to fall back. */
bool mt_chat_template_present(const char *model_dir);

/* A template from source, with no special tokens. */
mt_status mt_chat_template_parse(const char *source, size_t len, const char *what, mt_chat_template **out,
                                 mt_err *err);

/* messages: an array of {role, content, ...} (content a string or a list of parts); tools: an array or NULL;
 * extra_kwargs: an object or NULL. *out is NUL-terminated and mt_malloc'd. Errors as mt_jinja_render's; a
 * raise_exception in the template gives MT_ERR_INVALID_ARG with its message. */
mt_status mt_chat_template_render(const mt_chat_template *t, const cJSON *messages, const cJSON *tools,
                                  bool add_generation_prompt, const cJSON *extra_kwargs, char **out, size_t *out_len,
                                  mt_err *err);

/* For templates that take text only: InternVL's original repos ship a ChatML template that concatenates
 * message['content'], and their chat() (as vLLM and lmdeploy) writes "<image>\n" into the question, then swaps each
 * "<image>" of the rendered prompt for the image's tokens. With a marker set, a render writes every content list as
 * one string - text parts as they are, an image or video part as the marker followed by a newline unless the text after it
 * starts with one (so LLaVA-style "<image>\nQ" data keeps its one newline) - and each marker in the rendered prompt
 * becomes token (the image placeholder token's text). Other part types are refused. marker NULL turns it off. */
mt_status mt_chat_template_set_image_text(mt_chat_template *t, const char *marker, const char *token, mt_err *err);

/* The templates as loaded: how many, and the source of the i-th (its name in *name, NULL for an unnamed one; its
 * length in *len), or NULL past the end. */
size_t mt_chat_template_count(const mt_chat_template *t);
const char *mt_chat_template_source(const mt_chat_template *t, size_t i, const char **name, size_t *len);

/* The special token the template sees under key ("eos_token", ...), or NULL (also when it holds U+0000). */
const char *mt_chat_template_token(const mt_chat_template *t, const char *key);

void mt_chat_template_free(mt_chat_template *t);

#endif
