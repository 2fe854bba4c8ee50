/* serve/oai_request: OpenAI request bodies checked and converted (see oai_request.h). */
#define _GNU_SOURCE
#include "serve/oai_request.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base64.h"
#include "base/file.h"
#include "base/json.h"

/* Records a refusal of field param; returns MT_ERR_INVALID_ARG (or st) for `return bad(...)`. */
static mt_status MT_PRINTF(5, 6) refuse(mt_oai_fail *f, mt_err *err, mt_status st, const char *param, const char *fmt, ...) {
    f->http = 400;
    f->type = "invalid_request_error";
    f->code = NULL;
    snprintf(f->param, sizeof f->param, "%s", param);
    char msg[MT_ERR_MSG_MAX - 140];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return mt_err_set(err, st, "%s%s%s", param, *param ? ": " : "", msg);
}

#define BAD(param, ...) refuse(fail, err, MT_ERR_INVALID_ARG, param, __VA_ARGS__)

static const char *type_name(const cJSON *v) {
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsNull(v)) return "null";
    if (cJSON_IsArray(v)) return "an array";
    return "an object";
}

/* A number field in [lo, hi] (absent or null: *out untouched). */
static mt_status num_field(const cJSON *body, const char *key, double lo, double hi, double *out, mt_oai_fail *fail,
                           mt_err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, key);
    if (!v || cJSON_IsNull(v)) return MT_OK;
    if (!cJSON_IsNumber(v)) return BAD(key, "must be a number, not %s", type_name(v));
    if (!(v->valuedouble >= lo && v->valuedouble <= hi)) return BAD(key, "%g is outside [%g, %g]", v->valuedouble, lo, hi);
    *out = v->valuedouble;
    return MT_OK;
}

static mt_status int_field(const cJSON *body, const char *key, double lo, double hi, int64_t *out, mt_oai_fail *fail,
                           mt_err *err) {
    double d = NAN;
    mt_status st = num_field(body, key, lo, hi, &d, fail, err);
    if (st || isnan(d)) return st;
    if (d != floor(d)) return BAD(key, "must be an integer, not %g", d);
    *out = (int64_t)d;
    return MT_OK;
}

static mt_status bool_field(const cJSON *body, const char *key, bool *out, mt_oai_fail *fail, mt_err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, key);
    if (!v || cJSON_IsNull(v)) return MT_OK;
    if (!cJSON_IsBool(v)) return BAD(key, "must be true or false, not %s", type_name(v));
    *out = cJSON_IsTrue(v);
    return MT_OK;
}

static mt_status sampling(const cJSON *b, mt_oai_request *r, mt_oai_fail *fail, mt_err *err) {
    double t = r->sampling.temperature, top_p = r->sampling.top_p, min_p = r->sampling.min_p;
    double pres = 0, freq = 0, rep = r->sampling.repetition_penalty;
    int64_t top_k = r->sampling.top_k, seed = 0, n = 1, mx = 0, mcx = 0;
    mt_status st = num_field(b, "temperature", 0, 2, &t, fail, err);
    if (!st) st = num_field(b, "top_p", 0, 1, &top_p, fail, err);
    if (!st && top_p <= 0) st = BAD("top_p", "must be above 0");
    if (!st) st = num_field(b, "min_p", 0, 1, &min_p, fail, err);
    if (!st) st = num_field(b, "presence_penalty", -2, 2, &pres, fail, err);
    if (!st) st = num_field(b, "frequency_penalty", -2, 2, &freq, fail, err);
    if (!st) st = num_field(b, "repetition_penalty", 0, 1e6, &rep, fail, err);
    if (!st && rep <= 0) st = BAD("repetition_penalty", "must be above 0");
    /* top_k -1 means off, as vLLM and llama.cpp take it */
    if (!st) st = int_field(b, "top_k", -1, 1e9, &top_k, fail, err);
    if (!st) st = int_field(b, "seed", 0, 1.8e19, &seed, fail, err);
    if (!st) st = int_field(b, "n", 1, 1e9, &n, fail, err);
    if (!st && n != 1) st = BAD("n", "only n = 1 is served (one answer per request); send %lld requests instead", (long long)n);
    if (!st) st = int_field(b, "max_tokens", 1, 1e12, &mx, fail, err);
    if (!st) st = int_field(b, "max_completion_tokens", 1, 1e12, &mcx, fail, err);
    if (!st) st = int_field(b, "min_tokens", 0, 1e12, &r->min_tokens, fail, err);
    if (!st) st = bool_field(b, "ignore_eos", &r->ignore_eos, fail, err);
    if (st) return st;
    r->sampling.temperature = (float)t;
    r->sampling.top_p = (float)top_p;
    r->sampling.min_p = (float)min_p;
    r->sampling.presence_penalty = (float)pres;
    r->sampling.frequency_penalty = (float)freq;
    r->sampling.repetition_penalty = (float)rep;
    r->sampling.top_k = top_k < 0 ? 0 : top_k;
    const cJSON *given = cJSON_GetObjectItemCaseSensitive(b, "seed");
    r->sampling.seed = given && !cJSON_IsNull(given) ? (uint64_t)seed : MT_SEED_RANDOM;
    r->max_tokens = mcx ? mcx : mx;
    return MT_OK;
}

static mt_status stops(const cJSON *b, mt_oai_request *r, mt_oai_fail *fail, mt_err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(b, "stop");
    if (!v || cJSON_IsNull(v)) return MT_OK;
    if (cJSON_IsString(v)) {
        if (mt_json_has_nul(v->valuestring)) return BAD("stop", "a stop string holding U+0000 is not supported");
        r->stops[r->n_stops++] = v->valuestring;
        return MT_OK;
    }
    if (!cJSON_IsArray(v)) return BAD("stop", "must be a string or an array of strings, not %s", type_name(v));
    if (cJSON_GetArraySize(v) > MT_MAX_STOPS) return BAD("stop", "at most %d stop strings", MT_MAX_STOPS);
    const cJSON *s;
    cJSON_ArrayForEach(s, v) {
        if (!cJSON_IsString(s)) return BAD("stop", "each stop must be a string, not %s", type_name(s));
        if (mt_json_has_nul(s->valuestring)) return BAD("stop", "a stop string holding U+0000 is not supported");
        r->stops[r->n_stops++] = s->valuestring;
    }
    return MT_OK;
}

/* ---- images ---- */

/* The real path of a local file the client named, when it lies under --allow-files (*real: free()). */
static mt_status allowed_file(const char *path, const char *param, const mt_oai_limits *lim, char **real,
                              mt_oai_fail *fail, mt_err *err) {
    if (!lim->allow_files)
        return BAD(param, "local files are not served (start the server with --allow-files DIR to allow a folder)");
    *real = realpath(path, NULL);
    if (!*real) return BAD(param, "%s: no such file", path);
    size_t n = strlen(lim->allow_files);
    bool inside = strncmp(*real, lim->allow_files, n) == 0 && ((*real)[n] == '/' || lim->allow_files[n - 1] == '/');
    if (!inside) {
        free(*real);
        *real = NULL;
        return BAD(param, "%s is not a file under the --allow-files folder", path);
    }
    return MT_OK;
}

static mt_status image_from_file(const char *path, const char *param, const mt_oai_limits *lim, mt_image *out,
                                 mt_oai_fail *fail, mt_err *err) {
    char *real;
    mt_status st = allowed_file(path, param, lim, &real, fail, err);
    if (st) return st;
    st = mt_image_load(real, lim->max_image_pixels, out, err);
    free(real);
    if (st) return refuse(fail, err, st == MT_ERR_NOMEM ? st : MT_ERR_INVALID_ARG, param, "%s", err->msg);
    return MT_OK;
}

static mt_status image_from_url(const char *url, const char *param, const mt_oai_limits *lim, mt_image *out,
                                mt_oai_fail *fail, mt_err *err) {
    if (!strncmp(url, "http://", 7) || !strncmp(url, "https://", 8))
        return BAD(param, "this server fetches nothing from the network: send the image as a data: URL "
                          "(data:image/png;base64,...)");
    if (!strncmp(url, "file://", 7)) return image_from_file(url + 7, param, lim, out, fail, err);
    if (url[0] == '/') return image_from_file(url, param, lim, out, fail, err);
    if (strncmp(url, "data:", 5))
        return BAD(param, "must be a data: URL (data:image/png;base64,...), not '%.40s'", url);
    const char *comma = strchr(url, ',');
    if (!comma) return BAD(param, "a data: URL needs a comma before its data");
    size_t head = (size_t)(comma - url);
    if (head < 12 || strncmp(comma - 7, ";base64", 7))
        return BAD(param, "only base64 data: URLs are taken (data:image/...;base64,...)");
    if (strncmp(url + 5, "image/", 6)) return BAD(param, "the data: URL's type is not image/...: '%.*s'", (int)(head - 5), url + 5);
    uint8_t *bytes;
    size_t nb;
    mt_status st = mt_base64_decode(comma + 1, strlen(comma + 1), param, &bytes, &nb, err);
    if (st) return refuse(fail, err, st == MT_ERR_NOMEM ? st : MT_ERR_INVALID_ARG, "", "%s", err->msg);
    st = mt_image_decode(bytes, nb, param, lim->max_image_pixels, out, err);
    mt_free(bytes);
    if (st) return refuse(fail, err, st == MT_ERR_NOMEM ? st : MT_ERR_INVALID_ARG, "", "%s", err->msg);
    return MT_OK;
}

/* A video_url: a local path under --allow-files (kept as its real path) or a base64 data:video/... URL (its bytes
 * kept); either is decoded later by the model's processor. */
static mt_status video_from_url(const char *url, const char *param, const mt_oai_limits *lim, mt_image_ref *out,
                                mt_oai_fail *fail, mt_err *err) {
    *out = (mt_image_ref){.kind = MT_MEDIA_VIDEO};
    if (!strncmp(url, "http://", 7) || !strncmp(url, "https://", 8))
        return BAD(param, "this server fetches nothing from the network: send the video as a data: URL "
                          "(data:video/mp4;base64,...)");
    if (!strncmp(url, "file://", 7) || url[0] == '/') {
        char *real;
        mt_status st = allowed_file(url[0] == '/' ? url : url + 7, param, lim, &real, fail, err);
        if (st) return st;
        out->path = mt_strdup(real);
        free(real);
        return out->path ? MT_OK : refuse(fail, err, MT_ERR_NOMEM, "", "out of memory");
    }
    if (strncmp(url, "data:", 5))
        return BAD(param, "must be a data: URL (data:video/mp4;base64,...), not '%.40s'", url);
    const char *comma = strchr(url, ',');
    if (!comma) return BAD(param, "a data: URL needs a comma before its data");
    size_t head = (size_t)(comma - url);
    if (head < 12 || strncmp(comma - 7, ";base64", 7))
        return BAD(param, "only base64 data: URLs are taken (data:video/...;base64,...)");
    if (strncmp(url + 5, "video/", 6))
        return BAD(param, "the data: URL's type is not video/...: '%.*s'", (int)MT_MIN(head - 5, 64), url + 5);
    uint8_t *bytes;
    size_t nb;
    mt_status st = mt_base64_decode(comma + 1, strlen(comma + 1), param, &bytes, &nb, err);
    if (st) return refuse(fail, err, st == MT_ERR_NOMEM ? st : MT_ERR_INVALID_ARG, "", "%s", err->msg);
    if (nb == 0) {
        mt_free(bytes);
        return BAD(param, "the data: URL holds no bytes");
    }
    out->data = bytes;
    out->size = nb;
    return MT_OK;
}

/* ---- messages ---- */

static bool add_string(cJSON *obj, const char *key, const char *value) {
    return cJSON_AddStringToObject(obj, key, value) != NULL;
}

/* One content part: a text part, or an image (decoded into r->images). */
static mt_status content_part(const cJSON *part, const char *param, cJSON *parts, mt_oai_request *r,
                              const mt_oai_limits *lim, mt_oai_fail *fail, mt_err *err) {
    if (!cJSON_IsObject(part)) return BAD(param, "a content part must be an object, not %s", type_name(part));
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(part, "type");
    if (!cJSON_IsString(type)) return BAD(param, "a content part needs a \"type\" string");
    cJSON *out = cJSON_CreateObject();
    if (!out || !cJSON_AddItemToArray(parts, out)) return refuse(fail, err, MT_ERR_NOMEM, "", "out of memory");
    if (!strcmp(type->valuestring, "text")) {
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");
        if (!cJSON_IsString(text)) return BAD(param, "a text part needs a \"text\" string");
        return add_string(out, "type", "text") && add_string(out, "text", text->valuestring)
                   ? MT_OK
                   : refuse(fail, err, MT_ERR_NOMEM, "", "out of memory");
    }
    if (!strcmp(type->valuestring, "image_url")) {
        const cJSON *iu = cJSON_GetObjectItemCaseSensitive(part, "image_url");
        const cJSON *url = cJSON_IsObject(iu) ? cJSON_GetObjectItemCaseSensitive(iu, "url") : iu;
        char p[128];
        snprintf(p, sizeof p, "%s.image_url", param);
        if (!cJSON_IsString(url)) return BAD(p, "needs a \"url\" string");
        if (r->n_images >= lim->max_images || r->n_images >= MT_OAI_MAX_IMAGES)
            return BAD(p, "at most %d images per request", MT_MIN(lim->max_images, MT_OAI_MAX_IMAGES));
        mt_status st = image_from_url(url->valuestring, p, lim, &r->images[r->n_images], fail, err);
        if (st) return st;
        r->n_images++;
        r->input_is_video[r->n_inputs++] = false;
        return add_string(out, "type", "image") ? MT_OK : refuse(fail, err, MT_ERR_NOMEM, "", "out of memory");
    }
    if (!strcmp(type->valuestring, "video_url")) {
        const cJSON *vu = cJSON_GetObjectItemCaseSensitive(part, "video_url");
        const cJSON *url = cJSON_IsObject(vu) ? cJSON_GetObjectItemCaseSensitive(vu, "url") : vu;
        char p[128];
        snprintf(p, sizeof p, "%s.video_url", param);
        if (!cJSON_IsString(url)) return BAD(p, "needs a \"url\" string");
        int most = MT_MIN(lim->max_videos, MT_OAI_MAX_VIDEOS);
        if (r->n_videos >= most) return BAD(p, "at most %d video(s) per request", most);
        mt_status st = video_from_url(url->valuestring, p, lim, &r->videos[r->n_videos], fail, err);
        if (st) return st;
        snprintf(r->video_param[r->n_videos++], sizeof r->video_param[0], "%s", p);
        r->input_is_video[r->n_inputs++] = true;
        return add_string(out, "type", "video") ? MT_OK : refuse(fail, err, MT_ERR_NOMEM, "", "out of memory");
    }
    return BAD(param, "content parts of type \"%.32s\" are not served (text, image_url and video_url are)",
               type->valuestring);
}

/* An assistant's tool_calls, with each function's arguments as an object when they are a JSON string of one. */
static mt_status tool_calls(const cJSON *calls, const char *param, cJSON *msg, mt_oai_fail *fail, mt_err *err) {
    if (!cJSON_IsArray(calls)) return BAD(param, "tool_calls must be an array");
    cJSON *copy = cJSON_Duplicate(calls, true);
    if (!copy || !cJSON_AddItemToObject(msg, "tool_calls", copy)) return refuse(fail, err, MT_ERR_NOMEM, "", "out of memory");
    cJSON *call;
    cJSON_ArrayForEach(call, copy) {
        cJSON *fn = cJSON_GetObjectItemCaseSensitive(call, "function");
        if (!cJSON_IsObject(fn) || !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(fn, "name")))
            return BAD(param, "each tool call needs a function with a name");
        cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
        if (!cJSON_IsString(args)) continue;
        cJSON *parsed = NULL;
        mt_err ignored;
        if (!mt_json_parse(args->valuestring, strlen(args->valuestring), "arguments", &parsed, &ignored) &&
            cJSON_IsObject(parsed))
            cJSON_ReplaceItemInObjectCaseSensitive(fn, "arguments", parsed);
        else
            cJSON_Delete(parsed);
    }
    return MT_OK;
}

static mt_status message(const cJSON *m, int i, cJSON *out, mt_oai_request *r, const mt_oai_limits *lim,
                         mt_oai_fail *fail, mt_err *err) {
    char param[64];
    snprintf(param, sizeof param, "messages[%d]", i);
    if (!cJSON_IsObject(m)) return BAD(param, "must be an object, not %s", type_name(m));
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
    if (!cJSON_IsString(role)) return BAD(param, "needs a \"role\" string");
    const char *rs = role->valuestring;
    if (!strcmp(rs, "developer")) rs = "system";
    if (strcmp(rs, "system") && strcmp(rs, "user") && strcmp(rs, "assistant") && strcmp(rs, "tool"))
        return BAD(param, "role \"%.32s\" is not one of system, developer, user, assistant, tool", role->valuestring);
    cJSON *msg = cJSON_CreateObject();
    if (!msg || !cJSON_AddItemToArray(out, msg) || !add_string(msg, "role", rs))
        return refuse(fail, err, MT_ERR_NOMEM, "", "out of memory");
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
    const cJSON *calls = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
    char cp[96];
    snprintf(cp, sizeof cp, "%s.content", param);
    mt_status st = MT_OK;
    if (cJSON_IsString(content)) {
        if (!add_string(msg, "content", content->valuestring)) return refuse(fail, err, MT_ERR_NOMEM, "", "out of memory");
    } else if (cJSON_IsArray(content)) {
        cJSON *parts = cJSON_AddArrayToObject(msg, "content");
        if (!parts) return refuse(fail, err, MT_ERR_NOMEM, "", "out of memory");
        int k = 0;
        const cJSON *part;
        cJSON_ArrayForEach(part, content) {
            char pp[112];
            snprintf(pp, sizeof pp, "%s[%d]", cp, k++);
            if ((st = content_part(part, pp, parts, r, lim, fail, err))) return st;
        }
    } else if ((!content || cJSON_IsNull(content)) && !strcmp(rs, "assistant") && calls && !cJSON_IsNull(calls)) {
        /* "" as vLLM gives it: templates without tools (Qwen2-VL's) loop over content, and null fails there */
        if (!add_string(msg, "content", "")) return refuse(fail, err, MT_ERR_NOMEM, "", "out of memory");
    } else {
        return BAD(cp, "must be a string or an array of content parts, not %s", content ? type_name(content) : "absent");
    }
    if (calls && !cJSON_IsNull(calls)) {
        if (strcmp(rs, "assistant")) return BAD(param, "only assistant messages have tool_calls");
        if ((st = tool_calls(calls, param, msg, fail, err))) return st;
    }
    const char *keep[] = {"tool_call_id", "name"};
    for (size_t k = 0; k < 2; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, keep[k]);
        if (!v || cJSON_IsNull(v)) continue;
        if (!cJSON_IsString(v)) return BAD(param, "%s must be a string", keep[k]);
        if (!add_string(msg, keep[k], v->valuestring)) return refuse(fail, err, MT_ERR_NOMEM, "", "out of memory");
    }
    return MT_OK;
}

static mt_status chat_fields(const cJSON *b, mt_oai_request *r, const mt_oai_limits *lim, mt_oai_fail *fail,
                             mt_err *err) {
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(b, "messages");
    if (!cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) == 0)
        return BAD("messages", "must be a non-empty array of messages");
    if (!(r->messages = cJSON_CreateArray())) return refuse(fail, err, MT_ERR_NOMEM, "", "out of memory");
    int i = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs) {
        mt_status st = message(m, i++, r->messages, r, lim, fail, err);
        if (st) return st;
    }
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(b, "tools");
    if (tools && !cJSON_IsNull(tools)) {
        if (!cJSON_IsArray(tools)) return BAD("tools", "must be an array");
        const cJSON *t;
        cJSON_ArrayForEach(t, tools) {
            const cJSON *fn = cJSON_GetObjectItemCaseSensitive(t, "function");
            if (!cJSON_IsObject(fn) || !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(fn, "name")))
                return BAD("tools", "each tool needs {\"type\": \"function\", \"function\": {\"name\": ...}}");
        }
        if (cJSON_GetArraySize(tools) > 0) r->tools = tools;
    }
    const cJSON *choice = cJSON_GetObjectItemCaseSensitive(b, "tool_choice");
    if (choice && !cJSON_IsNull(choice)) {
        if (!cJSON_IsString(choice) || (strcmp(choice->valuestring, "auto") && strcmp(choice->valuestring, "none")))
            return BAD("tool_choice", "only \"auto\" and \"none\" are served (the model chooses whether to call a tool)");
        if (!strcmp(choice->valuestring, "none")) r->tools = NULL;
    }
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(b, "response_format");
    const cJSON *ft = cJSON_IsObject(fmt) ? cJSON_GetObjectItemCaseSensitive(fmt, "type") : NULL;
    if (fmt && !cJSON_IsNull(fmt) && !(cJSON_IsString(ft) && !strcmp(ft->valuestring, "text")))
        return BAD("response_format", "only {\"type\": \"text\"} is served");
    return MT_OK;
}

mt_status mt_oai_parse(const char *body, size_t n, bool chat, const mt_sampling *defaults, const mt_oai_limits *lim,
                       mt_oai_request *out, mt_oai_fail *fail, mt_err *err) {
    mt_oai_request *r = out;
    *r = (mt_oai_request){.chat = chat, .sampling = *defaults};
    mt_status st = mt_json_parse(body, n, "request body", &r->body, err);
    if (st) return refuse(fail, err, MT_ERR_INVALID_ARG, "", "%s", err->msg);
    const cJSON *b = r->body;
    if (!cJSON_IsObject(b)) {
        st = BAD("", "the request body must be a JSON object");
        goto done;
    }
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(b, "model");
    if (model && !cJSON_IsNull(model) && !cJSON_IsString(model)) {
        st = BAD("model", "must be a string");
        goto done;
    }
    r->model = cJSON_IsString(model) ? model->valuestring : NULL;
    const cJSON *user = cJSON_GetObjectItemCaseSensitive(b, "user");
    if (user && !cJSON_IsNull(user) && !cJSON_IsString(user)) {
        st = BAD("user", "must be a string");
        goto done;
    }
    bool logprobs = false;
    if ((st = bool_field(b, "stream", &r->stream, fail, err)) || (st = bool_field(b, "logprobs", &logprobs, fail, err)))
        goto done;
    if (logprobs) {
        st = BAD("logprobs", "log probabilities are not served");
        goto done;
    }
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(b, "stream_options");
    if (so && !cJSON_IsNull(so)) {
        if (!cJSON_IsObject(so)) st = BAD("stream_options", "must be an object");
        else st = bool_field(so, "include_usage", &r->include_usage, fail, err);
        if (st) goto done;
    }
    if ((st = sampling(b, r, fail, err)) || (st = stops(b, r, fail, err))) goto done;
    if (r->max_tokens > lim->max_tokens) {
        st = BAD(cJSON_GetObjectItemCaseSensitive(b, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens",
                 "%lld is over this server's limit of %lld tokens per answer", (long long)r->max_tokens,
                 (long long)lim->max_tokens);
        goto done;
    }
    if (chat) {
        st = chat_fields(b, r, lim, fail, err);
    } else {
        const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(b, "prompt");
        if (!cJSON_IsString(prompt)) st = BAD("prompt", "must be a string (one prompt per request)");
        else r->prompt = prompt->valuestring;
    }
done:
    if (st) mt_oai_request_free(r);
    return st;
}

void mt_oai_request_free(mt_oai_request *r) {
    cJSON_Delete(r->body);
    cJSON_Delete(r->messages);
    for (int i = 0; i < r->n_images; i++) mt_image_free(&r->images[i]);
    for (int i = 0; i < r->n_videos; i++) {
        mt_free((void *)r->videos[i].path);
        mt_free((void *)r->videos[i].data);
    }
    *r = (mt_oai_request){0};
}
