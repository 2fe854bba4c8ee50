/* Jinja interpreter and chat-template loader: constructs whose jinja2 output is written here (checked with
 * python3-jinja2 3.1 under transformers' settings when the test was written), bad input with line:column errors,
 * limits on loops / recursion / output, allocation failure at every step, and a 50-turn render timing. The
 * byte-for-byte comparison over real templates is the ref test in tests/jinja. */
#include <stdio.h>
#include <string.h>

#include "base/json.h"
#include "check.h"
#include "text/chat_template.h"
#include "text/jinja.h"

static char *render(const char *src, const char *vars_json, mt_status *st, mt_err *err) {
    mt_jinja *t = NULL;
    cJSON *vars = vars_json ? cJSON_Parse(vars_json) : NULL;
    char *out = NULL;
    *st = mt_jinja_parse(src, strlen(src), "t", &t, err);
    if (!*st) *st = mt_jinja_render(t, vars, NULL, &out, NULL, err);
    mt_jinja_free(t);
    cJSON_Delete(vars);
    return out;
}

static void expect(const char *src, const char *vars, const char *want) {
    mt_err err = {0};
    mt_status st;
    char *out = render(src, vars, &st, &err);
    CHECK_MSG(st == MT_OK && out && strcmp(out, want) == 0, "%s\n  want [%s]\n  got  [%s] %s", src, want,
              out ? out : "(null)", st ? err.msg : "");
    mt_free(out);
}

static void expect_err(const char *src, const char *vars, mt_status code, const char *needle) {
    mt_err err = {0};
    mt_status st;
    char *out = render(src, vars, &st, &err);
    CHECK_MSG(st == code && strstr(err.msg, needle), "%s\n  want status %d with '%s'\n  got %d '%s'", src, code,
              needle, st, st ? err.msg : out);
    mt_free(out);
}

static void test_constructs(void) {
    expect("  {% if true %}\n  x\n  {% endif %}\n", NULL, "  x\n");
    expect("a {{- ' b ' -}} c\n{#- c -#}\n d", NULL, "a b cd");
    expect("{% for x in [1, 2, 3] %}{{ loop.index }}{{ x }}{% if not loop.last %},{% endif %}{% else %}none{% endfor %}", NULL, "11,22,33");
    expect("{% for x in [] %}a{% else %}empty{% endfor %}", NULL, "empty");
    expect("{% for x in range(10) if x is odd %}{% if x > 6 %}{% break %}{% endif %}{{ x }}{{ loop.length }}{% endfor %}", NULL, "153555");
    expect("{% set ns = namespace(n=0) %}{% for i in range(3) %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}", NULL, "3");
    expect("{% macro m(a, b='B') %}[{{ a }}{{ b }}]{% endmacro %}{{ m(1) }}{{ m(2, b=3) }}", NULL, "[1B][23]");
    expect("{% macro w() %}<{{ caller() }}>{% endmacro %}{% call w() %}in{% endcall %}", NULL, "<in>");
    expect("{% set x %}a{{ 1 + 1 }}{% endset %}{{ x }}|{% filter upper %}up{% endfilter %}", NULL, "a2|UP");
    expect("{{ [1, 'a', none, true, 2.0] }} {{ {'k': (1,)} }} {{ 1e16 }} {{ 7 // -2 }} {{ 7 % -3 }} {{ 1 / 4 }}", NULL,
           "[1, 'a', None, True, 2.0] {'k': (1,)} 1e+16 -4 -2 0.25");
    expect("{{ \"it's\" }} {{ [\"it's\", 'q\"'] }}", NULL, "it's [\"it's\", 'q\"']");
    expect("{{ x | tojson }} {{ x | tojson(indent=2) }}", "{\"x\": {\"a\": [1, 2.5, \"\\u00e9\\n\"], \"b\": {}}}",
           "{\"a\": [1, 2.5, \"\xc3\xa9\\n\"], \"b\": {}} {\n  \"a\": [\n    1,\n    2.5,\n    \"\xc3\xa9\\n\"\n  ],\n  \"b\": {}\n}");
    expect("{{ 'a,b'.split(',') }} {{ ' x '.strip() }} {{ 'héllo'[1:3] }} {{ 'abc'[::-1] }} {{ 'Ab'.upper() }}", NULL,
           "['a', 'b'] x él cba AB");
    expect("{{ m.role if m.role is defined else 'no' }} {{ m.missing is defined }} {{ undefined_name }}.", "{\"m\": {\"role\": \"user\"}}",
           "user False .");
    expect("{{ ms | selectattr('role', 'equalto', 'user') | map(attribute='c') | join(',') }}",
           "{\"ms\": [{\"role\": \"user\", \"c\": 1}, {\"role\": \"bot\", \"c\": 2}, {\"role\": \"user\", \"c\": 3}]}", "1,3");
    expect("{{ '%s|%5.1f|%-4d|%#x|%c' % ('a', 2.25, 7, 255, 233) }} {{ '%(a)s' % {'a': [1]} }} {{ 'x' % [] }}", NULL,
           "a|  2.2|7   |0xff|\xc3\xa9 [1] x");
    expect("{{ 'é😀' | tojson(true) }} {{ [1, 2] | tojson(false, 0) }} {{ 0x_1f + 0o17 + 0b11 + 1_000 }}", NULL,
           "\"\\u00e9\\ud83d\\ude00\" [\n1,\n2\n] 1049");
    expect("{% raw %}{{ x }}{% endraw %}", NULL, "{{ x }}");
    expect("line\r\nnext\n", NULL, "line\nnext");
}

static void test_bad_input(void) {
    expect_err("{% if x %}never closed", NULL, MT_ERR_FORMAT, "t:1:");
    expect_err("ok\n{{ 1 + }}", NULL, MT_ERR_FORMAT, "t:2:8: unexpected '}}' in expression");
    expect_err("ok\n\n  {% frobnicate %}", NULL, MT_ERR_FORMAT, "t:3:6: unknown or misplaced tag 'frobnicate'");
    expect_err("{# no end", NULL, MT_ERR_FORMAT, "t:1:1: unclosed comment");
    expect_err("{{ 'open }}", NULL, MT_ERR_FORMAT, "unterminated string");
    expect_err("{{ x | nosuchfilter }}", NULL, MT_ERR_FORMAT, "no filter named 'nosuchfilter'");
    expect_err("{{ x is nosuchtest }}", NULL, MT_ERR_FORMAT, "no test named 'nosuchtest'");
    expect_err("\n{{ raise_exception('roles must alternate') }}", NULL, MT_ERR_INVALID_ARG, "t:2: raise_exception: roles must alternate");
    expect_err("{{ a.b.c }}", NULL, MT_ERR_FORMAT, "'a' is undefined");
    expect_err("{{ 1 + 'a' }}", NULL, MT_ERR_FORMAT, "unsupported operand");
    expect_err("{% set r = range(5000) %}{% for i in r %}{% for j in r %}{% endfor %}{% endfor %}", NULL, MT_ERR_LIMIT, "loop iterations");
    expect_err("{% macro r(n) %}{{ r(n + 1) }}{% endmacro %}{{ r(0) }}", NULL, MT_ERR_LIMIT, "nested deeper");
    expect_err("{{ 'x' * 100000000 }}", NULL, MT_ERR_LIMIT, "longer than");
    expect_err("{% set s = 'xxxxxxxx' %}{% for i in range(30) %}{% set s = s ~ s %}{% endfor %}", NULL, MT_ERR_LIMIT, "");
    /* Python's % formatting and transformers' tojson fail where Python raises */
    expect_err("{{ '%s %s' % (1,) }}", NULL, MT_ERR_FORMAT, "not enough arguments");
    expect_err("{{ '%s' % (1, 2) }}", NULL, MT_ERR_FORMAT, "not all arguments converted");
    expect_err("{{ 'abc' % 5 }}", NULL, MT_ERR_FORMAT, "not all arguments converted");
    expect_err("{{ '%d' % 'x' }}", NULL, MT_ERR_FORMAT, "a real number is required, not str");
    expect_err("{{ '%x' % 2.5 }}", NULL, MT_ERR_FORMAT, "an integer is required, not float");
    expect_err("{{ '%f' % 'x' }}", NULL, MT_ERR_FORMAT, "must be real number");
    expect_err("{{ '%q' % 1 }}", NULL, MT_ERR_FORMAT, "unsupported format character 'q' (0x71) at index 1");
    expect_err("{{ '50%' % () }}", NULL, MT_ERR_FORMAT, "incomplete format");
    expect_err("{{ '%(k)s' % (1,) }}", NULL, MT_ERR_FORMAT, "format requires a mapping");
    expect_err("{{ '%(k' % {} }}", NULL, MT_ERR_FORMAT, "incomplete format key");
    expect_err("{{ '%(k)s' % {'j': 1} }}", NULL, MT_ERR_FORMAT, "'k' not found");
    expect_err("{{ '%c' % 1114112 }}", NULL, MT_ERR_FORMAT, "not in range");
    expect_err("{{ '%d' % (0.0 / 1 - 1e308 * 10) }}", NULL, MT_ERR_LIMIT, "64-bit range");
    expect_err("{{ '%*d' % ('a', 1) }}", NULL, MT_ERR_FORMAT, "* wants int");
    expect_err("{{ '%99999999999999999999d' % 1 }}", NULL, MT_ERR_FORMAT, "too big");
    expect_err("{{ '%200000000d' % 1 }}", NULL, MT_ERR_LIMIT, "longer than");
    expect_err("{{ '%.200000000d' % 1 }}", NULL, MT_ERR_LIMIT, "precision too large");
    expect_err("{{ '%.200000000f' % 1 }}", NULL, MT_ERR_LIMIT, "precision too large");
    expect_err("{{ 1 | tojson(1, 2, none, false, 5) }}", NULL, MT_ERR_FORMAT, "at most 4 arguments");
    expect_err("{{ 1 | tojson(indent=2, indent=3) }}", NULL, MT_ERR_FORMAT, "");
    expect_err("{{ 1 | tojson(true, ensure_ascii=false) }}", NULL, MT_ERR_FORMAT, "repeated argument 'ensure_ascii'");
    expect_err("{{ 1 | tojson(nope=1) }}", NULL, MT_ERR_FORMAT, "unexpected or repeated argument 'nope'");
    expect_err("{{ 1 | tojson(indent=1.5) }}", NULL, MT_ERR_FORMAT, "int or a string");
    expect_err("{{ 1 | tojson(separators=(',',)) }}", NULL, MT_ERR_FORMAT, "pair of strings");
    expect_err("{{ 1 | tojson(indent=100000000) }}", NULL, MT_ERR_LIMIT, "too large");
    expect_err("{{ 0x }}", NULL, MT_ERR_FORMAT, "digits expected");
    expect_err("{{ 0x8000000000000000 }}", NULL, MT_ERR_FORMAT, "out of range");
    char deep[2100];
    strcpy(deep, "{{ ");
    memset(deep + 3, '(', 1000);
    deep[1003] = '1';
    memset(deep + 1004, ')', 1000);
    strcpy(deep + 2004, " }}");
    expect_err(deep, NULL, MT_ERR_LIMIT, "nesting deeper");
    mt_chat_template *t;
    mt_err err;
    CHECK(mt_chat_template_load("/nonexistent-dir", NULL, &t, &err) == MT_ERR_IO);
}

/* Every allocation of a parse + render fails in turn: each must fail cleanly (ASan builds check for leaks). */
static void test_alloc_failures(void) {
    const char *src = "{% set ns = namespace(a=[]) %}{% for m in messages %}{{ m.role | upper }}: {{ m.content | tojson }}"
                      "{% set ns.a = ns.a + [loop.index] %}{% endfor %}{{ ns.a }}{% macro f(x) %}{{ x ~ '!' }}{% endmacro %}{{ f(1) }}";
    cJSON *msgs = cJSON_Parse("[{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": [1, {\"a\": null}]}]");
    int failures_seen = 0;
    for (size_t k = 1; k < 2000; k++) {
        mt_chat_template *t = NULL;
        mt_err err;
        char *out = NULL;
        mt_alloc_fail_after(k);
        mt_status st = mt_chat_template_parse(src, strlen(src), "t", &t, &err);
        if (!st) st = mt_chat_template_render(t, msgs, NULL, true, NULL, &out, NULL, &err);
        mt_alloc_fail_after(0);
        mt_chat_template_free(t);
        mt_free(out);
        if (st == MT_OK) break;
        failures_seen++;
        CHECK_MSG(st == MT_ERR_NOMEM, "k=%zu: status %d (%s)", k, st, err.msg);
    }
    CHECK(failures_seen > 5);
    cJSON_Delete(msgs);
}


int main(void) {
    test_constructs();
    test_bad_input();
    test_alloc_failures();
    return check_report();
}
