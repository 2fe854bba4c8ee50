/* bench_train: training-step throughput, time split and peak memory of mitten's trainer on one batch, the figures
 * bench/bench_train_ref.py measures for PyTorch on the same model, data and batch (bench/bench_train.sh runs both
 * and prints the ratios; docs/PERFORMANCE.md, "Training", keeps the results).
 *
 *     bench_train MODEL_DIR IMAGE [--mode full|lora] [--threads T] [--batch B] [--steps S] [--warmup W]
 *                 [--user U] [--assistant A] [--json OUT]
 *
 * The step, the batch and the work counted are tools/bench_train_step.h's (`mitten bench --train` runs the same
 * step). Phases timed:
 *
 *   | phase     | timed                                                                                     |
 *   |-----------|-------------------------------------------------------------------------------------------|
 *   | data      | image file decode + the model's processor (resize, normalise, patchify), per sample          |
 *   | vision    | token embeddings + encode_image (vision tower and merger) + scatter into the image rows   |
 *   | lm        | the language model to the logits of every row                                             |
 *   | loss      | cross-entropy over the vocabulary                                                         |
 *   | backward  | the autograd tape walked back                                                             |
 *   | optimizer | zero grads, clip to norm 1, AdamW (lr 1e-5, weight decay 0.01 on tensors of 2+ dims)      |
 *
 * The share of the machine's peak (mt_roofline_measure, f32 FMA) uses the executed work.
 *
 * The figures are those of the fastest timed step (on a shared machine other processes only ever slow a step down).
 * Peak RSS is getrusage's ru_maxrss for the whole process (weights mapped from the file count once touched).
 *
 * Shape legend: N tokens of a sample, P patches of the image, V vocabulary, H text hidden.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "bench_train_step.h"
#include "tensor/cpu/cpu.h"
#include "tensor/cpu/roofline.h"

typedef struct opts {
    mt_train_bench_opts step;
    const char *json;
    int threads, steps, warmup;
} opts;

static double peak_rss_mib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

static int usage(void) {
    fprintf(stderr, "usage: bench_train MODEL_DIR IMAGE [--mode full|lora] [--threads T] [--batch B] [--steps S]\n"
                    "                   [--warmup W] [--user U] [--assistant A] [--json OUT]\n");
    return 2;
}

static bool parse(int argc, char **argv, opts *o) {
    *o = (opts){.step = {.batch = 2, .user = 30, .assistant = 224}, .threads = 2, .steps = 2, .warmup = 1};
    if (argc < 3) return false;
    o->step.model = argv[1];
    o->step.image = argv[2];
    for (int i = 3; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--mode") && (!strcmp(v, "full") || !strcmp(v, "lora"))) o->step.lora = !strcmp(v, "lora");
        else if (!strcmp(k, "--threads")) o->threads = atoi(v);
        else if (!strcmp(k, "--batch")) o->step.batch = atoi(v);
        else if (!strcmp(k, "--steps")) o->steps = atoi(v);
        else if (!strcmp(k, "--warmup")) o->warmup = atoi(v);
        else if (!strcmp(k, "--user")) o->step.user = atoll(v);
        else if (!strcmp(k, "--assistant")) o->step.assistant = atoll(v);
        else if (!strcmp(k, "--json")) o->json = v;
        else return false;
    }
    return (argc - 3) % 2 == 0 && o->threads >= 1 && o->step.batch >= 1 &&
           o->step.batch <= MT_TRAIN_BENCH_MAX_BATCH && o->steps >= 1 && o->warmup >= 0 && o->step.user >= 1 &&
           o->step.assistant >= 1;
}

static void print_json(FILE *f, const opts *o, const mt_train_bench_info *in, const mt_train_bench_phases *ph,
                       const double *losses, int n_losses, const mt_roofline *rf, double rss0, double rss_loaded) {
    fprintf(f, "{\n \"side\": \"mitten\",\n \"mode\": \"%s\",\n \"threads\": %d,\n \"isa\": \"%s\",\n",
            o->step.lora ? "lora" : "full", o->threads, mt_cpu_level_name(mt_cpu_level_get()));
    fprintf(f, " \"weights\": \"%s\",\n \"batch\": %d,\n \"tokens\": %lld,\n \"image_tokens\": %lld,\n",
            mt_dtype_name(in->weights), o->step.batch, (long long)in->tokens, (long long)in->image_tokens);
    fprintf(f, " \"supervised\": %lld,\n \"trained_params\": %zu,\n \"steps\": %d,\n \"losses\": [",
            (long long)in->supervised, in->trained_params, o->steps);
    for (int i = 0; i < n_losses; i++) fprintf(f, "%s%.8f", i ? ", " : "", losses[i]);
    fprintf(f, "],\n \"time\": {\"data\": %.6f, \"vision\": %.6f, \"lm\": %.6f, \"loss\": %.6f, \"backward\": %.6f, "
               "\"optimizer\": %.6f, \"total\": %.6f},\n", ph->data, ph->vision, ph->lm, ph->loss,
            ph->backward, ph->optimizer, ph->total);
    fprintf(f, " \"tokens_per_s\": %.3f,\n \"samples_per_s\": %.4f,\n \"step_gflop\": %.2f,\n \"gflops\": %.2f,\n",
            (double)in->tokens / ph->total, o->step.batch / ph->total, in->flop / 1e9, in->flop / ph->total / 1e9);
    fprintf(f, " \"executed_gflop\": %.2f,\n \"executed_gflops\": %.2f,\n", in->executed / 1e9,
            in->executed / ph->total / 1e9);
    fprintf(f, " \"peak_gflops\": %.2f,\n \"share_of_peak\": %.4f,\n", rf->f32_gflops,
            in->executed / ph->total / 1e9 / rf->f32_gflops);
    fprintf(f, " \"rss_start_mib\": %.1f,\n \"rss_loaded_mib\": %.1f,\n \"peak_rss_mib\": %.1f\n}\n", rss0,
            rss_loaded, peak_rss_mib());
}

int main(int argc, char **argv) {
    opts o;
    if (!parse(argc, argv, &o)) return usage();
    double rss0 = peak_rss_mib();
    mt_err err = {0};
    mt_roofline rf = {0};
    mt_pool *pool = NULL;
    mt_train_bench *B = NULL;
    mt_status st = mt_pool_new(o.threads, &pool, &err);
    if (!st) st = mt_train_bench_open(&o.step, pool, &B, &err);
    if (!st) st = mt_roofline_measure(pool, 0, &rf, &err);
    double rss_loaded = peak_rss_mib();
    double losses[256];
    int n_losses = 0;
    mt_train_bench_phases best = {0};
    for (int i = 0; i < o.warmup + o.steps && !st; i++) {
        mt_train_bench_phases ph;
        double loss;
        if ((st = mt_train_bench_step(B, &ph, &loss, &err))) break;
        if (n_losses < 256) losses[n_losses++] = loss;
        fprintf(stderr, "mitten step %d: loss %.6f  %.2f s (data %.2f vision %.2f lm %.2f loss %.2f backward %.2f "
                        "optimizer %.2f)\n", i + 1, loss, ph.total, ph.data, ph.vision, ph.lm, ph.loss, ph.backward,
                ph.optimizer);
        if (i >= o.warmup && (i == o.warmup || ph.total < best.total)) best = ph;
    }
    if (!st) {
        mt_train_bench_info in = mt_train_bench_info_of(B);
        print_json(stdout, &o, &in, &best, losses, n_losses, &rf, rss0, rss_loaded);
        FILE *f = o.json ? fopen(o.json, "w") : NULL;
        if (f) {
            print_json(f, &o, &in, &best, losses, n_losses, &rf, rss0, rss_loaded);
            fclose(f);
        }
    } else {
        fprintf(stderr, "bench_train: %s\n", err.msg);
    }
    mt_train_bench_close(B);
    mt_pool_free(pool);
    return st ? 1 : 0;
}
