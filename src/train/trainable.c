/* train/trainable: f32 masters, gradient buffers and LoRA adapters swapped into a loaded model. */
#include "train/trainable.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "train/rng.h"

/* A module tensor as it was before training took it over (while mt_trainable_use_base has the model on its base:
 * the training one). */
typedef struct saved_use {
    mt_tensor *t;
    mt_tensor before;
} saved_use;

typedef struct lora_slot {
    mt_linear *linear;
    mt_lora lora;
    char *name_a, *name_b;
} lora_slot;

struct mt_trainable {
    mt_model *m;
    mt_param *params;
    size_t n_params, cap_params;
    saved_use *saved;
    size_t n_saved, cap_saved;
    mt_tensor *grad_views; /* one per use of a trained weight */
    size_t n_views;
    lora_slot *loras;
    size_t n_loras;
    bool on_base;    /* mt_trainable_use_base: the model reads its checkpoint's weights, no adapters */
    float **buffers; /* every master and gradient allocation */
    size_t n_buffers, cap_buffers;
    size_t total[3], trained[3]; /* parameters per part */
    size_t frozen_kept;          /* weights of chosen parts read in a form training cannot change (fused experts) */
};

mt_train_spec mt_train_spec_default(void) {
    return (mt_train_spec){.language = true, .lora_alpha = 0.0f, .lora_targets = "all-linear", .seed = 42};
}

bool mt_train_spec_default_parts(mt_train_spec *spec, const mt_model *m) {
    if (spec->parts_given) return false;
    spec->parts_given = true;
    spec->vision = false;
    spec->language = true;
    spec->projector = m->comp && m->comp->trains_projector_by_default && m->desc.params_projector > 0;
    return true;
}

static float *new_buffer(mt_trainable *t, int64_t n) {
    if (!mt_grow((void **)&t->buffers, &t->cap_buffers, t->n_buffers + 1, sizeof *t->buffers)) return NULL;
    float *b = mt_calloc((size_t)n, sizeof(float));
    if (b) t->buffers[t->n_buffers++] = b;
    return b;
}

static mt_status add_param(mt_trainable *t, const mt_param *p, mt_err *err) {
    if (!mt_grow((void **)&t->params, &t->cap_params, t->n_params + 1, sizeof *t->params))
        return mt_err_set(err, MT_ERR_NOMEM, "out of memory listing parameters");
    t->params[t->n_params++] = *p;
    return MT_OK;
}

static mt_status save_use(mt_trainable *t, mt_tensor *use, mt_err *err) {
    if (!mt_grow((void **)&t->saved, &t->cap_saved, t->n_saved + 1, sizeof *t->saved))
        return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    t->saved[t->n_saved++] = (saved_use){use, *use};
    return MT_OK;
}

/* Points every use of w at the master and a gradient view; w's tensors then take part in autograd. */
static mt_status train_weight(mt_trainable *t, const mt_weight *w, mt_err *err) {
    int64_t n = w->rows * w->cols;
    float *master = new_buffer(t, n), *grad = new_buffer(t, n);
    if (!master || !grad) return mt_err_set(err, MT_ERR_NOMEM, "out of memory for \"%s\"'s master copy", w->name);
    mt_status st = mt_weight_read_f32(w, master, err);
    for (size_t u = 0; u < w->n_uses && !st; u++) {
        mt_tensor *use = w->uses[u].t;
        if ((st = save_use(t, use, err))) break;
        int64_t off = w->uses[u].row0 * w->cols;
        use->data = master + off;
        use->dtype = MT_F32;
        use->stride[use->ndim - 1] = 1;
        if (use->ndim > 1) use->stride[0] = w->cols;
        use->requires_grad = true;
        mt_tensor *g = &t->grad_views[t->n_views++];
        *g = mt_tensor_wrap(MT_F32, use->ndim, use->shape, grad + off);
        use->grad = g;
    }
    if (st) return st;
    mt_param p = {.name = w->name, .data = master, .grad = grad, .n = n, .ndim = w->cols > 1 ? 2 : 1,
                  .group = (int)w->part, .decay = w->cols > 1};
    p.shape[0] = w->rows;
    p.shape[1] = w->cols;
    return add_param(t, &p, err);
}

/* Whether module (the weight's name without ".weight") is a LoRA target, as PEFT matches a list: "all-linear", or
 * an entry equal to the module name or to a dotted suffix of it ("q_proj", "self_attn.q_proj", the full name). */
static bool is_target(const char *module, const char *targets) {
    if (strcmp(targets, "all-linear") == 0) return true;
    size_t len = strlen(module);
    for (const char *p = targets; *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n && n <= len && strncmp(module + len - n, p, n) == 0 && (n == len || module[len - n - 1] == '.'))
            return true;
        p += n + (end ? 1 : 0);
    }
    return false;
}

static mt_status add_adapter(mt_trainable *t, const mt_weight *w, const mt_train_spec *spec, mt_err *err) {
    lora_slot *slot = &t->loras[t->n_loras];
    int64_t r = spec->lora_rank, in = w->cols, out = w->rows;
    char module[256], path[256];
    if (!mt_weight_module(t->m, w->name, false, module, sizeof module) ||
        !mt_weight_module(t->m, w->name, true, path, sizeof path))
        return MT_OK;
    /* a target may name the module as the checkpoint does or as the current module tree does */
    if (!is_target(module, spec->lora_targets) && !is_target(path, spec->lora_targets)) return MT_OK;
    float *a = new_buffer(t, r * in), *ga = new_buffer(t, r * in);
    float *b = new_buffer(t, out * r), *gb = new_buffer(t, out * r);
    char name[320];
    slot->name_a = mt_lora_tensor_name(t->m, w, false, 0, name, sizeof name) ? mt_strdup(name) : NULL;
    slot->name_b = mt_lora_tensor_name(t->m, w, false, 1, name, sizeof name) ? mt_strdup(name) : NULL;
    if (!a || !ga || !b || !gb || !slot->name_a || !slot->name_b)
        return mt_err_set(err, MT_ERR_NOMEM, "out of memory for the adapter of %s", module);
    mt_rng rng = mt_rng_stream(spec->seed, MT_RNG_INIT, t->n_loras);
    float bound = 1.0f / sqrtf((float)in);
    for (int64_t i = 0; i < r * in; i++) a[i] = (2.0f * mt_rng_float(&rng) - 1.0f) * bound;
    mt_lora *lo = &slot->lora;
    lo->a = mt_tensor_wrap(MT_F32, 2, (int64_t[]){r, in}, a);
    lo->b = mt_tensor_wrap(MT_F32, 2, (int64_t[]){out, r}, b);
    lo->a.requires_grad = lo->b.requires_grad = true;
    mt_tensor *gva = &t->grad_views[t->n_views++], *gvb = &t->grad_views[t->n_views++];
    *gva = mt_tensor_wrap(MT_F32, 2, (int64_t[]){r, in}, ga);
    *gvb = mt_tensor_wrap(MT_F32, 2, (int64_t[]){out, r}, gb);
    lo->a.grad = gva;
    lo->b.grad = gvb;
    lo->scale = spec->lora_alpha / (float)r;
    lo->dropout = spec->lora_dropout;
    slot->linear = w->linear;
    w->linear->lora = lo;
    t->n_loras++;
    mt_param pa = {.name = slot->name_a, .data = a, .grad = ga, .n = r * in, .ndim = 2, .shape = {r, in},
                   .group = MT_PART_LANGUAGE, .decay = true};
    mt_param pb = {.name = slot->name_b, .data = b, .grad = gb, .n = out * r, .ndim = 2, .shape = {out, r},
                   .group = MT_PART_LANGUAGE, .decay = true};
    mt_status st = add_param(t, &pa, err);
    return st ? st : add_param(t, &pb, err);
}

mt_status mt_trainable_setup(mt_model *m, const mt_train_spec *spec, mt_trainable **out, mt_err *err) {
    *out = NULL;
    if (spec->lora_rank < 0 || spec->lora_rank > 4096)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "LoRA rank %d is outside 0..4096", spec->lora_rank);
    if (spec->lora_rank > 0 && !(spec->lora_dropout >= 0.0f && spec->lora_dropout < 1.0f))
        return mt_err_set(err, MT_ERR_INVALID_ARG, "LoRA dropout %g is outside [0, 1)", spec->lora_dropout);
    mt_trainable *t = mt_calloc(1, sizeof *t);
    if (!t) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    t->m = m;
    size_t uses = 0;
    for (size_t i = 0; i < m->n_weights; i++) uses += m->weights[i].n_uses;
    t->grad_views = mt_calloc(uses + 2 * m->n_weights + 1, sizeof *t->grad_views);
    t->loras = mt_calloc(m->n_weights + 1, sizeof *t->loras);
    mt_status st = (t->grad_views && t->loras) ? MT_OK : mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    bool chosen[3] = {spec->vision, spec->projector, spec->language};
    for (size_t i = 0; i < m->n_weights && !st; i++) {
        const mt_weight *w = &m->weights[i];
        int64_t n = w->rows * w->cols;
        t->total[w->part] += (size_t)n;
        if (w->training == MT_WEIGHT_FROZEN || (w->training == MT_WEIGHT_OPT_IN && !spec->train_router)) {
            t->frozen_kept += chosen[w->part] && spec->lora_rank == 0 && w->training == MT_WEIGHT_FROZEN;
            continue;
        }
        bool adapted = spec->lora_rank > 0 && (w->part == MT_PART_LANGUAGE || spec->lora_all_parts);
        if (!chosen[w->part] && !(adapted && spec->lora_all_parts)) continue;
        if (adapted) {
            size_t before = t->n_loras;
            if (w->linear) st = add_adapter(t, w, spec, err);
            /* merging: a chosen part's weight that no adapter took is one the adapter holds whole */
            if (st || t->n_loras > before || !chosen[w->part] || w->part == MT_PART_LANGUAGE) continue;
        }
        st = train_weight(t, w, err);
        if (!st) t->trained[w->part] += (size_t)n;
    }
    /* every target named must adapt something, as PEFT refuses target modules not found in the base model */
    for (const char *p = spec->lora_targets; !st && spec->lora_rank > 0 && p && *p && strcmp(p, "all-linear");) {
        size_t n = strcspn(p, ",");
        char one[256];
        snprintf(one, sizeof one, "%.*s", (int)MT_MIN(n, sizeof one - 1), p);
        bool found = false;
        for (size_t i = 0; i < m->n_weights && !found; i++) {
            char module[256], path[256];
            const mt_weight *w = &m->weights[i];
            if (!w->linear || !(w->part == MT_PART_LANGUAGE || spec->lora_all_parts)) continue;
            found = (mt_weight_module(m, w->name, false, module, sizeof module) && is_target(module, one)) ||
                    (mt_weight_module(m, w->name, true, path, sizeof path) && is_target(path, one));
        }
        if (!found && n)
            st = mt_err_set(err, MT_ERR_INVALID_ARG, "LoRA target \"%s\" matches no linear layer the adapters can go "
                            "on (names such as q_proj, self_attn.o_proj or all-linear)", one);
        p += n + (p[n] == ',');
    }
    if (!st && t->frozen_kept)
        mt_log(MT_LOG_INFO, "train: %zu fused expert stack(s) stay frozen (they are read in place, transposed); "
               "use --lora to adapt the rest", t->frozen_kept);
    if (!st && t->n_params == 0)
        st = mt_err_set(err, MT_ERR_INVALID_ARG, "nothing to train: choose parts (or LoRA targets) the model has");
    if (st) {
        mt_trainable_free(t);
        return st;
    }
    for (size_t i = 0; i < t->n_loras; i++)
        t->trained[MT_PART_LANGUAGE] += (size_t)(mt_tensor_numel(&t->loras[i].lora.a) +
                                                 mt_tensor_numel(&t->loras[i].lora.b));
    *out = t;
    return MT_OK;
}

mt_param *mt_trainable_params(mt_trainable *t, size_t *n) {
    *n = t->n_params;
    return t->params;
}

size_t mt_trainable_count(const mt_trainable *t) {
    size_t n = 0;
    for (size_t i = 0; i < t->n_params; i++) n += (size_t)t->params[i].n;
    return n;
}

bool mt_trainable_is_lora(const mt_trainable *t) { return t->n_loras > 0; }

void mt_trainable_zero_grad(mt_trainable *t) {
    for (size_t i = 0; i < t->n_params; i++) memset(t->params[i].grad, 0, (size_t)t->params[i].n * sizeof(float));
}

void mt_trainable_set_step(mt_trainable *t, uint64_t seed, int64_t step) {
    for (size_t i = 0; i < t->n_loras; i++) {
        mt_rng r = mt_rng_stream(seed, MT_RNG_DROPOUT, (uint64_t)step * 65536u + i);
        t->loras[i].lora.seed = mt_rng_u64(&r);
    }
}

void mt_trainable_print(const mt_trainable *t, FILE *f) {
    static const char *names[3] = {"vision tower", "projector", "language model"};
    fprintf(f, "%-16s %14s %14s  %s\n", "part", "trained", "total", "how");
    for (int p = 0; p < 3; p++) {
        const char *how = t->trained[p] == 0 ? "frozen" : (p == MT_PART_LANGUAGE && t->n_loras) ? "LoRA" : "full";
        fprintf(f, "%-16s %14zu %14zu  %s\n", names[p], t->trained[p], t->total[p], how);
    }
    size_t tr = t->trained[0] + t->trained[1] + t->trained[2], tot = t->total[0] + t->total[1] + t->total[2];
    fprintf(f, "%-16s %14zu %14zu  %.3f%% trained, %zu tensors", "all", tr, tot, tot ? 100.0 * (double)tr / (double)tot : 0.0,
            t->n_params);
    if (t->n_loras) fprintf(f, ", %zu adapters", t->n_loras);
    fputc('\n', f);
}

void mt_trainable_use_base(mt_trainable *t, bool base) {
    if (t->on_base == base) return;
    t->on_base = base;
    /* Swapping each use with its saved original twice gives the training state back. */
    for (size_t i = 0; i < t->n_saved; i++) {
        mt_tensor trained = *t->saved[i].t;
        *t->saved[i].t = t->saved[i].before;
        t->saved[i].before = trained;
    }
    for (size_t i = 0; i < t->n_loras; i++)
        if (t->loras[i].linear) t->loras[i].linear->lora = base ? NULL : &t->loras[i].lora;
}

bool mt_lora_tensor_name(const mt_model *m, const mt_weight *w, bool module_path, int which, char *out, size_t cap) {
    char module[256];
    if (!mt_weight_module(m, w->name, module_path, module, sizeof module)) return false;
    return (size_t)snprintf(out, cap, "base_model.model.%s.lora_%c.weight", module, which ? 'B' : 'A') < cap;
}

void mt_trainable_free(mt_trainable *t) {
    if (!t) return;
    mt_trainable_use_base(t, false);
    for (size_t i = t->n_saved; i-- > 0;) *t->saved[i].t = t->saved[i].before;
    for (size_t i = 0; i < t->n_loras; i++) {
        if (t->loras[i].linear) t->loras[i].linear->lora = NULL;
        mt_free(t->loras[i].name_a);
        mt_free(t->loras[i].name_b);
    }
    for (size_t i = 0; i < t->n_buffers; i++) mt_free(t->buffers[i]);
    mt_free(t->buffers);
    mt_free(t->loras);
    mt_free(t->grad_views);
    mt_free(t->saved);
    mt_free(t->params);
    mt_free(t);
}
