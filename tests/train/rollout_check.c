/* train/rollout on the shipped tiny model: G sampled answers per prompt (one prompt with the example picture, one
 * text only) equal, token for token, what each answer's seed gives alone in a session; the scheduler read each
 * prompt once (its rows count says so); the same seed gives the same batch and another seed another one; the
 * end-of-turn token ends an answer that the model ended. usage: rollout_check MODEL_DIR IMAGE */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

#include "../unit/check.h"
#include "engine/session.h"
#include "media/image.h"
#include "train/rollout.h"

#define G 4
#define N_PROMPTS 2
#define MAX_NEW 24

static bool collect(void *user, int32_t tok) {
    mt_completion *c = user;
    c->ids[c->n++] = tok;
    return true;
}

/* Answer g of prompt p generated alone, as the batch's seed for it says. */
static void alone(const mt_model *m, const mt_rollout_prompt *p, const mt_sampling *sm, mt_completion *out) {
    mt_session *s;
    mt_err err;
    CHECK(mt_session_new(m, &(mt_session_params){.n_ctx = 1024, .n_threads = 2}, &s, &err) == MT_OK);
    out->ids = mt_calloc(MAX_NEW + 1, sizeof *out->ids);
    out->n = 0;
    mt_gen_stats gs;
    CHECK_MSG(mt_session_generate(s, p->ids, p->n_ids, p->images, p->n_images, MAX_NEW, sm, collect, out, &gs,
                                  &err) == MT_OK, "alone: %s", err.msg);
    if (gs.stop == MT_STOP_EOS) out->ids[out->n++] = gs.eos_token;
    out->stop = gs.stop;
    mt_session_free(s);
}

static bool same(const mt_completion *a, const mt_completion *b) {
    return a->n == b->n && a->stop == b->stop && memcmp(a->ids, b->ids, (size_t)a->n * sizeof *a->ids) == 0;
}

static mt_status run(const mt_model *m, const mt_rollout_prompt *p, uint64_t seed, mt_completion *c,
                     mt_rollout_stats *rs, mt_sched_stats *ss, mt_err *err) {
    mt_sched *s;
    mt_status st = mt_sched_new(m, &(mt_sched_params){.n_threads = 2, .max_active = N_PROMPTS * G, .n_ctx = 1024},
                                &s, err);
    if (st) return st;
    mt_sampling sm = mt_sampling_default();
    sm.temperature = 1.0f;
    sm.top_p = 0.95f;
    sm.seed = seed;
    st = mt_rollout_run(s, p, N_PROMPTS, &(mt_rollout_opts){.group = G, .max_new = MAX_NEW, .sampling = sm}, c, rs,
                        err);
    *ss = mt_sched_get_stats(s);
    mt_sched_free(s);
    return st;
}

int main(int argc, char **argv) {
    if (argc != 3) return fprintf(stderr, "usage: rollout_check MODEL_DIR IMAGE\n"), 2;
    mt_err err;
    mt_model *m;
    if (mt_model_open(argv[1], &m, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    mt_image im;
    if (mt_image_load(argv[2], MT_IMAGE_DEFAULT_MAX_PIXELS, &im, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    float *pixels;
    mt_image_input img;
    CHECK(mt_model_preprocess_image(m, &im, &pixels, &img, &err) == MT_OK);

    const char *texts[N_PROMPTS] = {"<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>What is in the "
                                    "picture?<|im_end|>\n<|im_start|>assistant\n",
                                    "<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\n"};
    mt_rollout_prompt prompts[N_PROMPTS];
    int32_t *expanded[N_PROMPTS];
    for (int p = 0; p < N_PROMPTS; p++) {
        int32_t *raw;
        size_t n;
        CHECK(mt_tokenizer_encode(m->tok, texts[p], strlen(texts[p]), true, &raw, &n, &err) == MT_OK);
        int64_t n_exp;
        CHECK(mt_model_expand_images(m, raw, (int64_t)n, &img.grid, p == 0, &expanded[p], &n_exp, &err) == MT_OK);
        mt_free(raw);
        prompts[p] = (mt_rollout_prompt){.ids = expanded[p], .n_ids = n_exp, .images = &img, .n_images = p == 0};
    }

    mt_completion batch[N_PROMPTS * G] = {0}, again[N_PROMPTS * G] = {0}, other[N_PROMPTS * G] = {0};
    mt_rollout_stats rs;
    mt_sched_stats ss;
    CHECK_MSG(run(m, prompts, 42, batch, &rs, &ss, &err) == MT_OK, "rollout: %s", err.msg);
    int64_t tokens = 0, prompt_rows = 0, eos = 0;
    for (int p = 0; p < N_PROMPTS; p++) prompt_rows += prompts[p].n_ids;
    for (int k = 0; k < N_PROMPTS * G; k++) {
        tokens += batch[k].n;
        if (batch[k].stop == MT_STOP_EOS) {
            eos++;
            CHECK(batch[k].n > 0 && mt_model_is_eos(m, batch[k].ids[batch[k].n - 1]));
        } else {
            CHECK(batch[k].stop == MT_STOP_MAX_TOKENS && batch[k].n == MAX_NEW);
        }
    }
    CHECK(rs.tokens == tokens && rs.seconds > 0);
    /* Each prompt read whole once; each answer then reads one prompt row and feeds back all its tokens but the
     * last. */
    CHECK_MSG(ss.step_rows == (uint64_t)(prompt_rows + tokens), "rows %lu, expected %ld", (unsigned long)ss.step_rows,
              (long)(prompt_rows + tokens));
    printf("%d answers, %ld tokens (%ld ended by the model), %.1f tokens/s, %lu rows in %lu steps\n", N_PROMPTS * G,
           (long)tokens, (long)eos, (double)tokens / rs.seconds, (unsigned long)ss.step_rows, (unsigned long)ss.steps);

    int distinct = 0;
    for (int k = 0; k < N_PROMPTS * G; k++) {
        mt_sampling sm = mt_sampling_default();
        sm.temperature = 1.0f;
        sm.top_p = 0.95f;
        sm.seed = mt_rollout_seed(42, k / G, k % G);
        mt_completion one = {0};
        alone(m, &prompts[k / G], &sm, &one);
        CHECK_MSG(same(&one, &batch[k]), "answer %d differs from its seed alone", k);
        mt_completions_free(&one, 1);
        if (k % G && !same(&batch[k], &batch[k - 1])) distinct++;
    }
    CHECK_MSG(distinct > 0, "every answer of a group is the same: the seeds are not per answer");

    CHECK(run(m, prompts, 42, again, &rs, &ss, &err) == MT_OK);
    CHECK(run(m, prompts, 43, other, &rs, &ss, &err) == MT_OK);
    int differ = 0;
    for (int k = 0; k < N_PROMPTS * G; k++) {
        CHECK(same(&again[k], &batch[k]));
        differ += !same(&other[k], &batch[k]);
    }
    CHECK(differ > 0);

    /* one answer to one prompt on mt_rollout_sched_params' scheduler: the prompt's cached sequence and the answer
     * copying it both need a place (with room for the answer alone, this waited forever) */
    mt_sched *s;
    mt_sched_params one = mt_rollout_sched_params(1, 1, prompts[1].n_ids, 4);
    mt_completion single = {0};
    CHECK(mt_sched_new(m, &one, &s, &err) == MT_OK);
    CHECK_MSG(mt_rollout_run(s, &prompts[1], 1,
                             &(mt_rollout_opts){.group = 1, .max_new = 4, .sampling = mt_sampling_default()}, &single,
                             &rs, &err) == MT_OK && single.n > 0,
              "one answer to one prompt: %s", err.msg);
    mt_completions_free(&single, 1);
    mt_sched_free(s);
    CHECK(mt_sched_new(m, &(mt_sched_params){.n_threads = 1}, &s, &err) == MT_OK);
    CHECK(mt_rollout_run(s, prompts, 1, &(mt_rollout_opts){.group = 0, .max_new = 4}, other, &rs, &err) ==
          MT_ERR_INVALID_ARG);
    mt_sched_free(s);

    mt_completions_free(batch, N_PROMPTS * G);
    mt_completions_free(again, N_PROMPTS * G);
    mt_completions_free(other, N_PROMPTS * G);
    for (int p = 0; p < N_PROMPTS; p++) mt_free(expanded[p]);
    mt_free(pixels);
    mt_image_free(&im);
    mt_model_close(m);
    return check_report();
}
