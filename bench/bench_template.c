/* bench_template [REPS]: time to render a 50-turn conversation with a Qwen3-style chat template (the namespace
 * scan over reversed messages, string splitting of thinking blocks, trim filters). Not a test. */
#include <stdio.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "text/chat_template.h"

int main(int argc, char **argv) {
    static const char src[] =
        "{%- if messages[0].role == 'system' %}{{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}{%- endif %}\n"
        "{%- set ns = namespace(last=messages|length - 1) %}\n"
        "{%- for message in messages[::-1] %}{%- if message.role == 'user' and ns.last == messages|length - 1 %}"
        "{%- set ns.last = (messages|length - 1) - loop.index0 %}{%- endif %}{%- endfor %}\n"
        "{%- for message in messages %}\n"
        "    {%- if message.role == 'user' or (message.role == 'system' and not loop.first) %}\n"
        "        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}\n"
        "    {%- elif message.role == 'assistant' %}\n"
        "        {%- set content = message.content %}\n"
        "        {%- if '</think>' in content %}{%- set content = content.split('</think>')[-1].lstrip('\\n') %}{%- endif %}\n"
        "        {{- '<|im_start|>assistant\\n' + content | trim + '<|im_end|>\\n' }}\n"
        "    {%- endif %}\n"
        "{%- endfor %}\n"
        "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}\n";
    cJSON *msgs = cJSON_CreateArray();
    cJSON_AddItemToArray(msgs, cJSON_Parse("{\"role\": \"system\", \"content\": \"You are a helpful assistant.\"}"));
    for (int i = 0; i < 50; i++)
        cJSON_AddItemToArray(msgs, cJSON_Parse(i % 2 ? "{\"role\": \"assistant\", \"content\": \"<think>\\nhm\\n</think>\\n\\nSure, "
                                                       "here is a fairly ordinary answer of a few dozen words to keep it realistic.\"}"
                                                     : "{\"role\": \"user\", \"content\": \"A question of moderate length about something?\"}"));
    mt_chat_template *t;
    mt_err err;
    if (mt_chat_template_parse(src, sizeof src - 1, "bench", &t, &err) != MT_OK) {
        fprintf(stderr, "bench_template: %s\n", err.msg);
        return 1;
    }
    int reps = argc > 1 ? atoi(argv[1]) : 2000;
    if (reps < 1) reps = 1;
    double t0 = mt_time_now();
    size_t len = 0;
    for (int i = 0; i < reps; i++) {
        char *out;
        if (mt_chat_template_render(t, msgs, NULL, true, NULL, &out, &len, &err) != MT_OK) {
            fprintf(stderr, "bench_template: %s\n", err.msg);
            return 1;
        }
        mt_free(out);
    }
    double per = (mt_time_now() - t0) / reps;
    printf("50-turn Qwen3-style render: %.1f us per render (%zu bytes), mean of %d\n", per * 1e6, len, reps);
    mt_chat_template_free(t);
    cJSON_Delete(msgs);
    return 0;
}
