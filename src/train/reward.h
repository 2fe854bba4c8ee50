/* train/reward: the rewards GRPO scores its rollouts with. A set holds weighted terms; a completion's reward is the
 * weighted sum of its terms, and each term is also reported on its own.
 *
 *     mt_rewards *set = mt_rewards_new();
 *     mt_rewards_add(set, "answer", &err);            // 1 when the final answer equals the sample's "answer"
 *     mt_rewards_add(set, "format@0.2", &err);        // weight 0.2
 *     mt_rewards_add(set, "cmd=python3 judge.py", &err);
 *     mt_rewards_check_sample(set, sample_json, "train.jsonl:4", &err);   // at load: the fields the terms need
 *     mt_rewards_score(set, &(mt_reward_input){prompt, completion, sample_json}, terms, &total, &err);
 *
 * A term is written NAME[@WEIGHT][=ARG] (the weight defaults to 1 and may be negative; ARG is taken verbatim, so a
 * regex may hold '@' and '='):
 *
 *   | NAME   | ARG            | value                                                                         |
 *   |--------|----------------|-------------------------------------------------------------------------------|
 *   | answer | -              | 1 when the final answer equals the sample's "answer" (a string or a number),  |
 *   |        |                | else 0. Numbers compare as numbers (relative 1e-6), text without case.        |
 *   | regex  | PCRE2 pattern  | 1 when the pattern matches anywhere in the completion, else 0                 |
 *   | format | -              | 1 for `<think>...</think>` (one of each, first) then a non-empty answer       |
 *   | json   | schema file    | 1 when the final answer (``` fences dropped) is JSON valid against the schema |
 *   |        | (optional)     | (ARG, else the sample's "schema" object; reward_schema.c lists the keywords)  |
 *   | iou    | -              | IoU of the last [x1, y1, x2, y2] in the final answer with the sample's "box"   |
 *   |        |                | (or "bbox", "bbox_2d"); 0 when there is none                                  |
 *   | cmd    | command line   | the number a user program prints (below)                                      |
 *
 * The final answer is what the completion says after its reasoning: the inside of the last \boxed{...} when there
 * is one, else the text after the last </think>, else the whole completion (the conventions of DeepSeek-R1-style
 * math rewards and of TRL's examples).
 *
 * cmd runs `/bin/sh -c ARG` (the user's own command line, as a shell would run it) with one JSON object on stdin:
 * {"prompt": ..., "completion": ..., "sample": {the sample's fields}}. The data goes only through stdin, never into
 * the command line or the environment. Its stdout, trimmed, must be one finite number. A program that exits
 * non-zero, is killed, prints anything else or outlives the timeout (the whole process group is killed) scores 0,
 * and a warning naming why is logged; mt_rewards_cmd_failures counts them.
 */
#ifndef MT_TRAIN_REWARD_H
#define MT_TRAIN_REWARD_H

#include <cjson/cJSON.h>

#include "base/base.h"

#define MT_REWARD_MAX_TERMS 16

typedef struct mt_rewards mt_rewards;

typedef struct {
    const char *prompt;     /* the prompt as the model saw it (rendered text); "" when unknown */
    const char *completion; /* the generated text */
    const cJSON *sample;    /* the sample's object as the data file holds it; NULL: no fields */
} mt_reward_input;

mt_rewards *mt_rewards_new(void); /* NULL when out of memory */
void mt_rewards_free(mt_rewards *set);
/* Adds the term spec (syntax above). Errors name the spec: an unknown name, a bad weight, a regex that does not
 * compile (with PCRE2's message and offset), a schema file that cannot be read or uses a keyword not supported. */
mt_status mt_rewards_add(mt_rewards *set, const char *spec, mt_err *err);
/* Seconds a cmd term may run per completion (default 10). */
void mt_rewards_set_timeout(mt_rewards *set, double seconds);
int mt_rewards_count(const mt_rewards *set);
/* The term's spec as given, NAME only (for logs: "answer", "format", ...). */
const char *mt_rewards_name(const mt_rewards *set, int term);
/* Whether sample (what names it in messages, e.g. "train.jsonl:4") has the fields the terms need: "answer" for
 * answer, a box of four numbers for iou, an object "schema" for a json term without a file. */
mt_status mt_rewards_check_sample(const mt_rewards *set, const cJSON *sample, const char *what, mt_err *err);
/* terms[mt_rewards_count(set)] gets each term's value (unweighted), *total their weighted sum. Fails only when
 * out of memory or when the sample lacks a field mt_rewards_check_sample would have refused; a user program's
 * failure is a 0, not an error. Safe to call from several threads at once. */
mt_status mt_rewards_score(const mt_rewards *set, const mt_reward_input *in, double *terms, double *total,
                           mt_err *err);
/* How many cmd runs failed (each counted as 0) since the set was made. */
int64_t mt_rewards_cmd_failures(const mt_rewards *set);

/* The final answer of completion (see above): its start and length within completion. */
void mt_reward_final_answer(const char *completion, size_t *off, size_t *len);
/* Whether answer (the final answer's text) equals expected, a string or number item, as the answer term compares. */
bool mt_reward_answer_equal(const char *answer, size_t len, const cJSON *expected);
/* The IoU of the last [x1, y1, x2, y2] in text[0, len) with box; 0 when there is none or it is empty. */
double mt_reward_iou(const char *text, size_t len, const double box[4]);

/* reward_schema.c: JSON Schema, the keywords a reward needs (type, enum, const, properties, required,
 * additionalProperties, items, minItems, maxItems, minLength, maxLength, pattern, minimum, maximum,
 * exclusiveMinimum, exclusiveMaximum, anyOf, oneOf, allOf, not; title, description, $schema, $id, default and
 * examples are ignored). Any other keyword is refused, naming it, rather than ignored: a schema that says more
 * than is checked would reward answers it does not allow. */
mt_status mt_schema_check(const cJSON *schema, const char *what, mt_err *err);
bool mt_schema_valid(const cJSON *schema, const cJSON *value);

/* reward_cmd.c: runs `/bin/sh -c command` with input on stdin for at most timeout seconds. MT_OK with *value set
 * when it printed a number; otherwise an error whose message says why (exit status, signal, timeout, output). */
mt_status mt_reward_cmd_run(const char *command, const char *input, size_t input_len, double timeout, double *value,
                            mt_err *err);

#endif
