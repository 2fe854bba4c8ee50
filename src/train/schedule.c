/* train/schedule: transformers' learning-rate lambdas (see schedule.h for the table). */
#include "train/schedule.h"

#include <math.h>
#include <string.h>

static const char *const kind_names[] = {"constant", "constant_with_warmup", "linear", "cosine"};

mt_schedule mt_schedule_make(mt_sched_kind kind, int64_t warmup_steps, int64_t total_steps) {
    return (mt_schedule){.kind = kind,
                         .warmup_steps = MT_MAX(warmup_steps, 0),
                         .total_steps = MT_MAX(total_steps, 0),
                         .num_cycles = 0.5,
                         .min_lr_rate = 0.0};
}

double mt_schedule_scale(const mt_schedule *s, int64_t k) {
    const int64_t w = s->warmup_steps, t = s->total_steps;
    if (s->kind == MT_SCHED_CONSTANT) return 1.0;
    if (k < w) return (double)k / (double)MT_MAX(1, w);
    switch (s->kind) {
    case MT_SCHED_LINEAR:
        return fmax(0.0, (double)(t - k) / (double)MT_MAX(1, t - w));
    case MT_SCHED_COSINE: {
        double progress = (double)(k - w) / (double)MT_MAX(1, t - w);
        double f = 0.5 * (1.0 + cos(M_PI * s->num_cycles * 2.0 * progress));
        f = f * (1 - s->min_lr_rate) + s->min_lr_rate;
        return fmax(0.0, f);
    }
    default:
        return 1.0;
    }
}

int64_t mt_schedule_warmup_steps(double warmup, int64_t total_steps) {
    if (!(warmup > 0)) return 0;
    if (warmup >= 1) return warmup >= 9.2e18 ? INT64_MAX : (int64_t)warmup;
    return (int64_t)ceil((double)total_steps * warmup);
}

mt_status mt_schedule_parse_kind(const char *name, mt_sched_kind *out, mt_err *err) {
    for (size_t i = 0; i < MT_ARRAY_LEN(kind_names); i++)
        if (strcmp(name, kind_names[i]) == 0) {
            *out = (mt_sched_kind)i;
            return MT_OK;
        }
    return mt_err_set(err, MT_ERR_INVALID_ARG,
                      "unknown lr schedule \"%s\" (constant, constant_with_warmup, linear, cosine)", name);
}

const char *mt_schedule_kind_name(mt_sched_kind kind) {
    return (unsigned)kind < MT_ARRAY_LEN(kind_names) ? kind_names[kind] : "?";
}
