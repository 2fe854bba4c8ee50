/* models/gguf_source: GGUF files as a checkpoint folder (see gguf_source.h). Names and keys are the ones
 * gguf_export.c writes, which are llama.cpp's converter's, so files from either load. */
#include "models/gguf_source.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/file.h"
#include "base/json.h"
#include "io/gguf.h"
#include "models/gguf_export_int.h"
#include "tensor/cpu/cpu.h"
#include "tensor/quant.h"
#include "text/spm.h"

enum { MAX_FILES = 8, MAX_LAYERS = 1024 };

struct mt_gguf_source {
    mt_gguf *text, *vision;
    char folder[4096];
    const char *files[MAX_FILES]; /* names written into folder */
    size_t n_files;
    void **owned; /* joined tensors */
    size_t n_owned, cap_owned;
    mt_st_tensor *tensors;
    size_t n_tensors, cap_tensors;
    const char *path; /* the model file, for messages */
};

const mt_mapping *mt_gguf_source_mapping_of(const mt_gguf_source *s, const void *p, size_t n) {
    if (!s) return NULL;
    const mt_mapping *m = mt_gguf_mapping_of(s->text, p, n);
    return m ? m : mt_gguf_mapping_of(s->vision, p, n);
}

bool mt_gguf_is_file(const char *path) {
    FILE *f = fopen(path, "rb");
    char magic[4] = {0};
    bool yes = f && fread(magic, 1, 4, f) == 4 && !memcmp(magic, "GGUF", 4);
    if (f) fclose(f);
    return yes;
}

/* The weights' owner: released when the checkpoint handle closes. */
static void release_weights(void *user) {
    mt_gguf_source *s = user;
    for (size_t i = 0; i < s->n_owned; i++) mt_free(s->owned[i]);
    mt_free(s->owned);
    mt_gguf_close(s->text);
    mt_gguf_close(s->vision);
    s->owned = NULL, s->n_owned = s->cap_owned = 0, s->text = s->vision = NULL;
}

void mt_gguf_source_close(mt_gguf_source *s) {
    if (!s) return;
    char path[4200];
    for (size_t i = 0; i < s->n_files; i++) {
        snprintf(path, sizeof path, "%s/%s", s->folder, s->files[i]);
        unlink(path);
    }
    if (s->folder[0]) rmdir(s->folder);
    release_weights(s);
    mt_free(s->tensors);
    mt_free(s);
}

/* ---- tensors under checkpoint names ---- */

static void *own(mt_gguf_source *s, size_t bytes);

/* A view of t's bytes under a checkpoint name (the name kept with the joined tensors: the handle copies it). */
static mt_status add_view(mt_gguf_source *s, const char *name, int ndim, const int64_t *shape, mt_dtype dtype,
                          const void *data, size_t nbytes, mt_err *err) {
    char *copy = own(s, strlen(name) + 1);
    if (!copy || !mt_grow((void **)&s->tensors, &s->cap_tensors, s->n_tensors + 1, sizeof *s->tensors))
        return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    strcpy(copy, name);
    mt_st_tensor v = {.name = copy, .dtype = dtype, .ndim = ndim, .data = data, .nbytes = nbytes};
    for (int d = 0; d < ndim; d++) v.shape[d] = shape[d];
    s->tensors[s->n_tensors++] = v;
    return MT_OK;
}

static void *own(mt_gguf_source *s, size_t bytes) {
    void *p = mt_malloc_aligned(bytes);
    if (p && !mt_grow((void **)&s->owned, &s->cap_owned, s->n_owned + 1, sizeof *s->owned)) {
        mt_free(p);
        return NULL;
    }
    if (p) s->owned[s->n_owned++] = p;
    return p;
}

static mt_status need(const mt_gguf *g, const char *path, const char *name, const mt_gguf_tensor **t, mt_err *err) {
    mt_status st = mt_gguf_get_tensor(g, name, t, err);
    if (st) mt_err_prefix(err, "%s", path);
    return st;
}

/* gguf tensor src as checkpoint tensor dst; absent and optional: nothing. */
static mt_status map_one(mt_gguf_source *s, const mt_gguf *g, const char *path, const char *src, const char *dst,
                         bool optional, mt_err *err) {
    if (optional && !mt_gguf_find_tensor(g, src)) return MT_OK;
    const mt_gguf_tensor *t;
    mt_status st = need(g, path, src, &t, err);
    return st ? st : add_view(s, dst, t->ndim, t->shape, t->dtype, t->data, t->nbytes, err);
}

/* Rows of several tensors with the same columns stacked into one copy - of their common type, or f32 when they
 * differ: Qwen2-VL's fused qkv, which the converter splits. */
static mt_status join_rows(mt_gguf_source *s, const mt_gguf_tensor *const *parts, int n, const char *dst,
                           mt_err *err) {
    int ndim = parts[0]->ndim;
    int64_t rows = 0, cols = parts[0]->shape[ndim - 1];
    bool same = true;
    for (int i = 0; i < n; i++) {
        if (parts[i]->ndim != ndim || ndim > 2 || (ndim == 2 && parts[i]->shape[1] != cols))
            return mt_err_set(err, MT_ERR_FORMAT, "%s: its parts %s and %s differ in shape", dst, parts[0]->name,
                              parts[i]->name);
        rows += ndim == 2 ? parts[i]->shape[0] : 1;
        same &= parts[i]->dtype == parts[0]->dtype;
    }
    if (ndim == 1) cols = 0;
    for (int i = 0; ndim == 1 && i < n; i++) cols += parts[i]->shape[0];
    size_t bytes = same ? 0 : (size_t)((ndim == 2 ? rows : 1) * cols) * sizeof(float);
    for (int i = 0; same && i < n; i++) bytes += parts[i]->nbytes;
    char *out = own(s, bytes), *at = out;
    if (!out) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        if (same) {
            memcpy(at, parts[i]->data, parts[i]->nbytes);
            at += parts[i]->nbytes;
            continue;
        }
        int64_t r = ndim == 2 ? parts[i]->shape[0] : 1, c = parts[i]->shape[ndim - 1];
        mt_dtype t = parts[i]->dtype;
        for (int64_t k = 0; k < r; k++, at += (size_t)c * sizeof(float)) {
            if (mt_dtype_is_quant(t))
                mt_dequantize_row(t, (const char *)parts[i]->data + (size_t)k * mt_dtype_row_bytes(t, c), (float *)at, c);
            else
                mt_cpu_to_f32(c, (const char *)parts[i]->data + (size_t)(k * c) * mt_dtype_size(t), t, (float *)at);
        }
    }
    int64_t shape[2] = {ndim == 2 ? rows : cols, cols};
    return add_view(s, dst, ndim, shape, same ? parts[0]->dtype : MT_F32, out, bytes, err);
}

/* ---- the language model ---- */

/* Module nm's weight (absent: an error unless optional) and bias (when there is one), GGUF names under gguf_at,
 * checkpoint names under hf_at. */
static mt_status map_module(mt_gguf_source *s, const mt_gguf *g, const char *path, const char *gguf_at,
                            const char *hf_at, const mt_gguf_name *nm, mt_err *err) {
    char src[128], dst[160];
    mt_status st = MT_OK;
    for (int b = 0; b < 2 && !st; b++) {
        snprintf(src, sizeof src, "%s%s.%s", gguf_at, nm->gguf, b ? "bias" : "weight");
        snprintf(dst, sizeof dst, "%s%s.%s", hf_at, nm->hf, b ? "bias" : "weight");
        st = map_one(s, g, path, src, dst, b == 1 || nm->optional, err);
    }
    return st;
}

/* A q or k projection (weight or bias) of a llama / internlm2 file back in the checkpoint's row order (see
 * mt_gguf_unpermute_row): a copy of its rows, quantized ones as they are. */
static mt_status unpermute(mt_gguf_source *s, const mt_gguf *g, const char *src, const char *dst, int64_t heads,
                           mt_err *err) {
    const mt_gguf_tensor *t = mt_gguf_find_tensor(g, src);
    if (!t) return MT_OK; /* biases are optional; the weight was checked by map_module */
    int64_t rows = t->shape[0];
    if (t->ndim > 2 || heads <= 0 || rows % (2 * heads) || (t->ndim == 1 && mt_dtype_is_quant(t->dtype)))
        return mt_err_set(err, MT_ERR_FORMAT, "%s: %s has %lld rows, not an even head size for %lld heads", s->path,
                          src, (long long)rows, (long long)heads);
    size_t row_bytes = t->nbytes / (size_t)rows;
    char *out = own(s, t->nbytes);
    if (!out) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    for (int64_t r = 0; r < rows; r++)
        memcpy(out + (size_t)mt_gguf_unpermute_row(r, rows, heads) * row_bytes,
               (const char *)t->data + (size_t)r * row_bytes, row_bytes);
    /* the view add_view made of the file's bytes is replaced by the copy */
    for (size_t i = 0; i < s->n_tensors; i++)
        if (!strcmp(s->tensors[i].name, dst)) s->tensors[i].data = out;
    return MT_OK;
}

/* heads > 0: q and k are in llama.cpp's NORM-rope order (llama, internlm2), of heads and kv_heads heads. The
 * checkpoint names: px ("model.", InternVL's "language_model.model.") and the head's. */
static mt_status text_tensors(mt_gguf_source *s, int64_t n_layers, int64_t heads, int64_t kv_heads, const char *px,
                              const char *head, mt_err *err) {
    const mt_gguf *g = s->text;
    char gguf_at[64], hf_at[96], src[96], dst[160];
    snprintf(dst, sizeof dst, "%sembed_tokens.weight", px);
    mt_status st = map_one(s, g, s->path, "token_embd.weight", dst, false, err);
    for (int64_t l = 0; l < n_layers && !st; l++) {
        snprintf(gguf_at, sizeof gguf_at, "blk.%lld.", (long long)l);
        snprintf(hf_at, sizeof hf_at, "%slayers.%lld.", px, (long long)l);
        for (size_t k = 0; k < mt_gguf_n_text_layer && !st; k++) {
            const mt_gguf_name *nm = &mt_gguf_text_layer[k];
            st = map_module(s, g, s->path, gguf_at, hf_at, nm, err);
            bool q = !strcmp(nm->gguf, "attn_q"), kk = !strcmp(nm->gguf, "attn_k");
            for (int b = 0; b < 2 && !st && heads > 0 && (q || kk); b++) {
                snprintf(src, sizeof src, "%s%s.%s", gguf_at, nm->gguf, b ? "bias" : "weight");
                snprintf(dst, sizeof dst, "%s%s.%s", hf_at, nm->hf, b ? "bias" : "weight");
                st = unpermute(s, g, src, dst, q ? heads : kv_heads, err);
            }
        }
    }
    snprintf(dst, sizeof dst, "%snorm.weight", px);
    if (!st) st = map_one(s, g, s->path, "output_norm.weight", dst, false, err);
    if (!st) st = map_one(s, g, s->path, "output.weight", head, true, err);
    return st;
}

/* ---- the vision tower (mmproj) ---- */

/* The two Conv2d kernels [C, 3, P, P] back into the Conv3d [C, 3, 2, P, P] named dst. */
static mt_status join_patch_embed(mt_gguf_source *s, const char *path, const char *dst, mt_err *err) {
    const mt_gguf *g = s->vision;
    const mt_gguf_tensor *half[2];
    mt_status st = need(g, path, "v.patch_embd.weight", &half[0], err);
    if (!st) st = need(g, path, "v.patch_embd.weight.1", &half[1], err);
    if (st) return st;
    const mt_gguf_tensor *h = half[0];
    if (h->ndim != 4 || half[1]->ndim != 4 || memcmp(h->shape, half[1]->shape, sizeof h->shape))
        return mt_err_set(err, MT_ERR_FORMAT, "%s: v.patch_embd.weight and .weight.1 are not two equal Conv2d kernels",
                          path);
    int64_t planes = h->shape[0] * h->shape[1], plane = h->shape[2] * h->shape[3];
    float *conv = own(s, (size_t)(2 * planes * plane) * sizeof(float));
    if (!conv) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    for (int t = 0; t < 2; t++) {
        if (mt_dtype_is_quant(half[t]->dtype))
            return mt_err_set(err, MT_ERR_UNSUPPORTED, "%s: a quantized patch embedding", path);
        for (int64_t p = 0; p < planes; p++)
            mt_cpu_to_f32(plane, (const char *)half[t]->data + (size_t)(p * plane) * mt_dtype_size(half[t]->dtype),
                          half[t]->dtype, conv + (2 * p + t) * plane);
    }
    int64_t shape5[5] = {h->shape[0], h->shape[1], 2, h->shape[2], h->shape[3]};
    return add_view(s, dst, 5, shape5, MT_F32, conv, (size_t)(2 * planes * plane) * 4, err);
}

static mt_status vision_tensors(mt_gguf_source *s, const char *path, int64_t depth, bool qwen2_5, mt_err *err) {
    const mt_gguf *g = s->vision;
    mt_status st = join_patch_embed(s, path, "visual.patch_embed.proj.weight", err);

    size_t n_block;
    const mt_gguf_name *block = mt_gguf_vision_block(qwen2_5, &n_block);
    char src[96], dst[128];
    for (int64_t l = 0; l < depth && !st; l++) {
        for (int b = 0; b < 2 && !st; b++) {
            const char *suffix = b ? "bias" : "weight";
            const mt_gguf_tensor *qkv[3];
            static const char *const parts[] = {"attn_q", "attn_k", "attn_v"};
            for (int k = 0; k < 3 && !st; k++) {
                snprintf(src, sizeof src, "v.blk.%lld.%s.%s", (long long)l, parts[k], suffix);
                st = need(g, path, src, &qkv[k], err);
            }
            snprintf(dst, sizeof dst, "visual.blocks.%lld.attn.qkv.%s", (long long)l, suffix);
            if (!st) st = join_rows(s, qkv, 3, dst, err);
        }
        snprintf(src, sizeof src, "v.blk.%lld.", (long long)l);
        snprintf(dst, sizeof dst, "visual.blocks.%lld.", (long long)l);
        for (size_t k = 0; k < n_block && !st; k++) st = map_module(s, g, path, src, dst, &block[k], err);
    }
    for (size_t k = 0; k < mt_gguf_n_merger && !st; k++) st = map_module(s, g, path, "", "visual.", &mt_gguf_merger[k], err);
    return st;
}

/* InternVL's projector file under the original layout's names (InternVLChatModel: vision_model.*, mlp1.*), by the
 * names gguf_mmproj.c writes with; the split q / k / v joined back into attn.qkv. */
static mt_status internvl_tensors(mt_gguf_source *s, const char *path, int64_t depth, mt_err *err) {
    const mt_gguf *g = s->vision;
    const mt_gguf_internvit *nm = mt_gguf_internvit_names(false);
    char src[96], dst[160];
    snprintf(dst, sizeof dst, "vision_model.%sweight", nm->patch);
    mt_status st = map_one(s, g, path, "v.patch_embd.weight", dst, false, err);
    snprintf(dst, sizeof dst, "vision_model.%sbias", nm->patch);
    if (!st) st = map_one(s, g, path, "v.patch_embd.bias", dst, false, err);
    snprintf(dst, sizeof dst, "vision_model.%s", nm->cls);
    if (!st) st = map_one(s, g, path, "v.class_embd", dst, false, err);
    snprintf(dst, sizeof dst, "vision_model.%s", nm->pos);
    if (!st) st = map_one(s, g, path, "v.position_embd.weight", dst, false, err);
    for (int64_t l = 0; l < depth && !st; l++) {
        char gguf_at[64], hf_at[96];
        snprintf(gguf_at, sizeof gguf_at, "v.blk.%lld.", (long long)l);
        snprintf(hf_at, sizeof hf_at, "vision_model.%s%lld.", nm->layers, (long long)l);
        for (int b = 0; b < 2 && !st; b++) {
            const char *suffix = b ? "bias" : "weight";
            static const char *const parts[] = {"attn_q", "attn_k", "attn_v"};
            const mt_gguf_tensor *qkv[3];
            snprintf(src, sizeof src, "%sattn_q.%s", gguf_at, suffix);
            if (b && !mt_gguf_find_tensor(g, src)) break; /* no qkv bias (the 6B) */
            for (int k = 0; k < 3 && !st; k++) {
                snprintf(src, sizeof src, "%s%s.%s", gguf_at, parts[k], suffix);
                st = need(g, path, src, &qkv[k], err);
            }
            snprintf(dst, sizeof dst, "%sattn.qkv.%s", hf_at, suffix);
            if (!st) st = join_rows(s, qkv, 3, dst, err);
        }
        for (size_t k = 0; k < nm->n_block && !st; k++) st = map_module(s, g, path, gguf_at, hf_at, &nm->block[k], err);
        for (int k = 0; k < 2 && !st; k++) {
            snprintf(src, sizeof src, "%sls%d.weight", gguf_at, k + 1);
            snprintf(dst, sizeof dst, "%s%s", hf_at, k ? nm->ls2 : nm->ls1);
            st = map_one(s, g, path, src, dst, false, err);
        }
    }
    for (size_t k = 0; k < nm->n_proj && !st; k++) st = map_module(s, g, path, "", "mlp1.", &nm->proj[k], err);
    return st;
}

/* Qwen3-VL's projector file under its checkpoint names (model.visual.*); deep[j] is the block DeepStack level j
 * follows (v.deepstack.deep[j]). */
static mt_status qwen3vl_tensors(mt_gguf_source *s, const char *path, int64_t depth, const int64_t *deep, int64_t n_deep,
                                 mt_err *err) {
    const mt_gguf *g = s->vision;
    mt_status st = join_patch_embed(s, path, "model.visual.patch_embed.proj.weight", err);
    if (!st) st = map_one(s, g, path, "v.patch_embd.bias", "model.visual.patch_embed.proj.bias", false, err);
    if (!st) st = map_one(s, g, path, "v.position_embd.weight", "model.visual.pos_embed.weight", false, err);
    char gguf_at[64], hf_at[96];
    for (int64_t l = 0; l < depth && !st; l++) {
        snprintf(gguf_at, sizeof gguf_at, "v.blk.%lld.", (long long)l);
        snprintf(hf_at, sizeof hf_at, "model.visual.blocks.%lld.", (long long)l);
        for (size_t k = 0; k < mt_gguf_n_qwen3vl_block && !st; k++)
            st = map_module(s, g, path, gguf_at, hf_at, &mt_gguf_qwen3vl_block[k], err);
    }
    for (size_t k = 0; k < mt_gguf_n_qwen3vl_merger && !st; k++)
        st = map_module(s, g, path, "", "model.visual.", &mt_gguf_qwen3vl_merger[k], err);
    for (int64_t j = 0; j < n_deep && !st; j++) {
        snprintf(gguf_at, sizeof gguf_at, "v.deepstack.%lld.", (long long)deep[j]);
        snprintf(hf_at, sizeof hf_at, "model.visual.deepstack_merger_list.%lld.", (long long)j);
        for (size_t k = 0; k < mt_gguf_n_qwen3vl_merger && !st; k++)
            st = map_module(s, g, path, gguf_at, hf_at, &mt_gguf_qwen3vl_deepstack[k], err);
    }
    return st;
}

/* ---- metadata as a checkpoint folder ---- */

typedef struct meta {
    const mt_gguf *g;
    const char *path;
    mt_err *err;
    mt_status st;
} meta;

static int64_t int_key(meta *r, const char *key, bool optional, int64_t dflt) {
    if (r->st || (optional && !mt_gguf_find_kv(r->g, key))) return dflt;
    int64_t v = dflt;
    if ((r->st = mt_gguf_get_int(r->g, key, &v, r->err))) mt_err_prefix(r->err, "%s", r->path);
    return v;
}

static double f32_key(meta *r, const char *key, bool optional, double dflt) {
    if (r->st || (optional && !mt_gguf_find_kv(r->g, key))) return dflt;
    float v = 0;
    if ((r->st = mt_gguf_get_f32(r->g, key, &v, r->err))) mt_err_prefix(r->err, "%s", r->path);
    return r->st ? dflt : v;
}

static const char *str_key(meta *r, const char *key) {
    mt_gguf_str v = {0};
    if (!r->st && (r->st = mt_gguf_get_str(r->g, key, &v, r->err))) mt_err_prefix(r->err, "%s", r->path);
    return r->st ? "" : v.s;
}

static mt_status write_json(mt_gguf_source *s, const char *name, cJSON *doc, mt_err *err) {
    char path[4200];
    char *text = doc ? mt_json_print(doc, true) : NULL;
    mt_status st = text ? MT_OK : mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    if (!st) st = mt_path_join(path, sizeof path, s->folder, name, err);
    if (!st) st = mt_file_write_atomic(path, text, strlen(text), err);
    if (!st) s->files[s->n_files++] = name;
    mt_free(text);
    cJSON_Delete(doc);
    return st;
}

/* tokenizer.model of a SentencePiece vocabulary ("llama" model) as llama.cpp's llm_tokenizer_spm runs it: BPE by the
 * scores, byte fallback when the 256 byte tokens are there, no normalization but spaces as "▁" and the dummy prefix
 * of add_space_prefix (default on), tokens typed as the file says (0, undefined, as normal). The unknown token is
 * unknown_token_id's (llama.cpp's default 0) unless a token is typed UNKNOWN. Written as SentencePiece's own file
 * rather than a tokenizer.json: a tokenizer.json would need merges, which a GGUF "llama" vocabulary does not have,
 * and SentencePiece's BPE merges by exactly these scores. */
static mt_status write_spm(mt_gguf_source *s, meta *r, int64_t *n_vocab, mt_err *err) {
    const void *tok, *types = NULL, *scores = NULL;
    uint64_t n, n_types = 0, n_scores = 0;
    mt_status st = mt_gguf_get_array(r->g, "tokenizer.ggml.tokens", MT_GGUF_STR, &tok, &n, err);
    if (!st && mt_gguf_find_kv(r->g, "tokenizer.ggml.token_type"))
        st = mt_gguf_get_array(r->g, "tokenizer.ggml.token_type", MT_GGUF_I32, &types, &n_types, err);
    if (!st && mt_gguf_find_kv(r->g, "tokenizer.ggml.scores"))
        st = mt_gguf_get_array(r->g, "tokenizer.ggml.scores", MT_GGUF_F32, &scores, &n_scores, err);
    if (!st && ((types && n_types != n) || (scores && n_scores != n)))
        st = mt_err_set(err, MT_ERR_FORMAT, "%s: %llu tokens with %llu token types and %llu scores", r->path,
                        (unsigned long long)n, (unsigned long long)n_types, (unsigned long long)n_scores);
    if (!st && (n == 0 || n > MT_SPM_MAX_PIECES))
        st = mt_err_set(err, MT_ERR_FORMAT, "%s: %llu tokens (1 to %d taken)", r->path, (unsigned long long)n,
                        MT_SPM_MAX_PIECES);
    if (st) return st;
    const mt_gguf_str *tokens = tok;
    const int32_t *type = types;
    const float *score = scores;
    int64_t unk = int_key(r, "tokenizer.ggml.unknown_token_id", true, 0);
    const mt_gguf_kv *space = mt_gguf_find_kv(r->g, "tokenizer.ggml.add_space_prefix");
    mt_spm_model m = {.model_type = MT_SPM_BPE, .unk_id = (int32_t)unk, .bos_id = -1, .eos_id = -1, .pad_id = -1,
                      .add_dummy_prefix = !(space && space->type == MT_GGUF_BOOL && !space->v.b),
                      .escape_whitespaces = true, .n_pieces = (size_t)n};
    m.pieces = mt_calloc((size_t)n, sizeof *m.pieces);
    if (!m.pieces) return mt_err_set(err, MT_ERR_NOMEM, "out of memory for %llu tokens", (unsigned long long)n);
    size_t n_unk = 0, n_bytes = 0;
    for (uint64_t i = 0; i < n && !st; i++) {
        int32_t t = type ? type[i] : MT_SPM_NORMAL;
        if (t == 0) t = MT_SPM_NORMAL;
        if (t < MT_SPM_NORMAL || t > MT_SPM_BYTE)
            st = mt_err_set(err, MT_ERR_FORMAT, "%s: tokenizer.ggml.token_type[%llu] is %d, none of 0..6", r->path,
                            (unsigned long long)i, t);
        else if (tokens[i].len == 0 || tokens[i].len > MT_SPM_MAX_PIECE_LEN)
            st = mt_err_set(err, MT_ERR_FORMAT, "%s: tokenizer.ggml.tokens[%llu] is %llu bytes (1 to %d taken)",
                            r->path, (unsigned long long)i, (unsigned long long)tokens[i].len, MT_SPM_MAX_PIECE_LEN);
        m.pieces[i] = (mt_spm_piece){tokens[i].s, (uint32_t)tokens[i].len, score ? score[i] : 0.0f, (uint8_t)t};
        n_unk += t == MT_SPM_UNKNOWN;
        n_bytes += t == MT_SPM_BYTE;
    }
    if (!st && n_unk == 0) {
        if (unk < 0 || (uint64_t)unk >= n)
            st = mt_err_set(err, MT_ERR_FORMAT, "%s: no token typed UNKNOWN and tokenizer.ggml.unknown_token_id %lld "
                            "is outside the %llu tokens", r->path, (long long)unk, (unsigned long long)n);
        else m.pieces[unk].type = MT_SPM_UNKNOWN;
    }
    m.byte_fallback = n_bytes > 0;
    uint8_t *data = NULL;
    size_t len = 0;
    char path[4200];
    /* parsing what is written checks it as any tokenizer.model, with the GGUF named */
    mt_spm_model back;
    if (!st) st = mt_spm_write(&m, &data, &len, err);
    if (!st && !(st = mt_spm_parse(data, len, r->path, &back, err))) mt_spm_model_free(&back);
    if (!st) st = mt_path_join(path, sizeof path, s->folder, "tokenizer.model", err);
    if (!st) st = mt_file_write_atomic(path, data, len, err);
    if (!st) s->files[s->n_files++] = "tokenizer.model";
    mt_free(data);
    mt_free(m.pieces);
    *n_vocab = (int64_t)n;
    return st;
}

/* tokenizer.json of a byte-level BPE vocabulary ("gpt2" model), as Hugging Face tokenizers writes Qwen's and Llama 3's:
 * the Split pattern the pre-tokenizer name stands for, then ByteLevel; control and user-defined tokens as added. */
static mt_status write_tokenizer(mt_gguf_source *s, meta *r, int64_t *n_vocab, mt_err *err) {
    const char *model = str_key(r, "tokenizer.ggml.model");
    if (!r->st && !strcmp(model, "llama")) return write_spm(s, r, n_vocab, err);
    const char *pre = str_key(r, "tokenizer.ggml.pre");
    if (r->st) return r->st;
    const char *split = NULL;
    bool gpt2 = !strcmp(pre, "gpt-2"); /* ByteLevel's own regex, no Split */
    for (size_t i = 0; i < mt_gguf_n_pre_tokenizers && !split; i++)
        if (!strcmp(pre, mt_gguf_pre_tokenizers[i].name)) split = mt_gguf_pre_tokenizers[i].pattern;
    if (strcmp(model, "gpt2") || (!split && !gpt2))
        return mt_err_set(err, MT_ERR_UNSUPPORTED, "%s: tokenizer %s with pre-tokenizer %s; mitten reads SentencePiece "
                          "(llama) and byte-level BPE (gpt2) with qwen2, llama-bpe or gpt-2", r->path, model, pre);
    const void *tok, *types, *merges;
    uint64_t n, n_types, n_merges;
    mt_status st = mt_gguf_get_array(r->g, "tokenizer.ggml.tokens", MT_GGUF_STR, &tok, &n, err);
    if (!st) st = mt_gguf_get_array(r->g, "tokenizer.ggml.token_type", MT_GGUF_I32, &types, &n_types, err);
    if (!st) st = mt_gguf_get_array(r->g, "tokenizer.ggml.merges", MT_GGUF_STR, &merges, &n_merges, err);
    if (!st && n_types != n)
        st = mt_err_set(err, MT_ERR_FORMAT, "%s: %llu token types for %llu tokens", r->path,
                        (unsigned long long)n_types, (unsigned long long)n);
    if (st) return st;
    const mt_gguf_str *tokens = tok, *merge = merges;
    const int32_t *type = types;
    cJSON *doc = cJSON_CreateObject(), *added = cJSON_AddArrayToObject(doc, "added_tokens");
    cJSON *m = cJSON_AddObjectToObject(doc, "model"), *vocab = NULL, *ml = NULL;
    if (!strcmp(pre, "qwen2")) cJSON_AddStringToObject(cJSON_AddObjectToObject(doc, "normalizer"), "type", "NFC");
    cJSON *pt = cJSON_AddObjectToObject(doc, "pre_tokenizer"), *bl = pt;
    if (!gpt2) {
        cJSON_AddStringToObject(pt, "type", "Sequence");
        cJSON *seq = cJSON_AddArrayToObject(pt, "pretokenizers"), *sp = cJSON_CreateObject();
        bl = cJSON_CreateObject();
        cJSON_AddItemToArray(seq, sp);
        cJSON_AddItemToArray(seq, bl);
        cJSON_AddStringToObject(sp, "type", "Split");
        cJSON_AddStringToObject(cJSON_AddObjectToObject(sp, "pattern"), "Regex", split);
        cJSON_AddStringToObject(sp, "behavior", "Isolated");
        cJSON_AddBoolToObject(sp, "invert", false);
    }
    cJSON_AddStringToObject(bl, "type", "ByteLevel");
    cJSON_AddBoolToObject(bl, "add_prefix_space", false);
    cJSON_AddBoolToObject(bl, "trim_offsets", false);
    cJSON_AddBoolToObject(bl, "use_regex", gpt2);
    cJSON *dec = cJSON_AddObjectToObject(doc, "decoder");
    cJSON_AddStringToObject(dec, "type", "ByteLevel");
    cJSON_AddStringToObject(m, "type", "BPE");
    vocab = cJSON_AddObjectToObject(m, "vocab");
    ml = cJSON_AddArrayToObject(m, "merges");
    bool ok = doc && added && vocab && ml;
    for (uint64_t i = 0; i < n && ok; i++) {
        if (type[i] == 5) continue; /* padding rows: no token */
        if (type[i] == 3 || type[i] == 4) {
            cJSON *a = cJSON_CreateObject();
            ok = a && cJSON_AddItemToArray(added, a);
            ok = ok && cJSON_AddNumberToObject(a, "id", (double)i) && cJSON_AddStringToObject(a, "content", tokens[i].s);
            ok = ok && cJSON_AddBoolToObject(a, "special", type[i] == 3) && cJSON_AddBoolToObject(a, "normalized", false);
        } else {
            ok = cJSON_AddNumberToObject(vocab, tokens[i].s, (double)i) != NULL;
        }
    }
    for (uint64_t i = 0; i < n_merges && ok; i++) ok = cJSON_AddItemToArray(ml, cJSON_CreateString(merge[i].s));
    if (!ok) {
        cJSON_Delete(doc);
        return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    }
    *n_vocab = (int64_t)n;
    return write_json(s, "tokenizer.json", doc, err);
}

/* tokenizer_config.json: the special tokens the chat template sees, and the template. */
static mt_status write_tokenizer_config(mt_gguf_source *s, meta *r, cJSON *cfg, mt_err *err) {
    const void *tok;
    uint64_t n;
    mt_status st = mt_gguf_get_array(r->g, "tokenizer.ggml.tokens", MT_GGUF_STR, &tok, &n, err);
    if (st) return st;
    const mt_gguf_str *tokens = tok;
    cJSON *doc = cJSON_CreateObject();
    static const char *const specials[][3] = {{"tokenizer.ggml.bos_token_id", "bos_token", "bos_token_id"},
                                              {"tokenizer.ggml.eos_token_id", "eos_token", "eos_token_id"},
                                              {"tokenizer.ggml.padding_token_id", "pad_token", "pad_token_id"},
                                              {"tokenizer.ggml.unknown_token_id", "unk_token", NULL}};
    for (size_t i = 0; i < MT_ARRAY_LEN(specials); i++) {
        int64_t id = int_key(r, specials[i][0], true, -1);
        if (id < 0 || (uint64_t)id >= n) continue;
        cJSON_AddStringToObject(doc, specials[i][1], tokens[id].s);
        if (specials[i][2]) cJSON_AddNumberToObject(cfg, specials[i][2], (double)id);
    }
    const mt_gguf_kv *tmpl = mt_gguf_find_kv(r->g, "tokenizer.chat_template");
    if (tmpl && tmpl->type == MT_GGUF_STR) cJSON_AddItemToObject(doc, "chat_template", mt_json_string_n(tmpl->v.str.s, tmpl->v.str.len));
    const mt_gguf_kv *add_bos = mt_gguf_find_kv(r->g, "tokenizer.ggml.add_bos_token");
    if (add_bos && add_bos->type == MT_GGUF_BOOL) cJSON_AddBoolToObject(doc, "add_bos_token", add_bos->v.b);
    return r->st ? r->st : write_json(s, "tokenizer_config.json", doc, err);
}

/* The id of a control token by its text, or -1. */
static int64_t token_id(const mt_gguf *g, const char *text) {
    const mt_gguf_kv *kv = mt_gguf_find_kv(g, "tokenizer.ggml.tokens");
    if (!kv || kv->type != MT_GGUF_ARRAY || kv->elem != MT_GGUF_STR) return -1;
    const mt_gguf_str *t = kv->arr;
    for (uint64_t i = 0; i < kv->n; i++)
        if (!strcmp(t[i].s, text)) return (int64_t)i;
    return -1;
}

static mt_status vision_config(mt_gguf_source *s, cJSON *cfg, const char *mmproj, int64_t *depth, bool *qwen2_5,
                               mt_err *err) {
    meta r = {.g = s->vision, .path = mmproj, .err = err};
    const char *type = str_key(&r, "clip.projector_type");
    if (r.st) return r.st;
    *qwen2_5 = !strcmp(type, "qwen2.5vl_merger");
    if (!*qwen2_5 && strcmp(type, "qwen2vl_merger"))
        return mt_err_set(err, MT_ERR_UNSUPPORTED, "%s: projector %s; mitten reads qwen2vl_merger and qwen2.5vl_merger",
                          mmproj, type);
    int64_t width = int_key(&r, "clip.vision.embedding_length", false, 0);
    *depth = int_key(&r, "clip.vision.block_count", false, 0);
    const mt_gguf_tensor *up = mt_gguf_find_tensor(s->vision, "v.blk.0.ffn_up.weight");
    if (!r.st && (!up || up->ndim != 2 || width <= 0 || *depth <= 0 || *depth > MAX_LAYERS))
        return mt_err_set(err, MT_ERR_FORMAT, "%s: no v.blk.0.ffn_up.weight matrix, or a bad width or depth", mmproj);
    cJSON *vc = cJSON_AddObjectToObject(cfg, "vision_config");
    cJSON_AddNumberToObject(vc, "depth", (double)*depth);
    cJSON_AddNumberToObject(vc, "num_heads", (double)int_key(&r, "clip.vision.attention.head_count", false, 0));
    cJSON_AddNumberToObject(vc, "patch_size", (double)int_key(&r, "clip.vision.patch_size", false, 0));
    cJSON_AddNumberToObject(vc, "spatial_merge_size", (double)int_key(&r, "clip.vision.spatial_merge_size", true, 2));
    cJSON_AddNumberToObject(vc, "temporal_patch_size", 2);
    int64_t out = int_key(&r, "clip.vision.projection_dim", false, 0);
    if (*qwen2_5) {
        int64_t wa = int_key(&r, "clip.vision.n_wa_pattern", false, 0);
        cJSON_AddNumberToObject(vc, "hidden_size", (double)width);
        cJSON_AddNumberToObject(vc, "intermediate_size", (double)up->shape[0]);
        cJSON_AddNumberToObject(vc, "out_hidden_size", (double)out);
        cJSON_AddNumberToObject(vc, "window_size", 112);
        /* a video's time scale: an mmproj keeps none, every published Qwen2.5-VL writes 2 (transformers' default 4) */
        cJSON_AddNumberToObject(vc, "tokens_per_second", 2);
        cJSON_AddStringToObject(vc, "hidden_act", "silu");
        cJSON *full = cJSON_AddArrayToObject(vc, "fullatt_block_indexes");
        for (int64_t b = wa - 1; wa > 0 && b < *depth; b += wa) cJSON_AddItemToArray(full, cJSON_CreateNumber((double)b));
    } else {
        cJSON_AddNumberToObject(vc, "embed_dim", (double)width);
        cJSON_AddNumberToObject(vc, "hidden_size", (double)out);
        cJSON_AddNumberToObject(vc, "mlp_ratio", (double)(up->shape[0] / width));
    }
    /* preprocessor_config.json: mean and std from the file; min/max pixels from mitten's keys, else Qwen2-VL's */
    cJSON *pre = cJSON_CreateObject();
    const void *mean = NULL, *stdv = NULL;
    uint64_t n_mean = 0, n_std = 0;
    mt_status st = r.st;
    if (!st) st = mt_gguf_get_array(s->vision, "clip.vision.image_mean", MT_GGUF_F32, &mean, &n_mean, err);
    if (!st) st = mt_gguf_get_array(s->vision, "clip.vision.image_std", MT_GGUF_F32, &stdv, &n_std, err);
    if (!st && (n_mean != 3 || n_std != 3))
        st = mt_err_set(err, MT_ERR_FORMAT, "%s: image_mean and image_std must hold 3 values", mmproj);
    if (st) {
        cJSON_Delete(pre);
        return st;
    }
    cJSON *am = cJSON_AddArrayToObject(pre, "image_mean"), *as = cJSON_AddArrayToObject(pre, "image_std");
    for (int k = 0; k < 3; k++) {
        cJSON_AddItemToArray(am, cJSON_CreateNumber(((const float *)mean)[k]));
        cJSON_AddItemToArray(as, cJSON_CreateNumber(((const float *)stdv)[k]));
    }
    int64_t min_px = int_key(&r, "mitten.preprocessor.min_pixels", true, -1);
    int64_t max_px = int_key(&r, "mitten.preprocessor.max_pixels", true, -1);
    if (min_px < 0 || max_px < 0)
        mt_log(MT_LOG_ERROR, "%s has no min/max pixels (llama.cpp's files do not carry them): images are resized within "
               "Qwen2-VL's published 3136..12845056 pixels", mmproj);
    cJSON_AddNumberToObject(pre, "min_pixels", (double)(min_px < 0 ? 3136 : min_px));
    cJSON_AddNumberToObject(pre, "max_pixels", (double)(max_px < 0 ? 12845056 : max_px));
    cJSON_AddNumberToObject(pre, "patch_size", (double)int_key(&r, "clip.vision.patch_size", false, 0));
    cJSON_AddNumberToObject(pre, "temporal_patch_size", 2);
    cJSON_AddNumberToObject(pre, "merge_size", (double)int_key(&r, "clip.vision.spatial_merge_size", true, 2));
    cJSON_AddStringToObject(pre, "image_processor_type", "Qwen2VLImageProcessor");
    if (r.st) {
        cJSON_Delete(pre);
        return r.st;
    }
    return write_json(s, "preprocessor_config.json", pre, err);
}

/* generation_config.json: the stop tokens llama.cpp ends generation at - eos and the end-of-turn / end-of-text control
 * tokens it finds by their text - as a checkpoint lists them (Qwen's [<|im_end|>, <|endoftext|>]). */
static mt_status write_generation_config(mt_gguf_source *s, meta *r, mt_err *err) {
    int64_t eos = int_key(r, "tokenizer.ggml.eos_token_id", true, -1);
    if (r->st) return r->st;
    static const char *const ends[] = {"<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end_of_text|>"};
    cJSON *doc = cJSON_CreateObject(), *ids = cJSON_AddArrayToObject(doc, "eos_token_id");
    if (eos >= 0) cJSON_AddItemToArray(ids, cJSON_CreateNumber((double)eos));
    for (size_t i = 0; i < MT_ARRAY_LEN(ends); i++) {
        int64_t id = token_id(s->text, ends[i]);
        if (id >= 0 && id != eos) cJSON_AddItemToArray(ids, cJSON_CreateNumber((double)id));
    }
    return write_json(s, "generation_config.json", doc, err);
}

/* Qwen3-VL as Qwen3VLForConditionalGeneration's config: the language model's as text_config (its IMROPE sections as
 * an interleaved mrope_section), the tower's from the projector's keys and tensors (position table rows, DeepStack
 * levels by their v.deepstack.L tensors, as clip.cpp finds them). The processor's pixel bounds are not in llama.cpp's
 * files: mitten's keys, else Qwen3-VL's published 65536..16777216, logged. */
static mt_status qwen3vl_config(mt_gguf_source *s, cJSON **cfg, const char *model, const char *mmproj, int64_t *depth,
                                int64_t *deep, int64_t *n_deep, mt_err *err) {
    meta r = {.g = s->vision, .path = mmproj, .err = err};
    *depth = int_key(&r, "clip.vision.block_count", false, 0);
    int64_t patch = int_key(&r, "clip.vision.patch_size", false, 0);
    int64_t merge = int_key(&r, "clip.vision.spatial_merge_size", true, 2);
    const mt_gguf_tensor *pos = mt_gguf_find_tensor(s->vision, "v.position_embd.weight");
    if (!r.st && (*depth <= 0 || *depth > MAX_LAYERS || !pos || pos->ndim != 2))
        return mt_err_set(err, MT_ERR_FORMAT, "%s: a bad block count, or no v.position_embd.weight table", mmproj);
    *n_deep = 0;
    char name[64];
    for (int64_t l = 0; !r.st && l < *depth && *n_deep < 64; l++) {
        snprintf(name, sizeof name, "v.deepstack.%lld.fc1.weight", (long long)l);
        if (mt_gguf_find_tensor(s->vision, name)) deep[(*n_deep)++] = l;
    }
    const void *sec = NULL, *mean = NULL, *stdv = NULL;
    uint64_t n_sec = 0, n_mean = 0, n_std = 0;
    mt_status st = r.st;
    if (!st) st = mt_gguf_get_array(s->text, "qwen3vl.rope.dimension_sections", MT_GGUF_I32, &sec, &n_sec, err);
    if (!st) st = mt_gguf_get_array(s->vision, "clip.vision.image_mean", MT_GGUF_F32, &mean, &n_mean, err);
    if (!st) st = mt_gguf_get_array(s->vision, "clip.vision.image_std", MT_GGUF_F32, &stdv, &n_std, err);
    if (!st && (n_sec < 3 || n_mean != 3 || n_std != 3))
        st = mt_err_set(err, MT_ERR_FORMAT, "%s / %s: rope.dimension_sections needs 3 sections, image_mean and "
                        "image_std 3 values", model, mmproj);
    if (st) return st;
    cJSON *text = *cfg, *top = cJSON_CreateObject(), *vc = cJSON_AddObjectToObject(top, "vision_config");
    cJSON *rs = cJSON_AddObjectToObject(text, "rope_scaling"), *ms = cJSON_AddArrayToObject(rs, "mrope_section");
    for (int k = 0; k < 3; k++) cJSON_AddItemToArray(ms, cJSON_CreateNumber(((const int32_t *)sec)[k]));
    cJSON_AddBoolToObject(rs, "mrope_interleaved", true);
    cJSON_AddStringToObject(rs, "rope_type", "default");
    cJSON_AddStringToObject(text, "model_type", "qwen3_vl_text");
    cJSON_AddNumberToObject(vc, "depth", (double)*depth);
    cJSON_AddNumberToObject(vc, "hidden_size", (double)int_key(&r, "clip.vision.embedding_length", false, 0));
    cJSON_AddNumberToObject(vc, "intermediate_size", (double)int_key(&r, "clip.vision.feed_forward_length", false, 0));
    cJSON_AddNumberToObject(vc, "num_heads", (double)int_key(&r, "clip.vision.attention.head_count", false, 0));
    cJSON_AddNumberToObject(vc, "out_hidden_size", (double)int_key(&r, "clip.vision.projection_dim", false, 0));
    cJSON_AddNumberToObject(vc, "patch_size", (double)patch);
    cJSON_AddNumberToObject(vc, "spatial_merge_size", (double)merge);
    cJSON_AddNumberToObject(vc, "temporal_patch_size", 2);
    cJSON_AddNumberToObject(vc, "num_position_embeddings", (double)pos->shape[0]);
    cJSON_AddStringToObject(vc, "hidden_act", "gelu_pytorch_tanh");
    cJSON *dl = cJSON_AddArrayToObject(vc, "deepstack_visual_indexes");
    for (int64_t j = 0; j < *n_deep; j++) cJSON_AddItemToArray(dl, cJSON_CreateNumber((double)deep[j]));
    const char *arch = "Qwen3VLForConditionalGeneration";
    cJSON_AddItemToObject(top, "architectures", cJSON_CreateStringArray(&arch, 1));
    cJSON_AddStringToObject(top, "model_type", "qwen3_vl");
    cJSON_AddBoolToObject(top, "tie_word_embeddings", cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(text, "tie_word_embeddings")));
    static const char *const ids[][2] = {{"image_token_id", "<|image_pad|>"}, {"video_token_id", "<|video_pad|>"},
                                         {"vision_start_token_id", "<|vision_start|>"},
                                         {"vision_end_token_id", "<|vision_end|>"}};
    for (size_t k = 0; k < MT_ARRAY_LEN(ids) && !st; k++) {
        int64_t id = token_id(s->text, ids[k][1]);
        if (id >= 0) cJSON_AddNumberToObject(top, ids[k][0], (double)id);
        else if (k != 1)
            st = mt_err_set(err, MT_ERR_FORMAT, "%s: no %s token among tokenizer.ggml.tokens, which Qwen3-VL places "
                            "images with", model, ids[k][1]);
    }
    cJSON_AddItemToObject(top, "text_config", text);
    *cfg = top;
    int64_t min_px = int_key(&r, "mitten.preprocessor.min_pixels", true, -1);
    int64_t max_px = int_key(&r, "mitten.preprocessor.max_pixels", true, -1);
    if (min_px < 0 || max_px < 0)
        mt_log(MT_LOG_ERROR, "%s has no min/max pixels (llama.cpp's files do not carry them): images are resized within "
               "Qwen3-VL's published 65536..16777216 pixels", mmproj);
    cJSON *pre = cJSON_CreateObject(), *size = cJSON_AddObjectToObject(pre, "size");
    cJSON_AddNumberToObject(size, "shortest_edge", (double)(min_px < 0 ? 65536 : min_px));
    cJSON_AddNumberToObject(size, "longest_edge", (double)(max_px < 0 ? 16777216 : max_px));
    cJSON_AddNumberToObject(pre, "patch_size", (double)patch);
    cJSON_AddNumberToObject(pre, "temporal_patch_size", 2);
    cJSON_AddNumberToObject(pre, "merge_size", (double)merge);
    cJSON *am = cJSON_AddArrayToObject(pre, "image_mean"), *as = cJSON_AddArrayToObject(pre, "image_std");
    for (int k = 0; k < 3; k++) {
        cJSON_AddItemToArray(am, cJSON_CreateNumber(((const float *)mean)[k]));
        cJSON_AddItemToArray(as, cJSON_CreateNumber(((const float *)stdv)[k]));
    }
    cJSON_AddStringToObject(pre, "image_processor_type", "Qwen2VLImageProcessorFast");
    st = st ? st : r.st;
    if (st) {
        cJSON_Delete(pre);
        return st;
    }
    return write_json(s, "preprocessor_config.json", pre, err);
}

/* InternVL as its original layout (InternVLChatModel) would describe it: the language model's config as llm_config, the
 * tower's from the projector's keys. What llama.cpp's file does not carry is assumed as InternVL 2.5 / 3 publish it,
 * and logged: a dynamic tiling with a thumbnail, pixel shuffle v2, every block's output. */
static mt_status internvl_config(mt_gguf_source *s, cJSON **cfg, const char *mmproj, int64_t *depth, mt_err *err) {
    meta r = {.g = s->vision, .path = mmproj, .err = err};
    int64_t width = int_key(&r, "clip.vision.embedding_length", false, 0);
    *depth = int_key(&r, "clip.vision.block_count", false, 0);
    int64_t image = int_key(&r, "clip.vision.image_size", false, 0);
    int64_t scale = int_key(&r, "clip.vision.projector.scale_factor", true, -1);
    int64_t min_tiles = int_key(&r, "clip.vision.preproc_min_tiles", true, -1);
    int64_t max_tiles = int_key(&r, "clip.vision.preproc_max_tiles", true, -1);
    if (!r.st && (width <= 0 || *depth <= 0 || *depth > MAX_LAYERS || image <= 0 || scale == 0))
        return mt_err_set(err, MT_ERR_FORMAT, "%s: a bad width, block count, image size or scale factor", mmproj);
    if (!r.st && (scale < 0 || min_tiles < 0 || max_tiles < 0))
        mt_log(MT_LOG_ERROR, "%s lacks%s%s%s: llama.cpp's defaults are used (scale factor 2, tiles 1..12)", mmproj,
               scale < 0 ? " projector.scale_factor" : "", min_tiles < 0 ? " preproc_min_tiles" : "",
               max_tiles < 0 ? " preproc_max_tiles" : "");
    const void *mean = NULL, *stdv = NULL;
    uint64_t n_mean = 0, n_std = 0;
    if (!r.st) r.st = mt_gguf_get_array(s->vision, "clip.vision.image_mean", MT_GGUF_F32, &mean, &n_mean, err);
    if (!r.st) r.st = mt_gguf_get_array(s->vision, "clip.vision.image_std", MT_GGUF_F32, &stdv, &n_std, err);
    static const float imagenet[2][3] = {{0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}};
    for (int k = 0; !r.st && k < 3; k++)
        if (n_mean != 3 || n_std != 3 || fabsf(((const float *)mean)[k] - imagenet[0][k]) > 1e-4f ||
            fabsf(((const float *)stdv)[k] - imagenet[1][k]) > 1e-4f)
            r.st = mt_err_set(err, MT_ERR_UNSUPPORTED, "%s: image_mean / image_std are not ImageNet's, which mitten's "
                              "InternVL processor normalises with", mmproj);
    if (r.st) return r.st;
    const char *vit = "InternVisionModel", *chat = "InternVLChatModel";
    cJSON *top = cJSON_CreateObject(), *vc = cJSON_AddObjectToObject(top, "vision_config");
    cJSON_AddItemToObject(vc, "architectures", cJSON_CreateStringArray(&vit, 1));
    cJSON_AddNumberToObject(vc, "hidden_size", (double)width);
    cJSON_AddNumberToObject(vc, "num_hidden_layers", (double)*depth);
    cJSON_AddNumberToObject(vc, "num_attention_heads", (double)int_key(&r, "clip.vision.attention.head_count", false, 0));
    cJSON_AddNumberToObject(vc, "intermediate_size", (double)int_key(&r, "clip.vision.feed_forward_length", false, 0));
    cJSON_AddNumberToObject(vc, "patch_size", (double)int_key(&r, "clip.vision.patch_size", false, 0));
    cJSON_AddNumberToObject(vc, "image_size", (double)image);
    cJSON_AddNumberToObject(vc, "layer_norm_eps", f32_key(&r, "clip.vision.attention.layer_norm_epsilon", false, 0));
    cJSON_AddStringToObject(vc, "hidden_act", "gelu");
    /* llama.cpp's rule: RMSNorm for the 6B tower only */
    cJSON_AddStringToObject(vc, "norm_type", width == 3200 && *depth == 45 ? "rms_norm" : "layer_norm");
    cJSON_AddBoolToObject(vc, "qkv_bias", mt_gguf_find_tensor(s->vision, "v.blk.0.attn_q.bias") != NULL);
    cJSON_AddBoolToObject(vc, "qk_normalization", mt_gguf_find_tensor(s->vision, "v.blk.0.attn_q_norm.weight") != NULL);
    cJSON_AddItemToObject(top, "architectures", cJSON_CreateStringArray(&chat, 1));
    cJSON_AddStringToObject(top, "model_type", "internvl_chat");
    cJSON_AddNumberToObject(top, "downsample_ratio", 1.0 / (double)(scale < 0 ? 2 : scale));
    cJSON_AddNumberToObject(top, "force_image_size", (double)image);
    cJSON_AddBoolToObject(top, "dynamic_image_size", true);
    cJSON_AddBoolToObject(top, "use_thumbnail", true);
    cJSON_AddNumberToObject(top, "min_dynamic_patch", (double)(min_tiles < 0 ? 1 : min_tiles));
    cJSON_AddNumberToObject(top, "max_dynamic_patch", (double)(max_tiles < 0 ? 12 : max_tiles));
    cJSON_AddStringToObject(top, "ps_version", "v2");
    cJSON_AddNumberToObject(top, "select_layer", -1);
    cJSON_AddItemToObject(top, "llm_config", *cfg);
    *cfg = top;
    return r.st;
}

mt_status mt_gguf_source_open(const char *model, const char *mmproj, mt_gguf_source **out, const char **folder,
                              mt_safetensors **st_out, mt_err *err) {
    mt_gguf_source *s = mt_calloc(1, sizeof *s);
    if (!s) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    s->path = model;
    mt_status st = mt_gguf_open_file(model, &s->text, err);
    if (!st && mmproj) st = mt_gguf_open_file(mmproj, &s->vision, err);
    const char *tmp = getenv("TMPDIR");
    snprintf(s->folder, sizeof s->folder, "%s/mitten-gguf-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!st && !mkdtemp(s->folder)) {
        st = mt_err_set(err, MT_ERR_IO, "%s: cannot make a folder for the model's metadata", s->folder);
        s->folder[0] = 0;
    }
    meta r = {.g = s->text, .path = model, .err = err, .st = st};
    const char *arch = str_key(&r, "general.architecture");
    cJSON *cfg = cJSON_CreateObject();
    char key[160];
#define KEY(suffix) (snprintf(key, sizeof key, "%s.%s", arch, suffix), key)
    bool vl = !r.st && !strcmp(arch, "qwen2vl"), vl3 = !r.st && !strcmp(arch, "qwen3vl");
    bool qwen3 = !r.st && (!strcmp(arch, "qwen3") || vl3); /* Qwen3-VL's text model alone is Qwen3 (1-D positions) */
    /* internlm2 is llama's computation once its q/k/v are split (as llama.cpp's files hold them): read as Llama */
    bool llama = !r.st && (!strcmp(arch, "llama") || !strcmp(arch, "internlm2"));
    if (!r.st && !vl && !qwen3 && !llama && strcmp(arch, "qwen2"))
        r.st = mt_err_set(err, MT_ERR_UNSUPPORTED, "%s: architecture %s; mitten reads qwen2vl, qwen2, qwen3, llama and "
                          "internlm2 GGUF files", model, arch);
    /* InternVL's language model is a plain qwen2 / qwen3 / llama / internlm2 file; its projector says InternVL */
    const mt_gguf_kv *proj = s->vision ? mt_gguf_find_kv(s->vision, "clip.projector_type") : NULL;
    bool internvl = proj && proj->type == MT_GGUF_STR && !strcmp(proj->v.str.s, "internvl");
    if (!r.st && internvl && vl)
        r.st = mt_err_set(err, MT_ERR_INVALID_ARG, "%s: an InternVL projector with a qwen2vl model %s", mmproj, model);
    if (!r.st && mmproj && !vl && !vl3 && !internvl)
        r.st = mt_err_set(err, MT_ERR_INVALID_ARG, "%s: --mmproj goes with a qwen2vl or qwen3vl model or an InternVL "
                          "projector (clip.projector_type internvl); this model is %s", model, arch);
    if (!r.st && vl3 && mmproj && (!proj || proj->type != MT_GGUF_STR || strcmp(proj->v.str.s, "qwen3vl_merger")))
        r.st = mt_err_set(err, MT_ERR_INVALID_ARG, "%s: a qwen3vl model takes a qwen3vl_merger projector", mmproj);
    int64_t layers = int_key(&r, KEY("block_count"), false, 0);
    int64_t heads = int_key(&r, KEY("attention.head_count"), false, 0);
    cJSON_AddNumberToObject(cfg, "num_hidden_layers", (double)layers);
    cJSON_AddNumberToObject(cfg, "hidden_size", (double)int_key(&r, KEY("embedding_length"), false, 0));
    cJSON_AddNumberToObject(cfg, "intermediate_size", (double)int_key(&r, KEY("feed_forward_length"), false, 0));
    cJSON_AddNumberToObject(cfg, "num_attention_heads", (double)heads);
    cJSON_AddNumberToObject(cfg, "num_key_value_heads", (double)int_key(&r, KEY("attention.head_count_kv"), true, heads));
    cJSON_AddNumberToObject(cfg, "max_position_embeddings", (double)int_key(&r, KEY("context_length"), false, 0));
    cJSON_AddNumberToObject(cfg, "rms_norm_eps", f32_key(&r, KEY("attention.layer_norm_rms_epsilon"), false, 0));
    cJSON_AddNumberToObject(cfg, "rope_theta", f32_key(&r, KEY("rope.freq_base"), true, 10000));
    if (mt_gguf_find_kv(s->text, KEY("attention.key_length")))
        cJSON_AddNumberToObject(cfg, "head_dim", (double)int_key(&r, KEY("attention.key_length"), false, 0));
    if (llama) {
        cJSON_AddStringToObject(cfg, "model_type", "llama");
        cJSON_AddBoolToObject(cfg, "attention_bias", mt_gguf_find_tensor(s->text, "blk.0.attn_q.bias") != NULL);
    }
    cJSON_AddBoolToObject(cfg, "tie_word_embeddings", !mt_gguf_find_tensor(s->text, "output.weight"));
    cJSON_AddBoolToObject(cfg, "use_sliding_window", false);
    if (layers <= 0 || layers > MAX_LAYERS)
        r.st = r.st ? r.st : mt_err_set(err, MT_ERR_FORMAT, "%s: block_count %lld", model, (long long)layers);
    int64_t n_vocab = 0;
    if (!r.st) r.st = write_tokenizer(s, &r, &n_vocab, err);
    cJSON_AddNumberToObject(cfg, "vocab_size", (double)n_vocab);
    if (!r.st) r.st = write_tokenizer_config(s, &r, cfg, err);
    if (!r.st) r.st = write_generation_config(s, &r, err);
    int64_t depth = 0;
    bool qwen2_5 = false;
    const char *name = "Qwen2ForCausalLM";
    if (!r.st && vl && mmproj) {
        const void *sec;
        uint64_t n_sec;
        r.st = mt_gguf_get_array(s->text, KEY("rope.dimension_sections"), MT_GGUF_I32, &sec, &n_sec, err);
        cJSON *rs = r.st ? NULL : cJSON_AddObjectToObject(cfg, "rope_scaling");
        if (rs) {
            cJSON_AddStringToObject(rs, "type", "mrope");
            cJSON *ms = cJSON_AddArrayToObject(rs, "mrope_section");
            for (int k = 0; k < 3 && n_sec >= 3; k++) cJSON_AddItemToArray(ms, cJSON_CreateNumber(((const int32_t *)sec)[k]));
        }
        static const char *const ids[][2] = {{"image_token_id", "<|image_pad|>"}, {"video_token_id", "<|video_pad|>"},
                                             {"vision_start_token_id", "<|vision_start|>"},
                                             {"vision_end_token_id", "<|vision_end|>"}};
        for (size_t k = 0; k < MT_ARRAY_LEN(ids) && !r.st; k++) {
            int64_t id = token_id(s->text, ids[k][1]);
            if (id >= 0) cJSON_AddNumberToObject(cfg, ids[k][0], (double)id);
            else if (k != 1)
                r.st = mt_err_set(err, MT_ERR_FORMAT, "%s: no %s token among tokenizer.ggml.tokens, which Qwen2-VL "
                                  "places images with", model, ids[k][1]);
        }
        if (!r.st) r.st = vision_config(s, cfg, mmproj, &depth, &qwen2_5, err);
        name = qwen2_5 ? "Qwen2_5_VLForConditionalGeneration" : "Qwen2VLForConditionalGeneration";
    } else if (!r.st && vl) {
        mt_log(MT_LOG_ERROR, "%s: a vision-language model without --mmproj: loaded as its text model (images refused)",
               model);
    }
    if (qwen3) name = "Qwen3ForCausalLM";
    if (llama) name = "LlamaForCausalLM";
    cJSON_AddItemToObject(cfg, "architectures", cJSON_CreateStringArray(&name, 1));
#undef KEY
    int64_t kv_heads = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(cfg, "num_key_value_heads"));
    if (!r.st && internvl) r.st = internvl_config(s, &cfg, mmproj, &depth, err);
    int64_t deep[64], n_deep = 0;
    bool qwen3vl_vision = vl3 && mmproj;
    if (!r.st && qwen3vl_vision) r.st = qwen3vl_config(s, &cfg, model, mmproj, &depth, deep, &n_deep, err);
    else if (!r.st && vl3)
        mt_log(MT_LOG_ERROR, "%s: a vision-language model without --mmproj: loaded as its text model (images refused)",
               model);
    if (!r.st)
        r.st = text_tensors(s, layers, llama ? heads : 0, llama ? kv_heads : 0,
                            internvl ? "language_model.model." : qwen3vl_vision ? "model.language_model." : "model.",
                            internvl ? "language_model.lm_head.weight" : "lm_head.weight", err);
    if (!r.st && s->vision)
        r.st = internvl         ? internvl_tensors(s, mmproj, depth, err)
               : qwen3vl_vision ? qwen3vl_tensors(s, mmproj, depth, deep, n_deep, err)
                                : vision_tensors(s, mmproj, depth, qwen2_5, err);
    if (!r.st) r.st = write_json(s, "config.json", cfg, err);
    else cJSON_Delete(cfg);
    if (!r.st) r.st = mt_safetensors_from_tensors(model, s->tensors, s->n_tensors, s, release_weights, st_out, err);
    if (r.st) {
        mt_gguf_source_close(s);
        return r.st;
    }
    *folder = s->folder;
    *out = s;
    return MT_OK;
}

void mt_gguf_source_name_errors(const mt_gguf_source *s, mt_err *err) {
    size_t fl = strlen(s->folder);
    if (!fl) return;
    char out[sizeof err->msg];
    size_t o = 0;
    for (const char *p = err->msg; *p && o + 1 < sizeof out;) {
        if (strncmp(p, s->folder, fl)) {
            out[o++] = *p++;
            continue;
        }
        p += fl + (p[fl] == '/');
        size_t name = strcspn(p, ":");
        int n = snprintf(out + o, sizeof out - o, "%s (its metadata as %.*s)", s->path, (int)name, p);
        o = n < 0 ? o : MT_MIN(o + (size_t)n, sizeof out - 1);
        p += name;
    }
    out[o] = 0;
    memcpy(err->msg, out, o + 1);
}
