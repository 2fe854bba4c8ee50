/* nn/kv: per-sequence growable K/V storage, batch planning and row writes. */
#include "nn/kv.h"

#include <string.h>

typedef struct kv_seq {
    bool used;
    int64_t len, cap;
    void **k, **v; /* [n_layers] */
} kv_seq;

struct mt_kv {
    mt_kv_params p;
    kv_seq *seqs;
    int64_t rows_reserved; /* sum of cap over sequences */
};

mt_status mt_kv_new(const mt_kv_params *p, mt_kv **out, mt_err *err) {
    mt_kv_params q = *p;
    if (!q.dtype) q.dtype = MT_F32;
    if (q.block_rows <= 0) q.block_rows = 256;
    if (q.max_seqs <= 0) q.max_seqs = 256;
    if (q.n_layers <= 0 || q.k_width <= 0 || q.v_width <= 0 || (q.dtype != MT_F32 && q.dtype != MT_BF16) ||
        q.max_seqs > 1 << 16 || q.max_rows < 0)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "KV memory: bad parameters (%d layers, widths %lld / %lld)",
                          q.n_layers, (long long)q.k_width, (long long)q.v_width);
    mt_kv *kv = mt_calloc(1, sizeof *kv);
    if (kv) kv->seqs = mt_calloc((size_t)q.max_seqs, sizeof *kv->seqs);
    if (!kv || !kv->seqs) {
        mt_free(kv);
        return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    }
    kv->p = q;
    *out = kv;
    return MT_OK;
}

static void seq_release(mt_kv *kv, kv_seq *s) {
    for (int l = 0; s->k && l < kv->p.n_layers; l++) mt_free(s->k[l]);
    for (int l = 0; s->v && l < kv->p.n_layers; l++) mt_free(s->v[l]);
    mt_free(s->k);
    mt_free(s->v);
    kv->rows_reserved -= s->cap;
    *s = (kv_seq){0};
}

void mt_kv_free(mt_kv *kv) {
    if (!kv) return;
    for (int i = 0; i < kv->p.max_seqs; i++) seq_release(kv, &kv->seqs[i]);
    mt_free(kv->seqs);
    mt_free(kv);
}

static kv_seq *seq_at(const mt_kv *kv, int seq) {
    return seq >= 0 && seq < kv->p.max_seqs && kv->seqs[seq].used ? &kv->seqs[seq] : NULL;
}

mt_status mt_kv_seq_new(mt_kv *kv, int *seq, mt_err *err) {
    for (int i = 0; i < kv->p.max_seqs; i++) {
        kv_seq *s = &kv->seqs[i];
        if (s->used) continue;
        s->k = mt_calloc((size_t)kv->p.n_layers, sizeof(void *));
        s->v = mt_calloc((size_t)kv->p.n_layers, sizeof(void *));
        if (!s->k || !s->v) {
            seq_release(kv, s);
            return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
        }
        s->used = true;
        *seq = i;
        return MT_OK;
    }
    return mt_err_set(err, MT_ERR_LIMIT, "KV memory: all %d sequences are in use", kv->p.max_seqs);
}

/* Grows sequence s to hold at least rows rows; on failure it keeps what it had. */
static mt_status reserve(mt_kv *kv, kv_seq *s, int64_t rows, mt_err *err) {
    if (rows <= s->cap) return MT_OK;
    int64_t B = kv->p.block_rows, cap = MT_MAX(rows, s->cap + s->cap / 2);
    cap = (cap + B - 1) / B * B;
    if (kv->p.max_rows && kv->rows_reserved - s->cap + rows > kv->p.max_rows)
        return mt_err_set(err, MT_ERR_LIMIT, "KV memory full: %lld rows are in use, the limit is %lld",
                          (long long)(kv->rows_reserved - s->cap + rows), (long long)kv->p.max_rows);
    if (kv->p.max_rows) cap = MT_MIN(cap, kv->p.max_rows - (kv->rows_reserved - s->cap));
    size_t es = mt_dtype_size(kv->p.dtype), kb, vb;
    if (!mt_mul_ok((size_t)cap, (size_t)kv->p.k_width * es, &kb) || !mt_mul_ok((size_t)cap, (size_t)kv->p.v_width * es, &vb))
        return mt_err_set(err, MT_ERR_LIMIT, "KV memory: %lld rows is too many", (long long)cap);
    /* all layers or none: new buffers first, then the swap */
    int L = kv->p.n_layers;
    void **nk = mt_calloc((size_t)L * 2, sizeof(void *));
    if (!nk) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    void **nv = nk + L;
    bool ok = true;
    for (int l = 0; l < L && ok; l++) {
        nk[l] = mt_malloc_aligned(kb);
        nv[l] = mt_malloc_aligned(vb);
        ok = nk[l] && nv[l];
    }
    if (!ok) {
        for (int l = 0; l < 2 * L; l++) mt_free(nk[l]);
        mt_free(nk);
        return mt_err_set(err, MT_ERR_NOMEM, "KV memory: out of memory for %lld rows x %d layers", (long long)cap, L);
    }
    for (int l = 0; l < L; l++) {
        if (s->len) {
            memcpy(nk[l], s->k[l], (size_t)s->len * (size_t)kv->p.k_width * es);
            memcpy(nv[l], s->v[l], (size_t)s->len * (size_t)kv->p.v_width * es);
        }
        mt_free(s->k[l]);
        mt_free(s->v[l]);
        s->k[l] = nk[l];
        s->v[l] = nv[l];
    }
    mt_free(nk);
    kv->rows_reserved += cap - s->cap;
    s->cap = cap;
    return MT_OK;
}

mt_status mt_kv_seq_fork(mt_kv *kv, int src, int64_t n, int *seq, mt_err *err) {
    kv_seq *from = seq_at(kv, src);
    if (!from) return mt_err_set(err, MT_ERR_INVALID_ARG, "KV memory: no sequence %d to fork", src);
    if (n < 0 || n > from->len) n = from->len;
    int id;
    mt_status st = mt_kv_seq_new(kv, &id, err);
    if (st) return st;
    kv_seq *to = &kv->seqs[id];
    from = &kv->seqs[src];
    if ((st = reserve(kv, to, n, err))) {
        mt_kv_seq_drop(kv, id);
        return st;
    }
    size_t es = mt_dtype_size(kv->p.dtype);
    for (int l = 0; l < kv->p.n_layers && n; l++) {
        memcpy(to->k[l], from->k[l], (size_t)n * (size_t)kv->p.k_width * es);
        memcpy(to->v[l], from->v[l], (size_t)n * (size_t)kv->p.v_width * es);
    }
    to->len = n;
    *seq = id;
    return MT_OK;
}

void mt_kv_seq_drop(mt_kv *kv, int seq) {
    kv_seq *s = seq_at(kv, seq);
    if (s) seq_release(kv, s);
}

void mt_kv_seq_truncate(mt_kv *kv, int seq, int64_t n) {
    kv_seq *s = seq_at(kv, seq);
    if (s && n >= 0 && n < s->len) s->len = n;
}

int64_t mt_kv_seq_len(const mt_kv *kv, int seq) {
    const kv_seq *s = seq_at(kv, seq);
    return s ? s->len : -1;
}

int64_t mt_kv_rows_used(const mt_kv *kv) {
    int64_t n = 0;
    for (int i = 0; i < kv->p.max_seqs; i++) n += kv->seqs[i].used ? kv->seqs[i].len : 0;
    return n;
}

size_t mt_kv_bytes(const mt_kv *kv) {
    return (size_t)kv->rows_reserved * (size_t)kv->p.n_layers * (size_t)(kv->p.k_width + kv->p.v_width) *
           mt_dtype_size(kv->p.dtype);
}

mt_status mt_kv_plan_batch(mt_kv *kv, mt_ctx *ctx, const int32_t *seq, int64_t T, mt_kv_plan *plan, mt_err *err) {
    *plan = (mt_kv_plan){.kv = kv};
    if (T <= 0) return mt_err_set(err, MT_ERR_INVALID_ARG, "empty batch");
    int n = 1;
    for (int64_t t = 1; seq && t < T; t++) n += seq[t] != seq[t - 1];
    mt_kv_group *g = mt_arena_alloc(ctx->arena, (size_t)n * sizeof *g);
    if (!g) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    int k = 0;
    for (int64_t t = 0; t < T; t++) {
        int s = seq ? seq[t] : 0;
        if (t > 0 && s == g[k - 1].seq) {
            g[k - 1].n++;
            continue;
        }
        for (int j = 0; j < k; j++)
            if (g[j].seq == s)
                return mt_err_set(err, MT_ERR_INVALID_ARG, "batch row %lld: the rows of sequence %d are not consecutive",
                                  (long long)t, s);
        g[k++] = (mt_kv_group){.seq = s, .row0 = t, .n = 1};
    }
    for (int j = 0; kv && j < k; j++) {
        kv_seq *s = seq_at(kv, g[j].seq);
        if (!s) return mt_err_set(err, MT_ERR_INVALID_ARG, "batch: sequence %d is not in the KV memory", g[j].seq);
        g[j].pos0 = s->len;
        mt_status st = reserve(kv, s, s->len + g[j].n, err);
        if (st) return st;
    }
    plan->groups = g;
    plan->n_groups = k;
    return MT_OK;
}

void mt_kv_commit(const mt_kv_plan *plan) {
    for (int j = 0; plan->kv && j < plan->n_groups; j++) {
        kv_seq *s = seq_at(plan->kv, plan->groups[j].seq);
        if (s) s->len = plan->groups[j].pos0 + plan->groups[j].n;
    }
}

static mt_tensor view(const mt_kv *kv, int seq, int layer, bool values, int64_t rows) {
    const kv_seq *s = seq_at(kv, seq);
    int64_t w = values ? kv->p.v_width : kv->p.k_width;
    int64_t shape[2] = {rows, w};
    return mt_tensor_wrap(kv->p.dtype, 2, shape, s ? (values ? s->v[layer] : s->k[layer]) : NULL);
}

mt_tensor mt_kv_keys(const mt_kv *kv, int seq, int layer, int64_t rows) { return view(kv, seq, layer, false, rows); }
mt_tensor mt_kv_values(const mt_kv *kv, int seq, int layer, int64_t rows) { return view(kv, seq, layer, true, rows); }

void mt_kv_write(mt_kv *kv, int seq, int layer, bool values, int64_t pos0, const mt_tensor *x) {
    kv_seq *s = seq_at(kv, seq);
    int64_t w = values ? kv->p.v_width : kv->p.k_width, n = x->shape[0];
    if (!s || x->shape[1] != w || pos0 + n > s->cap) return;
    void *dst = values ? s->v[layer] : s->k[layer];
    if (kv->p.dtype == MT_F32) {
        for (int64_t r = 0; r < n; r++)
            memcpy((float *)dst + (pos0 + r) * w, mt_f32(x) + r * x->stride[0], (size_t)w * sizeof(float));
        return;
    }
    uint16_t *d = dst;
    for (int64_t r = 0; r < n; r++)
        for (int64_t c = 0; c < w; c++) d[(pos0 + r) * w + c] = mt_f32_to_bf16(mt_f32(x)[r * x->stride[0] + c]);
}
