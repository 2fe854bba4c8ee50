/* tools/bench_torch: see bench_torch.h. */
#include "bench_torch.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/json.h"

#define PYTHON "/usr/bin/python3"
#define OPENBLAS_DIR "/usr/lib/x86_64-linux-gnu/openblas-pthread"
#define MAX_OUTPUT ((size_t)1 << 20)

/* The child's stdout (its JSON), read to the end; its stderr (step progress) goes to ours. */
static mt_status run_capture(char *const argv[], int threads, char **out, mt_err *err) {
    int fd[2];
    if (pipe(fd)) return mt_err_set(err, MT_ERR_IO, "pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]), close(fd[1]);
        return mt_err_set(err, MT_ERR_IO, "cannot start %s: %s", PYTHON, strerror(errno));
    }
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]), close(fd[1]);
        char n[16];
        snprintf(n, sizeof n, "%d", threads);
        setenv("OMP_NUM_THREADS", n, 1);
        setenv("OPENBLAS_NUM_THREADS", n, 1);
        setenv("PYTHONDONTWRITEBYTECODE", "1", 1);
        const char *blas = getenv("MT_BENCH_BLAS_DIR");
        if (!blas && access(OPENBLAS_DIR "/libblas.so.3", R_OK) == 0) blas = OPENBLAS_DIR;
        if (blas) {
            char what[4200];
            snprintf(what, sizeof what, "OpenBLAS from %s", blas);
            setenv("LD_LIBRARY_PATH", blas, 1);
            setenv("MT_BENCH_BLAS", what, 1);
        }
        execv(PYTHON, argv);
        _exit(127);
    }
    close(fd[1]);
    size_t len = 0, cap = 4096;
    char *buf = mt_malloc(cap);
    mt_status st = buf ? MT_OK : mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    for (ssize_t r = 1; !st && r > 0;) {
        if (len + 1 == cap) {
            char *grown = cap < MAX_OUTPUT ? mt_realloc(buf, cap * 2) : NULL;
            if (!grown) {
                st = mt_err_set(err, MT_ERR_LIMIT, "%s printed more than %zu bytes", argv[1], MAX_OUTPUT);
                break;
            }
            buf = grown, cap *= 2;
        }
        r = read(fd[0], buf + len, cap - 1 - len);
        if (r < 0 && errno == EINTR) r = 1;
        else if (r > 0) len += (size_t)r;
    }
    close(fd[0]);
    if (st) kill(pid, SIGTERM);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!st && (!WIFEXITED(status) || WEXITSTATUS(status) != 0))
        st = mt_err_set(err, MT_ERR_IO, "%s %s failed (exit status %d)%s", PYTHON, argv[1],
                        WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                        WIFEXITED(status) && WEXITSTATUS(status) == 127 ? ": is python3 installed?" : "");
    if (st) {
        mt_free(buf);
        return st;
    }
    buf[len] = 0;
    *out = buf;
    return MT_OK;
}

mt_status mt_bench_torch_train(const char *model_dir, bool lora, int threads, int batch, int64_t user,
                               int64_t assistant, int steps, mt_torch_train *out, mt_err *err) {
    char script[4200], t[16], b[16], u[24], a[24], s[16];
    snprintf(script, sizeof script, "%s/bench/bench_train_ref.py", MT_SOURCE_DIR);
    snprintf(t, sizeof t, "%d", threads);
    snprintf(b, sizeof b, "%d", batch);
    snprintf(u, sizeof u, "%lld", (long long)user);
    snprintf(a, sizeof a, "%lld", (long long)assistant);
    snprintf(s, sizeof s, "%d", steps);
    char *const argv[] = {PYTHON, script, "run", "--model", (char *)model_dir, "--mode", lora ? "lora" : "full",
                          "--threads", t, "--batch", b, "--user", u, "--assistant", a, "--steps", s, "--warmup",
                          "1", NULL};
    fprintf(stderr, "mitten bench: PyTorch's training step (%s, %s threads)\n", script, t);
    char *text = NULL;
    mt_status st = run_capture(argv, threads, &text, err);
    if (st) return st;
    cJSON *j = NULL;
    double total = 0, tokens = 0, rss = 0;
    st = mt_json_parse(text, strlen(text), script, &j, err);
    const cJSON *time = j ? cJSON_GetObjectItemCaseSensitive(j, "time") : NULL;
    if (!st && !cJSON_IsObject(time)) st = mt_err_set(err, MT_ERR_FORMAT, "%s printed no \"time\" object", script);
    if (!st) st = mt_json_num_req(time, "total", script, 1e-9, 1e9, &total, err);
    if (!st) st = mt_json_num_req(j, "tokens", script, 1, 1e12, &tokens, err);
    if (!st) st = mt_json_num_req(j, "peak_rss_mib", script, 0, 1e12, &rss, err);
    if (!st) {
        *out = (mt_torch_train){.seconds = total, .tokens = tokens, .peak_rss_mib = rss};
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "torch"), *bl = cJSON_GetObjectItemCaseSensitive(j, "blas");
        snprintf(out->version, sizeof out->version, "%s", cJSON_IsString(v) ? v->valuestring : "?");
        snprintf(out->blas, sizeof out->blas, "%s", cJSON_IsString(bl) ? bl->valuestring : "?");
    }
    cJSON_Delete(j);
    mt_free(text);
    return st;
}
