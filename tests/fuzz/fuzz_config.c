/* fuzz_config: libFuzzer entry for config.json as the model loader reads it (models/config.c, decoder_config.c, the
 * vision parts and processors, nn/rope.c), over real tiny checkpoints so a config that still fits its weights goes on
 * to a prefill and a decode.
 *
 * Input: byte 0 picks the checkpoint by its low two bits (of $MT_FUZZ_MODELS/{qwen2_5_vl,qwen3_vl_moe,qwen3_moe,
 * qwen2_moe}, which tests/fuzz makes with the tests/ref generators) and --allow-unused by bit 2; the rest is the
 * config.json text written next to its weights. Seeds: tests/fuzz/corpus/fuzz_config (those checkpoints' own configs
 * with their leading byte).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static const char *const models[] = {"qwen2_5_vl", "qwen3_vl_moe", "qwen3_moe", "qwen2_moe"};
static char dirs[4][4096];

/* One folder per checkpoint under $TMPDIR holding a link to its weights; config.json is rewritten per input. */
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *src = getenv("MT_FUZZ_MODELS");
    if (!src) {
        fprintf(stderr, "fuzz_config: set MT_FUZZ_MODELS to the folder of the tiny checkpoints\n");
        exit(2);
    }
    mt_log_set_level(MT_LOG_ERROR);
    for (int i = 0; i < 4; i++) {
        char weights[4200], link[4200];
        snprintf(dirs[i], sizeof dirs[i], "%s/mt_fuzz_config_%d_%s", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
                 (int)getpid(), models[i]);
        snprintf(weights, sizeof weights, "%s/%s/model.safetensors", src, models[i]);
        snprintf(link, sizeof link, "%s/model.safetensors", dirs[i]);
        if (mkdir(dirs[i], 0700) && errno != EEXIST) exit(2);
        unlink(link);
        if (symlink(weights, link)) exit(2);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    const char *dir = dirs[data[0] & 3];
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data + 1, 1, size - 1, f);
    fclose(f);
    mt_model *m = NULL;
    mt_err err;
    mt_model_params p = {.allow_unused = data[0] & 4};
    if (mt_model_open_params(dir, &p, &m, &err) != MT_OK) return 0;
    /* a config that fits its weights must also run: a short prompt and one step, ids below every special one */
    mt_session *s = NULL;
    mt_session_params sp = {.n_ctx = 16, .n_threads = 1};
    int32_t ids[4] = {1, 2, 3, 4};
    const float *logits;
    if (m->desc.vocab_size > 4 && mt_session_new(m, &sp, &s, &err) == MT_OK &&
        mt_session_prefill(s, ids, 4, NULL, 0, NULL, &logits, &err) == MT_OK)
        mt_session_decode(s, 5, &logits, &err);
    mt_session_free(s);
    mt_model_close(m);
    return 0;
}
