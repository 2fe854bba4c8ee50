/* mitten train / merge: supervised fine-tuning or DPO of a checkpoint folder on image-text conversations or
 * preference pairs, and folding a LoRA adapter back into a full model folder. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "mitten.h"
#include "models/model.h"
#include "train/export.h"
#include "train/run_dir.h"
#include "train/trainer.h"

/* --reward-cmd CMD as the term cmd=CMD, kept in owned[] (freed by the caller). */
static const char *cmd_spec(const char *cmd, char **owned, int *n_owned) {
    size_t n = strlen(cmd) + 5;
    char *s = *n_owned < MT_REWARD_MAX_TERMS ? mt_malloc(n) : NULL;
    if (s) snprintf(s, n, "cmd=%s", cmd);
    if (s) owned[(*n_owned)++] = s;
    return s;
}

static const char train_usage[] =
    "usage: mitten train -m DIR --data FILE --out DIR [options]\n"
    "       mitten train --resume OUT_DIR\n\n"
    "Instruction-tunes the model on conversations with images and videos (LLaVA / LLaVA-Video JSON, or messages +\n"
    "images / videos as LLaMA-Factory / ShareGPT; .json or .jsonl). Only assistant turns are supervised. OUT gets checkpoint-STEP/ folders, loss.svg,\n"
    "model/ (a Hugging Face folder) and, with LoRA, adapter/ (PEFT).\n\n"
    "--method dpo trains on preference pairs instead: LLaMA-Factory's (conversations or messages, then \"chosen\"\n"
    "and \"rejected\" answers) or TRL's ({prompt, chosen, rejected}), with images. The reference is the initial\n"
    "model (with LoRA: the base), scored once before step 1 into OUT/ref_logps.json. --eval-data takes held-out\n"
    "pairs: eval loss, reward accuracy, margin and the pairs whose chosen answer scores higher.\n\n"
    "--method grpo trains on prompts (conversations / messages ending with the user's turn, or TRL's {prompt},\n"
    "with images; other fields such as \"answer\" or \"box\" are kept for the rewards): each step samples --group\n"
    "answers per prompt with the model being trained, scores them with the rewards, and takes --inner-steps\n"
    "updates of the clipped objective with a KL to the initial model (with LoRA: the base) as DeepSeekMath and TRL's\n"
    "GRPOTrainer. OUT/trainer_state.json keeps the rewards, KL, clip fractions and lengths of each step.\n"
    "--eval-data takes held-out prompts: each evaluation answers them greedily (--max-new tokens) and logs the\n"
    "mean reward, per term too (trainer_state.json: grpo_eval).\n\n"
    "options:\n"
    "  --method M           sft (default), dpo or grpo\n"
    "  --loss L             DPO loss: sigmoid (default), ipo, hinge (TRL's DPOTrainer formulas)\n"
    "  --beta B             DPO beta (default 0.1)   --label-smoothing S (sigmoid only; default 0)\n"
    "  --sft-weight W       adds W * the chosen answers' mean token NLL (MPO / RPO; default 0)\n"
    "  --reward SPEC        GRPO reward term NAME[@WEIGHT][=ARG], repeatable: answer (the final answer equals the\n"
    "                       sample's \"answer\"), regex=P, format (<think>...</think> then an answer), json[=SCHEMA],\n"
    "                       iou (with the sample's \"box\"), cmd=CMD; the reward is their weighted sum\n"
    "  --reward-cmd CMD     the term cmd=CMD: runs CMD with {prompt, completion, sample} JSON on stdin, reads a\n"
    "                       number; a failure, garbage or a timeout scores 0 with a warning\n"
    "  --reward-timeout S   seconds a reward command may run (default 10)\n"
    "  --group G            GRPO answers per prompt (default 8)   --max-new N tokens per answer (default 256)\n"
    "  --temperature T      (default 1)     --top-p P (default 1)\n"
    "  --loss-type L        grpo (default), dr_grpo, bnpo   --beta B: the KL weight (GRPO default 0.04; 0: no\n"
    "                       reference pass)   --epsilon E (default 0.2)   --epsilon-high E (default: --epsilon)\n"
    "  --scale-rewards S    group (default: advantages divided by the group's std) or none\n"
    "  --inner-steps N      optimizer updates per batch of rollouts (default 1)\n"
    "  --log-completions N  write N completions per step to OUT/completions.jsonl (default 0)\n"
    "  --data FILE          training data\n"
    "  --eval-data FILE     held-out data: eval loss and exact-match answers every --eval-every steps, and at the\n"
    "                       end of the run\n"
    "  --eval-every N       evaluate every N steps (default 0: at the end only)\n"
    "  --eval-tokens N      new tokens per exact-match answer (default 64; 0: loss only)\n"
    "  --image-dir DIR      where relative image and video paths start (default: the data file's folder)\n"
    "  --video-fps N        video frames sampled per second (default 2; a folder of frames: the rate they were taken)\n"
    "  --video-max-frames N at most N frames of a video (default min(768, its frames))\n"
    "  --video-max-pixels N each video frame at most N pixels (default: qwen-vl-utils' 768 * 28^2, lowered for long\n"
    "                       videos): fewer tokens\n"
    "  --train PARTS        comma list of vision, projector, llm (default llm; InternVL: projector,llm)\n"
    "  --train-router       MoE routers train too, or get adapters with --lora (default: frozen)\n"
    "  --lora R             LoRA rank on the language model (default 0: full fine-tuning)\n"
    "  --lora-alpha A       (default 2R)   --lora-dropout P (default 0)   --lora-targets LIST (default all-linear)\n"
    "  --epochs N           (default 1)    --max-steps N (default: the epochs decide)\n"
    "  --batch N            samples per optimizer step, all processes together (default 8)\n"

    "  --lr LR              (default 1e-4)  --vision-lr LR, --projector-lr LR (default: --lr)\n"
    "  --weight-decay W     (default 0)     --warmup W: steps, or a ratio below 1 (default 0.03)\n"
    "  --schedule KIND      cosine, linear, constant, constant_with_warmup (default cosine)\n"
    "  --max-grad-norm N    gradient clipping (default 1.0; 0 turns it off)\n"
    "  --max-len N          truncate samples to N tokens (never inside an image; default: no limit)\n"
    "  --last-turn-only     supervise only the last assistant turn of each sample\n"
    "  --strict             stop at the first bad sample instead of skipping it\n"
    "  --save-every N       checkpoint every N steps (default: only at the end)   --keep N (default 3)\n"
    "  --save-minutes M     checkpoint also when M minutes passed since the last one (default 30; 0: off)\n"
    "  --log-every N        (default 1)     --seed S (default 42)   --threads N (default: all CPUs)\n"
    "  --overwrite-output-dir  write into a non-empty OUT (nothing mitten did not write is ever deleted)\n"
    "  --resume OUT_DIR     continue a run from its newest checkpoint, exactly as if never stopped; its settings\n"
    "                       come from OUT_DIR/train_args.json, and only --epochs, --max-steps, --threads,\n"
    "                       --log-every, --save-every, --save-minutes, --keep and --allow-data-change may be given\n"
    "  --allow-data-change  with --resume: continue although a data file changed since the run started\n";

static const char merge_usage[] =
    "usage: mitten merge -m BASE_DIR --adapter ADAPTER_DIR --out OUT_DIR\n\n"
    "Folds a LoRA adapter (PEFT folder: adapter_config.json, adapter_model.safetensors) into the base model and\n"
    "writes a full Hugging Face folder (OUT_DIR is made, with its parents).\n";

static bool parse_parts(const char *list, mt_train_spec *spec) {
    spec->vision = spec->projector = spec->language = false;
    spec->parts_given = true;
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, ",");
        if (n == 6 && !strncmp(p, "vision", n)) spec->vision = true;
        else if (n == 9 && !strncmp(p, "projector", n)) spec->projector = true;
        else if (n == 3 && !strncmp(p, "llm", n)) spec->language = true;
        else return false;
        p += n + (p[n] == ',');
    }
    return spec->vision || spec->projector || spec->language;
}

static bool num_opt(mt_cli_args *a, const char *name, double lo, double hi, double *out, int *bad) {
    const char *v;
    if (!mt_cli_opt(a, name, &v, bad)) return false;
    float f;
    if (!*bad && !mt_cli_parse_f32(v, (float)lo, (float)hi, &f)) {
        mt_cli_usage(train_usage, "%s: \"%s\" is not a number in [%g, %g]", name, v, lo, hi);
        *bad = 1;
    }
    *out = f;
    return true;
}

static bool int_opt(mt_cli_args *a, const char *name, int64_t lo, int64_t hi, int64_t *out, int *bad) {
    const char *v;
    if (!mt_cli_opt(a, name, &v, bad)) return false;
    if (!*bad && !mt_cli_parse_i64(v, lo, hi, out)) {
        mt_cli_usage(train_usage, "%s: \"%s\" is not an integer in [%lld, %lld]", name, v, (long long)lo,
                     (long long)hi);
        *bad = 1;
    }
    return true;
}

/* The flags a resume may change: they move no checkpoint out of step with the run. */
static bool resume_may_set(const char *flag) {
    static const char *const ok[] = {"--resume", "--epochs", "--max-steps", "--threads", "--log-every", "--save-every",
                                     "--save-minutes", "--keep", "--allow-data-change"};
    for (size_t i = 0; i < MT_ARRAY_LEN(ok); i++)
        if (strcmp(flag, ok[i]) == 0) return true;
    return false;
}

/* With --resume: the run's own options, then the flags given that may change. */
static int resume_run(const char *dir, int argc, char **argv, const mt_train_opts *given, const bool *set) {
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-m") == 0 || (argv[i][0] == '-' && argv[i][1] == '-' && !resume_may_set(argv[i])))
            return mt_cli_usage(train_usage, "--resume takes the run's settings from %s/train_args.json: %s cannot "
                                "change on resume (start a new run in a new folder instead)", dir, argv[i]);
    mt_err err = {0};
    mt_train_opts o;
    cJSON *json = NULL;
    if (mt_train_opts_load(dir, &o, &json, &err)) return mt_cli_fail(&err);
    /* set[]: epochs, max_steps, threads, log_every, save_every, save_minutes, keep, allow_data_change */
    if (set[0]) o.epochs = given->epochs;
    if (set[1]) o.max_steps = given->max_steps;
    if (set[2]) o.threads = given->threads;
    if (set[3]) o.log_every = given->log_every;
    if (set[4]) o.save_every = given->save_every;
    if (set[5]) o.save_minutes = given->save_minutes;
    if (set[6]) o.keep = given->keep;
    o.allow_data_change = given->allow_data_change;
    if (set[0] || set[1])
        fprintf(stderr, "resume: %s now decides the steps; the learning-rate schedule follows the new total\n",
                set[0] ? "--epochs" : "--max-steps");
    mt_status st = mt_train_run(&o, true, &err);
    cJSON_Delete(json);
    return st ? mt_cli_fail(&err) : MT_EXIT_OK;
}

/* The command; owned[] gets the strings it makes for the options (freed by mt_cmd_train, whatever the exit). */
static int train_cmd(int argc, char **argv, char **owned, int *n_owned) {
    if (mt_cli_help(argc, argv)) return printf("%s", train_usage), MT_EXIT_OK;
    mt_train_opts o = mt_train_opts_default();
    o.model_dir = NULL;
    const char *parts = NULL, *sched = NULL, *resume = NULL, *method = NULL, *loss = NULL, *loss_type = NULL;
    const char *scale = NULL, *spec = NULL;
    bool dpo_set = false, grpo_set = false, beta_set = false, eps_high_set = false;
    int64_t group = o.grpo.group, inner = o.grpo.inner_steps, log_completions = 0;
    double beta = 0, eps_high = 0;
    double alpha = -1, dropout = 0;
    int64_t rank = 0, epochs = 1, batch = o.batch, keep = o.keep, threads = 0, log_every = 1, seed = 42;
    int bad = 0;
    bool set[7] = {false};
    for (mt_cli_args a = {argc, argv, 1}; a.i < argc && !bad; a.i++) {
        if (mt_cli_opt(&a, "-m", &o.model_dir, &bad) || mt_cli_opt(&a, "--data", &o.data_path, &bad) ||
            mt_cli_opt(&a, "--out", &o.out_dir, &bad) || mt_cli_opt(&a, "--eval-data", &o.eval_path, &bad) ||
            mt_cli_opt(&a, "--image-dir", &o.image_dir, &bad) || mt_cli_opt(&a, "--train", &parts, &bad) ||
            mt_cli_opt(&a, "--lora-targets", &o.spec.lora_targets, &bad) ||
            mt_cli_opt(&a, "--schedule", &sched, &bad) || mt_cli_opt(&a, "--resume", &resume, &bad) ||
            mt_cli_opt(&a, "--method", &method, &bad))
            continue;
        if (num_opt(&a, "--beta", 0, 1e6, &beta, &bad)) {
            beta_set = true;
            continue;
        }
        if (num_opt(&a, "--epsilon-high", 0, 1e6, &eps_high, &bad)) {
            eps_high_set = grpo_set = true;
            continue;
        }
        bool cmd = false;
        if (mt_cli_opt(&a, "--reward", &spec, &bad) || (cmd = mt_cli_opt(&a, "--reward-cmd", &spec, &bad))) {
            if (!bad && (o.grpo.n_rewards == MT_REWARD_MAX_TERMS || (cmd && !(spec = cmd_spec(spec, owned, n_owned)))))
                return mt_cli_usage(train_usage, "at most %d rewards", MT_REWARD_MAX_TERMS);
            if (!bad) o.grpo.rewards[o.grpo.n_rewards++] = spec;
            grpo_set = true;
            continue;
        }
        if (mt_cli_opt(&a, "--loss-type", &loss_type, &bad) || mt_cli_opt(&a, "--scale-rewards", &scale, &bad) ||
            int_opt(&a, "--group", 2, 1 << 16, &group, &bad) ||
            int_opt(&a, "--max-new", 1, 1 << 24, &o.grpo.max_new, &bad) ||
            int_opt(&a, "--inner-steps", 1, 1 << 16, &inner, &bad) ||
            int_opt(&a, "--log-completions", 0, 1 << 20, &log_completions, &bad) ||
            num_opt(&a, "--temperature", 1e-3, 100, &o.grpo.temperature, &bad) ||
            num_opt(&a, "--top-p", 1e-6, 1, &o.grpo.top_p, &bad) ||
            num_opt(&a, "--epsilon", 0, 0.999, &o.grpo.loss.eps_low, &bad) ||
            num_opt(&a, "--reward-timeout", 1e-3, 1e6, &o.grpo.reward_timeout, &bad)) {
            grpo_set = true;
            continue;
        }
        if (mt_cli_opt(&a, "--loss", &loss, &bad) ||
            num_opt(&a, "--label-smoothing", 0, 0.499, &o.dpo.label_smoothing, &bad) ||
            num_opt(&a, "--sft-weight", 0, 1e6, &o.dpo.sft_weight, &bad)) {
            dpo_set = true;
            continue;
        }
        if (int_opt(&a, "--lora", 0, 4096, &rank, &bad) || int_opt(&a, "--epochs", 1, 100000, &epochs, &bad) ||
            int_opt(&a, "--batch", 1, 1 << 20, &batch, &bad) || int_opt(&a, "--keep", 0, 1 << 20, &keep, &bad) ||
            int_opt(&a, "--threads", 0, 4096, &threads, &bad) ||
            int_opt(&a, "--log-every", 0, INT64_MAX, &log_every, &bad) ||
            int_opt(&a, "--seed", 0, INT64_MAX, &seed, &bad))
            continue;
        if (num_opt(&a, "--save-minutes", 0, 1e7, &o.save_minutes, &bad)) {
            set[5] = true;
            continue;
        }
        if (int_opt(&a, "--max-steps", 0, INT64_MAX, &o.max_steps, &bad) ||
            int_opt(&a, "--max-len", 0, INT64_MAX, &o.max_len, &bad) ||
            int_opt(&a, "--save-every", 0, INT64_MAX, &o.save_every, &bad) ||
            int_opt(&a, "--eval-every", 0, INT64_MAX, &o.eval_every, &bad) ||
            int_opt(&a, "--eval-tokens", 0, 1 << 20, &o.eval_tokens, &bad) ||
            int_opt(&a, "--video-max-frames", 2, 1 << 20, &o.video.max_frames, &bad) ||
            int_opt(&a, "--video-max-pixels", 1, (int64_t)1 << 40, &o.video.max_pixels, &bad) ||
            num_opt(&a, "--video-fps", 1e-3, 1000, &o.video.fps, &bad))
            continue;
        if (num_opt(&a, "--lr", 0, 10, &o.lr, &bad) || num_opt(&a, "--vision-lr", 0, 10, &o.vision_lr, &bad) ||
            num_opt(&a, "--projector-lr", 0, 10, &o.projector_lr, &bad) ||
            num_opt(&a, "--weight-decay", 0, 10, &o.weight_decay, &bad) ||
            num_opt(&a, "--warmup", 0, 1e9, &o.warmup, &bad) ||
            num_opt(&a, "--max-grad-norm", 0, 1e9, &o.max_grad_norm, &bad) ||
            num_opt(&a, "--lora-alpha", 0, 1e6, &alpha, &bad) ||
            num_opt(&a, "--lora-dropout", 0, 0.999, &dropout, &bad))
            continue;
        if (mt_cli_flag(&a, "--overwrite-output-dir")) o.overwrite_output_dir = true;
        else if (mt_cli_flag(&a, "--allow-data-change")) o.allow_data_change = true;
        else if (mt_cli_flag(&a, "--last-turn-only")) o.last_turn_only = true;
        else if (mt_cli_flag(&a, "--strict")) o.strict = true;
        else if (mt_cli_flag(&a, "--train-router")) o.spec.train_router = true;
        else return mt_cli_usage(train_usage, "unknown option %s", argv[a.i]);
    }
    if (bad) return MT_EXIT_USAGE;
    mt_err err = {0};
    if (resume) {
        mt_train_opts given = o;
        given.epochs = (int)epochs;
        given.threads = (int)threads;
        given.log_every = log_every;
        given.keep = (int)keep;
        for (int i = 1; i < argc; i++) {
            static const char *const names[] = {"--epochs", "--max-steps", "--threads", "--log-every", "--save-every"};
            for (int k = 0; k < 5; k++) set[k] |= strcmp(argv[i], names[k]) == 0;
            set[6] |= strcmp(argv[i], "--keep") == 0;
        }
        return resume_run(resume, argc, argv, &given, set);
    }
    if (o.allow_data_change) return mt_cli_usage(train_usage, "--allow-data-change goes with --resume");
    if (!o.model_dir) o.model_dir = mt_cli_default_model();
    if (!o.data_path || !o.out_dir) return mt_cli_usage(train_usage, "--data and --out are required");
    if (parts && !parse_parts(parts, &o.spec))
        return mt_cli_usage(train_usage, "--train: \"%s\" is not a comma list of vision, projector, llm", parts);
    if (sched && mt_schedule_parse_kind(sched, &o.schedule, &err)) return mt_cli_usage(train_usage, "%s", err.msg);
    if (method && strcmp(method, "sft") && strcmp(method, "dpo") && strcmp(method, "grpo"))
        return mt_cli_usage(train_usage, "--method: \"%s\" is not sft, dpo or grpo", method);
    if (method && !strcmp(method, "dpo")) o.method = MT_TRAIN_DPO;
    if (method && !strcmp(method, "grpo")) o.method = MT_TRAIN_GRPO;
    if (dpo_set && o.method != MT_TRAIN_DPO)
        return mt_cli_usage(train_usage, "--loss, --label-smoothing and --sft-weight go with --method dpo");
    if (grpo_set && o.method != MT_TRAIN_GRPO)
        return mt_cli_usage(train_usage, "--reward, --reward-cmd, --group, --max-new, --temperature, --top-p, "
                            "--loss-type, --epsilon, --scale-rewards, --inner-steps and --log-completions go with "
                            "--method grpo");
    if (beta_set && o.method == MT_TRAIN_SFT) return mt_cli_usage(train_usage, "--beta goes with --method dpo or grpo");
    if (beta_set && o.method == MT_TRAIN_DPO && beta < 1e-6)
        return mt_cli_usage(train_usage, "--beta %g: DPO's beta must be above 0", beta);
    if (beta_set) *(o.method == MT_TRAIN_DPO ? &o.dpo.beta : &o.grpo.loss.beta) = beta;
    o.grpo.loss.eps_high = eps_high_set ? eps_high : o.grpo.loss.eps_low;
    o.grpo.group = (int)group;
    o.grpo.inner_steps = (int)inner;
    o.grpo.log_completions = (int)log_completions;
    if (scale && strcmp(scale, "group") && strcmp(scale, "none"))
        return mt_cli_usage(train_usage, "--scale-rewards: \"%s\" is not group or none", scale);
    if (scale) o.grpo.scale_rewards = !strcmp(scale, "group");
    if (loss_type && mt_grpo_loss_type_parse(loss_type, &o.grpo.loss.type, &err))
        return mt_cli_usage(train_usage, "%s", err.msg);
    if (o.method == MT_TRAIN_GRPO && mt_grpo_config_check(&o.grpo, &err))
        return mt_cli_usage(train_usage, "%s", err.msg);
    if (loss && mt_dpo_loss_parse(loss, &o.dpo.loss, &err)) return mt_cli_usage(train_usage, "%s", err.msg);
    if (o.method == MT_TRAIN_DPO && mt_dpo_config_check(&o.dpo, &err)) return mt_cli_usage(train_usage, "%s", err.msg);
    if (rank > 0 && !o.spec.language)
        return mt_cli_usage(train_usage, "--lora %lld adapts the language model: add llm to --train (the other parts "
                            "then train fully), or drop --lora", (long long)rank);
    o.spec.lora_rank = (int)rank;
    o.spec.lora_alpha = alpha >= 0 ? (float)alpha : 2.0f * (float)rank;
    o.spec.lora_dropout = (float)dropout;
    o.epochs = (int)epochs;
    o.batch = (int)batch;
    o.keep = (int)keep;
    o.threads = (int)threads;
    o.log_every = log_every;
    o.seed = (uint64_t)seed;
    return mt_train_run(&o, false, &err) ? mt_cli_fail(&err) : MT_EXIT_OK;
}

int mt_cmd_train(int argc, char **argv) {
    char *owned[MT_REWARD_MAX_TERMS];
    int n_owned = 0;
    int rc = train_cmd(argc, argv, owned, &n_owned);
    for (int i = 0; i < n_owned; i++) mt_free(owned[i]);
    return rc;
}

int mt_cmd_merge(int argc, char **argv) {
    if (mt_cli_help(argc, argv)) return printf("%s", merge_usage), MT_EXIT_OK;
    const char *base = NULL, *adapter = NULL, *out = NULL;
    int bad = 0;
    for (mt_cli_args a = {argc, argv, 1}; a.i < argc && !bad; a.i++) {
        if (mt_cli_opt(&a, "-m", &base, &bad) || mt_cli_opt(&a, "--adapter", &adapter, &bad) ||
            mt_cli_opt(&a, "--out", &out, &bad))
            continue;
        return mt_cli_usage(merge_usage, "unknown option %s", argv[a.i]);
    }
    if (bad) return MT_EXIT_USAGE;
    if (!base || !adapter || !out) return mt_cli_usage(merge_usage, "-m, --adapter and --out are required");
    mt_err err = {0};
    char *paths[3] = {NULL, NULL, NULL};
    const char *given[3] = {base, adapter, out}, *what[2] = {"the base model", "the adapter"};
    for (int i = 0; i < 3; i++)
        if (mt_path_absolute(given[i], &paths[i], &err)) {
            for (int k = 0; k < i; k++) mt_free(paths[k]);
            return mt_cli_fail(&err);
        }
    for (int i = 0; i < 2 && !err.msg[0]; i++)
        if (strcmp(paths[i], paths[2]) == 0)
            mt_err_set(&err, MT_ERR_INVALID_ARG, "--out %s is %s: merge writes a new folder and never overwrites "
                       "its inputs", out, what[i]);
    for (int i = 0; i < 3; i++) mt_free(paths[i]);
    if (err.msg[0]) return mt_cli_fail(&err);
    mt_model *m = NULL;
    mt_trainable *t = NULL;
    mt_train_spec spec = mt_train_spec_default();
    spec.language = false;
    spec.lora_all_parts = true; /* the adapter says where it applies, as PEFT reads it */
    const size_t cap = (size_t)1 << 20;
    char *targets = mt_malloc(cap);
    mt_status st = targets ? mt_adapter_read_config(adapter, &spec, targets, cap, &err)
                           : mt_err_set(&err, MT_ERR_NOMEM, "out of memory");
    if (!st) st = mt_model_open(base, &m, &err);
    if (!st) st = mt_adapter_saved_parts(m, adapter, &spec, &err);
    if (!st) st = mt_trainable_setup(m, &spec, &t, &err);
    if (!st) st = mt_adapter_load(m, &spec, adapter, &err);
    if (!st) st = mt_export_model(m, out, &err);
    if (!st) fprintf(stderr, "merged %s into %s\n", adapter, out);
    mt_trainable_free(t);
    mt_model_close(m);
    mt_free(targets);
    return st ? mt_cli_fail(&err) : MT_EXIT_OK;
}
