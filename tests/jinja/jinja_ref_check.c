/* Compares mitten's chat-template rendering with jinja2's (tests/jinja/render_ref.py wrote the cases).
 *
 *   usage: jinja_ref_check CASES.json
 *
 * CASES.json is a list of {"dir", "name", "messages", "tools", "add_generation_prompt", "kwargs", "expect"}; expect
 * is the exact string jinja2 rendered (U+0000 included), or null where jinja2 raised (then mitten must fail too).
 * Each mismatch prints the case, the first differing byte and both texts around it; the exit status is 1 when any
 * case differs.
 */
#include <stdio.h>
#include <string.h>

#include "base/json.h"
#include "text/chat_template.h"

/* At most 120 bytes of s, a 0 byte as \\0 so that the rest still shows. */
static void show(const char *s, size_t n) {
    for (size_t i = 0; i < n && i < 120; i++) {
        if (s[i]) fputc(s[i], stderr);
        else fputs("\\0", stderr);
    }
}

int main(int argc, char **argv) {
    if (argc != 2) return fprintf(stderr, "usage: jinja_ref_check CASES.json\n"), 2;
    mt_err err;
    cJSON *cases;
    if (mt_json_parse_file(argv[1], (size_t)1 << 30, &cases, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    int n = 0, bad = 0;
    for (const cJSON *c = cases->child; c; c = c->next, n++) {
        const char *dir = cJSON_GetStringValue(cJSON_GetObjectItem(c, "dir"));
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(c, "name"));
        const cJSON *expect = cJSON_GetObjectItem(c, "expect");
        mt_chat_template *t;
        char *out = NULL;
        size_t len = 0;
        mt_status st = mt_chat_template_load(dir, name, &t, &err);
        if (!st) {
            st = mt_chat_template_render(t, cJSON_GetObjectItem(c, "messages"), cJSON_GetObjectItem(c, "tools"),
                                         cJSON_IsTrue(cJSON_GetObjectItem(c, "add_generation_prompt")),
                                         cJSON_GetObjectItem(c, "kwargs"), &out, &len, &err);
            mt_chat_template_free(t);
        }
        const char *label = cJSON_GetStringValue(cJSON_GetObjectItem(c, "label"));
        if (cJSON_IsNull(expect)) {
            if (st == MT_OK) bad++, fprintf(stderr, "case %d (%s): jinja2 raised, mitten rendered\n", n, label);
        } else if (st != MT_OK) {
            bad++, fprintf(stderr, "case %d (%s): mitten failed: %s\n", n, label, err.msg);
        } else {
            size_t en = 0, i = 0;
            char *e = mt_json_dup(expect->valuestring, &en); /* jinja2's text keeps U+0000 */
            while (e && i < en && i < len && e[i] == out[i]) i++;
            if (!e || i != en || i != len) {
                bad++;
                size_t from = i > 60 ? i - 60 : 0;
                fprintf(stderr, "case %d (%s): differs at byte %zu\n  jinja2: ", n, label, i);
                show(e + from, en - from);
                fprintf(stderr, "\n  mitten: ");
                show(out + from, len - from);
                fprintf(stderr, "\n");
            }
            mt_free(e);
        }
        mt_free(out);
    }
    cJSON_Delete(cases);
    printf("%d cases, %d differ\n", n, bad);
    return bad ? 1 : 0;
}
