/* train/reward_cmd: a user's reward program, run once per completion.
 *
 * The child gets a socket as stdin (so that writing to a program that never reads, or that has exited, fails with
 * EPIPE instead of a SIGPIPE that would kill the trainer) and pipes as stdout and stderr, all close-on-exec on our
 * side so that programs started at the same time from other threads do not hold each other's ends open. It leads
 * its own process group: a timeout kills whatever it started too. posix_spawn rather than fork, because the trainer
 * holds gigabytes of weights and glibc's posix_spawn does not copy the page tables.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "train/reward.h"

extern char **environ;

enum { OUT_CAP = 4096, ERR_CAP = 512 };

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void close_fd(int *fd) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

/* Appends what fd has to buf (kept to cap bytes; *over set when more came); closes fd at end of file. */
static void drain(int *fd, char *buf, size_t cap, size_t *n, bool *over) {
    char tmp[4096];
    ssize_t got = read(*fd, tmp, sizeof tmp);
    if (got > 0) {
        size_t take = MT_MIN((size_t)got, cap - *n);
        memcpy(buf + *n, tmp, take);
        *n += take;
        if (take < (size_t)got) *over = true;
    } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
        close_fd(fd);
    }
}

/* The program's stderr, one line, for the warning. */
static const char *err_line(char *buf, size_t n) {
    buf[n] = 0;
    for (size_t i = 0; i < n; i++)
        if (buf[i] == '\n' || buf[i] == '\r') buf[i] = ' ';
    while (n && buf[n - 1] == ' ') buf[--n] = 0;
    return buf;
}

static mt_status parse_value(const char *out, size_t n, double *value, mt_err *err) {
    while (n && (out[n - 1] == ' ' || out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == '\t')) n--;
    size_t s = 0;
    while (s < n && (out[s] == ' ' || out[s] == '\n' || out[s] == '\r' || out[s] == '\t')) s++;
    char text[64];
    if (n - s == 0) return mt_err_set(err, MT_ERR_FORMAT, "it printed nothing");
    if (n - s >= sizeof text || memchr(out + s, 0, n - s))
        return mt_err_set(err, MT_ERR_FORMAT, "it printed %zu bytes, not a number", n - s);
    memcpy(text, out + s, n - s);
    text[n - s] = 0;
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end || errno == ERANGE || !isfinite(v))
        return mt_err_set(err, MT_ERR_FORMAT, "it printed \"%s\", not a finite number", text);
    *value = v;
    return MT_OK;
}

mt_status mt_reward_cmd_run(const char *command, const char *input, size_t input_len, double timeout, double *value,
                            mt_err *err) {
    int in_sock[2] = {-1, -1}, out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in_sock) || pipe2(out_pipe, O_CLOEXEC) ||
        pipe2(err_pipe, O_CLOEXEC)) {
        int e = errno;
        for (int i = 0; i < 2; i++) {
            close_fd(&in_sock[i]);
            close_fd(&out_pipe[i]);
            close_fd(&err_pipe[i]);
        }
        return mt_err_set(err, MT_ERR_IO, "cannot make its pipes: %s", strerror(e));
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in_sock[1], 0);
    posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);
    posix_spawnattr_init(&attr);
    sigset_t none, dfl;
    sigemptyset(&none);
    sigemptyset(&dfl);
    sigaddset(&dfl, SIGPIPE);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &dfl);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    char *argv[] = {"sh", "-c", (char *)command, NULL};
    pid_t pid;
    int rc = posix_spawn(&pid, "/bin/sh", &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close_fd(&in_sock[1]);
    close_fd(&out_pipe[1]);
    close_fd(&err_pipe[1]);
    if (rc) {
        close_fd(&in_sock[0]);
        close_fd(&out_pipe[0]);
        close_fd(&err_pipe[0]);
        return mt_err_set(err, MT_ERR_IO, "cannot start /bin/sh: %s", strerror(rc));
    }
    fcntl(in_sock[0], F_SETFL, O_NONBLOCK);
    fcntl(out_pipe[0], F_SETFL, O_NONBLOCK);
    fcntl(err_pipe[0], F_SETFL, O_NONBLOCK);

    char out[OUT_CAP], errbuf[ERR_CAP + 1];
    size_t n_out = 0, n_err = 0, sent = 0;
    bool out_over = false, err_over = false, timed_out = false; /* err_over: the warning shows the first bytes */
    if (input_len == 0) close_fd(&in_sock[0]);
    double deadline = now_seconds() + timeout;
    while (out_pipe[0] >= 0 || err_pipe[0] >= 0) {
        double left = deadline - now_seconds();
        if (left <= 0) {
            timed_out = true;
            break;
        }
        struct pollfd p[3] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}, {in_sock[0], POLLOUT, 0}};
        int got = poll(p, 3, (int)ceil(left * 1000));
        if (got < 0 && errno != EINTR) break;
        if (got <= 0) continue;
        if (p[0].revents) drain(&out_pipe[0], out, sizeof out, &n_out, &out_over);
        if (p[1].revents) drain(&err_pipe[0], errbuf, ERR_CAP, &n_err, &err_over);
        if (p[2].revents & (POLLERR | POLLHUP)) {
            close_fd(&in_sock[0]);
        } else if (p[2].revents & POLLOUT) {
            ssize_t w = send(in_sock[0], input + sent, input_len - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0) sent += (size_t)w;
            if ((w < 0 && errno != EAGAIN && errno != EINTR) || sent == input_len) close_fd(&in_sock[0]);
        }
    }
    close_fd(&in_sock[0]);
    close_fd(&out_pipe[0]);
    close_fd(&err_pipe[0]);
    /* Output is closed, but the program may still run (it closed stdout early): it gets what is left of its time. */
    int status = 0;
    pid_t w;
    while ((w = waitpid(pid, &status, WNOHANG)) == 0 && !timed_out) {
        if (now_seconds() >= deadline) timed_out = true;
        else nanosleep(&(struct timespec){0, 2000000}, NULL);
    }
    if (timed_out) {
        kill(-pid, SIGKILL);
        while (w == 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
        return mt_err_set(err, MT_ERR_IO, "it ran past the %.3g s timeout and was killed", timeout);
    }
    kill(-pid, SIGKILL); /* whatever it left running in its group */
    const char *why = err_line(errbuf, n_err);
    if (WIFSIGNALED(status))
        return mt_err_set(err, MT_ERR_IO, "it was killed by signal %d%s%s", WTERMSIG(status), *why ? ": " : "", why);
    if (WEXITSTATUS(status))
        return mt_err_set(err, MT_ERR_IO, "it exited with status %d%s%s", WEXITSTATUS(status), *why ? ": " : "",
                          why);
    if (out_over) return mt_err_set(err, MT_ERR_FORMAT, "it printed more than %d bytes, not a number", OUT_CAP);
    return parse_value(out, n_out, value, err);
}
