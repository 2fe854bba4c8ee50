/* text/chat_qwen: the Qwen2.5-VL chat format (ChatML with vision placeholders), as its chat_template.json renders it
 * with add_vision_id unset. One function, so that a Jinja engine running the model's own template can replace it.
 *
 *     <|im_start|>system\nYou are a helpful assistant.<|im_end|>\n     <- only when the first message is not system
 *     <|im_start|>{role}\n{parts}<|im_end|>\n                          <- each message
 *     <|im_start|>assistant\n                                          <- add_generation_prompt
 *
 * Each part in order: text verbatim; an image "<|vision_start|><|image_pad|><|vision_end|>"; a video
 * "<|vision_start|><|video_pad|><|vision_end|>". The processor later repeats each pad token once per merged patch.
 */
#ifndef MT_CHAT_QWEN_H
#define MT_CHAT_QWEN_H

#include <stdbool.h>

#include "base/base.h"

enum { MT_CHAT_TEXT = 0, MT_CHAT_IMAGE = 1, MT_CHAT_VIDEO = 2 };

typedef struct mt_chat_part {
    int kind;         /* MT_CHAT_TEXT, MT_CHAT_IMAGE, MT_CHAT_VIDEO */
    const char *text; /* MT_CHAT_TEXT only, NUL-terminated */
} mt_chat_part;

typedef struct mt_chat_message {
    const char *role; /* "system", "user", "assistant", ... */
    const mt_chat_part *parts;
    size_t n_parts;
} mt_chat_message;

/* Renders msgs into *out (NUL-terminated, mt_malloc). MT_ERR_INVALID_ARG names the message and part at fault
 * (a NULL role or text, an unknown kind). */
mt_status mt_chat_format(const mt_chat_message *msgs, size_t n, bool add_generation_prompt, char **out, mt_err *err);

#endif
