/* bench_video FILE [REPS] [--out F]: issue 13's video case alone - FILE decoded and sampled as the Qwen2.5-VL
 * processor does by default (mt_qwen_video_from_file: qwen-vl-utils' 2 fps, the frame and total pixel budgets),
 * with the wall time and this process's CPU time (user + system) of each run, and the peak RSS. --out writes the
 * pixel values of the last run to F (raw float32), to compare two builds byte for byte. Not a test. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "media/qwen_video_pre.h"

static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

int main(int argc, char **argv) {
    const char *path = NULL, *out = NULL;
    int reps = 3;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) out = argv[++i];
        else if (!path) path = argv[i];
        else reps = atoi(argv[i]);
    }
    if (!path || reps < 1) {
        fprintf(stderr, "usage: bench_video FILE [REPS] [--out F]\n");
        return 2;
    }
    mt_qwen_preproc_cfg cfg;
    mt_qwen_preproc_cfg_default(&cfg);
    mt_qwen_video_params vp;
    mt_qwen_video_params_default(&vp);
    mt_qwen_video clip = {0};
    for (int r = 0; r < reps; r++) {
        mt_err err;
        mt_qwen_video_free(&clip);
        double t0 = mt_time_now(), c0 = cpu_seconds();
        if (mt_qwen_video_from_file(path, &vp, &cfg, &clip, &err) != MT_OK) {
            fprintf(stderr, "bench_video: %s\n", err.msg);
            return 1;
        }
        printf("%s: %lld frames, grid %lldx%lldx%lld: wall %.3f s, cpu %.3f s\n", path, (long long)clip.n_frames,
               (long long)clip.grid_thw[0], (long long)clip.grid_thw[1], (long long)clip.grid_thw[2],
               mt_time_now() - t0, cpu_seconds() - c0);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("peak RSS %.0f MiB\n", (double)ru.ru_maxrss / 1024.0);
    if (out) {
        FILE *f = fopen(out, "wb");
        size_t n = (size_t)clip.n_patches * (size_t)(3 * cfg.temporal_patch_size * cfg.patch_size * cfg.patch_size);
        if (!f || fwrite(clip.pixel_values, sizeof(float), n, f) != n || fclose(f) != 0) {
            fprintf(stderr, "bench_video: cannot write %s\n", out);
            return 1;
        }
    }
    mt_qwen_video_free(&clip);
    return 0;
}
