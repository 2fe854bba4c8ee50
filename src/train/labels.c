/* train/labels: input ids and loss labels of one sample from prefix renderings of its chat template; see labels.h
 * for the method, the boundaries and what is supervised. References: transformers' apply_chat_template (the
 * rendering, encoded with add_special_tokens=False) and LLaMA-Factory's supervised.py (labels per turn).
 */
#include "train/labels.h"

#include <inttypes.h>
#include <string.h>

typedef struct {
    int32_t *ids, *labels; /* [n] of cap */
    size_t n, cap;
    int64_t *span_lo, *span_hi; /* [images_seen] the image tokens of each image: [lo, hi) */
    int images_seen;
} builder;

typedef struct {
    const mt_labels_src *src;
    const cJSON *messages, *tools, *kwargs;
    const int64_t *image_tokens;
    int n_images;
} sample;

mt_labels_src mt_labels_src_from_model(const mt_model *m) {
    mt_labels_src s = {
        .tok = m->tok,
        .tmpl = m->chat_template,
        .image_token_id = (int32_t)m->desc.image_token_id,
        .video_token_id = (int32_t)m->desc.video_token_id,
        .vision_start_id = (int32_t)m->desc.vision_start_id,
        .vision_end_id = (int32_t)m->desc.vision_end_id,
    };
    return s;
}

mt_labels_opts mt_labels_default_opts(void) {
    mt_labels_opts o = {.last_turn_only = false, .max_len = 0, .template_kwargs = NULL};
    return o;
}

void mt_sample_tokens_release(mt_sample_tokens *s) {
    if (!s) return;
    mt_free(s->ids);
    mt_free(s->labels);
    memset(s, 0, sizeof *s);
}

/* The template's text of messages[0:k]. The prefix array holds references, so the caller's messages are shared. */
static mt_status render_prefix(const sample *sm, int k, bool gen_prompt, char **text, size_t *len, mt_err *err) {
    cJSON *prefix = cJSON_CreateArray();
    if (!prefix) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    int i = 0;
    for (cJSON *m = sm->messages->child; m && i < k; m = m->next, i++) {
        if (!cJSON_AddItemReferenceToArray(prefix, m)) {
            cJSON_Delete(prefix);
            return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
        }
    }
    mt_status st = mt_chat_template_render(sm->src->tmpl, prefix, sm->tools, gen_prompt, sm->kwargs, text, len, err);
    cJSON_Delete(prefix);
    return st;
}

/* A short excerpt of s at off for messages, with control characters escaped. */
static const char *excerpt(const char *s, size_t len, size_t off, char *buf, size_t cap) {
    size_t o = 0;
    for (size_t i = off; i < len && i < off + 24 && o + 5 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') buf[o++] = '\\', buf[o++] = 'n';
        else if (c == '"' || c == '\\') buf[o++] = '\\', buf[o++] = (char)c;
        else if (c < 0x20) o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
        else buf[o++] = (char)c;
    }
    if (off >= len) o += (size_t)snprintf(buf + o, cap - o, "(end)");
    buf[o] = 0;
    return buf;
}

/* One rendering of a boundary: the text of messages[0:k], with or without the generation prompt, around the
 * assistant turn at message turn. */
typedef struct {
    char *text;
    size_t len;
    int k, turn;
    bool gen;
} rendering;

/* later must begin with prev. The message named is the assistant turn whose text changed: prev's turn when prev
 * ended it, the later turn when its answer does not continue its own generation prompt. */
static mt_status check_prefix(const rendering *prev, const rendering *later, mt_err *err) {
    if (later->len >= prev->len && !memcmp(prev->text, later->text, prev->len)) return MT_OK;
    size_t d = 0;
    while (d < prev->len && d < later->len && prev->text[d] == later->text[d]) d++;
    char a[128], b[128];
    return mt_err_set(err, MT_ERR_INVALID_ARG,
                      "assistant turn at message %d: the chat template is not prefix-stable: the rendering of "
                      "messages[0:%d]%s does not begin with that of messages[0:%d]%s (at byte %zu: \"%s\" instead of "
                      "\"%s\"); supervise the last turn only, or use a template that keeps earlier turns unchanged",
                      prev->gen ? later->turn : prev->turn, later->k, later->gen ? " with the generation prompt" : "",
                      prev->k, prev->gen ? " with the generation prompt" : "", d,
                      excerpt(later->text, later->len, d, a, sizeof a), excerpt(prev->text, prev->len, d, b, sizeof b));
}

static mt_status reserve(builder *b, size_t extra, mt_err *err) {
    size_t need;
    if (!mt_add_ok(b->n, extra, &need) || need > (size_t)MT_LABELS_MAX_TOKENS)
        return mt_err_set(err, MT_ERR_LIMIT, "the sample has more than %d tokens", MT_LABELS_MAX_TOKENS);
    if (need <= b->cap) return MT_OK;
    size_t cap = MT_MAX(need, MT_MIN(b->cap * 2, (size_t)MT_LABELS_MAX_TOKENS));
    cap = MT_MAX(cap, (size_t)256);
    int32_t *ids = mt_realloc(b->ids, cap * sizeof *ids);
    if (!ids) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    b->ids = ids;
    int32_t *labels = mt_realloc(b->labels, cap * sizeof *labels);
    if (!labels) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    b->labels = labels;
    b->cap = cap;
    return MT_OK;
}

/* The expansion of the next image's placeholder at seg[0] (seg [n_seg]: the rest of its segment), asked with the
 * token before it in the sample and the one after it in the segment; *before of those already appended, *after of
 * seg's. */
static mt_status expand_at(const builder *b, const sample *sm, const int32_t *seg, size_t n_seg, int32_t **span,
                           int64_t *count, int64_t *before, int64_t *after, mt_err *err) {
    int32_t window[3];
    int64_t n = 0, at = 0;
    /* a token of the previous expansion is no edge the template wrote */
    bool after_image = b->images_seen > 0 && b->span_hi[b->images_seen - 1] == (int64_t)b->n;
    if (b->n > 0 && !after_image) window[n++] = b->ids[b->n - 1], at = 1;
    window[n++] = seg[0];
    if (n_seg > 1) window[n++] = seg[1];
    const mt_labels_src *src = sm->src;
    mt_status st = src->expand(src->expand_user, b->images_seen, window, n, at, span, count, before, after, err);
    if (!st && (*before < 0 || *before > at || *after < 0 || *after > n - 1 - at))
        st = mt_err_set(err, MT_ERR_INTERNAL, "image %d's expansion replaces %lld tokens before and %lld after its "
                        "placeholder", b->images_seen, (long long)*before, (long long)*after);
    if (st) {
        mt_free(*span);
        *span = NULL;
    }
    return st;
}

/* Tokenizes text on its own and appends it, image placeholders expanded; supervised segments label every token but
 * the image ones. */
static mt_status append_segment(builder *b, const sample *sm, const char *text, size_t len, bool supervised,
                                mt_err *err) {
    if (len == 0) return MT_OK;
    const mt_labels_src *src = sm->src;
    int32_t *ids = NULL;
    size_t n = 0;
    mt_status st = mt_tokenizer_encode(src->tok, text, len, true, &ids, &n, err);
    for (size_t i = 0; !st && i < n; i++) {
        int32_t id = ids[i];
        if (id >= 0 && (id == src->image_token_id || id == src->video_token_id)) {
            if (b->images_seen >= sm->n_images) {
                st = mt_err_set(err, MT_ERR_INVALID_ARG,
                                "the messages hold more image and video placeholders than the %d given", sm->n_images);
                break;
            }
            int64_t count = sm->image_tokens[b->images_seen], before = 0, after = 0;
            int32_t *span = NULL;
            if (src->expand && (st = expand_at(b, sm, ids + i, n - i, &span, &count, &before, &after, err))) break;
            b->n -= (size_t)before;
            i += (size_t)after;
            if (!(st = reserve(b, (size_t)count, err))) {
                b->span_lo[b->images_seen] = (int64_t)b->n;
                for (int64_t k = 0; k < count; k++) b->ids[b->n] = span ? span[k] : id, b->labels[b->n++] = MT_LABEL_IGNORE;
                b->span_hi[b->images_seen++] = (int64_t)b->n;
            }
            mt_free(span);
            if (st) break;
        } else if (!(st = reserve(b, 1, err))) {
            b->ids[b->n] = id;
            b->labels[b->n++] = supervised ? id : MT_LABEL_IGNORE;
        }
    }
    mt_free(ids);
    return st;
}

static mt_status check_input(const mt_labels_src *src, const cJSON *messages, const cJSON *tools,
                             const int64_t *image_tokens, int n_images, const mt_labels_opts *o, mt_err *err) {
    if (!src || !src->tok || !src->tmpl)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "labels: the model has no %s", !src || !src->tok ? "tokenizer" : "chat template");
    if (!cJSON_IsArray(messages)) return mt_err_set(err, MT_ERR_INVALID_ARG, "messages must be an array");
    if (tools && !cJSON_IsArray(tools) && !cJSON_IsNull(tools))
        return mt_err_set(err, MT_ERR_INVALID_ARG, "tools must be an array");
    if (o->template_kwargs && !cJSON_IsObject(o->template_kwargs))
        return mt_err_set(err, MT_ERR_INVALID_ARG, "template kwargs must be an object");
    if (o->max_len < 0) return mt_err_set(err, MT_ERR_INVALID_ARG, "max_len %" PRId64 " is negative", o->max_len);
    int n = cJSON_GetArraySize(messages);
    if (n > MT_LABELS_MAX_MESSAGES)
        return mt_err_set(err, MT_ERR_LIMIT, "%d messages is more than %d", n, MT_LABELS_MAX_MESSAGES);
    int i = 0;
    for (const cJSON *m = messages->child; m; m = m->next, i++) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (!cJSON_IsObject(m) || !cJSON_IsString(role))
            return mt_err_set(err, MT_ERR_INVALID_ARG, "message %d: must be an object with a string \"role\"", i);
    }
    if (n_images < 0 || n_images > MT_LABELS_MAX_IMAGES)
        return mt_err_set(err, n_images < 0 ? MT_ERR_INVALID_ARG : MT_ERR_LIMIT, "%d images: must be in [0, %d]",
                          n_images, MT_LABELS_MAX_IMAGES);
    if (n_images && !image_tokens) return mt_err_set(err, MT_ERR_INVALID_ARG, "%d images but no token counts", n_images);
    for (int k = 0; k < n_images; k++)
        if (image_tokens[k] < 1 || image_tokens[k] > MT_LABELS_MAX_TOKENS)
            return mt_err_set(err, MT_ERR_INVALID_ARG, "image %d: %" PRId64 " tokens is outside [1, %d]", k,
                              image_tokens[k], MT_LABELS_MAX_TOKENS);
    return MT_OK;
}

static bool is_assistant(const cJSON *m) {
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
    return !strcmp(role->valuestring, "assistant");
}

/* Renders the boundaries around every supervised turn and appends their segments to b. */
static mt_status build_segments(builder *b, const sample *sm, bool last_turn_only, mt_err *err) {
    int n_msgs = cJSON_GetArraySize(sm->messages), last = -1, i = 0;
    for (const cJSON *m = sm->messages->child; m; m = m->next, i++)
        if (is_assistant(m)) last = i;
    if (last < 0) return mt_err_set(err, MT_ERR_INVALID_ARG, "the messages have no assistant turn to supervise");

    rendering prev = {.text = "", .turn = last}, cur = {0};
    bool owned = false;
    mt_status st = MT_OK;
    i = 0;
    /* two boundaries per supervised turn (before: prompt, after: answer), then the whole conversation */
    for (const cJSON *m = sm->messages->child; !st; i++) {
        bool end = m == NULL;
        if (!end && (!is_assistant(m) || (last_turn_only && i != last))) {
            m = m->next;
            continue;
        }
        for (int half = 0; half < (end ? 1 : 2) && !st; half++) {
            cur = (rendering){.k = end ? n_msgs : i + half, .turn = end ? prev.turn : i, .gen = !end && half == 0};
            st = render_prefix(sm, cur.k, cur.gen, &cur.text, &cur.len, err);
            if (!st) st = check_prefix(&prev, &cur, err);
            if (!st) st = append_segment(b, sm, cur.text + prev.len, cur.len - prev.len, !end && half == 1, err);
            if (owned) mt_free(prev.text);
            prev = cur, owned = true;
        }
        if (end) break;
        m = m->next;
    }
    if (owned) mt_free(prev.text);
    if (!st && b->images_seen != sm->n_images)
        st = mt_err_set(err, MT_ERR_INVALID_ARG, "%d image(s) given but the messages hold %d image placeholder(s)",
                        sm->n_images, b->images_seen);
    return st;
}

/* Cuts b to max_len unless that splits an image span; *kept gets the images left whole. */
static mt_status truncate_end(builder *b, const mt_labels_src *src, int64_t max_len, int *kept, mt_err *err) {
    *kept = b->images_seen;
    if (max_len == 0 || (int64_t)b->n <= max_len) return MT_OK;
    int64_t c = max_len;
    for (int k = 0; k < b->images_seen; k++) {
        int64_t lo = b->span_lo[k], hi = b->span_hi[k];
        if (lo > 0 && b->ids[lo - 1] == src->vision_start_id && src->vision_start_id >= 0) lo--;
        if (hi < (int64_t)b->n && b->ids[hi] == src->vision_end_id && src->vision_end_id >= 0) hi++;
        if (lo < c && c < hi)
            return mt_err_set(err, MT_ERR_LIMIT,
                              "the sample has %zu tokens; cutting it to %" PRId64 " would split image %d (tokens %" PRId64
                              " to %" PRId64 ")",
                              b->n, max_len, k, lo, hi);
        if (hi > c && *kept == b->images_seen) *kept = k;
    }
    b->n = (size_t)c;
    return MT_OK;
}

mt_status mt_labels_build(const mt_labels_src *src, const cJSON *messages, const cJSON *tools,
                          const int64_t *image_tokens, int n_images, const mt_labels_opts *opts,
                          mt_sample_tokens *out, mt_err *err) {
    memset(out, 0, sizeof *out);
    mt_labels_opts o = opts ? *opts : mt_labels_default_opts();
    mt_status st = check_input(src, messages, tools, image_tokens, n_images, &o, err);
    if (st) return st;
    sample sm = {.src = src, .messages = messages, .tools = cJSON_IsNull(tools) ? NULL : tools,
                 .kwargs = o.template_kwargs, .image_tokens = image_tokens, .n_images = n_images};
    builder b = {0};
    b.span_lo = mt_malloc_array((size_t)n_images + 1, sizeof *b.span_lo);
    b.span_hi = mt_malloc_array((size_t)n_images + 1, sizeof *b.span_hi);
    if (!b.span_lo || !b.span_hi) st = mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    if (!st) st = build_segments(&b, &sm, o.last_turn_only, err);
    size_t full = b.n;
    int kept = 0;
    int64_t supervised = 0, image = 0;
    if (!st) st = truncate_end(&b, src, o.max_len, &kept, err);
    for (size_t i = 0; !st && i < b.n; i++) {
        supervised += b.labels[i] != MT_LABEL_IGNORE;
        image += b.ids[i] >= 0 && (b.ids[i] == src->image_token_id || b.ids[i] == src->video_token_id);
    }
    if (!st && supervised == 0)
        st = full > b.n ? mt_err_set(err, MT_ERR_LIMIT,
                                     "the sample has %zu tokens; cutting it to %" PRId64 " leaves no supervised token",
                                     full, o.max_len)
                        : mt_err_set(err, MT_ERR_INVALID_ARG, "the assistant turns render to no supervised token");
    mt_free(b.span_lo);
    mt_free(b.span_hi);
    if (st) {
        mt_free(b.ids);
        mt_free(b.labels);
        return st;
    }
    *out = (mt_sample_tokens){.ids = b.ids, .labels = b.labels, .n = (int64_t)b.n, .n_supervised = supervised,
                              .n_image_tokens = image, .n_images = kept, .n_truncated = (int64_t)(full - b.n)};
    return MT_OK;
}

void mt_labels_stats_add(mt_labels_stats *st, const mt_sample_tokens *s) {
    st->tokens_min = st->samples ? MT_MIN(st->tokens_min, s->n) : s->n;
    st->tokens_max = st->samples ? MT_MAX(st->tokens_max, s->n) : s->n;
    st->samples++;
    st->tokens += s->n;
    st->image_tokens += s->n_image_tokens;
    st->supervised += s->n_supervised;
    st->truncated_samples += s->n_truncated > 0;
}

void mt_labels_stats_skip(mt_labels_stats *st) { st->skipped++; }

static void row(FILE *f, const char *name, const char *value) { fprintf(f, "| %-26s | %-32s |\n", name, value); }

void mt_labels_stats_print(const mt_labels_stats *st, FILE *f) {
    double tokens = st->tokens > 0 ? (double)st->tokens : 1.0;
    double mean = st->samples ? (double)st->tokens / (double)st->samples : 0.0;
    char v[64];
    row(f, "data set", "");
    fprintf(f, "|----------------------------|----------------------------------|\n");
    snprintf(v, sizeof v, "%" PRId64, st->samples);
    row(f, "samples", v);
    snprintf(v, sizeof v, "%" PRId64, st->skipped);
    row(f, "skipped when labelled", v); /* the loader's own skips are in its summary line above */
    snprintf(v, sizeof v, "%" PRId64, st->truncated_samples);
    row(f, "truncated", v);
    snprintf(v, sizeof v, "%" PRId64 " / %.1f / %" PRId64, st->tokens_min, mean, st->tokens_max);
    row(f, "tokens/sample min/mean/max", v);
    snprintf(v, sizeof v, "%" PRId64, st->tokens);
    row(f, "tokens", v);
    snprintf(v, sizeof v, "%" PRId64 " (%.1f%%)", st->image_tokens, 100.0 * (double)st->image_tokens / tokens);
    row(f, "image tokens", v);
    snprintf(v, sizeof v, "%" PRId64 " (%.1f%%)", st->supervised, 100.0 * (double)st->supervised / tokens);
    row(f, "supervised tokens", v);
}
