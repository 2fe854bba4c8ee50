/* train/reward: the built-in reward terms and the set that sums them (reward.h has the table). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "base/json.h"
#include "train/reward.h"

typedef enum { TERM_ANSWER, TERM_REGEX, TERM_FORMAT, TERM_JSON, TERM_IOU, TERM_CMD } term_kind;

static const char *const term_names[] = {"answer", "regex", "format", "json", "iou", "cmd"};

typedef struct {
    term_kind kind;
    double weight;
    char *arg;          /* regex pattern, schema path or command line; NULL when none */
    pcre2_code *re;     /* regex */
    cJSON *schema;      /* json with a schema file */
} term;

struct mt_rewards {
    term terms[MT_REWARD_MAX_TERMS];
    int n;
    double timeout;
    _Atomic int64_t cmd_failures;
};

/* A user pattern meets model output: bounded so that catastrophic backtracking costs a no-match, not a hang. */
enum { MATCH_LIMIT = 10000000 };

mt_rewards *mt_rewards_new(void) {
    mt_rewards *set = mt_calloc(1, sizeof *set);
    if (set) set->timeout = 10;
    return set;
}

void mt_rewards_free(mt_rewards *set) {
    if (!set) return;
    for (int i = 0; i < set->n; i++) {
        mt_free(set->terms[i].arg);
        pcre2_code_free(set->terms[i].re);
        cJSON_Delete(set->terms[i].schema);
    }
    mt_free(set);
}

void mt_rewards_set_timeout(mt_rewards *set, double seconds) { set->timeout = seconds; }
int mt_rewards_count(const mt_rewards *set) { return set->n; }
const char *mt_rewards_name(const mt_rewards *set, int i) { return term_names[set->terms[i].kind]; }
int64_t mt_rewards_cmd_failures(const mt_rewards *set) { return atomic_load(&set->cmd_failures); }

static mt_status compile_term(term *t, const char *spec, mt_err *err) {
    if (t->kind == TERM_REGEX) {
        int code;
        PCRE2_SIZE at;
        t->re = pcre2_compile((PCRE2_SPTR)t->arg, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &code, &at, NULL);
        if (!t->re) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(code, msg, sizeof msg);
            return mt_err_set(err, MT_ERR_INVALID_ARG, "reward \"%s\": the pattern does not compile: %s at offset %zu",
                              spec, (const char *)msg, (size_t)at);
        }
    } else if (t->kind == TERM_JSON && t->arg) {
        mt_status st = mt_json_parse_file(t->arg, MT_JSON_MAX_FILE, &t->schema, err);
        if (!st) st = mt_schema_check(t->schema, t->arg, err);
        if (st) return mt_err_prefix(err, "reward \"%s\"", spec);
    }
    return MT_OK;
}

mt_status mt_rewards_add(mt_rewards *set, const char *spec, mt_err *err) {
    if (set->n == MT_REWARD_MAX_TERMS)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "reward \"%s\": at most %d reward terms", spec, MT_REWARD_MAX_TERMS);
    size_t name_len = strcspn(spec, "@=");
    term t = {.kind = TERM_ANSWER, .weight = 1};
    bool known = false;
    for (size_t k = 0; k < MT_ARRAY_LEN(term_names) && !known; k++)
        if (strlen(term_names[k]) == name_len && memcmp(spec, term_names[k], name_len) == 0) {
            t.kind = (term_kind)k;
            known = true;
        }
    if (!known)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "reward \"%s\": unknown name \"%.*s\" (answer, regex, format, json, "
                          "iou or cmd, written NAME[@WEIGHT][=ARG])", spec, (int)name_len, spec);
    const char *rest = spec + name_len;
    if (*rest == '@') {
        char *end;
        errno = 0;
        t.weight = strtod(rest + 1, &end);
        if (end == rest + 1 || (*end && *end != '=') || errno || !isfinite(t.weight))
            return mt_err_set(err, MT_ERR_INVALID_ARG, "reward \"%s\": the weight after '@' is not a finite number", spec);
        rest = end;
    }
    bool needs_arg = t.kind == TERM_REGEX || t.kind == TERM_CMD, takes_arg = needs_arg || t.kind == TERM_JSON;
    if (*rest == '=') {
        if (!takes_arg)
            return mt_err_set(err, MT_ERR_INVALID_ARG, "reward \"%s\": %s takes no argument", spec, term_names[t.kind]);
        if (!rest[1]) return mt_err_set(err, MT_ERR_INVALID_ARG, "reward \"%s\": the argument after '=' is empty", spec);
        if (!(t.arg = mt_strdup(rest + 1))) return mt_err_set(err, MT_ERR_NOMEM, "reward: out of memory");
    } else if (needs_arg) {
        return mt_err_set(err, MT_ERR_INVALID_ARG, "reward \"%s\": %s needs its %s after '='", spec, term_names[t.kind],
                          t.kind == TERM_REGEX ? "pattern" : "command line");
    }
    mt_status st = compile_term(&t, spec, err);
    if (st) {
        mt_free(t.arg);
        pcre2_code_free(t.re);
        cJSON_Delete(t.schema);
        return st;
    }
    set->terms[set->n++] = t;
    return MT_OK;
}

/* The reference box: "box", "bbox" or "bbox_2d", four finite numbers with x2 > x1 and y2 > y1. */
static mt_status sample_box(const cJSON *sample, const char *what, double box[4], mt_err *err) {
    static const char *const keys[] = {"box", "bbox", "bbox_2d"};
    const cJSON *b = NULL;
    for (size_t i = 0; i < MT_ARRAY_LEN(keys) && !b; i++) b = cJSON_GetObjectItemCaseSensitive(sample, keys[i]);
    if (!b) return mt_err_set(err, MT_ERR_FORMAT, "%s: the iou reward needs a \"box\" [x1, y1, x2, y2]", what);
    int n = 0;
    for (const cJSON *e = cJSON_IsArray(b) ? b->child : NULL; e; e = e->next, n++) {
        if (n == 4 || !cJSON_IsNumber(e) || !isfinite(e->valuedouble)) {
            n = -1;
            break;
        }
        box[n] = e->valuedouble;
    }
    if (n != 4 || !(box[2] > box[0] && box[3] > box[1]))
        return mt_err_set(err, MT_ERR_FORMAT, "%s: \"%s\" must be [x1, y1, x2, y2], four numbers with x2 > x1 and "
                          "y2 > y1", what, b->string);
    return MT_OK;
}

mt_status mt_rewards_check_sample(const mt_rewards *set, const cJSON *sample, const char *what, mt_err *err) {
    for (int i = 0; i < set->n; i++) {
        const term *t = &set->terms[i];
        if (t->kind == TERM_ANSWER) {
            const cJSON *a = cJSON_GetObjectItemCaseSensitive(sample, "answer");
            if (!cJSON_IsString(a) && !cJSON_IsNumber(a))
                return mt_err_set(err, MT_ERR_FORMAT, "%s: the answer reward needs an \"answer\" (a string or a "
                                  "number)%s", what, a ? ", not this type" : "");
        } else if (t->kind == TERM_IOU) {
            double box[4];
            mt_status st = sample_box(sample, what, box, err);
            if (st) return st;
        } else if (t->kind == TERM_JSON && !t->schema) {
            const cJSON *s = cJSON_GetObjectItemCaseSensitive(sample, "schema");
            if (!cJSON_IsObject(s))
                return mt_err_set(err, MT_ERR_FORMAT, "%s: the json reward has no schema file, so the sample needs "
                                  "a \"schema\" object", what);
            mt_status st = mt_schema_check(s, what, err);
            if (st) return st;
        }
    }
    return MT_OK;
}

void mt_reward_final_answer(const char *c, size_t *off, size_t *len) {
    size_t n = strlen(c);
    const char *boxed = NULL;
    for (const char *p = c; (p = strstr(p, "\\boxed{")); p++) boxed = p;
    if (boxed) {
        const char *s = boxed + 7, *e = s;
        int depth = 1;
        for (; *e; e++) {
            depth += (*e == '{') - (*e == '}');
            if (depth == 0) break;
        }
        if (depth == 0) {
            *off = (size_t)(s - c);
            *len = (size_t)(e - s);
            return;
        }
    }
    const char *think = NULL;
    for (const char *p = c; (p = strstr(p, "</think>")); p++) think = p;
    *off = think ? (size_t)(think + 8 - c) : 0;
    *len = n - *off;
}

/* Trimmed of spaces, '$' around math and one final period: the forms a right answer comes in. */
static void trim_answer(const char **s, size_t *n) {
    const char *p = *s;
    size_t len = *n;
    for (bool changed = true; changed && len;) {
        changed = false;
        while (len && isspace((unsigned char)*p)) p++, len--, changed = true;
        while (len && isspace((unsigned char)p[len - 1])) len--, changed = true;
        if (len >= 2 && p[0] == '$' && p[len - 1] == '$') p++, len -= 2, changed = true;
        if (len && p[len - 1] == '.') len--, changed = true;
    }
    *s = p;
    *n = len;
}

/* A number written plainly ("12", "-3.5", "1,000", "1e3"): thousands separators are dropped. */
static bool as_number(const char *s, size_t n, double *out) {
    char buf[64];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ',' && i > 0 && isdigit((unsigned char)s[i - 1]) && i + 1 < n && isdigit((unsigned char)s[i + 1]))
            continue;
        if (k + 1 >= sizeof buf || isspace((unsigned char)s[i])) return false;
        buf[k++] = s[i];
    }
    if (!k) return false;
    buf[k] = 0;
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    if (*end || errno || !isfinite(v) || isalpha((unsigned char)buf[0])) return false;
    *out = v;
    return true;
}

bool mt_reward_answer_equal(const char *answer, size_t len, const cJSON *expected) {
    char num[64];
    const char *want;
    if (cJSON_IsNumber(expected)) {
        snprintf(num, sizeof num, "%.17g", expected->valuedouble);
        want = num;
    } else if (cJSON_IsString(expected)) {
        want = expected->valuestring;
    } else {
        return false;
    }
    size_t want_len = strlen(want);
    trim_answer(&answer, &len);
    trim_answer(&want, &want_len);
    double a, b;
    if (as_number(answer, len, &a) && as_number(want, want_len, &b))
        return fabs(a - b) <= 1e-6 * fmax(1.0, fabs(b));
    if (len != want_len) return false;
    for (size_t i = 0; i < len; i++)
        if (tolower((unsigned char)answer[i]) != tolower((unsigned char)want[i])) return false;
    return true;
}

/* Four numbers inside [ ... ] at s (just after the '['), separated by commas and spaces. */
static bool parse_box(const char *s, const char *end, double box[4]) {
    int n = 0;
    while (s < end) {
        while (s < end && (isspace((unsigned char)*s) || *s == ',')) s++;
        if (s < end && *s == ']') return n == 4;
        if (n == 4 || s >= end) return false;
        char buf[48];
        size_t k = 0;
        while (s < end && k + 1 < sizeof buf && (isdigit((unsigned char)*s) || strchr("+-.eE", *s))) buf[k++] = *s++;
        buf[k] = 0;
        char *e;
        box[n] = strtod(buf, &e);
        if (!k || *e || !isfinite(box[n])) return false;
        n++;
    }
    return false;
}

double mt_reward_iou(const char *text, size_t len, const double ref[4]) {
    double box[4];
    bool found = false;
    for (size_t i = len; i-- > 0 && !found;)
        if (text[i] == '[') found = parse_box(text + i + 1, text + len, box);
    if (!found || !(box[2] > box[0] && box[3] > box[1])) return 0;
    double iw = fmin(box[2], ref[2]) - fmax(box[0], ref[0]), ih = fmin(box[3], ref[3]) - fmax(box[1], ref[1]);
    if (iw <= 0 || ih <= 0) return 0;
    double inter = iw * ih;
    double uni = (box[2] - box[0]) * (box[3] - box[1]) + (ref[2] - ref[0]) * (ref[3] - ref[1]) - inter;
    return inter / uni;
}

/* <think> first (after spaces), one of each tag, and something other than space after </think>. */
static double format_reward(const char *c) {
    while (isspace((unsigned char)*c)) c++;
    if (strncmp(c, "<think>", 7) != 0) return 0;
    const char *close = strstr(c, "</think>");
    if (!close || strstr(c + 7, "<think>") || strstr(close + 8, "</think>")) return 0;
    for (const char *p = close + 8; *p; p++)
        if (!isspace((unsigned char)*p)) return 1;
    return 0;
}

static mt_status regex_reward(const term *t, const char *c, double *out, mt_err *err) {
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    pcre2_match_context *mc = md ? pcre2_match_context_create(NULL) : NULL;
    if (!mc) {
        pcre2_match_data_free(md);
        return mt_err_set(err, MT_ERR_NOMEM, "regex reward: out of memory");
    }
    pcre2_set_match_limit(mc, MATCH_LIMIT);
    int rc = pcre2_match(t->re, (PCRE2_SPTR)c, PCRE2_ZERO_TERMINATED, 0, 0, md, mc);
    pcre2_match_context_free(mc);
    pcre2_match_data_free(md);
    if (rc < 0 && rc != PCRE2_ERROR_NOMATCH) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(rc, msg, sizeof msg);
        mt_log(MT_LOG_ERROR, "warning: regex reward \"%s\": counted as no match: %s", t->arg, (const char *)msg);
    }
    *out = rc >= 0;
    return MT_OK;
}

/* ```json ... ``` or ``` ... ``` around the answer is dropped: models fence JSON by habit. */
static void unfence(const char **s, size_t *n) {
    const char *p = *s;
    size_t len = *n;
    while (len && isspace((unsigned char)*p)) p++, len--;
    while (len && isspace((unsigned char)p[len - 1])) len--;
    if (len >= 6 && strncmp(p, "```", 3) == 0 && strncmp(p + len - 3, "```", 3) == 0) {
        const char *nl = memchr(p, '\n', len - 3);
        if (nl) {
            len -= (size_t)(nl + 1 - p) + 3;
            p = nl + 1;
        }
    }
    *s = p;
    *n = len;
}

static double json_reward(const term *t, const cJSON *sample, const char *ans, size_t n) {
    const cJSON *schema = t->schema ? t->schema : cJSON_GetObjectItemCaseSensitive(sample, "schema");
    unfence(&ans, &n);
    cJSON *v = NULL;
    mt_err ignored;
    if (!schema || mt_json_parse(ans, n, "answer", &v, &ignored)) return 0;
    bool ok = mt_schema_valid(schema, v);
    cJSON_Delete(v);
    return ok;
}

static mt_status cmd_reward(mt_rewards *set, const term *t, const mt_reward_input *in, double *out, mt_err *err) {
    cJSON *o = cJSON_CreateObject();
    cJSON *sample = in->sample ? cJSON_Duplicate(in->sample, true) : cJSON_CreateObject();
    char *text = NULL;
    if (o && sample && cJSON_AddStringToObject(o, "prompt", in->prompt ? in->prompt : "") &&
        cJSON_AddStringToObject(o, "completion", in->completion)) {
        cJSON_AddItemToObject(o, "sample", sample);
        sample = NULL;
        text = mt_json_print(o, false);
    }
    cJSON_Delete(sample);
    cJSON_Delete(o);
    if (!text) return mt_err_set(err, MT_ERR_NOMEM, "cmd reward: out of memory");
    mt_err why = {0};
    *out = 0;
    if (mt_reward_cmd_run(t->arg, text, strlen(text), set->timeout, out, &why)) {
        *out = 0;
        atomic_fetch_add(&set->cmd_failures, 1);
        mt_log(MT_LOG_ERROR, "warning: reward command \"%s\" counted as 0: %s", t->arg, why.msg);
    }
    mt_free(text);
    return MT_OK;
}

mt_status mt_rewards_score(const mt_rewards *cset, const mt_reward_input *in, double *terms, double *total,
                           mt_err *err) {
    mt_rewards *set = (mt_rewards *)cset; /* only the atomic failure count changes */
    size_t off, len;
    mt_reward_final_answer(in->completion, &off, &len);
    const char *ans = in->completion + off;
    *total = 0;
    for (int i = 0; i < set->n; i++) {
        const term *t = &set->terms[i];
        double v = 0, box[4];
        mt_status st = MT_OK;
        switch (t->kind) {
        case TERM_ANSWER: {
            const cJSON *a = cJSON_GetObjectItemCaseSensitive(in->sample, "answer");
            if (!a) return mt_err_set(err, MT_ERR_FORMAT, "answer reward: the sample has no \"answer\"");
            v = mt_reward_answer_equal(ans, len, a);
            break;
        }
        case TERM_REGEX: st = regex_reward(t, in->completion, &v, err); break;
        case TERM_FORMAT: v = format_reward(in->completion); break;
        case TERM_JSON: v = json_reward(t, in->sample, ans, len); break;
        case TERM_IOU:
            st = sample_box(in->sample, "iou reward", box, err);
            if (!st) v = mt_reward_iou(ans, len, box);
            break;
        case TERM_CMD: st = cmd_reward(set, t, in, &v, err); break;
        }
        if (st) return st;
        terms[i] = v;
        *total += t->weight * v;
    }
    return MT_OK;
}
