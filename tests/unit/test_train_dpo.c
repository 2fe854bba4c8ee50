/* train/dpo and the preference-pair side of train/dataset: each pair layout loaded as its chosen and rejected sides
 * (exact messages, images), each bad pair skipped under its reason with its line, the three losses at known points
 * and against central differences, the option checks, and OUT/ref_logps.json read back bit for bit or refused when
 * it is another run's. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "train/dataset.h"
#include "train/dpo.h"

static const char PAIRS[] =
    /* 1: LLaMA-Factory, ShareGPT keys */
    "{\"conversations\":[{\"from\":\"human\",\"value\":\"<image>Colour?\"}],\"chosen\":{\"from\":\"gpt\",\"value\":"
    "\"Red.\"},\"rejected\":{\"from\":\"gpt\",\"value\":\"Blue.\"},\"images\":[\"r.png\"]}\n"
    /* 2: LLaMA-Factory, OpenAI keys, string answers */
    "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"chosen\":\"Hello.\",\"rejected\":\"Go.\"}\n"
    /* 3: TRL, string prompt */
    "{\"prompt\":\"Q\",\"chosen\":\"A\",\"rejected\":\"B\"}\n"
    /* 4: TRL, messages with an image part */
    "{\"prompt\":[{\"role\":\"user\",\"content\":[{\"type\":\"image\"},{\"type\":\"text\",\"text\":\"Q\"}]}],"
    "\"chosen\":[{\"role\":\"assistant\",\"content\":\"A\"}],\"rejected\":[{\"role\":\"assistant\",\"content\":"
    "\"B\"}],\"images\":[\"r.png\"]}\n"
    /* 5: no rejected answer */
    "{\"prompt\":\"Q\",\"chosen\":\"A\"}\n"
    /* 6: both layouts */
    "{\"prompt\":\"Q\",\"messages\":[],\"chosen\":\"A\",\"rejected\":\"B\"}\n"
    /* 7: an answer of two messages */
    "{\"prompt\":\"Q\",\"chosen\":[{\"role\":\"assistant\",\"content\":\"A\"},{\"role\":\"assistant\",\"content\":"
    "\"A\"}],\"rejected\":\"B\"}\n"
    /* 8: a placeholder without an image */
    "{\"prompt\":\"<image>Q\",\"chosen\":\"A\",\"rejected\":\"B\"}\n"
    /* 9: no prompt at all */
    "{\"chosen\":\"A\",\"rejected\":\"B\"}\n"
    /* 10: a number as the answer */
    "{\"prompt\":\"Q\",\"chosen\":\"A\",\"rejected\":7}\n";

static void check_messages(const mt_dataset *ds, size_t i, const char *want) {
    const mt_sample *s = mt_dataset_sample(ds, i);
    char *got = s ? cJSON_PrintUnformatted(s->messages) : NULL;
    CHECK_MSG(got && strcmp(got, want) == 0, "sample %zu:\n got  %s\n want %s", i, got ? got : "(null)", want);
    free(got);
}

static void check_skip(const mt_dataset *ds, size_t i, const char *want) {
    const mt_dataset_skip *k = mt_dataset_skip_at(ds, i);
    CHECK_MSG(k && strstr(k->msg, want), "skip %zu: \"%s\" lacks \"%s\"", i, k ? k->msg : "(none)", want);
}

static void test_pairs(void) {
    const char *want[2][4] = {
        {"[{\"role\":\"user\",\"content\":[{\"type\":\"image\"},{\"type\":\"text\",\"text\":\"Colour?\"}]},"
         "{\"role\":\"assistant\",\"content\":\"Red.\"}]",
         "[{\"role\":\"user\",\"content\":\"Hi\"},{\"role\":\"assistant\",\"content\":\"Hello.\"}]",
         "[{\"role\":\"user\",\"content\":\"Q\"},{\"role\":\"assistant\",\"content\":\"A\"}]",
         "[{\"role\":\"user\",\"content\":[{\"type\":\"image\"},{\"type\":\"text\",\"text\":\"Q\"}]},"
         "{\"role\":\"assistant\",\"content\":\"A\"}]"},
        {"[{\"role\":\"user\",\"content\":[{\"type\":\"image\"},{\"type\":\"text\",\"text\":\"Colour?\"}]},"
         "{\"role\":\"assistant\",\"content\":\"Blue.\"}]",
         "[{\"role\":\"user\",\"content\":\"Hi\"},{\"role\":\"assistant\",\"content\":\"Go.\"}]",
         "[{\"role\":\"user\",\"content\":\"Q\"},{\"role\":\"assistant\",\"content\":\"B\"}]",
         "[{\"role\":\"user\",\"content\":[{\"type\":\"image\"},{\"type\":\"text\",\"text\":\"Q\"}]},"
         "{\"role\":\"assistant\",\"content\":\"B\"}]"},
    };
    const char *skips[] = {"pairs.jsonl:5: bad fields: no \"rejected\" answer",
                           "pairs.jsonl:6: bad fields: both \"prompt\" (TRL) and \"messages\"",
                           "pairs.jsonl:7: bad fields: \"chosen\" holds 2 messages",
                           "pairs.jsonl:8: placeholder count",
                           "pairs.jsonl:9: bad fields: no prompt",
                           "pairs.jsonl:10: bad fields: \"rejected\" must be a string or a message"};
    for (int side = 0; side < 2; side++) {
        mt_dataset_opts o = mt_dataset_opts_default();
        o.check_images = MT_DATASET_CHECK_NONE;
        o.pref = side ? MT_DATASET_PREF_REJECTED : MT_DATASET_PREF_CHOSEN;
        mt_dataset *ds = NULL;
        mt_err err = {0};
        mt_status st = mt_dataset_load_buffer(PAIRS, sizeof PAIRS - 1, "pairs.jsonl", "/data", &o, &ds, &err);
        CHECK_MSG(st == MT_OK, "%s", err.msg);
        if (st) continue;
        CHECK_MSG(mt_dataset_count(ds) == 4, "side %d: %zu pairs", side, mt_dataset_count(ds));
        for (size_t i = 0; i < 4 && i < mt_dataset_count(ds); i++) check_messages(ds, i, want[side][i]);
        const mt_sample *s = mt_dataset_sample(ds, 0);
        CHECK(s && s->n_images == 1 && strcmp(s->images[0], "/data/r.png") == 0 && s->line == 1);
        s = mt_dataset_sample(ds, 3);
        CHECK(s && s->n_images == 1 && s->line == 4);
        CHECK_MSG(mt_dataset_skipped(ds) == 6, "side %d: %zu skipped", side, mt_dataset_skipped(ds));
        for (size_t i = 0; i < 6; i++) check_skip(ds, i, skips[i]);
        mt_dataset_free(ds);
    }
    /* strict: the first bad pair fails the load naming its line */
    mt_dataset_opts o = mt_dataset_opts_default();
    o.check_images = MT_DATASET_CHECK_NONE;
    o.pref = MT_DATASET_PREF_CHOSEN;
    o.strict = true;
    mt_dataset *ds = NULL;
    mt_err err = {0};
    CHECK(mt_dataset_load_buffer(PAIRS, sizeof PAIRS - 1, "pairs.jsonl", "/data", &o, &ds, &err) != MT_OK);
    CHECK_MSG(strstr(err.msg, "pairs.jsonl:5") != NULL, "%s", err.msg);
}

static double loss_at(const mt_dpo_config *c, mt_dpo_pair_in in, int k, double dx) {
    in.logp[k] += dx;
    mt_dpo_pair_out out;
    mt_dpo_pair_loss(c, &in, &out);
    return out.loss;
}

static void test_losses(void) {
    mt_dpo_config c = mt_dpo_config_default();
    CHECK(c.loss == MT_DPO_SIGMOID && c.beta == 0.1 && c.label_smoothing == 0 && c.sft_weight == 0);
    /* policy = reference: h = 0, loss ln 2, d loss / d logp = -+beta / 2, rewards 0 */
    mt_dpo_pair_in in = {.logp = {-10, -12}, .ref = {-10, -12}, .n_tokens = {4, 8}};
    mt_dpo_pair_out out;
    mt_dpo_pair_loss(&c, &in, &out);
    CHECK_NEAR(out.loss, log(2.0), 1e-15);
    CHECK_NEAR(out.dlogp[0], -0.05, 1e-15);
    CHECK_NEAR(out.dlogp[1], 0.05, 1e-15);
    CHECK(out.reward[0] == 0 && out.reward[1] == 0);
    /* h = (1 - 0) - (-2 - 0) = 3 with beta 0.5 and label smoothing 0.2 */
    in = (mt_dpo_pair_in){.logp = {-9, -14}, .ref = {-10, -12}, .n_tokens = {4, 8}};
    c.beta = 0.5;
    c.label_smoothing = 0.2;
    mt_dpo_pair_loss(&c, &in, &out);
    double ls = 0.2, bh = 1.5;
    CHECK_NEAR(out.loss, (1 - ls) * log1p(exp(-bh)) + ls * log1p(exp(bh)), 1e-14);
    CHECK_NEAR(out.reward[0], 0.5, 1e-15);
    CHECK_NEAR(out.reward[1], -1.0, 1e-15);
    /* ipo: means over the answer tokens, h = 1/4 + 2/8 = 0.5, target 1 / (2 beta) = 1 */
    c.label_smoothing = 0;
    c.loss = MT_DPO_IPO;
    mt_dpo_pair_loss(&c, &in, &out);
    CHECK_NEAR(out.loss, 0.25, 1e-15);
    CHECK_NEAR(out.dlogp[0], 2 * (0.5 - 1) / 4, 1e-15);
    CHECK_NEAR(out.dlogp[1], -2 * (0.5 - 1) / 8, 1e-15);
    CHECK_NEAR(out.reward[0], 0.5 * 0.25, 1e-15);
    /* hinge (sums again): h = 3, beta h = 1.5 is past the margin 1: relu(-0.5) = 0, no gradient; then active */
    c.loss = MT_DPO_HINGE;
    mt_dpo_pair_loss(&c, &in, &out);
    CHECK(out.loss == 0 && out.dlogp[0] == 0 && out.dlogp[1] == 0);
    in.logp[0] = -11; /* h = -1 + 2 = 1: 1 - 0.5 = 0.5 */
    mt_dpo_pair_loss(&c, &in, &out);
    CHECK_NEAR(out.loss, 0.5, 1e-15);
    CHECK_NEAR(out.dlogp[0], -0.5, 1e-15);
    /* every loss: the derivative against a central difference, away from the hinge's kink */
    mt_dpo_loss_kind kinds[3] = {MT_DPO_SIGMOID, MT_DPO_IPO, MT_DPO_HINGE};
    for (int k = 0; k < 3; k++) {
        c = mt_dpo_config_default();
        c.loss = kinds[k];
        c.beta = 0.3;
        c.label_smoothing = kinds[k] == MT_DPO_SIGMOID ? 0.1 : 0;
        in = (mt_dpo_pair_in){.logp = {-20.5, -18.25}, .ref = {-21, -17}, .n_tokens = {5, 3}};
        mt_dpo_pair_loss(&c, &in, &out);
        for (int j = 0; j < 2; j++) {
            double h = 1e-6, fd = (loss_at(&c, in, j, h) - loss_at(&c, in, j, -h)) / (2 * h);
            CHECK_MSG(fabs(fd - out.dlogp[j]) <= 1e-8 * fmax(1, fabs(fd)), "%s d/dlogp[%d] = %.10g, difference %.10g",
                      mt_dpo_loss_name(kinds[k]), j, out.dlogp[j], fd);
        }
    }
    /* large margins neither overflow nor lose the gradient's sign */
    c = mt_dpo_config_default();
    in = (mt_dpo_pair_in){.logp = {0, -1e5}, .ref = {0, 0}, .n_tokens = {1, 1}};
    mt_dpo_pair_loss(&c, &in, &out);
    CHECK(isfinite(out.loss) && out.loss >= 0 && out.dlogp[0] <= 0);
    in = (mt_dpo_pair_in){.logp = {-1e5, 0}, .ref = {0, 0}, .n_tokens = {1, 1}};
    mt_dpo_pair_loss(&c, &in, &out);
    CHECK_NEAR(out.loss, 1e4, 1e-6);
    CHECK_NEAR(out.dlogp[0], -0.1, 1e-12);
}

static void test_options(void) {
    mt_err err = {0};
    mt_dpo_loss_kind k;
    CHECK(mt_dpo_loss_parse("ipo", &k, &err) == MT_OK && k == MT_DPO_IPO);
    CHECK(mt_dpo_loss_parse("kto", &k, &err) == MT_ERR_INVALID_ARG && strstr(err.msg, "\"kto\""));
    mt_dpo_config c = mt_dpo_config_default();
    CHECK(mt_dpo_config_check(&c, &err) == MT_OK);
    c.beta = 0;
    CHECK(mt_dpo_config_check(&c, &err) == MT_ERR_INVALID_ARG && strstr(err.msg, "--beta"));
    c = mt_dpo_config_default();
    c.loss = MT_DPO_HINGE;
    c.label_smoothing = 0.1;
    CHECK(mt_dpo_config_check(&c, &err) == MT_ERR_INVALID_ARG && strstr(err.msg, "sigmoid only"));
    c.loss = MT_DPO_SIGMOID;
    c.label_smoothing = 0.5;
    CHECK(mt_dpo_config_check(&c, &err) == MT_ERR_INVALID_ARG);
    c.label_smoothing = 0;
    c.sft_weight = -1;
    CHECK(mt_dpo_config_check(&c, &err) == MT_ERR_INVALID_ARG && strstr(err.msg, "--sft-weight"));
}

static void test_ref_file(void) {
    char dir[] = "/tmp/mt_dpo_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    double ref[6] = {-51.04977035522461, -62.45883560180664, 0.1 + 0.2, -1e-300, 1.0 / 3.0, -123456.789012345678};
    double back[6] = {0};
    mt_err err = {0};
    bool found = true;
    CHECK(mt_dpo_ref_load(dir, "run1", back, 3, &found, &err) == MT_OK && !found);
    CHECK_MSG(mt_dpo_ref_save(dir, "run1", ref, 3, &err) == MT_OK, "%s", err.msg);
    CHECK(mt_dpo_ref_load(dir, "run1", back, 3, &found, &err) == MT_OK && found);
    CHECK(memcmp(ref, back, sizeof ref) == 0); /* every bit */
    CHECK(mt_dpo_ref_load(dir, "run2", back, 3, &found, &err) == MT_ERR_FORMAT && strstr(err.msg, "run1"));
    CHECK(mt_dpo_ref_load(dir, "run1", back, 4, &found, &err) == MT_ERR_FORMAT && strstr(err.msg, "3 pairs"));
    char path[1100];
    snprintf(path, sizeof path, "%s/ref_logps.json", dir);
    unlink(path);
    rmdir(dir);
}

int main(void) {
    test_pairs();
    test_losses();
    test_options();
    test_ref_file();
    return check_report();
}
