/* fuzz_dataset: libFuzzer entry for the training-data loader (src/train/dataset.c, dataset_norm.c) over an
 * in-memory file: the JSON-array scan, JSON lines, every sample format, role and order rules, placeholder
 * splitting and path resolution, then every accessor on what loaded.
 *
 * Images are not opened (MT_DATASET_CHECK_NONE), so samples that pass the text rules reach the accessors. Small
 * caps keep each input cheap. The first input byte picks strict mode, so both paths are covered. Seeds:
 * tests/fuzz/corpus/fuzz_dataset (copies of tests/train/data's .json / .jsonl files with a leading mode byte).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/json.h"
#include "train/dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    mt_dataset_opts o = mt_dataset_opts_default();
    o.strict = data[0] & 1;
    o.check_images = MT_DATASET_CHECK_NONE;
    o.max_samples = 1000;
    o.max_sample_bytes = 1 << 16;
    o.max_images = 16;
    mt_log_set_level(MT_LOG_ERROR);

    mt_dataset *ds = NULL;
    mt_err err;
    if (mt_dataset_load_buffer((const char *)data + 1, size - 1, "fuzz", "base", &o, &ds, &err) != MT_OK) return 0;
    /* What the label builder relies on: at least a user and an assistant turn, the assistant's last, and a
     * non-empty path for each image. */
    for (size_t i = 0; i < mt_dataset_count(ds); i++) {
        const mt_sample *s = mt_dataset_sample(ds, i);
        int n = cJSON_GetArraySize(s->messages);
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(s->messages, n - 1), "role");
        if (n < 2 || !cJSON_IsString(role) || strcmp(role->valuestring, "assistant") != 0) __builtin_trap();
        for (size_t k = 0; k < s->n_images; k++)
            if (!s->images[k][0]) __builtin_trap();
        char *text = mt_json_print(s->messages, false);
        mt_free(text);
    }
    size_t kept = 0;
    while (mt_dataset_skip_at(ds, kept)) kept++;
    if (kept != MT_MIN(mt_dataset_skipped(ds), (size_t)MT_DATASET_SKIPS_KEPT)) __builtin_trap();
    mt_dataset_free(ds);
    return 0;
}
