/* mitten perplexity: how well a model predicts a fixed text, as llama.cpp's llama-perplexity measures it, and with
 * --base how far a (quantized) model's predictions are from another's on the same windows (llama-perplexity
 * --kl-divergence reports the like). Text only; the forward is the engine's prefill with every position's logits. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "base/json.h"
#include "cli.h"
#include "engine/session.h"
#include "io/npy.h"

static const char usage[] =
    "usage: mitten perplexity [-m MODEL] (--file TEXT | --ids IDS.npy) [--ctx N] [--stride N] [--base MODEL2]\n"
    "                         [--threads N] [--json]\n\n"
    "Perplexity of MODEL (a folder or a .gguf) on a text: exp of the mean negative log-likelihood of the scored\n"
    "tokens, each from the model's logits (log-softmax in double precision).\n"
    "  --file TEXT   the text, tokenized with the model's tokenizer as it is (special tokens written in it, such as\n"
    "                <|im_start|>, are those tokens; no BOS or EOS is added); - reads stdin\n"
    "  --ids IDS.npy int64 or int32 [L] token ids instead of a text\n"
    "  --ctx N       tokens per window (default 512); each window is a fresh sequence from position 0. A text shorter\n"
    "                than N tokens is one window of all its tokens.\n"
    "  --stride N    tokens between window starts (default: --ctx). With the default the windows do not overlap\n"
    "                and each scores its second half, as llama-perplexity: the tokens at window positions N/2+1 to\n"
    "                N-1, each predicted from the tokens before it, so every scored token has at least N/2 of\n"
    "                context. A stride S of at most N/2 overlaps the windows instead, and each scores its last S\n"
    "                tokens: each token once, with N-S of context. Tokens after the last whole window are not read.\n"
    "  --base MODEL2 run the same windows through MODEL2 too (a model with the same vocabulary, f32 or bf16 say)\n"
    "                and report its perplexity, the ratio, the KL divergence base||model per scored token (mean,\n"
    "                99th percentile, max), how often both rank the same token first, and the largest |logit\n"
    "                difference| of a scored position over the base's logit range at that position\n"
    "  --threads N   threads (default: one per CPU)\n"
    "  --json        the results as one JSON object on stdout\n"
    "Progress goes to stderr, one line per window. Exit codes: 0 done, 1 a model, file or text failed, 2 usage.\n";

typedef struct ppl_run {
    mt_model *m;
    mt_session *s;
    const char *name;
    double nll, nll2; /* sums over scored tokens */
} ppl_run;

typedef struct ppl_cmp {
    double kl_sum, kl_max, rel_max;
    double *kl; /* per scored token, for the percentile */
    int64_t n, top1_same;
} ppl_cmp;

/* log(sum(exp(row))) in double, and the index of the largest value. */
static double log_sum_exp(const float *row, int64_t V, int64_t *argmax) {
    int64_t k = 0;
    for (int64_t v = 1; v < V; v++)
        if (row[v] > row[k]) k = v;
    double mx = row[k], sum = 0;
    for (int64_t v = 0; v < V; v++) sum += exp((double)row[v] - mx);
    *argmax = k;
    return mx + log(sum);
}

/* The base's and the model's rows predicting one token: KL(base || model), top-1, logit difference. */
static void compare_rows(const float *b, const float *q, int64_t V, double lse_b, int64_t top_b, double lse_q,
                         int64_t top_q, ppl_cmp *c) {
    double kl = 0, diff = 0, lo = b[0], hi = b[0];
    for (int64_t v = 0; v < V; v++) {
        double lb = (double)b[v] - lse_b, lq = (double)q[v] - lse_q;
        kl += exp(lb) * (lb - lq);
        diff = fmax(diff, fabs((double)q[v] - (double)b[v]));
        lo = fmin(lo, b[v]);
        hi = fmax(hi, b[v]);
    }
    /* rounding can leave a tiny negative sum where the two distributions agree */
    kl = fmax(kl, 0);
    c->kl[c->n++] = kl;
    c->kl_sum += kl;
    c->kl_max = fmax(c->kl_max, kl);
    c->top1_same += top_b == top_q;
    if (hi > lo) c->rel_max = fmax(c->rel_max, diff / (hi - lo));
    else if (diff > 0) c->rel_max = INFINITY;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double perplexity(const ppl_run *r, int64_t n) { return exp(r->nll / (double)n); }

/* llama-perplexity's "+/-": the standard error of the mean NLL carried through exp. */
static double perplexity_error(const ppl_run *r, int64_t n) {
    if (n < 2) return 0;
    double mean = r->nll / (double)n, var = r->nll2 / (double)n - mean * mean;
    return perplexity(r, n) * sqrt(fmax(var, 0) / (double)(n - 1));
}

static mt_status read_ids(const char *path, int64_t vocab, int32_t **out, int64_t *n, mt_err *err) {
    mt_npy npy = {0};
    if (mt_npy_read(path, &npy, err)) return err->code;
    mt_status st = MT_OK;
    if ((npy.dtype != MT_I64 && npy.dtype != MT_I32) || npy.ndim != 1) {
        st = mt_err_set(err, MT_ERR_FORMAT, "%s: token ids must be int64 or int32 [L]", path);
        goto done;
    }
    *n = npy.shape[0];
    *out = mt_malloc_array((size_t)MT_MAX(*n, 1), sizeof(int32_t));
    if (!*out) {
        st = mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory for %lld ids", path, (long long)*n);
        goto done;
    }
    for (int64_t i = 0; i < *n; i++) {
        int64_t id = npy.dtype == MT_I64 ? ((const int64_t *)npy.data)[i] : ((const int32_t *)npy.data)[i];
        if (id < 0 || id >= vocab) {
            st = mt_err_set(err, MT_ERR_INVALID_ARG,
                            "%s: token id %lld at position %lld is outside the vocabulary [0, %lld)", path,
                            (long long)id, (long long)i, (long long)vocab);
            goto done;
        }
        (*out)[i] = (int32_t)id;
    }
done:
    mt_npy_free(&npy);
    return st;
}

static mt_status tokenize(const mt_model *m, const char *what, const char *text, size_t len, int32_t **ids,
                          int64_t *n, mt_err *err) {
    if (!m->tok)
        return mt_err_set(err, MT_ERR_INVALID_ARG,
                          "%s has no tokenizer (tokenizer.json or tokenizer.model): give token ids with --ids",
                          m->source);
    size_t count = 0;
    mt_tokenizer_encode_opts opts = mt_tokenizer_encode_default_opts();
    if (mt_tokenizer_encode_with(m->tok, text, len, &opts, ids, &count, err)) {
        mt_err_prefix(err, "%s", what);
        return err->code;
    }
    *n = (int64_t)count;
    return MT_OK;
}

static mt_status open_model(const char *path, int64_t ctx, int threads, ppl_run *r, mt_err *err) {
    r->name = path;
    if (mt_model_open(path, &r->m, err)) return err->code;
    if (ctx > mt_model_max_context(r->m))
        return mt_err_set(err, MT_ERR_INVALID_ARG, "--ctx %lld is over %s's maximum context of %lld tokens",
                          (long long)ctx, path, (long long)mt_model_max_context(r->m));
    mt_session_params sp = {.n_ctx = ctx, .n_threads = threads};
    return mt_session_new(r->m, &sp, &r->s, err);
}

static void print_json(const char *model, const char *base, const char *source, int64_t n_tokens, int64_t ctx,
                       int64_t stride, int64_t windows, int64_t scored, const ppl_run *r, const ppl_cmp *c,
                       double kl_p99) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", model);
    cJSON_AddStringToObject(o, "input", source);
    cJSON_AddNumberToObject(o, "tokens", (double)n_tokens);
    cJSON_AddNumberToObject(o, "ctx", (double)ctx);
    cJSON_AddNumberToObject(o, "stride", (double)stride);
    cJSON_AddNumberToObject(o, "windows", (double)windows);
    cJSON_AddNumberToObject(o, "scored", (double)scored);
    cJSON_AddNumberToObject(o, "nll", r[0].nll / (double)scored);
    cJSON_AddNumberToObject(o, "perplexity", perplexity(&r[0], scored));
    cJSON_AddNumberToObject(o, "perplexity_error", perplexity_error(&r[0], scored));
    if (base) {
        cJSON_AddStringToObject(o, "base", base);
        cJSON_AddNumberToObject(o, "base_nll", r[1].nll / (double)scored);
        cJSON_AddNumberToObject(o, "base_perplexity", perplexity(&r[1], scored));
        cJSON_AddNumberToObject(o, "perplexity_ratio", perplexity(&r[0], scored) / perplexity(&r[1], scored));
        cJSON_AddNumberToObject(o, "kl_mean", c->kl_sum / (double)scored);
        cJSON_AddNumberToObject(o, "kl_p99", kl_p99);
        cJSON_AddNumberToObject(o, "kl_max", c->kl_max);
        cJSON_AddNumberToObject(o, "top1_agreement", (double)c->top1_same / (double)scored);
        cJSON_AddNumberToObject(o, "max_logit_diff_rel", c->rel_max);
    }
    char *text = mt_json_print(o, true);
    if (text) printf("%s\n", text);
    mt_free(text);
    cJSON_Delete(o);
}

static void print_text(const char *base, const char *source, int64_t n_tokens, int64_t ctx, int64_t stride,
                       int64_t windows, int64_t scored, const ppl_run *r, const ppl_cmp *c, double kl_p99) {
    printf("model              %s\n", r[0].name);
    printf("input              %s: %lld tokens, %lld window%s of %lld (stride %lld), %lld tokens scored\n", source,
           (long long)n_tokens, (long long)windows, windows == 1 ? "" : "s", (long long)ctx, (long long)stride,
           (long long)scored);
    printf("perplexity         %.6f +/- %.6f (mean NLL %.6f)\n", perplexity(&r[0], scored),
           perplexity_error(&r[0], scored), r[0].nll / (double)scored);
    if (!base) return;
    double ratio = perplexity(&r[0], scored) / perplexity(&r[1], scored);
    printf("base               %s\n", base);
    printf("base perplexity    %.6f +/- %.6f\n", perplexity(&r[1], scored), perplexity_error(&r[1], scored));
    printf("ratio              %.6f (model / base; ln %.3e)\n", ratio, log(ratio));
    printf("KL base||model     mean %.6e, p99 %.6e, max %.6e\n", c->kl_sum / (double)scored, kl_p99, c->kl_max);
    printf("top-1 agreement    %.4f%% (%lld of %lld)\n", 100.0 * (double)c->top1_same / (double)scored,
           (long long)c->top1_same, (long long)scored);
    printf("max |logit diff|   %.6e of the base's logit range\n", c->rel_max);
}

int mt_cmd_perplexity(int argc, char **argv) {
    if (mt_cli_help(argc, argv)) return printf("%s", usage), MT_EXIT_OK;
    const char *model = mt_cli_default_model(), *file = NULL, *ids_path = NULL, *base = NULL, *v;
    int64_t ctx = 512, stride = 0, threads = 0;
    bool json = false;
    int bad = 0;
    for (mt_cli_args a = {argc, argv, 1}; a.i < argc && !bad; a.i++) {
        if (mt_cli_opt(&a, "-m", &model, &bad) || mt_cli_opt(&a, "--file", &file, &bad) ||
            mt_cli_opt(&a, "--ids", &ids_path, &bad) || mt_cli_opt(&a, "--base", &base, &bad))
            continue;
        if (mt_cli_flag(&a, "--json")) {
            json = true;
        } else if (mt_cli_opt(&a, "--ctx", &v, &bad)) {
            if (!bad && !mt_cli_parse_i64(v, 2, INT32_MAX, &ctx))
                return mt_cli_usage(usage, "bad --ctx %s (a whole number of at least 2)", v);
        } else if (mt_cli_opt(&a, "--stride", &v, &bad)) {
            if (!bad && !mt_cli_parse_i64(v, 1, INT32_MAX, &stride))
                return mt_cli_usage(usage, "bad --stride %s (a whole number of at least 1)", v);
        } else if (mt_cli_opt(&a, "--threads", &v, &bad)) {
            if (!bad && !mt_cli_parse_i64(v, 0, 1024, &threads)) return mt_cli_usage(usage, "bad --threads %s", v);
        } else {
            return mt_cli_usage(usage, "unknown option %s", argv[a.i]);
        }
    }
    if (bad) return MT_EXIT_USAGE;
    if (!file == !ids_path) return mt_cli_usage(usage, "give exactly one of --file and --ids");
    if (stride == 0) stride = ctx;
    if (stride != ctx && stride > ctx / 2)
        return mt_cli_usage(usage, "--stride %lld with --ctx %lld: give at most %lld (overlapping windows scoring "
                            "their last S tokens) or %lld (llama-perplexity's windows)", (long long)stride,
                            (long long)ctx, (long long)(ctx / 2), (long long)ctx);

    mt_err err = {0};
    int rc = MT_EXIT_FAIL;
    ppl_run runs[2] = {{0}};
    int n_runs = base ? 2 : 1;
    ppl_cmp cmp = {0};
    char *text = NULL;
    size_t text_len = 0;
    int32_t *ids = NULL, *base_ids = NULL;
    int64_t n_ids = 0, n_base_ids = 0;
    const char *source = file ? (strcmp(file, "-") == 0 ? "stdin" : file) : ids_path;

    if (file && (strcmp(file, "-") == 0 ? mt_file_read_stream(stdin, "stdin", (size_t)1 << 30, &text, &text_len, &err)
                                        : mt_file_read_all(file, (size_t)1 << 30, &text, &text_len, &err)))
        goto done;
    if (file && text_len == 0) {
        mt_err_set(&err, MT_ERR_INVALID_ARG, "%s: the text is empty", source);
        goto done;
    }
    if (open_model(model, ctx, (int)threads, &runs[0], &err)) goto done;
    const mt_model *m = runs[0].m;
    if (file ? tokenize(m, source, text, text_len, &ids, &n_ids, &err)
             : read_ids(ids_path, m->desc.vocab_size, &ids, &n_ids, &err))
        goto done;
    if (n_ids < 2) {
        mt_err_set(&err, MT_ERR_INVALID_ARG, "%s: %lld token%s; perplexity needs at least 2 (one to predict from)",
                   source, (long long)n_ids, n_ids == 1 ? "" : "s");
        goto done;
    }
    if (n_ids < ctx) {
        fprintf(stderr, "mitten: %s has %lld tokens, fewer than --ctx %lld: one window of %lld\n", source,
                (long long)n_ids, (long long)ctx, (long long)n_ids);
        ctx = stride = n_ids;
    }
    if (base) {
        if (open_model(base, ctx, (int)threads, &runs[1], &err)) goto done;
        if (runs[1].m->desc.vocab_size != m->desc.vocab_size) {
            mt_err_set(&err, MT_ERR_INVALID_ARG, "--base %s has a vocabulary of %lld tokens, %s one of %lld: the "
                       "two cannot be compared", base, (long long)runs[1].m->desc.vocab_size, model,
                       (long long)m->desc.vocab_size);
            goto done;
        }
        if (file) {
            if (tokenize(runs[1].m, source, text, text_len, &base_ids, &n_base_ids, &err)) goto done;
            int64_t k = 0;
            while (k < MT_MIN(n_ids, n_base_ids) && ids[k] == base_ids[k]) k++;
            if (k < n_ids || n_base_ids != n_ids) {
                mt_err_set(&err, MT_ERR_INVALID_ARG, "--base %s tokenizes %s otherwise than %s (%lld and %lld tokens, "
                           "the first difference at token %lld): the two cannot be compared", base, source, model,
                           (long long)n_base_ids, (long long)n_ids, (long long)k);
                goto done;
            }
        }
    }

    /* Window w covers [w * stride, w * stride + ctx) and scores the tokens at window positions [first, ctx),
     * each predicted by the logits of the position before it. */
    int64_t first = stride == ctx ? ctx / 2 + 1 : ctx - stride;
    if (first >= ctx) first = ctx - 1; /* a window of 2 tokens scores its second */
    int64_t windows = (n_ids - ctx) / stride + 1, scored = windows * (ctx - first);
    int64_t V = m->desc.vocab_size;
    if (base && !(cmp.kl = mt_malloc_array((size_t)scored, sizeof(double)))) {
        mt_err_set(&err, MT_ERR_NOMEM, "out of memory for %lld per-token KL values", (long long)scored);
        goto done;
    }
    double t0 = mt_time_now();
    for (int64_t w = 0; w < windows; w++) {
        const int32_t *win = ids + w * stride;
        const float *logits[2];
        mt_prefill_opts opts = {.all_logits = true};
        for (int k = 0; k < n_runs; k++) {
            mt_session_reset(runs[k].s);
            if (mt_session_prefill(runs[k].s, win, ctx, NULL, 0, &opts, &logits[k], &err)) {
                mt_err_prefix(&err, "%s, window %lld (tokens %lld-%lld)", runs[k].name, (long long)w + 1,
                              (long long)(w * stride), (long long)(w * stride + ctx - 1));
                goto done;
            }
        }
        for (int64_t p = first; p < ctx; p++) {
            double lse[2];
            int64_t top[2];
            for (int k = 0; k < n_runs; k++) {
                const float *row = logits[k] + (p - 1) * V;
                lse[k] = log_sum_exp(row, V, &top[k]);
                double nll = lse[k] - (double)row[win[p]];
                runs[k].nll += nll;
                runs[k].nll2 += nll * nll;
            }
            if (base)
                compare_rows(logits[1] + (p - 1) * V, logits[0] + (p - 1) * V, V, lse[1], top[1], lse[0], top[0],
                             &cmp);
        }
        int64_t done_tokens = (w + 1) * (ctx - first);
        fprintf(stderr, "[%lld/%lld] tokens %lld-%lld: perplexity so far %.4f", (long long)w + 1, (long long)windows,
                (long long)(w * stride), (long long)(w * stride + ctx - 1), perplexity(&runs[0], done_tokens));
        if (base)
            fprintf(stderr, ", base %.4f, mean KL %.3e", perplexity(&runs[1], done_tokens),
                    cmp.kl_sum / (double)done_tokens);
        fprintf(stderr, " (%.1f s)\n", mt_time_now() - t0);
    }
    double kl_p99 = 0;
    if (base) {
        qsort(cmp.kl, (size_t)cmp.n, sizeof(double), cmp_double);
        kl_p99 = cmp.kl[MT_MIN(cmp.n - 1, (int64_t)ceil(0.99 * (double)cmp.n) - 1)];
    }
    if (json) print_json(model, base, source, n_ids, ctx, stride, windows, scored, runs, &cmp, kl_p99);
    else print_text(base, source, n_ids, ctx, stride, windows, scored, runs, &cmp, kl_p99);
    rc = MT_EXIT_OK;
done:
    if (rc == MT_EXIT_FAIL) mt_cli_fail(&err);
    mt_free(cmp.kl);
    mt_free(base_ids);
    mt_free(ids);
    mt_free(text);
    for (int k = 0; k < 2; k++) {
        mt_session_free(runs[k].s);
        mt_model_close(runs[k].m);
    }
    return rc;
}
