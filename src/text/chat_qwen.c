/* text/chat_qwen: see chat_qwen.h; follows Qwen/Qwen2.5-VL-3B-Instruct chat_template.json. */
#include "text/chat_qwen.h"

#include <string.h>

#include "text/text_int.h"

static const char DEFAULT_SYSTEM[] = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n";
static const char IMAGE[] = "<|vision_start|><|image_pad|><|vision_end|>";
static const char VIDEO[] = "<|vision_start|><|video_pad|><|vision_end|>";

static bool put(mt_tbuf *b, const char *s) { return mt_tbuf_append(b, s, strlen(s)); }

mt_status mt_chat_format(const mt_chat_message *msgs, size_t n, bool add_generation_prompt, char **out, mt_err *err) {
    if ((!msgs && n) || !out) return mt_err_set(err, MT_ERR_INVALID_ARG, "chat: NULL messages or output");
    for (size_t i = 0; i < n; i++) {
        if (!msgs[i].role) return mt_err_set(err, MT_ERR_INVALID_ARG, "chat: messages[%zu] has no role", i);
        if (!msgs[i].parts && msgs[i].n_parts)
            return mt_err_set(err, MT_ERR_INVALID_ARG, "chat: messages[%zu] has NULL parts", i);
        for (size_t k = 0; k < msgs[i].n_parts; k++) {
            const mt_chat_part *p = &msgs[i].parts[k];
            if (p->kind != MT_CHAT_TEXT && p->kind != MT_CHAT_IMAGE && p->kind != MT_CHAT_VIDEO)
                return mt_err_set(err, MT_ERR_INVALID_ARG, "chat: messages[%zu].parts[%zu]: unknown kind %d", i, k,
                                  p->kind);
            if (p->kind == MT_CHAT_TEXT && !p->text)
                return mt_err_set(err, MT_ERR_INVALID_ARG, "chat: messages[%zu].parts[%zu]: text part with NULL text",
                                  i, k);
        }
    }
    mt_tbuf b = {0};
    bool ok = mt_tbuf_reserve(&b, 256);
    for (size_t i = 0; i < n && ok; i++) {
        if (i == 0 && strcmp(msgs[0].role, "system") != 0) ok = put(&b, DEFAULT_SYSTEM);
        ok = ok && put(&b, "<|im_start|>") && put(&b, msgs[i].role) && put(&b, "\n");
        for (size_t k = 0; k < msgs[i].n_parts && ok; k++) {
            const mt_chat_part *p = &msgs[i].parts[k];
            ok = put(&b, p->kind == MT_CHAT_IMAGE ? IMAGE : p->kind == MT_CHAT_VIDEO ? VIDEO : p->text);
        }
        ok = ok && put(&b, "<|im_end|>\n");
    }
    if (ok && add_generation_prompt) ok = put(&b, "<|im_start|>assistant\n");
    if (!ok) {
        mt_free(b.data);
        return mt_err_set(err, MT_ERR_NOMEM, "chat: out of memory");
    }
    *out = b.data;
    return MT_OK;
}
