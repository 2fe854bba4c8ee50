/* serve/tool_calls: <tool_call> blocks to OpenAI tool_calls (see tool_calls.h). */
#define _GNU_SOURCE /* memmem */
#include "serve/tool_calls.h"

#include <stdio.h>
#include <string.h>

#include "base/json.h"

#define END_TAG "</tool_call>"

static const char *skip_space(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
    return p;
}

/* One block's JSON as a tool call. */
static mt_status one_call(const char *json, size_t n, uint64_t id, cJSON *calls, mt_err *err) {
    cJSON *obj;
    mt_status st = mt_json_parse(json, n, "tool call", &obj, err);
    if (st) return MT_ERR_FORMAT;
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(obj, "name");
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(obj, "arguments");
    if (!cJSON_IsObject(obj) || !cJSON_IsString(name)) {
        cJSON_Delete(obj);
        return mt_err_set(err, MT_ERR_FORMAT, "a tool call is not an object with a \"name\"");
    }
    char *args_text = !args ? mt_strdup("{}") : cJSON_IsString(args) ? mt_strdup(args->valuestring)
                                                                   : mt_json_print(args, false);
    char id_text[40];
    snprintf(id_text, sizeof id_text, "call_%016llx", (unsigned long long)id);
    cJSON *call = cJSON_CreateObject(), *fn = cJSON_CreateObject();
    bool ok = args_text && call && fn && cJSON_AddStringToObject(call, "id", id_text) &&
              cJSON_AddStringToObject(call, "type", "function") && cJSON_AddItemToObject(call, "function", fn);
    if (!ok) cJSON_Delete(fn);
    ok = ok && cJSON_AddStringToObject(fn, "name", name->valuestring) &&
         cJSON_AddStringToObject(fn, "arguments", args_text) && cJSON_AddItemToArray(calls, call);
    if (!ok) cJSON_Delete(call);
    mt_free(args_text);
    cJSON_Delete(obj);
    return ok ? MT_OK : mt_err_set(err, MT_ERR_NOMEM, "out of memory");
}

mt_status mt_tool_calls_parse(const char *text, size_t n, uint64_t id_seed, cJSON **out, mt_err *err) {
    const char *p = text, *end = text + n;
    cJSON *calls = cJSON_CreateArray();
    if (!calls) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    mt_status st = MT_OK;
    uint64_t id = id_seed;
    while (!st && (p = skip_space(p, end)) < end) {
        size_t tag = strlen(MT_TOOL_CALL_TAG);
        if ((size_t)(end - p) < tag || memcmp(p, MT_TOOL_CALL_TAG, tag)) {
            st = mt_err_set(err, MT_ERR_FORMAT, "text after a tool call");
            break;
        }
        p += tag;
        const char *close = memmem(p, (size_t)(end - p), END_TAG, strlen(END_TAG));
        /* the answer may end without the closing tag, or in the middle of it (the end-of-turn token or max_tokens
         * came first) */
        const char *stop = close ? close : end;
        if (!close)
            for (size_t k = MT_MIN((size_t)(stop - p), strlen(END_TAG) - 1); k > 0; k--)
                if (!memcmp(stop - k, END_TAG, k)) {
                    stop -= k;
                    break;
                }
        st = one_call(p, (size_t)(stop - p), id, calls, err);
        id = id * 6364136223846793005ull + 1442695040888963407ull;
        p = close ? close + strlen(END_TAG) : end;
    }
    if (!st && cJSON_GetArraySize(calls) == 0) st = mt_err_set(err, MT_ERR_FORMAT, "no tool call");
    if (st) {
        cJSON_Delete(calls);
        return st;
    }
    *out = calls;
    return MT_OK;
}
