/* engine/sampler: picks the next token from logits, in the order transformers' generate applies its processors:
 * repetition penalty, then temperature, top-k, top-p and min-p. temperature <= 0 is greedy (argmax after the
 * repetition penalty). The generator is a seeded xoshiro256**, so a run with the same seed repeats exactly. */
#ifndef MT_SAMPLER_H
#define MT_SAMPLER_H

#include "base/base.h"


typedef struct mt_sampler {
    mt_sampling p;
    uint64_t rng[4];
    float *probs;     /* [V] scratch */
    int32_t *order;   /* [V] scratch */
    uint8_t *seen;    /* [V] scratch of the repetition penalty, all zero between calls */
    int32_t *counts;  /* [V] scratch of the presence and frequency penalties (only when they are on) */
    int64_t output_start; /* history[output_start..] is the answer, which those two penalties look at */
    int64_t vocab;
} mt_sampler;

mt_status mt_sampler_init(mt_sampler *s, const mt_sampling *p, int64_t vocab, mt_err *err);
void mt_sampler_release(mt_sampler *s);
/* logits [vocab] is modified in place. history: the tokens so far (prompt and generated) for the penalty. */
int32_t mt_sampler_pick(mt_sampler *s, float *logits, const int32_t *history, int64_t n_history);
/* The distribution pick draws from: returns n, the tokens left after every filter in s->order[0..n) (most likely
 * first) with their renormalised probabilities in s->probs[token]; greedy leaves the one best token. */
int64_t mt_sampler_filter(mt_sampler *s, float *logits, const int32_t *history, int64_t n_history);

/* A seed for MT_SEED_RANDOM: 32 bits from the kernel (short to type back), never MT_SEED_RANDOM itself. */
uint64_t mt_sampler_draw_seed(void);

#endif
