/* libFuzzer target for GRPO's rewards (train/reward.h): the fields a data file gives them (answer, box, schema - a
 * JSON Schema from the data file is untrusted too) and the model's completions they score.
 *
 * The input is a sample object on its first line and a completion after it. When the sample passes
 * mt_rewards_check_sample, every term scores it: each value must be finite, in [0, 1], and the same on a second
 * call. Broken promises trap. Seeds: samples with answers, boxes and schemas, completions with \boxed{}, </think>,
 * JSON in fences and boxes.
 */
#include <math.h>
#include <string.h>

#include "base/json.h"
#include "train/reward.h"

static mt_rewards *set;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mt_err err;
    if (!set) {
        mt_log_set_level(MT_LOG_ERROR);
        set = mt_rewards_new();
        const char *specs[] = {"answer", "format@0.5", "json", "iou", "regex=\\d+"};
        for (size_t i = 0; i < sizeof specs / sizeof *specs; i++)
            if (!set || mt_rewards_add(set, specs[i], &err)) __builtin_trap();
    }
    const uint8_t *nl = memchr(data, '\n', size);
    size_t line = nl ? (size_t)(nl - data) : size;
    cJSON *sample = NULL;
    if (mt_json_parse((const char *)data, line, "sample", &sample, &err)) return 0;
    size_t rest = nl ? size - line - 1 : 0;
    char *completion = mt_strndup(nl ? (const char *)nl + 1 : "", rest);
    if (completion && !mt_rewards_check_sample(set, sample, "fuzz", &err)) {
        double a[8], b[8], ta, tb;
        mt_reward_input in = {"prompt", completion, sample};
        if (mt_rewards_score(set, &in, a, &ta, &err) || mt_rewards_score(set, &in, b, &tb, &err)) __builtin_trap();
        for (int i = 0; i < mt_rewards_count(set); i++)
            if (!isfinite(a[i]) || a[i] < 0 || a[i] > 1 || a[i] != b[i]) __builtin_trap();
        if (ta != tb) __builtin_trap();
    }
    mt_free(completion);
    cJSON_Delete(sample);
    return 0;
}
