/* tools/cli: what the mitten subcommands share - argument helpers and exit codes.
 *
 * Exit codes: 0 success, 1 runtime failure (bad file, bad model, out of memory), 2 usage error. */
#ifndef MT_CLI_H
#define MT_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "base/base.h"

enum { MT_EXIT_OK = 0, MT_EXIT_FAIL = 1, MT_EXIT_USAGE = 2 };

typedef struct mt_cli_args {
    int argc;
    char **argv;
    int i;
} mt_cli_args;

/* True when argv[i] is the option; on options that take a value, *value gets it (missing value: usage error). */
bool mt_cli_flag(mt_cli_args *a, const char *name);
bool mt_cli_opt(mt_cli_args *a, const char *name, const char **value, int *usage_error);
bool mt_cli_help(int argc, char **argv);
bool mt_cli_parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out);
bool mt_cli_parse_f32(const char *s, float lo, float hi, float *out);
int mt_cli_fail(const mt_err *err);
int mt_cli_usage(const char *usage, const char *fmt, ...) MT_PRINTF(2, 3);
/* The model folder: -m DIR, else $MITTEN_MODEL, else the model the project ships. */
const char *mt_cli_default_model(void);
/* -m ORG/NAME and --revision REV, the same for every command: main calls it on the command's argv before the
 * command parses it. Takes "--revision REV" out of argv (and *argc), and turns the value after each -m that is not
 * a path but a Hugging Face repo id into that repo's snapshot folder in the local Hugging Face cache at REV
 * (default main; io/hf_cache.h). Without -m, a $MITTEN_MODEL that is a repo id is resolved the same way for
 * mt_cli_default_model. Nothing is downloaded. Returns MT_EXIT_OK, or the exit code after printing why. */
int mt_cli_resolve_models(int *argc, char **argv);

int mt_cmd_logits(int argc, char **argv);
int mt_cmd_perplexity(int argc, char **argv);
int mt_cmd_info(int argc, char **argv);
int mt_cmd_preprocess(int argc, char **argv);
int mt_cmd_run(int argc, char **argv);
int mt_cmd_chat(int argc, char **argv);
int mt_cmd_train(int argc, char **argv);
int mt_cmd_merge(int argc, char **argv);
int mt_cmd_bench(int argc, char **argv);
int mt_cmd_template(int argc, char **argv);
int mt_cmd_tokenize(int argc, char **argv);
int mt_cmd_detokenize(int argc, char **argv);
int mt_cmd_serve(int argc, char **argv);
int mt_cmd_quantize(int argc, char **argv);
int mt_cmd_export(int argc, char **argv);

#endif
