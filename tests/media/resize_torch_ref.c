/* resize_torch_ref: command-line driver that resize_torch_ref.py runs to compare mt_image_resize_bicubic_torch
 * with torchvision.
 *
 *     resize_torch_ref IN OUT
 *
 * IN holds cases back to back, each int64 src_w, src_h, dst_w, dst_h (little-endian) then src_w * src_h * 3 RGB
 * bytes; OUT gets each case's dst_w * dst_h * 3 bytes in the same order, resized on the caller with the CPU's best
 * row kernels. Each case is resized again with every lower level's kernels (AVX2, then the portable ones), which
 * must give the same bytes; the levels that ran are printed. Exits 1 (naming the case) when a resize fails, two
 * levels differ, or IN is short.
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
    long cases = 0;
    for (; !rc && fread(head, sizeof head, 1, fi) == 1; cases++) {
        mt_image src = {.width = head[0], .height = head[1]}, dst = {0};
        size_t bytes = (size_t)(head[0] * head[1] * 3), out_bytes = (size_t)(head[2] * head[3] * 3);
        mt_err err;
        if (!(src.rgb = malloc(bytes)) || fread(src.rgb, 1, bytes, fi) != bytes) {
            fprintf(stderr, "case %ld: short input\n", cases);
            rc = 1;
        } else if (mt_image_resize_bicubic_torch(&src, head[2], head[3], &dst, &err) != MT_OK) {
            fprintf(stderr, "case %ld: %s\n", cases, err.msg);
            rc = 1;
        }
        for (int level = (int)best - 1; !rc && level >= MT_CPU_SCALAR; level--) {
            mt_image other = {0};
            mt_cpu_set_level((mt_cpu_level)level);
            if (mt_image_resize_bicubic_torch(&src, head[2], head[3], &other, &err) != MT_OK) {
                fprintf(stderr, "case %ld with the %s kernels: %s\n", cases, mt_cpu_level_name((mt_cpu_level)level),
                        err.msg);
                rc = 1;
            } else if (memcmp(other.rgb, dst.rgb, out_bytes) != 0) {
                fprintf(stderr, "case %ld (%lldx%lld -> %lldx%lld): the %s kernels give other bytes than the %s ones\n",
                        cases, (long long)head[0], (long long)head[1], (long long)head[2], (long long)head[3],
                        mt_cpu_level_name((mt_cpu_level)level), mt_cpu_level_name(best));
                rc = 1;
            }
            mt_image_free(&other);
            mt_cpu_set_level(best);
        }
        if (!rc && fwrite(dst.rgb, 1, out_bytes, fo) != out_bytes) rc = 1;
        free(src.rgb);
        mt_image_free(&dst);
    }
    if (!rc) {
        printf("resize_torch_ref: %ld cases, the same bytes from the kernels of", cases);
        for (int level = (int)best; level >= MT_CPU_SCALAR; level--) printf(" %s", mt_cpu_level_name((mt_cpu_level)level));
        printf("\n");
    }
    fclose(fi);
    return fclose(fo) != 0 || rc;
}
