/* serve/tool_calls: the model's tool calls, as Qwen and Hermes-style templates teach it to write them -
 * <tool_call>{"name": ..., "arguments": {...}}</tool_call>, one block per call - turned into OpenAI's
 * message.tool_calls. */
#ifndef MT_TOOL_CALLS_H
#define MT_TOOL_CALLS_H

#include <cjson/cJSON.h>

#include "base/base.h"

#define MT_TOOL_CALL_TAG "<tool_call>"

/* text [n] starts at the first tag. *out: [{"id", "type": "function", "function": {"name", "arguments": JSON text}}]
 * with ids "call_<hex>" from id_seed. MT_ERR_FORMAT when a block is not a JSON object with a name (the caller then
 * returns the text as content, as vLLM does). */
mt_status mt_tool_calls_parse(const char *text, size_t n, uint64_t id_seed, cJSON **out, mt_err *err);

#endif
