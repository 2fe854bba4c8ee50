/* media/internvl_video_pre: the frame indices each form samples and the refusals of counts the references would
 * not sample (the pixels against PyAV + PIL + torchvision are tests/media/internvl_video_ref.py's). */
#include <string.h>

#include "check.h"
#include "media/internvl_video_pre.h"

/* Indices for T frames at fps; expect n of them equal to want (want NULL: only the count). */
static void expect(const mt_internvl_video_params *vp, int64_t T, double fps, const int64_t *want, int64_t n,
                   int line) {
    int64_t got[64] = {0}, k = -1;
    mt_err err = {0};
    mt_status st = mt_internvl_video_indices(vp, T, fps, got, 64, &k, &err);
    CHECK_MSG(st == MT_OK && k == n, "line %d: status %d, %lld indices (want %lld): %s", line, (int)st, (long long)k,
              (long long)n, err.msg);
    for (int64_t i = 0; want && st == MT_OK && i < n && i < 64; i++)
        CHECK_MSG(got[i] == want[i], "line %d: index %lld is %lld, want %lld", line, (long long)i, (long long)got[i],
                  (long long)want[i]);
}

static void refused(const mt_internvl_video_params *vp, int64_t T, double fps, const char *needle, int line) {
    int64_t n = -1;
    mt_err err = {0};
    mt_status st = mt_internvl_video_indices(vp, T, fps, NULL, 0, &n, &err);
    CHECK_MSG(st != MT_OK && strstr(err.msg, needle), "line %d: status %d, message \"%s\" (want \"%s\")", line,
              (int)st, err.msg, needle);
}

int main(void) {
    mt_internvl_video_params o, h;
    mt_internvl_video_params_default(MT_INTERNVL_TILING_ORIGINAL, &o);
    mt_internvl_video_params_default(MT_INTERNVL_TILING_HF, &h);

    /* original: get_index's segment midpoints, int(seg / 2 + round(seg * k)), seg = (T - 1) / N; 32 by default */
    expect(&o, 50, 10, NULL, 32, __LINE__);
    o.num_frames = 5;
    expect(&o, 50, 10, (const int64_t[]){4, 14, 24, 33, 43}, 5, __LINE__);
    /* seg 0.5: np.round(0, 0.5, 1, 1.5) is 0, 0, 1, 2 (half to even), plus 0.25, truncated */
    o.num_frames = 4;
    expect(&o, 3, 10, (const int64_t[]){0, 0, 1, 2}, 4, __LINE__);
    /* more segments than frames repeat frames, as the model card does (np.round(0.5) is 0) */
    o.num_frames = 6;
    expect(&o, 2, 10, (const int64_t[]){0, 0, 0, 0, 1, 1}, 6, __LINE__);
    o.num_frames = 0;
    o.fps = 1; /* int(50 / 10 * 1) = 5 */
    expect(&o, 50, 10, (const int64_t[]){4, 14, 24, 33, 43}, 5, __LINE__);
    o.fps = 0.01; /* no whole frame: at least one */
    expect(&o, 50, 10, (const int64_t[]){24}, 1, __LINE__);
    o.fps = 0;
    o.max_frames = 5;
    expect(&o, 50, 10, (const int64_t[]){4, 14, 24, 33, 43}, 5, __LINE__);

    /* hf: every frame unless sampling */
    expect(&h, 7, 10, (const int64_t[]){0, 1, 2, 3, 4, 5, 6}, 7, __LINE__);
    /* num_frames: arange(T / N / 2, T, T / N).int() */
    h.num_frames = 5;
    expect(&h, 50, 10, (const int64_t[]){5, 15, 25, 35, 45}, 5, __LINE__);
    h.num_frames = 3;
    expect(&h, 10, 10, (const int64_t[]){1, 5, 8}, 3, __LINE__);
    h.initial_shift = 0;
    expect(&h, 10, 10, (const int64_t[]){0, 3, 6}, 3, __LINE__);
    h.initial_shift = 9.5; /* past all but one step: one frame */
    expect(&h, 10, 10, (const int64_t[]){9}, 1, __LINE__);
    h.initial_shift = 10;
    refused(&h, 10, 10, "initial_shift", __LINE__);
    h.initial_shift = -1;
    h.num_frames = 11;
    refused(&h, 10, 10, "num_frames asks for 11 frames, the video has 10", __LINE__);
    h.num_frames = 0;
    h.fps = 2; /* int(50 / 10 * 2) = 10 */
    expect(&h, 50, 10, (const int64_t[]){2, 7, 12, 17, 22, 27, 32, 37, 42, 47}, 10, __LINE__);
    h.fps = 0.1; /* int(0.5) = 0: nothing to sample */
    refused(&h, 50, 10, "fps gives no frames", __LINE__);
    h.fps = 0;
    /* max_frames turns every frame into a sample of that many: step 50 / 6 */
    h.max_frames = 6;
    expect(&h, 50, 10, (const int64_t[]){4, 12, 20, 29, 37, 45}, 6, __LINE__);
    h.max_frames = 60; /* above the count: every frame still */
    expect(&h, 50, 10, NULL, 50, __LINE__);
    h.max_frames = 0;
    h.sample = true; /* do_sample_frames without a count: N = T, shifted by half a frame */
    expect(&h, 4, 10, (const int64_t[]){0, 1, 2, 3}, 4, __LINE__);

    /* bad parameters and sources, by name */
    h.sample = false;
    h.num_frames = MT_INTERNVL_MAX_VIDEO_FRAMES + 1;
    refused(&h, 50, 10, "num_frames", __LINE__);
    h.num_frames = 0;
    h.fps = -1;
    refused(&h, 50, 10, "fps", __LINE__);
    h.fps = 0;
    refused(&h, 0, 10, "0 frames", __LINE__);
    refused(&h, 5, 0, "at 0 fps", __LINE__);
    refused(&h, MT_INTERNVL_MAX_VIDEO_FRAMES + 1, 10, "over the 4096", __LINE__);

    /* the count is given even when the indices do not fit: the caller allocates and calls again */
    int64_t one[1], n = 0;
    mt_err err;
    CHECK(mt_internvl_video_indices(&o, 50, 10, one, 1, &n, &err) == MT_OK && n == 5 && one[0] == 4);

    mt_internvl_video clip = {0};
    mt_internvl_pre_cfg pre;
    mt_internvl_pre_cfg_default(MT_INTERNVL_TILING_ORIGINAL, &pre);
    CHECK(mt_internvl_video_from_file("/nonexistent/clip.mp4", &o, &pre, &clip, &err) != MT_OK &&
          strstr(err.msg, "/nonexistent/clip.mp4") && !clip.pixel_values);
    CHECK(mt_internvl_video_from_file("/nonexistent/clip.mp4", &h, &pre, &clip, &err) == MT_ERR_INVALID_ARG &&
          strstr(err.msg, "different forms"));
    mt_internvl_video_free(&clip);
    mt_internvl_video_free(NULL);
    return check_report();
}
