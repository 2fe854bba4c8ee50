/* media/video and media/qwen_video_pre on a Y4M clip the test writes itself (raw frames, no encoder needed): header
 * values, frames read in and out of order alike, argument errors, the sampled indices, grid and seconds per grid of
 * qwen-vl-utils' defaults (and the plan's, without decoding), the sampler's runs on several threads, and every
 * allocation failing in turn. Real codecs and the comparison with PyAV and
 * torchvision are in tests/media/video_ref.py. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "media/qwen_video_pre.h"
#include "media/video.h"
#include "media/video_sample.h"

enum { W = 64, H = 48, FRAMES = 5 };

static char path[256];

/* Frame k is a flat gray with luma 20 + 40 k. */
static void write_y4m(void) {
    FILE *f = fopen(path, "wb");
    fprintf(f, "YUV4MPEG2 W%d H%d F10:1 Ip A1:1 C420jpeg\n", W, H);
    static uint8_t plane[W * H];
    for (int k = 0; k < FRAMES; k++) {
        fprintf(f, "FRAME\n");
        memset(plane, 20 + 40 * k, sizeof plane);
        fwrite(plane, 1, W * H, f);
        memset(plane, 128, W * H / 2);
        fwrite(plane, 1, W * H / 2, f);
    }
    fclose(f);
}

static void test_decode(void) {
    mt_err err;
    mt_video *v = NULL;
    CHECK(mt_video_open(path, MT_VIDEO_DEFAULT_MAX_PIXELS, &v, &err) == MT_OK);
    if (!v) return;
    const mt_video_info *in = mt_video_get_info(v);
    CHECK(in->width == W && in->height == H && in->n_frames == FRAMES && in->fps == 10 && in->rotation == 0);
    CHECK_NEAR(in->duration, 0.5, 1e-9);
    uint8_t first[FRAMES][3];
    const int order[] = {0, 1, 2, 3, 4, 3, 1, 1, 4, 0};
    for (size_t i = 0; i < MT_ARRAY_LEN(order); i++) {
        int k = order[i];
        mt_image img = {0};
        CHECK(mt_video_read_frame(v, k, &img, &err) == MT_OK);
        if (!img.rgb) continue;
        CHECK(img.width == W && img.height == H && strstr(img.name, path) != NULL);
        const uint8_t *p = img.rgb + (H / 2 * W + W / 2) * 3;
        CHECK_MSG(p[0] == p[1] && p[1] == p[2], "frame %d is not gray: %d %d %d", k, p[0], p[1], p[2]);
        if (i < FRAMES) {
            memcpy(first[k], p, 3);
            if (k > 0) CHECK_MSG(p[0] > first[k - 1][0], "frame %d is not brighter than frame %d", k, k - 1);
        } else {
            CHECK_MSG(memcmp(first[k], p, 3) == 0, "frame %d read again differs", k);
        }
        mt_image_free(&img);
    }
    mt_image img = {0};
    CHECK(mt_video_read_frame(v, FRAMES, &img, &err) == MT_ERR_INVALID_ARG && strstr(err.msg, path));
    CHECK(mt_video_read_frame(v, -1, &img, &err) == MT_ERR_INVALID_ARG);
    CHECK(img.rgb == NULL);
    mt_video_close(v);
    mt_video_close(NULL);

    CHECK(mt_video_open(path, W * H - 1, &v, &err) == MT_ERR_LIMIT && strstr(err.msg, path));
    CHECK(mt_video_open("/nonexistent/clip.mp4", 100, &v, &err) != MT_OK && strstr(err.msg, "/nonexistent/clip.mp4"));
    CHECK(mt_video_open(path, 0, &v, &err) == MT_ERR_INVALID_ARG);
}

static void test_qwen(void) {
    mt_qwen_preproc_cfg cfg;
    mt_qwen_preproc_cfg_default(&cfg);
    mt_qwen_video_params vp;
    mt_qwen_video_params_default(&vp);
    mt_qwen_video clip = {0};
    mt_err err;
    /* 5 frames at 10 fps, 2 fps wanted: 1 frame, raised to min_frames 4; linspace(0, 4, 4).round() = 0 1 3 4;
     * 64x48 is below 128 * 28^2 pixels: smart_resize gives 280x392. */
    CHECK(mt_qwen_video_from_file(path, &vp, &cfg, &clip, &err) == MT_OK);
    const int64_t want[] = {0, 1, 3, 4};
    CHECK(clip.n_frames == 4 && memcmp(clip.frame_indices, want, sizeof want) == 0);
    CHECK(clip.grid_thw[0] == 2 && clip.grid_thw[1] == 20 && clip.grid_thw[2] == 28 && clip.n_patches == 2 * 20 * 28);
    CHECK(clip.second_per_grid == 0.25f);
    /* the plan: every field but the pixels, from the header alone */
    mt_qwen_video plan = {0};
    CHECK(mt_qwen_video_plan_file(path, &vp, &cfg, &plan, &err) == MT_OK);
    CHECK(plan.pixel_values == NULL && plan.n_patches == clip.n_patches && plan.n_frames == clip.n_frames &&
          memcmp(plan.grid_thw, clip.grid_thw, sizeof plan.grid_thw) == 0 && plan.frame_indices &&
          memcmp(plan.frame_indices, want, sizeof want) == 0 && plan.sample_fps == clip.sample_fps &&
          plan.video_fps == clip.video_fps && plan.source_frames == clip.source_frames &&
          plan.second_per_grid == clip.second_per_grid);
    mt_qwen_video_free(&plan);
    CHECK(mt_qwen_video_plan_file("/nonexistent/clip.mp4", &vp, &cfg, &plan, &err) != MT_OK &&
          strstr(err.msg, "/nonexistent/clip.mp4"));
    /* decoded ahead on a thread and resized on a pool of 3, or all on the caller: the same bytes */
    size_t bytes = (size_t)clip.n_patches * (size_t)(3 * cfg.temporal_patch_size * cfg.patch_size * cfg.patch_size) *
                   sizeof(float);
    for (int64_t threads = 1; threads <= 3; threads += 2) {
        mt_qwen_video again = {0};
        vp.threads = threads;
        CHECK(mt_qwen_video_from_file(path, &vp, &cfg, &again, &err) == MT_OK);
        CHECK_MSG(again.n_patches == clip.n_patches && memcmp(again.pixel_values, clip.pixel_values, bytes) == 0,
                  "%lld threads give other pixels", (long long)threads);
        mt_qwen_video_free(&again);
    }
    vp.threads = 1025;
    CHECK(mt_qwen_video_from_file(path, &vp, &cfg, &clip, &err) == MT_ERR_INVALID_ARG && strstr(err.msg, "threads"));
    vp.threads = 0;
    mt_qwen_video_free(&clip);
    mt_qwen_video_free(NULL);

    vp.nframes = 8;
    CHECK(mt_qwen_video_from_file(path, &vp, &cfg, &clip, &err) == MT_ERR_INVALID_ARG && strstr(err.msg, "nframes"));
    vp.nframes = 5; /* round(5 / 2) * 2 with Python's half to even: 4 (half away from zero would give 6 > 5) */
    CHECK(mt_qwen_video_from_file(path, &vp, &cfg, &clip, &err) == MT_OK && clip.n_frames == 4);
    mt_qwen_video_free(&clip);
    vp.nframes = 0;
    vp.fps = 0;
    CHECK(mt_qwen_video_from_file(path, &vp, &cfg, &clip, &err) == MT_ERR_INVALID_ARG && strstr(err.msg, "fps"));
    mt_qwen_video_params_default(&vp);
    vp.max_pixels = 1000;
    CHECK(mt_qwen_video_from_file(path, &vp, &cfg, &clip, &err) == MT_ERR_INVALID_ARG &&
          strstr(err.msg, "max_pixels"));
}

/* What the sampler hands over: each frame's center luma, and a take that fails at chosen samples; the first
 * failure waits (up to 2 s) until the second one's sample was taken, so that both runs fail. */
typedef struct seen {
    int luma[8];
    atomic_int calls[8];
    int64_t fail_at[2];
} seen;

static mt_status take(void *user, int64_t k, mt_image *frame, mt_err *err) {
    seen *s = user;
    s->luma[k] = frame->rgb[(H / 2 * W + W / 2) * 3];
    atomic_fetch_add(&s->calls[k], 1);
    mt_image_free(frame);
    if (k == s->fail_at[0])
        for (int i = 0; i < 2000 && atomic_load(&s->calls[s->fail_at[1]]) == 0; i++) usleep(1000);
    if (k == s->fail_at[0] || k == s->fail_at[1])
        return mt_err_set(err, MT_ERR_FORMAT, "take failed at %lld", (long long)k);
    return MT_OK;
}

static void test_sample(void) {
    mt_err err;
    mt_video *v = NULL;
    CHECK(mt_video_open(path, MT_VIDEO_DEFAULT_MAX_PIXELS, &v, &err) == MT_OK);
    if (!v) return;
    /* Y4M is raw video: every frame is a keyframe, so runs may start anywhere */
    CHECK(mt_video_keyframe_before(v, 3) == 3 && mt_video_keyframe_before(v, FRAMES) == -1);
    const int64_t idx[] = {0, 1, 1, 2, 3, 4, 4, 4};
    const int64_t n = MT_ARRAY_LEN(idx);
    int64_t starts[8];
    int runs;
    mt_video_plan_runs(v, idx, n, 3, starts, &runs);
    CHECK_MSG(runs == 3 && starts[0] == 0 && starts[1] > 0 && starts[2] > starts[1] && starts[2] < n,
              "3 runs planned as %d", runs);
    mt_video_plan_runs(v, idx, n, 1, starts, &runs);
    CHECK(runs == 1 && starts[0] == 0);
    const int64_t back[] = {2, 1, 0};
    mt_video_plan_runs(v, back, 3, 3, starts, &runs);
    CHECK_MSG(runs == 1, "indices going back must be read in order on one decoder, not in %d runs", runs);

    seen one = {.fail_at = {-1, -1}};
    CHECK(mt_video_sample(v, idx, n, 1, take, &one, &err) == MT_OK);
    for (int threads = 2; threads <= 4; threads++) {
        seen many = {.fail_at = {-1, -1}};
        CHECK(mt_video_sample(v, idx, n, threads, take, &many, &err) == MT_OK);
        for (int64_t k = 0; k < n; k++)
            CHECK_MSG(many.calls[k] == 1 && many.luma[k] == one.luma[k],
                      "%d threads: sample %lld taken %d times, luma %d against %d", threads, (long long)k,
                      many.calls[k], many.luma[k], one.luma[k]);
    }
    /* the error of the first sample that fails, as a read in order meets it, though a later run failed first */
    mt_video_plan_runs(v, idx, n, 2, starts, &runs);
    char want[64];
    snprintf(want, sizeof want, "failed at %lld", (long long)(starts[1] - 1));
    seen bad = {.fail_at = {starts[1] - 1, starts[1]}};
    CHECK(mt_video_sample(v, idx, n, 2, take, &bad, &err) == MT_ERR_FORMAT && strstr(err.msg, want));
    CHECK_MSG(atomic_load(&bad.calls[starts[1]]) == 1, "the second run did not fail first");
    seen bad_one = {.fail_at = {5, 2}};
    CHECK(mt_video_sample(v, idx, n, 1, take, &bad_one, &err) == MT_ERR_FORMAT && strstr(err.msg, "failed at 2"));
    CHECK(mt_video_sample(v, idx, n, -1, take, &one, &err) == MT_ERR_INVALID_ARG);
    CHECK(mt_video_sample(v, NULL, n, 2, take, &one, &err) == MT_ERR_INVALID_ARG);
    CHECK(mt_video_sample(v, idx, 0, 2, take, &one, &err) == MT_OK);
    mt_video_close(v);
}

/* Every allocation of the pipeline failing in turn: MT_ERR_NOMEM or success, never a crash or a leak (ASan). */
static void test_alloc_failures(void) {
    mt_qwen_preproc_cfg cfg;
    mt_qwen_preproc_cfg_default(&cfg);
    mt_qwen_video_params vp;
    mt_qwen_video_params_default(&vp);
    /* one thread: each allocation fails at the same place every run; two: the runs' allocations fail where the
     * threads happen to be */
    for (vp.threads = 1; vp.threads <= 2; vp.threads++)
        for (size_t k = 1; k < 10000; k++) {
            mt_qwen_video clip = {0};
            mt_err err;
            mt_alloc_fail_after(k);
            mt_status st = mt_qwen_video_from_file(path, &vp, &cfg, &clip, &err);
            mt_alloc_fail_after(0);
            CHECK_MSG(st == MT_OK || st == MT_ERR_NOMEM, "%lld threads, allocation %zu failing gives %d: %s",
                      (long long)vp.threads, k, st, err.msg);
            mt_qwen_video_free(&clip);
            if (st == MT_OK) break;
        }
}

int main(void) {
    /* relative and with a colon: FFmpeg must not take "mtvideo" for a protocol */
    snprintf(path, sizeof path, "mtvideo:%d.y4m", (int)getpid());
    write_y4m();
    test_decode();
    test_qwen();
    test_sample();
    test_alloc_failures();
    unlink(path);
    return check_report();
}
