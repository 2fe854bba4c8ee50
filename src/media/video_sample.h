/* media/video_sample: the sampled frames of a video read on several threads at once.
 *
 *     static mt_status take(void *user, int64_t k, mt_image *frame, mt_err *err) {
 *         ... resize frame into output slot k ...
 *         mt_image_free(frame);
 *     }
 *     mt_video_sample(v, indices, n, 0, take, &out, &err);
 *
 * One FFmpeg decoder spreads H.264 over cores by frame threads, which wait on each other's reference frames; a
 * sampled video is cut instead into as many runs of consecutive samples as there are threads, each read by its
 * own decoder on one thread, which also hands its frames to take. The cuts are put where the work (the frames
 * decoded from the keyframe before a run's first sample, plus each sample's own handling) is most even, at
 * keyframes where the container's index shows them, so that no frame is decoded twice (without an index, as if
 * every frame were one). Frames come out as mt_video_read_frame gives them, so the bytes do not depend on the
 * thread count.
 *
 * take is called once per sample k in [0, n) with the frame, which it owns (it must free it, also when it fails);
 * calls for one run come in order of k, calls for different runs at the same time. When a read or a take fails,
 * runs after it stop early, runs before it finish, and the error returned is that of the smallest k that failed:
 * the one a reading in order would have met first. threads: 0 is one per CPU; 1, or indices that go back, read
 * everything in order on v and on the caller's thread.
 */
#ifndef MT_MEDIA_VIDEO_SAMPLE_H
#define MT_MEDIA_VIDEO_SAMPLE_H

#include "media/video.h"

typedef mt_status (*mt_video_take_fn)(void *user, int64_t k, mt_image *frame, mt_err *err);

/* How samples [0, n) are cut into at most `parts` runs: starts[0] = 0 < starts[1] < ... < starts[*n_runs - 1] < n.
 * Exposed for tests. */
void mt_video_plan_runs(const mt_video *v, const int64_t *indices, int64_t n, int parts, int64_t *starts,
                        int *n_runs);

mt_status mt_video_sample(mt_video *v, const int64_t *indices, int64_t n, int threads, mt_video_take_fn take,
                          void *user, mt_err *err);

#endif
