/* train/reward: the built-in terms on hand-written completions, the term syntax and its errors, the JSON Schema
 * subset, and user reward programs that succeed, print garbage, fail, crash, hang, ignore stdin or leave a child
 * behind holding stdout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/json.h"
#include "check.h"
#include "train/reward.h"

static cJSON *parse(const char *text) {
    cJSON *v = NULL;
    mt_err err;
    if (mt_json_parse(text, strlen(text), "test", &v, &err)) fprintf(stderr, "bad test JSON: %s\n", err.msg);
    return v;
}

static double score1(const char *spec, const char *completion, const char *sample_json) {
    mt_rewards *set = mt_rewards_new();
    mt_err err;
    double terms[1] = {-1}, total = -1;
    cJSON *sample = parse(sample_json);
    if (mt_rewards_add(set, spec, &err) || mt_rewards_check_sample(set, sample, "sample", &err) ||
        mt_rewards_score(set, &(mt_reward_input){"Q", completion, sample}, terms, &total, &err)) {
        fprintf(stderr, "%s: %s\n", spec, err.msg);
        total = -2;
    }
    cJSON_Delete(sample);
    mt_rewards_free(set);
    return total;
}

static void test_final_answer(void) {
    size_t off, len;
    const char *c = "<think>maybe \\boxed{2}</think> so \\boxed{\\frac{1}{2}} done";
    mt_reward_final_answer(c, &off, &len);
    CHECK(len == strlen("\\frac{1}{2}") && strncmp(c + off, "\\frac{1}{2}", len) == 0);
    c = "<think>a</think>b</think> 7";
    mt_reward_final_answer(c, &off, &len);
    CHECK(strcmp(c + off, " 7") == 0 && len == 2);
    c = "just 3";
    mt_reward_final_answer(c, &off, &len);
    CHECK(off == 0 && len == 6);
    c = "\\boxed{unclosed";
    mt_reward_final_answer(c, &off, &len);
    CHECK(off == 0 && len == strlen(c));
}

static void test_answer(void) {
    CHECK(score1("answer", "<think>count</think> 3", "{\"answer\": 3}") == 1);
    CHECK(score1("answer", "<think>count</think> 3.0.", "{\"answer\": \"3\"}") == 1);
    CHECK(score1("answer", "The answer is \\boxed{1,000}", "{\"answer\": 1000}") == 1);
    CHECK(score1("answer", "\\boxed{ $-2.5$ }", "{\"answer\": \"-2.5\"}") == 1);
    CHECK(score1("answer", "</think>Yes", "{\"answer\": \"yes\"}") == 1);
    CHECK(score1("answer", "</think>4", "{\"answer\": 3}") == 0);
    CHECK(score1("answer", "</think>3 apples", "{\"answer\": 3}") == 0);
    CHECK(score1("answer", "</think>nan", "{\"answer\": \"NaN\"}") == 1); /* text, not a number: compared as text */
    CHECK(score1("answer", "", "{\"answer\": \"x\"}") == 0);
    CHECK(score1("answer@2", "7", "{\"answer\": 7}") == 2);
    CHECK(score1("answer@-0.5", "7", "{\"answer\": 7}") == -0.5);
}

static void test_format_regex(void) {
    CHECK(score1("format", " <think>\nhm\n</think>\n42", "{}") == 1);
    CHECK(score1("format", "<think>hm</think>   \n", "{}") == 0);
    CHECK(score1("format", "42 <think>hm</think> 42", "{}") == 0);
    CHECK(score1("format", "<think>a<think>b</think> c", "{}") == 0);
    CHECK(score1("format", "<think>a</think> c </think>", "{}") == 0);
    CHECK(score1("regex=^\\d+ (cats|dogs)$", "12 cats", "{}") == 1);
    CHECK(score1("regex=^\\d+ (cats|dogs)$", "12 cows", "{}") == 0);
    CHECK(score1("regex=a@b=c", "x a@b=c y", "{}") == 1);
    /* Catastrophic backtracking on model output ends at the match limit as a no match. */
    char many[80];
    memset(many, 'a', sizeof many - 2);
    many[sizeof many - 2] = 'b';
    many[sizeof many - 1] = 0;
    CHECK(score1("regex=^(a+)+$", many, "{}") == 0);
}

static void test_iou(void) {
    CHECK_NEAR(score1("iou", "{\"bbox_2d\": [10, 10, 20, 20]}", "{\"box\": [10, 10, 20, 20]}"), 1, 1e-12);
    CHECK_NEAR(score1("iou", "<think>[0,0,1,1]</think>[15, 10, 25, 20]", "{\"bbox\": [10, 10, 20, 20]}"),
               50.0 / 150.0, 1e-12);
    CHECK(score1("iou", "[30, 30, 40, 40]", "{\"box\": [10, 10, 20, 20]}") == 0);
    CHECK(score1("iou", "[20, 20, 10, 10]", "{\"box\": [10, 10, 20, 20]}") == 0);
    CHECK(score1("iou", "no box", "{\"box\": [10, 10, 20, 20]}") == 0);
    CHECK(score1("iou", "[1, 2, 3]", "{\"box\": [10, 10, 20, 20]}") == 0);
    double ref[4] = {0, 0, 10, 10};
    CHECK_NEAR(mt_reward_iou("[0, 0, 5, 10] then [0,0,10,5]", 29, ref), 0.5, 1e-12);
}

static void test_json(void) {
    const char *sample = "{\"schema\": {\"type\": \"object\", \"required\": [\"name\", \"n\"], \"additionalProperties\": "
                         "false, \"properties\": {\"name\": {\"type\": \"string\", \"minLength\": 2, \"pattern\": "
                         "\"^[a-z]+$\"}, \"n\": {\"type\": \"integer\", \"minimum\": 0, \"exclusiveMaximum\": 10}, "
                         "\"tags\": {\"type\": \"array\", \"items\": {\"enum\": [\"a\", \"b\"]}, \"maxItems\": 2}}}}";
    CHECK(score1("json", "```json\n{\"name\": \"ab\", \"n\": 3}\n```", sample) == 1);
    CHECK(score1("json", "</think>{\"name\": \"ab\", \"n\": 3, \"tags\": [\"a\"]}", sample) == 1);
    CHECK(score1("json", "{\"name\": \"ab\", \"n\": 10}", sample) == 0);
    CHECK(score1("json", "{\"name\": \"ab\", \"n\": 3.5}", sample) == 0);
    CHECK(score1("json", "{\"name\": \"Ab\", \"n\": 3}", sample) == 0);
    CHECK(score1("json", "{\"name\": \"ab\"}", sample) == 0);
    CHECK(score1("json", "{\"name\": \"ab\", \"n\": 1, \"x\": 1}", sample) == 0);
    CHECK(score1("json", "{\"name\": \"ab\", \"n\": 1, \"tags\": [\"a\", \"c\"]}", sample) == 0);
    CHECK(score1("json", "{\"name\": \"ab\", \"n\": 1,}", sample) == 0);
    CHECK(score1("json", "not json", sample) == 0);
    const char *any = "{\"schema\": {\"oneOf\": [{\"type\": \"string\"}, {\"type\": \"number\"}], \"not\": {\"const\": 0}}}";
    CHECK(score1("json", "\"é\"", any) == 1);
    CHECK(score1("json", "0", any) == 0);
    CHECK(score1("json", "null", any) == 0);

    mt_err err;
    cJSON *bad = parse("{\"properties\": {\"a\": {\"format\": \"email\"}}}");
    CHECK(mt_schema_check(bad, "s.json", &err) == MT_ERR_UNSUPPORTED && strstr(err.msg, "\"format\"") &&
          strstr(err.msg, "/properties/a"));
    cJSON_Delete(bad);
    bad = parse("{\"type\": \"float\"}");
    CHECK(mt_schema_check(bad, "s.json", &err) && strstr(err.msg, "type"));
    cJSON_Delete(bad);
    bad = parse("{\"pattern\": \"(\"}");
    CHECK(mt_schema_check(bad, "s.json", &err) && strstr(err.msg, "pattern"));
    cJSON_Delete(bad);
}

static void test_specs(void) {
    mt_rewards *set = mt_rewards_new();
    mt_err err;
    CHECK(mt_rewards_add(set, "accuracy", &err) == MT_ERR_INVALID_ARG && strstr(err.msg, "unknown name \"accuracy\""));
    CHECK(mt_rewards_add(set, "answer@x", &err) && strstr(err.msg, "weight"));
    CHECK(mt_rewards_add(set, "answer@inf", &err) && strstr(err.msg, "weight"));
    CHECK(mt_rewards_add(set, "format=1", &err) && strstr(err.msg, "takes no argument"));
    CHECK(mt_rewards_add(set, "regex", &err) && strstr(err.msg, "pattern"));
    CHECK(mt_rewards_add(set, "regex=(", &err) && strstr(err.msg, "does not compile"));
    CHECK(mt_rewards_add(set, "cmd=", &err) && strstr(err.msg, "empty"));
    CHECK(mt_rewards_add(set, "json=/nonexistent/schema.json", &err) && strstr(err.msg, "/nonexistent/schema.json"));
    CHECK(mt_rewards_count(set) == 0);
    CHECK(mt_rewards_add(set, "answer", &err) == MT_OK && mt_rewards_add(set, "iou@0.5", &err) == MT_OK &&
          mt_rewards_add(set, "json", &err) == MT_OK);
    CHECK(mt_rewards_count(set) == 3 && strcmp(mt_rewards_name(set, 1), "iou") == 0);
    cJSON *s = parse("{\"box\": [1, 2, 3, 4], \"schema\": {}}");
    CHECK(mt_rewards_check_sample(set, s, "d.jsonl:3", &err) && strstr(err.msg, "d.jsonl:3") &&
          strstr(err.msg, "\"answer\""));
    cJSON_Delete(s);
    s = parse("{\"answer\": 1, \"box\": [3, 2, 1, 4], \"schema\": {}}");
    CHECK(mt_rewards_check_sample(set, s, "d.jsonl:4", &err) && strstr(err.msg, "x2 > x1"));
    cJSON_Delete(s);
    s = parse("{\"answer\": 1, \"box\": [1, 2, 3, 4]}");
    CHECK(mt_rewards_check_sample(set, s, "d.jsonl:5", &err) && strstr(err.msg, "\"schema\""));
    cJSON_Delete(s);
    s = parse("{\"answer\": \"1\", \"box\": [1, 2, 3, 4], \"schema\": {\"type\": \"object\"}}");
    CHECK(mt_rewards_check_sample(set, s, "d.jsonl:6", &err) == MT_OK);
    double terms[3], total;
    CHECK(mt_rewards_score(set, &(mt_reward_input){"", "{\"a\": [1, 2, 3, 4]}", s}, terms, &total, &err) == MT_OK);
    CHECK(terms[0] == 0 && terms[1] == 1 && terms[2] == 1 && total == 1.5);
    cJSON_Delete(s);
    mt_rewards_free(set);
}

static double seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void test_cmd_run(void) {
    mt_err err;
    double v = -1;
    const char *in = "{\"completion\": \"abc\"}";
    CHECK(mt_reward_cmd_run("python3 -c 'import json,sys; print(len(json.load(sys.stdin)[\"completion\"]) / 4)'",
                            in, strlen(in), 10, &v, &err) == MT_OK && v == 0.75);
    CHECK(mt_reward_cmd_run("echo '  -2e-1 '", "", 0, 10, &v, &err) == MT_OK && v == -0.2);
    CHECK(mt_reward_cmd_run("echo 0.5 apples", "", 0, 10, &v, &err) && strstr(err.msg, "0.5 apples"));
    CHECK(mt_reward_cmd_run("echo nan", "", 0, 10, &v, &err) && strstr(err.msg, "finite"));
    CHECK(mt_reward_cmd_run("true", "", 0, 10, &v, &err) && strstr(err.msg, "nothing"));
    CHECK(mt_reward_cmd_run("echo oops >&2; exit 3", "", 0, 10, &v, &err) && strstr(err.msg, "status 3") &&
          strstr(err.msg, "oops"));
    CHECK(mt_reward_cmd_run("kill -SEGV $$", "", 0, 10, &v, &err) && strstr(err.msg, "signal 11"));
    CHECK(mt_reward_cmd_run("head -c 100000 /dev/zero | tr '\\0' 1", "", 0, 10, &v, &err) &&
          strstr(err.msg, "more than"));
    double t0 = seconds();
    CHECK(mt_reward_cmd_run("sleep 30; echo 1", "", 0, 0.3, &v, &err) && strstr(err.msg, "timeout"));
    CHECK_MSG(seconds() - t0 < 5, "the timeout took %.1f s", seconds() - t0);
    t0 = seconds();
    CHECK(mt_reward_cmd_run("(sleep 30 &) ; echo 1", "", 0, 0.5, &v, &err) && strstr(err.msg, "timeout"));
    CHECK(seconds() - t0 < 5);
    /* A program that never reads a large input: no SIGPIPE kills us, its answer still counts. */
    size_t big = 1 << 22;
    char *lots = malloc(big);
    memset(lots, 'x', big);
    CHECK(mt_reward_cmd_run("echo 1", lots, big, 10, &v, &err) == MT_OK && v == 1);
    free(lots);
    /* The data reaches the program on stdin only: shell syntax in it is never run. */
    char mark[64];
    snprintf(mark, sizeof mark, "/tmp/mt_reward_mark_%d", (int)getpid());
    char evil[160];
    snprintf(evil, sizeof evil, "$(touch %s) `touch %s`", mark, mark);
    mt_rewards *set = mt_rewards_new();
    CHECK(mt_rewards_add(set, "cmd@2=wc -c", &err) == MT_OK);
    double terms[2], total;
    CHECK(mt_rewards_score(set, &(mt_reward_input){"p", evil, NULL}, terms, &total, &err) == MT_OK);
    CHECK(access(mark, F_OK) != 0);
    CHECK(terms[0] > (double)strlen(evil) && total == 2 * terms[0]);
    CHECK(mt_rewards_cmd_failures(set) == 0);
    mt_rewards_free(set);
    set = mt_rewards_new();
    CHECK(mt_rewards_add(set, "cmd=exit 1", &err) == MT_OK && mt_rewards_add(set, "format@0.5", &err) == MT_OK);
    CHECK(mt_rewards_score(set, &(mt_reward_input){"p", "<think>a</think>b", NULL}, terms, &total, &err) == MT_OK);
    CHECK(total == 0.5 && mt_rewards_cmd_failures(set) == 1);
    mt_rewards_free(set);
}

int main(void) {
    mt_log_set_level(MT_LOG_ERROR);
    test_final_answer();
    test_answer();
    test_format_regex();
    test_iou();
    test_json();
    test_specs();
    test_cmd_run();
    return check_report();
}
