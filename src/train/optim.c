/* train/optim: AdamW and gradient-norm clipping (see optim.h for the update rule and its torch reference). */
#include "train/optim.h"

#include <math.h>
#include <string.h>

/* A slice of one parameter: the unit of work handed to the pool. */
typedef struct mt_chunk {
    size_t param;
    int64_t off, len;
} mt_chunk;

struct mt_adamw {
    mt_adamw_config cfg;
    mt_param *params; /* (n) copy of the caller's table */
    size_t n;
    int64_t *offset; /* (n) where parameter i starts in m and v */
    float *m, *v;    /* (total) first and second moments, one allocation each */
    mt_chunk *chunks;
    int64_t n_chunks;
    int64_t t;
    double lr[MT_OPTIM_MAX_GROUPS];
};

mt_adamw_config mt_adamw_config_default(void) {
    mt_adamw_config c = {.beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .n_groups = 1};
    c.groups[0] = (mt_adamw_group){.lr = 1e-3, .weight_decay = 1e-2};
    return c;
}

/* Splits every parameter into chunks of at most MT_OPTIM_CHUNK elements; *out is NULL when there are none. */
static mt_status make_chunks(const mt_param *params, size_t n, mt_chunk **out, int64_t *count, mt_err *err) {
    int64_t c = 0;
    for (size_t i = 0; i < n; i++) c += (params[i].n + MT_OPTIM_CHUNK - 1) / MT_OPTIM_CHUNK;
    *out = NULL;
    *count = c;
    if (c == 0) return MT_OK;
    mt_chunk *ch = mt_malloc_array((size_t)c, sizeof *ch);
    if (!ch) return mt_err_set(err, MT_ERR_NOMEM, "optimizer: out of memory for %lld work chunks", (long long)c);
    int64_t k = 0;
    for (size_t i = 0; i < n; i++)
        for (int64_t off = 0; off < params[i].n; off += MT_OPTIM_CHUNK)
            ch[k++] = (mt_chunk){i, off, MT_MIN(MT_OPTIM_CHUNK, params[i].n - off)};
    *out = ch;
    return MT_OK;
}

static mt_status check_param(const mt_param *p, size_t i, int n_groups, mt_err *err) {
    if (!p->name) return mt_err_set(err, MT_ERR_INVALID_ARG, "optimizer: parameter %zu has no name", i);
    if (!p->data || !p->grad)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "optimizer: parameter \"%s\" has no %s buffer", p->name,
                          p->data ? "grad" : "data");
    if (p->ndim < 0 || p->ndim > 4)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "optimizer: parameter \"%s\" has %d dims (0..4 allowed)",
                          p->name, p->ndim);
    int64_t prod = 1;
    for (int d = 0; d < p->ndim; d++)
        if (p->shape[d] < 0 || !mt_mul_i64_ok(prod, p->shape[d], &prod))
            return mt_err_set(err, MT_ERR_INVALID_ARG, "optimizer: parameter \"%s\" has a bad dim %d", p->name, d);
    if (prod != p->n)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "optimizer: parameter \"%s\": n = %lld but the shape holds %lld",
                          p->name, (long long)p->n, (long long)prod);
    if (p->group < 0 || p->group >= n_groups)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "optimizer: parameter \"%s\" is in group %d of %d", p->name,
                          p->group, n_groups);
    return MT_OK;
}

static mt_status check_config(const mt_adamw_config *c, mt_err *err) {
    if (!(c->beta1 >= 0 && c->beta1 < 1) || !(c->beta2 >= 0 && c->beta2 < 1))
        return mt_err_set(err, MT_ERR_INVALID_ARG, "optimizer: betas (%g, %g) must be in [0, 1)", c->beta1, c->beta2);
    if (!(c->eps >= 0 && isfinite(c->eps)))
        return mt_err_set(err, MT_ERR_INVALID_ARG, "optimizer: eps %g must be finite and >= 0", c->eps);
    if (c->n_groups < 1 || c->n_groups > MT_OPTIM_MAX_GROUPS)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "optimizer: %d groups (1..%d allowed)", c->n_groups,
                          MT_OPTIM_MAX_GROUPS);
    for (int g = 0; g < c->n_groups; g++) {
        const mt_adamw_group *gr = &c->groups[g];
        if (!(gr->lr >= 0 && isfinite(gr->lr)) || !(gr->weight_decay >= 0 && isfinite(gr->weight_decay)))
            return mt_err_set(err, MT_ERR_INVALID_ARG, "optimizer: group %d: lr %g and weight_decay %g must be finite and >= 0",
                              g, gr->lr, gr->weight_decay);
    }
    return MT_OK;
}

mt_status mt_adamw_new(const mt_param *params, size_t n, const mt_adamw_config *cfg, mt_adamw **out, mt_err *err) {
    mt_status s = check_config(cfg, err);
    for (size_t i = 0; i < n && !s; i++) s = check_param(&params[i], i, cfg->n_groups, err);
    if (s) return s;
    mt_adamw *o = mt_calloc(1, sizeof *o);
    if (!o) return mt_err_set(err, MT_ERR_NOMEM, "optimizer: out of memory");
    o->cfg = *cfg;
    o->n = n;
    for (int g = 0; g < cfg->n_groups; g++) o->lr[g] = cfg->groups[g].lr;
    int64_t total = 0;
    bool ok = true;
    if (n > 0) {
        o->params = mt_malloc_array(n, sizeof *o->params);
        o->offset = mt_malloc_array(n, sizeof *o->offset);
        ok = o->params && o->offset;
        for (size_t i = 0; ok && i < n; i++) {
            o->params[i] = params[i];
            o->offset[i] = total;
            ok = !__builtin_add_overflow(total, params[i].n, &total);
        }
    }
    size_t bytes = 0;
    if (ok && total > 0) {
        ok = mt_mul_ok((size_t)total, sizeof(float), &bytes);
        o->m = ok ? mt_malloc_aligned(bytes) : NULL;
        o->v = ok ? mt_malloc_aligned(bytes) : NULL;
        ok = o->m && o->v;
        if (ok) {
            memset(o->m, 0, bytes);
            memset(o->v, 0, bytes);
        }
    }
    if (!ok) {
        mt_adamw_free(o);
        return mt_err_set(err, MT_ERR_NOMEM, "optimizer: out of memory for the moments of %lld parameters",
                          (long long)total);
    }
    s = make_chunks(params, n, &o->chunks, &o->n_chunks, err);
    if (s) {
        mt_adamw_free(o);
        return s;
    }
    *out = o;
    return MT_OK;
}

void mt_adamw_free(mt_adamw *opt) {
    if (!opt) return;
    mt_free(opt->params);
    mt_free(opt->offset);
    mt_free(opt->m);
    mt_free(opt->v);
    mt_free(opt->chunks);
    mt_free(opt);
}

/* Per-group float scalars of one step, formed in double as torch forms them from Python floats. */
typedef struct step_ctx {
    mt_adamw *o;
    float decay_mul[MT_OPTIM_MAX_GROUPS]; /* 1 - lr * wd */
    float neg_step[MT_OPTIM_MAX_GROUPS];  /* -(lr / bias_correction1) */
    float beta1, one_minus_beta1, beta2, one_minus_beta2, bc2_sqrt, eps;
} step_ctx;

static void step_chunk(void *ctx, int64_t task, int thread) {
    const step_ctx *c = ctx;
    const mt_chunk *ch = &c->o->chunks[task];
    const mt_param *p = &c->o->params[ch->param];
    float *w = p->data + ch->off;
    const float *g = p->grad + ch->off;
    float *m = c->o->m + c->o->offset[ch->param] + ch->off;
    float *v = c->o->v + c->o->offset[ch->param] + ch->off;
    const float decay = p->decay ? c->decay_mul[p->group] : 1.0f, neg_step = c->neg_step[p->group];
    const float b1 = c->beta1, a1 = c->one_minus_beta1, b2 = c->beta2, a2 = c->one_minus_beta2;
    const float bc2 = c->bc2_sqrt, eps = c->eps;
    for (int64_t i = 0; i < ch->len; i++) {
        float wi = w[i] * decay;
        float mi = m[i] * b1 + a1 * g[i];
        float vi = v[i] * b2 + a2 * g[i] * g[i];
        float denom = sqrtf(vi) / bc2 + eps;
        w[i] = wi + neg_step * mi / denom;
        m[i] = mi;
        v[i] = vi;
    }
}

void mt_adamw_step(mt_adamw *opt, double lr_scale, mt_pool *pool) {
    const mt_adamw_config *c = &opt->cfg;
    opt->t++;
    double t = (double)opt->t;
    double bc1 = 1 - pow(c->beta1, t), bc2 = 1 - pow(c->beta2, t);
    step_ctx ctx = {
        .o = opt,
        .beta1 = (float)c->beta1,
        .one_minus_beta1 = (float)(1 - c->beta1),
        .beta2 = (float)c->beta2,
        .one_minus_beta2 = (float)(1 - c->beta2),
        .bc2_sqrt = (float)sqrt(bc2),
        .eps = (float)c->eps,
    };
    for (int g = 0; g < c->n_groups; g++) {
        double lr = c->groups[g].lr * lr_scale;
        opt->lr[g] = lr;
        ctx.decay_mul[g] = (float)(1 - lr * c->groups[g].weight_decay);
        ctx.neg_step[g] = (float)-(lr / bc1);
    }
    mt_pool_run(pool, opt->n_chunks, step_chunk, &ctx);
}

double mt_adamw_lr(const mt_adamw *opt, int group) {
    return group >= 0 && group < opt->cfg.n_groups ? opt->lr[group] : 0.0;
}
const mt_adamw_config *mt_adamw_get_config(const mt_adamw *opt) { return &opt->cfg; }
int64_t mt_adamw_t(const mt_adamw *opt) { return opt->t; }
size_t mt_adamw_count(const mt_adamw *opt) { return opt->n; }
const mt_param *mt_adamw_param(const mt_adamw *opt, size_t i) { return &opt->params[i]; }
const float *mt_adamw_exp_avg(const mt_adamw *opt, size_t i) { return opt->m + opt->offset[i]; }
const float *mt_adamw_exp_avg_sq(const mt_adamw *opt, size_t i) { return opt->v + opt->offset[i]; }

void mt_adamw_restore(mt_adamw *opt, size_t i, const float *exp_avg, const float *exp_avg_sq) {
    size_t bytes = (size_t)opt->params[i].n * sizeof(float);
    if (bytes) {
        memcpy(opt->m + opt->offset[i], exp_avg, bytes);
        memcpy(opt->v + opt->offset[i], exp_avg_sq, bytes);
    }
}

void mt_adamw_set_t(mt_adamw *opt, int64_t t) { opt->t = t; }

typedef struct norm_ctx {
    const mt_param *params;
    const mt_chunk *chunks;
    double *partial; /* (n_chunks) sum of squares of each chunk */
    float coef;
} norm_ctx;

static void norm_chunk(void *ctx, int64_t task, int thread) {
    norm_ctx *c = ctx;
    const mt_chunk *ch = &c->chunks[task];
    const float *g = c->params[ch->param].grad + ch->off;
    /* Four accumulators break the dependency chain; the order is fixed, so the result is too. */
    double s[4] = {0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 4 <= ch->len; i += 4)
        for (int k = 0; k < 4; k++) s[k] += (double)g[i + k] * g[i + k];
    for (; i < ch->len; i++) s[0] += (double)g[i] * g[i];
    c->partial[task] = (s[0] + s[1]) + (s[2] + s[3]);
}

static void scale_chunk(void *ctx, int64_t task, int thread) {
    norm_ctx *c = ctx;
    const mt_chunk *ch = &c->chunks[task];
    float *g = c->params[ch->param].grad + ch->off;
    for (int64_t i = 0; i < ch->len; i++) g[i] *= c->coef;
}

/* Fills *nc (chunks and partial sums, which the caller frees) and *norm. */
static mt_status measure(const mt_param *params, size_t n, mt_pool *pool, norm_ctx *nc, int64_t *n_chunks,
                         double *norm, mt_err *err) {
    mt_chunk *chunks;
    mt_status s = make_chunks(params, n, &chunks, n_chunks, err);
    if (s) return s;
    double *partial = NULL;
    if (*n_chunks > 0 && !(partial = mt_malloc_array((size_t)*n_chunks, sizeof *partial))) {
        mt_free(chunks);
        return mt_err_set(err, MT_ERR_NOMEM, "gradient norm: out of memory");
    }
    *nc = (norm_ctx){.params = params, .chunks = chunks, .partial = partial};
    mt_pool_run(pool, *n_chunks, norm_chunk, nc);
    double sum = 0;
    for (int64_t k = 0; k < *n_chunks; k++) sum += partial[k];
    *norm = sqrt(sum);
    return MT_OK;
}

mt_status mt_grad_norm(const mt_param *params, size_t n, mt_pool *pool, double *norm, mt_err *err) {
    norm_ctx nc;
    int64_t n_chunks;
    mt_status s = measure(params, n, pool, &nc, &n_chunks, norm, err);
    if (s) return s;
    mt_free((void *)nc.chunks);
    mt_free(nc.partial);
    return MT_OK;
}

mt_status mt_grad_clip_norm(const mt_param *params, size_t n, double max_norm, mt_pool *pool, double *norm,
                            mt_err *err) {
    norm_ctx nc;
    int64_t n_chunks;
    double total;
    mt_status s = measure(params, n, pool, &nc, &n_chunks, &total, err);
    if (s) return s;
    *norm = total;
    if (!isfinite(total)) {
        size_t bad = 0;
        for (int64_t k = 0; k < n_chunks; k++)
            if (!isfinite(nc.partial[k])) {
                bad = nc.chunks[k].param;
                break;
            }
        s = mt_err_set(err, MT_ERR_LIMIT, "gradient norm is %s: parameter \"%s\" has a non-finite gradient",
                       isnan(total) ? "NaN" : "infinite", params[bad].name ? params[bad].name : "?");
    } else if (max_norm > 0) {
        /* torch: clip_coef = max_norm / (total_norm + 1e-6) on a float32 tensor, which Tensor.__rtruediv__
         * evaluates as reciprocal(total_norm + 1e-6) * max_norm. */
        float coef = (1.0f / ((float)total + 1e-6f)) * (float)max_norm;
        if (coef < 1.0f) {
            nc.coef = coef;
            mt_pool_run(pool, n_chunks, scale_chunk, &nc);
        }
    }
    mt_free((void *)nc.chunks);
    mt_free(nc.partial);
    return s;
}
