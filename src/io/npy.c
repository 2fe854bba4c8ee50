/* io/npy: NumPy .npy reader and writer (format drawn in npy.h).
 *
 * The header is a Python dict literal. Only the subset NumPy itself writes is accepted: the three keys 'descr',
 * 'fortran_order', 'shape' in any order, each once, quoted with ' or ", values a string, True/False and a tuple of
 * non-negative integers; whitespace anywhere between tokens. Nothing is evaluated.
 */
#include "io/npy.h"

#include <stdio.h>
#include <string.h>

#include "base/file.h"
#include "io/io_int.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "mitten's .npy code assumes a little-endian host"
#endif

static const struct {
    const char *descr;
    mt_dtype dtype;
} npy_types[] = {
    {"<f4", MT_F32}, {"<f2", MT_F16}, {"<i4", MT_I32}, {"<i8", MT_I64}, {"|u1", MT_U8}, {"<u1", MT_U8},
};

/* Dims above 2^53 cannot describe a real array; the bound keeps the products below checked in range. */
#define NPY_MAX_DIM ((int64_t)1 << 53)

typedef struct cursor {
    const char *p, *end;
    const char *file;
} cursor;

static void skip_ws(cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

static bool eat(cursor *c, char ch) {
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return true;
    }
    return false;
}

/* A quoted string without escapes into buf (cap bytes with the NUL). */
static mt_status quoted(cursor *c, char *buf, size_t cap, const char *what, mt_err *err) {
    skip_ws(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return mt_err_set(err, MT_ERR_FORMAT, "%s: header: expected a quoted %s", c->file, what);
    char q = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != q) {
        if (*c->p == '\\' || n + 1 >= cap)
            return mt_err_set(err, MT_ERR_FORMAT, "%s: header: %s is too long or escaped", c->file, what);
        buf[n++] = *c->p++;
    }
    if (c->p >= c->end) return mt_err_set(err, MT_ERR_FORMAT, "%s: header: unterminated %s", c->file, what);
    c->p++;
    buf[n] = 0;
    return MT_OK;
}

static mt_status parse_shape(cursor *c, mt_npy *a, mt_err *err) {
    if (!eat(c, '(')) return mt_err_set(err, MT_ERR_FORMAT, "%s: header: 'shape' must be a tuple", c->file);
    a->ndim = 0;
    bool comma = false; /* a ',' followed the last dim */
    for (;;) {
        if (eat(c, ')')) {
            if (a->ndim == 1 && !comma)
                return mt_err_set(err, MT_ERR_FORMAT, "%s: header: 'shape' (n) is not a tuple", c->file);
            return MT_OK;
        }
        if (a->ndim > 0 && !comma)
            return mt_err_set(err, MT_ERR_FORMAT, "%s: header: 'shape' expects ',' between dims", c->file);
        skip_ws(c);
        if (c->p >= c->end || *c->p < '0' || *c->p > '9')
            return mt_err_set(err, MT_ERR_FORMAT, "%s: header: 'shape' dims must be non-negative integers", c->file);
        if (a->ndim == MT_NPY_MAX_DIMS)
            return mt_err_set(err, MT_ERR_LIMIT, "%s: header: 'shape' has more than %d dims", c->file,
                              MT_NPY_MAX_DIMS);
        int64_t d = 0;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            d = d * 10 + (*c->p++ - '0');
            if (d > NPY_MAX_DIM)
                return mt_err_set(err, MT_ERR_LIMIT, "%s: header: 'shape' dim %d is too large", c->file, a->ndim);
        }
        a->shape[a->ndim++] = d;
        comma = eat(c, ',');
    }
}

static mt_status parse_header(cursor *c, mt_npy *a, mt_err *err) {
    if (!eat(c, '{')) return mt_err_set(err, MT_ERR_FORMAT, "%s: header is not a dict", c->file);
    bool seen_descr = false, seen_order = false, seen_shape = false;
    while (!eat(c, '}')) {
        char key[32], val[32];
        mt_status s = quoted(c, key, sizeof key, "key", err);
        if (s) return s;
        if (!eat(c, ':')) return mt_err_set(err, MT_ERR_FORMAT, "%s: header: expected ':' after '%s'", c->file, key);
        if (strcmp(key, "descr") == 0 && !seen_descr) {
            seen_descr = true;
            if ((s = quoted(c, val, sizeof val, "'descr'", err))) return s;
            size_t i = 0;
            while (i < MT_ARRAY_LEN(npy_types) && strcmp(npy_types[i].descr, val) != 0) i++;
            if (i == MT_ARRAY_LEN(npy_types))
                return mt_err_set(err, MT_ERR_UNSUPPORTED, "%s: header: 'descr' '%s' is not supported", c->file, val);
            a->dtype = npy_types[i].dtype;
        } else if (strcmp(key, "fortran_order") == 0 && !seen_order) {
            seen_order = true;
            skip_ws(c);
            size_t left = (size_t)(c->end - c->p);
            if (left >= 5 && memcmp(c->p, "False", 5) == 0) {
                c->p += 5;
            } else if (left >= 4 && memcmp(c->p, "True", 4) == 0) {
                return mt_err_set(err, MT_ERR_UNSUPPORTED, "%s: header: 'fortran_order' True is not supported",
                                  c->file);
            } else {
                return mt_err_set(err, MT_ERR_FORMAT, "%s: header: 'fortran_order' must be True or False", c->file);
            }
        } else if (strcmp(key, "shape") == 0 && !seen_shape) {
            seen_shape = true;
            if ((s = parse_shape(c, a, err))) return s;
        } else {
            return mt_err_set(err, MT_ERR_FORMAT, "%s: header: unexpected or repeated key '%s'", c->file, key);
        }
        if (!eat(c, ',')) {
            if (eat(c, '}')) break;
            return mt_err_set(err, MT_ERR_FORMAT, "%s: header: expected ',' or '}' after '%s'", c->file, key);
        }
    }
    if (!seen_descr || !seen_order || !seen_shape)
        return mt_err_set(err, MT_ERR_FORMAT, "%s: header: missing '%s'", c->file,
                          !seen_descr ? "descr" : !seen_order ? "fortran_order" : "shape");
    skip_ws(c);
    if (c->p != c->end) return mt_err_set(err, MT_ERR_FORMAT, "%s: header: bytes after the dict", c->file);
    return MT_OK;
}

mt_status mt_npy_parse(const void *buf, size_t size, const char *name, mt_npy *out, mt_err *err) {
    const uint8_t *b = buf;
    if (size < 10 || memcmp(b, "\x93NUMPY", 6) != 0)
        return mt_err_set(err, MT_ERR_FORMAT, "%s: not a .npy file (magic)", name);
    size_t hlen, start;
    if (b[6] == 1 && b[7] == 0) {
        hlen = (size_t)b[8] | (size_t)b[9] << 8;
        start = 10;
    } else if ((b[6] == 2 || b[6] == 3) && b[7] == 0) {
        if (size < 12) return mt_err_set(err, MT_ERR_FORMAT, "%s: too short for a version 2 header", name);
        hlen = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
        start = 12;
    } else {
        return mt_err_set(err, MT_ERR_UNSUPPORTED, "%s: .npy version %u.%u is not supported", name, b[6], b[7]);
    }
    if (hlen > size - start)
        return mt_err_set(err, MT_ERR_FORMAT, "%s: header length %zu is past the end of the file (%zu bytes)", name,
                          hlen, size);
    mt_npy a = {0};
    cursor c = {(const char *)b + start, (const char *)b + start + hlen, name};
    mt_status s = parse_header(&c, &a, err);
    if (s) return s;
    size_t nbytes = mt_dtype_size(a.dtype);
    for (int i = 0; i < a.ndim; i++)
        if (!mt_mul_ok(nbytes, (size_t)a.shape[i], &nbytes))
            return mt_err_set(err, MT_ERR_LIMIT, "%s: 'shape' byte size overflows", name);
    size_t have = size - start - hlen;
    if (have != nbytes)
        return mt_err_set(err, MT_ERR_FORMAT, "%s: 'shape' needs %zu data bytes, the file has %zu", name, nbytes, have);
    a.data = mt_malloc_aligned(nbytes);
    if (!a.data) return mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory for %zu bytes", name, nbytes);
    if (nbytes) memcpy(a.data, b + start + hlen, nbytes);
    a.nbytes = nbytes;
    *out = a;
    return MT_OK;
}

mt_status mt_npy_read(const char *path, mt_npy *out, mt_err *err) {
    mt_mapping m;
    mt_status s = mt_file_map(path, &m, err);
    if (s) return s;
    s = mt_npy_parse(m.data, m.size, path, out, err);
    mt_file_unmap(&m);
    return s;
}

void mt_npy_free(mt_npy *a) {
    if (!a) return;
    mt_free(a->data);
    *a = (mt_npy){0};
}

mt_status mt_npy_write(const char *path, mt_dtype dtype, int ndim, const int64_t *shape, const void *data,
                       mt_err *err) {
    const char *descr = NULL;
    for (size_t i = 0; i < MT_ARRAY_LEN(npy_types) && !descr; i++)
        if (npy_types[i].dtype == dtype) descr = npy_types[i].descr;
    if (!descr) return mt_err_set(err, MT_ERR_INVALID_ARG, "%s: dtype %s cannot be stored in .npy", path,
                                  mt_dtype_name(dtype));
    if (ndim < 0 || ndim > MT_NPY_MAX_DIMS || (ndim && !shape))
        return mt_err_set(err, MT_ERR_INVALID_ARG, "%s: rank %d", path, ndim);
    size_t nbytes = mt_dtype_size(dtype);
    mt_strbuf h = {0};
    mt_strbuf_printf(&h, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || !mt_mul_ok(nbytes, (size_t)shape[i], &nbytes)) {
            mt_strbuf_free(&h);
            return mt_err_set(err, MT_ERR_INVALID_ARG, "%s: bad dimension %lld", path, (long long)shape[i]);
        }
        mt_strbuf_printf(&h, "%s%lld", i ? ", " : "", (long long)shape[i]);
    }
    mt_strbuf_printf(&h, "%s), }", ndim == 1 ? "," : "");
    if (!data && nbytes) {
        mt_strbuf_free(&h);
        return mt_err_set(err, MT_ERR_INVALID_ARG, "%s: no data", path);
    }
    /* Version 1.0 (u16 header length) always suffices: eight dims make a header of a few hundred bytes. Pad with
     * spaces so that the 10-byte preamble + header + '\n' is a multiple of 64, as NumPy does. */
    while (!h.oom && (10 + h.len + 1) % 64) mt_strbuf_append(&h, " ", 1);
    mt_strbuf_append(&h, "\n", 1);
    if (h.oom) {
        mt_strbuf_free(&h);
        return mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory", path);
    }
    uint8_t head[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (uint8_t)h.len, (uint8_t)(h.len >> 8)};
    mt_outfile f;
    mt_status s = mt_outfile_open(&f, path, err);
    if (!s) {
        s = mt_outfile_write(&f, head, sizeof head, err);
        if (!s) s = mt_outfile_write(&f, h.s, h.len, err);
        if (!s && nbytes) s = mt_outfile_write(&f, data, nbytes, err);
        if (!s) s = mt_outfile_commit(&f, err);
        mt_outfile_abort(&f);
    }
    mt_strbuf_free(&h);
    return s;
}
