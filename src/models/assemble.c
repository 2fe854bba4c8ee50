/* models/assemble: processor, vision tower and decoder put together for one sequence (see assemble.h). */
#include "models/assemble.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "media/video.h"
#include "models/decoder.h"

#define MAX_EXPANSION (INT64_C(1) << 24)

mt_status mt_model_preprocess_image(const mt_model *m, const mt_image *img, float **pixels, mt_image_input *out,
                                    mt_err *err) {
    const mt_processor_part *p = m->comp->processor;
    if (!p || !m->comp->vision) return mt_err_set(err, MT_ERR_UNSUPPORTED, "%s takes no images", m->comp->name);
    *pixels = NULL;
    *out = (mt_image_input){0};
    mt_status st = p->preprocess(m->processor, img, pixels, &out->n_patches, &out->grid, &out->patch_dim, err);
    out->pixels = *pixels;
    return st;
}

static mt_status check_video_params(const mt_video_params *vp, mt_err *err) {
    if (!(vp->fps >= 0 && vp->fps <= 1000))
        return mt_err_set(err, MT_ERR_INVALID_ARG, "video fps %g is outside [0, 1000] (0: the default)", vp->fps);
    const struct {
        const char *name;
        int64_t v;
    } f[] = {{"nframes", vp->nframes},       {"min_frames", vp->min_frames}, {"max_frames", vp->max_frames},
             {"max_pixels", vp->max_pixels}, {"total_pixels", vp->total_pixels}};
    for (size_t i = 0; i < MT_ARRAY_LEN(f); i++)
        if (f[i].v < 0)
            return mt_err_set(err, MT_ERR_INVALID_ARG, "video %s %lld is negative", f[i].name, (long long)f[i].v);
    return MT_OK;
}

/* The error names the temporary file a video's bytes went to; the caller's name says more. */
static void rename_in_err(mt_err *err, const char *from, const char *to) {
    char *at = err ? strstr(err->msg, from) : NULL;
    if (!at) return;
    char rest[MT_ERR_MSG_MAX];
    snprintf(rest, sizeof rest, "%s", at + strlen(from));
    snprintf(at, sizeof err->msg - (size_t)(at - err->msg), "%s%s", to, rest);
}

/* Writes bytes to a new file only this user may read, in $TMPDIR (else /tmp); path gets its name. */
static mt_status write_private_temp(const void *data, size_t size, char *path, size_t cap, mt_err *err) {
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir) dir = "/tmp";
    if ((size_t)snprintf(path, cap, "%s/mitten-video-XXXXXX", dir) >= cap)
        return mt_err_set(err, MT_ERR_IO, "TMPDIR %s: path too long", dir);
    int fd = mkstemp(path);
    if (fd < 0) return mt_err_set(err, MT_ERR_IO, "%s: cannot create a temporary file: %s", dir, strerror(errno));
    bool ok = fchmod(fd, 0600) == 0;
    for (size_t at = 0; ok && at < size;) {
        ssize_t w = write(fd, (const char *)data + at, size - at);
        if (w < 0 && errno == EINTR) continue;
        ok = w > 0;
        if (ok) at += (size_t)w;
    }
    int saved = errno;
    if (close(fd) != 0 && ok) {
        ok = false;
        saved = errno;
    }
    if (ok) return MT_OK;
    unlink(path);
    return mt_err_set(err, MT_ERR_IO, "%s: cannot write a temporary copy of a video: %s", dir, strerror(saved));
}

mt_status mt_model_preprocess_video(const mt_model *m, const mt_image_ref *ref, const char *name, float **pixels,
                                    mt_image_input *out, mt_err *err) {
    const mt_processor_part *p = m->comp->processor;
    if (!p || !m->comp->vision || !p->preprocess_video)
        return mt_err_set(err, MT_ERR_UNSUPPORTED, "%s: %s takes no videos", name, m->comp->name);
    mt_status st = check_video_params(&m->params.video, err);
    if (st) return st;
    char tmp[4200];
    const char *path = ref->path;
    if (!path) {
        if (!ref->data || ref->size == 0) return mt_err_set(err, MT_ERR_INVALID_ARG, "%s: no path and no bytes", name);
        if ((st = write_private_temp(ref->data, ref->size, tmp, sizeof tmp, err))) return st;
        path = tmp;
    }
    mt_video *v;
    if (pixels && mt_video_open(path, MT_VIDEO_DEFAULT_MAX_PIXELS, &v, NULL) == MT_OK) {
        const mt_video_info *info = mt_video_get_info(v);
        mt_log(MT_LOG_INFO, "decoding %s (%lld frames, %.1f s, %lldx%lld) ...", name, (long long)info->n_frames,
               info->duration, (long long)info->width, (long long)info->height);
        mt_video_close(v);
    }
    double t0 = mt_time_now();
    float *dropped = NULL;
    *out = (mt_image_input){0};
    if (pixels) *pixels = NULL;
    if (!pixels && p->plan_video) {
        st = p->plan_video(m->processor, path, &m->params.video, out, err);
    } else {
        st = p->preprocess_video(m->processor, path, &m->params.video, pixels ? pixels : &dropped, out, err);
        mt_free(dropped);
        if (!pixels) out->pixels = NULL;
    }
    if (path == tmp) {
        unlink(tmp);
        if (st) rename_in_err(err, tmp, name);
    }
    if (st && err && !strstr(err->msg, name)) mt_err_prefix(err, "%s", name);
    if (st || !pixels) return st;
    mt_log(MT_LOG_INFO, "%s: %lld temporal groups of %lldx%lld patches, %lld tokens, in %.2f s", name,
           (long long)out->grid.t, (long long)out->grid.h,
           (long long)out->grid.w, (long long)mt_model_input_rows(m, out), mt_time_now() - t0);
    return MT_OK;
}

mt_status mt_model_tiles_input(const mt_model *m, const int64_t shape[4], const float *pixels, mt_image_input *out,
                               mt_err *err) {
    const mt_vision_part *v = m->comp->vision;
    if (!v) return mt_err_set(err, MT_ERR_UNSUPPORTED, "%s takes no images", m->comp->name);
    if (!v->tiles_input)
        return mt_err_set(err, MT_ERR_UNSUPPORTED, "%s's vision tower takes patch rows [N, P] with their grid, not "
                          "tiles [T, C, S, S]", m->comp->name);
    return v->tiles_input(m->vision, shape, pixels, out, err);
}

int mt_model_pixel_shape(const mt_model *m, const mt_image_input *img, int64_t shape[4]) {
    const mt_processor_part *p = m->comp->processor;
    if (p && p->pixel_shape) return p->pixel_shape(m->processor, img, shape);
    shape[0] = img->n_patches;
    shape[1] = img->patch_dim;
    return 2;
}

/* The processor's placeholder expansion of an image or a video (it checks the grid). */
static mt_status tokens_of(const mt_model *m, const mt_image_input *in, int32_t *out, int64_t cap, int64_t *n,
                           mt_err *err) {
    const mt_processor_part *p = m->comp->processor;
    if (!p) return mt_err_set(err, MT_ERR_UNSUPPORTED, "%s takes no images", m->comp->name);
    if (!in->video) return p->image_tokens(m->processor, in->grid, out, cap, n, err);
    if (!p->video_tokens) return mt_err_set(err, MT_ERR_UNSUPPORTED, "%s takes no videos", m->comp->name);
    return p->video_tokens(m->processor, in, out, cap, n, err);
}

/* How many token ids one placeholder becomes. */
static mt_status expansion_len(const mt_model *m, const mt_image_input *in, int64_t *n, mt_err *err) {
    mt_status st = tokens_of(m, in, NULL, 0, n, err);
    mt_image_grid g = in->grid;
    if (!st && (*n < 1 || *n > MAX_EXPANSION))
        st = mt_err_set(err, MT_ERR_LIMIT, "%s of grid %lldx%lldx%lld would take %lld tokens",
                        in->video ? "a video" : "an image", (long long)g.t, (long long)g.h, (long long)g.w,
                        (long long)*n);
    return st;
}

/* The expansion itself into out, which holds the n ids expansion_len gave. */
static mt_status expansion_fill(const mt_model *m, const mt_image_input *in, int32_t *out, int64_t n, mt_err *err) {
    int64_t got = 0;
    mt_status st = tokens_of(m, in, out, n, &got, err);
    return st ? st : got == n ? MT_OK : mt_err_set(err, MT_ERR_INTERNAL, "placeholder expansion changed size");
}

/* The processor's expansion of one placeholder in a new buffer; *ids is the caller's to free. */
static mt_status expansion(const mt_model *m, const mt_image_input *in, int32_t **ids, int64_t *n, mt_err *err) {
    mt_status st = expansion_len(m, in, n, err);
    if (st) return st;
    if (!(*ids = mt_malloc_array((size_t)*n, sizeof(int32_t)))) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    if ((st = expansion_fill(m, in, *ids, *n, err))) {
        mt_free(*ids);
        *ids = NULL;
    }
    return st;
}

mt_status mt_model_image_tokens(const mt_model *m, mt_image_grid g, int32_t **ids, int64_t *n, mt_err *err) {
    return expansion(m, &(mt_image_input){.grid = g}, ids, n, err);
}

mt_status mt_model_input_tokens(const mt_model *m, const mt_image_input *in, int32_t **ids, int64_t *n, mt_err *err) {
    return expansion(m, in, ids, n, err);
}

/* The feature rows of one expansion: the ids of its kind's placeholder. */
static int64_t rows_of(const mt_model *m, const mt_image_input *in) {
    int32_t *ids;
    int64_t n, rows = 0, id = in->video ? m->desc.video_row_id : m->desc.image_token_id;
    mt_err err;
    if (expansion(m, in, &ids, &n, &err)) return -1;
    for (int64_t i = 0; i < n; i++) rows += ids[i] == id;
    mt_free(ids);
    return rows;
}

int64_t mt_model_image_rows(const mt_model *m, mt_image_grid g) { return rows_of(m, &(mt_image_input){.grid = g}); }

int64_t mt_model_input_rows(const mt_model *m, const mt_image_input *in) { return rows_of(m, in); }

uint64_t mt_image_input_hash(const mt_image_input *img) {
    uint64_t h = 0xcbf29ce484222325ull;
    /* a video's seconds move its positions: the same frames at another rate are another input */
    double seconds = img->video ? img->seconds_per_grid : -1.0;
    int64_t dims[6] = {img->grid.t, img->grid.h, img->grid.w, img->n_patches, img->video, 0};
    memcpy(&dims[5], &seconds, sizeof seconds);
    const unsigned char *b = (const unsigned char *)dims;
    for (size_t i = 0; i < sizeof dims; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    /* 8 bytes at a time: the pixels of a large image are tens of megabytes */
    int64_t width = img->patch_dim > 0 ? img->patch_dim : 1;
    size_t n = (size_t)(img->n_patches * width) * sizeof(float) / 8;
    const uint64_t *w = (const uint64_t *)img->pixels;
    for (size_t i = 0; i < n; i++) h = (h ^ w[i]) * 0x100000001b3ull;
    return h;
}

/* What an id stands for: nothing, an image, a video, or either (a family whose videos share the image's id: the
 * input tells). */
typedef enum media_kind { KIND_NONE, KIND_IMAGE, KIND_VIDEO, KIND_EITHER } media_kind;

/* video_id: desc.video_token_id for a prompt's placeholders, desc.video_row_id for an expanded prompt's feature
 * rows. A model whose processor takes no videos reads its video token as text, as before videos were taken. */
static media_kind kind_of(const mt_model *m, int32_t id, int64_t video_id) {
    const mt_processor_part *p = m->comp->processor;
    bool video = p && p->video_tokens && video_id >= 0 && id == video_id;
    bool image = m->desc.image_token_id >= 0 && id == m->desc.image_token_id;
    return image && video ? KIND_EITHER : video ? KIND_VIDEO : image ? KIND_IMAGE : KIND_NONE;
}

static media_kind placeholder_kind(const mt_model *m, int32_t id) { return kind_of(m, id, m->desc.video_token_id); }

static media_kind row_kind(const mt_model *m, int32_t id) { return kind_of(m, id, m->desc.video_row_id); }

/* Whether a placeholder of kind k takes input in (untyped: every input is an image, the video token is text). */
static bool takes(media_kind k, bool typed) { return k == KIND_IMAGE || k == KIND_EITHER || (typed && k == KIND_VIDEO); }

/* Whether an expansion writes its own frame edges (see mt_processor_part.video_tokens). */
static bool has_edges(const mt_model *m, const int32_t *ids, int64_t n) {
    for (int64_t i = 0; i < n && m->desc.vision_start_id >= 0; i++)
        if (ids[i] == m->desc.vision_start_id) return true;
    return false;
}

mt_status mt_model_placeholder_expansion(const mt_model *m, const int32_t *ids, int64_t n, int64_t i,
                                        const mt_image_input *in, int32_t **out, int64_t *len, int64_t *before,
                                        int64_t *after, mt_err *err) {
    mt_status st = expansion(m, in, out, len, err);
    if (st) return st;
    bool own = in->video && has_edges(m, *out, *len) && i > 0 && i + 1 < n && ids[i - 1] == m->desc.vision_start_id &&
               ids[i + 1] == m->desc.vision_end_id;
    *before = *after = own;
    return MT_OK;
}

/* mt_model_expand_images and mt_model_expand_inputs: inputs[k].video is the kind of input k; typed: whether the
 * caller gave kinds (without, the video token is text). */
static mt_status expand(const mt_model *m, const int32_t *ids, int64_t n, const mt_image_input *inputs, bool typed,
                        int n_inputs, int32_t **out, int64_t *out_n, mt_err *err) {
    int64_t total = n;
    int found = 0;
    for (int64_t i = 0; i < n; i++) {
        media_kind kind = placeholder_kind(m, ids[i]);
        if (!takes(kind, typed)) continue;
        if (found >= n_inputs)
            return mt_err_set(err, MT_ERR_INVALID_ARG, "the prompt has more placeholders than the %d image(s) and "
                              "video(s)", n_inputs);
        bool want = inputs[found].video, vid = kind == KIND_VIDEO;
        if (kind != KIND_EITHER && want != vid)
            return mt_err_set(err, MT_ERR_INVALID_ARG, "input %d is %s but its placeholder is the %s token", found + 1,
                              want ? "a video" : "an image", vid ? "video" : "image");
        int32_t *e;
        int64_t k, before, after;
        mt_status st = mt_model_placeholder_expansion(m, ids, n, i, &inputs[found++], &e, &k, &before, &after, err);
        if (st) return st;
        mt_free(e);
        total += k - 1 - before - after;
    }
    if (found != n_inputs)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "%d image(s) and video(s) given but the prompt has %d "
                          "placeholder(s)", n_inputs, found);
    int32_t *r = mt_malloc_array((size_t)MT_MAX(total, 1), sizeof(int32_t));
    if (!r) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    int64_t at = 0;
    int k = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!takes(placeholder_kind(m, ids[i]), typed)) {
            r[at++] = ids[i];
            continue;
        }
        int32_t *e;
        int64_t len, before, after;
        mt_status st = mt_model_placeholder_expansion(m, ids, n, i, &inputs[k++], &e, &len, &before, &after, err);
        if (st || at - before + len > total) {
            mt_free(r);
            if (!st) mt_free(e);
            return st ? st : mt_err_set(err, MT_ERR_INTERNAL, "placeholder expansion changed size");
        }
        at -= before;
        memcpy(r + at, e, (size_t)len * sizeof(int32_t));
        mt_free(e);
        at += len;
        i += after;
    }
    *out = r;
    *out_n = total;
    return MT_OK;
}

mt_status mt_model_expand_images(const mt_model *m, const int32_t *ids, int64_t n, const mt_image_grid *grids,
                                 int n_images, int32_t **out, int64_t *out_n, mt_err *err) {
    if (n_images < 0 || n_images > 4096) return mt_err_set(err, MT_ERR_LIMIT, "%d images is too many", n_images);
    mt_image_input *in = mt_malloc_array((size_t)n_images + 1, sizeof *in);
    if (!in) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    for (int k = 0; k < n_images; k++) in[k] = (mt_image_input){.grid = grids[k]};
    mt_status st = expand(m, ids, n, in, false, n_images, out, out_n, err);
    mt_free(in);
    return st;
}

mt_status mt_model_expand_inputs(const mt_model *m, const int32_t *ids, int64_t n, const mt_image_input *inputs,
                                 int n_inputs, int32_t **out, int64_t *out_n, mt_err *err) {
    if (n_inputs < 0 || n_inputs > 4096)
        return mt_err_set(err, MT_ERR_LIMIT, "%d images and videos is too many", n_inputs);
    return expand(m, ids, n, inputs, true, n_inputs, out, out_n, err);
}

mt_status mt_model_positions(const mt_model *m, const int32_t *ids, int64_t L, const mt_image_input *images,
                             int n_images, int64_t start, int64_t *pos, int64_t *next, mt_err *err) {
    const mt_processor_part *p = m->comp->processor;
    if (!p) {
        if (n_images) return mt_err_set(err, MT_ERR_UNSUPPORTED, "%s takes no images", m->comp->name);
        for (int a = 0; a < m->desc.pos_axes; a++)
            for (int64_t i = 0; i < L; i++) pos[a * L + i] = start + i;
        *next = start + L;
        return MT_OK;
    }
    return p->positions(m, m->processor, ids, L, images, n_images, start, pos, next, err);
}

static mt_status ctx_status(mt_ctx *ctx, mt_err *err) {
    if (err) *err = ctx->err;
    return ctx->status ? ctx->status : MT_ERR_INTERNAL;
}

mt_status mt_model_assemble(const mt_model *m, mt_ctx *ctx, const int32_t *ids, int64_t L, const mt_image_input *images,
                            int n_images, const int64_t *pos, const mt_dump *dump, mt_batch *out, mt_err *err) {
    *out = (mt_batch){.n = L, .pos = pos};
    int64_t H = m->desc.hidden_size, n_rows = 0;
    for (int64_t i = 0; i < L; i++) n_rows += row_kind(m, ids[i]) != KIND_NONE;
    /* the rows of every image and video placeholder in prompt order: input k fills the next ones, of its kind */
    int64_t *rows = mt_arena_alloc(ctx->arena, (size_t)(n_rows + 1) * sizeof *rows);
    if (!rows) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    for (int64_t i = 0, k = 0; i < L && n_rows; i++)
        if (row_kind(m, ids[i]) != KIND_NONE) rows[k++] = i;
    if (n_images && !m->comp->vision) return mt_err_set(err, MT_ERR_UNSUPPORTED, "%s takes no images", m->comp->name);
    /* inference: the output and the DeepStack levels first, so each image's scratch can go once its rows are in */
    mt_tensor *x = ctx->tape ? NULL : mt_tensor_new_2d(ctx, MT_F32, L, H);
    mt_tensor *feats = NULL, *deep[MT_MAX_DEEPSTACK] = {0};
    const mt_vision_part *vp = m->comp->vision;
    int n_deep = n_images && vp->deepstack_levels ? vp->deepstack_levels(m->vision) : 0;
    if (n_deep > MT_MAX_DEEPSTACK) return mt_err_set(err, MT_ERR_LIMIT, "%d DeepStack levels is too many", n_deep);
    for (int j = 0; j < n_deep && !ctx->tape; j++)
        if (!(deep[j] = mt_tensor_new_2d(ctx, MT_F32, n_rows, H))) return ctx_status(ctx, err);
    int64_t filled = 0;
    for (int i = 0; i < n_images; i++) {
        mt_arena_mark mark = mt_arena_save(ctx->arena);
        mt_tensor *ds[MT_MAX_DEEPSTACK];
        int nd = 0;
        mt_tensor *f = vp->encode(m, m->vision, ctx, &images[i], ds, &nd, dump);
        if (!f) return ctx_status(ctx, err);
        int64_t n = f->shape[0];
        if (filled + n > n_rows)
            return mt_err_set(err, MT_ERR_INVALID_ARG, "the images and videos give more than the prompt's %lld "
                              "placeholder tokens", (long long)n_rows);
        for (int64_t r = 0; r < n; r++) {
            media_kind kind = row_kind(m, ids[rows[filled + r]]);
            if (kind != KIND_EITHER && (kind == KIND_VIDEO) != images[i].video)
                return mt_err_set(err, MT_ERR_INVALID_ARG, "input %d is %s, but its feature row %lld (prompt position "
                                  "%lld) is not %s token", i + 1, images[i].video ? "a video" : "an image",
                                  (long long)r, (long long)rows[filled + r], images[i].video ? "a video" : "an image");
        }
        if (nd != n_deep) return mt_err_set(err, MT_ERR_INTERNAL, "the vision tower gave %d DeepStack levels", nd);
        if (ctx->tape) {
            feats = feats ? mt_op_concat_rows(ctx, feats, f) : f;
            for (int j = 0; j < nd; j++) deep[j] = deep[j] ? mt_op_concat_rows(ctx, deep[j], ds[j]) : ds[j];
        } else {
            for (int64_t r = 0; r < n; r++) memcpy(mt_f32(x) + rows[filled + r] * H, mt_f32(f) + r * H, (size_t)H * 4);
            for (int j = 0; j < nd; j++)
                memcpy(mt_f32(deep[j]) + filled * H, mt_f32(ds[j]), (size_t)(n * H) * sizeof(float));
            if (!dump || !dump->fn) mt_arena_restore(ctx->arena, mark);
        }
        filled += n;
    }
    if (filled != n_rows)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "the prompt has %lld image and video tokens, its inputs give %lld",
                          (long long)n_rows, (long long)filled);
    mt_tensor *emb = mt_decoder_embed(m->decoder, ctx, ids, L);
    if (!emb) return ctx_status(ctx, err);
    if (ctx->tape) {
        x = feats ? mt_op_scatter_rows(ctx, emb, rows, feats) : emb;
    } else {
        for (int64_t i = 0, k = 0; i < L; i++) {
            if (k < n_rows && rows[k] == i) {
                k++;
                continue;
            }
            memcpy(mt_f32(x) + i * H, mt_f32(emb) + i * H, (size_t)H * sizeof(float));
        }
    }
    mt_injection *inj = n_deep ? mt_arena_alloc(ctx->arena, (size_t)n_deep * sizeof *inj) : NULL;
    if (n_deep && !inj) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    for (int j = 0; j < n_deep; j++) inj[j] = (mt_injection){.layer = j, .rows = rows, .feat = deep[j]};
    if (!x) return ctx_status(ctx, err);
    out->embeds = x;
    out->inject = inj;
    out->n_inject = n_deep;
    if (dump && dump->fn) mt_dump_tensor(dump, x, "inputs_embeds");
    return MT_OK;
}

mt_tensor *mt_model_encode_image(const mt_model *m, mt_ctx *ctx, const mt_image_input *img, const mt_dump *dump) {
    if (!m->comp->vision) return mt_ctx_fail(ctx, MT_ERR_UNSUPPORTED, "%s takes no images", m->comp->name);
    mt_tensor *deep[MT_MAX_DEEPSTACK];
    int n_deep;
    return m->comp->vision->encode(m, m->vision, ctx, img, deep, &n_deep, dump);
}

mt_tensor *mt_model_forward(const mt_model *m, mt_ctx *ctx, mt_kv *kv, const mt_batch *b, const mt_dump *dump) {
    return mt_decoder_forward(m->decoder, ctx, kv, b, dump);
}

mt_tensor *mt_model_logits(const mt_model *m, mt_ctx *ctx, const mt_tensor *hidden, const int64_t *idx, int64_t n) {
    const mt_tensor *h = idx ? mt_op_gather_rows(ctx, hidden, idx, n) : hidden;
    return mt_op_linear(ctx, h, mt_decoder_lm_head(m->decoder), NULL);
}

mt_status mt_model_kv_new(const mt_model *m, int max_seqs, int64_t max_rows, mt_kv **out, mt_err *err) {
    mt_kv_params p = {.n_layers = (int)m->desc.n_layers, .k_width = m->desc.k_width, .v_width = m->desc.v_width,
                      .dtype = MT_F32, .max_rows = max_rows, .max_seqs = max_seqs};
    return mt_kv_new(&p, out, err);
}

const mt_tensor *mt_model_lm_head(const mt_model *m) { return mt_decoder_lm_head(m->decoder); }

mt_tensor *mt_model_embed(const mt_model *m, mt_ctx *ctx, const int32_t *ids, int64_t n) {
    return mt_decoder_embed(m->decoder, ctx, ids, n);
}
