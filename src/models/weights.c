/* models/weights: the table of checkpoint tensors a loaded model reads and the module tensors that read them. */
#include <stdio.h>
#include <string.h>

#include "models/model.h"
#include "tensor/cpu/cpu.h"

static mt_status add_use(mt_weight *w, mt_tensor *t, int64_t row0, mt_err *err) {
    mt_weight_use *grown = mt_realloc(w->uses, (w->n_uses + 1) * sizeof *grown);
    if (!grown) return mt_err_set(err, MT_ERR_NOMEM, "out of memory registering \"%s\"", w->name);
    w->uses = grown;
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
        w->part = m->family && m->family->part_of ? m->family->part_of(name) : MT_PART_LANGUAGE;
        m->n_weights++;
    }
    return add_use(w, out, 0, err);
}

mt_weight *mt_weight_find(const mt_model *m, const char *name) {
    for (size_t i = 0; i < m->n_weights; i++)
        if (strcmp(m->weights[i].name, name) == 0) return &m->weights[i];
    return NULL;
}

bool mt_weight_module(const mt_model *m, const char *name, bool renamed, char *out, size_t cap) {
    size_t len = strlen(name);
    if (len < 7 || strcmp(name + len - 7, ".weight") != 0) return false;
    len -= 7;
    const char *const *r = renamed && m->family ? m->family->module_renames : NULL;
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

mt_weight *mt_weight_of(const mt_model *m, const mt_tensor *t, int64_t *row0) {
    for (size_t i = 0; i < m->n_weights; i++)
        for (size_t u = 0; u < m->weights[i].n_uses; u++)
            if (m->weights[i].uses[u].t == t) {
                if (row0) *row0 = m->weights[i].uses[u].row0;
                return &m->weights[i];
            }
    return NULL;
}

mt_status mt_weight_alias(mt_model *m, const mt_tensor *of, mt_tensor *view, int64_t row0, mt_err *err) {
    int64_t base = 0;
    mt_weight *w = mt_weight_of(m, of, &base);
    if (!w) return mt_err_set(err, MT_ERR_INTERNAL, "alias of a tensor that is not a registered weight");
    return add_use(w, view, base + row0, err);
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
    m->weights = NULL;
    m->n_weights = m->cap_weights = 0;
}
