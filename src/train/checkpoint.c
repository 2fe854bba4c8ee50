/* train/checkpoint: atomic checkpoint folders (see checkpoint.h for the layout and the guarantees). */
#define _GNU_SOURCE
#include "train/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/file.h"
#include "base/json.h"
#include "io/safetensors.h"

#define CK_PATH 4096
#define CK_PREFIX "checkpoint-"
#define CK_TMP_PREFIX ".tmp-checkpoint-"
#define CK_MODEL "model.safetensors"
#define CK_OPTIM "optimizer.safetensors"
#define CK_STATE "trainer_state.json"

/* "checkpoint-<digits>" -> step; false for anything else (temporary folders, other files). */
static bool parse_step_name(const char *name, int64_t *step) {
    if (strncmp(name, CK_PREFIX, strlen(CK_PREFIX)) != 0) return false;
    const char *d = name + strlen(CK_PREFIX);
    size_t len = strlen(d);
    if (len == 0 || len > 18) return false;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (d[i] < '0' || d[i] > '9') return false;
        v = v * 10 + (d[i] - '0');
    }
    *step = v;
    return true;
}

/* A decimal u63 from a metadata string. */
static bool parse_count(const char *s, int64_t *out) {
    if (!s || !*s || strlen(s) > 18) return false;
    int64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return false;
        v = v * 10 + (*s - '0');
    }
    *out = v;
    return true;
}

static mt_status fsync_path(const char *path, mt_err *err) {
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return mt_err_set(err, MT_ERR_IO, "%s: cannot open to fsync: %s", path, strerror(errno));
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    if (rc != 0) return mt_err_set(err, MT_ERR_IO, "%s: fsync failed: %s", path, strerror(e));
    return MT_OK;
}

/* Whether name is a file this module writes into a checkpoint folder: one of its three files, or the temporary
 * file mt_file_write_atomic makes of one ("NAME.tmp.PID"). */
static bool own_file(const char *name) {
    static const char *const files[] = {CK_MODEL, CK_OPTIM, CK_STATE};
    for (size_t i = 0; i < MT_ARRAY_LEN(files); i++) {
        size_t n = strlen(files[i]);
        if (strncmp(name, files[i], n) != 0) continue;
        if (!name[n]) return true;
        if (strncmp(name + n, ".tmp.", 5) != 0 || !name[n + 5]) continue;
        bool digits = true;
        for (const char *c = name + n + 5; *c; c++) digits &= *c >= '0' && *c <= '9';
        if (digits) return true;
    }
    return false;
}

/* Removes a checkpoint folder: the files this module writes, then the folder. Anything else in it (a user's file,
 * a subfolder) is left alone and so is the folder. Returns false when the folder stayed. */
static bool remove_checkpoint_dir(const char *path) {
    DIR *d = opendir(path);
    if (!d) return errno == ENOENT;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (own_file(e->d_name)) unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
    return rmdir(path) == 0;
}

/* The run id a checkpoint's trainer_state.json records ("" when it records none, NULL when unreadable); *owner is
 * the caller's to free. */
static char *owner_of(const char *ckpt_dir) {
    char path[CK_PATH];
    cJSON *j = NULL;
    mt_err err;
    if (snprintf(path, sizeof path, "%s/" CK_STATE, ckpt_dir) >= (int)sizeof path ||
        mt_json_parse_file(path, MT_JSON_MAX_FILE, &j, &err))
        return NULL;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "run_id");
    char *owner = mt_strdup(cJSON_IsString(id) ? id->valuestring : "");
    cJSON_Delete(j);
    return owner;
}

/* Whether checkpoint folder dir was written by run run_id (NULL or "": a run that records none). */
static bool owned_by(const char *dir, const char *run_id) {
    char *owner = owner_of(dir);
    bool same = owner && strcmp(owner, run_id ? run_id : "") == 0;
    mt_free(owner);
    return same;
}

/* Whether name is a temporary checkpoint folder of run run_id: ".tmp-checkpoint-RUNID-STEP-PID", or for a run
 * without an id ".tmp-checkpoint-STEP-PID". */
static bool tmp_of(const char *name, const char *run_id) {
    size_t n = strlen(CK_TMP_PREFIX);
    if (strncmp(name, CK_TMP_PREFIX, n) != 0) return false;
    name += n;
    if (*run_id) {
        size_t k = strlen(run_id);
        if (strncmp(name, run_id, k) != 0 || name[k] != '-') return false;
        name += k + 1;
    }
    int dashes = 0;
    bool digit = false;
    for (; *name; name++) {
        if (*name == '-' && digit) dashes++, digit = false;
        else if (*name >= '0' && *name <= '9') digit = true;
        else return false;
    }
    return dashes == 1 && digit;
}

/* The state's run id, or "" */
static const char *run_id_of(const cJSON *state) {
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(state, "run_id");
    return cJSON_IsString(id) ? id->valuestring : "";
}

static mt_status check_params(const mt_param *params, size_t n, mt_err *err) {
    for (size_t i = 0; i < n; i++) {
        const mt_param *p = &params[i];
        if (!p->name || (!p->data && p->n > 0) || p->ndim < 0 || p->ndim > 4)
            return mt_err_set(err, MT_ERR_INVALID_ARG, "checkpoint: parameter %zu (%s) is malformed", i,
                              p->name ? p->name : "no name");
        int64_t prod = 1;
        for (int d = 0; d < p->ndim; d++)
            if (p->shape[d] < 0 || !mt_mul_i64_ok(prod, p->shape[d], &prod)) prod = -1;
        if (prod != p->n)
            return mt_err_set(err, MT_ERR_INVALID_ARG, "checkpoint: parameter \"%s\": n = %lld does not match its shape",
                              p->name, (long long)p->n);
    }
    return MT_OK;
}

static mt_st_tensor f32_tensor(const char *name, const mt_param *p, const float *data) {
    mt_st_tensor t = {.name = name, .dtype = MT_F32, .ndim = p->ndim, .data = data};
    for (int d = 0; d < p->ndim; d++) t.shape[d] = p->shape[d];
    t.nbytes = (size_t)p->n * sizeof(float);
    return t;
}

static mt_status write_model(const char *dir, int64_t step, const mt_param *params, size_t n, mt_err *err) {
    char path[CK_PATH], step_s[32];
    mt_status s = mt_path_join(path, sizeof path, dir, CK_MODEL, err);
    if (s) return s;
    mt_st_tensor *t = mt_malloc_array(MT_MAX(n, (size_t)1), sizeof *t);
    if (!t) return mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < n; i++) t[i] = f32_tensor(params[i].name, &params[i], params[i].data);
    snprintf(step_s, sizeof step_s, "%" PRId64, step);
    const char *meta[] = {"format", "pt", "step", step_s, NULL};
    s = mt_safetensors_write(path, t, n, meta, err);
    mt_free(t);
    return s;
}

static mt_status write_optimizer(const char *dir, const mt_adamw *opt, mt_err *err) {
    char path[CK_PATH], t_s[32];
    mt_status s = mt_path_join(path, sizeof path, dir, CK_OPTIM, err);
    if (s) return s;
    size_t n = mt_adamw_count(opt);
    mt_st_tensor *t = mt_calloc(MT_MAX(2 * n, (size_t)1), sizeof *t);
    char **names = mt_calloc(MT_MAX(2 * n, (size_t)1), sizeof *names);
    if (!t || !names) s = mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < n && !s; i++) {
        const mt_param *p = mt_adamw_param(opt, i);
        size_t len = strlen(p->name) + sizeof "exp_avg_sq/";
        names[2 * i] = mt_malloc(len);
        names[2 * i + 1] = mt_malloc(len);
        if (!names[2 * i] || !names[2 * i + 1]) {
            s = mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory", path);
            break;
        }
        snprintf(names[2 * i], len, "exp_avg/%s", p->name);
        snprintf(names[2 * i + 1], len, "exp_avg_sq/%s", p->name);
        t[2 * i] = f32_tensor(names[2 * i], p, mt_adamw_exp_avg(opt, i));
        t[2 * i + 1] = f32_tensor(names[2 * i + 1], p, mt_adamw_exp_avg_sq(opt, i));
    }
    if (!s) {
        snprintf(t_s, sizeof t_s, "%" PRId64, mt_adamw_t(opt));
        const char *meta[] = {"optimizer", "adamw", "t", t_s, NULL};
        s = mt_safetensors_write(path, t, 2 * n, meta, err);
    }
    for (size_t i = 0; names && i < 2 * n; i++) mt_free(names[i]);
    mt_free(names);
    mt_free(t);
    return s;
}

static mt_status write_state(const char *dir, const cJSON *state, mt_err *err) {
    char path[CK_PATH];
    mt_status s = mt_path_join(path, sizeof path, dir, CK_STATE, err);
    if (s) return s;
    char *text = mt_json_print(state, true);
    if (!text) return mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory printing the trainer state", path);
    s = mt_file_write_atomic(path, text, strlen(text), err);
    mt_free(text);
    return s;
}

/* Checkpoint steps found in out_dir, ascending; *steps is NULL when there are none. */
static mt_status list_steps(const char *out_dir, int64_t **steps, size_t *count, mt_err *err) {
    *steps = NULL;
    *count = 0;
    DIR *d = opendir(out_dir);
    if (!d) return mt_err_set(err, MT_ERR_IO, "%s: cannot list: %s", out_dir, strerror(errno));
    size_t cap = 0;
    struct dirent *e;
    mt_status s = MT_OK;
    while ((e = readdir(d)) != NULL) {
        int64_t st;
        if (!parse_step_name(e->d_name, &st)) continue;
        if (*count == cap) {
            cap = cap ? 2 * cap : 16;
            int64_t *grown = mt_realloc(*steps, cap * sizeof *grown);
            if (!grown) {
                s = mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory listing checkpoints", out_dir);
                break;
            }
            *steps = grown;
        }
        (*steps)[(*count)++] = st;
    }
    closedir(d);
    if (s) {
        mt_free(*steps);
        *steps = NULL;
        *count = 0;
        return s;
    }
    for (size_t i = 1; i < *count; i++) /* insertion sort: a handful of entries */
        for (size_t j = i; j > 0 && (*steps)[j - 1] > (*steps)[j]; j--) {
            int64_t t = (*steps)[j];
            (*steps)[j] = (*steps)[j - 1];
            (*steps)[j - 1] = t;
        }
    return MT_OK;
}

/* Removes this run's checkpoints beyond its newest keep_last, and the temporary folders its crashed saves left
 * (named with its run id). Checkpoints and temporary folders of other runs, and anything mitten did not write, stay. */
static void prune(const char *out_dir, int keep_last, const char *own_tmp, const char *run_id) {
    char path[CK_PATH];
    DIR *d = opendir(out_dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (!tmp_of(e->d_name, run_id)) continue;
            if (snprintf(path, sizeof path, "%s/%s", out_dir, e->d_name) >= (int)sizeof path) continue;
            if (strcmp(path, own_tmp) != 0 && !remove_checkpoint_dir(path))
                mt_log(MT_LOG_INFO, "%s: kept a leftover temporary checkpoint (it holds files mitten did not write)",
                       path);
        }
        closedir(d);
    }
    if (keep_last <= 0) return;
    int64_t *steps;
    size_t count, mine = 0;
    if (list_steps(out_dir, &steps, &count, NULL) != MT_OK) return;
    for (size_t i = count; i-- > 0;) { /* newest first: this run's beyond keep_last go */
        snprintf(path, sizeof path, "%s/" CK_PREFIX "%" PRId64, out_dir, steps[i]);
        if (!owned_by(path, run_id) || ++mine <= (size_t)keep_last) continue;
        if (!remove_checkpoint_dir(path))
            mt_log(MT_LOG_INFO, "%s: kept an old checkpoint (it holds files mitten did not write)", path);
    }
    mt_free(steps);
}

/* Renames tmp to final; when final exists (the same step saved again) the two are exchanged atomically and the
 * old one, now at tmp, is removed. */
static mt_status publish(const char *tmp, const char *final, mt_err *err) {
    if (rename(tmp, final) == 0) return MT_OK;
    if (errno != ENOTEMPTY && errno != EEXIST)
        return mt_err_set(err, MT_ERR_IO, "%s: cannot rename into place: %s", final, strerror(errno));
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_EXCHANGE) != 0)
        return mt_err_set(err, MT_ERR_IO, "%s: cannot replace the existing checkpoint: %s", final, strerror(errno));
    if (!remove_checkpoint_dir(tmp))
        mt_log(MT_LOG_INFO, "%s: kept the replaced checkpoint (it holds files mitten did not write)", tmp);
    return MT_OK;
}

mt_status mt_checkpoint_save(const char *out_dir, int64_t step, const mt_param *params, size_t n,
                             const mt_adamw *opt, const cJSON *state, int keep_last, mt_err *err) {
    if (step < 0 || !state)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "%s: checkpoint needs a step >= 0 and a trainer state", out_dir);
    mt_status s = check_params(params, n, err);
    if (s) return s;
    if ((s = mt_dir_make(out_dir, err))) return s;
    char tmp[CK_PATH], final[CK_PATH];
    const char *run_id = run_id_of(state);
    if (strlen(run_id) > 64 || strchr(run_id, '/'))
        return mt_err_set(err, MT_ERR_INVALID_ARG, "%s: run id \"%.80s\" is not a short name", out_dir, run_id);
    if (snprintf(tmp, sizeof tmp, "%s/" CK_TMP_PREFIX "%s%s%" PRId64 "-%ld", out_dir, run_id, *run_id ? "-" : "",
                 step, (long)getpid()) >= (int)sizeof tmp ||
        snprintf(final, sizeof final, "%s/" CK_PREFIX "%" PRId64, out_dir, step) >= (int)sizeof final)
        return mt_err_set(err, MT_ERR_LIMIT, "%s: path too long", out_dir);
    if (snprintf(final, sizeof final, "%s/" CK_PREFIX "%" PRId64, out_dir, step) < (int)sizeof final &&
        mt_file_exists(final) && !owned_by(final, run_id))
        return mt_err_set(err, MT_ERR_IO, "%s exists and was not written by this run: mitten does not replace it",
                          final);
    remove_checkpoint_dir(tmp);
    if (mkdir(tmp, 0755) != 0) return mt_err_set(err, MT_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));

    s = write_model(tmp, step, params, n, err);
    if (!s && opt) s = write_optimizer(tmp, opt, err);
    if (!s) s = write_state(tmp, state, err);
    if (!s) s = fsync_path(tmp, err);
    if (!s) s = publish(tmp, final, err);
    if (s) {
        remove_checkpoint_dir(tmp);
        return mt_err_prefix(err, "%s", final);
    }
    /* The rename is durable only once the parent folder is on disk; until then the old checkpoints stay. */
    s = fsync_path(out_dir, err);
    if (s) return s;
    prune(out_dir, keep_last, tmp, run_id);
    return MT_OK;
}

static bool complete(const char *dir) {
    char path[CK_PATH];
    return snprintf(path, sizeof path, "%s/" CK_MODEL, dir) < (int)sizeof path && mt_file_exists(path) &&
           snprintf(path, sizeof path, "%s/" CK_STATE, dir) < (int)sizeof path && mt_file_exists(path);
}

mt_status mt_checkpoint_latest(const char *out_dir, const char *run_id, char *path, size_t cap, int64_t *step,
                               mt_err *err) {
    int64_t *steps;
    size_t count;
    mt_status s = list_steps(out_dir, &steps, &count, err);
    if (s) return s;
    char buf[CK_PATH];
    int64_t found = -1;
    for (size_t i = count; i-- > 0;) {
        snprintf(buf, sizeof buf, "%s/" CK_PREFIX "%" PRId64, out_dir, steps[i]);
        if (complete(buf) && owned_by(buf, run_id)) {
            found = steps[i];
            break;
        }
    }
    mt_free(steps);
    if (found < 0) buf[0] = 0;
    if (strlen(buf) >= cap) return mt_err_set(err, MT_ERR_LIMIT, "%s: checkpoint path too long", out_dir);
    memcpy(path, buf, strlen(buf) + 1);
    *step = found;
    return MT_OK;
}

/* The tensor that must hold (shape of p) in st, or an error naming file and tensor. */
static mt_status expect(const mt_safetensors *st, const char *file, const char *name, const mt_param *p,
                        const mt_st_tensor **out, mt_err *err) {
    const mt_st_tensor *t = mt_safetensors_find(st, name);
    if (!t) return mt_err_set(err, MT_ERR_FORMAT, "%s: no tensor \"%s\" (saved for other trainable parameters?)", file, name);
    if (t->dtype != MT_F32)
        return mt_err_set(err, MT_ERR_FORMAT, "%s: tensor \"%s\" is %s, expected F32", file, name, t->st_dtype);
    bool same = t->ndim == p->ndim;
    for (int d = 0; same && d < p->ndim; d++) same = t->shape[d] == p->shape[d];
    if (!same || t->nbytes != (size_t)p->n * sizeof(float)) {
        char want[96] = "", got[160] = "";
        for (int d = 0; d < p->ndim; d++)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", d ? ", " : "", (long long)p->shape[d]);
        for (int d = 0; d < t->ndim; d++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? ", " : "", (long long)t->shape[d]);
        return mt_err_set(err, MT_ERR_FORMAT, "%s: tensor \"%s\" has shape [%s], the run needs [%s]", file, name, got,
                          want);
    }
    *out = t;
    return MT_OK;
}

typedef struct load_plan {
    mt_safetensors *model, *optim;
    const mt_st_tensor **data; /* (n) source of each parameter */
    const mt_st_tensor **m, **v; /* (opt count) moments */
    int64_t step, t;
    cJSON *state;
} load_plan;

static void plan_free(load_plan *p) {
    mt_safetensors_close(p->model);
    mt_safetensors_close(p->optim);
    mt_free(p->data);
    mt_free(p->m);
    mt_free(p->v);
    cJSON_Delete(p->state);
}

static mt_status plan_model(const char *dir, const mt_param *params, size_t n, load_plan *p, mt_err *err) {
    char path[CK_PATH];
    mt_status s = mt_path_join(path, sizeof path, dir, CK_MODEL, err);
    if (!s) s = mt_safetensors_open_file(path, &p->model, err);
    if (s) return s;
    if (!parse_count(mt_safetensors_meta(p->model, "step"), &p->step))
        return mt_err_set(err, MT_ERR_FORMAT, "%s: __metadata__ \"step\" is missing or not a count", path);
    if (mt_safetensors_count(p->model) != n)
        return mt_err_set(err, MT_ERR_FORMAT, "%s: holds %zu tensors, the run trains %zu", path,
                          mt_safetensors_count(p->model), n);
    p->data = mt_malloc_array(MT_MAX(n, (size_t)1), sizeof *p->data);
    if (!p->data) return mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < n && !s; i++) s = expect(p->model, path, params[i].name, &params[i], &p->data[i], err);
    return s;
}

static mt_status plan_optim(const char *dir, const mt_adamw *opt, load_plan *p, mt_err *err) {
    char path[CK_PATH], name[CK_PATH];
    mt_status s = mt_path_join(path, sizeof path, dir, CK_OPTIM, err);
    if (!s) s = mt_safetensors_open_file(path, &p->optim, err);
    if (s) return s;
    const char *kind = mt_safetensors_meta(p->optim, "optimizer");
    if (!kind || strcmp(kind, "adamw") != 0)
        return mt_err_set(err, MT_ERR_FORMAT, "%s: __metadata__ \"optimizer\" is not \"adamw\"", path);
    if (!parse_count(mt_safetensors_meta(p->optim, "t"), &p->t))
        return mt_err_set(err, MT_ERR_FORMAT, "%s: __metadata__ \"t\" is missing or not a count", path);
    size_t n = mt_adamw_count(opt);
    if (mt_safetensors_count(p->optim) != 2 * n)
        return mt_err_set(err, MT_ERR_FORMAT, "%s: holds %zu tensors, expected 2 moments for each of %zu parameters",
                          path, mt_safetensors_count(p->optim), n);
    p->m = mt_malloc_array(MT_MAX(n, (size_t)1), sizeof *p->m);
    p->v = mt_malloc_array(MT_MAX(n, (size_t)1), sizeof *p->v);
    if (!p->m || !p->v) return mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < n && !s; i++) {
        const mt_param *par = mt_adamw_param(opt, i);
        if (snprintf(name, sizeof name, "exp_avg/%s", par->name) >= (int)sizeof name)
            return mt_err_set(err, MT_ERR_LIMIT, "%s: parameter name too long", path);
        s = expect(p->optim, path, name, par, &p->m[i], err);
        snprintf(name, sizeof name, "exp_avg_sq/%s", par->name);
        if (!s) s = expect(p->optim, path, name, par, &p->v[i], err);
    }
    return s;
}

mt_status mt_checkpoint_load(const char *ckpt_dir, const mt_param *params, size_t n, mt_adamw *opt, cJSON **state,
                             int64_t *step, mt_err *err) {
    mt_status s = check_params(params, n, err);
    if (s) return s;
    load_plan p = {0};
    char path[CK_PATH];
    s = plan_model(ckpt_dir, params, n, &p, err);
    if (!s && opt) s = plan_optim(ckpt_dir, opt, &p, err);
    if (!s) s = mt_path_join(path, sizeof path, ckpt_dir, CK_STATE, err);
    if (!s) s = mt_json_parse_file(path, MT_JSON_MAX_FILE, &p.state, err);
    if (!s && !cJSON_IsObject(p.state)) s = mt_err_set(err, MT_ERR_FORMAT, "%s: not a JSON object", path);
    if (s) {
        plan_free(&p);
        return s;
    }
    /* Everything is validated: from here nothing can fail. */
    for (size_t i = 0; i < n; i++)
        if (params[i].n > 0) memcpy(params[i].data, p.data[i]->data, p.data[i]->nbytes);
    for (size_t i = 0; opt && i < mt_adamw_count(opt); i++) mt_adamw_restore(opt, i, p.m[i]->data, p.v[i]->data);
    if (opt) mt_adamw_set_t(opt, p.t);
    *state = p.state;
    *step = p.step;
    p.state = NULL;
    plan_free(&p);
    return MT_OK;
}
