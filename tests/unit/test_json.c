/* base/json: U+0000 kept through parse, decode and print; each error of the pre-pass named with its line:column.
 *
 * Expected values follow Python's json (json.loads / json.dumps): "a\u0000b" is three characters, and dumps writes
 * U+0000 back as \u0000. Columns count characters from 1, as Python's colno does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "check.h"

static cJSON *parse_ok(const char *text) {
    cJSON *j = NULL;
    mt_err err = {0};
    CHECK_MSG(mt_json_parse(text, strlen(text), "t.json", &j, &err) == MT_OK, "%s: %s", text, err.msg);
    return j;
}

/* The parse fails with MT_ERR_FORMAT and a message holding each of the given pieces. */
static void parse_bad(const char *text, size_t len, const char *a, const char *b) {
    cJSON *j = NULL;
    mt_err err = {0};
    mt_status st = mt_json_parse(text, len, "t.json", &j, &err);
    CHECK_MSG(st == MT_ERR_FORMAT && j == NULL, "%s: parsed (status %d)", text, (int)st);
    CHECK_MSG(strncmp(err.msg, "t.json: ", 8) == 0 && strstr(err.msg, a) && (!b || strstr(err.msg, b)),
              "%s:\n  got  \"%s\"\n  want \"%s\" and \"%s\"", text, err.msg, a, b ? b : "");
    cJSON_Delete(j);
}

static void check_bytes(const char *s, const char *want, size_t want_n) {
    size_t n = 0;
    char *d = s ? mt_json_dup(s, &n) : NULL;
    CHECK_MSG(d && n == want_n && memcmp(d, want, n) == 0 && d[n] == 0, "decoded %zu bytes, want %zu", n, want_n);
    mt_free(d);
}

static void test_nul_round_trip(void) {
    const char *t = "{\"k\\u0000ey\": \"a\\u0000b\", \"z\": \"\\u0000\", \"lit\": \"\\\\u0000\", "
                    "\"e\": \"\\ud83d\\ude00\"}";
    cJSON *j = parse_ok(t);
    if (!j) return;
    const cJSON *k = j->child, *v = cJSON_GetObjectItemCaseSensitive(j, "z");
    check_bytes(k->string, "k\0ey", 4);
    check_bytes(k->valuestring, "a\0b", 3);
    CHECK(v && mt_json_has_nul(v->valuestring) && !mt_json_has_nul("plain"));
    check_bytes(v ? v->valuestring : NULL, "\0", 1);
    check_bytes(cJSON_GetObjectItemCaseSensitive(j, "lit")->valuestring, "\\u0000", 6);
    check_bytes(cJSON_GetObjectItemCaseSensitive(j, "e")->valuestring, "\xF0\x9F\x98\x80", 4);

    /* decoding in place, as a caller with no other buffer does */
    char buf[] = "x\xC0\x80y\xC0\x80";
    CHECK(mt_json_decode(buf, buf) == 4 && memcmp(buf, "x\0y\0", 4) == 0);

    /* json.dumps(json.loads(t), separators=(",", ":"), ensure_ascii=False) */
    char *p = mt_json_print(j, false);
    const char *want = "{\"k\\u0000ey\":\"a\\u0000b\",\"z\":\"\\u0000\",\"lit\":\"\\\\u0000\","
                       "\"e\":\"\xF0\x9F\x98\x80\"}";
    CHECK_MSG(p && strcmp(p, want) == 0, "printed %s", p ? p : "(null)");
    cJSON *again = p ? parse_ok(p) : NULL;
    CHECK(again && cJSON_Compare(j, again, true));
    mt_free(p);
    cJSON_Delete(again);

    /* the C-string getters refuse a string they cannot hold whole; the raw getters keep it */
    mt_err err = {0};
    const char *s = NULL;
    CHECK(mt_json_str_req(j, "z", "t.json", &s, &err) == MT_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, "t.json") && strstr(err.msg, "\"z\"") && strstr(err.msg, "U+0000"), "%s", err.msg);
    CHECK(mt_json_str_opt(j, "z", "t.json", &s, &err) == MT_ERR_FORMAT);
    CHECK(mt_json_raw_req(j, "z", "t.json", &s, &err) == MT_OK && s && strcmp(s, "\xC0\x80") == 0);
    CHECK(mt_json_str_req(j, "lit", "t.json", &s, &err) == MT_OK && strcmp(s, "\\u0000") == 0);
    cJSON_Delete(j);
}

static void test_surrogates(void) {
    const char *high = "[\"x\", \"\\ud800\"]";
    parse_bad(high, strlen(high), "lone surrogate \\ud800 at line 1, column 8", "not followed by a low surrogate");
    const char *high_then_char = "\"\\uD83D\\u0041\"";
    parse_bad(high_then_char, strlen(high_then_char), "lone surrogate \\uD83D at line 1, column 2", "not followed");
    const char *high_then_high = "\"\\ud800\\ud800\"";
    parse_bad(high_then_high, strlen(high_then_high), "lone surrogate \\ud800 at line 1, column 2", "not followed");
    const char *high_then_text = "\"\\ud800abcdef\"";
    parse_bad(high_then_text, strlen(high_then_text), "lone surrogate \\ud800 at line 1, column 2", "not followed");
    const char *low = "{\n  \"a\": \"\xC3\xA9\\udc00\"}";
    parse_bad(low, strlen(low), "lone surrogate \\udc00 at line 2, column 10", "without a high surrogate before it");
    const char *key = "{\"\\uDFFF\": 1}";
    parse_bad(key, strlen(key), "lone surrogate \\uDFFF at line 1, column 3", "without a high surrogate");
    cJSON_Delete(parse_ok("\"\\udbff\\udfff\""));
}

static void test_depth(void) {
    char deep[2 * MT_JSON_MAX_DEPTH + 8];
    size_t n = 0;
    for (int i = 0; i < MT_JSON_MAX_DEPTH; i++) deep[n++] = '[';
    for (int i = 0; i < MT_JSON_MAX_DEPTH; i++) deep[n++] = ']';
    deep[n] = 0;
    cJSON_Delete(parse_ok(deep));
    n = 0;
    deep[n++] = '\n';
    for (int i = 0; i <= MT_JSON_MAX_DEPTH; i++) deep[n++] = '[';
    char want[80];
    snprintf(want, sizeof want, "nesting deeper than %d levels at line 2, column %d", MT_JSON_MAX_DEPTH,
             MT_JSON_MAX_DEPTH + 1);
    parse_bad(deep, n, want, NULL);
    /* brackets inside strings do not count */
    char quoted[MT_JSON_MAX_DEPTH + 8];
    n = 0;
    quoted[n++] = '"';
    for (int i = 0; i <= MT_JSON_MAX_DEPTH; i++) quoted[n++] = '[';
    quoted[n++] = '"';
    quoted[n] = 0;
    cJSON_Delete(parse_ok(quoted));
}

static void test_utf8(void) {
    parse_bad("\"a\xff\"", 4, "invalid UTF-8 at line 1, column 3", "0xff");
    parse_bad("[\"\xC3\xA9\",\n \"\xC3\xA9\xC3\"]", 14, "invalid UTF-8 at line 2, column 4", "0xc3");
    /* the encoded form of U+0000 never comes from the text itself */
    parse_bad("\"\xC0\x80\"", 4, "invalid UTF-8 at line 1, column 2", "0xc0");
    parse_bad("\"\xED\xA0\x80\"", 5, "invalid UTF-8 at line 1, column 2", NULL); /* a surrogate written as UTF-8 */
    parse_bad("\"\xF4\x90\x80\x80\"", 6, "invalid UTF-8 at line 1, column 2", NULL); /* past U+10FFFF */
    parse_bad("1\xE2\x82", 3, "invalid UTF-8 at line 1, column 2", NULL);                /* cut short */
    cJSON_Delete(parse_ok("\"\xE2\x82\xAC \xF0\x9F\x98\x80 \xC3\xA9\""));
}

static void test_syntax(void) {
    parse_bad("{\n\"a\": ]", 8, "invalid JSON at line 2, column 6", "expected a value, found ']'");
    parse_bad("{\"\xC3\xA9\": 1,}", 10, "invalid JSON at line 1, column 9",
              "expected a key in double quotes, found '}'");
    parse_bad("{\"a\": 1", 7, "invalid JSON at line 1, column 8", "found the end of the text");
    parse_bad("", 0, "invalid JSON at line 1, column 1", "found the end of the text");
    parse_bad("[1.]", 4, "invalid JSON at line 1, column 4", "expected a digit, found ']'");
    parse_bad("-", 1, "invalid JSON at line 1, column 2", "expected a digit, found the end of the text");
    parse_bad("[01]", 4, "invalid JSON at line 1, column 3", "expected ',' or ']', found '1'");
    parse_bad("[NaN]", 5, "invalid JSON at line 1, column 2", "expected a value, found 'N'");
    parse_bad("\xEF\xBB\xBF{}", 5, "invalid JSON at line 1, column 1", "found a byte order mark");
    parse_bad("{} x", 4, "text after the JSON value at line 1, column 4", NULL);
    parse_bad("[\"abc", 5, "string not closed at line 1, column 2", NULL);
    parse_bad("[\"a\\qb\"]", 8, "invalid escape \\q at line 1, column 4", NULL);
    parse_bad("[\"a\\u12G4\"]", 11, "invalid escape \\u12G4 at line 1, column 4", NULL);
    parse_bad("[\"a\0b\"]", 7, "a NUL byte at line 1, column 4", "\\u0000");
    /* the first problem in the text wins, whichever check finds it */
    const char *both = "{\"a\" 1, \"b\": \"\\ud800\"}";
    parse_bad(both, strlen(both), "invalid JSON at line 1, column 6", "expected ':' after the key, found '1'");
    const char *after = "{} [\"\\ud800\"]";
    parse_bad(after, strlen(after), "text after the JSON value at line 1, column 4", NULL);
    cJSON_Delete(parse_ok(" {\"a\": [1, 2.5, true, null, \"\\\"\\\\\\/\\b\\f\\n\\r\\t\"]} \n"));
}

/* A sample of a larger file: positions count from its first line, and what may be left out. */
static void test_parse_from(void) {
    cJSON *j = NULL;
    mt_err err = {0};
    CHECK(mt_json_parse_from("{\n\"a\": ]", 8, NULL, 41, &j, &err) == MT_ERR_FORMAT);
    CHECK_MSG(strncmp(err.msg, "invalid JSON at line 42, column 6", 33) == 0, "%s", err.msg);
}

int main(void) {
    test_nul_round_trip();
    test_surrogates();
    test_depth();
    test_utf8();
    test_syntax();
    test_parse_from();
    return check_report();
}
