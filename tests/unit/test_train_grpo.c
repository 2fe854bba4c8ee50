/* train/grpo and the prompt side of train/dataset: both prompt layouts loaded with an empty answer appended and their
 * whole object kept (reward fields included), each bad prompt skipped under its reason with its line (a prompt
 * already answered, none at all, a field a reward needs missing), the per-completion loss adding up to
 * mt_grpo_loss's, and the option checks. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "train/dataset.h"
#include "train/grpo.h"

static const char PROMPTS[] =
    /* 1: ShareGPT keys, an image, an answer */
    "{\"conversations\":[{\"from\":\"human\",\"value\":\"<image>How many?\"}],\"images\":[\"r.png\"],"
    "\"answer\":3}\n"
    /* 2: TRL, string prompt, a box */
    "{\"prompt\":\"Where?\",\"answer\":\"here\",\"box\":[1,2,3,4]}\n"
    /* 3: TRL, messages with an image part */
    "{\"prompt\":[{\"role\":\"user\",\"content\":[{\"type\":\"image\"},{\"type\":\"text\",\"text\":\"Q\"}]}],"
    "\"images\":[\"r.png\"],\"answer\":\"A\"}\n"
    /* 4: no answer for the answer reward */
    "{\"prompt\":\"Q\"}\n"
    /* 5: already answered */
    "{\"messages\":[{\"role\":\"user\",\"content\":\"Q\"},{\"role\":\"assistant\",\"content\":\"A\"}],"
    "\"answer\":\"A\"}\n"
    /* 6: no prompt */
    "{\"answer\":\"A\"}\n"
    /* 7: both layouts */
    "{\"prompt\":\"Q\",\"messages\":[],\"answer\":\"A\"}\n";

static mt_status need_answer(void *user, const cJSON *sample, mt_err *err) {
    return mt_rewards_check_sample(user, sample, "a reward's field", err);
}

static void test_prompts(void) {
    mt_rewards *set = mt_rewards_new();
    mt_err err = {0};
    CHECK(set && mt_rewards_add(set, "answer", &err) == MT_OK);
    mt_dataset_opts o = mt_dataset_opts_default();
    o.check_images = MT_DATASET_CHECK_NONE;
    o.pref = MT_DATASET_PREF_PROMPT;
    o.check_fields = need_answer;
    o.check_user = set;
    mt_dataset *ds = NULL;
    mt_status st = mt_dataset_load_buffer(PROMPTS, sizeof PROMPTS - 1, "p.jsonl", "/data", &o, &ds, &err);
    CHECK_MSG(st == MT_OK, "%s", err.msg);
    if (st) return;
    const char *want[3] = {
        "[{\"role\":\"user\",\"content\":[{\"type\":\"image\"},{\"type\":\"text\",\"text\":\"How many?\"}]},"
        "{\"role\":\"assistant\",\"content\":\"\"}]",
        "[{\"role\":\"user\",\"content\":\"Where?\"},{\"role\":\"assistant\",\"content\":\"\"}]",
        "[{\"role\":\"user\",\"content\":[{\"type\":\"image\"},{\"type\":\"text\",\"text\":\"Q\"}]},"
        "{\"role\":\"assistant\",\"content\":\"\"}]"};
    CHECK_MSG(mt_dataset_count(ds) == 3, "%zu prompts", mt_dataset_count(ds));
    for (size_t i = 0; i < 3 && i < mt_dataset_count(ds); i++) {
        const mt_sample *s = mt_dataset_sample(ds, i);
        char *got = cJSON_PrintUnformatted(s->messages);
        CHECK_MSG(got && strcmp(got, want[i]) == 0, "prompt %zu:\n got  %s\n want %s", i, got, want[i]);
        free(got);
        CHECK(s->fields && cJSON_GetObjectItemCaseSensitive(s->fields, "answer"));
    }
    const mt_sample *s = mt_dataset_sample(ds, 1);
    CHECK(s && cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(s->fields, "box")) && s->n_images == 0);
    s = mt_dataset_sample(ds, 0);
    CHECK(s && s->n_images == 1 && strcmp(s->images[0], "/data/r.png") == 0);
    const char *skips[] = {"p.jsonl:4: bad fields: a reward's field: the answer reward needs an \"answer\"",
                           "p.jsonl:5: ", "p.jsonl:6: bad fields: no prompt",
                           "p.jsonl:7: bad fields: both \"prompt\" (TRL) and \"messages\""};
    CHECK_MSG(mt_dataset_skipped(ds) == 4, "%zu skipped", mt_dataset_skipped(ds));
    for (size_t i = 0; i < 4; i++) {
        const mt_dataset_skip *k = mt_dataset_skip_at(ds, i);
        CHECK_MSG(k && strstr(k->msg, skips[i]), "skip %zu: \"%s\" lacks \"%s\"", i, k ? k->msg : "(none)", skips[i]);
    }
    const mt_dataset_skip *k = mt_dataset_skip_at(ds, 1);
    CHECK_MSG(k && k->reason == MT_DATASET_BAD_ORDER, "an answered prompt: %s", k ? k->msg : "(none)");
    mt_dataset_free(ds);
    mt_rewards_free(set);
}

/* The per-completion form over a batch equals mt_grpo_loss, for every loss type; equal rewards give A = 0. */
static void test_completion_form(void) {
    const int64_t len[3] = {3, 1, 2};
    const double adv[3] = {0.7, -1.2, 0.0};
    double logp[6], old[6], ref[6], g1[6], g2[6];
    for (int t = 0; t < 6; t++) {
        logp[t] = -0.5 - 0.3 * t;
        old[t] = logp[t] + 0.35 * sin(2.0 * t);
        ref[t] = logp[t] + 0.2 * cos(t);
    }
    for (int type = 0; type < 3; type++) {
        mt_grpo_opts o = {.type = (mt_grpo_loss_type)type, .beta = 0.04, .eps_low = 0.2, .eps_high = 0.28,
                          .max_completion_tokens = 4};
        mt_grpo_stats whole, parts;
        mt_grpo_loss(&o, 3, len, adv, logp, old, ref, g1, &whole);
        mt_grpo_sums acc = {0};
        for (int i = 0, off = 0; i < 3; off += (int)len[i], i++)
            mt_grpo_completion_loss(&o, mt_grpo_weight(&o, 3, len[i], 6), adv[i], len[i], logp + off, old + off,
                                    ref + off, g2 + off, &acc);
        mt_grpo_stats_of(&acc, &parts);
        CHECK_MSG(fabs(whole.loss - parts.loss) < 1e-15 && whole.kl == parts.kl && whole.clip_low == parts.clip_low &&
                  whole.clip_high == parts.clip_high && memcmp(g1, g2, sizeof g1) == 0, "type %d", type);
    }
    const double same[4] = {0.5, 0.5, 0.5, 0.5};
    double a[4];
    mt_grpo_advantages(same, 2, 2, true, a);
    for (int i = 0; i < 4; i++) CHECK_MSG(a[i] == 0, "equal rewards: A[%d] = %g", i, a[i]);
}

static void test_options(void) {
    mt_grpo_config c = mt_grpo_config_default();
    mt_err err = {0};
    CHECK(mt_grpo_config_check(&c, &err) == MT_ERR_INVALID_ARG && strstr(err.msg, "needs a reward"));
    c.rewards[c.n_rewards++] = "answer";
    CHECK_MSG(mt_grpo_config_check(&c, &err) == MT_OK, "%s", err.msg);
    c.group = 1;
    CHECK(mt_grpo_config_check(&c, &err) == MT_ERR_INVALID_ARG && strstr(err.msg, "--group 1"));
    c.group = 4;
    c.rewards[c.n_rewards++] = "nonsense";
    CHECK(mt_grpo_config_check(&c, &err) != MT_OK && strstr(err.msg, "nonsense"));
    c.n_rewards = 1;
    c.loss.eps_low = 1.5;
    CHECK(mt_grpo_config_check(&c, &err) == MT_ERR_INVALID_ARG && strstr(err.msg, "--epsilon"));
}

int main(void) {
    test_prompts();
    test_completion_form();
    test_options();
    return check_report();
}
