/* text/jinja: a Jinja2 interpreter for chat templates, rendering byte for byte as transformers does.
 *
 *     mt_jinja *t;
 *     if (mt_jinja_parse(src, len, "chat_template.jinja", &t, &err)) ...;      // syntax errors name line:column
 *     cJSON *vars = ...;   // {"messages": [...], "add_generation_prompt": true, "bos_token": "<s>", ...}
 *     char *text; size_t n;
 *     if (mt_jinja_render(t, vars, NULL, &text, &n, &err)) ...;                  // text is mt_malloc'd
 *     mt_jinja_free(t);
 *
 * Environment: jinja2 3.1 as transformers' _compile_jinja_template builds it - trim_blocks and lstrip_blocks on,
 * the loopcontrols extension ({% break %}, {% continue %}), the {% generation %} tag (rendered as its body),
 * keep_trailing_newline off, an immutable sandbox (no list.append), tojson(ensure_ascii=False, indent=None,
 * separators=None, sort_keys=False) = json.dumps with those arguments, Python's `str % args` formatting,
 * raise_exception(msg) and strftime_now(fmt) as globals. Not supported: include/import/extends, blocks, recursive
 * loops and str.format.
 *
 * A template is immutable once parsed: renders from several threads may share it. Each render uses its own arena.
 */
#ifndef MT_JINJA_H
#define MT_JINJA_H

#include <cjson/cJSON.h>
#include <stdbool.h>

#include "base/base.h"

typedef struct mt_jinja mt_jinja;

/* Bounds on one render; a render past any of them fails with MT_ERR_LIMIT. */
typedef struct mt_jinja_limits {
    size_t max_output;  /* bytes of output, and of any one string built on the way */
    size_t max_memory;  /* bytes of values allocated */
    size_t max_steps;   /* loop iterations + macro calls */
    int max_depth;      /* nested macro calls */
} mt_jinja_limits;

extern const mt_jinja_limits mt_jinja_limits_default; /* 16 MiB, 256 MiB, 10M, 64 */

/* Parses a template. MT_ERR_FORMAT names what:LINE:COL and the problem; MT_ERR_LIMIT for sources over 4 MiB or
 * nesting over 200 levels. */
mt_status mt_jinja_parse(const char *src, size_t len, const char *what, mt_jinja **out, mt_err *err);

/* Renders t with the members of vars (an object; NULL = none) as variables. *out is NUL-terminated, mt_malloc'd,
 * owned by the caller. Errors: MT_ERR_FORMAT for template errors at render time (what:LINE: message: an unknown
 * filter, an undefined attribute, a type error), MT_ERR_INVALID_ARG for raise_exception (the message is the
 * template's), MT_ERR_LIMIT past limits (NULL = defaults), MT_ERR_NOMEM. */
mt_status mt_jinja_render(const mt_jinja *t, const cJSON *vars, const mt_jinja_limits *limits, char **out,
                          size_t *out_len, mt_err *err);

void mt_jinja_free(mt_jinja *t);

#endif
