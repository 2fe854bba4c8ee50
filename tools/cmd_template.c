/* mitten template: the exact prompt string a checkpoint's chat template makes of a conversation. */
#include <stdio.h>
#include <string.h>

#include "base/json.h"
#include "cli.h"
#include "text/chat_template.h"

static const char usage[] =
    "usage: mitten template [-m DIR] --messages FILE [--generation-prompt] [--kwargs JSON] [--tools FILE]\n"
    "                       [--documents FILE] [--name NAME]\n\n"
    "Renders the model's chat template (chat_template.jinja, chat_template.json or tokenizer_config.json) over an\n"
    "OpenAI-style messages array and prints the prompt exactly, with no newline added.\n"
    "  --kwargs JSON     extra template variables, e.g. '{\"enable_thinking\": false}'\n"
    "  --tools FILE      a JSON array of tool schemas\n"
    "  --documents FILE  a JSON array of documents, for retrieval-augmented templates\n"
    "  --name NAME       one of the named templates (default: \"default\", or \"tool_use\" with tools)\n";

int mt_cmd_template(int argc, char **argv) {
    if (mt_cli_help(argc, argv)) return printf("%s", usage), MT_EXIT_OK;
    const char *dir = mt_cli_default_model(), *messages_path = NULL, *kwargs_text = NULL, *tools_path = NULL,
               *name = NULL, *documents_path = NULL;
    bool gen = false;
    int bad = 0;
    for (mt_cli_args a = {argc, argv, 1}; a.i < argc && !bad; a.i++) {
        if (mt_cli_opt(&a, "-m", &dir, &bad) || mt_cli_opt(&a, "--messages", &messages_path, &bad) ||
            mt_cli_opt(&a, "--kwargs", &kwargs_text, &bad) || mt_cli_opt(&a, "--tools", &tools_path, &bad) ||
            mt_cli_opt(&a, "--name", &name, &bad) || mt_cli_opt(&a, "--documents", &documents_path, &bad))
            continue;
        if (!mt_cli_flag(&a, "--generation-prompt")) return mt_cli_usage(usage, "unknown option %s", argv[a.i]);
        gen = true;
    }
    if (bad) return MT_EXIT_USAGE;
    if (!messages_path) return mt_cli_usage(usage, "--messages FILE is required");
    mt_err err;
    cJSON *messages = NULL, *tools = NULL, *kwargs = NULL;
    mt_chat_template *t = NULL;
    char *out = NULL;
    size_t len = 0;
    mt_status st = mt_json_parse_file(messages_path, MT_JSON_MAX_FILE, &messages, &err);
    if (!st && !cJSON_IsArray(messages))
        st = mt_err_set(&err, MT_ERR_FORMAT, "%s: expected an array of messages", messages_path);
    if (!st && tools_path) st = mt_json_parse_file(tools_path, MT_JSON_MAX_FILE, &tools, &err);
    if (!st && kwargs_text) st = mt_json_parse(kwargs_text, strlen(kwargs_text), "--kwargs", &kwargs, &err);
    if (!st && kwargs && !cJSON_IsObject(kwargs)) st = mt_err_set(&err, MT_ERR_FORMAT, "--kwargs: expected a JSON object");
    if (!st && documents_path) {
        cJSON *docs = NULL;
        if (!kwargs && !(kwargs = cJSON_CreateObject())) st = mt_err_set(&err, MT_ERR_NOMEM, "out of memory");
        if (!st) st = mt_json_parse_file(documents_path, MT_JSON_MAX_FILE, &docs, &err);
        if (!st && !cJSON_IsArray(docs)) st = mt_err_set(&err, MT_ERR_FORMAT, "%s: expected an array", documents_path);
        if (st) {
            cJSON_Delete(docs);
        } else {
            cJSON_DeleteItemFromObjectCaseSensitive(kwargs, "documents");
            cJSON_AddItemToObject(kwargs, "documents", docs);
        }
    }
    if (!st) st = mt_chat_template_load(dir, name, &t, &err);
    if (!st) st = mt_chat_template_render(t, messages, tools, gen, kwargs, &out, &len, &err);
    if (!st) fwrite(out, 1, len, stdout);
    mt_free(out);
    mt_chat_template_free(t);
    cJSON_Delete(messages);
    cJSON_Delete(tools);
    cJSON_Delete(kwargs);
    return st ? mt_cli_fail(&err) : MT_EXIT_OK;
}
