/* models/gguf_export: the GGUF files of a model (see gguf_export.h). The facts this follows - key names and types,
 * tensor names, type choices - are llama.cpp's converter (convert_hf_to_gguf.py and its conversion/ modules), its loader
 * (src/llama-model.cpp, tools/mtmd/clip.cpp) and quantizer (src/llama-quant.cpp), release v0.5.0: the one the
 * tests load the files with. */
#include "models/gguf_export.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/file.h"
#include "base/json.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "models/decoder.h"
#include "models/gguf_export_int.h"
#include "tensor/cpu/cpu.h"
#include "tensor/quant.h"

static const struct {
    const char *name;
    mt_dtype type;
    uint32_t file_type; /* llama.cpp's llama_ftype */
} file_types[] = {
    {"f32", MT_F32, 0},   {"f16", MT_F16, 1},   {"bf16", MT_BF16, 32}, {"q8_0", MT_Q8_0, 7},
    {"q4_0", MT_Q4_0, 2}, {"q4_K", MT_Q4_K, 15}, {"q6_K", MT_Q6_K, 18},
};

bool mt_gguf_export_type_parse(const char *name, mt_dtype *out) {
    for (size_t i = 0; i < MT_ARRAY_LEN(file_types); i++)
        if (!strcmp(name, file_types[i].name)) return *out = file_types[i].type, true;
    return false;
}

static bool file_type_of(mt_dtype t, uint32_t *ft) {
    for (size_t i = 0; i < MT_ARRAY_LEN(file_types); i++)
        if (file_types[i].type == t) return *ft = file_types[i].file_type, true;
    return false;
}

/* ---- tensor plans ---- */

/* llama.cpp's use_more_bits: which of n layers Q4_K_M gives more bits (attn_v, ffn_down). */
static bool use_more_bits(int64_t i, int64_t n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

/* The type a matrix of rows of `cols` gets: want, or its fallback when the rows are not whole blocks. */
static mt_dtype fit_rows(mt_dtype want, int64_t cols) {
    if (cols % mt_dtype_block_elems(want) == 0) return want;
    if (cols % 32 == 0 && mt_dtype_is_quant(want)) return MT_Q8_0;
    return MT_F16;
}

mt_dtype mt_gguf_matrix_type(mt_dtype file_type, mt_gguf_role role, int64_t layer, int64_t n_layers, int64_t cols) {
    mt_dtype want = file_type;
    if (role == MT_GGUF_ROLE_OUTPUT && mt_dtype_is_quant(file_type) && file_type != MT_Q8_0) want = MT_Q6_K;
    if ((role == MT_GGUF_ROLE_ATTN_V || role == MT_GGUF_ROLE_FFN_DOWN) && file_type == MT_Q4_K &&
        use_more_bits(layer, n_layers))
        want = MT_Q6_K;
    return fit_rows(want, cols);
}

mt_status mt_gguf_plan_add(mt_gguf_plan *p, const char *name, const mt_st_tensor *src, int ndim, const int64_t *shape,
                           size_t offset, size_t stride, size_t count, mt_dtype type, mt_err *err) {
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 256;
        mt_gguf_item *items = mt_realloc(p->items, cap * sizeof *items);
        if (!items) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
        p->items = items;
        p->cap = cap;
    }
    mt_gguf_item *it = &p->items[p->n];
    *it = (mt_gguf_item){.src = src, .ndim = ndim, .offset = offset, .stride = stride, .count = count, .type = type};
    snprintf(it->name, sizeof it->name, "%s", name);
    memcpy(it->shape, shape, (size_t)ndim * sizeof *shape);
    p->n++;
    return MT_OK;
}

void mt_gguf_plan_free(mt_gguf_plan *p) {
    mt_free(p->items);
    *p = (mt_gguf_plan){0};
}

int64_t mt_gguf_unpermute_row(int64_t r, int64_t rows, int64_t heads) {
    int64_t hd = rows / heads, h = r / hd, i = r % hd;
    return h * hd + (i % 2) * (hd / 2) + i / 2;
}

/* Rows of a tensor converted in parallel, a chunk at a time: quantizing is the slow part of writing (Q4_K's scale
 * search), and rows are independent. */
enum { CHUNK_ROWS = 64 };

typedef struct fill_job {
    const mt_gguf_item *it;
    int64_t r0, cols;
    size_t row_bytes;
    float *scratch; /* [threads][cols] */
    char *out;      /* [CHUNK_ROWS][row_bytes] */
    mt_status *row_st; /* [CHUNK_ROWS] */
} fill_job;

/* Row r0 + t of the item into the chunk: its source elements, run by run, widened to f32, stored as the item's type.
 * A non-finite value fails the row (the message is made again, in order, by the caller). */
static void fill_row(void *ctx, int64_t t, int thread) {
    const fill_job *j = ctx;
    const mt_gguf_item *it = j->it;
    float *f = j->scratch + (size_t)thread * (size_t)j->cols;
    size_t esize = mt_dtype_size(it->src->dtype);
    int64_t r = j->r0 + t, done = 0;
    int64_t outer = it->shape[0], inner = 1;
    for (int d = 1; d < it->ndim; d++) inner *= it->shape[d];
    /* element e of the tensor (of its checkpoint order when permuted): run e / count, index e % count of it, in the
     * source's flat order */
    while (done < j->cols) {
        int64_t e = r * j->cols + done, len = j->cols - done;
        if (it->perm_heads > 0) {
            e = mt_gguf_unpermute_row(e / inner, outer, it->perm_heads) * inner + e % inner;
            len = MT_MIN(len, inner - e % inner);
        }
        int64_t run = e / (int64_t)it->count, at = e % (int64_t)it->count;
        len = MT_MIN(len, (int64_t)it->count - at);
        const char *src = (const char *)it->src->data + (it->offset + (size_t)run * it->stride + (size_t)at) * esize;
        mt_cpu_to_f32(len, src, it->src->dtype, f + done);
        done += len;
    }
    char *out = j->out + (size_t)t * j->row_bytes;
    mt_err quiet;
    j->row_st[t] = mt_dtype_is_quant(it->type) ? mt_quantize(it->type, f, 1, j->cols, out, &quiet) : MT_OK;
    if (!mt_dtype_is_quant(it->type)) mt_cpu_from_f32(j->cols, f, out, it->type);
}

/* Streams one planned tensor, CHUNK_ROWS rows at a time. */
static mt_status fill_item(void *user, const char *name, mt_gguf_sink *sink, mt_err *err) {
    const mt_gguf_item *it = user;
    if (it->o->progress) it->o->progress(it->o->progress_user, it->file, name, it->index, it->total);
    int64_t cols = it->shape[it->ndim - 1], total = 1;
    for (int d = 0; d < it->ndim; d++) total *= it->shape[d];
    int64_t rows = total / cols;
    int threads = mt_pool_threads(it->pool);
    fill_job j = {.it = it, .cols = cols,
                  .row_bytes = mt_dtype_is_quant(it->type) ? mt_dtype_row_bytes(it->type, cols)
                                                           : (size_t)cols * mt_dtype_size(it->type)};
    j.scratch = mt_malloc_array((size_t)threads * (size_t)cols, sizeof(float));
    j.out = mt_malloc_array(CHUNK_ROWS, j.row_bytes);
    j.row_st = mt_malloc_array(CHUNK_ROWS, sizeof *j.row_st);
    mt_status st = j.scratch && j.out && j.row_st ? MT_OK : mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    for (j.r0 = 0; j.r0 < rows && !st; j.r0 += CHUNK_ROWS) {
        int64_t n = MT_MIN((int64_t)CHUNK_ROWS, rows - j.r0);
        mt_pool_run(it->pool, n, fill_row, &j);
        for (int64_t t = 0; t < n && !st; t++)
            if (j.row_st[t]) { /* the first bad row again, for its message */
                fill_row(&j, t, 0);
                float *f = j.scratch;
                st = mt_quantize(it->type, f, 1, cols, j.out, err);
                mt_err_prefix(err, "%s: row %lld", it->name, (long long)(j.r0 + t));
            }
        if (!st) st = mt_gguf_sink_write(sink, j.out, (size_t)n * j.row_bytes, err);
    }
    mt_free(j.scratch);
    mt_free(j.out);
    mt_free(j.row_st);
    return st;
}

/* ---- writing ---- */

mt_status mt_gguf_write_plan(mt_gguf_writer *w, mt_gguf_plan *p, const char *path, const mt_gguf_export_opts *o,
                             mt_err *err) {
    mt_pool *pool = NULL;
    mt_status st = mt_pool_new(o->threads, &pool, err);
    for (size_t i = 0; i < p->n && !st; i++) {
        mt_gguf_item *it = &p->items[i];
        it->o = o, it->file = path, it->index = i, it->total = p->n, it->pool = pool;
        st = mt_gguf_writer_add_tensor_fill(w, it->name, it->type, it->ndim, it->shape, fill_item, it, err);
    }
    if (!st) st = mt_gguf_write(w, path, o->overwrite, err);
    mt_pool_free(pool);
    return st;
}

static mt_status add_u32(mt_gguf_writer *w, const char *key, int64_t v, mt_err *err) {
    if (v < 0 || v > UINT32_MAX) return mt_err_set(err, MT_ERR_INVALID_ARG, "%s: %lld does not fit a u32", key, (long long)v);
    uint32_t u = (uint32_t)v;
    return mt_gguf_writer_add(w, key, MT_GGUF_U32, &u, err);
}

static mt_status add_f32(mt_gguf_writer *w, const char *key, double v, mt_err *err) {
    float f = (float)v;
    return mt_gguf_writer_add(w, key, MT_GGUF_F32, &f, err);
}

static mt_status add_str(mt_gguf_writer *w, const char *key, const char *s, mt_err *err) {
    return mt_gguf_writer_add_str(w, key, s, strlen(s), err);
}

mt_status mt_gguf_add_general(mt_gguf_writer *w, const mt_model *m, const char *arch, const char *type,
                              mt_dtype file_type, mt_err *err) {
    uint32_t ft = 0;
    file_type_of(file_type, &ft);
    const char *slash = strrchr(m->dir, '/');
    const char *name = slash && slash[1] ? slash + 1 : m->dir;
    mt_status st = add_str(w, "general.architecture", arch, err);
    if (!st) st = add_str(w, "general.type", type, err);
    if (!st) st = add_str(w, "general.name", name, err);
    if (!st) st = add_u32(w, "general.file_type", ft, err);
    if (!st) st = add_u32(w, "general.quantization_version", 2, err);
    return st;
}

/* ---- the language model ---- */

static const struct {
    const char *kind, *arch;
} text_archs[] = {{"qwen2_vl", "qwen2vl"}, {"qwen2", "qwen2"},         {"qwen3", "qwen3"},
                  {"llama", "llama"},      {"internlm2", "internlm2"}, {"qwen3_vl", "qwen3vl"}};

static mt_status text_arch(const mt_model *m, const char **arch, mt_err *err) {
    for (size_t i = 0; i < MT_ARRAY_LEN(text_archs); i++)
        if (!strcmp(m->decoder_kind, text_archs[i].kind)) return *arch = text_archs[i].arch, MT_OK;
    return mt_err_set(err, MT_ERR_UNSUPPORTED,
                      "%s: writing GGUF is done for the qwen2_vl, qwen3_vl, qwen2, qwen3, llama and internlm2 "
                      "decoders; this one is %s", m->dir, m->decoder_kind);
}

/* llama.cpp runs llama and internlm2 with its NORM rope, which pairs adjacent dimensions: their q and k are
 * permuted on the way in and out. */
static bool norm_rope(const char *arch) { return !strcmp(arch, "llama") || !strcmp(arch, "internlm2"); }

/* Qwen3-VL's DeepStack levels: how many vision_config.deepstack_visual_indexes feed the first decoder layers. */
static mt_status deepstack_count(const mt_model *m, int64_t *n, mt_err *err) {
    char path[4096];
    cJSON *cfg = NULL;
    mt_status st = mt_path_join(path, sizeof path, m->dir, "config.json", err);
    if (!st) st = mt_json_parse_file(path, MT_JSON_MAX_FILE, &cfg, err);
    if (st) return st;
    mt_cfg r = {.path = path, .what = "vision_config", .err = err};
    int64_t idx[64];
    *n = (int64_t)mt_cfg_int_list(&r, cJSON_GetObjectItemCaseSensitive(cfg, "vision_config"), "deepstack_visual_indexes",
                                  0, 1 << 16, idx, MT_ARRAY_LEN(idx));
    cJSON_Delete(cfg);
    return r.st;
}

static mt_status text_params(mt_gguf_writer *w, const char *a, const mt_decoder_cfg *c, mt_err *err) {
    char key[128];
#define KEY(suffix) (snprintf(key, sizeof key, "%s.%s", a, suffix), key)
    if (c->rope.type != MT_ROPE_DEFAULT)
        return mt_err_set(err, MT_ERR_UNSUPPORTED, "the rope scaling of this model (rope_type %s) is not written to "
                          "GGUF: mitten writes default rope only",
                          c->rope.type == MT_ROPE_LLAMA3 ? "llama3" : c->rope.type == MT_ROPE_YARN ? "yarn"
                          : c->rope.type == MT_ROPE_DYNAMIC ? "dynamic" : "linear");
    if (c->window > 0)
        return mt_err_set(err, MT_ERR_UNSUPPORTED, "sliding-window attention has no place in llama.cpp's %s", a);
    /* its loader takes q/k/v biases but no attn_output.bias, so the file would not load */
    if (!strcmp(a, "internlm2") && c->o_bias)
        return mt_err_set(err, MT_ERR_UNSUPPORTED, "an InternLM2 with \"bias\": true: llama.cpp's internlm2 has no "
                          "attention output bias (InternVL 2.5's published configs say false)");
    mt_status st = add_u32(w, KEY("block_count"), c->n_layers, err);
    if (!st) st = add_u32(w, KEY("context_length"), c->max_positions, err);
    if (!st) st = add_u32(w, KEY("embedding_length"), c->hidden, err);
    if (!st) st = add_u32(w, KEY("feed_forward_length"), c->inter, err);
    if (!st) st = add_u32(w, KEY("attention.head_count"), c->n_heads, err);
    if (!st) st = add_u32(w, KEY("attention.head_count_kv"), c->n_kv, err);
    if (!st) st = add_f32(w, KEY("rope.freq_base"), c->rope.theta, err);
    if (!st) st = add_f32(w, KEY("attention.layer_norm_rms_epsilon"), c->rms_eps, err);
    if (!st && c->head_dim != c->hidden / c->n_heads) {
        st = add_u32(w, KEY("attention.key_length"), c->head_dim, err);
        if (!st) st = add_u32(w, KEY("attention.value_length"), c->head_dim, err);
    }
    /* llama.cpp's llama refuses a rope dimension other than the head's ("invalid n_rot") */
    if (!st && !strcmp(a, "llama")) st = add_u32(w, KEY("vocab_size"), c->vocab, err);
    if (!st && !strcmp(a, "llama")) st = add_u32(w, KEY("rope.dimension_count"), c->head_dim, err);
    if (!st && c->rope.sections[0]) {
        /* llama.cpp reads exactly four sections (t, h, w and a spare) */
        int32_t s[4] = {(int32_t)c->rope.sections[0], (int32_t)c->rope.sections[1], (int32_t)c->rope.sections[2], 0};
        st = mt_gguf_writer_add_array(w, KEY("rope.dimension_sections"), MT_GGUF_I32, s, 4, err);
    }
#undef KEY
    return st;
}

/* A checkpoint tensor by name, as a plain float tensor the plan can read. */
mt_status mt_gguf_checkpoint_tensor(const mt_model *m, const char *name, const mt_st_tensor **out, mt_err *err) {
    mt_status st = mt_safetensors_get(m->st, name, out, err);
    if (!st && (*out)->dtype != MT_F32 && (*out)->dtype != MT_BF16 && (*out)->dtype != MT_F16)
        st = mt_err_set(err, MT_ERR_UNSUPPORTED, "%s: %s is %s; GGUF is written from f32, bf16 or f16", m->dir, name,
                        mt_dtype_name((*out)->dtype));
    return st;
}

/* The whole tensor under a new name: vectors in F32, matrices as the role's type. */
mt_status mt_gguf_plan_whole(mt_gguf_plan *p, const mt_model *m, const char *gguf, const char *src, mt_dtype file_type,
                             mt_gguf_role role, int64_t layer, int64_t n_layers, mt_err *err) {
    const mt_st_tensor *t;
    mt_status st = mt_gguf_checkpoint_tensor(m, src, &t, err);
    if (st) return st;
    size_t count = 1;
    for (int d = 0; d < t->ndim; d++) count *= (size_t)t->shape[d];
    mt_dtype type = t->ndim < 2 || role == MT_GGUF_ROLE_KEEP_F32
                        ? MT_F32
                        : mt_gguf_matrix_type(file_type, role, layer, n_layers, t->shape[t->ndim - 1]);
    return mt_gguf_plan_add(p, gguf, t, t->ndim, t->shape, 0, count, count, type, err);
}

static mt_gguf_role layer_role(const char *gguf) {
    return !strcmp(gguf, "attn_v") ? MT_GGUF_ROLE_ATTN_V : !strcmp(gguf, "ffn_down") ? MT_GGUF_ROLE_FFN_DOWN
                                                                                    : MT_GGUF_ROLE_OTHER;
}

/* The last planned tensor's rows (or a vector's elements) in llama.cpp's q/k order for heads heads. */
static void permute_last(mt_gguf_plan *p, int64_t heads) { p->items[p->n - 1].perm_heads = heads; }

/* InternLM2's packed wqkv (weight or bias) as attn_q, attn_k, attn_v: its rows are, per KV head, that group's q heads,
 * then k, then v (modeling_internlm2.py), so each part is a run of rows per group. */
static mt_status plan_wqkv(mt_gguf_plan *p, const mt_model *m, const mt_decoder_cfg *c, const char *src, int64_t l,
                           bool bias, mt_dtype ft, mt_err *err) {
    const mt_st_tensor *t;
    mt_status st = mt_gguf_checkpoint_tensor(m, src, &t, err);
    if (st) return st;
    int64_t q_per_kv = c->n_heads / c->n_kv, slots = q_per_kv + 2, d = c->head_dim;
    int64_t cols = bias ? 1 : c->hidden;
    if (t->ndim != (bias ? 1 : 2) || t->shape[0] != c->n_kv * slots * d || (!bias && t->shape[1] != cols))
        return mt_err_set(err, MT_ERR_FORMAT, "%s: %s is not [%lld%s] as %lld KV heads of %lld q heads, k and v say",
                          m->dir, src, (long long)(c->n_kv * slots * d), bias ? "" : ", hidden", (long long)c->n_kv,
                          (long long)q_per_kv);
    static const char *const parts[] = {"attn_q", "attn_k", "attn_v"};
    const int64_t heads_of[] = {q_per_kv, 1, 1}, slot_of[] = {0, q_per_kv, q_per_kv + 1};
    char dst[96];
    for (int k = 0; k < 3 && !st; k++) {
        int64_t shape[2] = {c->n_kv * heads_of[k] * d, cols};
        size_t count = (size_t)(heads_of[k] * d * cols), stride = (size_t)(slots * d * cols);
        mt_dtype type = bias ? MT_F32 : mt_gguf_matrix_type(ft, layer_role(parts[k]), l, c->n_layers, cols);
        snprintf(dst, sizeof dst, "blk.%lld.%s.%s", (long long)l, parts[k], bias ? "bias" : "weight");
        st = mt_gguf_plan_add(p, dst, t, bias ? 1 : 2, shape, (size_t)(slot_of[k] * d * cols), stride, count, type,
                              err);
        if (!st && k < 2) permute_last(p, k == 0 ? c->n_heads : c->n_kv);
    }
    return st;
}

static mt_status text_tensors(mt_gguf_plan *p, const mt_model *m, const char *arch, const mt_decoder_cfg *c,
                              mt_dtype ft, mt_err *err) {
    const char *px = m->text_prefix;
    bool internlm2 = !strcmp(arch, "internlm2");
    const mt_gguf_name *layer = internlm2 ? mt_gguf_internlm2_layer : mt_gguf_text_layer;
    size_t n_layer = internlm2 ? mt_gguf_n_internlm2_layer : mt_gguf_n_text_layer;
    char src[512], dst[96];
    bool tied = !mt_safetensors_find(m->st, m->lm_head_name) || c->tied;
    snprintf(src, sizeof src, "%s%s.weight", px, internlm2 ? "tok_embeddings" : "embed_tokens");
    mt_status st = mt_gguf_plan_whole(p, m, "token_embd.weight", src, ft, tied ? MT_GGUF_ROLE_OUTPUT : MT_GGUF_ROLE_OTHER,
                                      0, 1, err);
    static const char *const suffixes[] = {"weight", "bias"};
    for (int64_t l = 0; l < c->n_layers && !st; l++) {
        for (int s = 0; s < 2 && internlm2 && !st; s++) {
            snprintf(src, sizeof src, "%slayers.%lld.attention.wqkv.%s", px, (long long)l, suffixes[s]);
            if (s == 0 || mt_safetensors_find(m->st, src)) st = plan_wqkv(p, m, c, src, l, s == 1, ft, err);
        }
        for (size_t k = 0; k < n_layer && !st; k++) {
            const mt_gguf_name *nm = &layer[k];
            for (int s = 0; s < 2 && !st; s++) {
                snprintf(src, sizeof src, "%slayers.%lld.%s.%s", px, (long long)l, nm->hf, suffixes[s]);
                snprintf(dst, sizeof dst, "blk.%lld.%s.%s", (long long)l, nm->gguf, suffixes[s]);
                if ((s == 1 || nm->optional) && !mt_safetensors_find(m->st, src)) continue;
                st = mt_gguf_plan_whole(p, m, dst, src, ft, layer_role(nm->gguf), l, c->n_layers, err);
                if (!st && norm_rope(arch) && (!strcmp(nm->gguf, "attn_q") || !strcmp(nm->gguf, "attn_k")))
                    permute_last(p, !strcmp(nm->gguf, "attn_q") ? c->n_heads : c->n_kv);
            }
        }
    }
    snprintf(src, sizeof src, "%snorm.weight", px);
    if (!st) st = mt_gguf_plan_whole(p, m, "output_norm.weight", src, ft, MT_GGUF_ROLE_OTHER, 0, 1, err);
    /* a tied head has no output.weight: llama.cpp then reads token_embd, and its quantizer knows the tie by that */
    if (!st && !tied) st = mt_gguf_plan_whole(p, m, "output.weight", m->lm_head_name, ft, MT_GGUF_ROLE_OUTPUT, 0, 1, err);
    return st;
}

static mt_status write_text(const mt_model *m, const mt_gguf_export_opts *o, mt_err *err) {
    const char *arch = NULL;
    mt_status st = text_arch(m, &arch, err);
    if (st) return st;
    const mt_decoder_cfg *c = mt_decoder_get_cfg(m->decoder);
    mt_gguf_writer *w = NULL;
    mt_gguf_plan p = {0};
    st = mt_gguf_writer_new(&w, err);
    if (!st) st = mt_gguf_add_general(w, m, arch, "model", o->type, err);
    if (!st) st = text_params(w, arch, c, err);
    int64_t deep = 0;
    if (!st && !strcmp(arch, "qwen3vl") && !(st = deepstack_count(m, &deep, err)))
        st = add_u32(w, "qwen3vl.n_deepstack_layers", deep, err);
    if (!st) st = mt_gguf_add_vocab(w, m, arch, c->vocab, err);
    if (!st) st = text_tensors(&p, m, arch, c, o->type, err);
    if (!st) st = mt_gguf_write_plan(w, &p, o->out, o, err);
    mt_gguf_plan_free(&p);
    mt_gguf_writer_free(w);
    return st;
}

mt_status mt_model_export_gguf(const mt_model *m, const mt_gguf_export_opts *o, mt_err *err) {
    uint32_t ft;
    if (!file_type_of(o->type, &ft))
        return mt_err_set(err, MT_ERR_INVALID_ARG, "GGUF file type %s is not one mitten writes", mt_dtype_name(o->type));
    if (!o->out) return mt_err_set(err, MT_ERR_INVALID_ARG, "no output file");
    if (o->mmproj_out && !m->comp->vision)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "%s has no vision part to write as an mmproj file", m->dir);
    if (o->mmproj_out && !strcmp(o->mmproj_out, o->out))
        return mt_err_set(err, MT_ERR_INVALID_ARG, "the model and the mmproj file are both %s", o->out);
    mt_status st = write_text(m, o, err);
    if (!st && o->mmproj_out && (st = mt_gguf_write_mmproj(m, o, err))) {
        /* the text file is this call's own: it goes with the failure */
        unlink(o->out);
    }
    return st;
}
