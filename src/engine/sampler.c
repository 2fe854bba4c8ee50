/* engine/sampler: repetition penalty, temperature, top-k, top-p, min-p, seeded sampling.
 *
 * Reference: transformers' logits processors in generate()'s order (RepetitionPenaltyLogitsProcessor,
 * TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper, MinPLogitsWarper): each filter sees what the one
 * before it left, so top-p sums the probabilities renormalised over top-k's survivors, and top-k keeps every token
 * tied with the k-th. Only the candidates are sorted (none without a filter): tokens a millionth as likely as the
 * best cannot be in the nucleus unless the ones above them fall short of top_p, and then the whole vocabulary is
 * sorted. min_p keeps tokens of at least min_p times the best (a millionth is below any useful min_p). */
#define _GNU_SOURCE
#include "engine/sampler.h"

#include <math.h>
#include <stdio.h>
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
        !(p->repetition_penalty > 0) || p->top_k < 0 || !(p->presence_penalty >= -2 && p->presence_penalty <= 2) ||
        !(p->frequency_penalty >= -2 && p->frequency_penalty <= 2))
        return mt_err_set(err, MT_ERR_INVALID_ARG,
                          "sampling: temperature >= 0, 0 < top_p <= 1, 0 <= min_p <= 1, repetition_penalty > 0, "
                          "top_k >= 0, presence and frequency penalties in [-2, 2] are required");
    uint64_t x = p->seed;
    for (int i = 0; i < 4; i++) s->rng[i] = splitmix(&x);
    s->probs = mt_malloc_array((size_t)vocab, sizeof(float));
    s->order = mt_malloc_array((size_t)vocab, sizeof(int32_t));
    s->seen = mt_calloc((size_t)vocab, 1);
    bool counting = p->presence_penalty != 0 || p->frequency_penalty != 0;
    if (counting) s->counts = mt_calloc((size_t)vocab, sizeof(int32_t));
    if (!s->probs || !s->order || !s->seen || (counting && !s->counts)) {
        mt_sampler_release(s);
        return mt_err_set(err, MT_ERR_NOMEM, "sampling: out of memory");
    }
    return MT_OK;
}

void mt_sampler_release(mt_sampler *s) {
    mt_free(s->probs);
    mt_free(s->order);
    mt_free(s->seen);
    mt_free(s->counts);
    s->probs = NULL;
    s->order = NULL;
    s->seen = NULL;
    s->counts = NULL;
}

static int by_prob_desc(const void *a, const void *b, void *probs) {
    const float *p = probs;
    float pa = p[*(const int32_t *)a], pb = p[*(const int32_t *)b];
    if (pa != pb) return pa < pb ? 1 : -1;
    return *(const int32_t *)a - *(const int32_t *)b;
}

/* Each distinct token of the history once (transformers gathers, scales and scatters, so repeats do not compound):
 * a positive logit divided by the penalty, a negative one multiplied. O(history). */
static void penalise(mt_sampler *s, float *logits, const int32_t *history, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        int32_t t = history[i];
        if (t < 0 || t >= s->vocab || s->seen[t]) continue;
        s->seen[t] = 1;
        logits[t] = logits[t] > 0 ? logits[t] / s->p.repetition_penalty : logits[t] * s->p.repetition_penalty;
    }
    for (int64_t i = 0; i < n; i++)
        if (history[i] >= 0 && history[i] < s->vocab) s->seen[history[i]] = 0;
}

/* OpenAI's penalties over the answer so far: each token that appeared loses presence_penalty once and
 * frequency_penalty per time it appeared. O(answer). */
static void penalise_answer(mt_sampler *s, float *logits, const int32_t *answer, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (answer[i] >= 0 && answer[i] < s->vocab) s->counts[answer[i]]++;
    for (int64_t i = 0; i < n; i++) {
        int32_t t = answer[i];
        if (t < 0 || t >= s->vocab || !s->counts[t]) continue;
        logits[t] -= s->p.presence_penalty + s->p.frequency_penalty * (float)s->counts[t];
        s->counts[t] = 0;
    }
}

/* s->order[0..n) gets the tokens whose probability is at least floor_p, sorted by probability (ties: lower id). */
static int64_t sorted_above(mt_sampler *s, float floor_p) {
    int64_t n = 0;
    for (int64_t i = 0; i < s->vocab; i++)
        if (s->probs[i] >= floor_p) s->order[n++] = (int32_t)i;
    qsort_r(s->order, (size_t)n, sizeof(int32_t), by_prob_desc, s->probs);
    return n;
}

int64_t mt_sampler_filter(mt_sampler *s, float *logits, const int32_t *history, int64_t n_history) {
    int64_t V = s->vocab;
    if (s->p.repetition_penalty != 1.0f) penalise(s, logits, history, n_history);
    if (s->counts && n_history > s->output_start)
        penalise_answer(s, logits, history + s->output_start, n_history - s->output_start);
    int32_t best = 0;
    for (int64_t i = 1; i < V; i++)
        if (logits[i] > logits[best]) best = (int32_t)i;
    if (s->p.temperature <= 0) {
        s->order[0] = best;
        s->probs[best] = 1.0f;
        return 1;
    }
    float maxl = logits[best] / s->p.temperature;
    double sum = 0;
    for (int64_t i = 0; i < V; i++) sum += s->probs[i] = expf(logits[i] / s->p.temperature - maxl);
    for (int64_t i = 0; i < V; i++) s->probs[i] = (float)(s->probs[i] / sum);
    if (s->p.top_k == 0 && s->p.top_p >= 1.0f && s->p.min_p <= 0) {
        for (int64_t i = 0; i < V; i++) s->order[i] = (int32_t)i; /* no filter: nothing to sort */
        return V;
    }
    /* candidates: within a factor 1e-6 of the best, unless they hold less than top_p or top_k asks for more */
    int64_t n = sorted_above(s, s->probs[best] * 1e-6f);
    double mass = 0;
    for (int64_t i = 0; i < n; i++) mass += s->probs[s->order[i]];
    if (s->p.top_k > n || (s->p.top_p < 1.0f && mass < s->p.top_p) || (s->p.min_p > 0 && s->p.min_p < 1e-6f))
        n = sorted_above(s, -1.0f);
    int64_t keep = n;
    if (s->p.top_k > 0 && s->p.top_k < keep) {
        /* every token tied with the k-th stays, as transformers keeps scores >= the k-th largest */
        float kth = s->probs[s->order[s->p.top_k - 1]];
        keep = s->p.top_k;
        while (keep < n && s->probs[s->order[keep]] >= kth) keep++;
    }
    if (s->p.top_p < 1.0f) {
        /* renormalised over what top-k left; a token stays while the mass above it is under top_p */
        double total = 0, above = 0;
        for (int64_t i = 0; i < keep; i++) total += s->probs[s->order[i]];
        for (int64_t i = 0; i < keep; i++) {
            if (above / total >= s->p.top_p) {
                keep = i;
                break;
            }
            above += s->probs[s->order[i]];
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
    for (int64_t i = 0; i < keep; i++) s->probs[s->order[i]] = (float)(s->probs[s->order[i]] / total);
    return keep;
}

int32_t mt_sampler_pick(mt_sampler *s, float *logits, const int32_t *history, int64_t n_history) {
    int64_t keep = mt_sampler_filter(s, logits, history, n_history);
    if (keep == 1) return s->order[0];
    double r = (double)(next_u64(s->rng) >> 11) * 0x1.0p-53;
    for (int64_t i = 0; i < keep; i++) {
        r -= s->probs[s->order[i]];
        if (r <= 0) return s->order[i];
    }
    return s->order[keep - 1];
}

/* A seed for MT_SEED_RANDOM: from the kernel, else the clock and the address space; 32 bits, so it is short to type
 * back, and never MT_SEED_RANDOM itself. */
uint64_t mt_sampler_draw_seed(void) {
    uint64_t v = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    bool ok = f && fread(&v, sizeof v, 1, f) == 1;
    if (f) fclose(f);
    if (!ok) v = (uint64_t)(mt_time_now() * 1e9) ^ ((uint64_t)(uintptr_t)&v * 0x9e3779b97f4a7c15ull);
    return (v ^ (v >> 32)) & 0xffffffffull;
}
