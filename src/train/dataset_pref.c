/* train/dataset_pref: one side of a preference pair, or a GRPO prompt, as the SFT sample object the normaliser
 * (dataset_norm.c) reads.
 *
 * The two layouts of dataset.h's preference table are told apart by "prompt": with it the pair is TRL's; without it,
 * "conversations" or "messages" make it LLaMA-Factory's. The chosen side is the conversation with the chosen answer
 * appended as its last turn, the rejected side the same with the rejected answer, so every rule of an SFT sample
 * (roles, order, placeholders, media) holds for each side, and the same pair fails the same way on both.
 */
#include <string.h>

#include "train/dataset_int.h"

static const char *const SIDE[2] = {"chosen", "rejected"};

static mt_status nomem(mt_err *err) { return mt_err_set(err, MT_ERR_NOMEM, "out of memory"); }

/* An answer given as a bare string: one assistant turn in the keys of the conversation it joins. */
static cJSON *answer_turn(const char *text, bool sharegpt) {
    cJSON *t = cJSON_CreateObject();
    if (t && (!cJSON_AddStringToObject(t, sharegpt ? "from" : "role", sharegpt ? "gpt" : "assistant") ||
              !cJSON_AddStringToObject(t, sharegpt ? "value" : "content", text))) {
        cJSON_Delete(t);
        return NULL;
    }
    return t;
}

/* Appends the answer of one side to turns: a string, a message object, or (TRL) a list of exactly one message. */
static mt_status add_answer(cJSON *turns, const cJSON *ans, const char *name, bool sharegpt, bool list_ok,
                            mt_err *err) {
    if (cJSON_IsArray(ans) && list_ok) {
        if (cJSON_GetArraySize(ans) != 1)
            return mt_err_set(err, MT_ERR_FORMAT, "\"%s\" holds %d messages; the answer must be one assistant message",
                              name, cJSON_GetArraySize(ans));
        ans = ans->child;
    }
    cJSON *t = cJSON_IsString(ans) ? answer_turn(ans->valuestring, sharegpt)
               : cJSON_IsObject(ans) ? cJSON_Duplicate(ans, true) : NULL;
    if (!t && (cJSON_IsString(ans) || cJSON_IsObject(ans))) return nomem(err);
    if (!t)
        return mt_err_set(err, MT_ERR_FORMAT, "\"%s\" must be a string or a message%s", name,
                          list_ok ? " (or a list of one message)" : "");
    if (!cJSON_AddItemToArray(turns, t)) {
        cJSON_Delete(t);
        return nomem(err);
    }
    return MT_OK;
}

static bool uses_sharegpt_keys(const cJSON *turns) {
    const cJSON *first = cJSON_IsArray(turns) ? turns->child : NULL;
    return first && cJSON_GetObjectItemCaseSensitive(first, "from");
}

mt_status mt_ds_pref_side(const cJSON *obj, int side, cJSON **out, mt_err *err) {
    *out = NULL;
    if (!cJSON_IsObject(obj)) return mt_err_set(err, MT_ERR_FORMAT, "a preference pair must be a JSON object");
    for (int k = 0; k < 2; k++)
        if (!cJSON_GetObjectItemCaseSensitive(obj, SIDE[k]))
            return mt_err_set(err, MT_ERR_FORMAT, "no \"%s\" answer (a preference pair needs \"chosen\" and "
                              "\"rejected\")", SIDE[k]);
    const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(obj, "prompt");
    const char *key = cJSON_GetObjectItemCaseSensitive(obj, "conversations") ? "conversations" : "messages";
    const cJSON *turns = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (prompt && turns)
        return mt_err_set(err, MT_ERR_FORMAT, "both \"prompt\" (TRL) and \"%s\" (LLaMA-Factory): which one is the "
                          "prompt?", key);
    if (!prompt && !turns)
        return mt_err_set(err, MT_ERR_FORMAT, "no prompt: a preference pair needs \"prompt\" (TRL) or "
                          "\"conversations\" / \"messages\" (LLaMA-Factory)");
    if (prompt && !cJSON_IsString(prompt) && !cJSON_IsArray(prompt))
        return mt_err_set(err, MT_ERR_FORMAT, "\"prompt\" must be a string or a list of messages");
    if (turns && !cJSON_IsArray(turns)) return mt_err_set(err, MT_ERR_FORMAT, "\"%s\" must be a list of turns", key);
    cJSON *o = cJSON_Duplicate(obj, true);
    if (!o) return nomem(err);
    cJSON_DeleteItemFromObjectCaseSensitive(o, "chosen");
    cJSON_DeleteItemFromObjectCaseSensitive(o, "rejected");
    cJSON *list;
    if (prompt) {
        cJSON_DeleteItemFromObjectCaseSensitive(o, "prompt");
        if (cJSON_IsString(prompt)) {
            cJSON *u = cJSON_CreateObject();
            list = cJSON_CreateArray();
            bool ok = u && list && cJSON_AddStringToObject(u, "role", "user") &&
                      cJSON_AddStringToObject(u, "content", prompt->valuestring) && cJSON_AddItemToArray(list, u);
            if (!ok) cJSON_Delete(u);
            if (!ok || !cJSON_AddItemToObject(o, "messages", list)) {
                cJSON_Delete(list);
                cJSON_Delete(o);
                return nomem(err);
            }
        } else {
            list = cJSON_Duplicate(prompt, true);
            if (!list || !cJSON_AddItemToObject(o, "messages", list)) {
                cJSON_Delete(list);
                cJSON_Delete(o);
                return nomem(err);
            }
        }
    } else {
        list = cJSON_GetObjectItemCaseSensitive(o, key);
    }
    const cJSON *ans = cJSON_GetObjectItemCaseSensitive(obj, SIDE[side]);
    mt_status st = add_answer(list, ans, SIDE[side], uses_sharegpt_keys(list), prompt != NULL, err);
    /* the other side is checked too, so a pair fails whole, never on one side only */
    const cJSON *other = cJSON_GetObjectItemCaseSensitive(obj, SIDE[!side]);
    if (!st) {
        cJSON *probe = cJSON_CreateArray();
        st = probe ? add_answer(probe, other, SIDE[!side], false, prompt != NULL, err) : nomem(err);
        cJSON_Delete(probe);
    }
    if (st) {
        cJSON_Delete(o);
        return st;
    }
    *out = o;
    return MT_OK;
}

mt_status mt_ds_prompt_sample(const cJSON *obj, cJSON **out, mt_err *err) {
    *out = NULL;
    if (!cJSON_IsObject(obj)) return mt_err_set(err, MT_ERR_FORMAT, "a prompt sample must be a JSON object");
    const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(obj, "prompt");
    const char *key = cJSON_GetObjectItemCaseSensitive(obj, "conversations") ? "conversations" : "messages";
    const cJSON *turns = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (prompt && turns)
        return mt_err_set(err, MT_ERR_FORMAT, "both \"prompt\" (TRL) and \"%s\": which one is the prompt?", key);
    if (!prompt && !turns)
        return mt_err_set(err, MT_ERR_FORMAT, "no prompt: a GRPO sample needs \"prompt\" (TRL) or \"conversations\" / "
                          "\"messages\" ending with the user's turn");
    if (prompt && !cJSON_IsString(prompt) && !cJSON_IsArray(prompt))
        return mt_err_set(err, MT_ERR_FORMAT, "\"prompt\" must be a string or a list of messages");
    if (turns && !cJSON_IsArray(turns)) return mt_err_set(err, MT_ERR_FORMAT, "\"%s\" must be a list of turns", key);
    /* only the keys the normaliser reads: the reward fields ("answer", ...) stay out of the conversation */
    cJSON *o = cJSON_CreateObject(), *list = NULL;
    if (!o) return nomem(err);
    static const char *const media[] = {"images", "image", "videos", "video", "tools", "id"};
    for (size_t i = 0; i < MT_ARRAY_LEN(media); i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, media[i]);
        cJSON *c = v ? cJSON_Duplicate(v, true) : NULL;
        if (v && (!c || !cJSON_AddItemToObject(o, media[i], c))) {
            cJSON_Delete(c);
            cJSON_Delete(o);
            return nomem(err);
        }
    }
    if (prompt && cJSON_IsString(prompt)) {
        cJSON *u = cJSON_CreateObject();
        list = cJSON_CreateArray();
        bool ok = u && list && cJSON_AddStringToObject(u, "role", "user") &&
                  cJSON_AddStringToObject(u, "content", prompt->valuestring) && cJSON_AddItemToArray(list, u);
        if (!ok) cJSON_Delete(u);
    } else {
        list = cJSON_Duplicate(prompt ? prompt : turns, true);
    }
    if (!list || !cJSON_AddItemToObject(o, prompt ? "messages" : key, list)) {
        cJSON_Delete(list);
        cJSON_Delete(o);
        return nomem(err);
    }
    cJSON *t = answer_turn("", uses_sharegpt_keys(list));
    if (!t || !cJSON_AddItemToArray(list, t)) {
        cJSON_Delete(t);
        cJSON_Delete(o);
        return nomem(err);
    }
    *out = o;
    return MT_OK;
}
