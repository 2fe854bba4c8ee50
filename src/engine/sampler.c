/* engine/sampler: repetition penalty, temperature, top-k, top-p, min-p, seeded sampling. */
#define _GNU_SOURCE
#include "engine/sampler.h"

#include <math.h>
#include <stdlib.h>

mt_sampling mt_sampling_default(void) {
    return (mt_sampling){.temperature = 0.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f, .repetition_penalty = 1.0f,
                         .seed = 0};
}

static uint64_t splitmix(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t next_u64(uint64_t *s) {
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

mt_status mt_sampler_init(mt_sampler *s, const mt_sampling *p, int64_t vocab, mt_err *err) {
    *s = (mt_sampler){.p = *p, .vocab = vocab};
    if (!(p->temperature >= 0) || !(p->top_p > 0 && p->top_p <= 1) || !(p->min_p >= 0 && p->min_p <= 1) ||
        !(p->repetition_penalty > 0) || p->top_k < 0)
        return mt_err_set(err, MT_ERR_INVALID_ARG,
                          "sampling: temperature >= 0, 0 < top_p <= 1, 0 <= min_p <= 1, repetition_penalty > 0, "
                          "top_k >= 0 are required");
    uint64_t x = p->seed;
    for (int i = 0; i < 4; i++) s->rng[i] = splitmix(&x);
    s->probs = mt_malloc_array((size_t)vocab, sizeof(float));
    s->order = mt_malloc_array((size_t)vocab, sizeof(int32_t));
    if (!s->probs || !s->order) {
        mt_sampler_release(s);
        return mt_err_set(err, MT_ERR_NOMEM, "sampling: out of memory");
    }
    return MT_OK;
}

void mt_sampler_release(mt_sampler *s) {
    mt_free(s->probs);
    mt_free(s->order);
    s->probs = NULL;
    s->order = NULL;
}

static int by_prob_desc(const void *a, const void *b, void *probs) {
    const float *p = probs;
    float pa = p[*(const int32_t *)a], pb = p[*(const int32_t *)b];
    if (pa != pb) return pa < pb ? 1 : -1;
    return *(const int32_t *)a - *(const int32_t *)b;
}

int32_t mt_sampler_pick(mt_sampler *s, float *logits, const int32_t *history, int64_t n_history) {
    int64_t V = s->vocab;
    if (s->p.repetition_penalty != 1.0f) {
        /* each distinct token once: transformers gathers, scales and scatters, so duplicates are not compounded */
        for (int64_t i = 0; i < n_history; i++) {
            int32_t t = history[i];
            if (t < 0 || t >= V) continue;
            bool seen = false;
            for (int64_t j = 0; j < i && !seen; j++) seen = history[j] == t;
            if (seen) continue;
            logits[t] = logits[t] > 0 ? logits[t] / s->p.repetition_penalty : logits[t] * s->p.repetition_penalty;
        }
    }
    int32_t best = 0;
    for (int64_t i = 1; i < V; i++)
        if (logits[i] > logits[best]) best = (int32_t)i;
    if (s->p.temperature <= 0) return best;

    float maxl = logits[best] / s->p.temperature;
    double sum = 0;
    for (int64_t i = 0; i < V; i++) sum += s->probs[i] = expf(logits[i] / s->p.temperature - maxl);
    for (int64_t i = 0; i < V; i++) {
        s->probs[i] = (float)(s->probs[i] / sum);
        s->order[i] = (int32_t)i;
    }
    qsort_r(s->order, (size_t)V, sizeof(int32_t), by_prob_desc, s->probs);
    int64_t keep = V;
    if (s->p.top_k > 0 && s->p.top_k < keep) keep = s->p.top_k;
    if (s->p.top_p < 1.0f) {
        double cum = 0;
        for (int64_t i = 0; i < keep; i++) {
            cum += s->probs[s->order[i]];
            if (cum >= s->p.top_p) {
                keep = i + 1;
                break;
            }
        }
    }
    if (s->p.min_p > 0) {
        float floor_p = s->p.min_p * s->probs[s->order[0]];
        int64_t k = 1;
        while (k < keep && s->probs[s->order[k]] >= floor_p) k++;
        keep = k;
    }
    double total = 0;
    for (int64_t i = 0; i < keep; i++) total += s->probs[s->order[i]];
    double r = (double)(next_u64(s->rng) >> 11) * 0x1.0p-53 * total;
    for (int64_t i = 0; i < keep; i++) {
        r -= s->probs[s->order[i]];
        if (r <= 0) return s->order[i];
    }
    return s->order[keep - 1];
}
