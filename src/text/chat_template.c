#define _GNU_SOURCE /* memmem */
/* text/chat_template: discovery (chat_template.jinja, chat_template.json, tokenizer_config.json), special tokens,
 * and the variables transformers' apply_chat_template hands to the template. */
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "base/file.h"
#include "base/json.h"
#include "text/chat_template.h"
#include "text/jinja.h"

#define MAX_TEMPLATES 32

struct mt_chat_template {
    size_t n;
    char *names[MAX_TEMPLATES]; /* NULL for an unnamed template */
    mt_jinja *tpl[MAX_TEMPLATES];
    char *src[MAX_TEMPLATES]; /* the sources, as loaded (GGUF files carry them) */
    size_t src_len[MAX_TEMPLATES];
    int pick;     /* the template to use, or -1: choose per render ("tool_use" with tools, else "default") */
    cJSON *vars;  /* special tokens, in the order transformers' special_tokens_map lists them */
    char *image_marker, *image_token; /* mt_chat_template_set_image_text, or NULL */
};

static const char *const token_keys[] = {"bos_token", "eos_token", "unk_token", "sep_token",
                                         "pad_token", "cls_token", "mask_token"};

static mt_status add_template(mt_chat_template *t, const char *name, const char *src, size_t len, const char *what,
                              mt_err *err) {
    if (t->n == MAX_TEMPLATES) return mt_err_set(err, MT_ERR_LIMIT, "%s: more than %d named templates", what, MAX_TEMPLATES);
    char label[600];
    snprintf(label, sizeof label, name ? "%s[%s]" : "%s", what, name);
    mt_status st = mt_jinja_parse(src, len, label, &t->tpl[t->n], err);
    if (st) return st;
    if ((name && !(t->names[t->n] = mt_strdup(name))) || !(t->src[t->n] = mt_malloc(len + 1))) {
        mt_jinja_free(t->tpl[t->n]);
        mt_free(t->names[t->n]);
        t->names[t->n] = NULL;
        return mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory", what);
    }
    memcpy(t->src[t->n], src, len);
    t->src[t->n][len] = 0;
    t->src_len[t->n] = len;
    t->n++;
    return MT_OK;
}

static mt_chat_template *new_template(void) {
    mt_chat_template *t = mt_calloc(1, sizeof *t);
    if (t && !(t->vars = cJSON_CreateObject())) mt_free(t), t = NULL;
    if (t) t->pick = 0;
    return t;
}

/* A template's source from JSON, U+0000 kept (base/json). */
static mt_status add_json_template(mt_chat_template *t, const char *name, const char *src, const char *what,
                                   mt_err *err) {
    size_t len;
    char *bytes = mt_json_dup(src, &len);
    if (!bytes) return mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory", what);
    mt_status st = add_template(t, name, bytes, len, what, err);
    mt_free(bytes);
    return st;
}

/* A "chat_template" field: a string, or a list of {name, template}. */
static mt_status load_field(mt_chat_template *t, const cJSON *field, const char *what, mt_err *err) {
    if (cJSON_IsString(field)) return add_json_template(t, NULL, field->valuestring, what, err);
    if (!cJSON_IsArray(field) || !cJSON_GetArraySize(field))
        return mt_err_set(err, MT_ERR_FORMAT, "%s: chat_template must be a string or a list of {name, template}", what);
    for (const cJSON *e = field->child; e; e = e->next) {
        const char *name, *src;
        mt_status st = mt_json_str_req(e, "name", what, &name, err);
        if (!st) st = mt_json_raw_req(e, "template", what, &src, err);
        if (!st) st = add_json_template(t, name, src, what, err);
        if (st) return st;
    }
    t->pick = -1;
    return MT_OK;
}

static mt_status load_tokens(mt_chat_template *t, const cJSON *cfg, const char *what, mt_err *err) {
    for (size_t i = 0; i < MT_ARRAY_LEN(token_keys); i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, token_keys[i]);
        if (cJSON_IsObject(v)) v = cJSON_GetObjectItemCaseSensitive(v, "content");
        if (!v || cJSON_IsNull(v)) continue;
        if (!cJSON_IsString(v)) return mt_err_set(err, MT_ERR_FORMAT, "%s: %s must be a string or {\"content\": ...}", what, token_keys[i]);
        if (!cJSON_AddStringToObject(t->vars, token_keys[i], v->valuestring)) goto nomem;
    }
    const cJSON *extra = cJSON_GetObjectItemCaseSensitive(cfg, "additional_special_tokens");
    if (cJSON_IsArray(extra) && cJSON_GetArraySize(extra)) {
        cJSON *list = cJSON_AddArrayToObject(t->vars, "additional_special_tokens");
        if (!list) goto nomem;
        for (const cJSON *e = extra->child; e; e = e->next) {
            const cJSON *s = cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "content") : e;
            if (!cJSON_IsString(s)) return mt_err_set(err, MT_ERR_FORMAT, "%s: additional_special_tokens holds a non-string", what);
            cJSON *c = cJSON_CreateString(s->valuestring);
            if (!c || !cJSON_AddItemToArray(list, c)) goto nomem;
        }
    }
    return MT_OK;
nomem:
    return mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory", what);
}

static mt_status pick_named(mt_chat_template *t, const char *name, const char *dir, mt_err *err) {
    if (t->pick >= 0) return MT_OK;
    for (size_t i = 0; i < t->n; i++)
        if (name && !strcmp(t->names[i], name)) return t->pick = (int)i, MT_OK;
    if (name) return mt_err_set(err, MT_ERR_INVALID_ARG, "%s: no chat template named '%s'", dir, name);
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->names[i], "default")) return MT_OK;
    return mt_err_set(err, MT_ERR_FORMAT, "%s: named chat templates but none called \"default\"", dir);
}

bool mt_chat_template_present(const char *dir) {
    char path[4096];
    mt_err err;
    static const char *const files[] = {"chat_template.jinja", "chat_template.json"};
    for (size_t i = 0; i < MT_ARRAY_LEN(files); i++)
        if (!mt_path_join(path, sizeof path, dir, files[i], &err) && mt_file_exists(path)) return true;
    cJSON *cfg = NULL;
    if (mt_path_join(path, sizeof path, dir, "tokenizer_config.json", &err) || !mt_file_exists(path)) return false;
    if (mt_json_parse_file(path, MT_JSON_MAX_FILE, &cfg, &err)) return true; /* unreadable: let the load say why */
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(cfg, "chat_template");
    bool present = t && !cJSON_IsNull(t);
    cJSON_Delete(cfg);
    return present;
}

mt_status mt_chat_template_load(const char *dir, const char *name, mt_chat_template **out, mt_err *err) {
    char path[4096], cfg_path[4096];
    mt_chat_template *t = new_template();
    if (!t) return mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory", dir);
    cJSON *cfg = NULL, *ctj = NULL;
    char *src = NULL;
    size_t len;
    mt_status st = mt_path_join(cfg_path, sizeof cfg_path, dir, "tokenizer_config.json", err);
    if (!st && mt_file_exists(cfg_path)) st = mt_json_parse_file(cfg_path, MT_JSON_MAX_FILE, &cfg, err);
    if (!st && cfg) st = load_tokens(t, cfg, cfg_path, err);
    if (!st) st = mt_path_join(path, sizeof path, dir, "chat_template.jinja", err);
    if (!st && mt_file_exists(path)) {
        st = mt_file_read_all(path, (size_t)4 << 20, &src, &len, err);
        if (!st) st = add_template(t, NULL, src, len, path, err);
    } else if (!st) {
        st = mt_path_join(path, sizeof path, dir, "chat_template.json", err);
        const cJSON *field = NULL;
        const char *from = path;
        if (!st && mt_file_exists(path)) {
            st = mt_json_parse_file(path, MT_JSON_MAX_FILE, &ctj, err);
            if (!st) field = cJSON_GetObjectItemCaseSensitive(ctj, "chat_template");
        }
        if (!st && (!field || cJSON_IsNull(field)) && cfg) {
            field = cJSON_GetObjectItemCaseSensitive(cfg, "chat_template");
            from = cfg_path;
        }
        if (!st && (!field || cJSON_IsNull(field)))
            st = mt_err_set(err, MT_ERR_IO, "%s: no chat template (chat_template.jinja, chat_template.json or "
                            "tokenizer_config.json's chat_template)", dir);
        if (!st) st = load_field(t, field, from, err);
    }
    if (!st && name && t->pick >= 0 && strcmp(name, "default") != 0)
        st = mt_err_set(err, MT_ERR_INVALID_ARG, "%s: the chat template has no names; '%s' is not one", dir, name);
    if (!st) st = pick_named(t, name, dir, err);
    mt_free(src);
    cJSON_Delete(cfg);
    cJSON_Delete(ctj);
    if (st) {
        mt_chat_template_free(t);
        return st;
    }
    *out = t;
    return MT_OK;
}

mt_status mt_chat_template_parse(const char *source, size_t len, const char *what, mt_chat_template **out,
                                 mt_err *err) {
    mt_chat_template *t = new_template();
    if (!t) return mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory", what ? what : "template");
    mt_status st = add_template(t, NULL, source, len, what ? what : "template", err);
    if (st) {
        mt_chat_template_free(t);
        return st;
    }
    *out = t;
    return MT_OK;
}

static const mt_jinja *choose(const mt_chat_template *t, bool tools) {
    if (t->pick >= 0) return t->tpl[t->pick];
    for (size_t i = 0; tools && i < t->n; i++)
        if (!strcmp(t->names[i], "tool_use")) return t->tpl[i];
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->names[i], "default")) return t->tpl[i];
    return t->tpl[0];
}

mt_status mt_chat_template_set_image_text(mt_chat_template *t, const char *marker, const char *token, mt_err *err) {
    mt_free(t->image_marker);
    mt_free(t->image_token);
    t->image_marker = t->image_token = NULL;
    if (!marker) return MT_OK;
    if (!marker[0] || !token || !token[0])
        return mt_err_set(err, MT_ERR_INVALID_ARG, "chat template: empty image marker or token");
    t->image_marker = mt_strdup(marker);
    t->image_token = mt_strdup(token);
    return t->image_marker && t->image_token ? MT_OK : mt_err_set(err, MT_ERR_NOMEM, "out of memory");
}

/* An image or a video part: a text-only template marks both alike (InternVL's original layout writes <image> where
 * a video goes too, as its model card does, and the input's kind tells them apart). */
static bool is_image_part(const cJSON *part) {
    static const char *const kinds[] = {"image", "image_url", "video", "video_url"};
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(part, "type");
    for (size_t i = 0; i < MT_ARRAY_LEN(kinds); i++)
        if (cJSON_IsString(type) ? !strcmp(type->valuestring, kinds[i]) : cJSON_HasObjectItem(part, kinds[i]))
            return true;
    return false;
}

/* One message's content list as the single string a text-only template takes (see set_image_text). */
static mt_status flatten_content(const mt_chat_template *t, const cJSON *parts, int msg, mt_buf *b, mt_err *err) {
    int k = 0;
    for (const cJSON *part = parts->child; part; part = part->next, k++) {
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");
        if (is_image_part(part)) {
            const cJSON *next = cJSON_GetObjectItemCaseSensitive(part->next, "text");
            mt_buf_adds(b, t->image_marker);
            if (!(cJSON_IsString(next) && !is_image_part(part->next) && next->valuestring[0] == '\n'))
                mt_buf_adds(b, "\n");
        } else if (cJSON_IsString(text)) {
            mt_buf_adds(b, text->valuestring);
        } else {
            const cJSON *type = cJSON_GetObjectItemCaseSensitive(part, "type");
            return mt_err_set(err, MT_ERR_UNSUPPORTED,
                              "message %d, part %d: a \"%.40s\" part; this model's chat template takes text, images and "
                              "videos only",
                              msg, k, cJSON_IsString(type) ? type->valuestring : "(untyped)");
        }
    }
    return MT_OK;
}

/* messages with every content list written as one string; the other fields are shared by reference. */
static mt_status flatten_messages(const mt_chat_template *t, const cJSON *messages, cJSON **out, mt_err *err) {
    cJSON *flat = cJSON_CreateArray();
    mt_status st = flat ? MT_OK : mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    int i = 0;
    for (const cJSON *m = messages->child; m && !st; m = m->next, i++) {
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (!cJSON_IsObject(m) || !cJSON_IsArray(content)) {
            if (!cJSON_AddItemReferenceToArray(flat, (cJSON *)m)) st = mt_err_set(err, MT_ERR_NOMEM, "out of memory");
            continue;
        }
        mt_buf b = {0};
        mt_buf_adds(&b, "");
        st = flatten_content(t, content, i, &b, err);
        cJSON *copy = st || b.oom ? NULL : cJSON_CreateObject();
        bool ok = copy != NULL;
        for (const cJSON *f = m->child; ok && f; f = f->next)
            ok = f == content ? cJSON_AddStringToObject(copy, f->string, b.p) != NULL
                              : cJSON_AddItemReferenceToObject(copy, f->string, (cJSON *)f);
        if (!st && (!ok || !cJSON_AddItemToArray(flat, copy))) {
            cJSON_Delete(copy);
            st = mt_err_set(err, MT_ERR_NOMEM, "out of memory");
        }
        mt_buf_free(&b);
    }
    if (st) cJSON_Delete(flat);
    else *out = flat;
    return st;
}

/* Each image marker of the rendered prompt becomes the image token. */
static mt_status mark_images(const mt_chat_template *t, char **text, size_t *len, mt_err *err) {
    size_t ml = strlen(t->image_marker);
    if (!memmem(*text, *len, t->image_marker, ml)) return MT_OK;
    mt_buf b = {0};
    const char *p = *text, *end = *text + *len, *hit;
    while ((hit = memmem(p, (size_t)(end - p), t->image_marker, ml))) {
        mt_buf_add(&b, p, (size_t)(hit - p));
        mt_buf_adds(&b, t->image_token);
        p = hit + ml;
    }
    mt_buf_add(&b, p, (size_t)(end - p));
    if (b.oom) {
        mt_buf_free(&b);
        return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    }
    mt_free(*text);
    *text = b.p;
    *len = b.n;
    return MT_OK;
}

static mt_status render(const mt_chat_template *t, const cJSON *messages, const cJSON *tools,
                        bool add_generation_prompt, const cJSON *extra_kwargs, char **out, size_t *out_len,
                        mt_err *err) {
    if (tools && !cJSON_IsArray(tools) && !cJSON_IsNull(tools))
        return mt_err_set(err, MT_ERR_INVALID_ARG, "chat template: tools must be an array");
    if (extra_kwargs && !cJSON_IsObject(extra_kwargs))
        return mt_err_set(err, MT_ERR_INVALID_ARG, "chat template: extra arguments must be an object");
    static const char *const fixed[] = {"messages", "tools", "add_generation_prompt"};
    for (const cJSON *k = extra_kwargs ? extra_kwargs->child : NULL; k; k = k->next)
        for (size_t i = 0; i < MT_ARRAY_LEN(fixed); i++)
            if (!strcmp(k->string, fixed[i]))
                return mt_err_set(err, MT_ERR_INVALID_ARG, "chat template: extra argument '%s' is reserved", fixed[i]);
    /* documents (retrieval-augmented templates) arrive among the extra arguments, as apply_chat_template's keyword */
    const cJSON *documents = cJSON_GetObjectItemCaseSensitive(extra_kwargs, "documents");
    if (documents && !cJSON_IsArray(documents) && !cJSON_IsNull(documents))
        return mt_err_set(err, MT_ERR_INVALID_ARG, "chat template: documents must be an array");
    cJSON *vars = cJSON_CreateObject();
    bool ok = vars && cJSON_AddItemReferenceToObject(vars, "messages", (cJSON *)messages);
    ok = ok && (tools && !cJSON_IsNull(tools) ? cJSON_AddItemReferenceToObject(vars, "tools", (cJSON *)tools)
                                              : cJSON_AddNullToObject(vars, "tools") != NULL);
    ok = ok && (documents ? cJSON_AddItemReferenceToObject(vars, "documents", (cJSON *)documents)
                          : cJSON_AddNullToObject(vars, "documents") != NULL);
    ok = ok && cJSON_AddBoolToObject(vars, "add_generation_prompt", add_generation_prompt);
    for (const cJSON *k = t->vars->child; ok && k; k = k->next)
        if (!cJSON_GetObjectItemCaseSensitive(extra_kwargs, k->string))
            ok = cJSON_AddItemReferenceToObject(vars, k->string, (cJSON *)k);
    for (const cJSON *k = extra_kwargs ? extra_kwargs->child : NULL; ok && k; k = k->next)
        if (k != documents) ok = cJSON_AddItemReferenceToObject(vars, k->string, (cJSON *)k);
    if (!ok) {
        cJSON_Delete(vars);
        return mt_err_set(err, MT_ERR_NOMEM, "chat template: out of memory");
    }
    mt_status st = mt_jinja_render(choose(t, tools && cJSON_GetArraySize(tools) > 0), vars, NULL, out, out_len, err);
    cJSON_Delete(vars);
    return st;
}

mt_status mt_chat_template_render(const mt_chat_template *t, const cJSON *messages, const cJSON *tools,
                                  bool add_generation_prompt, const cJSON *extra_kwargs, char **out, size_t *out_len,
                                  mt_err *err) {
    if (!t || !out) return mt_err_set(err, MT_ERR_INVALID_ARG, "chat template render: NULL template or output");
    if (!cJSON_IsArray(messages)) return mt_err_set(err, MT_ERR_INVALID_ARG, "chat template: messages must be an array");
    if (!t->image_marker) return render(t, messages, tools, add_generation_prompt, extra_kwargs, out, out_len, err);
    cJSON *flat = NULL;
    size_t len = 0;
    mt_status st = flatten_messages(t, messages, &flat, err);
    if (!st) st = render(t, flat, tools, add_generation_prompt, extra_kwargs, out, &len, err);
    if (!st && (st = mark_images(t, out, &len, err))) {
        mt_free(*out);
        *out = NULL;
    }
    if (!st && out_len) *out_len = len;
    cJSON_Delete(flat);
    return st;
}

size_t mt_chat_template_count(const mt_chat_template *t) { return t ? t->n : 0; }

const char *mt_chat_template_source(const mt_chat_template *t, size_t i, const char **name, size_t *len) {
    if (!t || i >= t->n) return NULL;
    if (name) *name = t->names[i];
    if (len) *len = t->src_len[i];
    return t->src[i];
}

const char *mt_chat_template_token(const mt_chat_template *t, const char *key) {
    const cJSON *v = t ? cJSON_GetObjectItemCaseSensitive(t->vars, key) : NULL;
    return cJSON_IsString(v) && !mt_json_has_nul(v->valuestring) ? v->valuestring : NULL;
}

void mt_chat_template_free(mt_chat_template *t) {
    if (!t) return;
    for (size_t i = 0; i < t->n; i++) {
        mt_jinja_free(t->tpl[i]);
        mt_free(t->names[i]);
        mt_free(t->src[i]);
    }
    cJSON_Delete(t->vars);
    mt_free(t->image_marker);
    mt_free(t->image_token);
    mt_free(t);
}
