/* tools/cli: argument helpers shared by the subcommands. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

const char *mt_cli_default_model(void) {
    const char *env = getenv("MITTEN_MODEL");
    return env && *env ? env : MT_DEFAULT_MODEL_DIR;
}
