/* resize_torch_ref: command-line driver that resize_torch_ref.py runs to compare mt_image_resize_bicubic_torch
 * with torchvision.
 *
 *     resize_torch_ref IN OUT
 *
 * IN holds cases back to back, each int64 src_w, src_h, dst_w, dst_h (little-endian) then src_w * src_h * 3 RGB
 * bytes; OUT gets each case's dst_w * dst_h * 3 bytes in the same order, resized on the caller with the CPU's best
 * row kernels (AVX2 where it has them). Each case is resized a second time with the portable kernels
 * (MT_CPU_SCALAR), which must give the same bytes. Exits 1 (naming the case) when a resize fails, the two differ, or IN is short.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "media/image.h"
#include "tensor/cpu/cpu.h"

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: resize_torch_ref IN OUT\n");
        return 2;
    }
    FILE *fi = fopen(argv[1], "rb"), *fo = fopen(argv[2], "wb");
    if (!fi || !fo) {
        fprintf(stderr, "cannot open %s or %s\n", argv[1], argv[2]);
        if (fi) fclose(fi);
        if (fo) fclose(fo);
        return 2;
    }
    int rc = 0;
    int64_t head[4];
    const mt_cpu_level best = mt_cpu_level_get();
    for (long n = 0; !rc && fread(head, sizeof head, 1, fi) == 1; n++) {
        mt_image src = {.width = head[0], .height = head[1]}, dst = {0}, scalar = {0};
        size_t bytes = (size_t)(head[0] * head[1] * 3);
        mt_err err;
        if (!(src.rgb = malloc(bytes)) || fread(src.rgb, 1, bytes, fi) != bytes) {
            fprintf(stderr, "case %ld: short input\n", n);
            rc = 1;
        } else if (mt_image_resize_bicubic_torch(&src, head[2], head[3], &dst, &err) != MT_OK) {
            fprintf(stderr, "case %ld: %s\n", n, err.msg);
            rc = 1;
        } else if (mt_cpu_set_level(MT_CPU_SCALAR),
                   mt_image_resize_bicubic_torch(&src, head[2], head[3], &scalar, &err) != MT_OK) {
            fprintf(stderr, "case %ld with the portable kernels: %s\n", n, err.msg);
            rc = 1;
        } else if (memcmp(scalar.rgb, dst.rgb, (size_t)(head[2] * head[3] * 3)) != 0) {
            fprintf(stderr, "case %ld (%lldx%lld -> %lldx%lld): the portable kernels give other bytes\n", n,
                    (long long)head[0], (long long)head[1], (long long)head[2], (long long)head[3]);
            rc = 1;
        } else if (fwrite(dst.rgb, 1, (size_t)(head[2] * head[3] * 3), fo) != (size_t)(head[2] * head[3] * 3)) {
            rc = 1;
        }
        free(src.rgb);
        mt_image_free(&dst);
        mt_image_free(&scalar);
        mt_cpu_set_level(best);
    }
    fclose(fi);
    return fclose(fo) != 0 || rc;
}
