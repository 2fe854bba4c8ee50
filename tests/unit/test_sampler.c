/* engine/sampler: greedy, seeded sampling, and each filter's effect on which tokens can come out. */
#include <string.h>

#include "check.h"
#include "engine/sampler.h"

#define V 8

static int32_t pick(mt_sampling p, const float *logits, const int32_t *hist, int64_t n_hist) {
    mt_sampler s;
    mt_err err;
    if (mt_sampler_init(&s, &p, V, &err) != MT_OK) return -2;
    float l[V];
    memcpy(l, logits, sizeof l);
    int32_t t = mt_sampler_pick(&s, l, hist, n_hist);
    mt_sampler_release(&s);
    return t;
}

/* How often each token comes out over n draws with consecutive seeds. */
static void histogram(mt_sampling p, const float *logits, int n, int *counts) {
    memset(counts, 0, V * sizeof(int));
    for (int i = 0; i < n; i++) {
        p.seed = (uint64_t)i;
        int32_t t = pick(p, logits, NULL, 0);
        if (t >= 0 && t < V) counts[t]++;
    }
}

/* OpenAI's presence and frequency penalties look at the answer only (history from output_start on): each token
 * there loses presence once and frequency per occurrence; prompt tokens and others keep their logits. */
static void test_answer_penalties(void) {
    mt_sampling p = mt_sampling_default();
    p.presence_penalty = 0.5f;
    p.frequency_penalty = 0.25f;
    mt_sampler s;
    mt_err err;
    CHECK(mt_sampler_init(&s, &p, V, &err) == MT_OK);
    s.output_start = 2;
    const int32_t hist[] = {3, 3, 5, 5, 7, 5};
    float l[V] = {0};
    mt_sampler_filter(&s, l, hist, 6);
    CHECK_NEAR(l[5], -(0.5f + 0.25f * 3), 1e-6f);
    CHECK_NEAR(l[7], -(0.5f + 0.25f), 1e-6f);
    CHECK(l[3] == 0 && l[0] == 0);
    float again[V] = {0}; /* the scratch counts are back to zero */
    mt_sampler_filter(&s, again, hist, 6);
    CHECK_NEAR(again[5], l[5], 1e-6f);
    mt_sampler_release(&s);
    p.presence_penalty = 2.5f;
    CHECK(mt_sampler_init(&s, &p, V, &err) == MT_ERR_INVALID_ARG && strstr(err.msg, "presence"));
}

int main(void) {
    test_answer_penalties();
    const float logits[V] = {1.0f, 3.0f, 2.9f, 0.5f, -1.0f, 2.0f, 0.0f, -3.0f};
    mt_sampling greedy = mt_sampling_default();
    CHECK(pick(greedy, logits, NULL, 0) == 1);

    /* repetition penalty 2: logit 3.0 of token 1 becomes 1.5, so token 2 (2.9) wins; a negative logit is
     * multiplied, never divided, and a repeated history entry counts once */
    mt_sampling rep = greedy;
    rep.repetition_penalty = 2.0f;
    int32_t hist[] = {1, 1, 1};
    CHECK(pick(rep, logits, hist, 3) == 2);
    int32_t hist2[] = {1, 2};
    CHECK(pick(rep, logits, hist2, 2) == 5);

    mt_sampling hot = greedy;
    hot.temperature = 1.0f;
    hot.seed = 42;
    CHECK(pick(hot, logits, NULL, 0) == pick(hot, logits, NULL, 0)); /* same seed, same token */
    int counts[V];
    histogram(hot, logits, 2000, counts);
    int seen = 0;
    for (int i = 0; i < V; i++) seen += counts[i] > 0;
    CHECK(seen >= 5);                        /* plain sampling reaches most of the vocabulary */
    CHECK(counts[1] > counts[5] && counts[5] > counts[0]); /* in logit order */

    mt_sampling k2 = hot;
    k2.top_k = 2;
    histogram(k2, logits, 500, counts);
    CHECK(counts[1] + counts[2] == 500 && counts[1] > 0 && counts[2] > 0);

    mt_sampling p_small = hot;
    p_small.top_p = 0.3f; /* token 1 alone holds more than 30% */
    histogram(p_small, logits, 200, counts);
    CHECK(counts[1] == 200);

    mt_sampling minp = hot;
    minp.min_p = 0.5f; /* keeps tokens with p >= p_max / 2: tokens 1 and 2 (e^-0.1), not 5 (e^-1) */
    histogram(minp, logits, 500, counts);
    CHECK(counts[1] + counts[2] == 500);

    mt_sampling cold = hot;
    cold.temperature = 0.01f;
    histogram(cold, logits, 200, counts);
    CHECK(counts[1] == 200);

    mt_sampling bad = greedy;
    bad.top_p = 0.0f;
    mt_sampler s;
    mt_err err;
    CHECK(mt_sampler_init(&s, &bad, V, &err) == MT_ERR_INVALID_ARG);
    bad = greedy;
    bad.temperature = -1.0f;
    CHECK(mt_sampler_init(&s, &bad, V, &err) == MT_ERR_INVALID_ARG);
    return check_report();
}
