/* train/run_dir: output-folder checks, the run lock, run ids, absolute paths and data fingerprints. */
#define _GNU_SOURCE
#include "train/run_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/file.h"

mt_status mt_run_dir_check_new(const char *out_dir, bool overwrite, mt_err *err) {
    DIR *d = opendir(out_dir);
    if (!d) {
        if (errno == ENOENT) return MT_OK;
        return mt_err_set(err, errno == ENOTDIR ? MT_ERR_INVALID_ARG : MT_ERR_IO, "--out %s: %s", out_dir,
                          errno == ENOTDIR ? "is a file, not a folder" : strerror(errno));
    }
    struct dirent *e;
    char first[256] = "";
    size_t n = 0;
    bool mitten_run = false;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        if (!n++) snprintf(first, sizeof first, "%s", e->d_name);
        mitten_run |= strcmp(e->d_name, "train_args.json") == 0;
    }
    closedir(d);
    if (n == 0 || overwrite) return MT_OK;
    if (mitten_run)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "--out %s holds an earlier run: `mitten train --resume %s` "
                          "continues it; choose a new folder to start another (or --overwrite-output-dir to write "
                          "into this one: its files stay, its checkpoints are not this run's)", out_dir, out_dir);
    return mt_err_set(err, MT_ERR_INVALID_ARG, "--out %s is not empty (it holds %zu entr%s, e.g. \"%s\"): mitten writes "
                      "a run into a new or empty folder; --overwrite-output-dir writes into it anyway, deleting "
                      "nothing it did not write", out_dir, n, n == 1 ? "y" : "ies", first);
}

mt_status mt_run_dir_lock(const char *out_dir, int *fd, mt_err *err) {
    *fd = open(out_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (*fd < 0) return mt_err_set(err, MT_ERR_IO, "%s: cannot open: %s", out_dir, strerror(errno));
    if (flock(*fd, LOCK_EX | LOCK_NB) == 0) return MT_OK;
    int e = errno;
    close(*fd);
    *fd = -1;
    return mt_err_set(err, MT_ERR_IO, "%s: %s", out_dir,
                      e == EWOULDBLOCK ? "another mitten train is working in this folder" : strerror(e));
}

void mt_run_dir_unlock(int fd) {
    if (fd >= 0) close(fd);
}

void mt_run_id_new(char out[MT_RUN_ID_LEN]) {
    uint64_t v = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (!f || fread(&v, sizeof v, 1, f) != 1) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        v = ((uint64_t)ts.tv_sec * 1000000007u) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
    }
    if (f) fclose(f);
    snprintf(out, MT_RUN_ID_LEN, "%016" PRIx64, v);
}

mt_status mt_path_absolute(const char *path, char **out, mt_err *err) {
    char buf[PATH_MAX], head[PATH_MAX];
    if (realpath(path, buf)) {
        *out = mt_strdup(buf);
        return *out ? MT_OK : mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    }
    if (errno != ENOENT) return mt_err_set(err, MT_ERR_IO, "%s: %s", path, strerror(errno));
    /* not there yet (nor, maybe, some of its parents): the nearest folder that exists, made absolute, and the rest
     * of the path as given */
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof head) return mt_err_set(err, MT_ERR_LIMIT, "\"%.200s\": not a usable path", path);
    memcpy(head, path, n + 1);
    const char *rest = path;
    for (;;) {
        char *slash = strrchr(head, '/');
        while (slash && slash > head && slash[-1] == '/') slash--;
        if (!slash) {
            if (!getcwd(buf, sizeof buf)) return mt_err_set(err, MT_ERR_IO, "%s: %s", path, strerror(errno));
            rest = path;
            break;
        }
        if (slash == head) {
            snprintf(buf, sizeof buf, "/");
            rest = path + 1;
            break;
        }
        *slash = 0;
        if (realpath(head, buf)) {
            rest = path + (slash - head) + 1;
            break;
        }
        if (errno != ENOENT) return mt_err_set(err, MT_ERR_IO, "%s: %s", head, strerror(errno));
    }
    while (*rest == '/') rest++;
    size_t len = strlen(buf) + strlen(rest) + 2;
    bool root = strcmp(buf, "/") == 0;
    if (!(*out = mt_malloc(len))) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    snprintf(*out, len, "%s%s%s", buf, root ? "" : "/", rest);
    /* no doubled or trailing slash, as realpath gives none */
    char *w = *out;
    for (const char *r = *out; *r; r++)
        if (!(r[0] == '/' && (r[1] == '/' || (r[1] == 0 && w > *out)))) *w++ = *r;
    *w = 0;
    return MT_OK;
}

mt_status mt_data_fingerprint(const char *path, char out[MT_FINGERPRINT_LEN], mt_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return mt_err_set(err, MT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    uint64_t h = 0xcbf29ce484222325ull, size = 0;
    unsigned char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        for (size_t i = 0; i < n; i++) h = (h ^ buf[i]) * 0x100000001b3ull;
        size += n;
    }
    bool bad = ferror(f);
    fclose(f);
    if (bad) return mt_err_set(err, MT_ERR_IO, "%s: read error", path);
    snprintf(out, MT_FINGERPRINT_LEN, "%" PRIu64 ":%016" PRIx64, size, h);
    return MT_OK;
}
