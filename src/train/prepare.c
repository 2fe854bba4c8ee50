/* train/prepare: a data file turned into token ids, labels and image grids, with the summary printed before a run.
 * Images are decoded here once to learn their grids (hence their token counts) and again when their sample is
 * trained, so memory holds tokens only. A video, whose decoding costs far more, is only planned here (its header
 * read, or a folder's first frame: mt_model_preprocess_video without pixels) and decoded once each time its sample
 * is trained. Its frames are sampled as the model's video params say, a function of the file and the params alone,
 * so every decoding gives the planned grid and the same pixels (and a resumed run the same steps). */
#include "train/prepare.h"

#include <string.h>

#include "engine/session.h"
#include "models/assemble.h"

/* An image or video as the model's processor makes it; pixels NULL: its grid alone (an image's pixels freed here, a
 * video only planned). */
static mt_status media_input(const mt_model *m, const char *path, bool video, float **pixels, mt_image_input *in,
                             mt_err *err) {
    float *px = NULL;
    mt_status st;
    if (video) {
        mt_image_ref ref = {.path = path, .kind = MT_MEDIA_VIDEO};
        st = mt_model_preprocess_video(m, &ref, path, pixels ? &px : NULL, in, err);
    } else {
        mt_image img;
        if ((st = mt_image_load(path, MT_IMAGE_DEFAULT_MAX_PIXELS, &img, err))) return st;
        st = mt_model_preprocess_image(m, &img, &px, in, err);
        mt_image_free(&img);
    }
    if (!st && pixels) {
        *pixels = px;
    } else {
        mt_free(px);
        in->pixels = NULL;
    }
    return st;
}

static bool is_video(const mt_sample *s, int i) { return s->videos && s->videos[i]; }

mt_status mt_prepared_pixels(const mt_model *m, const mt_prepared_sample *s, int i, float **pixels, mt_image_input *in,
                             mt_err *err) {
    const mt_image_input *want = &s->media[i];
    mt_status st = media_input(m, s->images[i], want->video, pixels, in, err);
    if (!st && (in->grid.t != want->grid.t || in->grid.h != want->grid.h || in->grid.w != want->grid.w ||
                in->seconds_per_grid != want->seconds_per_grid || in->sampled.total != want->sampled.total ||
                in->sampled.n != want->sampled.n || in->sampled.fps != want->sampled.fps)) {
        mt_free(*pixels);
        *pixels = NULL;
        in->pixels = NULL;
        st = mt_err_set(err, MT_ERR_IO, "%s: the %s changed during training", s->images[i],
                        want->video ? "video" : "image");
    }
    return st;
}

typedef struct expand_ctx {
    const mt_model *m;
    const mt_image_input *media;
} expand_ctx;

/* an image's (video's) placeholder as the model's processor expands it in the prompt, wrapper tokens and all, with
 * the edges it replaces as inference replaces them */
static mt_status expand_media(const void *user, int image, const int32_t *ids, int64_t n, int64_t at, int32_t **out,
                              int64_t *len, int64_t *before, int64_t *after, mt_err *err) {
    const expand_ctx *e = user;
    return mt_model_placeholder_expansion(e->m, ids, n, at, &e->media[image], out, len, before, after, err);
}

static mt_status prepare_one(const mt_model *m, const mt_labels_src *src, const mt_sample *in,
                             const mt_labels_opts *lo, mt_prepared_sample *out, mt_err *err) {
    int n = (int)in->n_images;
    out->media = mt_calloc((size_t)n + 1, sizeof *out->media);
    int64_t *counts = mt_calloc((size_t)n + 1, sizeof *counts);
    mt_status st = out->media && counts ? MT_OK : mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n && !st; i++) {
        st = media_input(m, in->images[i], is_video(in, i), NULL, &out->media[i], err);
        if (!st) counts[i] = mt_model_input_rows(m, &out->media[i]);
    }
    expand_ctx ec = {m, out->media};
    mt_labels_src with_images = *src;
    with_images.expand = expand_media;
    with_images.expand_user = &ec;
    if (!st) st = mt_labels_build(&with_images, in->messages, in->tools, counts, n, lo, &out->tok, err);
    mt_free(counts);
    out->images = in->images;
    out->messages = in->messages;
    out->fields = in->fields;
    out->line = in->line;
    return st;
}

mt_status mt_prepare(const mt_model *m, const mt_dataset *ds, const mt_labels_opts *lo, bool strict,
                     mt_prepared **out, mt_err *err) {
    mt_prepared *p = mt_calloc(1, sizeof *p);
    size_t n = mt_dataset_count(ds);
    if (!p || !(p->samples = mt_calloc(n + 1, sizeof *p->samples))) {
        mt_free(p);
        return mt_err_set(err, MT_ERR_NOMEM, "out of memory for %zu samples", n);
    }
    mt_labels_src src = mt_labels_src_from_model(m);
    if (!src.tok || !src.tmpl) {
        mt_prepared_free(p);
        return mt_err_set(err, MT_ERR_INVALID_ARG, "%s: training needs the model's tokenizer (tokenizer.json or tokenizer.model) and "
                          "a chat template", m->dir);
    }
    for (size_t i = 0; i < n; i++) {
        const mt_sample *s = mt_dataset_sample(ds, i);
        mt_err e = {0};
        mt_prepared_sample *ps = &p->samples[p->n];
        mt_status st = prepare_one(m, &src, s, lo, ps, &e);
        if (st == MT_ERR_NOMEM) {
            *err = e;
            mt_prepared_free(p);
            return st;
        }
        if (st) {
            mt_free(ps->media);
            mt_sample_tokens_release(&ps->tok);
            memset(ps, 0, sizeof *ps);
            mt_labels_stats_skip(&p->stats);
            if (strict) {
                mt_prepared_free(p);
                return mt_err_set(err, st, "sample at line %lld: %s", (long long)s->line, e.msg);
            }
            mt_log(MT_LOG_INFO, "skipping the sample at line %lld: %s", (long long)s->line, e.msg);
            continue;
        }
        mt_labels_stats_add(&p->stats, &ps->tok);
        p->n++;
    }
    *out = p;
    return MT_OK;
}

void mt_prepared_free(mt_prepared *p) {
    if (!p) return;
    for (size_t i = 0; i < p->n; i++) {
        mt_free(p->samples[i].media);
        mt_sample_tokens_release(&p->samples[i].tok);
    }
    mt_free(p->samples);
    mt_free(p);
}
