/* media/video: decode chosen frames of a video file into RGB8 through FFmpeg's libraries, seeking to each.
 *
 * Usage:
 *     mt_video *v;
 *     if (mt_video_open("clip.mp4", MT_VIDEO_DEFAULT_MAX_PIXELS, &v, &err) != MT_OK) ...   // err.msg names the file
 *     const mt_video_info *info = mt_video_get_info(v);
 *     mt_image frame;
 *     mt_video_read_frame(v, 17, &frame, &err);     // frame 17 of info->n_frames, as displayed (rotation applied)
 *     mt_image_free(&frame);
 *     mt_video_close(v);
 *
 * Any container and codec the linked libavformat / libavcodec read. The stream read is FFmpeg's best video stream
 * (a cover picture does not count). Only the file protocol is allowed, so a playlist cannot reach the network.
 *
 * What the header gives (info):
 *     | field      | from                                                                                      |
 *     | ---------- | ----------------------------------------------------------------------------------------- |
 *     | fps        | the stream's avg_frame_rate, else r_frame_rate, else n_frames / duration                  |
 *     | duration   | the stream's duration, else the container's                                               |
 *     | n_frames   | the stream's nb_frames, else round(duration * fps)                                        |
 *     | rotation   | the display matrix, as the clockwise turn FFmpeg's autorotate applies (0, 90, 180, 270)  |
 *     | width/height | the coded size, swapped for 90 and 270                                                  |
 *
 * Frame index i means the frame shown at time start + i / fps: the last frame whose timestamp is less than half a
 * frame interval past it (the first frame when none is). For a constant frame rate that is frame i; for a
 * variable one it is what a player shows at that time, so sampling stays even in time. To read it the decoder
 * seeks back to the keyframe before that time (av_seek_frame, AVSEEK_FLAG_BACKWARD) and decodes forward, unless
 * the frames already decoded lead there at least as quickly (increasing indices then cost one pass). At most three
 * decoded frames are held, and up to 1024 packets (256 MB) read ahead. Frames nothing refers to (most B-frames) are
 * not decoded when the packets read ahead show they are not the frame sought (nor, with mt_video_hint_next, the
 * next one).
 *
 * FFmpeg's own log is switched off (av_log_set_level, process-wide) at the first open: mitten reports what failed
 * in err instead of FFmpeg's lines on stderr.
 *
 * Errors name the file: MT_ERR_IO when it cannot be opened, MT_ERR_FORMAT for what FFmpeg cannot read, no video
 * stream, no frames, a frame count the duration cannot hold, decoding errors and corrupt frames, a video that ends
 * before a frame its header promises; MT_ERR_LIMIT for sizes over max_pixels and absurd frame counts or rates;
 * MT_ERR_UNSUPPORTED for codecs without a decoder and rotations other than quarter turns. Outputs are unchanged on
 * failure.
 */
#ifndef MT_MEDIA_VIDEO_H
#define MT_MEDIA_VIDEO_H

#include "media/image.h"

/* 8192 x 8192: above 8K UHD, far below what would exhaust memory for a handful of frames. */
#define MT_VIDEO_DEFAULT_MAX_PIXELS ((int64_t)8192 * 8192)
/* About 38 days at 30 fps; a header claiming more is taken as broken. */
#define MT_VIDEO_MAX_FRAMES ((int64_t)100000000)

typedef struct mt_video mt_video;

typedef struct mt_video_info {
    int64_t width, height; /* as displayed */
    int64_t n_frames;      /* >= 1 */
    double fps;            /* > 0 */
    double duration;       /* seconds, > 0 */
    int rotation;          /* clockwise degrees applied to decoded frames */
} mt_video_info;

/* Opens path and reads its header; max_pixels >= 1 caps width * height. *out is freed with mt_video_close. */
mt_status mt_video_open(const char *path, int64_t max_pixels, mt_video **out, mt_err *err);

/* The same with FFmpeg's decoder on `threads` threads (0: FFmpeg's choice, one per core; 1 when the caller runs
 * several decoders at once, see media/video_sample.h). */
mt_status mt_video_open_threads(const char *path, int64_t max_pixels, int threads, mt_video **out, mt_err *err);

/* v's file opened again, with v's max_pixels, on `threads` decoder threads: one more reader of the same video. */
mt_status mt_video_reopen(const mt_video *v, int threads, mt_video **out, mt_err *err);

const mt_video_info *mt_video_get_info(const mt_video *v);

/* Frame index (in [0, n_frames)) as RGB8, rotated as displayed; out->name is "path frame N". */
mt_status mt_video_read_frame(mt_video *v, int64_t index, mt_image *out, mt_err *err);

/* Says which frame the next mt_video_read_frame will ask for (greater than the one about to be read; -1: unknown),
 * for the one read after this call: unreferenced frames shown between the two are then not decoded. Asking for
 * another index then costs a seek, never a wrong frame. */
void mt_video_hint_next(mt_video *v, int64_t index);

/* The frame a read of index starts decoding from: the keyframe at or before it, from the container's index (index
 * itself for codecs whose every frame is a keyframe). -1 when the container has no index, or index is outside
 * [0, n_frames). An estimate for planning work (an index of decoding times can be a frame or two off). */
int64_t mt_video_keyframe_before(const mt_video *v, int64_t index);

/* How many frames the decoder has produced since open: what the seeking saved can be measured (tests, benchmarks). */
int64_t mt_video_frames_decoded(const mt_video *v);

/* Accepts NULL. */
void mt_video_close(mt_video *v);

#endif
