/* libFuzzer target for the Jinja template parser and interpreter.
 *
 * The input is a template source. When it parses, it is rendered over a small fixed conversation (string and
 * list content, a tool call, tools) under tight limits, so runaway loops and recursion end quickly. Broken
 * promises trap: a render that succeeds without a NUL-terminated output of the stated length, or a failure with
 * an empty message or a status outside the documented set.
 */
#include <string.h>

#include "text/jinja.h"

static const char vars_json[] =
    "{\"messages\": [{\"role\": \"system\", \"content\": \"sys\"}, {\"role\": \"user\", \"content\": [{\"type\": "
    "\"image\"}, {\"type\": \"text\", \"text\": \"hi \\u00e9\"}]}, {\"role\": \"assistant\", \"content\": null, "
    "\"tool_calls\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"arguments\": {\"a\": 1.5, \"b\": "
    "[true, null]}}}]}, {\"role\": \"tool\", \"content\": \"42\"}], \"tools\": [{\"type\": \"function\", "
    "\"function\": {\"name\": \"f\", \"parameters\": {}}}], \"add_generation_prompt\": true, \"bos_token\": \"<s>\"}";

static cJSON *vars;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!vars && !(vars = cJSON_Parse(vars_json))) __builtin_trap();
    static const mt_jinja_limits lim = {1 << 20, 32 << 20, 100000, 16};
    mt_jinja *t;
    mt_err err;
    mt_status st = mt_jinja_parse((const char *)data, size, "fuzz", &t, &err);
    if (st != MT_OK) {
        if ((st != MT_ERR_FORMAT && st != MT_ERR_LIMIT) || !err.msg[0]) __builtin_trap();
        return 0;
    }
    char *out;
    size_t len;
    st = mt_jinja_render(t, vars, &lim, &out, &len, &err);
    if (st == MT_OK) {
        if (strlen(out) > len || out[len] != 0 || len > lim.max_output) __builtin_trap();
        mt_free(out);
    } else if (!err.msg[0] || st == MT_ERR_INTERNAL || st == MT_ERR_NOMEM) {
        __builtin_trap();
    }
    mt_jinja_free(t);
    return 0;
}
