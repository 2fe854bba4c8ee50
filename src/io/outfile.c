/* io: atomic streaming output file and a growable string buffer (see io_int.h). */
#include "io/io_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

mt_status mt_outfile_open(mt_outfile *f, const char *path, mt_err *err) {
    f->fd = -1;
    f->path = path;
    f->tmp[0] = 0;
    int n = snprintf(f->tmp, sizeof f->tmp, "%s.tmp.%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof f->tmp) {
        f->tmp[0] = 0;
        return mt_err_set(err, MT_ERR_LIMIT, "%s: path too long", path);
    }
    f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (f->fd < 0) {
        int e = errno;
        f->tmp[0] = 0;
        return mt_err_set(err, MT_ERR_IO, "%s: cannot create temporary file: %s", path, strerror(e));
    }
    return MT_OK;
}

mt_status mt_outfile_write(mt_outfile *f, const void *data, size_t n, mt_err *err) {
    const uint8_t *p = data;
    while (n > 0) {
        /* Linux writes at most ~2 GiB per call; smaller chunks keep each call bounded anyway. */
        size_t chunk = MT_MIN(n, (size_t)1 << 30);
        ssize_t w = write(f->fd, p, chunk);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return mt_err_set(err, MT_ERR_IO, "%s: write failed: %s", f->path, strerror(w < 0 ? errno : EIO));
        p += w;
        n -= (size_t)w;
    }
    return MT_OK;
}

/* fsync and close; on failure the temporary file is removed. */
static mt_status finish(mt_outfile *f, mt_err *err) {
    if (fsync(f->fd) != 0) {
        int e = errno;
        mt_outfile_abort(f);
        return mt_err_set(err, MT_ERR_IO, "%s: fsync failed: %s", f->path, strerror(e));
    }
    int rc = close(f->fd);
    f->fd = -1;
    if (rc != 0) {
        int e = errno;
        mt_outfile_abort(f);
        return mt_err_set(err, MT_ERR_IO, "%s: close failed: %s", f->path, strerror(e));
    }
    return MT_OK;
}

mt_status mt_outfile_commit(mt_outfile *f, mt_err *err) {
    mt_status s = finish(f, err);
    if (s) return s;
    if (rename(f->tmp, f->path) != 0) {
        int e = errno;
        mt_outfile_abort(f);
        return mt_err_set(err, MT_ERR_IO, "%s: rename failed: %s", f->path, strerror(e));
    }
    f->tmp[0] = 0;
    return MT_OK;
}

mt_status mt_outfile_commit_new(mt_outfile *f, mt_err *err) {
    mt_status s = finish(f, err);
    if (s) return s;
    if (link(f->tmp, f->path) != 0) {
        int e = errno;
        mt_outfile_abort(f);
        if (e == EEXIST) return mt_err_set(err, MT_ERR_IO, "%s: exists; not overwritten", f->path);
        return mt_err_set(err, MT_ERR_IO, "%s: cannot create: %s", f->path, strerror(e));
    }
    unlink(f->tmp);
    f->tmp[0] = 0;
    return MT_OK;
}

void mt_outfile_abort(mt_outfile *f) {
    if (f->fd >= 0) close(f->fd);
    f->fd = -1;
    if (f->tmp[0]) unlink(f->tmp);
    f->tmp[0] = 0;
}

void mt_strbuf_append(mt_strbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    size_t need;
    if (!mt_add_ok(b->len, n + 1, &need)) {
        b->oom = true;
        return;
    }
    if (need > b->cap) {
        size_t cap = MT_MAX(b->cap * 2, MT_MAX(need, (size_t)256));
        char *s2 = mt_realloc(b->s, cap);
        if (!s2) {
            b->oom = true;
            return;
        }
        b->s = s2;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

void mt_strbuf_printf(mt_strbuf *b, const char *fmt, ...) {
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    /* Callers format numbers and short keys only; a longer result is a programming error, reported as oom. */
    if (n < 0 || (size_t)n >= sizeof tmp) {
        b->oom = true;
        return;
    }
    mt_strbuf_append(b, tmp, (size_t)n);
}

void mt_strbuf_json_string(mt_strbuf *b, const char *s) {
    mt_strbuf_append(b, "\"", 1);
    const char *run = s;
    for (const char *p = s;; p++) {
        unsigned char c = (unsigned char)*p;
        bool nul = c == 0xC0 && (unsigned char)p[1] == 0x80; /* U+0000 as base/json holds it */
        if (c != 0 && c != '"' && c != '\\' && c >= 0x20 && !nul) continue;
        mt_strbuf_append(b, run, (size_t)(p - run));
        if (c == 0) break;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            mt_strbuf_append(b, esc, 2);
        } else {
            mt_strbuf_printf(b, "\\u%04x", nul ? 0 : c);
            p += nul;
        }
        run = p + 1;
    }
    mt_strbuf_append(b, "\"", 1);
}

void mt_strbuf_free(mt_strbuf *b) {
    if (!b) return;
    mt_free(b->s);
    *b = (mt_strbuf){0};
}
