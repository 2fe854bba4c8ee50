/* models/weights: the table of checkpoint tensors a loaded model reads and the module tensors that read them. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/file.h"
#include "models/model.h"
#include "tensor/backend.h"
#include "tensor/cpu/cpu.h"
#include "tensor/quant.h"

/* by_tensor maps a module tensor to (weight index << USE_BITS | use index) */
enum { USE_BITS = 20 };

static mt_status add_use(mt_model *m, mt_weight *w, mt_tensor *t, int64_t row0, mt_err *err) {
    if (w->n_uses >= ((size_t)1 << USE_BITS) - 1)
        return mt_err_set(err, MT_ERR_LIMIT, "weight \"%s\" has too many uses", w->name);
    mt_weight_use *grown = mt_realloc(w->uses, (w->n_uses + 1) * sizeof *grown);
    if (!grown) return mt_err_set(err, MT_ERR_NOMEM, "out of memory registering \"%s\"", w->name);
    w->uses = grown;
    size_t key = (size_t)(w - m->weights) << USE_BITS | w->n_uses;
    mt_status st = mt_hashmap_put_ptr(&m->weight_by_tensor, t, key, err);
    if (st) return st;
    w->uses[w->n_uses++] = (mt_weight_use){t, row0};
    return MT_OK;
}

mt_status mt_weight_register(mt_model *m, const char *name, mt_tensor *out, mt_err *err) {
    mt_weight *w = mt_weight_find(m, name);
    if (!w) {
        if (m->n_weights == m->cap_weights) {
            size_t cap = m->cap_weights ? m->cap_weights * 2 : 128;
            mt_weight *grown = mt_realloc(m->weights, cap * sizeof *grown);
            if (!grown) return mt_err_set(err, MT_ERR_NOMEM, "out of memory registering \"%s\"", name);
            m->weights = grown;
            m->cap_weights = cap;
        }
        w = &m->weights[m->n_weights];
        *w = (mt_weight){.rows = out->shape[0], .cols = out->ndim > 1 ? out->shape[1] : 1};
        if (!(w->name = mt_strdup(name))) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
        w->part = mt_model_part_of(m, name);
        mt_status st = mt_hashmap_put_str(&m->weight_by_name, w->name, m->n_weights, err);
        if (st) {
            mt_free(w->name);
            return st;
        }
        m->n_weights++;
    }
    return add_use(m, w, out, 0, err);
}

mt_weight *mt_weight_find(const mt_model *m, const char *name) {
    size_t i;
    return mt_hashmap_get_str(&m->weight_by_name, name, &i) ? &m->weights[i] : NULL;
}

mt_model_part mt_model_part_of(const mt_model *m, const char *name) {
    const char *vp = m->vision_prefix, *pp = m->projector_prefix;
    if (pp && strncmp(name, pp, strlen(pp)) == 0) return MT_PART_PROJECTOR;
    if (!vp || strncmp(name, vp, strlen(vp)) != 0) return MT_PART_LANGUAGE;
    const mt_vision_part *v = m->comp ? m->comp->vision : NULL;
    return v && v->is_projector && v->is_projector(name + strlen(vp)) ? MT_PART_PROJECTOR : MT_PART_VISION;
}

bool mt_weight_module(const mt_model *m, const char *name, bool renamed, char *out, size_t cap) {
    size_t len = strlen(name);
    if (len < 7 || strcmp(name + len - 7, ".weight") != 0) return false;
    len -= 7;
    const char *const *r = renamed && m->comp ? m->comp->module_renames : NULL;
    for (; r && r[0]; r += 2) {
        size_t n = strlen(r[0]);
        if (len < n || strncmp(name, r[0], n) != 0) continue;
        return (size_t)snprintf(out, cap, "%s%.*s", r[1], (int)(len - n), name + n) < cap;
    }
    return (size_t)snprintf(out, cap, "%.*s", (int)len, name) < cap;
}

const mt_tensor *mt_weight_whole(const mt_weight *w) {
    for (size_t u = 0; u < w->n_uses; u++)
        if (w->uses[u].row0 == 0 && w->uses[u].t->shape[0] == w->rows) return w->uses[u].t;
    return NULL;
}

mt_status mt_weight_read_f32(const mt_weight *w, float *out, mt_err *err) {
    const mt_tensor *t = mt_weight_whole(w);
    if (!t) return mt_err_set(err, MT_ERR_INTERNAL, "weight \"%s\": no module tensor covers it whole", w->name);
    int64_t stride = t->ndim > 1 ? t->stride[0] : w->cols;
    size_t esz = mt_dtype_size(t->dtype);
    for (int64_t r = 0; r < w->rows; r++)
        mt_cpu_to_f32(w->cols, (const char *)t->data + (size_t)(r * stride) * esz, t->dtype, out + r * w->cols);
    return MT_OK;
}

int64_t mt_weight_first_nonfinite(const mt_weight *w, float *value) {
    const mt_tensor *t = mt_weight_whole(w);
    if (!t || t->device != MT_DEVICE_CPU) return -1;
    int64_t stride = t->ndim > 1 ? t->stride[0] : w->cols;
    size_t esz = mt_dtype_size(t->dtype);
    float buf[256]; /* a stack chunk: this runs when a run already failed, and must not fail itself */
    for (int64_t r = 0; r < w->rows; r++)
        for (int64_t c = 0; c < w->cols; c += 256) {
            int64_t k = MT_MIN(w->cols - c, 256);
            mt_cpu_to_f32(k, (const char *)t->data + (size_t)(r * stride + c) * esz, t->dtype, buf);
            for (int64_t i = 0; i < k; i++)
                if (!isfinite(buf[i])) {
                    *value = buf[i];
                    return r * w->cols + c + i;
                }
        }
    return -1;
}

mt_weight *mt_weight_of(const mt_model *m, const mt_tensor *t, int64_t *row0) {
    size_t key;
    if (!mt_hashmap_get_ptr(&m->weight_by_tensor, t, &key)) return NULL;
    mt_weight *w = &m->weights[key >> USE_BITS];
    if (row0) *row0 = w->uses[key & (((size_t)1 << USE_BITS) - 1)].row0;
    return w;
}

mt_status mt_weight_alias(mt_model *m, const mt_tensor *of, mt_tensor *view, int64_t row0, mt_err *err) {
    int64_t base = 0;
    mt_weight *w = mt_weight_of(m, of, &base);
    if (!w) return mt_err_set(err, MT_ERR_INTERNAL, "alias of a tensor that is not a registered weight");
    return add_use(m, w, view, base + row0, err);
}

void mt_weight_set_linear(mt_model *m, const mt_tensor *w, mt_linear *lin) {
    mt_weight *e = mt_weight_of(m, w, NULL);
    if (e) e->linear = lin;
}

void mt_weights_release(mt_model *m) {
    for (size_t i = 0; i < m->n_weights; i++) {
        mt_free(m->weights[i].name);
        mt_free(m->weights[i].uses);
    }
    mt_free(m->weights);
    mt_hashmap_free(&m->weight_by_name);
    mt_hashmap_free(&m->weight_by_tensor);
    m->weights = NULL;
    m->n_weights = m->cap_weights = 0;
}

/* Where a weight goes at load (mt_weights_place). */
typedef struct placement {
    const uint8_t *from; /* the weight's bytes now (its whole tensor's), NULL: it stays where it is */
    size_t bytes;
    mt_dtype to; /* its type in memory: an interleaved type, or its own (a plain copy) */
    size_t at;   /* offset in the model's pages */
    const mt_mapping *map; /* the file mapping the bytes are in, or NULL */
} placement;

static bool uses_inside(const mt_weight *w, const uint8_t *lo, size_t bytes) {
    for (size_t u = 0; u < w->n_uses; u++) {
        const uint8_t *p = w->uses[u].t->data;
        if (p < lo || (size_t)(p - lo) >= bytes) return false;
    }
    return true;
}

static const mt_mapping *mapping_of(const mt_model *m, const void *p, size_t n) {
    const mt_mapping *map = mt_safetensors_mapping_of(m->st, p, n);
    return map ? map : mt_gguf_source_mapping_of(m->gguf, p, n);
}

/* The Q4_K_R8 GEMV keeps 8 rows in the 8 lanes and needs no scale shuffles or horizontal sums: from L2 it runs about
 * twice Q4_K's rate (docs/PERFORMANCE.md), enough for decode of a Q4_K file to be bound by memory, not arithmetic;
 * Q8_0_R8 likewise drops Q8_0's sign trick and horizontal sums (one vpdpbusd per 4 weights of 8 rows). Its rows move,
 * so only a weight read whole, as a linear, may change layout (the embedding reads a row at a time, a split linear
 * may start at any row). Q8_0_R8 takes any number of rows of 8 or more (the last rows % 8 stay Q8_0 in place);
 * Q4_K_R8 has no such tail and needs a multiple of 8.
 * Every other weight in a file mapping is copied as it is (when copy): from the page cache's 4 KiB pages the decode
 * GEMV streamed two thirds as fast as from huge pages (docs/DESIGN.md, "Where the weights live"). */
static placement place_one(const mt_model *m, const mt_weight *w, bool copy) {
    placement p = {0};
    const mt_tensor *t = mt_weight_whole(w);
    if (!t || t->device != 0 || t->ndim < 1 || !mt_tensor_is_contiguous(t)) return p;
    int64_t rows = 1;
    for (int d = 0; d + 1 < t->ndim; d++) rows *= t->shape[d];
    size_t bytes = mt_dtype_row_bytes(t->dtype, t->shape[t->ndim - 1]) * (size_t)rows;
    const uint8_t *lo = t->data;
    if (!bytes || !uses_inside(w, lo, bytes)) return p;
    bool whole_linear = w->n_uses == 1 && w->linear && &w->linear->w == t && t->ndim == 2;
    p.to = whole_linear ? mt_repack_type(t->dtype, t->shape[0], t->shape[1]) : t->dtype;
    const mt_mapping *map = mapping_of(m, lo, bytes);
    if (p.to != t->dtype || (copy && map)) p.from = lo, p.bytes = bytes, p.map = map;
    return p;
}

/* The plan for every weight, and the bytes it places (*total) and the largest repacked weight (*tmp_bytes). */
static void plan_all(const mt_model *m, placement *plan, bool copy, size_t *total, size_t *tmp_bytes) {
    *total = *tmp_bytes = 0;
    for (size_t i = 0; i < m->n_weights; i++) {
        plan[i] = place_one(m, &m->weights[i], copy);
        plan[i].at = *total;
        if (!plan[i].from) continue;
        if (!mt_add_ok(*total, (plan[i].bytes + 63) / 64 * 64, total)) *total = SIZE_MAX;
        if (plan[i].to != mt_weight_whole(&m->weights[i])->dtype) *tmp_bytes = MT_MAX(*tmp_bytes, plan[i].bytes);
    }
}

/* Places one weight at to; tmp (bytes long, or NULL when it stays in place) holds a mapped weight's bytes read
 * from its file before they are repacked. */
static mt_status place(mt_model *m, mt_weight *w, const placement *p, uint8_t *to, uint8_t *tmp, mt_err *err) {
    mt_tensor *whole = (mt_tensor *)mt_weight_whole(w);
    const mt_mapping *map = p->map;
    if (p->to == whole->dtype) {
        if (map) mt_mapping_copy(map, p->from, p->bytes, to);
        else memcpy(to, p->from, p->bytes);
    } else {
        const void *src = p->from;
        if (map) mt_mapping_copy(map, p->from, p->bytes, tmp), src = tmp;
        mt_status st = mt_repack(whole->dtype, src, whole->shape[0], whole->shape[1], to, err);
        if (st) return st;
        whole->dtype = p->to;
    }
    for (size_t u = 0; u < w->n_uses; u++)
        w->uses[u].t->data = to + ((const uint8_t *)w->uses[u].t->data - p->from);
    /* pages of the mapping a part read while loading (its shapes, a check) are not read again */
    if (map) mt_file_drop_pages(p->from, p->bytes);
    return MT_OK;
}

mt_status mt_weights_place(mt_model *m, mt_err *err) {
    placement *plan = mt_calloc(m->n_weights ? m->n_weights : 1, sizeof *plan);
    if (!plan) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    size_t total, tmp_bytes, avail = mt_mem_available();
    plan_all(m, plan, !m->params.mmap, &total, &tmp_bytes);
    if (!m->params.mmap && total > avail) {
        /* a model larger than the memory still runs from the page cache, slower, rather than being killed */
        mt_log(MT_LOG_INFO, "the weights (%.2f GiB) are more than the free memory (%.2f GiB): they are read in place "
               "from the file", (double)total / (1 << 30), (double)avail / (1 << 30));
        plan_all(m, plan, false, &total, &tmp_bytes);
    }
    uint8_t *tmp = tmp_bytes ? mt_malloc(tmp_bytes) : NULL;
    if (total && (m->pages = mt_malloc_pages(total))) m->pages_bytes = total;
    if ((total && !m->pages) || (tmp_bytes && !tmp)) {
        mt_free(plan), mt_free(tmp);
        return mt_err_set(err, MT_ERR_NOMEM, "out of memory for the weights (%.2f GiB)", (double)total / (1 << 30));
    }
    mt_status st = MT_OK;
    for (size_t i = 0; i < m->n_weights && !st; i++)
        if (plan[i].from) st = place(m, &m->weights[i], &plan[i], (uint8_t *)m->pages + plan[i].at, tmp, err);
    mt_free(plan), mt_free(tmp);
    return st;
}
