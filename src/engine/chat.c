/* engine/chat: a conversation in, a streamed answer out - the path `mitten run`, `mitten chat` and the server
 * share. Messages are rendered with the model's chat format, tokenized, each image and video decoded and
 * preprocessed by the model's processor and its placeholder expanded (images and videos in message order), then
 * the session generates with KV-cache reuse across turns.
 *
 * Each turn sends the whole conversation again, so the pixels of the images and videos given by path are kept in
 * the session (mt_chat_media) until the next turn, which takes those whose file is unchanged instead of decoding
 * them again: a minute of video costs seconds to decode and sample. Only the last turn's are kept (the
 * conversation's), in message order while they fit in MEDIA_KEEP_BYTES. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/session.h"

#define MAX_CHAT_IMAGES 256
/* A minute of 720p video sampled at Qwen2.5-VL's defaults is 0.8 GB of float pixels. */
#define MEDIA_KEEP_BYTES ((size_t)2 << 30)

mt_gen_params mt_gen_params_default(void) {
    mt_gen_params p = {.sampling = mt_sampling_default(), .max_new_tokens = 512};
    p.sampling.seed = MT_SEED_RANDOM;
    return p;
}

mt_gen_params mt_model_gen_params(const mt_model *m) {
    mt_gen_params p = mt_gen_params_default();
    if (m) p.sampling = m->desc.sampling;
    return p;
}

/* What tells a file given by path apart from the same path rewritten. */
typedef struct media_key {
    char *path; /* NULL: not kept (given by its bytes, a folder, or unreadable) */
    mt_media_kind kind;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
} media_key;

typedef struct media_item {
    media_key key;
    float *pixels;
    mt_image_input in;
} media_item;

struct mt_chat_media {
    media_item items[MAX_CHAT_IMAGES];
    int n;
};

typedef struct chat_images {
    float *pixels[MAX_CHAT_IMAGES];
    mt_image_input in[MAX_CHAT_IMAGES];
    media_key key[MAX_CHAT_IMAGES];
    int n;
} chat_images;

static void images_free(chat_images *ci) {
    for (int i = 0; i < ci->n; i++) {
        mt_free(ci->pixels[i]);
        mt_free(ci->key[i].path);
    }
    ci->n = 0;
}

void mt_chat_media_free(mt_chat_media *c) {
    if (!c) return;
    for (int i = 0; i < c->n; i++) {
        mt_free(c->items[i].pixels);
        mt_free(c->items[i].key.path);
    }
    mt_free(c);
}

static bool same_key(const media_key *a, const media_key *b) {
    return a->path && b->path && a->kind == b->kind && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec && strcmp(a->path, b->path) == 0;
}

/* The key of ref as its file is now; no path when it is not kept. */
static media_key key_of(const mt_image_ref *ref) {
    media_key k = {.kind = ref->kind};
    struct stat sb;
    if (!ref->path || stat(ref->path, &sb) != 0 || !S_ISREG(sb.st_mode)) return k;
    k.dev = sb.st_dev;
    k.ino = sb.st_ino;
    k.size = sb.st_size;
    k.mtime = sb.st_mtim;
    k.path = mt_strdup(ref->path);
    return k;
}

/* Moves the kept item matching key (if any) into ci's next slot, or copies one the turn has already taken (the
 * same file twice). */
static bool take_kept(mt_chat_media *kept, const media_key *key, chat_images *ci) {
    for (int i = 0; kept && i < kept->n; i++) {
        media_item *it = &kept->items[i];
        if (!it->pixels || !same_key(&it->key, key)) continue;
        ci->pixels[ci->n] = it->pixels;
        ci->in[ci->n] = it->in;
        it->pixels = NULL;
        return true;
    }
    for (int i = 0; i < ci->n; i++) {
        if (!same_key(&ci->key[i], key)) continue;
        size_t bytes = (size_t)ci->in[i].n_patches * (size_t)MT_MAX(ci->in[i].patch_dim, 1) * sizeof(float);
        float *copy = mt_malloc(bytes);
        if (!copy) return false;
        memcpy(copy, ci->pixels[i], bytes);
        ci->pixels[ci->n] = copy;
        ci->in[ci->n] = ci->in[i];
        ci->in[ci->n].pixels = copy;
        return true;
    }
    return false;
}

static mt_status add_image(const mt_model *m, const mt_image_ref *ref, mt_chat_media *kept, chat_images *ci,
                           mt_gen_stats *counts, mt_err *err) {
    if (ci->n == MAX_CHAT_IMAGES)
        return mt_err_set(err, MT_ERR_LIMIT, "a conversation may hold at most %d images and videos", MAX_CHAT_IMAGES);
    if (ref->kind != MT_MEDIA_IMAGE && ref->kind != MT_MEDIA_VIDEO)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "input %d: kind %d is neither image nor video", ci->n + 1,
                          (int)ref->kind);
    media_key key = key_of(ref);
    if (take_kept(kept, &key, ci)) {
        ci->key[ci->n++] = key;
        counts->media_reused++;
        return MT_OK;
    }
    char what[32];
    mt_image img;
    mt_status st;
    if (ref->kind == MT_MEDIA_VIDEO) {
        snprintf(what, sizeof what, "video %d", ci->n + 1);
        st = mt_model_preprocess_video(m, ref, ref->path ? ref->path : what, &ci->pixels[ci->n], &ci->in[ci->n], err);
    } else {
        if (ref->path) {
            st = mt_image_load(ref->path, MT_IMAGE_DEFAULT_MAX_PIXELS, &img, err);
        } else {
            snprintf(what, sizeof what, "image %d", ci->n + 1);
            st = mt_image_decode(ref->data, ref->size, what, MT_IMAGE_DEFAULT_MAX_PIXELS, &img, err);
        }
        if (!st) {
            /* the image names itself (mt_image.name) in the processor's errors */
            st = mt_model_preprocess_image(m, &img, &ci->pixels[ci->n], &ci->in[ci->n], err);
            mt_image_free(&img);
            if (!st) ci->in[ci->n].pixels = ci->pixels[ci->n];
        }
    }
    if (st) {
        mt_free(key.path);
        return st;
    }
    ci->key[ci->n++] = key;
    counts->media_decoded++;
    return MT_OK;
}

/* The turn's pixels given by path, moved from ci into what the session keeps for the next turn. */
static void keep_media(chat_images *ci, mt_chat_media *c) {
    size_t bytes = 0;
    for (int i = 0; i < ci->n; i++) {
        size_t n = (size_t)ci->in[i].n_patches * (size_t)MT_MAX(ci->in[i].patch_dim, 1) * sizeof(float);
        if (!ci->key[i].path || !ci->pixels[i] || n > MEDIA_KEEP_BYTES - bytes) continue;
        bytes += n;
        c->items[c->n++] = (media_item){.key = ci->key[i], .pixels = ci->pixels[i], .in = ci->in[i]};
        ci->key[i].path = NULL;
        ci->pixels[i] = NULL;
    }
}

typedef struct stream {
    const mt_tokenizer *tok;
    mt_detok_stream *detok;
    mt_text_fn on_text;
    void *user;
    mt_status st;
    mt_err *err;
} stream;

static bool on_token(void *user, int32_t token) {
    stream *s = user;
    const char *piece;
    size_t len;
    /* an id without a token (the LM head's padding rows past the tokenizer's vocab) has no text, as in transformers'
     * decode, rather than stopping the answer */
    if (!mt_tokenizer_id_to_token(s->tok, token, NULL)) return true;
    s->st = mt_detok_stream_push(s->detok, token, &piece, &len, s->err);
    if (s->st) return false;
    return len == 0 || !s->on_text || s->on_text(s->user, piece, len);
}

/* The messages as transformers' apply_chat_template takes them: content is the text alone, or a list of parts
 * with the images and videos first when there are any. */
static mt_status render(const mt_model *m, const mt_message *msgs, size_t n, char **prompt, mt_err *err) {
    cJSON *arr = cJSON_CreateArray();
    bool ok = arr != NULL;
    for (size_t i = 0; i < n && ok; i++) {
        cJSON *msg = cJSON_CreateObject();
        ok = msg && cJSON_AddItemToArray(arr, msg) && cJSON_AddStringToObject(msg, "role", msgs[i].role);
        const char *text = msgs[i].text ? msgs[i].text : "";
        if (ok && msgs[i].n_images == 0) {
            ok = cJSON_AddStringToObject(msg, "content", text) != NULL;
            continue;
        }
        cJSON *parts = ok ? cJSON_AddArrayToObject(msg, "content") : NULL;
        ok = parts != NULL;
        for (size_t k = 0; k <= msgs[i].n_images && ok; k++) {
            cJSON *part = cJSON_CreateObject();
            ok = part && cJSON_AddItemToArray(parts, part);
            const char *kind = k < msgs[i].n_images && msgs[i].images[k].kind == MT_MEDIA_VIDEO ? "video" : "image";
            if (ok && k < msgs[i].n_images) ok = cJSON_AddStringToObject(part, "type", kind) != NULL;
            else if (ok) ok = cJSON_AddStringToObject(part, "type", "text") && cJSON_AddStringToObject(part, "text", text);
        }
    }
    mt_status st = ok ? mt_chat_template_render(m->chat_template, arr, NULL, true, NULL, prompt, NULL, err)
                      : mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    cJSON_Delete(arr);
    return st;
}

mt_status mt_session_chat(mt_session *s, const mt_message *msgs, size_t n_msgs, const mt_gen_params *p,
                          mt_text_fn on_text, void *user, mt_gen_stats *stats, mt_err *err) {
    const mt_model *m = mt_session_model(s);
    if (stats) *stats = (mt_gen_stats){.eos_token = -1};
    if (!m->tok)
        return mt_err_set(err, MT_ERR_IO, "%s: no tokenizer.json or tokenizer.model, which chat needs", m->dir);
    if (!m->chat_template) return mt_err_set(err, MT_ERR_IO, "%s: no chat template, which chat needs", m->dir);
    mt_gen_params gp = p ? *p : mt_gen_params_default();
    static const chat_images empty;
    chat_images *ci = mt_malloc(sizeof *ci);
    if (!ci) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    *ci = empty;
    char *prompt = NULL;
    int32_t *ids = NULL, *expanded = NULL;
    size_t n_ids = 0;
    int64_t n_expanded = 0;
    stream out = {.tok = m->tok, .on_text = on_text, .user = user, .err = err};
    mt_status st = MT_OK;
    mt_chat_media **held = mt_session_chat_media(s), *kept = *held;
    *held = NULL;
    mt_gen_stats counts = {0};
    for (size_t i = 0; i < n_msgs && !st; i++)
        for (size_t k = 0; k < msgs[i].n_images && !st; k++)
            st = add_image(m, &msgs[i].images[k], kept, ci, &counts, err);
    mt_chat_media_free(kept);
    if (!st) st = render(m, msgs, n_msgs, &prompt, err);
    if (!st) st = mt_tokenizer_encode(m->tok, prompt, strlen(prompt), true, &ids, &n_ids, err);
    if (!st) st = mt_model_expand_inputs(m, ids, (int64_t)n_ids, ci->in, ci->n, &expanded, &n_expanded, err);
    if (!st) st = mt_detok_stream_new(m->tok, true, &out.detok, err);
    if (!st)
        st = mt_session_generate(s, expanded, n_expanded, ci->in, ci->n, gp.max_new_tokens, &gp.sampling, on_token,
                                 &out, stats, err);
    if (!st) st = out.st;
    if (stats) {
        stats->media_decoded = counts.media_decoded;
        stats->media_reused = counts.media_reused;
    }
    const char *piece;
    size_t len;
    if (!st && !(st = mt_detok_stream_flush(out.detok, &piece, &len, err)) && len && on_text)
        on_text(user, piece, len);
    mt_detok_stream_free(out.detok);
    mt_free(prompt);
    mt_free(ids);
    mt_free(expanded);
    if ((*held = mt_calloc(1, sizeof **held))) keep_media(ci, *held);
    images_free(ci);
    mt_free(ci);
    return st;
}
