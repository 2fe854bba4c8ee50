/* io/safetensors: one file per lie a header can tell. Each must fail with the right status and a message naming
 * the file and, where one is at fault, the tensor; none may crash (the MT_SANITIZE build checks reads). */
#include <string.h>

#include "check.h"
#include "io/safetensors.h"
#include "test_safetensors_util.h"

static uint8_t zeros[64];

/* Writes header (with a true length) and n data bytes to scratch/name, opens it, checks code and message. */
static void expect(const char *name, const char *header, size_t n, mt_status code, const char *tensor,
                   const char *words) {
    char path[256];
    st_path(path, sizeof path, name);
    st_raw(path, strlen(header), header, zeros, n);
    mt_safetensors *st = NULL;
    mt_err err = {0};
    mt_status s = mt_safetensors_open_file(path, &st, &err);
    CHECK_MSG(s == code, "%s: status %d, want %d (%s)", name, s, code, err.msg);
    CHECK_MSG(st == NULL, "%s: handle set on failure", name);
    CHECK_MSG(strstr(err.msg, path) != NULL, "%s: message lacks the file: %s", name, err.msg);
    if (tensor) {
        char quoted[128];
        snprintf(quoted, sizeof quoted, "\"%s\"", tensor);
        CHECK_MSG(strstr(err.msg, quoted) != NULL, "%s: message lacks %s: %s", name, quoted, err.msg);
    }
    CHECK_MSG(strstr(err.msg, words) != NULL, "%s: message lacks \"%s\": %s", name, words, err.msg);
}

#define T(name, dtype, shape, offs) "\"" name "\":{\"dtype\":\"" dtype "\",\"shape\":" shape ",\"data_offsets\":" offs "}"

static void test_length_lies(void) {
    char path[256];
    mt_safetensors *st = NULL;
    mt_err err;
    const char *h = "{" T("w", "F32", "[1]", "[0,4]") "}";

    st_raw(st_path(path, sizeof path, "huge_len.safetensors"), (uint64_t)200 << 20, h, zeros, 4);
    CHECK(mt_safetensors_open_file(path, &st, &err) == MT_ERR_LIMIT && strstr(err.msg, path));
    st_raw(path, UINT64_MAX, h, zeros, 4);
    CHECK(mt_safetensors_open_file(path, &st, &err) == MT_ERR_LIMIT && strstr(err.msg, path));

    st_raw(st_path(path, sizeof path, "past_eof.safetensors"), strlen(h) + 5, h, zeros, 4);
    CHECK(mt_safetensors_open_file(path, &st, &err) == MT_ERR_FORMAT && strstr(err.msg, path) &&
          strstr(err.msg, "past the end of the file"));

    st_bytes(st_path(path, sizeof path, "short.safetensors"), "\x05\0\0", 3);
    CHECK(mt_safetensors_open_file(path, &st, &err) == MT_ERR_FORMAT && strstr(err.msg, "too short"));
    st_text(path, "");
    CHECK(mt_safetensors_open_file(path, &st, &err) == MT_ERR_FORMAT && strstr(err.msg, path));
    CHECK(mt_safetensors_open_file(st_path(path, sizeof path, "absent.safetensors"), &st, &err) == MT_ERR_IO &&
          strstr(err.msg, path));
    CHECK(st == NULL);
}

static void test_json_lies(void) {
    expect("bad_json.safetensors", "{\"w\":{\"dtype\":\"F32\",", 0, MT_ERR_FORMAT, NULL, "header: invalid JSON at line 1, column 21");
    expect("trailing.safetensors", "{}  xyz", 0, MT_ERR_FORMAT, NULL, "header: text after the JSON value at line 1, column 5");
    expect("array.safetensors", "[1,2]", 0, MT_ERR_FORMAT, NULL, "object");
    expect("entry.safetensors", "{\"w\":[1,2]}", 0, MT_ERR_FORMAT, "w", "object");
    expect("meta.safetensors", "{\"__metadata__\":{\"format\":7}}", 0, MT_ERR_FORMAT, "format", "string");
    expect("no_dtype.safetensors", "{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, MT_ERR_FORMAT, "w", "dtype");
    expect("unknown_dtype.safetensors", "{" T("w", "Q4_K", "[1]", "[0,4]") "}", 4, MT_ERR_UNSUPPORTED, "w", "Q4_K");
    expect("shape_str.safetensors", "{" T("w", "F32", "\"1\"", "[0,4]") "}", 4, MT_ERR_FORMAT, "w", "shape");
}

static void test_offset_lies(void) {
    expect("offs_one.safetensors", "{" T("w", "F32", "[1]", "[4]") "}", 4, MT_ERR_FORMAT, "w", "data_offsets");
    expect("offs_three.safetensors", "{" T("w", "F32", "[1]", "[0,4,8]") "}", 8, MT_ERR_FORMAT, "w", "data_offsets");
    expect("offs_obj.safetensors", "{" T("w", "F32", "[1]", "{\"a\":0,\"b\":4}") "}", 4, MT_ERR_FORMAT, "w",
           "data_offsets");
    expect("offs_str.safetensors", "{" T("w", "F32", "[1]", "[\"0\",4]") "}", 4, MT_ERR_FORMAT, "w", "integers");
    expect("offs_frac.safetensors", "{" T("w", "F32", "[1]", "[0.5,4]") "}", 4, MT_ERR_FORMAT, "w", "integers");
    expect("offs_neg.safetensors", "{" T("w", "F32", "[1]", "[-4,0]") "}", 4, MT_ERR_FORMAT, "w", "negative");
    expect("offs_big.safetensors", "{" T("w", "F32", "[1]", "[0,1e300]") "}", 4, MT_ERR_LIMIT, "w", "too large");
    expect("begin_after_end.safetensors", "{" T("w", "F32", "[0]", "[8,4]") "}", 8, MT_ERR_FORMAT, "w", "after end");
    expect("past_data.safetensors", "{" T("w", "F32", "[4]", "[0,16]") "}", 12, MT_ERR_FORMAT, "w",
           "past the end of the data area");
}

static void test_size_lies(void) {
    expect("size.safetensors", "{" T("w", "BF16", "[3,2]", "[0,8]") "}", 8, MT_ERR_FORMAT, "w", "needs 12");
    expect("size_f4.safetensors", "{" T("w", "F4", "[3]", "[0,2]") "}", 2, MT_ERR_FORMAT, "w", "fraction");
    expect("overflow.safetensors",
           "{" T("w", "F32", "[4294967296,4294967296,4294967296]", "[0,4]") "}", 4, MT_ERR_LIMIT, "w", "overflows");
    expect("overflow_bytes.safetensors", "{" T("w", "I64", "[4611686018427387,4096]", "[0,8]") "}", 8,
           MT_ERR_LIMIT, "w", "overflows");
    expect("rank.safetensors", "{" T("w", "U8", "[1,1,1,1,1,1,1,1,1]", "[0,1]") "}", 1, MT_ERR_LIMIT, "w", "rank 9");
    expect("neg_dim.safetensors", "{" T("w", "F32", "[2,-1]", "[0,0]") "}", 0, MT_ERR_FORMAT, "w", "negative");
    expect("frac_dim.safetensors", "{" T("w", "F32", "[2.5]", "[0,10]") "}", 10, MT_ERR_FORMAT, "w", "integers");
}

static void test_layout_lies(void) {
    expect("overlap.safetensors", "{" T("a", "F32", "[2]", "[0,8]") "," T("b", "F32", "[2]", "[4,12]") "}", 12,
           MT_ERR_FORMAT, "b", "overlap tensor \"a\"");
    /* b lies entirely inside a, after a third tensor that starts later than a */
    expect("overlap_inside.safetensors",
           "{" T("a", "U8", "[16]", "[0,16]") "," T("c", "U8", "[2]", "[10,12]") "," T("b", "U8", "[2]", "[2,4]") "}",
           16, MT_ERR_FORMAT, "b", "overlap");
    expect("duplicate.safetensors", "{" T("w", "F32", "[1]", "[0,4]") "," T("w", "F32", "[1]", "[4,8]") "}", 8,
           MT_ERR_FORMAT, "w", "twice");
    /* empty tensors may sit anywhere, also at a shared offset */
    char path[256];
    st_path(path, sizeof path, "empty_ok.safetensors");
    const char *h = "{" T("a", "F32", "[2]", "[0,8]") "," T("e", "F32", "[0,3]", "[4,4]") "," T("f", "F16", "[0]",
                                                                                                  "[8,8]") "}";
    st_raw(path, strlen(h), h, zeros, 8);
    mt_safetensors *st;
    mt_err err;
    CHECK(mt_safetensors_open_file(path, &st, &err) == MT_OK);
    mt_safetensors_close(st);
}

/* A model directory whose index lies. */
static void test_dir_lies(void) {
    char dir[256], path[512];
    mt_safetensors *st = NULL;
    mt_err err;
    st_path(dir, sizeof dir, "m");
    CHECK(mkdir(dir, 0755) == 0);
    const char *h1 = "{" T("a", "F32", "[1]", "[0,4]") "}";
    const char *h2 = "{" T("b", "F32", "[1]", "[0,4]") "," T("a", "F32", "[1]", "[4,8]") "}";
    snprintf(path, sizeof path, "%s/s1.safetensors", dir);
    st_raw(path, strlen(h1), h1, zeros, 4);
    snprintf(path, sizeof path, "%s/s2.safetensors", dir);
    st_raw(path, strlen(h2), h2, zeros, 8);
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);

    const struct {
        const char *index;
        mt_status code;
        const char *words;
    } cases[] = {
        {"{\"weight_map\":{\"a\":\"../m/s1.safetensors\"}}", MT_ERR_FORMAT, "not a plain file name"},
        {"{\"weight_map\":{\"a\":\"/etc/passwd\"}}", MT_ERR_FORMAT, "not a plain file name"},
        {"{\"weight_map\":{\"a\":\"..\"}}", MT_ERR_FORMAT, "not a plain file name"},
        {"{\"weight_map\":{\"a\":\"\"}}", MT_ERR_FORMAT, "not a plain file name"},
        {"{\"weight_map\":{\"a\":5}}", MT_ERR_FORMAT, "must be a string"},
        {"{\"weight_map\":[]}", MT_ERR_FORMAT, "weight_map"},
        {"{\"weight_map\":{\"a\":\"s1.safetensors\"", MT_ERR_FORMAT, "invalid JSON"},
        {"{\"weight_map\":{\"a\":\"missing.safetensors\"}}", MT_ERR_IO, "missing.safetensors"},
        {"{\"weight_map\":{\"zz\":\"s1.safetensors\"}}", MT_ERR_FORMAT, "\"zz\" is not in its shard"},
        {"{\"weight_map\":{\"b\":\"s1.safetensors\",\"a\":\"s1.safetensors\",\"x\":\"s2.safetensors\"}}",
         MT_ERR_FORMAT, "\"a\": defined twice"},
    };
    for (size_t i = 0; i < MT_ARRAY_LEN(cases); i++) {
        st_text(path, cases[i].index);
        err.msg[0] = 0;
        mt_status s = mt_safetensors_open_dir(dir, &st, &err);
        CHECK_MSG(s == cases[i].code && st == NULL, "case %zu: status %d (%s)", i, s, err.msg);
        CHECK_MSG(strstr(err.msg, dir) && strstr(err.msg, cases[i].words), "case %zu: %s", i, err.msg);
    }
    /* the index says b is in s1, but it is in s2 */
    const char *h3 = "{" T("b", "F32", "[1]", "[0,4]") "}";
    snprintf(path, sizeof path, "%s/s2.safetensors", dir);
    st_raw(path, strlen(h3), h3, zeros, 4);
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    st_text(path, "{\"weight_map\":{\"a\":\"s1.safetensors\",\"b\":\"s1.safetensors\",\"c\":\"s2.safetensors\"}}");
    CHECK(mt_safetensors_open_dir(dir, &st, &err) == MT_ERR_FORMAT && strstr(err.msg, "\"b\" is mapped to"));
    st_text(path, "{\"weight_map\":{\"a\":\"s1.safetensors\",\"b\":\"s2.safetensors\"}}");
    CHECK(mt_safetensors_open_dir(dir, &st, &err) == MT_OK && mt_safetensors_count(st) == 2);
    mt_safetensors_close(st);
}

/* The in-memory parser on every prefix of a valid file: each must fail cleanly or (the whole file) succeed. */
static void test_truncations(void) {
    const char *h = "{\"__metadata__\":{\"format\":\"pt\"}," T("a", "F32", "[2]", "[0,8]") "," T("b", "U8", "[3]",
                                                                                                     "[8,11]") "}";
    size_t hl = strlen(h);
    uint8_t buf[256] = {0};
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(buf + 8, h, hl);
    size_t full = 8 + hl + 11;
    for (size_t n = 0; n <= full; n++) {
        uint8_t *copy = malloc(n ? n : 1); /* exact size, so a sanitizer sees any over-read */
        memcpy(copy, buf, n);
        mt_safetensors *st = NULL;
        mt_err err;
        mt_status s = mt_safetensors_open_buffer(copy, n, "mem", &st, &err);
        CHECK_MSG(n == full ? s == MT_OK : s != MT_OK, "prefix %zu: status %d", n, s);
        mt_safetensors_close(st);
        free(copy);
    }
}

int main(void) {
    test_length_lies();
    test_json_lies();
    test_offset_lies();
    test_size_lies();
    test_layout_lies();
    test_dir_lies();
    test_truncations();
    st_scratch_remove();
    return check_report();
}
