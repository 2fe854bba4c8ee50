/* base/file: mmap, bounded reads, atomic writes. */
#include "base/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* MT_OK for a regular file's mode; otherwise MT_ERR_IO saying what path is instead. */
static mt_status regular_mode(mode_t m, const char *path, mt_err *err) {
    if (S_ISREG(m)) return MT_OK;
    if (S_ISDIR(m)) return mt_err_set(err, MT_ERR_IO, "%s: is a directory, not a file", path);
    const char *what = S_ISCHR(m)    ? "a character device"
                       : S_ISBLK(m)  ? "a block device"
                       : S_ISFIFO(m) ? "a named pipe (FIFO)"
                       : S_ISSOCK(m) ? "a socket"
                                     : "of an unknown kind";
    return mt_err_set(err, MT_ERR_IO, "%s: is %s, not a regular file", path, what);
}

static mt_status check_regular(int fd, const char *path, struct stat *st, mt_err *err) {
    if (fstat(fd, st) != 0) return mt_err_set(err, MT_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    return regular_mode(st->st_mode, path, err);
}

mt_status mt_file_check_regular(const char *path, mt_err *err) {
    struct stat st;
    if (stat(path, &st) != 0)
        return errno == ENOENT ? mt_err_set(err, MT_ERR_IO, "%s: no such file", path)
                               : mt_err_set(err, MT_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    return regular_mode(st.st_mode, path, err);
}

/* O_NONBLOCK: opening a FIFO would otherwise wait for a writer forever; it changes nothing for regular files. */
mt_status mt_file_map(const char *path, mt_mapping *out, mt_err *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return mt_err_set(err, MT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    mt_status s = check_regular(fd, path, &st, err);
    if (s) {
        close(fd);
        return s;
    }
    mt_mapping m = {NULL, (size_t)st.st_size, -1};
    if (m.size > 0) {
        void *p = mmap(NULL, m.size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            close(fd);
            return mt_err_set(err, MT_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
        }
        m.data = p;
        m.fd = fd;
    } else {
        close(fd);
    }
    *out = m;
    return MT_OK;
}

void mt_file_unmap(mt_mapping *m) {
    if (m && m->data) {
        munmap((void *)m->data, m->size);
        close(m->fd);
    }
    if (m) *m = (mt_mapping){0};
}

bool mt_mapping_holds(const mt_mapping *m, const void *p, size_t n) {
    if (!m || !m->data || !p) return false;
    uintptr_t a = (uintptr_t)p, b = (uintptr_t)m->data;
    return a >= b && a - b <= m->size && n <= m->size - (a - b);
}

void mt_mapping_copy(const mt_mapping *m, const void *p, size_t n, void *dst) {
    size_t done = 0, at = (size_t)((const uint8_t *)p - m->data);
    while (done < n) {
        ssize_t got = pread(m->fd, (uint8_t *)dst + done, MT_MIN(n - done, (size_t)1 << 30), (off_t)(at + done));
        if (got <= 0 && errno == EINTR) continue;
        if (got <= 0) break;
        done += (size_t)got;
    }
    if (done < n) memcpy((uint8_t *)dst + done, (const uint8_t *)p + done, n - done);
}

void mt_file_drop_pages(const void *p, size_t n) {
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0 || !p) return;
    uintptr_t a = ((uintptr_t)p + (uintptr_t)page - 1) / (uintptr_t)page * (uintptr_t)page;
    uintptr_t e = ((uintptr_t)p + n) / (uintptr_t)page * (uintptr_t)page;
    if (e > a) (void)madvise((void *)a, e - a, MADV_DONTNEED);
}

mt_status mt_file_read_all(const char *path, size_t max_size, char **out, size_t *out_len, mt_err *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    FILE *f = fd >= 0 ? fdopen(fd, "rb") : NULL;
    if (!f) {
        if (fd >= 0) close(fd);
        return mt_err_set(err, MT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    struct stat st;
    mt_status s = check_regular(fileno(f), path, &st, err);
    if (s) {
        fclose(f);
        return s;
    }
    if ((uint64_t)st.st_size > max_size) {
        fclose(f);
        return mt_err_set(err, MT_ERR_LIMIT, "%s: %lld bytes, more than the %zu allowed", path,
                          (long long)st.st_size, max_size);
    }
    size_t n = (size_t)st.st_size;
    char *buf = mt_malloc(n + 1);
    if (!buf) {
        fclose(f);
        return mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, n);
    }
    size_t got = fread(buf, 1, n, f);
    fclose(f);
    if (got != n) {
        mt_free(buf);
        return mt_err_set(err, MT_ERR_IO, "%s: short read (%zu of %zu bytes)", path, got, n);
    }
    buf[n] = 0;
    *out = buf;
    if (out_len) *out_len = n;
    return MT_OK;
}

mt_status mt_file_read_stream(FILE *f, const char *what, size_t max_size, char **out, size_t *out_len, mt_err *err) {
    size_t n = 0, cap = 4096;
    char *buf = mt_malloc(cap);
    if (!buf) return mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory", what);
    for (;;) {
        if (cap - n < 2) {
            size_t grown_cap = cap * 2;
            char *grown = cap > max_size ? NULL : mt_realloc(buf, grown_cap);
            if (!grown) {
                mt_free(buf);
                if (cap > max_size)
                    return mt_err_set(err, MT_ERR_LIMIT, "%s: more than the %zu bytes allowed", what, max_size);
                return mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory reading %zu bytes", what, grown_cap);
            }
            buf = grown;
            cap = grown_cap;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (n > max_size) {
            mt_free(buf);
            return mt_err_set(err, MT_ERR_LIMIT, "%s: more than the %zu bytes allowed", what, max_size);
        }
        if (got == 0) break;
    }
    if (ferror(f)) {
        mt_free(buf);
        return mt_err_set(err, MT_ERR_IO, "%s: read error", what);
    }
    buf[n] = 0;
    *out = buf;
    if (out_len) *out_len = n;
    return MT_OK;
}

mt_status mt_file_write_atomic(const char *path, const void *data, size_t size, mt_err *err) {
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return mt_err_set(err, MT_ERR_LIMIT, "%s: path too long", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return mt_err_set(err, MT_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    const uint8_t *p = data;
    size_t left = size;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            return mt_err_set(err, MT_ERR_IO, "%s: write failed: %s", path, strerror(e));
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        int e = errno;
        unlink(tmp);
        return mt_err_set(err, MT_ERR_IO, "%s: fsync failed: %s", path, strerror(e));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return mt_err_set(err, MT_ERR_IO, "%s: rename failed: %s", path, strerror(e));
    }
    return MT_OK;
}

bool mt_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

mt_status mt_path_join(char *buf, size_t cap, const char *dir, const char *name, mt_err *err) {
    size_t dl = strlen(dir);
    bool slash = dl > 0 && dir[dl - 1] == '/';
    int n = snprintf(buf, cap, "%s%s%s", dir, slash || dl == 0 ? "" : "/", name);
    if (n < 0 || (size_t)n >= cap) return mt_err_set(err, MT_ERR_LIMIT, "%s/%s: path too long", dir, name);
    return MT_OK;
}

mt_status mt_dir_make(const char *path, mt_err *err) {
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return mt_err_set(err, MT_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    return MT_OK;
}

mt_status mt_dir_make_all(const char *path, mt_err *err) {
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) return mt_err_set(err, MT_ERR_LIMIT, "\"%.200s\": not a usable folder path", path);
    memcpy(buf, path, n + 1);
    /* each parent in turn, then the folder itself; one that exists (as a folder) is fine */
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != 0) continue;
        if (buf[i - 1] == '/') continue; /* "a//b" or a trailing slash */
        char c = buf[i];
        buf[i] = 0;
        struct stat st;
        if (stat(buf, &st) != 0 && mkdir(buf, 0755) != 0 && errno != EEXIST)
            return mt_err_set(err, MT_ERR_IO, "%s: cannot create folder: %s", buf, strerror(errno));
        if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))
            return mt_err_set(err, MT_ERR_IO, "%s: cannot create folder %s: a file is in the way", buf, path);
        buf[i] = c;
    }
    return MT_OK;
}
