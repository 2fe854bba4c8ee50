/* io/npy: round trips for every dtype .npy holds, and one bad header per lie. NumPy itself reads our files and
 * writes the ones we read in the io_ref ctest (tests/io). */
#include <string.h>

#include "check.h"
#include "io/npy.h"
#include "test_safetensors_util.h"

static void test_round_trip(void) {
    char path[256];
    st_path(path, sizeof path, "a.npy");
    mt_err err;
    float f[6] = {1, 2, 3, -4, 5.5f, 1e30f};
    int64_t i8[3] = {INT64_MIN, -1, INT64_MAX};
    int32_t i4[2] = {7, -8};
    uint16_t f2[2] = {0x3c00, 0xfbff};
    uint8_t u1[4] = {0, 9, 200, 255};
    const struct {
        mt_dtype dtype;
        int ndim;
        int64_t shape[3];
        const void *data;
        size_t nbytes;
    } cases[] = {
        {MT_F32, 2, {2, 3}, f, 24}, {MT_F32, 0, {0}, f + 3, 4},  {MT_F32, 3, {2, 0, 5}, f, 0},
        {MT_I64, 1, {3}, i8, 24},   {MT_I32, 2, {1, 2}, i4, 8}, {MT_F16, 1, {2}, f2, 4},
        {MT_U8, 3, {2, 1, 2}, u1, 4},
    };
    for (size_t c = 0; c < MT_ARRAY_LEN(cases); c++) {
        CHECK(mt_npy_write(path, cases[c].dtype, cases[c].ndim, cases[c].shape, cases[c].data, &err) == MT_OK);
        mt_npy a;
        CHECK_MSG(mt_npy_read(path, &a, &err) == MT_OK, "case %zu: %s", c, err.msg);
        CHECK(a.dtype == cases[c].dtype && a.ndim == cases[c].ndim && a.nbytes == cases[c].nbytes);
        for (int d = 0; d < a.ndim; d++) CHECK(a.shape[d] == cases[c].shape[d]);
        CHECK(a.nbytes == 0 || memcmp(a.data, cases[c].data, a.nbytes) == 0);
        CHECK((uintptr_t)a.data % 64 == 0);
        mt_npy_free(&a);
        CHECK(a.data == NULL);
    }
    mt_npy_free(NULL);
    /* The data starts at a multiple of 64, as NumPy lays it out. */
    FILE *fp = fopen(path, "rb");
    uint8_t head[10];
    CHECK(fp && fread(head, 1, 10, fp) == 10);
    if (fp) fclose(fp);
    CHECK((10 + head[8] + head[9] * 256) % 64 == 0);

    int64_t shape[1] = {2};
    CHECK(mt_npy_write(path, MT_BF16, 1, shape, f2, &err) == MT_ERR_INVALID_ARG);
    shape[0] = -2;
    CHECK(mt_npy_write(path, MT_F32, 1, shape, f, &err) == MT_ERR_INVALID_ARG);
    CHECK(mt_npy_write(path, MT_F32, 9, shape, f, &err) == MT_ERR_INVALID_ARG);
}

/* Builds a v1.0 file from a header dict (the caller's text, padding and '\n' added) and n data bytes. */
static void expect(const char *dict, size_t n, mt_status code, const char *words) {
    static uint8_t buf[4096];
    size_t hl = strlen(dict) + 1;
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (uint8_t)hl;
    buf[9] = (uint8_t)(hl >> 8);
    memcpy(buf + 10, dict, hl - 1);
    buf[10 + hl - 1] = '\n';
    memset(buf + 10 + hl, 0, n);
    char path[256];
    st_path(path, sizeof path, "bad.npy");
    FILE *f = fopen(path, "wb");
    fwrite(buf, 1, 10 + hl + n, f);
    fclose(f);
    mt_npy a = {.ndim = -5};
    mt_err err = {0};
    mt_status s = mt_npy_read(path, &a, &err);
    if (code == MT_OK) {
        CHECK_MSG(s == MT_OK && a.nbytes == n, "%s: %s", dict, err.msg);
        mt_npy_free(&a);
        return;
    }
    CHECK_MSG(s == code, "%s: status %d, want %d (%s)", dict, s, code, err.msg);
    CHECK_MSG(strstr(err.msg, path) && strstr(err.msg, words), "%s: message %s lacks %s", dict, err.msg, words);
    CHECK_MSG(a.ndim == -5 && a.data == NULL, "%s: output touched on failure", dict);
}

static void test_bad_headers(void) {
    expect("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 8, MT_OK, "");
    expect("{\"descr\":\"<i8\",\"shape\":(1, 2,),\"fortran_order\":False}", 16, MT_OK, "");
    expect("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8, MT_ERR_UNSUPPORTED, "'descr' '>f4'");
    expect("{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }", 2, MT_ERR_UNSUPPORTED, "'descr'");
    expect("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", 8, MT_ERR_UNSUPPORTED, "fortran_order");
    expect("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,), }", 8, MT_ERR_FORMAT, "fortran_order");
    expect("{'descr': '<f4', 'shape': (2,), }", 8, MT_ERR_FORMAT, "missing 'fortran_order'");
    expect("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", 8, MT_ERR_FORMAT, "'x'");
    expect("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", 8, MT_ERR_FORMAT, "repeated");
    expect("{'descr': '<f4', 'fortran_order': False, 'shape': (2), }", 8, MT_ERR_FORMAT, "not a tuple");
    expect("{'descr': '<f4', 'fortran_order': False, 'shape': (2 3), }", 24, MT_ERR_FORMAT, "','");
    expect("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", 8, MT_ERR_FORMAT, "non-negative");
    expect("{'descr': '<f4', 'fortran_order': False, 'shape': [2], }", 8, MT_ERR_FORMAT, "tuple");
    expect("{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }", 4, MT_ERR_LIMIT, "8 dims");
    expect("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", 4, MT_ERR_LIMIT,
           "too large");
    expect("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", 4, MT_ERR_LIMIT,
           "overflows");
    expect("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", 8, MT_ERR_FORMAT, "needs 12");
    expect("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", 8, MT_ERR_FORMAT, "the file has 8");
    expect("{'descr': '<f4", 4, MT_ERR_FORMAT, "unterminated");
    expect("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), } junk", 4, MT_ERR_FORMAT, "after the dict");
    expect("{'descr': '<f4' 'fortran_order': False, 'shape': (1,), }", 4, MT_ERR_FORMAT, "after 'descr'");
    expect("[]", 4, MT_ERR_FORMAT, "not a dict");

    char path[256];
    st_path(path, sizeof path, "magic.npy");
    mt_npy a;
    mt_err err;
    st_text(path, "\x93NUMPX\x01\x00\x00\x00");
    CHECK(mt_npy_read(path, &a, &err) == MT_ERR_FORMAT && strstr(err.msg, "magic"));
    st_bytes(path, "\x93NUMPY\x04\x00\x00\x00", 10);
    CHECK(mt_npy_read(path, &a, &err) == MT_ERR_UNSUPPORTED && strstr(err.msg, "version 4.0"));
    st_bytes(path, "\x93NUMPY\x01\x00\xff\x00{}", 12);
    CHECK(mt_npy_read(path, &a, &err) == MT_ERR_FORMAT && strstr(err.msg, "past the end"));
    st_bytes(path, "\x93NUMPY\x02\x00\x10\x00", 10);
    CHECK(mt_npy_read(path, &a, &err) == MT_ERR_FORMAT && strstr(err.msg, path));
}

/* Every prefix of a valid file fails cleanly; the whole file parses. */
static void test_truncations(void) {
    char path[256];
    st_path(path, sizeof path, "t.npy");
    float f[3] = {1, 2, 3};
    int64_t shape[1] = {3};
    mt_err err;
    CHECK(mt_npy_write(path, MT_F32, 1, shape, f, &err) == MT_OK);
    FILE *fp = fopen(path, "rb");
    uint8_t buf[256];
    size_t n = fp ? fread(buf, 1, sizeof buf, fp) : 0;
    if (fp) fclose(fp);
    CHECK(n == 128 + 12);
    for (size_t k = 0; k <= n; k++) {
        uint8_t *copy = malloc(k ? k : 1);
        memcpy(copy, buf, k);
        mt_npy a;
        mt_status s = mt_npy_parse(copy, k, "mem", &a, &err);
        CHECK_MSG(k == n ? s == MT_OK : s != MT_OK, "prefix %zu", k);
        if (s == MT_OK) mt_npy_free(&a);
        free(copy);
    }
}

int main(void) {
    test_round_trip();
    test_bad_headers();
    test_truncations();
    st_scratch_remove();
    return check_report();
}
