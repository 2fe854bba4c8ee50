/* fuzz_image: libFuzzer entry for the image decoders (JPEG, PNG, WebP by magic bytes), the bicubic resize and the
 * Qwen2-VL preprocessing that follow a successful decode.
 *
 * The pixel cap keeps each input cheap: a crafted header may claim any size, and the decoder must refuse it
 * before allocating. Seeds: any small JPEG / PNG / WebP files (e.g. those ref_media.py writes into the build
 * tree under tests/media_ref_work).
 */
#include <stddef.h>
#include <stdint.h>

#include "media/image.h"
#include "media/qwen_vision_pre.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mt_image img = {0};
    mt_err err;
    if (mt_image_decode(data, size, "fuzz input", 1 << 20, &img, &err) != MT_OK) return 0;

    mt_image small = {0};
    if (mt_image_resize_bicubic(&img, 1 + img.width % 97, 1 + img.height % 89, &small, &err) == MT_OK)
        mt_image_free(&small);

    mt_qwen_preproc_cfg cfg;
    mt_qwen_preproc_cfg_default(&cfg);
    cfg.min_pixels = 28 * 28;
    cfg.max_pixels = 28 * 28 * 16;
    float *pv = NULL;
    int64_t n, thw[3];
    if (mt_qwen_preprocess(&img, &cfg, &pv, &n, thw, &err) == MT_OK) mt_free(pv);
    mt_image_free(&img);
    return 0;
}
