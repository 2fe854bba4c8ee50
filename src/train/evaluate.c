/* train/evaluate: held-out exact match on the samples' own prompts. */
#include "train/evaluate.h"

#include <ctype.h>
#include <string.h>

#include "engine/session.h"
#include "mitten.h"

typedef struct answer {
    int32_t *ids;
    int64_t n, cap;
} answer;

static bool collect(void *user, int32_t token) {
    answer *a = user;
    if (a->n == a->cap) return false;
    a->ids[a->n++] = token;
    return true;
}

/* The n bytes of text at s (decoded with special tokens left out) without the white space around them; *n shrinks
 * to match. A 0 byte is text like any other. */
static const char *trim(const char *s, size_t *n) {
    while (*n && isspace((unsigned char)s[*n - 1])) (*n)--;
    while (*n && isspace((unsigned char)*s)) s++, (*n)--;
    return s;
}

static mt_status same_text(const mt_tokenizer *tok, const int32_t *a, int64_t na, const int32_t *b, int64_t nb,
                           bool *same, mt_err *err) {
    char *ta = NULL, *tb = NULL;
    size_t la, lb;
    mt_status st = mt_tokenizer_decode(tok, a, (size_t)na, true, &ta, &la, err);
    if (!st) st = mt_tokenizer_decode(tok, b, (size_t)nb, true, &tb, &lb, err);
    if (!st) {
        const char *a_text = trim(ta, &la), *b_text = trim(tb, &lb);
        *same = la == lb && memcmp(a_text, b_text, la) == 0;
    }
    mt_free(ta);
    mt_free(tb);
    return st;
}

static mt_status answer_one(mt_session *s, const mt_model *m, const mt_prepared_sample *ps, answer *a,
                            int64_t max_new, bool *counted, bool *ok, mt_err *err) {
    const int32_t *ids = ps->tok.ids, *labels = ps->tok.labels;
    int64_t end = ps->tok.n - 1, begin;
    *counted = *ok = false;
    while (end > 0 && labels[end] < 0) end--;
    for (begin = end; begin > 0 && labels[begin - 1] >= 0;) begin--;
    if (end <= 0 || begin == 0) return MT_OK;
    for (int64_t i = begin; i <= end; i++)
        if (ids[i] == m->desc.image_token_id || ids[i] == m->desc.video_token_id) return MT_OK;
    int n_images = 0;
    for (int64_t i = 0; i < begin && n_images < ps->tok.n_images;) {
        int32_t id = ids[i];
        if (id != m->desc.image_token_id && id != m->desc.video_token_id) {
            i++;
            continue;
        }
        /* the input ends after its rows-th placeholder: a Qwen3-VL video has timestamp text between its frames */
        int64_t rows = mt_model_input_rows(m, &ps->media[n_images++]);
        for (int64_t seen = 0; seen < rows && i < begin; i++) seen += ids[i] == id;
        if (rows < 1) i++;
    }
    mt_image_input images[MT_DATASET_MAX_IMAGES] = {{0}}; /* patch_dim unknown (0): the session hashes
                                                           * fewer values, enough as every answer starts afresh */
    float *pixels[MT_DATASET_MAX_IMAGES] = {0};
    if (n_images > MT_DATASET_MAX_IMAGES) return MT_OK;
    mt_status st = MT_OK;
    for (int i = 0; i < n_images && !st; i++) {
        st = mt_prepared_pixels(m, ps, i, &pixels[i], &images[i], err);
    }
    mt_sampling greedy = mt_sampling_default();
    greedy.temperature = 0.0f;
    a->n = 0;
    mt_session_reset(s);
    if (!st) st = mt_session_generate(s, ids, begin, images, n_images, max_new, &greedy, collect, a, NULL, err);
    if (!st) {
        /* ids without a token (a head's padding rows past the tokenizer's vocab) have no text: left out, as GRPO's
         * completion text leaves them out, so such an answer scores instead of stopping the run */
        int64_t k = 0;
        for (int64_t t = 0; t < a->n; t++)
            if (mt_tokenizer_id_to_token(m->tok, a->ids[t], NULL)) a->ids[k++] = a->ids[t];
        a->n = k;
        *counted = true;
        st = same_text(m->tok, a->ids, a->n, ids + begin, end + 1 - begin, ok, err);
    }
    for (int i = 0; i < n_images; i++) mt_free(pixels[i]);
    return st;
}

mt_status mt_eval_exact_match(const mt_model *m, const mt_prepared *eval, int64_t max_new_tokens, int n_threads,
                              int64_t *matched, int64_t *total, mt_err *err) {
    mt_session_params sp = {.n_threads = n_threads};
    answer a = {.cap = max_new_tokens};
    mt_session *s = NULL;
    *matched = *total = 0;
    if (!(a.ids = mt_malloc_array((size_t)max_new_tokens + 1, sizeof *a.ids)))
        return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    mt_status st = mt_session_new(m, &sp, &s, err);
    for (size_t i = 0; i < eval->n && !st; i++) {
        bool counted, ok;
        st = answer_one(s, m, &eval->samples[i], &a, max_new_tokens, &counted, &ok, err);
        *total += counted;
        *matched += ok;
    }
    mt_session_free(s);
    mt_free(a.ids);
    return st;
}
