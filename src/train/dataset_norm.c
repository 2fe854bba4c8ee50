/* train/dataset_norm: one LLaVA / ShareGPT / LLaMA-Factory sample object -> OpenAI-form messages + media paths.
 *
 * The rules (role table, turn order, placeholders, paths) are drawn in dataset.h. Image and video parts are
 * collected in text order as path slots of their kind: an inline path fills its slot at once, a bare placeholder
 * ("<image>", "<video>", {"type": "image"}, {"type": "video"}) leaves it empty until the walk is over and the
 * sample's "images" / "videos" list is known to match.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "base/file.h"
#include "base/json.h"
#include "train/dataset_int.h"

static const char *const PLACEHOLDER[2] = {"<image>", "<video>"};
static const char *const KIND[2] = {"image", "video"};

typedef enum { SIDE_SYSTEM, SIDE_USER, SIDE_ASSISTANT } side;

static const struct {
    const char *in, *out;
    side side;
} ROLES[] = {
    {"human", "user", SIDE_USER},      {"user", "user", SIDE_USER},
    {"gpt", "assistant", SIDE_ASSISTANT}, {"assistant", "assistant", SIDE_ASSISTANT},
    {"system", "system", SIDE_SYSTEM}, {"function_call", "assistant", SIDE_ASSISTANT},
    {"observation", "tool", SIDE_USER}, {"tool", "tool", SIDE_USER},
};

typedef struct norm {
    const mt_dataset_opts *o;
    const char **slots; /* n_slots paths pointing into the sample object; NULL for a bare placeholder */
    bool *slot_video;   /* [n_slots] */
    size_t n_slots, cap_slots, n_bare[2]; /* bare image and video placeholders */
    mt_dataset_reason reason;
    mt_err *err;
} norm;

/* A bad sample: records the reason and formats the detail. */
#define BAD(c, why, code, ...) ((c)->reason = (why), mt_err_set((c)->err, (code), __VA_ARGS__))

static mt_status nomem(norm *c) { return mt_err_set(c->err, MT_ERR_NOMEM, "out of memory"); }

static mt_status add_slot(norm *c, const char *path, bool video) {
    if (c->n_slots >= c->o->max_images)
        return BAD(c, MT_DATASET_TOO_LARGE, MT_ERR_LIMIT, "more than %zu images and videos in one sample",
                   c->o->max_images);
    if (c->n_slots == c->cap_slots) {
        size_t cap = c->cap_slots ? c->cap_slots * 2 : 4;
        const char **p = mt_realloc(c->slots, cap * sizeof *p);
        if (!p) return nomem(c);
        c->slots = p;
        bool *v = mt_realloc(c->slot_video, cap * sizeof *v);
        if (!v) return nomem(c);
        c->slot_video = v;
        c->cap_slots = cap;
    }
    c->slot_video[c->n_slots] = video;
    c->slots[c->n_slots++] = path;
    if (!path) c->n_bare[video]++;
    return MT_OK;
}

static mt_status add_media_part(norm *c, cJSON *parts, const char *path, bool video) {
    mt_status st = add_slot(c, path, video);
    if (st) return st;
    cJSON *p = cJSON_CreateObject();
    if (!p || !cJSON_AddStringToObject(p, "type", KIND[video])) {
        cJSON_Delete(p);
        return nomem(c);
    }
    cJSON_AddItemToArray(parts, p);
    return MT_OK;
}

static mt_status add_text_part(norm *c, cJSON *parts, const char *text, size_t len) {
    if (len == 0) return MT_OK;
    char *s = mt_strndup(text, len);
    cJSON *p = s ? cJSON_CreateObject() : NULL;
    bool ok = p && cJSON_AddStringToObject(p, "type", "text") && cJSON_AddStringToObject(p, "text", s);
    mt_free(s);
    if (!ok) {
        cJSON_Delete(p);
        return nomem(c);
    }
    cJSON_AddItemToArray(parts, p);
    return MT_OK;
}

static bool has_placeholder(const char *text) {
    return strstr(text, PLACEHOLDER[0]) || strstr(text, PLACEHOLDER[1]);
}

/* Appends text to parts, each "<image>" ("<video>") in it becoming an image (video) part. */
static mt_status split_text(norm *c, cJSON *parts, const char *text) {
    for (;;) {
        const char *pi = strstr(text, PLACEHOLDER[0]), *pv = strstr(text, PLACEHOLDER[1]);
        bool video = pv && (!pi || pv < pi);
        const char *p = video ? pv : pi;
        mt_status st = add_text_part(c, parts, text, p ? (size_t)(p - text) : strlen(text));
        if (st || !p) return st;
        if ((st = add_media_part(c, parts, NULL, video))) return st;
        text = p + strlen(PLACEHOLDER[video]);
    }
}

/* The path an OpenAI image (video) part carries, NULL for a bare one; a bad sample when it is not a usable file
 * path. */
static mt_status part_path(norm *c, const cJSON *part, size_t turn, bool video, const char **out) {
    const char *kind = KIND[video];
    char url_key[16];
    snprintf(url_key, sizeof url_key, "%s_url", kind);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(part, kind);
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(part, url_key);
    if (cJSON_IsObject(u)) v = cJSON_GetObjectItemCaseSensitive(u, "url");
    else if (u && !cJSON_IsNull(u)) v = u;
    *out = NULL;
    if (!v || cJSON_IsNull(v)) return MT_OK;
    if (!cJSON_IsString(v))
        return BAD(c, MT_DATASET_BAD_FIELDS, MT_ERR_FORMAT, "turn %zu: %s %s part's path is not a string", turn,
                   video ? "a" : "an", kind);
    const char *s = v->valuestring;
    if (strncmp(s, "file://", 7) == 0) s += 7;
    else if (strncmp(s, "data:", 5) == 0 || strstr(s, "://"))
        return BAD(c, MT_DATASET_UNSUPPORTED, MT_ERR_UNSUPPORTED,
                   "turn %zu: %s URLs are not supported, give a file path (%.40s)", turn, kind, s);
    *out = s;
    return MT_OK;
}

static mt_status parts_content(norm *c, cJSON *parts, const cJSON *in, size_t turn) {
    size_t k = 0;
    for (const cJSON *part = in->child; part; part = part->next, k++) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(part, "type");
        if (!cJSON_IsObject(part) || !cJSON_IsString(type))
            return BAD(c, MT_DATASET_BAD_FIELDS, MT_ERR_FORMAT, "turn %zu, part %zu: not an object with a \"type\"",
                       turn, k);
        const char *t = type->valuestring;
        mt_status st;
        if (strcmp(t, "text") == 0) {
            const cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");
            if (!cJSON_IsString(text))
                return BAD(c, MT_DATASET_BAD_FIELDS, MT_ERR_FORMAT, "turn %zu, part %zu: \"text\" is not a string",
                           turn, k);
            st = split_text(c, parts, text->valuestring);
        } else if (strcmp(t, "image") == 0 || strcmp(t, "image_url") == 0 || strcmp(t, "video") == 0 ||
                   strcmp(t, "video_url") == 0) {
            bool video = t[0] == 'v';
            const char *path;
            if ((st = part_path(c, part, turn, video, &path))) return st;
            st = add_media_part(c, parts, path, video);
        } else {
            return BAD(c, MT_DATASET_BAD_FIELDS, MT_ERR_FORMAT, "turn %zu, part %zu: unknown type \"%.40s\"", turn,
                       k, t);
        }
        if (st) return st;
    }
    return MT_OK;
}

/* The normalised content of one turn: the string itself when it has no placeholder, else a parts array. */
static mt_status turn_content(norm *c, const cJSON *v, size_t turn, cJSON **out) {
    if (cJSON_IsString(v) && !has_placeholder(v->valuestring)) {
        *out = cJSON_CreateString(v->valuestring);
        return *out ? MT_OK : nomem(c);
    }
    if (!cJSON_IsString(v) && !cJSON_IsArray(v))
        return BAD(c, MT_DATASET_BAD_FIELDS, MT_ERR_FORMAT, "turn %zu: the text is not a string or a parts array",
                   turn);
    cJSON *parts = cJSON_CreateArray();
    if (!parts) return nomem(c);
    mt_status st = cJSON_IsString(v) ? split_text(c, parts, v->valuestring) : parts_content(c, parts, v, turn);
    if (st) {
        cJSON_Delete(parts);
        return st;
    }
    *out = parts;
    return MT_OK;
}

static const cJSON *either(const cJSON *obj, const char *a, const char *b) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, a);
    return (v && !cJSON_IsNull(v)) ? v : cJSON_GetObjectItemCaseSensitive(obj, b);
}

/* An assistant turn's OpenAI tool_calls as chat templates take them (transformers passes the messages through; the
 * templates that render calls expect "arguments" as a mapping): [{"type": "function", "function": {"name",
 * "arguments": object}} plus "id" when given], a JSON string of arguments parsed. */
static mt_status tool_calls(norm *c, const cJSON *in, size_t turn, cJSON *m) {
    if (!cJSON_IsArray(in) || !in->child)
        return BAD(c, MT_DATASET_BAD_FIELDS, MT_ERR_FORMAT, "turn %zu: \"tool_calls\" is not a non-empty array", turn);
    cJSON *calls = cJSON_AddArrayToObject(m, "tool_calls");
    if (!calls) return nomem(c);
    size_t k = 0;
    for (const cJSON *call = in->child; call; call = call->next, k++) {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(call, "function");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
        const cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(call, "id");
        if (!cJSON_IsObject(fn) || !cJSON_IsString(name) || !name->valuestring[0])
            return BAD(c, MT_DATASET_BAD_FIELDS, MT_ERR_FORMAT,
                       "turn %zu: tool_calls[%zu] has no \"function\" with a \"name\"", turn, k);
        cJSON *a = NULL;
        if (cJSON_IsString(args)) a = cJSON_Parse(args->valuestring);
        else if (cJSON_IsObject(args) && !(a = cJSON_Duplicate(args, true))) return nomem(c);
        if (!cJSON_IsObject(a)) {
            cJSON_Delete(a);
            return BAD(c, MT_DATASET_BAD_FIELDS, MT_ERR_FORMAT,
                       "turn %zu: tool_calls[%zu] (%.40s): \"arguments\" is not a JSON object or a string of one", turn,
                       k, name->valuestring);
        }
        cJSON *o = cJSON_CreateObject(), *f = cJSON_CreateObject();
        bool ok = o && f && cJSON_AddItemToArray(calls, o);
        if (!ok) cJSON_Delete(o);
        ok = ok && (!cJSON_IsString(id) || cJSON_AddStringToObject(o, "id", id->valuestring)) &&
             cJSON_AddStringToObject(o, "type", "function") && cJSON_AddItemToObject(o, "function", f);
        if (!ok) cJSON_Delete(f);
        ok = ok && cJSON_AddStringToObject(f, "name", name->valuestring) && cJSON_AddItemToObject(f, "arguments", a);
        if (!ok) {
            cJSON_Delete(a);
            return nomem(c);
        }
    }
    return MT_OK;
}

/* "tool_call_id" and "name" of a tool turn, which templates may show next to the result. */
static mt_status tool_fields(norm *c, const cJSON *t, size_t turn, cJSON *m) {
    static const char *const keys[] = {"tool_call_id", "name"};
    for (size_t i = 0; i < MT_ARRAY_LEN(keys); i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(t, keys[i]);
        if (!v || cJSON_IsNull(v)) continue;
        if (!cJSON_IsString(v))
            return BAD(c, MT_DATASET_BAD_FIELDS, MT_ERR_FORMAT, "turn %zu: \"%s\" is not a string", turn, keys[i]);
        if (!cJSON_AddStringToObject(m, keys[i], v->valuestring)) return nomem(c);
    }
    return MT_OK;
}

/* prev_tool: the turn before was a tool's answer; another may follow it (the answers to parallel calls), as
 * OpenAI and HF chat templates take them. */
static mt_status one_turn(norm *c, const cJSON *t, size_t turn, size_t *n_chat, bool *prev_tool, cJSON *msgs) {
    const cJSON *role = either(t, "from", "role");
    if (!cJSON_IsObject(t) || !cJSON_IsString(role))
        return BAD(c, MT_DATASET_BAD_FIELDS, MT_ERR_FORMAT, "turn %zu: no \"from\" or \"role\" string", turn);
    size_t r = 0;
    while (r < MT_ARRAY_LEN(ROLES) && strcmp(ROLES[r].in, role->valuestring) != 0) r++;
    if (r == MT_ARRAY_LEN(ROLES))
        return BAD(c, MT_DATASET_BAD_ROLE, MT_ERR_FORMAT, "turn %zu: unknown role \"%.40s\"", turn,
                   role->valuestring);
    bool is_tool = strcmp(ROLES[r].out, "tool") == 0, more_tool = is_tool && *prev_tool;
    side want = *n_chat % 2 == 0 ? SIDE_USER : SIDE_ASSISTANT;
    if (ROLES[r].side == SIDE_SYSTEM ? turn != 0 : ROLES[r].side != want && !more_tool)
        return BAD(c, MT_DATASET_BAD_ORDER, MT_ERR_FORMAT, "turn %zu: \"%s\" where %s turn belongs", turn,
                   ROLES[r].in, want == SIDE_USER ? "a user or tool" : "an assistant");
    if (ROLES[r].side != SIDE_SYSTEM && !more_tool) (*n_chat)++;
    *prev_tool = is_tool;

    const cJSON *calls = cJSON_GetObjectItemCaseSensitive(t, "tool_calls");
    if (cJSON_IsNull(calls)) calls = NULL;
    if (calls && ROLES[r].side != SIDE_ASSISTANT)
        return BAD(c, MT_DATASET_BAD_FIELDS, MT_ERR_FORMAT, "turn %zu: only assistant turns have \"tool_calls\"",
                   turn);
    const cJSON *text = either(t, "value", "content");
    cJSON *content = NULL;
    mt_status st = MT_OK;
    if (calls && (!text || cJSON_IsNull(text))) content = cJSON_CreateString("");
    else st = turn_content(c, text, turn, &content);
    if (st) return st;
    cJSON *m = cJSON_CreateObject();
    if (!content || !m || !cJSON_AddItemToArray(msgs, m)) {
        cJSON_Delete(m);
        cJSON_Delete(content);
        return nomem(c);
    }
    if (!cJSON_AddStringToObject(m, "role", ROLES[r].out) || !cJSON_AddItemToObject(m, "content", content)) {
        cJSON_Delete(content);
        return nomem(c);
    }
    if (calls) return tool_calls(c, calls, turn, m);
    return is_tool ? tool_fields(c, t, turn, m) : MT_OK;
}

/* The sample's "tools": an array of tool objects, or a string holding one as JSON (LLaMA-Factory's "tools" column);
 * *out NULL when absent or empty. */
static mt_status tools_list(norm *c, const cJSON *obj, cJSON **out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "tools");
    *out = NULL;
    if (!v || cJSON_IsNull(v) || (cJSON_IsString(v) && !v->valuestring[strspn(v->valuestring, " \t\r\n")]))
        return MT_OK;
    cJSON *a = NULL;
    if (cJSON_IsString(v)) a = cJSON_Parse(v->valuestring);
    else if (cJSON_IsArray(v) && !(a = cJSON_Duplicate(v, true))) return nomem(c);
    if (!cJSON_IsArray(a)) {
        cJSON_Delete(a);
        return BAD(c, MT_DATASET_BAD_FIELDS, MT_ERR_FORMAT, "\"tools\" is not an array of tools or a JSON string of one");
    }
    size_t k = 0;
    for (const cJSON *e = a->child; e; e = e->next, k++)
        if (!cJSON_IsObject(e)) {
            cJSON_Delete(a);
            return BAD(c, MT_DATASET_BAD_FIELDS, MT_ERR_FORMAT, "\"tools\"[%zu] is not an object", k);
        }
    if (k == 0) cJSON_Delete(a);
    else *out = a;
    return MT_OK;
}

/* The sample's "image" / "images" list ("video" / "videos"): a path or an array of paths; *n = 0 when absent or
 * empty. */
static mt_status media_list(norm *c, const cJSON *obj, bool video, const cJSON **list, size_t *n) {
    const char *one = KIND[video];
    char many[8];
    snprintf(many, sizeof many, "%ss", one);
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, one);
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(obj, many);
    if (a && !cJSON_IsNull(a) && b && !cJSON_IsNull(b))
        return BAD(c, MT_DATASET_BAD_FIELDS, MT_ERR_FORMAT, "both \"%s\" and \"%s\" are given", one, many);
    const cJSON *v = (a && !cJSON_IsNull(a)) ? a : b;
    *list = NULL;
    *n = 0;
    if (!v || cJSON_IsNull(v)) return MT_OK;
    if (cJSON_IsString(v)) {
        *list = v;
        *n = 1;
        return MT_OK;
    }
    if (!cJSON_IsArray(v))
        return BAD(c, MT_DATASET_BAD_FIELDS, MT_ERR_FORMAT, "\"%s\" is not a path or a list", many);
    for (const cJSON *e = v->child; e; e = e->next, (*n)++)
        if (!cJSON_IsString(e))
            return BAD(c, MT_DATASET_BAD_FIELDS, MT_ERR_FORMAT, "\"%s\"[%zu] is not a string", many, *n);
    if (*n > c->o->max_images)
        return BAD(c, MT_DATASET_TOO_LARGE, MT_ERR_LIMIT, "%zu %s, more than the %zu allowed", *n, many,
                   c->o->max_images);
    *list = v->child;
    return MT_OK;
}

static mt_status no_audio(norm *c, const cJSON *obj) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "audios");
    if (v && !cJSON_IsNull(v) && !(cJSON_IsArray(v) && !v->child))
        return BAD(c, MT_DATASET_UNSUPPORTED, MT_ERR_UNSUPPORTED, "\"audios\": audio is not supported yet");
    return MT_OK;
}

static mt_status resolve(norm *c, const char *base_dir, const char *path, bool video, char **out) {
    const char *what = video ? "a video" : "an image";
    if (!*path) return BAD(c, MT_DATASET_BAD_FIELDS, MT_ERR_FORMAT, "%s path is empty", what);
    if (mt_json_has_nul(path))
        return BAD(c, MT_DATASET_BAD_FIELDS, MT_ERR_FORMAT, "%s path holds U+0000 (\\u0000) after \"%.*s\"; no "
                   "file name can", what, (int)MT_MIN(strstr(path, "\xC0\x80") - path, 60), path);
    size_t n = strlen(path), dl = strlen(base_dir), total;
    bool join = path[0] != '/';
    if (!mt_add_ok(join ? dl + 1 : 0, n, &total) || total >= PATH_MAX)
        return BAD(c, MT_DATASET_TOO_LARGE, MT_ERR_LIMIT, "%s path is longer than %d bytes", what, PATH_MAX);
    char *s = mt_malloc(total + 1);
    if (!s) return nomem(c);
    if (join) {
        if (mt_path_join(s, total + 1, base_dir, path, NULL)) {
            mt_free(s);
            return BAD(c, MT_DATASET_TOO_LARGE, MT_ERR_LIMIT, "%s path does not fit in %zu bytes", what, total);
        }
    } else {
        memcpy(s, path, n + 1);
    }
    *out = s;
    return MT_OK;
}

void mt_ds_item_clear(mt_ds_item *it) {
    if (!it) return;
    cJSON_Delete(it->msgs);
    cJSON_Delete(it->tools);
    for (size_t i = 0; it->images && i < it->pub.n_images; i++) mt_free(it->images[i]);
    mt_free(it->images);
    mt_free(it->videos);
    mt_free(it->id);
    cJSON_Delete(it->fields);
    *it = (mt_ds_item){0};
}

static mt_status build(norm *c, const cJSON *obj, const char *base_dir, mt_ds_item *it) {
    if (!cJSON_IsObject(obj)) return BAD(c, MT_DATASET_BAD_FIELDS, MT_ERR_FORMAT, "a sample must be a JSON object");
    mt_status st = no_audio(c, obj);
    if (st) return st;
    const cJSON *conv = cJSON_GetObjectItemCaseSensitive(obj, "conversations");
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(obj, "messages");
    if (conv && msgs) return BAD(c, MT_DATASET_BAD_FIELDS, MT_ERR_FORMAT, "both \"conversations\" and \"messages\"");
    const char *key = conv ? "conversations" : "messages";
    const cJSON *turns = conv ? conv : msgs;
    if (!turns) return BAD(c, MT_DATASET_BAD_FIELDS, MT_ERR_FORMAT, "no \"conversations\" or \"messages\"");
    if (!cJSON_IsArray(turns)) return BAD(c, MT_DATASET_BAD_FIELDS, MT_ERR_FORMAT, "\"%s\" is not an array", key);
    const cJSON *list[2] = {NULL, NULL};
    size_t n_list[2] = {0, 0};
    for (int k = 0; k < 2; k++)
        if ((st = media_list(c, obj, k, &list[k], &n_list[k]))) return st;

    if (!(it->msgs = cJSON_CreateArray())) return nomem(c);
    if ((st = tools_list(c, obj, &it->tools))) return st;
    size_t n_chat = 0, turn = 0;
    bool prev_tool = false;
    for (const cJSON *t = turns->child; t; t = t->next, turn++)
        if ((st = one_turn(c, t, turn, &n_chat, &prev_tool, it->msgs))) return st;
    if (n_chat < 2) return BAD(c, MT_DATASET_BAD_ORDER, MT_ERR_FORMAT, "no assistant turn");
    if (n_chat % 2) return BAD(c, MT_DATASET_BAD_ORDER, MT_ERR_FORMAT, "the last turn is not the assistant's");
    for (int k = 0; k < 2; k++)
        if (c->n_bare[k] != n_list[k])
            return BAD(c, MT_DATASET_BAD_PLACEHOLDERS, MT_ERR_FORMAT, "%zu %s placeholders but %zu %ss", c->n_bare[k],
                       KIND[k], n_list[k], KIND[k]);

    if (c->n_slots && !(it->images = mt_calloc(c->n_slots, sizeof *it->images))) return nomem(c);
    bool any_video = false;
    for (size_t i = 0; i < c->n_slots; i++) any_video |= c->slot_video[i];
    if (any_video) {
        if (!(it->videos = mt_malloc_array(c->n_slots, sizeof *it->videos))) return nomem(c);
        memcpy(it->videos, c->slot_video, c->n_slots * sizeof *it->videos);
    }
    for (size_t i = 0; i < c->n_slots; i++) {
        const char *p = c->slots[i];
        bool video = c->slot_video[i];
        if (!p) {
            p = list[video]->valuestring;
            list[video] = list[video]->next;
        }
        if ((st = resolve(c, base_dir, p, video, &it->images[i]))) return st;
        it->pub.n_images = i + 1;
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(obj, "id");
    if (cJSON_IsString(id) && !(it->id = mt_strdup(id->valuestring))) return nomem(c);
    return MT_OK;
}

mt_status mt_ds_normalize(const cJSON *obj, const char *base_dir, const mt_dataset_opts *o, mt_ds_item *it,
                          mt_dataset_reason *reason, mt_err *err) {
    norm c = {.o = o, .err = err, .reason = MT_DATASET_BAD_FIELDS};
    *it = (mt_ds_item){0};
    mt_status st = build(&c, obj, base_dir, it);
    mt_free(c.slots);
    mt_free(c.slot_video);
    if (st) {
        mt_ds_item_clear(it);
        *reason = c.reason;
        return st;
    }
    it->pub.messages = it->msgs;
    it->pub.tools = it->tools;
    it->pub.images = (const char *const *)it->images;
    it->pub.videos = it->videos;
    it->pub.id = it->id;
    return MT_OK;
}
