/* train/trainer: the run loop. */
#include "train/trainer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "base/json.h"
#include "mitten.h"
#include "tensor/autograd.h"
#include "tensor/cpu/cpu.h"
#include "train/checkpoint.h"
#include "train/dist.h"
#include "train/evaluate.h"
#include "train/export.h"
#include "train/plot.h"
#include "train/prepare.h"
#include "train/progress.h"
#include "train/rng.h"
#include "train/rollout.h"
#include "train/run_dir.h"
#include "train/step.h"

mt_train_opts mt_train_opts_default(void) {
    return (mt_train_opts){.spec = mt_train_spec_default(), .dpo = mt_dpo_config_default(),
                           .grpo = mt_grpo_config_default(), .epochs = 1, .batch = 8,
                           .lr = 1e-4, .eval_tokens = 64, .warmup = 0.03, .max_grad_norm = 1.0,
                           .schedule = MT_SCHED_COSINE, .log_every = 1, .keep = 3, .seed = 42, .save_minutes = 30};
}

/* ---- train_args.json ---- */

static cJSON *opts_to_json(const mt_train_opts *o) {
    cJSON *j = cJSON_CreateObject();
#define S(k) if (o->k) cJSON_AddStringToObject(j, #k, o->k)
#define N(k) cJSON_AddNumberToObject(j, #k, (double)o->k)
    S(model_dir); S(data_path); S(image_dir); S(eval_path); S(run_id); S(data_fingerprint); S(eval_fingerprint);
    N(save_minutes);
    N(epochs); N(max_steps); N(batch); N(lr); N(vision_lr); N(projector_lr); N(weight_decay); N(warmup);
    N(max_grad_norm); N(max_len); N(save_every); N(log_every); N(eval_every); N(eval_tokens); N(keep); N(threads);
    cJSON_AddNumberToObject(j, "video_fps", o->video.fps);
    cJSON_AddNumberToObject(j, "video_max_frames", (double)o->video.max_frames);
    cJSON_AddNumberToObject(j, "video_max_pixels", (double)o->video.max_pixels);
    cJSON_AddStringToObject(j, "schedule", mt_schedule_kind_name(o->schedule));
    cJSON_AddBoolToObject(j, "last_turn_only", o->last_turn_only);
    cJSON_AddBoolToObject(j, "strict", o->strict);
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)o->seed);
    cJSON_AddStringToObject(j, "seed", seed);
    cJSON_AddBoolToObject(j, "vision", o->spec.vision);
    cJSON_AddBoolToObject(j, "projector", o->spec.projector);
    cJSON_AddBoolToObject(j, "language", o->spec.language);
    cJSON_AddNumberToObject(j, "lora_rank", o->spec.lora_rank);
    cJSON_AddNumberToObject(j, "lora_alpha", o->spec.lora_alpha);
    cJSON_AddNumberToObject(j, "lora_dropout", o->spec.lora_dropout);
    cJSON_AddStringToObject(j, "lora_targets", o->spec.lora_targets);
    cJSON_AddBoolToObject(j, "train_router", o->spec.train_router);
    cJSON_AddStringToObject(j, "method",
                            o->method == MT_TRAIN_DPO ? "dpo" : o->method == MT_TRAIN_GRPO ? "grpo" : "sft");
    if (o->method == MT_TRAIN_GRPO) {
        const mt_grpo_config *g = &o->grpo;
        static const char *const types[] = {"grpo", "bnpo", "dr_grpo"};
        cJSON_AddNumberToObject(j, "group", g->group);
        cJSON_AddNumberToObject(j, "max_new", (double)g->max_new);
        cJSON_AddNumberToObject(j, "temperature", g->temperature);
        cJSON_AddNumberToObject(j, "top_p", g->top_p);
        cJSON_AddStringToObject(j, "grpo_loss", types[g->loss.type]);
        cJSON_AddNumberToObject(j, "grpo_beta", g->loss.beta);
        cJSON_AddNumberToObject(j, "epsilon", g->loss.eps_low);
        cJSON_AddNumberToObject(j, "epsilon_high", g->loss.eps_high);
        cJSON_AddBoolToObject(j, "scale_rewards", g->scale_rewards);
        cJSON_AddNumberToObject(j, "inner_steps", g->inner_steps);
        cJSON_AddNumberToObject(j, "log_completions", g->log_completions);
        cJSON_AddNumberToObject(j, "reward_timeout", g->reward_timeout);
        cJSON *rw = cJSON_AddArrayToObject(j, "rewards");
        for (int i = 0; rw && i < g->n_rewards; i++) cJSON_AddItemToArray(rw, cJSON_CreateString(g->rewards[i]));
    }
    if (o->method == MT_TRAIN_DPO) {
        cJSON_AddStringToObject(j, "dpo_loss", mt_dpo_loss_name(o->dpo.loss));
        cJSON_AddNumberToObject(j, "beta", o->dpo.beta);
        cJSON_AddNumberToObject(j, "label_smoothing", o->dpo.label_smoothing);
        cJSON_AddNumberToObject(j, "sft_weight", o->dpo.sft_weight);
    }
#undef S
#undef N
    return j;
}

mt_status mt_train_opts_load(const char *out_dir, mt_train_opts *o, cJSON **json, mt_err *err) {
    char path[4096];
    mt_status st = mt_path_join(path, sizeof path, out_dir, "train_args.json", err);
    if (!st) st = mt_json_parse_file(path, MT_JSON_MAX_FILE, json, err);
    if (st) return st;
    const cJSON *j = *json;
    *o = mt_train_opts_default();
    o->out_dir = out_dir;
    const char *sched = NULL, *seed = NULL, *method = NULL, *dpo_loss = NULL, *grpo_loss = NULL;
    int64_t v;
    double d;
    bool b;
#define STR(k, dst) if (!st) st = mt_json_str_opt(j, k, path, &dst, err)
/* absent keys keep their defaults */
#define INT(k, dst, lo, hi) if (!st && (v = dst, !(st = mt_json_int_opt(j, k, path, lo, hi, &v, err)))) dst = v
#define NUM(k, dst) if (!st && (d = dst, !(st = mt_json_num_opt(j, k, path, -1e30, 1e30, &d, err)))) dst = d
#define BOOL(k, dst) if (!st && (b = dst, !(st = mt_json_bool_opt(j, k, path, &b, err)))) dst = b
    STR("model_dir", o->model_dir); STR("data_path", o->data_path); STR("image_dir", o->image_dir);
    STR("eval_path", o->eval_path); STR("schedule", sched); STR("seed", seed); STR("run_id", o->run_id);
    STR("data_fingerprint", o->data_fingerprint); STR("eval_fingerprint", o->eval_fingerprint);
    NUM("save_minutes", o->save_minutes);
    STR("lora_targets", o->spec.lora_targets);
    INT("epochs", o->epochs, 0, 1000000); INT("max_steps", o->max_steps, 0, INT64_MAX);
    INT("batch", o->batch, 1, 1 << 20);
    INT("max_len", o->max_len, 0, INT64_MAX);
    NUM("video_fps", o->video.fps); INT("video_max_frames", o->video.max_frames, 0, 1 << 20);
    INT("video_max_pixels", o->video.max_pixels, 0, (int64_t)1 << 40);
    INT("save_every", o->save_every, 0, INT64_MAX); INT("log_every", o->log_every, 0, INT64_MAX);
    INT("eval_every", o->eval_every, 0, INT64_MAX); INT("keep", o->keep, 0, 1 << 20);
    INT("eval_tokens", o->eval_tokens, 0, 1 << 20);
    INT("threads", o->threads, 0, 4096); INT("lora_rank", o->spec.lora_rank, 0, 4096);
    NUM("lr", o->lr); NUM("vision_lr", o->vision_lr); NUM("projector_lr", o->projector_lr);
    NUM("weight_decay", o->weight_decay); NUM("warmup", o->warmup); NUM("max_grad_norm", o->max_grad_norm);
    NUM("lora_alpha", o->spec.lora_alpha); NUM("lora_dropout", o->spec.lora_dropout);
    BOOL("last_turn_only", o->last_turn_only); BOOL("strict", o->strict);
    BOOL("vision", o->spec.vision); BOOL("projector", o->spec.projector); BOOL("language", o->spec.language);
    BOOL("train_router", o->spec.train_router);
    STR("method", method); STR("dpo_loss", dpo_loss);
    NUM("beta", o->dpo.beta); NUM("label_smoothing", o->dpo.label_smoothing); NUM("sft_weight", o->dpo.sft_weight);
    mt_grpo_config *g = &o->grpo;
    int64_t group = g->group, inner = g->inner_steps, logc = g->log_completions;
    INT("group", group, 2, 1 << 16); INT("max_new", g->max_new, 1, 1 << 24); INT("inner_steps", inner, 1, 1 << 16);
    INT("log_completions", logc, 0, 1 << 20);
    g->group = (int)group;
    g->inner_steps = (int)inner;
    g->log_completions = (int)logc;
    NUM("temperature", g->temperature); NUM("top_p", g->top_p); NUM("grpo_beta", g->loss.beta);
    NUM("epsilon", g->loss.eps_low); NUM("epsilon_high", g->loss.eps_high); NUM("reward_timeout", g->reward_timeout);
    BOOL("scale_rewards", g->scale_rewards);
    STR("grpo_loss", grpo_loss);
    const cJSON *rw = cJSON_GetObjectItemCaseSensitive(j, "rewards");
    for (const cJSON *e = cJSON_IsArray(rw) ? rw->child : NULL; e && !st; e = e->next) {
        if (!cJSON_IsString(e) || g->n_rewards == MT_REWARD_MAX_TERMS)
            st = mt_err_set(err, MT_ERR_FORMAT, "%s: \"rewards\" must be at most %d strings", path,
                            MT_REWARD_MAX_TERMS);
        else
            g->rewards[g->n_rewards++] = e->valuestring;
    }
    o->spec.parts_given = true; /* the parts the run was set up with, whatever the composition's default */
#undef STR
#undef INT
#undef NUM
#undef BOOL
    if (!st && (!o->model_dir || !o->data_path))
        st = mt_err_set(err, MT_ERR_FORMAT, "%s: model_dir and data_path are required", path);
    if (!st && sched) st = mt_schedule_parse_kind(sched, &o->schedule, err);
    if (!st && seed) o->seed = strtoull(seed, NULL, 10);
    if (!st && method && strcmp(method, "sft") && strcmp(method, "dpo") && strcmp(method, "grpo"))
        st = mt_err_set(err, MT_ERR_FORMAT, "%s: method \"%s\" is not sft, dpo or grpo", path, method);
    if (!st && method && !strcmp(method, "dpo")) o->method = MT_TRAIN_DPO;
    if (!st && method && !strcmp(method, "grpo")) o->method = MT_TRAIN_GRPO;
    if (!st && grpo_loss) st = mt_grpo_loss_type_parse(grpo_loss, &g->loss.type, err);
    if (!st && dpo_loss) st = mt_dpo_loss_parse(dpo_loss, &o->dpo.loss, err);
    if (!o->spec.lora_targets) o->spec.lora_targets = "all-linear";
    return st;
}

/* ---- the run ---- */

typedef struct run {
    mt_train_opts *o; /* setup settles the parts the model trains by default */
    mt_model *m;
    mt_pool *pool;
    mt_dataset *sets[4]; /* samples borrow their image paths from these: data, eval, DPO's rejected sides of both */
    mt_prepared *data, *eval;
    /* DPO: rejected->samples[i] pairs with data->samples[i], eval_rejected->samples[i] with eval->samples[i] */
    mt_prepared *rejected, *eval_rejected;
    double *ref; /* DPO: [2 * (pairs + eval pairs)] reference log-probabilities, chosen and rejected, data first */
    double (*dpo_hist)[3]; /* DPO: per step, mean rewards chosen and rejected, accuracy */
    mt_rewards *rewards;   /* GRPO */
    int64_t *prompt_len;   /* GRPO: per data sample, the tokens of its prompt (before the empty answer) */
    int64_t *eval_prompt_len; /* GRPO: the same per eval sample */
    double *grpo_hist;     /* GRPO: per step, grpo_stride metrics (grpo_metric_name) */
    double *grpo_eval;     /* GRPO: per evaluation (at eval_steps), the mean reward then each term's mean */
    int grpo_stride;
    mt_trainable *tr;
    mt_param *params;
    size_t n_params;
    mt_adamw *opt;
    mt_schedule sched;
    mt_tape *tape;
    mt_arena arena;
    int64_t steps_per_epoch, total_steps;
    int64_t *order, order_epoch;
    double *losses;  /* per step */
    int64_t *eval_steps;
    double *eval_losses;
    int64_t n_eval, eval_cap;
    mt_progress bar; /* drawn by rank 0 on a terminal */
} run;

/* The index of sample k of epoch e's order (Fisher-Yates over a stream keyed by seed and epoch). */
static int64_t sample_index(run *r, int64_t epoch, int64_t k) {
    if (r->order_epoch != epoch) {
        for (int64_t i = 0; i < (int64_t)r->data->n; i++) r->order[i] = i;
        mt_rng rng = mt_rng_stream(r->o->seed, MT_RNG_SHUFFLE, (uint64_t)epoch);
        mt_rng_shuffle(&rng, r->order, (int64_t)r->data->n);
        r->order_epoch = epoch;
    }
    return r->order[k];
}

static const mt_prepared_sample *sample_at(run *r, int64_t epoch, int64_t k) {
    return &r->data->samples[sample_index(r, epoch, k)];
}

/* One sample forward (and backward with the tape); *loss gets its share of the step's loss. */
static mt_status run_sample(run *r, const mt_prepared_sample *s, float inv_norm, bool train, double *loss,
                            int64_t *image_tokens, mt_err *err) {
    int n = s->tok.n_images;
    float *pixels[MT_DATASET_MAX_IMAGES] = {0};
    mt_image_input inputs[MT_DATASET_MAX_IMAGES] = {{0}};
    if (n > MT_DATASET_MAX_IMAGES)
        return mt_err_set(err, MT_ERR_INTERNAL, "line %lld: more than %d images passed the data loader", (long long)s->line,
                          MT_DATASET_MAX_IMAGES);
    mt_status st = MT_OK;
    for (int i = 0; i < n && !st; i++) st = mt_prepared_pixels(r->m, s, i, &pixels[i], &inputs[i], err);
    mt_ctx ctx = {.arena = &r->arena, .pool = r->pool, .tape = train ? r->tape : NULL};
    mt_train_sample ts = {.ids = s->tok.ids, .labels = s->tok.labels, .n = s->tok.n,
                          .inputs = inputs, .n_images = n};
    if (!st) st = mt_train_sample_run(r->m, &ctx, &ts, inv_norm, loss, err);
    if (st) mt_err_prefix(err, "line %lld: ", (long long)s->line);
    *image_tokens += s->tok.n_image_tokens;
    if (r->tape) mt_tape_reset(r->tape);
    mt_arena_reset(&r->arena);
    for (int i = 0; i < n; i++) mt_free(pixels[i]);
    return st;
}

/* DPO pair i of sides (chosen, rejected): both answers forward (and backward with train); in->ref from ref [2 * i]
 * (ref NULL: 0). The two sides share their prompt's images, decoded once from the side that kept more of them. */
static mt_status run_pair(run *r, mt_prepared *const sides[2], const double *ref, int64_t i, bool train,
                          double inv_pairs, double inv_chosen_tokens, mt_dpo_pair_in *in, mt_dpo_pair_out *out,
                          int64_t *image_tokens, mt_err *err) {
    const mt_prepared_sample *side[2] = {&sides[0]->samples[i], &sides[1]->samples[i]};
    const mt_prepared_sample *img = side[1]->tok.n_images > side[0]->tok.n_images ? side[1] : side[0];
    int n = img->tok.n_images;
    float *pixels[MT_DATASET_MAX_IMAGES] = {0};
    mt_image_input inputs[MT_DATASET_MAX_IMAGES] = {{0}};
    if (n > MT_DATASET_MAX_IMAGES)
        return mt_err_set(err, MT_ERR_INTERNAL, "line %lld: more than %d images passed the data loader",
                          (long long)img->line, MT_DATASET_MAX_IMAGES);
    mt_status st = MT_OK;
    for (int k = 0; k < n && !st; k++) st = mt_prepared_pixels(r->m, img, k, &pixels[k], &inputs[k], err);
    mt_ctx ctx = {.arena = &r->arena, .pool = r->pool, .tape = train ? r->tape : NULL};
    mt_train_sample ts[2];
    const mt_train_sample *pair[2] = {&ts[0], &ts[1]};
    for (int k = 0; k < 2; k++) {
        ts[k] = (mt_train_sample){.ids = side[k]->tok.ids, .labels = side[k]->tok.labels, .n = side[k]->tok.n,
                                  .inputs = inputs, .n_images = side[k]->tok.n_images};
        in->n_tokens[k] = mt_train_sample_supervised(side[k]->tok.labels, side[k]->tok.n);
        in->ref[k] = ref ? ref[2 * i + k] : 0.0;
        *image_tokens += side[k]->tok.n_image_tokens;
    }
    if (!st) st = mt_dpo_pair_run(r->m, &ctx, pair, &r->o->dpo, inv_pairs, inv_chosen_tokens, in, out, err);
    if (st) mt_err_prefix(err, "line %lld: ", (long long)side[0]->line);
    if (r->tape) mt_tape_reset(r->tape);
    mt_arena_reset(&r->arena);
    for (int k = 0; k < n; k++) mt_free(pixels[k]);
    return st;
}

/* DPO's reference: every pair's answer log-probabilities (training pairs, then eval pairs) under the weights as they
 * are now (the initial ones), split over the processes; or, on resume, the run's own from OUT/ref_logps.json. */
static mt_status reference_logps(run *r, int64_t start, mt_err *err) {
    size_t n_data = r->data->n, n = n_data + (r->eval_rejected ? r->eval->n : 0);
    double *ref = mt_calloc(2 * n + 1, sizeof *ref);
    if (!ref) return mt_err_set(err, MT_ERR_NOMEM, "out of memory for %zu reference log-probabilities", 2 * n);
    bool found = false, writer = mt_dist_rank() == 0;
    mt_status st = mt_dpo_ref_load(r->o->out_dir, r->o->run_id, ref, n, &found, err);
    if (!st && !found && start > 0)
        st = mt_err_set(err, MT_ERR_FORMAT, "%s/ref_logps.json is missing, but the run has a checkpoint at step %lld: "
                        "the reference log-probabilities of its initial weights cannot be recomputed from it",
                        r->o->out_dir, (long long)start);
    if (!st && !found) {
        if (writer) fprintf(stderr, "reference log-probabilities of %zu pairs (the initial weights)\n", n);
        int64_t img = 0;
        for (size_t j = (size_t)mt_dist_rank(); j < n && !st; j += (size_t)mt_dist_size()) {
            bool ev = j >= n_data;
            mt_prepared *sides[2] = {ev ? r->eval : r->data, ev ? r->eval_rejected : r->rejected};
            mt_dpo_pair_in in = {.logp = {0, 0}};
            mt_dpo_pair_out out = {0};
            st = run_pair(r, sides, NULL, (int64_t)(ev ? j - n_data : j), false, 1.0, 0.0, &in, &out, &img, err);
            ref[2 * j] = in.logp[0];
            ref[2 * j + 1] = in.logp[1];
        }
        st = mt_dist_agree(st, err);
        if (!st) st = mt_dist_sum_f64(ref, 2 * (int64_t)n, err);
        if (!st) st = mt_dist_share_status(writer ? mt_dpo_ref_save(r->o->out_dir, r->o->run_id, ref, n, err) : MT_OK,
                                           err);
    }
    if (st) {
        mt_free(ref);
        return st;
    }
    r->ref = ref;
    if (writer && n > n_data) {
        size_t higher = 0;
        for (size_t j = n_data; j < n; j++) higher += ref[2 * j] > ref[2 * j + 1];
        fprintf(stderr, "before training: the chosen answer scores higher on %zu of %zu eval pairs\n", higher,
                n - n_data);
    }
    return MT_OK;
}

/* DPO on the eval pairs: m[0] the mean loss, m[1] the share whose chosen reward is above the rejected one, m[2] the
 * mean margin, m[3] the pairs whose chosen answer has the higher log-probability. */
static mt_status eval_dpo(run *r, double m[4], mt_err *err) {
    mt_prepared *sides[2] = {r->eval, r->eval_rejected};
    size_t n = r->eval->n;
    int64_t img = 0;
    m[0] = m[1] = m[2] = m[3] = 0;
    mt_status st = MT_OK;
    for (size_t i = (size_t)mt_dist_rank(); i < n && !st; i += (size_t)mt_dist_size()) {
        mt_dpo_pair_in in = {.logp = {0, 0}};
        mt_dpo_pair_out out = {0};
        if ((st = run_pair(r, sides, r->ref + 2 * r->data->n, (int64_t)i, false, 1.0, 0.0, &in, &out, &img, err)))
            break;
        m[0] += out.loss;
        m[1] += out.reward[0] > out.reward[1];
        m[2] += out.reward[0] - out.reward[1];
        m[3] += in.logp[0] > in.logp[1];
    }
    if ((st = mt_dist_agree(st, err)) || (st = mt_dist_sum_f64(m, 4, err))) return st;
    for (int k = 0; k < 3; k++) m[k] /= (double)n;
    return MT_OK;
}

static mt_status eval_loss(run *r, double *out, mt_err *err) {
    int64_t sup = 0, img = 0;
    for (size_t i = 0; i < r->eval->n; i++)
        sup += mt_train_sample_supervised(r->eval->samples[i].tok.labels, r->eval->samples[i].tok.n);
    double total = 0;
    for (size_t i = 0; i < r->eval->n; i++) {
        double l;
        mt_status st = run_sample(r, &r->eval->samples[i], 1.0f / (float)MT_MAX(sup, 1), false, &l, &img, err);
        if (st) return st;
        total += l;
    }
    *out = total;
    return MT_OK;
}

/* v as JSON that reads back as the same double: cJSON's printing keeps 15 digits when they come within an epsilon,
 * which would make a resumed run's history differ from an uninterrupted one's in the last bit. */
static cJSON *exact_number(double v) {
    char num[32];
    snprintf(num, sizeof num, "%.17g", v);
    return isfinite(v) ? cJSON_CreateRaw(num) : cJSON_CreateNull();
}

/* GRPO's metrics per step: these, then each reward term's mean and std */
enum { GH_REWARD, GH_REWARD_STD, GH_LOSS, GH_KL, GH_CLIP_LOW, GH_CLIP_HIGH, GH_LEN_MEAN, GH_LEN_MIN, GH_LEN_MAX,
       GH_TOK_S, GH_FIXED };
static const char *const GH_NAMES[GH_FIXED] = {"reward", "reward_std", "loss", "kl", "clip_ratio/low_mean",
                                               "clip_ratio/high_mean", "completions/mean_length",
                                               "completions/min_length", "completions/max_length",
                                               "rollout_tokens_per_s"};

static void grpo_metric_name(const run *r, int k, char *out, size_t cap) {
    if (k < GH_FIXED) snprintf(out, cap, "%s", GH_NAMES[k]);
    else snprintf(out, cap, "rewards/%s/%s", mt_rewards_name(r->rewards, (k - GH_FIXED) / 2),
                  (k - GH_FIXED) % 2 ? "std" : "mean");
}

static cJSON *state_json(const run *r, int64_t step) {
    cJSON *s = cJSON_CreateObject();
    if (r->o->run_id) cJSON_AddStringToObject(s, "run_id", r->o->run_id);
    cJSON_AddNumberToObject(s, "global_step", (double)step);
    cJSON_AddNumberToObject(s, "epoch", (double)step / (double)r->steps_per_epoch);
    cJSON *h = cJSON_AddArrayToObject(s, "loss_history");
    for (int64_t i = 0; i < step; i++) cJSON_AddItemToArray(h, exact_number(r->losses[i]));
    if (r->dpo_hist) {
        cJSON *d = cJSON_AddArrayToObject(s, "dpo_history");
        for (int64_t i = 0; d && i < step; i++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddItemToObject(e, "rewards/chosen", exact_number(r->dpo_hist[i][0]));
            cJSON_AddItemToObject(e, "rewards/rejected", exact_number(r->dpo_hist[i][1]));
            cJSON_AddItemToObject(e, "rewards/margins", exact_number(r->dpo_hist[i][0] - r->dpo_hist[i][1]));
            cJSON_AddItemToObject(e, "rewards/accuracies", exact_number(r->dpo_hist[i][2]));
            cJSON_AddItemToArray(d, e);
        }
    }
    if (r->grpo_hist) {
        cJSON *d = cJSON_AddArrayToObject(s, "grpo_history");
        for (int64_t i = 0; d && i < step; i++) {
            cJSON *e = cJSON_CreateObject();
            for (int k = 0; k < r->grpo_stride; k++) {
                char name[160];
                grpo_metric_name(r, k, name, sizeof name);
                cJSON_AddItemToObject(e, name, exact_number(r->grpo_hist[i * r->grpo_stride + k]));
            }
            cJSON_AddItemToArray(d, e);
        }
        int T = mt_rewards_count(r->rewards);
        cJSON *ev = cJSON_AddArrayToObject(s, "grpo_eval");
        for (int64_t i = 0; ev && i < r->n_eval; i++) {
            cJSON *e = cJSON_CreateObject();
            const double *m = r->grpo_eval + i * (1 + T);
            cJSON_AddNumberToObject(e, "step", (double)r->eval_steps[i]);
            cJSON_AddItemToObject(e, "reward", exact_number(m[0]));
            for (int k = 0; k < T; k++) {
                char name[160];
                snprintf(name, sizeof name, "rewards/%s/mean", mt_rewards_name(r->rewards, k));
                cJSON_AddItemToObject(e, name, exact_number(m[1 + k]));
            }
            cJSON_AddItemToArray(ev, e);
        }
    }
    return s;
}

static mt_status restore_state(run *r, const cJSON *s, int64_t step, mt_err *err) {
    if (step > r->total_steps)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "%s: the newest checkpoint is at step %lld, but the run now has "
                          "%lld steps (its epochs, batch or data changed?): nothing was written", r->o->out_dir,
                          (long long)step, (long long)r->total_steps);
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(s, "loss_history");
    if (!cJSON_IsArray(h) || cJSON_GetArraySize(h) != step)
        return mt_err_set(err, MT_ERR_FORMAT, "trainer_state.json: loss_history must hold %lld losses", (long long)step);
    int64_t i = 0;
    for (const cJSON *e = h->child; e; e = e->next) r->losses[i++] = cJSON_IsNumber(e) ? e->valuedouble : NAN;
    if (r->grpo_hist) {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(s, "grpo_history");
        if (!cJSON_IsArray(d) || cJSON_GetArraySize(d) != step)
            return mt_err_set(err, MT_ERR_FORMAT, "trainer_state.json: grpo_history must hold %lld entries",
                              (long long)step);
        i = 0;
        for (const cJSON *e = d->child; e; e = e->next, i++)
            for (int k = 0; k < r->grpo_stride; k++) {
                char name[160];
                grpo_metric_name(r, k, name, sizeof name);
                const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, name);
                r->grpo_hist[i * r->grpo_stride + k] = cJSON_IsNumber(v) ? v->valuedouble : NAN;
            }
        /* the evaluations up to the checkpoint, so the resumed run's state lists them all (absent: none were run) */
        int T = mt_rewards_count(r->rewards);
        const cJSON *ev = cJSON_GetObjectItemCaseSensitive(s, "grpo_eval");
        for (const cJSON *e = cJSON_IsArray(ev) ? ev->child : NULL; e && r->n_eval < r->eval_cap; e = e->next) {
            const cJSON *at = cJSON_GetObjectItemCaseSensitive(e, "step");
            int64_t when = cJSON_IsNumber(at) ? (int64_t)at->valuedouble : 0, every = r->o->eval_every;
            bool due = when >= 1 && when <= step && ((every && when % every == 0) || when == r->total_steps);
            if (!due || (r->n_eval && when <= r->eval_steps[r->n_eval - 1]))
                return mt_err_set(err, MT_ERR_FORMAT, "trainer_state.json: grpo_eval entry %lld: \"step\" must be "
                                  "a step of the run's evaluations up to %lld, after the entry before it",
                                  (long long)r->n_eval + 1, (long long)step);
            double *m = r->grpo_eval + r->n_eval * (1 + T);
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, "reward");
            m[0] = cJSON_IsNumber(v) ? v->valuedouble : NAN;
            for (int k = 0; k < T; k++) {
                char name[160];
                snprintf(name, sizeof name, "rewards/%s/mean", mt_rewards_name(r->rewards, k));
                v = cJSON_GetObjectItemCaseSensitive(e, name);
                m[1 + k] = cJSON_IsNumber(v) ? v->valuedouble : NAN;
            }
            r->eval_steps[r->n_eval++] = when;
        }
    }
    if (!r->dpo_hist) return MT_OK;
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(s, "dpo_history");
    if (!cJSON_IsArray(d) || cJSON_GetArraySize(d) != step)
        return mt_err_set(err, MT_ERR_FORMAT, "trainer_state.json: dpo_history must hold %lld entries",
                          (long long)step);
    static const char *const keys[3] = {"rewards/chosen", "rewards/rejected", "rewards/accuracies"};
    i = 0;
    for (const cJSON *e = d->child; e; e = e->next, i++)
        for (int k = 0; k < 3; k++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, keys[k]);
            r->dpo_hist[i][k] = cJSON_IsNumber(v) ? v->valuedouble : NAN;
        }
    return MT_OK;
}

static void write_plot(run *r, int64_t steps) {
    char path[4096];
    mt_err e = {0};
    mt_plot_series train = {.value = r->losses, .n = steps};
    /* GRPO's evaluations are rewards, not losses: they stay off the loss plot */
    mt_plot_series ev = {.step = r->eval_steps, .value = r->eval_losses, .n = r->grpo_eval ? 0 : r->n_eval};
    if (mt_path_join(path, sizeof path, r->o->out_dir, "loss.svg", &e) ||
        mt_plot_loss_svg(path, r->m->dir, &train, &ev, &e))
        mt_log(MT_LOG_ERROR, "loss plot: %s", e.msg);
}

/* GRPO's metrics of one step as the progress line shows them */
static void grpo_line(const run *r, const double *h, char *out, size_t cap) {
    int n = snprintf(out, cap, "  reward %.4f std %.4f", h[GH_REWARD], h[GH_REWARD_STD]);
    int terms = mt_rewards_count(r->rewards);
    for (int k = 0; k < terms && terms > 1 && n > 0 && (size_t)n < cap; k++)
        n += snprintf(out + n, cap - (size_t)n, "%s%s %.3f", k ? ", " : " (", mt_rewards_name(r->rewards, k),
                      h[GH_FIXED + 2 * k]);
    if (terms > 1 && n > 0 && (size_t)n < cap) n += snprintf(out + n, cap - (size_t)n, ")");
    if (n > 0 && (size_t)n < cap)
        snprintf(out + n, cap - (size_t)n, "  kl %.4g  clip %.3f/%.3f  len %.1f [%.0f, %.0f]  rollout %.0f tok/s",
                 h[GH_KL], h[GH_CLIP_LOW], h[GH_CLIP_HIGH], h[GH_LEN_MEAN], h[GH_LEN_MIN], h[GH_LEN_MAX], h[GH_TOK_S]);
}

/* dpo: NULL, or the interval's mean rewards chosen and rejected and accuracy; grpo: NULL, or the step's metrics */
static void log_step(run *r, int64_t step, double loss, double norm, double lr, int64_t tokens, int64_t images,
                     double secs, double eta, const double *dpo, const double *grpo) {
    mt_progress_clear(&r->bar);
    char extra[1024] = "";
    if (dpo)
        snprintf(extra, sizeof extra, "  rewards chosen %.4f rejected %.4f margin %.4f accuracy %.3f", dpo[0], dpo[1],
                 dpo[0] - dpo[1], dpo[2]);
    if (grpo) grpo_line(r, grpo, extra, sizeof extra);
    fprintf(stderr, "step %lld/%lld  loss %.4f%s  lr %.3g  grad norm %.3g  %.0f tok/s  %.0f img tok/s  eta %.0fs\n",
            (long long)step + 1, (long long)r->total_steps, loss, extra, lr, norm, (double)tokens / secs,
            (double)images / secs, eta);
}

static int64_t first_nonfinite(const float *x, int64_t n) {
    for (int64_t k = 0; x && k < n; k++)
        if (!isfinite(x[k])) return k;
    return -1;
}

static void describe_nonfinite(char *out, size_t cap, const char *what, const char *name, int64_t at, float v) {
    snprintf(out, cap, "%s%s holds %s (first at index %lld)", what, name, isnan(v) ? "NaN" : v > 0 ? "Inf" : "-Inf",
             (long long)at);
}

/* Names the first tensor holding a NaN or Inf: the trained weights, then every weight the model reads (the frozen
 * ones), then the trained weights' gradients. Weights come first because one bad weight makes every gradient bad.
 * Nothing is checked at load (transformers does not either): the pass over all weights is paid only by a run that
 * already failed. false when all are finite. */
static bool name_nonfinite(const run *r, char *out, size_t cap) {
    const mt_param *p = r->params;
    for (size_t i = 0; i < r->n_params; i++) {
        int64_t at = first_nonfinite(p[i].data, p[i].n);
        if (at >= 0) return describe_nonfinite(out, cap, "", p[i].name, at, p[i].data[at]), true;
    }
    for (size_t i = 0; i < r->m->n_weights; i++) {
        float v;
        int64_t at = mt_weight_first_nonfinite(&r->m->weights[i], &v);
        if (at >= 0) return describe_nonfinite(out, cap, "", r->m->weights[i].name, at, v), true;
    }
    for (size_t i = 0; i < r->n_params; i++) {
        int64_t at = first_nonfinite(p[i].grad, p[i].n);
        if (at >= 0) return describe_nonfinite(out, cap, "the gradient of ", p[i].name, at, p[i].grad[at]), true;
    }
    return false;
}

/* SFT: this rank's share of a step (every world-th sample). sums: loss, tokens, image tokens. */
static mt_status step_sft(run *r, int64_t epoch, int64_t first, int64_t count, double *sums, mt_err *err) {
    int64_t sup = 0, images = 0;
    for (int64_t k = 0; k < count; k++) {
        const mt_prepared_sample *s = sample_at(r, epoch, first + k);
        sup += mt_train_sample_supervised(s->tok.labels, s->tok.n);
    }
    mt_status st = MT_OK;
    for (int64_t k = mt_dist_rank(); k < count && !st; k += mt_dist_size()) {
        const mt_prepared_sample *s = sample_at(r, epoch, first + k);
        double l;
        st = run_sample(r, s, 1.0f / (float)MT_MAX(sup, 1), true, &l, &images, err);
        sums[0] += l;
        sums[1] += (double)s->tok.n;
    }
    sums[2] = (double)images;
    return st;
}

/* DPO: this rank's share of a step (every world-th pair). sums: loss, tokens, image tokens, and the sums over its
 * pairs of the chosen and rejected rewards and of the pairs ranked right. */
static mt_status step_dpo(run *r, int64_t epoch, int64_t first, int64_t count, double *sums, mt_err *err) {
    int64_t chosen_tokens = 0, images = 0;
    for (int64_t k = 0; k < count; k++) {
        const mt_prepared_sample *s = &r->data->samples[sample_index(r, epoch, first + k)];
        chosen_tokens += mt_train_sample_supervised(s->tok.labels, s->tok.n);
    }
    double inv_pairs = 1.0 / (double)count, inv_chosen = 1.0 / (double)MT_MAX(chosen_tokens, 1);
    mt_status st = MT_OK;
    for (int64_t k = mt_dist_rank(); k < count && !st; k += mt_dist_size()) {
        int64_t i = sample_index(r, epoch, first + k);
        mt_dpo_pair_in in = {.logp = {0, 0}};
        mt_dpo_pair_out out = {0};
        mt_prepared *sides[2] = {r->data, r->rejected};
        if ((st = run_pair(r, sides, r->ref, i, true, inv_pairs, inv_chosen, &in, &out, &images, err))) break;
        sums[0] += inv_pairs * out.loss - r->o->dpo.sft_weight * inv_chosen * in.logp[0];
        sums[1] += (double)(r->data->samples[i].tok.n + r->rejected->samples[i].tok.n);
        sums[3] += out.reward[0];
        sums[4] += out.reward[1];
        sums[5] += out.reward[0] > out.reward[1];
    }
    sums[2] = (double)images;
    return st;
}

/* Clips the summed gradients and takes the optimizer step numbered update (the schedule's count); a loss or gradient
 * that is not finite stops the run, naming the first tensor at fault. */
static mt_status update(run *r, int64_t step, int64_t update, double loss, double *norm, mt_err *err) {
    mt_status st = mt_grad_clip_norm(r->params, r->n_params, r->o->max_grad_norm, r->pool, norm, err);
    if (st || !isfinite(loss)) {
        char why[1024];
        if (!name_nonfinite(r, why, sizeof why))
            snprintf(why, sizeof why, "every weight and gradient is finite, so an activation overflowed");
        return mt_err_set(err, MT_ERR_LIMIT, "step %lld: the %s is not finite: %s; stopping, the last checkpoint "
                          "in %s is kept", (long long)step + 1, isfinite(loss) ? "gradient" : "loss", why,
                          r->o->out_dir);
    }
    mt_adamw_step(r->opt, mt_schedule_scale(&r->sched, update), r->pool);
    return MT_OK;
}

/* One GRPO completion as a training sample: its prompt's ids then its own, the completion supervised. */
typedef struct grpo_item {
    int64_t prompt;   /* index into the rank's prompts */
    int32_t *ids, *labels;
    int64_t n, len;   /* tokens in all, of the completion */
    int64_t off;      /* its first token in the rank's logp arrays */
    char *text;       /* the completion without its end-of-turn token */
} grpo_item;

/* A completion's text for the rewards. The LM head may be wider than the tokenizer (vocab_size padded, as Qwen's
 * are), and sampling at a high temperature can draw an id with no token: it has no text, so it is left out of the
 * text (and the completion is still trained on what was sampled). */
static mt_status completion_text(const mt_tokenizer *tok, const int32_t *ids, int64_t n, char **text, mt_err *err) {
    int32_t *kept = mt_malloc_array((size_t)n + 1, sizeof *kept);
    if (!kept) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    int64_t k = 0;
    size_t len;
    for (int64_t t = 0; t < n; t++)
        if (mt_tokenizer_id_to_token(tok, ids[t], &len)) kept[k++] = ids[t];
    mt_status st = mt_tokenizer_decode(tok, kept, (size_t)k, true, text, NULL, err);
    mt_free(kept);
    return st;
}

/* GRPO: sample s, its prompt the first len ids, as a rollout prompt: its pixels into pixels[] and inputs[] (room for
 * MT_DATASET_MAX_IMAGES each), its text (special tokens skipped) for the rewards into *text. */
static mt_status rollout_prompt(const run *r, const mt_prepared_sample *s, int64_t len, float **pixels,
                                mt_image_input *inputs, mt_rollout_prompt *prompt, char **text, mt_err *err) {
    mt_status st = MT_OK;
    for (int k = 0; k < s->tok.n_images && !st; k++) st = mt_prepared_pixels(r->m, s, k, &pixels[k], &inputs[k], err);
    *prompt = (mt_rollout_prompt){.ids = s->tok.ids, .n_ids = len, .images = inputs, .n_images = s->tok.n_images};
    if (!st) st = mt_tokenizer_decode(r->m->tok, s->tok.ids, (size_t)len, true, text, NULL, err);
    if (st) mt_err_prefix(err, "line %lld: ", (long long)s->line);
    return st;
}

/* GRPO: completion c of sample s's prompt (prompt_text) scored: its text (without the end-of-turn token) into *text,
 * its reward terms into terms[] and their weighted sum into *total. An image or video placeholder the policy sampled
 * has no picture behind it (the forward would refuse the sequence): c ends before it, as if the model had stopped
 * there. */
static mt_status score_completion(const run *r, const mt_prepared_sample *s, const char *prompt_text, mt_completion *c,
                                  char **text, double *terms, double *total, mt_err *err) {
    for (int64_t t = 0; t < c->n; t++)
        if (c->ids[t] == r->m->desc.image_token_id || c->ids[t] == r->m->desc.video_token_id) {
            c->n = t;
            c->stop = MT_STOP_CALLER;
        }
    int64_t text_n = c->n - (c->stop == MT_STOP_EOS && c->n > 0);
    mt_status st = completion_text(r->m->tok, c->ids, text_n, text, err);
    if (!st) st = mt_rewards_score(r->rewards, &(mt_reward_input){prompt_text, *text, s->fields}, terms, total, err);
    if (st) mt_err_prefix(err, "line %lld: ", (long long)s->line);
    return st;
}

/* Completion i forward with the weights the model has now (tape or not); in NULL: log-probabilities only. */
static mt_status grpo_run(run *r, const grpo_item *it, const mt_image_input *inputs, int n_images,
                          const mt_grpo_completion *in, double *logp, mt_grpo_sums *acc, mt_err *err) {
    mt_ctx ctx = {.arena = &r->arena, .pool = r->pool, .tape = in ? r->tape : NULL};
    mt_train_sample ts = {.ids = it->ids, .labels = it->labels, .n = it->n, .inputs = inputs, .n_images = n_images};
    mt_status st = mt_grpo_completion_run(r->m, &ctx, &ts, it->len, &r->o->grpo.loss, in, logp, acc, err);
    if (r->tape) mt_tape_reset(r->tape);
    mt_arena_reset(&r->arena);
    return st;
}

/* Appends this rank's first log_completions completions of the step to OUT/completions.jsonl. */
static void grpo_log_completions(run *r, int64_t step, const grpo_item *items, int64_t n, const int64_t *sample,
                                 const double *terms, const double *total, const double *adv) {
    char path[4096];
    mt_err e = {0};
    int T = mt_rewards_count(r->rewards);
    FILE *f = mt_path_join(path, sizeof path, r->o->out_dir, "completions.jsonl", &e) ? NULL : fopen(path, "a");
    if (!f) {
        mt_log(MT_LOG_ERROR, "%s: cannot append the step's completions", path);
        return;
    }
    for (int64_t i = 0; i < MT_MIN(n, (int64_t)r->o->grpo.log_completions); i++) {
        cJSON *j = cJSON_CreateObject(), *rw;
        cJSON_AddNumberToObject(j, "step", (double)step + 1);
        cJSON_AddNumberToObject(j, "prompt_index", (double)sample[items[i].prompt]);
        cJSON_AddNumberToObject(j, "line", (double)r->data->samples[sample[items[i].prompt]].line);
        cJSON_AddStringToObject(j, "completion", items[i].text);
        if ((rw = cJSON_AddObjectToObject(j, "rewards")))
            for (int k = 0; k < T; k++) cJSON_AddNumberToObject(rw, mt_rewards_name(r->rewards, k), terms[i * T + k]);
        cJSON_AddNumberToObject(j, "reward", total[i]);
        cJSON_AddNumberToObject(j, "advantage", adv[i]);
        char *line = cJSON_PrintUnformatted(j);
        if (line) fprintf(f, "%s\n", line);
        cJSON_free(line);
        cJSON_Delete(j);
    }
    fclose(f);
}

/* GRPO: this rank's prompts (every world-th of the step's count), their rollouts, rewards and advantages, the
 * reference and old log-probabilities, then inner_steps updates of the whole batch (all ranks). sums: the loss,
 * tokens and image tokens (trained over); *loss, *norm: the mean over the updates and the last norm. */
static mt_status step_grpo(run *r, int64_t step, int64_t epoch, int64_t first, int64_t count, double *sums,
                           double *loss, double *norm, mt_err *err) {
    const mt_grpo_config *c = &r->o->grpo;
    const int G = c->group, T = mt_rewards_count(r->rewards), world = mt_dist_size(), rank = mt_dist_rank();
    int64_t np = rank < count ? (count - rank + world - 1) / world : 0, nc = np * G;
    int64_t *sample = mt_calloc((size_t)np + 1, sizeof *sample);
    float **pixels = mt_calloc((size_t)(np * MT_DATASET_MAX_IMAGES) + 1, sizeof *pixels);
    mt_image_input *inputs = mt_calloc((size_t)(np * MT_DATASET_MAX_IMAGES) + 1, sizeof *inputs);
    mt_rollout_prompt *prompts = mt_calloc((size_t)np + 1, sizeof *prompts);
    mt_completion *comp = mt_calloc((size_t)nc + 1, sizeof *comp);
    grpo_item *items = mt_calloc((size_t)nc + 1, sizeof *items);
    double *terms = mt_calloc((size_t)(nc * T) + 1, sizeof *terms), *total = mt_calloc((size_t)nc + 1, sizeof *total);
    double *adv = mt_calloc((size_t)nc + 1, sizeof *adv);
    double *logp = NULL, *ref = NULL, *old = NULL, *h = r->grpo_hist + step * r->grpo_stride;
    char **ptext = mt_calloc((size_t)np + 1, sizeof *ptext);
    mt_status st = sample && pixels && inputs && prompts && comp && items && terms && total && adv && ptext
                       ? MT_OK : mt_err_set(err, MT_ERR_NOMEM, "out of memory for a GRPO step");
    int64_t max_prompt = 0, images = 0, *place = mt_calloc((size_t)np + 1, sizeof *place);
    if (!st && !place) st = mt_err_set(err, MT_ERR_NOMEM, "out of memory for a GRPO step");
    for (int64_t p = 0; p < np && !st; p++) {
        place[p] = rank + p * world; /* the answers' seeds are the prompt's place in the step: any -np draws alike */
        sample[p] = sample_index(r, epoch, first + place[p]);
        st = rollout_prompt(r, &r->data->samples[sample[p]], r->prompt_len[sample[p]],
                            pixels + p * MT_DATASET_MAX_IMAGES, inputs + p * MT_DATASET_MAX_IMAGES, &prompts[p],
                            &ptext[p], err);
        max_prompt = MT_MAX(max_prompt, r->prompt_len[sample[p]]);
    }
    /* a new scheduler each step: its cached prompts hold the keys of the weights it was made on */
    mt_sched *sch = NULL;
    mt_rollout_stats rs = {0};
    mt_sampling sm = mt_sampling_default();
    sm.temperature = (float)c->temperature;
    sm.top_p = (float)c->top_p;
    mt_rng seeds = mt_rng_stream(r->o->seed, MT_RNG_SAMPLE, (uint64_t)step);
    sm.seed = mt_rng_u64(&seeds);
    mt_sched_params sp = mt_rollout_sched_params(r->o->threads, nc, max_prompt, c->max_new);
    if (!st && np > 0) st = mt_sched_new(r->m, &sp, &sch, err);
    if (!st && np > 0)
        st = mt_rollout_run(sch, prompts, (int)np, &(mt_rollout_opts){.group = G, .max_new = c->max_new, .sampling = sm,
                                                           .prompt_index = place},
                            comp, &rs, err);
    mt_sched_free(sch);
    /* the completions as samples, their text scored */
    int64_t tokens = 0, len_min = INT64_MAX, len_max = 0;
    for (int64_t i = 0; i < nc && !st; i++) {
        grpo_item *it = &items[i];
        const mt_prepared_sample *s = &r->data->samples[sample[i / G]];
        int64_t pl = r->prompt_len[sample[i / G]];
        char *text = NULL;
        st = score_completion(r, s, ptext[i / G], &comp[i], &text, terms + i * T, &total[i], err);
        *it = (grpo_item){.prompt = i / G, .len = comp[i].n, .n = pl + comp[i].n, .off = tokens, .text = text};
        if (st) break;
        it->ids = mt_malloc_array((size_t)it->n, sizeof *it->ids);
        it->labels = mt_malloc_array((size_t)it->n, sizeof *it->labels);
        if (!it->ids || !it->labels) {
            st = mt_err_set(err, MT_ERR_NOMEM, "out of memory for a GRPO step");
            break;
        }
        memcpy(it->ids, s->tok.ids, (size_t)pl * sizeof *it->ids);
        memcpy(it->ids + pl, comp[i].ids, (size_t)comp[i].n * sizeof *it->ids);
        for (int64_t t = 0; t < it->n; t++) it->labels[t] = t < pl ? MT_LABEL_IGNORE : it->ids[t];
        tokens += it->len;
        len_min = MT_MIN(len_min, it->len);
        len_max = MT_MAX(len_max, it->len);
        images += s->tok.n_image_tokens;
    }
    if (!st) mt_grpo_advantages(total, np, G, c->scale_rewards, adv);
    if (!st && rank == 0 && c->log_completions > 0) grpo_log_completions(r, step, items, nc, sample, terms, total, adv);
    /* what every rank needs of the whole batch: its completions and tokens (the normaliser), the metrics' sums */
    double *g = mt_calloc((size_t)(8 + 2 * T + 2 * world), sizeof *g);
    if (!st && !g) st = mt_err_set(err, MT_ERR_NOMEM, "out of memory for a GRPO step");
    if (!st) {
        g[0] = (double)nc;
        g[1] = (double)tokens;
        g[2] = rs.tokens;
        g[3] = rs.seconds;
        for (int64_t i = 0; i < nc; i++) {
            g[4] += total[i];
            g[5] += total[i] * total[i];
            for (int k = 0; k < T; k++) {
                g[8 + 2 * k] += terms[i * T + k];
                g[9 + 2 * k] += terms[i * T + k] * terms[i * T + k];
            }
        }
        g[6] = (double)images;
        g[8 + 2 * T + 2 * rank] = nc ? (double)len_min : INFINITY;
        g[9 + 2 * T + 2 * rank] = (double)len_max;
        logp = mt_calloc((size_t)tokens + 1, sizeof *logp);
        ref = mt_calloc((size_t)tokens + 1, sizeof *ref);
        old = c->inner_steps > 1 ? mt_calloc((size_t)tokens + 1, sizeof *old) : NULL;
        if (!logp || !ref || (c->inner_steps > 1 && !old)) st = mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    }
    if ((st = mt_dist_agree(st, err)) == MT_OK) st = mt_dist_sum_f64(g, 8 + 2 * T + 2 * world, err);
    int64_t n_all = st ? 0 : (int64_t)g[0], tokens_all = st ? 0 : (int64_t)g[1];
    /* the reference: the checkpoint's own weights, swapped in (no copy); the old policy: the weights as they are */
    if (!st && c->loss.beta != 0) {
        mt_trainable_use_base(r->tr, true);
        for (int64_t i = 0; i < nc && !st; i++)
            if (items[i].len)
                st = grpo_run(r, &items[i], prompts[items[i].prompt].images, prompts[items[i].prompt].n_images, NULL,
                              ref + items[i].off, NULL, err);
        mt_trainable_use_base(r->tr, false);
    }
    for (int64_t i = 0; old && i < nc && !st; i++)
        if (items[i].len)
            st = grpo_run(r, &items[i], prompts[items[i].prompt].images, prompts[items[i].prompt].n_images, NULL,
                          old + items[i].off, NULL, err);
    st = mt_dist_agree(st, err);
    double loss_sum = 0, stat[4] = {0, 0, 0, 0};
    for (int k = 0; k < c->inner_steps && !st; k++) {
        int64_t u = step * c->inner_steps + k;
        mt_trainable_zero_grad(r->tr);
        mt_trainable_set_step(r->tr, r->o->seed, u);
        mt_grpo_sums acc = {0};
        for (int64_t i = 0; i < nc && !st; i++) {
            if (!items[i].len) continue;
            mt_grpo_completion in = {.weight = mt_grpo_weight(&c->loss, n_all, items[i].len, tokens_all),
                                     .adv = adv[i], .old = old ? old + items[i].off : NULL, .ref = ref + items[i].off};
            st = grpo_run(r, &items[i], prompts[items[i].prompt].images, prompts[items[i].prompt].n_images, &in,
                          logp + items[i].off, &acc, err);
        }
        double a[5] = {acc.loss, acc.kl, acc.low, acc.high, (double)acc.tokens};
        if ((st = mt_dist_agree(st, err))) break;
        for (size_t i = 0; i < r->n_params && !st; i++) st = mt_dist_sum_f32(r->params[i].grad, r->params[i].n, err);
        if (!st) st = mt_dist_sum_f64(a, 5, err);
        if (!st) st = update(r, step, u, a[0], norm, err);
        loss_sum += a[0];
        for (int q = 0; q < 3; q++) stat[q] += a[1 + q] / MT_MAX(a[4], 1);
    }
    if (!st) {
        double n = (double)MT_MAX(n_all, 1), ni = c->inner_steps, lo = INFINITY, hi = 0;
        for (int w = 0; w < world; w++) {
            lo = fmin(lo, g[8 + 2 * T + 2 * w]);
            hi = fmax(hi, g[9 + 2 * T + 2 * w]);
        }
        h[GH_REWARD] = g[4] / n;
        h[GH_REWARD_STD] = n_all > 1 ? sqrt(fmax(g[5] - g[4] * g[4] / n, 0) / (n - 1)) : 0;
        h[GH_LOSS] = *loss = loss_sum / ni;
        h[GH_KL] = stat[0] / ni;
        h[GH_CLIP_LOW] = stat[1] / ni;
        h[GH_CLIP_HIGH] = stat[2] / ni;
        h[GH_LEN_MEAN] = (double)tokens_all / n;
        h[GH_LEN_MIN] = isfinite(lo) ? lo : 0;
        h[GH_LEN_MAX] = hi;
        h[GH_TOK_S] = g[3] > 0 ? g[2] / (g[3] / world) : 0;
        for (int k = 0; k < T; k++) {
            h[GH_FIXED + 2 * k] = g[8 + 2 * k] / n;
            h[GH_FIXED + 2 * k + 1] =
                n_all > 1 ? sqrt(fmax(g[9 + 2 * k] - g[8 + 2 * k] * g[8 + 2 * k] / n, 0) / (n - 1)) : 0;
        }
        sums[0] = *loss;
        sums[1] = (double)tokens_all * ni;
        sums[2] = g[6] * ni;
    }
    for (int64_t i = 0; i < nc; i++) {
        mt_free(items[i].ids);
        mt_free(items[i].labels);
        mt_free(items[i].text);
    }
    for (int64_t i = 0; pixels && i < np * MT_DATASET_MAX_IMAGES; i++) mt_free(pixels[i]);
    for (int64_t p = 0; ptext && p < np; p++) mt_free(ptext[p]);
    if (comp) mt_completions_free(comp, nc);
    mt_free(comp);
    mt_free(g);
    mt_free(sample);
    mt_free(place);
    mt_free(pixels);
    mt_free(inputs);
    mt_free(prompts);
    mt_free(items);
    mt_free(terms);
    mt_free(total);
    mt_free(adv);
    mt_free(ptext);
    mt_free(logp);
    mt_free(ref);
    mt_free(old);
    return st;
}

/* GRPO on the held-out prompts: each answered once and greedily, so that evaluations compare across steps and runs
 * (a sampled answer would add its own noise to the policy's progress), scored by the run's rewards. This rank's
 * prompts (every world-th) go in chunks of batch * group / 2, each on a scheduler of its own sized as a step's (two
 * sequences a prompt, see below). m[0] gets the mean reward, m[1 + k] term k's mean, over every prompt of every
 * rank. */
static mt_status eval_grpo(run *r, double *m, mt_err *err) {
    const mt_grpo_config *c = &r->o->grpo;
    const int T = mt_rewards_count(r->rewards), world = mt_dist_size(), rank = mt_dist_rank();
    const int64_t n = (int64_t)r->eval->n, chunk = MT_MAX((int64_t)r->o->batch * c->group / 2, 1);
    const int64_t mine = rank < n ? (n - rank + world - 1) / world : 0;
    float **pixels = mt_calloc((size_t)(chunk * MT_DATASET_MAX_IMAGES), sizeof *pixels);
    mt_image_input *inputs = mt_calloc((size_t)(chunk * MT_DATASET_MAX_IMAGES), sizeof *inputs);
    mt_rollout_prompt *prompts = mt_calloc((size_t)chunk, sizeof *prompts);
    mt_completion *comp = mt_calloc((size_t)chunk, sizeof *comp);
    char **ptext = mt_calloc((size_t)chunk, sizeof *ptext);
    double *terms = mt_calloc((size_t)T + 1, sizeof *terms);
    mt_status st = pixels && inputs && prompts && comp && ptext && terms
                       ? MT_OK : mt_err_set(err, MT_ERR_NOMEM, "out of memory for the eval prompts");
    for (int k = 0; k <= T; k++) m[k] = 0;
    mt_sampling greedy = mt_sampling_default();
    greedy.temperature = 0.0f;
    for (int64_t c0 = 0; c0 < mine && !st; c0 += chunk) {
        int64_t np = MT_MIN(chunk, mine - c0), max_prompt = 0;
        for (int64_t p = 0; p < np && !st; p++) {
            int64_t i = rank + (c0 + p) * world;
            st = rollout_prompt(r, &r->eval->samples[i], r->eval_prompt_len[i], pixels + p * MT_DATASET_MAX_IMAGES,
                                inputs + p * MT_DATASET_MAX_IMAGES, &prompts[p], &ptext[p], err);
            max_prompt = MT_MAX(max_prompt, r->eval_prompt_len[i]);
        }
        mt_sched *sch = NULL;
        mt_rollout_stats rs = {0};
        /* room for 2 sequences a prompt: its cached prefix (the rollout reads each prompt first) beside its answer;
         * sized for the answers alone, a lone prompt's answer would wait forever for the rows its prefix holds */
        mt_sched_params sp = mt_rollout_sched_params(r->o->threads, 2 * np, max_prompt, c->max_new);
        if (!st) st = mt_sched_new(r->m, &sp, &sch, err);
        if (!st)
            st = mt_rollout_run(sch, prompts, (int)np, &(mt_rollout_opts){.group = 1, .max_new = c->max_new,
                                                                        .sampling = greedy},
                                comp, &rs, err);
        mt_sched_free(sch);
        for (int64_t p = 0; p < np && !st; p++) {
            char *text = NULL;
            double total;
            st = score_completion(r, &r->eval->samples[rank + (c0 + p) * world], ptext[p], &comp[p], &text, terms,
                                  &total, err);
            mt_free(text);
            m[0] += total;
            for (int k = 0; k < T; k++) m[1 + k] += terms[k];
        }
        mt_completions_free(comp, np);
        memset(comp, 0, (size_t)np * sizeof *comp);
        for (int64_t i = 0; i < np * MT_DATASET_MAX_IMAGES; i++) {
            mt_free(pixels[i]);
            pixels[i] = NULL;
        }
        for (int64_t p = 0; p < np; p++) {
            mt_free(ptext[p]);
            ptext[p] = NULL;
        }
    }
    mt_free(pixels);
    mt_free(inputs);
    mt_free(prompts);
    mt_free(comp);
    mt_free(ptext);
    mt_free(terms);
    if ((st = mt_dist_agree(st, err)) || (st = mt_dist_sum_f64(m, 1 + T, err))) return st;
    for (int k = 0; k <= T; k++) m[k] /= (double)n;
    return MT_OK;
}

static mt_status train_loop(run *r, int64_t start_step, mt_err *err) {
    const mt_train_opts *o = r->o;
    double t_start = mt_time_now(), t_saved = t_start, loss_sum = 0, session_tokens = 0, dpo_sum[3] = {0, 0, 0};
    int64_t loss_n = 0; /* steps since the last log line: it prints their mean loss, as HF Trainer does */
    if (mt_dist_rank() == 0) mt_progress_start(&r->bar, stderr);
    for (int64_t step = start_step; step < r->total_steps; step++) {
        double t0 = mt_time_now();
        int64_t epoch = step / r->steps_per_epoch, first = (step % r->steps_per_epoch) * o->batch;
        int64_t count = MT_MIN((int64_t)o->batch, (int64_t)r->data->n - first), tokens, images;
        double sums[6] = {0, 0, 0, 0, 0, 0}, loss = 0, norm = 0;
        mt_status st;
        if (r->grpo_hist) {
            if ((st = step_grpo(r, step, epoch, first, count, sums, &loss, &norm, err))) return st;
        } else {
            mt_trainable_zero_grad(r->tr);
            mt_trainable_set_step(r->tr, o->seed, step);
            st = r->rejected ? step_dpo(r, epoch, first, count, sums, err)
                             : step_sft(r, epoch, first, count, sums, err);
            if ((st = mt_dist_agree(st, err))) return st;
            for (size_t i = 0; i < r->n_params && !st; i++)
                st = mt_dist_sum_f32(r->params[i].grad, r->params[i].n, err);
            if (!st) st = mt_dist_sum_f64(sums, 6, err);
            if (st) return st;
            loss = sums[0];
            if ((st = update(r, step, step, loss, &norm, err))) return st;
        }
        tokens = (int64_t)sums[1];
        images = (int64_t)sums[2];
        if (r->dpo_hist)
            for (int k = 0; k < 3; k++) {
                r->dpo_hist[step][k] = sums[3 + k] / (double)count;
                dpo_sum[k] += r->dpo_hist[step][k];
            }
        r->losses[step] = loss;
        double now = mt_time_now(), secs = now - t0, elapsed = now - t_start;
        bool writer = mt_dist_rank() == 0, last = step + 1 == r->total_steps;
        bool log_now = writer && o->log_every && ((step + 1) % o->log_every == 0 || last);
        loss_sum += loss;
        loss_n++;
        session_tokens += (double)tokens;
        /* ETA from the mean step time of this session (steps before a resume do not count) */
        double eta = elapsed / (double)(step + 1 - start_step) * (double)(r->total_steps - step - 1);
        if (log_now) {
            double dpo[3] = {dpo_sum[0] / (double)loss_n, dpo_sum[1] / (double)loss_n, dpo_sum[2] / (double)loss_n};
            log_step(r, step, loss_sum / (double)loss_n, norm, mt_adamw_lr(r->opt, MT_PART_LANGUAGE), tokens, images,
                     secs, eta, r->dpo_hist ? dpo : NULL, r->grpo_hist ? r->grpo_hist + step * r->grpo_stride : NULL);
        }
        mt_progress_state bar = {.step = step + 1, .total = r->total_steps, .loss = loss_sum / (double)loss_n,
                                 .tokens_per_s = session_tokens / elapsed, .elapsed = elapsed, .eta = eta};
        mt_progress_draw(&r->bar, &bar, log_now || last);
        if (log_now) {
            loss_sum = 0;
            loss_n = 0;
            dpo_sum[0] = dpo_sum[1] = dpo_sum[2] = 0;
        }
        /* every eval_every steps, and at the end: --eval-data alone still evaluates once */
        bool eval_now = r->eval && ((o->eval_every && (step + 1) % o->eval_every == 0) || step + 1 == r->total_steps);
        if (eval_now && r->grpo_eval) {
            int T = mt_rewards_count(r->rewards);
            double *em = r->grpo_eval + r->n_eval * (1 + T);
            if ((st = eval_grpo(r, em, err))) return st;
            r->eval_steps[r->n_eval++] = step + 1;
            mt_progress_clear(&r->bar);
            if (writer) {
                char terms[512] = "";
                for (int k = 0, w = 0; k < T && T > 1 && w >= 0 && (size_t)w < sizeof terms; k++)
                    w += snprintf(terms + w, sizeof terms - (size_t)w, "%s%s %.3f%s", k ? ", " : " (",
                                  mt_rewards_name(r->rewards, k), em[1 + k], k + 1 == T ? ")" : "");
                fprintf(stderr, "step %lld  eval reward %.4f%s  greedy answers to %zu prompts\n", (long long)step + 1,
                        em[0], terms, r->eval->n);
            }
        } else if (eval_now && r->eval_rejected) {
            double em[4];
            if ((st = eval_dpo(r, em, err))) return st;
            r->eval_steps[r->n_eval] = step + 1;
            r->eval_losses[r->n_eval++] = em[0];
            mt_progress_clear(&r->bar);
            if (writer)
                fprintf(stderr, "step %lld  eval loss %.4f  accuracy %.3f  margin %.4f  chosen scores higher on %.0f "
                        "of %zu\n", (long long)step + 1, em[0], em[1], em[2], em[3], r->eval->n);
        } else if (eval_now) {
            double el;
            if ((st = eval_loss(r, &el, err))) return st;
            r->eval_steps[r->n_eval] = step + 1;
            r->eval_losses[r->n_eval++] = el;
            int64_t hit = 0, of = 0;
            if (writer && o->eval_tokens > 0 &&
                (st = mt_eval_exact_match(r->m, r->eval, o->eval_tokens, o->threads, &hit, &of, err)))
                return st;
            mt_progress_clear(&r->bar);
            if (writer)
                fprintf(stderr, "step %lld  eval loss %.4f  exact match %lld/%lld\n", (long long)step + 1, el,
                        (long long)hit, (long long)of);
        }
        /* a long run saves every save_minutes too, so a crash never loses all of it; every rank decides alike */
        bool due = o->save_minutes > 0 && mt_time_now() - t_saved >= o->save_minutes * 60.0;
        if (mt_dist_size() > 1) {
            double d = due ? 1 : 0;
            if ((st = mt_dist_sum_f64(&d, 1, err))) return st;
            due = d > 0;
        }
        if ((o->save_every && (step + 1) % o->save_every == 0) || last || due) {
            t_saved = mt_time_now();
            mt_progress_clear(&r->bar); /* what the save may log goes on a line of its own */
            if (writer) {
                cJSON *state = state_json(r, step + 1);
                st = mt_checkpoint_save(o->out_dir, step + 1, r->params, r->n_params, r->opt, state, o->keep, err);
                cJSON_Delete(state);
                if (!st) write_plot(r, step + 1);
            }
            if ((st = mt_dist_share_status(st, err))) return st;
        }
        if (!r->bar.shown) mt_progress_draw(&r->bar, &bar, true); /* back after an eval or save line */
    }
    return MT_OK;
}

/* GRPO's load check: the sample has the fields its rewards read. */
static mt_status check_reward_fields(void *user, const cJSON *sample, mt_err *err) {
    return mt_rewards_check_sample(user, sample, "a reward's field", err);
}

/* GRPO: each prompt's length, its tokens before the empty answer's (labels.h: the generation prompt ends there). */
static mt_status prompt_lengths(const mt_prepared *set, int64_t **out, mt_err *err) {
    int64_t *len = *out = mt_calloc(set->n + 1, sizeof *len);
    if (!len) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < set->n; i++) {
        const mt_sample_tokens *t = &set->samples[i].tok;
        int64_t k = 0;
        while (k < t->n && t->labels[k] < 0) k++;
        if (k == 0 || k == t->n)
            return mt_err_set(err, MT_ERR_INTERNAL, "line %lld: the prompt has no answer position",
                              (long long)set->samples[i].line);
        len[i] = k;
    }
    return MT_OK;
}

static mt_status setup(run *r, mt_err *err) {
    const mt_train_opts *o = r->o;
    bool talk = mt_dist_rank() == 0; /* one voice for the whole group */
    /* Training computes in f32 throughout: bf16 dot products (auto-on for inference on some CPUs) would round the
     * activations of frozen bf16 weights, and a resumed run would depend on the CPU it resumed on. */
    if (mt_cpu_bf16_dot_mode() == MT_BF16_DOT_AUTO) mt_cpu_set_bf16_dot_mode(MT_BF16_DOT_OFF);
    mt_status st = mt_pool_new(o->threads, &r->pool, err);
    mt_model_params mp = {.video = o->video};
    if (!st) st = mt_model_open_params(o->model_dir, &mp, &r->m, err);
    if (st) return st;
    if (r->m->desc.attention_dropout > 0) /* transformers would drop attention weights in training: so must we */
        return mt_err_set(err, MT_ERR_UNSUPPORTED, "%s/config.json: attention_dropout %g is not supported for training "
                          "(accepted: 0.0; mitten never drops attention weights)", o->model_dir,
                          r->m->desc.attention_dropout);
    mt_dataset_opts dopt = mt_dataset_opts_default();
    dopt.image_dir = o->image_dir;
    dopt.strict = o->strict;
    mt_labels_opts lo = mt_labels_default_opts();
    lo.last_turn_only = o->last_turn_only;
    lo.max_len = o->max_len;
    bool dpo = o->method == MT_TRAIN_DPO, grpo = o->method == MT_TRAIN_GRPO;
    if (grpo) {
        if ((st = mt_grpo_config_check(&o->grpo, err)) || (st = mt_grpo_rewards_make(&o->grpo, &r->rewards, err)))
            return st;
        r->o->grpo.loss.max_completion_tokens = o->grpo.max_new;
        r->o->grpo.loss.temperature = o->grpo.temperature;
        dopt.pref = MT_DATASET_PREF_PROMPT;
        dopt.check_fields = check_reward_fields;
        dopt.check_user = r->rewards;
        lo.last_turn_only = true; /* the empty answer alone: everything before it is the generation prompt */
    }
    if (dpo) {
        if ((st = mt_dpo_config_check(&o->dpo, err))) return st;
        dopt.pref = MT_DATASET_PREF_CHOSEN;
        lo.last_turn_only = true; /* the answer alone is scored, as TRL scores the completion */
    }
    const char *paths[2] = {o->data_path, o->eval_path};
    mt_prepared **dst[2] = {&r->data, &r->eval};
    for (int i = 0; i < 2 && !st; i++) {
        if (!paths[i]) continue;
        mt_dataset *ds = NULL;
        if (talk) fprintf(stderr, "loading %s\n", paths[i]);
        st = mt_dataset_load(paths[i], &dopt, &ds, err);
        if (!st && talk) mt_dataset_log_summary(ds);
        if (!st) st = mt_prepare(r->m, ds, &lo, o->strict, dst[i], err);
        if (!st && talk) mt_labels_stats_print(&(*dst[i])->stats, stderr);
        if (!st && (*dst[i])->n == 0) st = mt_err_set(err, MT_ERR_INVALID_ARG, "%s: no usable sample", paths[i]);
        r->sets[i] = ds;
    }
    /* DPO: the rejected sides, from the same files, their images already checked by the chosen sides' load */
    mt_prepared **rej[2] = {&r->rejected, &r->eval_rejected};
    dopt.pref = MT_DATASET_PREF_REJECTED;
    dopt.check_images = MT_DATASET_CHECK_NONE;
    dopt.quiet_skips = true; /* a pair fails alike on both sides (dataset.h): logged once */
    for (int i = 0; i < 2 && !st && dpo; i++) {
        if (!paths[i]) continue;
        size_t identical = 0;
        st = mt_dataset_load(paths[i], &dopt, &r->sets[2 + i], err);
        if (!st) st = mt_prepare(r->m, r->sets[2 + i], &lo, o->strict, rej[i], err);
        if (!st) st = mt_dpo_pair_up(*dst[i], *rej[i], paths[i], o->strict, &identical, err);
        if (!st && talk)
            fprintf(stderr, "%s: %zu preference pairs (%zu with the same answer twice skipped)\n", paths[i],
                    (*dst[i])->n, identical);
        if (!st && (*dst[i])->n == 0) st = mt_err_set(err, MT_ERR_INVALID_ARG, "%s: no usable pair", paths[i]);
    }
    if (!st && grpo) st = prompt_lengths(r->data, &r->prompt_len, err);
    if (!st && grpo && r->eval) st = prompt_lengths(r->eval, &r->eval_prompt_len, err);
    if (st) return st;
    if (mt_train_spec_default_parts(&r->o->spec, r->m) && talk && r->o->spec.projector)
        fprintf(stderr, "training the projector and the language model%s, the vision tower frozen (%s's fine-tuning "
                "recipe; --train names other parts)\n", o->spec.lora_rank ? " (LoRA)" : "", r->m->comp->name);
    if ((st = mt_trainable_setup(r->m, &o->spec, &r->tr, err))) return st;
    if (talk) mt_trainable_print(r->tr, stderr);
    r->params = mt_trainable_params(r->tr, &r->n_params);
    mt_adamw_config cfg = mt_adamw_config_default();
    cfg.n_groups = 3;
    cfg.groups[MT_PART_VISION] = (mt_adamw_group){o->vision_lr > 0 ? o->vision_lr : o->lr, o->weight_decay};
    cfg.groups[MT_PART_PROJECTOR] = (mt_adamw_group){o->projector_lr > 0 ? o->projector_lr : o->lr, o->weight_decay};
    cfg.groups[MT_PART_LANGUAGE] = (mt_adamw_group){o->lr, o->weight_decay};
    if ((st = mt_adamw_new(r->params, r->n_params, &cfg, &r->opt, err))) return st;
    r->steps_per_epoch = ((int64_t)r->data->n + o->batch - 1) / o->batch;
    r->total_steps = r->steps_per_epoch * o->epochs;
    if (o->max_steps > 0) r->total_steps = MT_MIN(r->total_steps, o->max_steps);
    /* the schedule counts optimizer updates: GRPO takes inner_steps per step */
    int64_t updates = r->total_steps * (grpo ? o->grpo.inner_steps : 1);
    r->sched = mt_schedule_make(o->schedule, mt_schedule_warmup_steps(o->warmup, updates), updates);
    int64_t warm = mt_schedule_warmup_steps(o->warmup, updates);
    if (talk && warm >= updates && o->lr > 0)
        fprintf(stderr, "warning: the warmup (%lld steps) covers the whole run of %lld steps: the learning rate never "
                "reaches --lr %g (more data or epochs, or a smaller --warmup)\n", (long long)warm,
                (long long)r->total_steps, o->lr);
    int64_t n_evals = (o->eval_every ? r->total_steps / o->eval_every : 0) + 2;
    r->order = mt_calloc(r->data->n + 1, sizeof *r->order);
    r->losses = mt_calloc((size_t)r->total_steps + 1, sizeof *r->losses);
    r->eval_steps = mt_calloc((size_t)n_evals, sizeof *r->eval_steps);
    r->eval_losses = mt_calloc((size_t)n_evals, sizeof *r->eval_losses);
    r->eval_cap = n_evals;
    r->order_epoch = -1;
    if (dpo) r->dpo_hist = mt_calloc((size_t)r->total_steps + 1, sizeof *r->dpo_hist);
    if (grpo) {
        r->grpo_stride = GH_FIXED + 2 * mt_rewards_count(r->rewards);
        r->grpo_hist = mt_calloc((size_t)((r->total_steps + 1) * r->grpo_stride), sizeof *r->grpo_hist);
        r->grpo_eval = mt_calloc((size_t)(n_evals * (1 + mt_rewards_count(r->rewards))), sizeof *r->grpo_eval);
    }
    if (!r->order || !r->losses || !r->eval_steps || !r->eval_losses || (dpo && !r->dpo_hist) ||
        (grpo && (!r->grpo_hist || !r->grpo_eval)))
        return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    mt_arena_init(&r->arena, (size_t)64 << 20);
    return mt_tape_new(&r->tape, err);
}

static void teardown(run *r) {
    mt_tape_free(r->tape);
    mt_arena_free(&r->arena);
    mt_adamw_free(r->opt);
    mt_trainable_free(r->tr);
    mt_prepared_free(r->data);
    mt_prepared_free(r->eval);
    mt_prepared_free(r->rejected);
    mt_prepared_free(r->eval_rejected);
    for (size_t i = 0; i < MT_ARRAY_LEN(r->sets); i++) mt_dataset_free(r->sets[i]);
    mt_free(r->ref);
    mt_free(r->dpo_hist);
    mt_free(r->grpo_hist);
    mt_free(r->prompt_len);
    mt_free(r->eval_prompt_len);
    mt_free(r->grpo_eval);
    mt_rewards_free(r->rewards);
    mt_model_close(r->m);
    mt_pool_free(r->pool);
    mt_free(r->order);
    mt_free(r->losses);
    mt_free(r->eval_steps);
    mt_free(r->eval_losses);
}

static mt_status write_args(const mt_train_opts *o, mt_err *err) {
    char path[4096];
    mt_status st = mt_path_join(path, sizeof path, o->out_dir, "train_args.json", err);
    if (st) return st;
    cJSON *j = opts_to_json(o);
    char *text = j ? mt_json_print(j, true) : NULL;
    st = text ? mt_file_write_atomic(path, text, strlen(text), err) : mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    mt_free(text);
    cJSON_Delete(j);
    return st;
}

/* What a new run records to be resumed from anywhere: absolute paths, its id, the data's fingerprints. The strings
 * are owned by keep[] (freed by the caller). */
static mt_status record_run(mt_train_opts *o, char *keep[8], char *run_id, char fp[2][MT_FINGERPRINT_LEN],
                            mt_err *err) {
    const char **paths[] = {&o->model_dir, &o->data_path, &o->image_dir, &o->eval_path, &o->out_dir};
    mt_status st = MT_OK;
    for (size_t i = 0; i < MT_ARRAY_LEN(paths) && !st; i++)
        if (*paths[i] && !(st = mt_path_absolute(*paths[i], &keep[i], err))) *paths[i] = keep[i];
    mt_run_id_new(run_id);
    o->run_id = run_id;
    if (!st && !(st = mt_data_fingerprint(o->data_path, fp[0], err))) o->data_fingerprint = fp[0];
    if (!st && o->eval_path && !(st = mt_data_fingerprint(o->eval_path, fp[1], err))) o->eval_fingerprint = fp[1];
    return st;
}

/* A resumed run's data must be what it started on, unless the user says otherwise. */
static mt_status check_data(const mt_train_opts *o, mt_err *err) {
    const char *paths[2] = {o->data_path, o->eval_path}, *want[2] = {o->data_fingerprint, o->eval_fingerprint};
    for (int i = 0; i < 2; i++) {
        char now[MT_FINGERPRINT_LEN];
        if (!paths[i] || !want[i]) continue;
        mt_status st = mt_data_fingerprint(paths[i], now, err);
        if (st) return st;
        if (strcmp(now, want[i]) == 0) continue;
        if (!o->allow_data_change)
            return mt_err_set(err, MT_ERR_INVALID_ARG, "%s changed since the run started (size:hash %s, was %s): its "
                              "steps and schedule would no longer match the checkpoints; --allow-data-change resumes "
                              "on it anyway", paths[i], now, want[i]);
        mt_log(MT_LOG_INFO, "%s changed since the run started; resuming on it as asked", paths[i]);
    }
    return MT_OK;
}

/* A resumed GRPO run replays the steps after its checkpoint, and the killed run may have logged some of them (and a
 * line cut short): OUT/completions.jsonl keeps its lines up to the first one of a later step, so that the replayed
 * steps are listed once, as in an uninterrupted run. Rewritten whole and atomically: a kill during the trim leaves
 * the file as it was, to be trimmed by the next resume. */
static mt_status trim_completions(const char *out_dir, int64_t step, mt_err *err) {
    char path[4096], *text = NULL;
    size_t len = 0, keep = 0;
    mt_status st = mt_path_join(path, sizeof path, out_dir, "completions.jsonl", err);
    if (st || !mt_file_exists(path)) return st;
    if ((st = mt_file_read_all(path, SIZE_MAX, &text, &len, err))) return st;
    for (char *nl; keep < len && (nl = memchr(text + keep, '\n', len - keep));) {
        cJSON *j = cJSON_ParseWithLength(text + keep, (size_t)(nl - (text + keep)));
        const cJSON *at = cJSON_GetObjectItemCaseSensitive(j, "step");
        bool done = cJSON_IsNumber(at) && at->valuedouble <= (double)step;
        cJSON_Delete(j);
        if (!done) break;
        keep = (size_t)(nl - text) + 1;
    }
    if (keep < len) {
        st = mt_file_write_atomic(path, text, keep, err);
        if (!st) mt_log(MT_LOG_INFO, "%s: the lines of steps after %lld dropped (they are replayed)", path,
                        (long long)step);
    }
    mt_free(text);
    return st;
}

static mt_status export_run(run *r, mt_err *err) {
    char path[4096];
    bool lora = mt_trainable_is_lora(r->tr);
    mt_status st = MT_OK;
    /* the adapter first: it is small, so a disk that fills during the full model still keeps the run's result */
    if (lora && !(st = mt_path_join(path, sizeof path, r->o->out_dir, "adapter", err)))
        st = mt_export_adapter(r->m, &r->o->spec, path, err);
    if (!st) st = mt_path_join(path, sizeof path, r->o->out_dir, "model", err);
    if (!st) st = mt_export_model(r->m, path, err);
    if (!st) fprintf(stderr, "saved %s/model%s\n", r->o->out_dir, lora ? " and adapter" : "");
    return st;
}

mt_status mt_train_run(const mt_train_opts *opts, bool resume, mt_err *err) {
    mt_train_opts o = *opts;
    run r = {.o = &o};
    char *keep[8] = {0}, run_id[MT_RUN_ID_LEN], fp[2][MT_FINGERPRINT_LEN];
    int64_t start = 0;
    int lock = -1;
    mt_status st = mt_dist_init(err);
    bool writer = mt_dist_rank() == 0;
    /* a new run: check the folder, then load everything, and only then write anything */
    if (!st && !resume) st = mt_dist_share_status(writer ? mt_run_dir_check_new(o.out_dir, o.overwrite_output_dir, err) : MT_OK, err);
    if (!st && !resume) st = record_run(&o, keep, run_id, fp, err);
    if (!st && resume && writer) st = mt_run_dir_lock(o.out_dir, &lock, err);
    if (!st && resume) st = mt_dist_share_status(writer ? check_data(&o, err) : MT_OK, err);
    if (!st) st = mt_dist_agree(setup(&r, err), err);
    if (!st && !resume && writer) {
        st = mt_dir_make_all(o.out_dir, err);
        if (!st) st = mt_run_dir_lock(o.out_dir, &lock, err);
        if (!st) st = write_args(&o, err);
    }
    if (!st && !resume) st = mt_dist_share_status(st, err);
    if (!st && resume) {
        char dir[4096];
        st = mt_checkpoint_latest(o.out_dir, o.run_id, dir, sizeof dir, &start, err);
        if (!st && start < 0) start = 0;
        if (!st && start > 0) {
            cJSON *state = NULL;
            st = mt_checkpoint_load(dir, r.params, r.n_params, r.opt, &state, &start, err);
            if (!st) st = restore_state(&r, state, start, err);
            cJSON_Delete(state);
            if (!st && writer) fprintf(stderr, "resuming from %s (step %lld)\n", dir, (long long)start);
        }
    }
    if (!st && resume && writer && o.method == MT_TRAIN_GRPO) st = trim_completions(o.out_dir, start, err);
    if (resume) st = mt_dist_agree(st, err);
    if (!st && o.method == MT_TRAIN_DPO) st = mt_dist_agree(reference_logps(&r, start, err), err);
    if (!st) st = train_loop(&r, start, err);
    mt_progress_end(&r.bar);
    if (!st && writer) st = export_run(&r, err);
    if (!st) st = mt_dist_share_status(st, err);
    teardown(&r);
    mt_run_dir_unlock(lock);
    for (size_t i = 0; i < MT_ARRAY_LEN(keep); i++) mt_free(keep[i]);
    mt_dist_finalize();
    return st;
}
