/* serve: base64 of data: URLs, and the answer filter (stop strings cut exactly, never shown in part; tool-call
 * text taken out of the content), fed whole and byte by byte. */
#include <string.h>

#include "base/base64.h"
#include "check.h"
#include "serve/out_filter.h"
#include "serve/tool_calls.h"

static void test_base64(void) {
    mt_err err;
    uint8_t *out;
    size_t n;
    CHECK(mt_base64_decode("aGVsbG8=", 8, "x", &out, &n, &err) == MT_OK && n == 5 && !memcmp(out, "hello", 5));
    mt_free(out);
    CHECK(mt_base64_decode("aGVsbG8", 7, "x", &out, &n, &err) == MT_OK && n == 5 && !memcmp(out, "hello", 5));
    mt_free(out);
    CHECK(mt_base64_decode("", 0, "x", &out, &n, &err) == MT_OK && n == 0);
    mt_free(out);
    CHECK(mt_base64_decode("aGV*bG8=", 8, "image 1", &out, &n, &err) == MT_ERR_FORMAT && strstr(err.msg, "image 1") &&
          strstr(err.msg, "'*' at offset 3"));
    CHECK(mt_base64_decode("aGVsb", 5, "x", &out, &n, &err) == MT_ERR_FORMAT && strstr(err.msg, "cut short"));
    CHECK(mt_base64_decode("aG\nVsbG8", 8, "x", &out, &n, &err) == MT_ERR_FORMAT && strstr(err.msg, "0x0a"));
}

/* Runs text through a filter in pieces of `step` bytes (0: whole); returns what the client sees. */
static void run(const char *text, size_t step, const char *const *stops, int n_stops, const char *tag, mt_buf *seen,
                mt_buf *tool, bool *stopped) {
    mt_out_filter f;
    mt_out_filter_init(&f, stops, n_stops, tag);
    size_t n = strlen(text), k = step ? step : n;
    *stopped = false;
    for (size_t i = 0; i < n && !*stopped; i += k) {
        mt_buf piece = {0};
        *stopped = mt_out_filter_push(&f, text + i, MT_MIN(k, n - i), &piece);
        /* nothing sent may be part of a stop string */
        for (int s = 0; s < n_stops; s++) CHECK(!piece.n || !strstr(piece.p, stops[s]));
        mt_buf_add(seen, piece.p ? piece.p : "", piece.n);
        mt_buf_free(&piece);
    }
    mt_out_filter_flush(&f, seen);
    mt_buf_add(tool, f.tool.p ? f.tool.p : "", f.tool.n);
    mt_out_filter_free(&f);
}

static void expect(const char *text, const char *const *stops, int n_stops, const char *tag, const char *content,
                   const char *tool_text, bool stop) {
    for (size_t step = 0; step <= 3; step++) {
        mt_buf seen = {0}, tool = {0};
        bool stopped;
        run(text, step, stops, n_stops, tag, &seen, &tool, &stopped);
        CHECK_MSG(!strcmp(seen.p ? seen.p : "", content) && !strcmp(tool.p ? tool.p : "", tool_text) && stopped == stop,
                  "'%s' in steps of %zu: content '%s', tool '%s', stopped %d", text, step, seen.p ? seen.p : "",
                  tool.p ? tool.p : "", stopped);
        mt_buf_free(&seen);
        mt_buf_free(&tool);
    }
}

static void test_filter(void) {
    const char *stops[] = {"END", "\n\n"};
    expect("hello world", stops, 2, NULL, "hello world", "", false);
    expect("one ENDtwo", stops, 2, NULL, "one ", "", true);
    expect("one EN", stops, 2, NULL, "one EN", "", false); /* held back, then given at the end */
    expect("a\n\nb END", stops, 2, NULL, "a", "", true);   /* the earliest stop wins */
    expect("call <tool_call>{\"name\": \"f\"}</tool_call>", stops, 0, "<tool_call>", "call ",
           "<tool_call>{\"name\": \"f\"}</tool_call>", false);
    expect("<tool_c", stops, 0, "<tool_call>", "<tool_c", "", false);
    expect("x END <tool_call>", stops, 2, "<tool_call>", "x ", "", true);
}

/* The n-th call's name and arguments text, or a failure. */
static bool call_is(const cJSON *calls, int n, const char *name, const char *args) {
    const cJSON *c = cJSON_GetArrayItem(calls, n), *fn = cJSON_GetObjectItem(c, "function");
    const cJSON *nm = cJSON_GetObjectItem(fn, "name"), *a = cJSON_GetObjectItem(fn, "arguments");
    const cJSON *id = cJSON_GetObjectItem(c, "id");
    return cJSON_IsString(nm) && !strcmp(nm->valuestring, name) && cJSON_IsString(a) && !strcmp(a->valuestring, args) &&
           cJSON_IsString(id) && !strncmp(id->valuestring, "call_", 5);
}

static void test_tool_calls(void) {
    mt_err err;
    cJSON *calls = NULL;
#define PARSE(text) mt_tool_calls_parse(text, strlen(text), 7, &calls, &err)
    CHECK(PARSE("<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1}}\n</tool_call>") == MT_OK &&
          cJSON_GetArraySize(calls) == 1 && call_is(calls, 0, "f", "{\"a\":1}"));
    cJSON_Delete(calls);
    CHECK(PARSE("<tool_call>{\"name\": \"f\", \"arguments\": \"{}\"}</tool_call>\n<tool_call>{\"name\": \"g\"}</tool_call>") ==
              MT_OK && cJSON_GetArraySize(calls) == 2 && call_is(calls, 0, "f", "{}") && call_is(calls, 1, "g", "{}"));
    cJSON_Delete(calls);
    /* cut by max_tokens or the end of turn inside the closing tag, or before it */
    CHECK(PARSE("<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</") == MT_OK && call_is(calls, 0, "f", "{}"));
    cJSON_Delete(calls);
    CHECK(PARSE("<tool_call>{\"name\": \"f\"}") == MT_OK && call_is(calls, 0, "f", "{}"));
    cJSON_Delete(calls);
    CHECK(PARSE("<tool_call>{\"name\": \"f\", \"argu") == MT_ERR_FORMAT);
    CHECK(PARSE("<tool_call>[1]</tool_call>") == MT_ERR_FORMAT);
    CHECK(PARSE("<tool_call>{\"name\": \"f\"}</tool_call> and then text") == MT_ERR_FORMAT);
#undef PARSE
}

int main(void) {
    test_base64();
    test_tool_calls();
    test_filter();
    return check_report();
}
