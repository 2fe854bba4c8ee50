/* Helpers for the safetensors tests: a scratch directory and a raw file builder that writes exactly the bytes
 * asked for (8-byte length, header text, data), so tests can make files no correct writer would. */
#ifndef MT_TEST_SAFETENSORS_UTIL_H
#define MT_TEST_SAFETENSORS_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char st_tmpdir[64];

static inline const char *st_scratch(void) {
    if (!st_tmpdir[0]) {
        strcpy(st_tmpdir, "/tmp/mt_st_XXXXXX");
        if (!mkdtemp(st_tmpdir)) {
            perror("mkdtemp");
            exit(2);
        }
    }
    return st_tmpdir;
}

static inline void st_scratch_remove(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", st_tmpdir);
    if (st_tmpdir[0] && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", st_tmpdir);
}

/* path = scratch/name into buf (static storage, one per call site is enough for the tests). */
static inline const char *st_path(char *buf, size_t cap, const char *name) {
    snprintf(buf, cap, "%s/%s", st_scratch(), name);
    return buf;
}

/* Writes u64 hlen (little-endian), header, then data. hlen is normally strlen(header) but may lie. */
static inline void st_raw(const char *path, uint64_t hlen, const char *header, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(2);
    }
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)(hlen >> (8 * i));
    fwrite(len, 1, 8, f);
    fwrite(header, 1, strlen(header), f);
    if (n) fwrite(data, 1, n, f);
    fclose(f);
}

static inline void st_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(2);
    }
    if (n) fwrite(data, 1, n, f);
    fclose(f);
}

static inline void st_text(const char *path, const char *text) { st_bytes(path, text, strlen(text)); }

#endif
