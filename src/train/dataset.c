/* train/dataset: the loader. Finds each sample's JSON text in a .json array or .jsonl file, hands it to the
 * normaliser (dataset_norm.c), checks its images, and keeps the good samples in file order.
 *
 * Three passes, so that image checks can run on the pool and strict mode still reports the first bad sample in
 * file order:
 *
 *   | pass      | does                                                      | strict mode                          |
 *   |-----------|-----------------------------------------------------------|--------------------------------------|
 *   | 1 scan    | split the file, parse and normalise each sample -> recs   | stops after the first bad sample     |
 *   | 2 images  | check every image of each good rec (pool over recs)       | checks only recs before that one     |
 *   | 3 collect | good recs -> samples; bad ones counted, kept, logged      | the first bad rec fails the load     |
 *
 * The file format and the sample rules are drawn in dataset.h.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "base/file.h"
#include "base/json.h"
#include "media/image.h"
#include "train/dataset_int.h"

/* Skips past this many are logged at debug level only, so a badly broken file does not flood the log. */
#define LOGGED_SKIPS 100

typedef struct rec {
    mt_ds_item it;
    int64_t line, index;
    bool bad;
    mt_dataset_reason reason;
    mt_status code; /* what strict mode returns for a bad rec */
    char *msg;      /* "name:line: reason: detail" for a bad rec, mt_malloc'd */
} rec;

typedef struct loader {
    const char *name, *base_dir;
    mt_dataset_opts o;
    rec *recs;
    size_t n, cap;
    bool stop;         /* strict mode met a bad sample in pass 1 */
    bool whole;        /* a .json array: one document, which must parse whole (JSON lines skip a bad line) */
    atomic_bool nomem; /* an image check ran out of memory in pass 2 */
    mt_err *err;
} loader;

struct mt_dataset {
    char *name;
    mt_ds_item *items;
    size_t n, n_images;
    mt_dataset_skip *skips; /* the first MT_DATASET_SKIPS_KEPT, msg owned */
    size_t n_kept, n_skipped;
    size_t per_reason[MT_DATASET_N_REASONS];
};

mt_dataset_opts mt_dataset_opts_default(void) {
    return (mt_dataset_opts){
        .max_file_bytes = (size_t)16 << 30,
        .max_samples = 100000000,
        .max_sample_bytes = (size_t)16 << 20,
        .max_images = MT_DATASET_MAX_IMAGES,
        .max_image_pixels = MT_IMAGE_DEFAULT_MAX_PIXELS,
    };
}

const char *mt_dataset_reason_name(mt_dataset_reason r) {
    static const char *const names[MT_DATASET_N_REASONS] = {
        "malformed JSON", "bad fields", "unknown role", "turn order", "placeholder count",
        "missing image",  "bad image",  "unsupported",  "too large",
    };
    return (unsigned)r < MT_DATASET_N_REASONS ? names[r] : "unknown reason";
}

/* --- pass 1: finding and normalising samples ------------------------------------------------------------------- */

static mt_status push(loader *L, int64_t line, int64_t index, rec **out) {
    if (L->n >= L->o.max_samples)
        return mt_err_set(L->err, MT_ERR_LIMIT, "%s:%lld: more than %zu samples (max_samples)", L->name,
                          (long long)line, L->o.max_samples);
    if (L->n == L->cap) {
        size_t cap = L->cap ? L->cap * 2 : 256;
        rec *r = mt_realloc(L->recs, cap * sizeof *r);
        if (!r) return mt_err_set(L->err, MT_ERR_NOMEM, "%s: out of memory for %zu samples", L->name, cap);
        L->recs = r;
        L->cap = cap;
    }
    rec *r = &L->recs[L->n++];
    *r = (rec){.line = line, .index = index};
    *out = r;
    return MT_OK;
}

static mt_status mark_bad(loader *L, rec *r, mt_dataset_reason why, mt_status code, const char *detail) {
    char buf[MT_ERR_MSG_MAX];
    snprintf(buf, sizeof buf, "%s:%lld: %s: %s", L->name, (long long)r->line, mt_dataset_reason_name(why), detail);
    char *msg = mt_strdup(buf);
    if (!msg) return mt_err_set(L->err, MT_ERR_NOMEM, "%s: out of memory", L->name);
    mt_ds_item_clear(&r->it);
    r->bad = true;
    r->reason = why;
    r->code = code;
    r->msg = msg;
    return MT_OK;
}

static bool all_space(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n') return false;
    return true;
}

/* One sample's JSON text, starting at line. */
static mt_status bad_sample(loader *L, rec *r, mt_dataset_reason why, mt_status code, const char *detail) {
    L->stop = L->o.strict;
    return mark_bad(L, r, why, code, detail);
}

static mt_status sample(loader *L, const char *text, size_t len, int64_t line, int64_t index) {
    rec *r = NULL;
    mt_status st = push(L, line, index, &r);
    if (st) return st;
    char detail[MT_ERR_MSG_MAX];
    if (len > L->o.max_sample_bytes) {
        snprintf(detail, sizeof detail, "%zu bytes of JSON, more than the %zu allowed (max_sample_bytes)", len,
                 L->o.max_sample_bytes);
        return bad_sample(L, r, MT_DATASET_TOO_LARGE, MT_ERR_LIMIT, detail);
    }
    cJSON *obj = NULL;
    mt_err e;
    st = mt_json_parse_from(text, len, NULL, (size_t)line, &obj, &e);
    if (st == MT_ERR_NOMEM) return mt_err_set(L->err, st, "%s:%lld: %s", L->name, (long long)line, e.msg);
    if (st) {
        if (L->whole)
            return mt_err_set(L->err, MT_ERR_FORMAT, "%s:%lld: element %lld: %s: a .json file must parse whole (a JSON "
                              "lines file skips a line that does not)", L->name, (long long)line, (long long)index,
                              e.msg);
        return bad_sample(L, r, MT_DATASET_BAD_JSON, MT_ERR_FORMAT, e.msg);
    }
    cJSON *fields = NULL;
    if (L->o.pref == MT_DATASET_PREF_PROMPT) {
        cJSON *conv = NULL;
        st = mt_ds_prompt_sample(obj, &conv, &e);
        if (!st && L->o.check_fields) st = L->o.check_fields(L->o.check_user, obj, &e);
        if (st) {
            cJSON_Delete(conv);
            cJSON_Delete(obj);
            if (st == MT_ERR_NOMEM) return mt_err_set(L->err, st, "%s:%lld: %s", L->name, (long long)line, e.msg);
            return bad_sample(L, r, MT_DATASET_BAD_FIELDS, st, e.msg);
        }
        fields = obj;
        obj = conv;
    } else if (L->o.pref != MT_DATASET_PREF_NONE) {
        cJSON *side = NULL;
        st = mt_ds_pref_side(obj, L->o.pref == MT_DATASET_PREF_REJECTED, &side, &e);
        cJSON_Delete(obj);
        if (st == MT_ERR_NOMEM) return mt_err_set(L->err, st, "%s:%lld: %s", L->name, (long long)line, e.msg);
        if (st) return bad_sample(L, r, MT_DATASET_BAD_FIELDS, st, e.msg);
        obj = side;
    }
    mt_dataset_reason why;
    st = mt_ds_normalize(obj, L->base_dir, &L->o, &r->it, &why, &e);
    cJSON_Delete(obj);
    if (st) cJSON_Delete(fields);
    if (st == MT_ERR_NOMEM) return mt_err_set(L->err, st, "%s:%lld: %s", L->name, (long long)line, e.msg);
    if (st) return bad_sample(L, r, why, st, e.msg);
    r->it.fields = fields;
    r->it.pub.fields = fields;
    r->it.pub.line = line;
    r->it.pub.index = index;
    return MT_OK;
}

static mt_status scan_lines(loader *L, const char *d, size_t n) {
    int64_t line = 1, index = 0;
    for (size_t pos = 0; pos < n && !L->stop; line++) {
        const char *nl = memchr(d + pos, '\n', n - pos);
        size_t len = nl ? (size_t)(nl - (d + pos)) : n - pos;
        if (!all_space(d + pos, len)) {
            mt_status st = sample(L, d + pos, len, line, index++);
            if (st) return st;
        }
        pos += len + 1;
    }
    return MT_OK;
}

/* Moves *pos past one JSON value, counting newlines into *line; false when the data ends inside it. */
static bool skip_value(const char *d, size_t n, size_t *pos, int64_t *line) {
    size_t p = *pos;
    int64_t depth = 0;
    bool in_str = false;
    for (; p < n; p++) {
        char ch = d[p];
        if (ch == '\n') (*line)++;
        if (in_str) {
            if (ch == '\\' && ++p < n && d[p] == '\n') (*line)++;
            else if (ch == '"') in_str = false;
            if (in_str || depth) continue;
            *pos = p + 1;
            return true;
        }
        if (ch == '"') in_str = true;
        else if (ch == '{' || ch == '[') depth++;
        else if (ch == '}' || ch == ']') {
            if (--depth <= 0) {
                *pos = p + (depth == 0);
                return true;
            }
        } else if (depth == 0 && (ch == ',' || ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n')) {
            *pos = p;
            return true;
        }
    }
    *pos = n;
    return false;
}

static size_t skip_space(const char *d, size_t n, size_t pos, int64_t *line) {
    for (; pos < n && (d[pos] == ' ' || d[pos] == '\t' || d[pos] == '\r' || d[pos] == '\n'); pos++)
        if (d[pos] == '\n') (*line)++;
    return pos;
}

/* d[pos] is the array's '['. */
static mt_status scan_array(loader *L, const char *d, size_t n, size_t pos, int64_t line) {
    L->whole = true;
    pos = skip_space(d, n, pos + 1, &line);
    if (pos < n && d[pos] == ']') return MT_OK;
    for (int64_t index = 0; !L->stop; index++) {
        size_t start = pos;
        int64_t start_line = line;
        if (pos < n && (d[pos] == ']' || d[pos] == ','))
            return mt_err_set(L->err, MT_ERR_FORMAT, "%s:%lld: expected element %lld, found '%c'", L->name,
                              (long long)line, (long long)index, d[pos]);
        if (pos >= n || !skip_value(d, n, &pos, &line)) {
            if (pos == start) break;
            return mt_err_set(L->err, MT_ERR_FORMAT, "%s:%lld: the file ends inside element %lld (truncated?)", L->name,
                              (long long)start_line, (long long)index);
        }
        mt_status st = sample(L, d + start, pos - start, start_line, index);
        if (st) return st;
        pos = skip_space(d, n, pos, &line);
        if (pos >= n) break;
        if (d[pos] == ']') {
            pos = skip_space(d, n, pos + 1, &line);
            if (pos < n)
                return mt_err_set(L->err, MT_ERR_FORMAT, "%s:%lld: text after the array's closing ']'", L->name,
                                  (long long)line);
            return MT_OK;
        }
        if (d[pos] != ',')
            return mt_err_set(L->err, MT_ERR_FORMAT, "%s:%lld: expected ',' or ']' after element %lld", L->name,
                              (long long)line, (long long)index);
        pos = skip_space(d, n, pos + 1, &line);
    }
    if (L->stop) return MT_OK;
    return mt_err_set(L->err, MT_ERR_FORMAT, "%s:%lld: the file ends before the array's closing ']' (truncated?)",
                      L->name, (long long)line);
}

static mt_status scan(loader *L, const char *d, size_t n) {
    size_t pos = n >= 3 && memcmp(d, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;
    int64_t line = 1;
    size_t first = skip_space(d, n, pos, &line);
    if (first >= n) return mt_err_set(L->err, MT_ERR_FORMAT, "%s: no samples: the file is empty", L->name);
    if (d[first] == '[') return scan_array(L, d, n, first, line);
    if (d[first] == '{') return scan_lines(L, d + pos, n - pos);
    return mt_err_set(L->err, MT_ERR_FORMAT, "%s:%lld: neither a JSON array nor JSON lines (starts with '%c')",
                      L->name, (long long)line, d[first] >= 32 && d[first] < 127 ? d[first] : '?');
}

/* --- pass 2: images -------------------------------------------------------------------------------------------- */

/* A video is a file FFmpeg reads or a folder of frames. */
static bool video_missing(const char *path, mt_err *err) {
    struct stat sb;
    if (stat(path, &sb) == 0 && (S_ISREG(sb.st_mode) || S_ISDIR(sb.st_mode))) return false;
    mt_err_set(err, MT_ERR_IO, "%s: no such video file or frame folder", path);
    return true;
}

static void check_rec(void *ctx, int64_t task, int thread) {
    loader *L = ctx;
    rec *r = &L->recs[task];
    for (size_t i = 0; !r->bad && i < r->it.pub.n_images; i++) {
        const char *path = r->it.images[i];
        mt_err missing;
        bool video = r->it.videos && r->it.videos[i];
        if (video ? video_missing(path, &missing) : mt_file_check_regular(path, &missing) != MT_OK) {
            if (mark_bad(L, r, MT_DATASET_IMAGE_MISSING, MT_ERR_IO, missing.msg)) atomic_store(&L->nomem, true);
            return;
        }
        /* a video is decoded when the trainer prepares it, with the model's sampling */
        if (video || L->o.check_images != MT_DATASET_CHECK_DECODE) continue;
        mt_image img = {0};
        mt_err e;
        mt_status s = mt_image_load(path, L->o.max_image_pixels, &img, &e);
        mt_image_free(&img);
        if (s == MT_ERR_NOMEM || (s && mark_bad(L, r, MT_DATASET_IMAGE_BAD, s, e.msg)))
            atomic_store(&L->nomem, true);
        if (s) return;
    }
}

/* --- pass 3 and the public API --------------------------------------------------------------------------------- */

static mt_status collect(loader *L, mt_dataset *ds) {
    if (L->n && !(ds->items = mt_malloc_array(L->n, sizeof *ds->items)))
        return mt_err_set(L->err, MT_ERR_NOMEM, "%s: out of memory", L->name);
    for (size_t i = 0; i < L->n; i++) {
        rec *r = &L->recs[i];
        if (!r->bad) {
            ds->items[ds->n++] = r->it;
            ds->n_images += r->it.pub.n_images;
            r->it = (mt_ds_item){0};
            continue;
        }
        if (L->o.strict) return mt_err_set(L->err, r->code, "%s", r->msg);
        if (ds->n_skipped == LOGGED_SKIPS && !L->o.quiet_skips)
            mt_log(MT_LOG_INFO, "%s: further skipped samples are logged at debug level", L->name);
        mt_log(ds->n_skipped < LOGGED_SKIPS && !L->o.quiet_skips ? MT_LOG_INFO : MT_LOG_DEBUG, "skipping %s", r->msg);
        ds->n_skipped++;
        ds->per_reason[r->reason]++;
        if (ds->n_kept < MT_DATASET_SKIPS_KEPT) {
            ds->skips[ds->n_kept++] = (mt_dataset_skip){r->line, r->index, r->reason, r->msg};
            r->msg = NULL;
        }
    }
    return MT_OK;
}

static void loader_free(loader *L) {
    for (size_t i = 0; i < L->n; i++) {
        mt_ds_item_clear(&L->recs[i].it);
        mt_free(L->recs[i].msg);
    }
    mt_free(L->recs);
}

void mt_dataset_free(mt_dataset *ds) {
    if (!ds) return;
    for (size_t i = 0; i < ds->n; i++) mt_ds_item_clear(&ds->items[i]);
    for (size_t i = 0; i < ds->n_kept; i++) mt_free((char *)ds->skips[i].msg);
    mt_free(ds->items);
    mt_free(ds->skips);
    mt_free(ds->name);
    mt_free(ds);
}

static mt_dataset_opts fill_opts(const mt_dataset_opts *opts) {
    mt_dataset_opts d = mt_dataset_opts_default(), o = opts ? *opts : d;
    if (!o.max_file_bytes) o.max_file_bytes = d.max_file_bytes;
    if (!o.max_samples) o.max_samples = d.max_samples;
    if (!o.max_sample_bytes) o.max_sample_bytes = d.max_sample_bytes;
    if (!o.max_images) o.max_images = d.max_images;
    if (o.max_image_pixels <= 0) o.max_image_pixels = d.max_image_pixels;
    return o;
}

mt_status mt_dataset_load_buffer(const char *data, size_t size, const char *name, const char *base_dir,
                                 const mt_dataset_opts *opts, mt_dataset **out, mt_err *err) {
    if (!name) name = "dataset";
    if (!out || (!data && size))
        return mt_err_set(err, MT_ERR_INVALID_ARG, "%s: mt_dataset_load_buffer needs data and an output", name);
    loader L = {.name = name, .o = fill_opts(opts), .err = err};
    L.base_dir = L.o.image_dir ? L.o.image_dir : base_dir ? base_dir : ".";
    if (size > L.o.max_file_bytes)
        return mt_err_set(err, MT_ERR_LIMIT, "%s: %zu bytes, more than the %zu allowed (max_file_bytes)", name, size,
                          L.o.max_file_bytes);
    mt_dataset *ds = mt_calloc(1, sizeof *ds);
    mt_status st = ds ? MT_OK : mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory", name);
    if (!st && (!(ds->name = mt_strdup(name)) ||
                !(ds->skips = mt_malloc_array(MT_DATASET_SKIPS_KEPT, sizeof *ds->skips))))
        st = mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory", name);
    if (!st) st = scan(&L, data ? data : "", size);
    if (!st && L.o.check_images != MT_DATASET_CHECK_NONE) {
        mt_pool_run(L.o.pool, (int64_t)L.n, check_rec, &L);
        if (atomic_load(&L.nomem)) st = mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory while checking images", name);
    }
    if (!st) st = collect(&L, ds);
    loader_free(&L);
    if (st) {
        mt_dataset_free(ds);
        return st;
    }
    *out = ds;
    return MT_OK;
}

/* --- InternVL meta files ----------------------------------------------------------------------------------- */

static mt_status load_path(const char *path, const mt_dataset_opts *opts, bool allow_meta, mt_dataset **out,
                           mt_err *err);

/* Whether tree is a meta file: an object whose every member is an object naming an "annotation" (a sample never
 * is: its members are strings and arrays). */
static bool is_meta(const cJSON *tree) {
    if (!cJSON_IsObject(tree) || !tree->child) return false;
    for (const cJSON *e = tree->child; e; e = e->next)
        if (!cJSON_IsObject(e) || !cJSON_GetObjectItemCaseSensitive(e, "annotation")) return false;
    return true;
}

static mt_status item_copy(mt_ds_item *dst, const mt_ds_item *src) {
    *dst = (mt_ds_item){.pub = src->pub};
    dst->msgs = cJSON_Duplicate(src->msgs, true);
    dst->tools = src->tools ? cJSON_Duplicate(src->tools, true) : NULL;
    dst->id = src->id ? mt_strdup(src->id) : NULL;
    dst->fields = src->fields ? cJSON_Duplicate(src->fields, true) : NULL;
    dst->images = src->pub.n_images ? mt_calloc(src->pub.n_images, sizeof *dst->images) : NULL;
    dst->videos = src->videos ? mt_malloc_array(src->pub.n_images, sizeof *dst->videos) : NULL;
    bool ok = dst->msgs && (!src->tools || dst->tools) && (!src->id || dst->id) && (!src->pub.n_images || dst->images) &&
              (!src->videos || dst->videos) && (!src->fields || dst->fields);
    if (ok && src->videos) memcpy(dst->videos, src->videos, src->pub.n_images * sizeof *dst->videos);
    for (size_t i = 0; ok && i < src->pub.n_images; i++) ok = (dst->images[i] = mt_strdup(src->images[i])) != NULL;
    dst->pub.messages = dst->msgs;
    dst->pub.tools = dst->tools;
    dst->pub.images = (const char *const *)dst->images;
    dst->pub.videos = dst->videos;
    dst->pub.id = dst->id;
    dst->pub.fields = dst->fields;
    if (ok) return MT_OK;
    mt_ds_item_clear(dst);
    return MT_ERR_NOMEM;
}

/* Moves the first take samples of src into dst, then copies of them until repeat copies are there; src's skips
 * are counted in dst. src keeps what was not moved. */
static mt_status append_set(mt_dataset *dst, mt_dataset *src, size_t take, int64_t repeat, mt_err *err) {
    size_t add = take * (size_t)repeat;
    mt_ds_item *items = add ? mt_realloc(dst->items, (dst->n + add) * sizeof *items) : dst->items;
    if (add && !items) return mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory", dst->name);
    dst->items = items;
    size_t first = dst->n;
    for (size_t i = 0; i < take; i++) {
        items[dst->n++] = src->items[i];
        src->items[i] = (mt_ds_item){0};
    }
    for (int64_t r = 1; r < repeat; r++)
        for (size_t i = 0; i < take; i++) {
            if (item_copy(&items[dst->n], &items[first + i]))
                return mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory repeating %s", dst->name, src->name);
            dst->n++;
        }
    for (size_t i = first; i < dst->n; i++) dst->n_images += items[i].pub.n_images;
    dst->n_skipped += src->n_skipped;
    for (int r = 0; r < MT_DATASET_N_REASONS; r++) dst->per_reason[r] += src->per_reason[r];
    for (size_t i = 0; i < src->n_kept && dst->n_kept < MT_DATASET_SKIPS_KEPT; i++) {
        dst->skips[dst->n_kept++] = src->skips[i];
        src->skips[i].msg = NULL;
    }
    return MT_OK;
}

/* One set of a meta file: its annotation loaded with root as the image folder, cut or repeated. */
static mt_status load_set(const char *path, const cJSON *set, const mt_dataset_opts *o, mt_dataset *ds, mt_err *err) {
    char what[512];
    snprintf(what, sizeof what, "%s: \"%.200s\"", path, set->string);
    const char *ann = NULL, *root = NULL;
    double repeat = 0, length = 0;
    mt_status st = mt_json_str_req(set, "annotation", what, &ann, err);
    if (!st) st = mt_json_str_opt(set, "root", what, &root, err);
    if (!st) st = mt_json_num_req(set, "repeat_time", what, 0, 1e6, &repeat, err);
    if (!st) st = mt_json_num_opt(set, "length", what, 0, 1e15, &length, err);
    if (st) return st;
    if (!(repeat > 0) || (repeat > 1 && repeat != floor(repeat)))
        return mt_err_set(err, MT_ERR_FORMAT, "%s: field \"repeat_time\" = %g: it must be above 0 and, above 1, a "
                          "whole number (below 1 it takes that share of the set, as InternVL does)", what, repeat);
    if (cJSON_GetObjectItemCaseSensitive(set, "max_dynamic_patch"))
        mt_log(MT_LOG_INFO, "%s: \"max_dynamic_patch\" is not applied per set: images are tiled as the model's "
               "processor says", what);
    mt_dataset_opts so = *o;
    so.image_dir = root && root[0] ? root : NULL;
    mt_dataset *one = NULL;
    if ((st = load_path(ann, &so, false, &one, err))) return mt_err_prefix(err, "%s", what);
    /* InternVL: raw_data[:int(len * repeat_time)] below 1, raw_data * repeat_time above */
    size_t take = repeat < 1 ? (size_t)floor((double)one->n * repeat) : one->n;
    int64_t times = repeat < 1 ? 1 : (int64_t)repeat;
    mt_log(MT_LOG_INFO, "%s: %zu of %zu samples x %lld", what, take, one->n, (long long)times);
    st = append_set(ds, one, take, times, err);
    mt_dataset_free(one);
    return st;
}

static mt_status load_meta(const char *path, const cJSON *tree, const mt_dataset_opts *o, mt_dataset **out,
                           mt_err *err) {
    if (o->image_dir)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "%s is a meta file: each of its sets names its own image folder "
                          "(\"root\"), so an image folder (--image-dir %s) does not apply", path, o->image_dir);
    mt_dataset *ds = mt_calloc(1, sizeof *ds);
    mt_status st = ds ? MT_OK : mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory", path);
    if (!st && (!(ds->name = mt_strdup(path)) ||
                !(ds->skips = mt_malloc_array(MT_DATASET_SKIPS_KEPT, sizeof *ds->skips))))
        st = mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory", path);
    for (const cJSON *set = tree->child; set && !st; set = set->next) st = load_set(path, set, o, ds, err);
    if (!st && ds->n > o->max_samples)
        st = mt_err_set(err, MT_ERR_LIMIT, "%s: %zu samples, more than the %zu allowed (max_samples)", path, ds->n,
                        o->max_samples);
    if (st) {
        mt_dataset_free(ds);
        return st;
    }
    *out = ds;
    return MT_OK;
}

/* A file whose first byte is '{' and which parses whole as one object of sets is a meta file. A JSON-lines file
 * of several samples fails that parse at its second line; one of a single sample is no object of sets. */
static mt_status try_meta(const char *path, const mt_mapping *m, const mt_dataset_opts *o, bool allow_meta,
                          mt_dataset **out, bool *done, mt_err *err) {
    *done = false;
    size_t pos = 0;
    const char *d = (const char *)m->data;
    if (m->size >= 3 && memcmp(d, "\xEF\xBB\xBF", 3) == 0) pos = 3;
    while (pos < m->size && (d[pos] == ' ' || d[pos] == '\t' || d[pos] == '\r' || d[pos] == '\n')) pos++;
    if (pos >= m->size || d[pos] != '{' || m->size > MT_JSON_MAX_FILE) return MT_OK;
    mt_err ignored;
    cJSON *tree = NULL;
    if (mt_json_parse(d + pos, m->size - pos, path, &tree, &ignored)) return MT_OK;
    mt_status st = MT_OK;
    if (is_meta(tree)) {
        *done = true;
        st = allow_meta ? load_meta(path, tree, o, out, err)
                        : mt_err_set(err, MT_ERR_FORMAT, "%s is itself a meta file (an annotation holds samples)",
                                     path);
    }
    cJSON_Delete(tree);
    return st;
}

mt_status mt_dataset_load(const char *path, const mt_dataset_opts *opts, mt_dataset **out, mt_err *err) {
    if (!path || !out) return mt_err_set(err, MT_ERR_INVALID_ARG, "mt_dataset_load needs a path and an output");
    return load_path(path, opts, true, out, err);
}

static mt_status load_path(const char *path, const mt_dataset_opts *opts, bool allow_meta, mt_dataset **out,
                           mt_err *err) {
    mt_dataset_opts o = fill_opts(opts);
    mt_mapping m;
    mt_status st = mt_file_map(path, &m, err);
    if (st) return st;
    if (m.size > o.max_file_bytes) {
        mt_file_unmap(&m);
        return mt_err_set(err, MT_ERR_LIMIT, "%s: %zu bytes, more than the %zu allowed (max_file_bytes)", path,
                          m.size, o.max_file_bytes);
    }
    bool meta = false;
    st = try_meta(path, &m, &o, allow_meta, out, &meta, err);
    if (st || meta) {
        mt_file_unmap(&m);
        return st;
    }
    const char *slash = strrchr(path, '/');
    char *dir = slash ? mt_strndup(path, slash == path ? 1 : (size_t)(slash - path)) : mt_strdup(".");
    if (!dir) {
        mt_file_unmap(&m);
        return mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory", path);
    }
    st = mt_dataset_load_buffer((const char *)m.data, m.size, path, dir, &o, out, err);
    mt_free(dir);
    mt_file_unmap(&m);
    return st;
}

size_t mt_dataset_count(const mt_dataset *ds) { return ds ? ds->n : 0; }

const mt_sample *mt_dataset_sample(const mt_dataset *ds, size_t i) {
    return ds && i < ds->n ? &ds->items[i].pub : NULL;
}

size_t mt_dataset_skipped(const mt_dataset *ds) { return ds ? ds->n_skipped : 0; }

size_t mt_dataset_skipped_for(const mt_dataset *ds, mt_dataset_reason r) {
    return ds && (unsigned)r < MT_DATASET_N_REASONS ? ds->per_reason[r] : 0;
}

const mt_dataset_skip *mt_dataset_skip_at(const mt_dataset *ds, size_t i) {
    return ds && i < ds->n_kept ? &ds->skips[i] : NULL;
}

void mt_dataset_log_summary(const mt_dataset *ds) {
    if (!ds) return;
    char why[512] = "";
    size_t len = 0;
    for (int r = 0; r < MT_DATASET_N_REASONS && len < sizeof why; r++)
        if (ds->per_reason[r])
            len += (size_t)snprintf(why + len, sizeof why - len, "%s%s %zu", len ? ", " : " (",
                                    mt_dataset_reason_name((mt_dataset_reason)r), ds->per_reason[r]);
    if (len && len < sizeof why - 1) strcat(why, ")");
    size_t videos = 0;
    for (size_t i = 0; i < ds->n; i++)
        for (size_t k = 0; ds->items[i].videos && k < ds->items[i].pub.n_images; k++) videos += ds->items[i].videos[k];
    char vids[48] = "";
    if (videos) snprintf(vids, sizeof vids, " and %zu videos", videos);
    mt_log(MT_LOG_INFO, "%s: %zu samples with %zu images%s, %zu skipped%s", ds->name, ds->n, ds->n_images - videos, vids,
           ds->n_skipped, why);
}
