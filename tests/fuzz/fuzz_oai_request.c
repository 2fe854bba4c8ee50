/* libFuzzer target for the server's request parser (serve/oai_request.h): an untrusted body of
 * /v1/chat/completions or /v1/completions (the first byte picks which). Local files are allowed under a folder
 * that does not exist, so path handling runs without reading anything. Broken promises trap: a refusal without a
 * message, an HTTP status or a type, or a success that left the request inconsistent. */
#include <string.h>

#include "serve/oai_request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    bool chat = data[0] & 1;
    mt_oai_limits lim = {.max_images = 4, .max_videos = 2, .max_tokens = 1000, .max_image_pixels = 1 << 20,
                         .allow_files = "/nonexistent-mitten-fuzz"};
    mt_sampling defaults = {.temperature = 0.7f, .top_p = 0.9f, .repetition_penalty = 1.0f};
    mt_oai_request r;
    mt_oai_fail fail;
    mt_err err;
    mt_status st = mt_oai_parse((const char *)data + 1, size - 1, chat, &defaults, &lim, &r, &fail, &err);
    if (st) {
        if (!err.msg[0] || (st != MT_ERR_NOMEM && (fail.http < 400 || !fail.type))) __builtin_trap();
        return 0;
    }
    bool ok = chat ? r.messages && cJSON_IsArray(r.messages) : r.prompt != NULL;
    ok = ok && r.n_images <= lim.max_images && r.n_stops <= MT_MAX_STOPS && r.max_tokens <= lim.max_tokens;
    ok = ok && r.sampling.temperature >= 0 && r.sampling.top_p > 0 && r.sampling.top_p <= 1;
    for (int i = 0; i < r.n_images && ok; i++) ok = r.images[i].width > 0 && r.images[i].height > 0 && r.images[i].rgb;
    if (!ok) __builtin_trap();
    mt_oai_request_free(&r);
    return 0;
}
