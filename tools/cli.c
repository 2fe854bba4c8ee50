/* tools/cli: argument helpers shared by the subcommands. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "io/hf_cache.h"

bool mt_cli_flag(mt_cli_args *a, const char *name) { return strcmp(a->argv[a->i], name) == 0; }

bool mt_cli_opt(mt_cli_args *a, const char *name, const char **value, int *usage_error) {
    if (strcmp(a->argv[a->i], name) != 0) return false;
    if (a->i + 1 >= a->argc) {
        fprintf(stderr, "mitten: option %s needs a value\n", name);
        *usage_error = 1;
        return true;
    }
    *value = a->argv[++a->i];
    return true;
}

bool mt_cli_help(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return true;
    return false;
}

bool mt_cli_parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

bool mt_cli_parse_f32(const char *s, float lo, float hi, float *out) {
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) return false;
    *out = v;
    return true;
}

int mt_cli_fail(const mt_err *err) {
    fprintf(stderr, "mitten: %s\n", err->msg);
    return MT_EXIT_FAIL;
}

int mt_cli_usage(const char *usage, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "mitten: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n\n%s", usage);
    va_end(ap);
    return MT_EXIT_USAGE;
}

/* $MITTEN_MODEL as mt_cli_resolve_models found it, when it names a repo id; kept for the life of the process. */
static char *default_resolved;
/* The snapshot folders put into argv; kept here so that they stay reachable until exit. */
static char *resolved[16];
static int n_resolved;

const char *mt_cli_default_model(void) {
    if (default_resolved) return default_resolved;
    const char *env = getenv("MITTEN_MODEL");
    return env && *env ? env : MT_DEFAULT_MODEL_DIR;
}

/* A model argument through io/hf_cache: *out is spec itself (a path) or a new string (a repo id's snapshot). */
static int resolve_one(const char *what, const char *spec, const char *revision, char **out) {
    mt_err err = {0};
    bool cached = false;
    *out = NULL;
    if (mt_hf_resolve(spec, revision, out, &cached, &err)) {
        fprintf(stderr, "mitten: %s%s\n", what, err.msg);
        return err.code == MT_ERR_INVALID_ARG ? MT_EXIT_USAGE : MT_EXIT_FAIL;
    }
    if (!cached) {
        mt_free(*out);
        *out = NULL;
        return MT_EXIT_OK;
    }
    mt_log(MT_LOG_INFO, "%s%s at %s: %s", what, spec, revision ? revision : "main", *out);
    return MT_EXIT_OK;
}

int mt_cli_resolve_models(int *argc, char **argv) {
    const char *revision = NULL;
    int w = 1;
    for (int r = 1; r < *argc; r++) {
        if (strcmp(argv[r], "--revision") != 0) {
            argv[w++] = argv[r];
            continue;
        }
        if (r + 1 >= *argc) {
            fprintf(stderr, "mitten: option --revision needs a value\n");
            return MT_EXIT_USAGE;
        }
        revision = argv[++r];
    }
    argv[w] = NULL;
    *argc = w;
    bool given = false;
    for (int i = 1; i + 1 < *argc; i++) {
        if (strcmp(argv[i], "-m") != 0) continue;
        given = true;
        char *path;
        int rc = resolve_one("", argv[++i], revision, &path);
        if (rc) return rc;
        if (!path) continue;
        if (n_resolved == (int)MT_ARRAY_LEN(resolved)) {
            mt_free(path);
            fprintf(stderr, "mitten: too many -m options\n");
            return MT_EXIT_USAGE;
        }
        argv[i] = resolved[n_resolved++] = path;
    }
    if (given) return MT_EXIT_OK;
    /* No -m: $MITTEN_MODEL, when it is a repo id rather than a path, is looked up the same way. */
    const char *env = getenv("MITTEN_MODEL");
    if (env && *env && (revision || (mt_hf_repo_id_valid(env, NULL) && !mt_file_exists(env))))
        return resolve_one("MITTEN_MODEL=", env, revision, &default_resolved);
    if (revision) {
        fprintf(stderr, "mitten: --revision %s picks a version of a Hugging Face repo id: give it with -m ORG/NAME "
                "(or $MITTEN_MODEL)\n", revision);
        return MT_EXIT_USAGE;
    }
    return MT_EXIT_OK;
}
