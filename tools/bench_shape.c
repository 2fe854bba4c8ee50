/* tools/bench_shape: generating and finding the cached random checkpoints of bench/shapes. */
#include "bench_shape.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/file.h"
#include "base/json.h"

#define PYTHON "/usr/bin/python3"

static mt_status mkdirs(char *path, mt_err *err) {
    for (char *s = path + 1;; s++) {
        if (*s != '/' && *s) continue;
        char c = *s;
        *s = 0;
        int r = mkdir(path, 0755);
        *s = c;
        if (r && errno != EEXIST)
            return mt_err_set(err, MT_ERR_IO, "%s: cannot create folder: %s", path, strerror(errno));
        if (!c) return MT_OK;
    }
}

/* Bytes in the plain files of dir; with remove, deletes them and the folder (an unfinished earlier attempt: the
 * generator writes no sub-folders). */
static double plain_files(const char *dir, bool remove) {
    double total = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[4400];
    struct stat sb;
    while (d && (e = readdir(d))) {
        if (snprintf(p, sizeof p, "%s/%s", dir, e->d_name) >= (int)sizeof p || lstat(p, &sb) || !S_ISREG(sb.st_mode))
            continue;
        total += (double)sb.st_size;
        if (remove) unlink(p);
    }
    if (d) closedir(d);
    if (remove) rmdir(dir);
    return total;
}

/* Runs the shape's generator into DIR.partial, printing progress, and renames it to DIR when it succeeds. */
static mt_status generate(const char *src, const char *shape_path, const cJSON *gen, double approx, const char *dir,
                          mt_err *err) {
    int n = cJSON_GetArraySize(gen);
    const char *argv[40];
    char script[4400], partial[4400];
    if (!cJSON_IsArray(gen) || n < 1 || n > 32)
        return mt_err_set(err, MT_ERR_FORMAT, "%s: field \"generator\" must be an array of 1 to 32 strings",
                          shape_path);
    for (int i = 0; i < n; i++) {
        const cJSON *a = cJSON_GetArrayItem(gen, i);
        if (!cJSON_IsString(a))
            return mt_err_set(err, MT_ERR_FORMAT, "%s: field \"generator\" item %d is not a string", shape_path, i);
        argv[i + 1] = a->valuestring;
    }
    if (snprintf(script, sizeof script, "%s/%s", src, argv[1]) >= (int)sizeof script ||
        snprintf(partial, sizeof partial, "%s.partial", dir) >= (int)sizeof partial)
        return mt_err_set(err, MT_ERR_LIMIT, "%s: path too long", dir);
    argv[0] = PYTHON, argv[1] = script, argv[n + 1] = "--out", argv[n + 2] = partial, argv[n + 3] = NULL;
    plain_files(partial, true);
    mt_status st = mkdirs(partial, err);
    if (st) return st;
    fprintf(stderr, "mitten bench: writing a random checkpoint to %s (once; about %.1f GB)\n", dir, approx / 1e9);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return mt_err_set(err, MT_ERR_IO, "cannot start %s: %s", PYTHON, strerror(errno));
    if (pid == 0) {
        execv(PYTHON, (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    double start = mt_time_now(), shown = start;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        sleep(1);
        if (mt_time_now() - shown >= 5) {
            shown = mt_time_now();
            fprintf(stderr, "  %.1f of ~%.1f GB written, %.0f s\n", plain_files(partial, false) / 1e9, approx / 1e9,
                    shown - start);
        }
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return mt_err_set(err, MT_ERR_IO, "%s %s failed (exit status %d); the unfinished folder is %s", PYTHON, script,
                          WIFEXITED(status) ? WEXITSTATUS(status) : -1, partial);
    if (rename(partial, dir))
        return mt_err_set(err, MT_ERR_IO, "%s: cannot rename to %s: %s", partial, dir, strerror(errno));
    return MT_OK;
}

mt_status mt_bench_shape_checkpoint(const char *name, const char *dir_opt, char *dir, size_t cap, mt_err *err) {
    char src[4096], path[4400];
    snprintf(src, sizeof src, "%s", MT_SOURCE_DIR);
    static const char name_chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";
    if (!*name || name[0] == '.' || strspn(name, name_chars) != strlen(name))
        return mt_err_set(err, MT_ERR_INVALID_ARG, "--shape %s: not a shape name", name);
    snprintf(path, sizeof path, "%s/bench/shapes/%s.json", src, name);
    cJSON *js = NULL;
    const char *folder = NULL;
    double approx = 0;
    mt_status st = mt_json_parse_file(path, (size_t)1 << 20, &js, err);
    if (!st) st = mt_json_str_req(js, "folder", path, &folder, err);
    if (!st) st = mt_json_num_opt(js, "approx_bytes", path, 0, 1e15, &approx, err);
    if (!st && (!*folder || strchr(folder, '/') || folder[0] == '.'))
        st = mt_err_set(err, MT_ERR_FORMAT, "%s: field \"folder\" must be a plain folder name", path);
    if (!st) {
        const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
        int k = dir_opt               ? snprintf(dir, cap, "%s", dir_opt)
                : xdg && *xdg         ? snprintf(dir, cap, "%s/mitten/shapes/%s", xdg, folder)
                : home && *home       ? snprintf(dir, cap, "%s/.cache/mitten/shapes/%s", home, folder)
                                      : -1;
        if (k < 0 || k >= (int)cap) st = mt_err_set(err, MT_ERR_INVALID_ARG, "no cache folder: set --dir or HOME");
    }
    if (!st && snprintf(path, sizeof path, "%s/config.json", dir) < (int)sizeof path && !mt_file_exists(path)) {
        snprintf(path, sizeof path, "%s/bench/shapes/%s.json", src, name);
        st = generate(src, path, cJSON_GetObjectItemCaseSensitive(js, "generator"), approx, dir, err);
    }
    cJSON_Delete(js);
    return st;
}

