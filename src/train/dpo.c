/* train/dpo: DPO losses, one pair through the model, pairing, reference log-probabilities. */
#include "train/dpo.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/file.h"
#include "base/json.h"
#include "tensor/autograd.h"

static const char *const LOSS_NAMES[] = {"sigmoid", "ipo", "hinge"};

mt_dpo_config mt_dpo_config_default(void) { return (mt_dpo_config){.loss = MT_DPO_SIGMOID, .beta = 0.1}; }

mt_status mt_dpo_loss_parse(const char *name, mt_dpo_loss_kind *out, mt_err *err) {
    for (int k = 0; k < (int)MT_ARRAY_LEN(LOSS_NAMES); k++)
        if (name && strcmp(name, LOSS_NAMES[k]) == 0) {
            *out = (mt_dpo_loss_kind)k;
            return MT_OK;
        }
    return mt_err_set(err, MT_ERR_INVALID_ARG, "--loss \"%s\": not a DPO loss (sigmoid, ipo, hinge)", name ? name : "");
}

const char *mt_dpo_loss_name(mt_dpo_loss_kind k) {
    return (unsigned)k < MT_ARRAY_LEN(LOSS_NAMES) ? LOSS_NAMES[k] : "unknown";
}

mt_status mt_dpo_config_check(const mt_dpo_config *c, mt_err *err) {
    if (!(c->beta > 0) || !isfinite(c->beta))
        return mt_err_set(err, MT_ERR_INVALID_ARG, "--beta %g: must be above 0", c->beta);
    if (!(c->label_smoothing >= 0 && c->label_smoothing < 0.5))
        return mt_err_set(err, MT_ERR_INVALID_ARG, "--label-smoothing %g: must be in [0, 0.5)", c->label_smoothing);
    if (c->label_smoothing > 0 && c->loss != MT_DPO_SIGMOID)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "--label-smoothing applies to --loss sigmoid only (TRL's %s loss "
                          "has none)", mt_dpo_loss_name(c->loss));
    if (!(c->sft_weight >= 0) || !isfinite(c->sft_weight))
        return mt_err_set(err, MT_ERR_INVALID_ARG, "--sft-weight %g: must be 0 or more", c->sft_weight);
    return MT_OK;
}

/* log(sigmoid(x)) without overflow either way */
static double log_sigmoid(double x) { return x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x)); }
static double sigmoid(double x) { return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x)); }

void mt_dpo_pair_loss(const mt_dpo_config *c, const mt_dpo_pair_in *in, mt_dpo_pair_out *out) {
    /* ipo compares mean log-probabilities: each sum is divided by its answer's tokens */
    double scale[2] = {1.0, 1.0};
    if (c->loss == MT_DPO_IPO)
        for (int k = 0; k < 2; k++) scale[k] = 1.0 / (double)MT_MAX(in->n_tokens[k], 1);
    double d[2]; /* policy - reference, per answer */
    for (int k = 0; k < 2; k++) {
        d[k] = (in->logp[k] - in->ref[k]) * scale[k];
        out->reward[k] = c->beta * d[k];
    }
    double h = d[0] - d[1], b = c->beta, dh; /* dh: d loss / d h */
    switch (c->loss) {
    case MT_DPO_IPO:
        out->loss = (h - 1.0 / (2.0 * b)) * (h - 1.0 / (2.0 * b));
        dh = 2.0 * (h - 1.0 / (2.0 * b));
        break;
    case MT_DPO_HINGE:
        out->loss = fmax(1.0 - b * h, 0.0);
        dh = 1.0 - b * h > 0 ? -b : 0.0; /* torch's relu passes no gradient at 0 */
        break;
    default: {
        double ls = c->label_smoothing;
        out->loss = -(1.0 - ls) * log_sigmoid(b * h) - ls * log_sigmoid(-b * h);
        dh = -(1.0 - ls) * b * sigmoid(-b * h) + ls * b * sigmoid(b * h);
    }
    }
    out->dlogp[0] = dh * scale[0];
    out->dlogp[1] = -dh * scale[1];
}

static mt_status ctx_fail(mt_ctx *ctx, mt_err *err) {
    return mt_err_set(err, ctx->status ? ctx->status : MT_ERR_INTERNAL, "%s", ctx->err.msg);
}

mt_status mt_dpo_pair_run(const mt_model *m, mt_ctx *ctx, const mt_train_sample *const pair[2], const mt_dpo_config *c,
                          double inv_pairs, double inv_chosen_tokens, mt_dpo_pair_in *in, mt_dpo_pair_out *out,
                          mt_err *err) {
    mt_tensor *nll[2];
    for (int k = 0; k < 2; k++) {
        mt_status st = mt_train_sample_nll(m, ctx, pair[k], &nll[k], err);
        if (st) return mt_err_prefix(err, "%s answer: ", k ? "rejected" : "chosen"), st;
        in->logp[k] = -(double)mt_f32(nll[k])[0];
    }
    mt_dpo_pair_loss(c, in, out);
    if (!ctx->tape || !nll[0]->requires_grad) return MT_OK;
    /* d/d nll = -d/d logp; the SFT part is the chosen NLL itself */
    double a = -inv_pairs * out->dlogp[0] + c->sft_weight * inv_chosen_tokens, b = -inv_pairs * out->dlogp[1];
    mt_tensor *l = mt_op_add(ctx, mt_op_scale(ctx, nll[0], (float)a), mt_op_scale(ctx, nll[1], (float)b));
    if (!l) return ctx_fail(ctx, err);
    if (mt_backward(ctx, l)) return mt_err_set(err, ctx->status, "backward: %s", ctx->err.msg);
    return MT_OK;
}

static void drop(mt_prepared_sample *s) {
    mt_free(s->media);
    mt_sample_tokens_release(&s->tok);
}

static bool same_tokens(const mt_sample_tokens *a, const mt_sample_tokens *b) {
    return a->n == b->n && memcmp(a->ids, b->ids, (size_t)a->n * sizeof *a->ids) == 0 &&
           memcmp(a->labels, b->labels, (size_t)a->n * sizeof *a->labels) == 0;
}

mt_status mt_dpo_pair_up(mt_prepared *chosen, mt_prepared *rejected, const char *path, bool strict, size_t *identical,
                         mt_err *err) {
    size_t i = 0, j = 0, kept = 0;
    *identical = 0;
    /* both lists are in file order: walk them together, keeping the lines both hold */
    while (i < chosen->n || j < rejected->n) {
        mt_prepared_sample *c = i < chosen->n ? &chosen->samples[i] : NULL;
        mt_prepared_sample *r = j < rejected->n ? &rejected->samples[j] : NULL;
        if (!r || (c && c->line < r->line)) {
            drop(c), i++;
            continue;
        }
        if (!c || r->line < c->line) {
            drop(r), j++;
            continue;
        }
        i++, j++;
        if (same_tokens(&c->tok, &r->tok)) {
            if (strict) {
                mt_status st = mt_err_set(err, MT_ERR_INVALID_ARG, "%s:%lld: chosen and rejected are the same answer: "
                                          "the pair states no preference", path, (long long)c->line);
                drop(c), drop(r);
                for (; i < chosen->n; i++) drop(&chosen->samples[i]);
                for (; j < rejected->n; j++) drop(&rejected->samples[j]);
                chosen->n = rejected->n = kept;
                return st;
            }
            mt_log(MT_LOG_INFO, "warning: %s:%lld: chosen and rejected are the same answer: the pair states no "
                   "preference and gives no gradient; skipped", path, (long long)c->line);
            drop(c), drop(r);
            (*identical)++;
            continue;
        }
        chosen->samples[kept] = *c;
        rejected->samples[kept++] = *r;
    }
    chosen->n = rejected->n = kept;
    return MT_OK;
}

static mt_status ref_path(const char *out_dir, char *path, size_t cap, mt_err *err) {
    return mt_path_join(path, cap, out_dir, "ref_logps.json", err);
}

mt_status mt_dpo_ref_save(const char *out_dir, const char *run_id, const double *ref, size_t n_pairs, mt_err *err) {
    char path[4096];
    mt_status st = ref_path(out_dir, path, sizeof path, err);
    if (st) return st;
    cJSON *j = cJSON_CreateObject(), *arr[2];
    bool ok = j && (!run_id || cJSON_AddStringToObject(j, "run_id", run_id)) &&
              cJSON_AddNumberToObject(j, "pairs", (double)n_pairs) &&
              (arr[0] = cJSON_AddArrayToObject(j, "chosen")) && (arr[1] = cJSON_AddArrayToObject(j, "rejected"));
    for (size_t i = 0; ok && i < n_pairs; i++)
        for (int k = 0; k < 2 && ok; k++) {
            /* %.17g reads back as the same double (cJSON's own printing may drop the last bit), so a resumed run
             * compares with exactly the reference the run started with */
            char num[32];
            snprintf(num, sizeof num, "%.17g", ref[2 * i + (size_t)k]);
            cJSON *v = isfinite(ref[2 * i + (size_t)k]) ? cJSON_CreateRaw(num) : cJSON_CreateNull();
            ok = v && cJSON_AddItemToArray(arr[k], v);
            if (!ok) cJSON_Delete(v);
        }
    char *text = ok ? mt_json_print(j, false) : NULL;
    st = text ? mt_file_write_atomic(path, text, strlen(text), err) : mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    mt_free(text);
    cJSON_Delete(j);
    return st;
}

mt_status mt_dpo_ref_load(const char *out_dir, const char *run_id, double *ref, size_t n_pairs, bool *found,
                          mt_err *err) {
    char path[4096];
    *found = false;
    mt_status st = ref_path(out_dir, path, sizeof path, err);
    if (st || !mt_file_exists(path)) return st;
    cJSON *j = NULL;
    if ((st = mt_json_parse_file(path, MT_JSON_MAX_FILE, &j, err))) return st;
    const char *id = NULL;
    int64_t n = 0;
    st = mt_json_str_opt(j, "run_id", path, &id, err);
    if (!st) st = mt_json_int_req(j, "pairs", path, 0, INT64_MAX, &n, err);
    if (!st && (run_id ? !id || strcmp(id, run_id) : id != NULL))
        st = mt_err_set(err, MT_ERR_FORMAT, "%s: written by run %s, not by this run (%s)", path, id ? id : "(none)",
                        run_id ? run_id : "(none)");
    if (!st && (size_t)n != n_pairs)
        st = mt_err_set(err, MT_ERR_FORMAT, "%s: %lld pairs, but the data now gives %zu", path, (long long)n, n_pairs);
    static const char *const keys[2] = {"chosen", "rejected"};
    for (int k = 0; k < 2 && !st; k++) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, keys[k]), *v;
        if (!cJSON_IsArray(a) || (size_t)cJSON_GetArraySize(a) != n_pairs) {
            st = mt_err_set(err, MT_ERR_FORMAT, "%s: \"%s\" must be a list of %zu numbers", path, keys[k], n_pairs);
            break;
        }
        size_t i = 0;
        cJSON_ArrayForEach(v, a) {
            if (!cJSON_IsNumber(v)) {
                st = mt_err_set(err, MT_ERR_FORMAT, "%s: \"%s\"[%zu] is not a number", path, keys[k], i);
                break;
            }
            ref[2 * i++ + (size_t)k] = v->valuedouble;
        }
    }
    cJSON_Delete(j);
    if (!st) *found = true;
    return st;
}
