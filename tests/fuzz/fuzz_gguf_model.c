/* fuzz_gguf_model: libFuzzer entry for GGUF files as a model (models/gguf_source.c: metadata into config, tokenizer,
 * template and processor files, tensors under checkpoint names, the qkv and patch embedding joined) and the load
 * that follows, then one prefill when it loads.
 *
 * Input: a little-endian u32 n, then the model file; when n is below what follows, its first n bytes are the model
 * and the rest the mmproj file. Seeds (tests/fuzz/corpus/fuzz_gguf_model): mitten quantize's q8_0 files of the tiny
 * Qwen2.5-VL that tests/ref/qwen2_vl_ref.py makes, alone and with its mmproj. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool write_file(const char *path, const uint8_t *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    bool ok = fwrite(data, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 4) return 0;
    mt_log_set_level(MT_LOG_ERROR);
    uint32_t n;
    memcpy(&n, data, 4);
    data += 4, size -= 4;
    size_t model_bytes = n < size ? n : size;
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char model[4096], mmproj[4096];
    snprintf(model, sizeof model, "%s/mt_fuzz_gguf_model_%d.gguf", tmp, (int)getpid());
    snprintf(mmproj, sizeof mmproj, "%s/mt_fuzz_gguf_mmproj_%d.gguf", tmp, (int)getpid());
    bool with_mmproj = model_bytes < size;
    if (!write_file(model, data, model_bytes) ||
        (with_mmproj && !write_file(mmproj, data + model_bytes, size - model_bytes)))
        return 0;
    mt_model_params p = {.mmproj = with_mmproj ? mmproj : NULL};
    mt_model *m = NULL;
    mt_err err;
    if (mt_model_open_params(model, &p, &m, &err) == MT_OK) {
        mt_session *s = NULL;
        mt_session_params sp = {.n_ctx = 64, .n_threads = 1};
        const float *logits;
        int32_t ids[3] = {1, 2, 3};
        if (mt_session_new(m, &sp, &s, &err) == MT_OK) mt_session_prefill(s, ids, 3, NULL, 0, NULL, &logits, &err);
        mt_session_free(s);
        mt_model_close(m);
    }
    unlink(model);
    if (with_mmproj) unlink(mmproj);
    return 0;
}
