/* media/video: FFmpeg demuxing, seeking and decoding of single frames (see video.h for the contract).
 *
 * Reference: FFmpeg 5.1 doc/examples/demux_decode.c (the send/receive loop) and fftools/cmdutils.c get_rotation
 * (how the display matrix becomes a clockwise turn). Timestamps are in the stream's time base (tb); "limit" is the
 * latest timestamp that still counts as the requested frame.
 */
#include "media/video.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/display.h>
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/file.h"

/* Packets read ahead to learn which frame a sample is (see plan_skip): a GOP of x264's default 250 frames fits. */
#define QUEUE_PACKETS 1024
#define QUEUE_BYTES ((size_t)256 << 20)

struct mt_video {
    char *path;
    int64_t max_pixels;
    int threads;     /* FFmpeg's decoder threads; 0: its choice */
    bool intra_only; /* every frame is a keyframe (MJPEG, raw video) */
    AVFormatContext *fmt;
    AVCodecContext *dec;
    AVPacket *pkt;
    AVFrame *prev, *cur, *next; /* the two latest decoded frames (cur newer) and a spare */
    bool have_prev, have_cur, draining, eof;
    int stream;
    double tb;         /* seconds per timestamp unit */
    int64_t start_pts; /* timestamp of time 0 */
    int64_t coded_w, coded_h;
    int64_t n_decoded;
    int64_t skip_before; /* packets shown before this timestamp are not the frame sought: unreferenced ones are
                            not decoded at all (AVDISCARD_NONREF); INT64_MIN: decode every one */
    int64_t skip_after, skip_until; /* unreferenced packets shown in (skip_after, skip_until) are not decoded
                                       either: none is the frame sought, nor the next one the caller named */
    int64_t hint;                   /* mt_video_hint_next's index for the next read; -1: none */
    int64_t key_delay;              /* the largest pts - dts seen on a keyframe packet (B-frame reordering) */
    int64_t promised;               /* the index the last read skipped frames for; -1: none */
    AVPacket *queue[QUEUE_PACKETS]; /* the stream's packets read ahead of the decoder, a ring */
    int q_head, q_len;
    size_t q_bytes;
    bool demux_eof;                 /* the demuxer has nothing more; the queue may */
    struct SwsContext *sws;
    mt_video_info info;
};

static const char *av_msg(int code, char *buf, size_t cap) {
    av_strerror(code, buf, cap);
    return buf;
}

static mt_status av_fail(mt_err *err, mt_status code, const char *path, const char *what, int r) {
    char buf[128];
    return mt_err_set(err, code, "%s: %s: %s", path, what, av_msg(r, buf, sizeof buf));
}

/* The clockwise turn FFmpeg's autorotate gives for the stream's display matrix: 0 without one. */
static mt_status read_rotation(const AVStream *st, const char *path, int *out, mt_err *err) {
    const uint8_t *m = NULL;
#if LIBAVFORMAT_VERSION_INT >= AV_VERSION_INT(60, 15, 100)
    const AVPacketSideData *sd = av_packet_side_data_get(st->codecpar->coded_side_data,
                                                         st->codecpar->nb_coded_side_data, AV_PKT_DATA_DISPLAYMATRIX);
    if (sd && sd->size >= 9 * sizeof(int32_t)) m = sd->data;
#else
    size_t size = 0;
    m = av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, &size);
    if (size < 9 * sizeof(int32_t)) m = NULL;
#endif
    *out = 0;
    if (!m) return MT_OK;
    double theta = -round(av_display_rotation_get((const int32_t *)m));
    if (isnan(theta)) return MT_OK;
    theta -= 360 * floor(theta / 360 + 0.9 / 360);
    for (int q = 0; q <= 360; q += 90)
        if (fabs(theta - q) < 1.0) {
            *out = q % 360;
            return MT_OK;
        }
    return mt_err_set(err, MT_ERR_UNSUPPORTED, "%s: rotation by %g degrees (only quarter turns are supported)", path,
                      theta);
}

static double q2d_or_zero(AVRational r) { return r.num > 0 && r.den > 0 ? av_q2d(r) : 0.0; }

/* fps, duration and frame count from the headers, checked against each other. */
static mt_status read_timing(mt_video *v, const AVStream *st, mt_err *err) {
    const char *path = v->path;
    double fps = q2d_or_zero(st->avg_frame_rate);
    if (fps <= 0) fps = q2d_or_zero(st->r_frame_rate);
    double duration = 0;
    if (st->duration != AV_NOPTS_VALUE && st->duration > 0) duration = (double)st->duration * v->tb;
    else if (v->fmt->duration != AV_NOPTS_VALUE && v->fmt->duration > 0)
        duration = (double)v->fmt->duration / AV_TIME_BASE;
    int64_t n = st->nb_frames > 0 ? st->nb_frames : 0;
    if (fps <= 0 && n > 0 && duration > 0) fps = (double)n / duration;
    if (fps <= 0) return mt_err_set(err, MT_ERR_FORMAT, "%s: the video stream has no frame rate", path);
    if (!(fps <= 10000 && fps >= 1e-4))
        return mt_err_set(err, MT_ERR_LIMIT, "%s: frame rate %g is outside [0.0001, 10000]", path, fps);
    if (n == 0 && duration > 0) {
        if (!(duration * fps < (double)MT_VIDEO_MAX_FRAMES))
            return mt_err_set(err, MT_ERR_LIMIT, "%s: duration %g s at %g fps is over %lld frames", path, duration,
                              fps, (long long)MT_VIDEO_MAX_FRAMES);
        n = MT_MAX(1, (int64_t)llround(duration * fps));
    }
    if (n == 0 || (duration <= 0 && st->nb_frames <= 0))
        return mt_err_set(err, MT_ERR_FORMAT, "%s: the video stream has no frames (zero duration)", path);
    if (n > MT_VIDEO_MAX_FRAMES)
        return mt_err_set(err, MT_ERR_LIMIT, "%s: the header claims %lld frames, over the %lld mitten accepts", path,
                          (long long)n, (long long)MT_VIDEO_MAX_FRAMES);
    if (duration > 0 && (double)n > 2 * duration * fps + 2)
        return mt_err_set(err, MT_ERR_FORMAT,
                          "%s: the header claims %lld frames but its duration, %g s at %g fps, holds about %.0f", path,
                          (long long)n, duration, fps, duration * fps);
    if (duration <= 0) duration = (double)n / fps;
    v->info.fps = fps;
    v->info.duration = duration;
    v->info.n_frames = n;
    return MT_OK;
}

static mt_status check_size(int64_t w, int64_t h, int64_t max_pixels, const char *path, mt_err *err) {
    if (w < 1 || h < 1) return mt_err_set(err, MT_ERR_FORMAT, "%s: the video stream has no frame size", path);
    int64_t area;
    if (w > 65535 || h > 65535 || !mt_mul_i64_ok(w, h, &area) || area > max_pixels)
        return mt_err_set(err, MT_ERR_LIMIT, "%s: video frames of %lldx%lld are over the %lld-pixel limit", path,
                          (long long)w, (long long)h, (long long)max_pixels);
    return MT_OK;
}

static mt_status open_decoder(mt_video *v, int64_t max_pixels, mt_err *err) {
    const char *path = v->path;
    const AVCodec *codec = NULL;
    int r = av_find_best_stream(v->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (r == AVERROR_STREAM_NOT_FOUND) return mt_err_set(err, MT_ERR_FORMAT, "%s: no video stream", path);
    if (r == AVERROR_DECODER_NOT_FOUND)
        return mt_err_set(err, MT_ERR_UNSUPPORTED, "%s: no decoder for its video codec in this FFmpeg build", path);
    if (r < 0) return av_fail(err, MT_ERR_FORMAT, path, "finding the video stream", r);
    AVStream *st = v->fmt->streams[r];
    if (st->disposition & AV_DISPOSITION_ATTACHED_PIC)
        return mt_err_set(err, MT_ERR_FORMAT, "%s: no video stream (only a cover picture)", path);
    v->stream = r;
    v->tb = av_q2d(st->time_base);
    if (!(v->tb > 0)) return mt_err_set(err, MT_ERR_FORMAT, "%s: the video stream has no time base", path);
    v->start_pts = st->start_time != AV_NOPTS_VALUE ? st->start_time : 0;
    v->coded_w = st->codecpar->width;
    v->coded_h = st->codecpar->height;
    mt_status s = check_size(v->coded_w, v->coded_h, max_pixels, path, err);
    if (s) return s;
    if ((s = read_rotation(st, path, &v->info.rotation, err)) || (s = read_timing(v, st, err))) return s;
    bool turned = v->info.rotation % 180 != 0;
    v->info.width = turned ? v->coded_h : v->coded_w;
    v->info.height = turned ? v->coded_w : v->coded_h;

    if (!(v->dec = avcodec_alloc_context3(codec)))
        return mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory for the decoder", path);
    if ((r = avcodec_parameters_to_context(v->dec, st->codecpar)) < 0)
        return av_fail(err, MT_ERR_FORMAT, path, "reading the codec parameters", r);
    v->dec->pkt_timebase = st->time_base;
    /* 0 is FFmpeg's choice, one per core: HD frames between a keyframe and a sample add up */
    v->dec->thread_count = v->threads;
    const AVCodecDescriptor *desc = avcodec_descriptor_get(st->codecpar->codec_id);
    v->intra_only = desc && (desc->props & AV_CODEC_PROP_INTRA_ONLY);
    /* Damaged data is an error, not a frame with concealed blocks: the model would see made-up pixels. */
    v->dec->err_recognition |= AV_EF_EXPLODE;
    if ((r = avcodec_open2(v->dec, codec, NULL)) < 0) return av_fail(err, MT_ERR_FORMAT, path, "opening the decoder", r);
    if (!(v->pkt = av_packet_alloc()) || !(v->prev = av_frame_alloc()) || !(v->cur = av_frame_alloc()) ||
        !(v->next = av_frame_alloc()))
        return mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory for the decoder's frames", path);
    return MT_OK;
}

mt_status mt_video_open_threads(const char *path, int64_t max_pixels, int threads, mt_video **out, mt_err *err) {
    if (!path || !out || max_pixels < 1 || threads < 0 || threads > 1024)
        return mt_err_set(err, MT_ERR_INVALID_ARG,
                          "video: missing path or output, max_pixels < 1 or decoder threads outside [0, 1024]");
    mt_status st = mt_file_check_regular(path, err);
    if (st) return st;
    av_log_set_level(AV_LOG_QUIET);
    mt_video *v = mt_calloc(1, sizeof *v);
    if (!v || !(v->path = mt_strdup(path))) {
        mt_free(v);
        return mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory", path);
    }
    v->max_pixels = max_pixels;
    v->threads = threads;
    v->skip_before = INT64_MIN;
    v->skip_after = INT64_MAX;
    v->skip_until = INT64_MIN;
    v->hint = v->promised = -1;
    /* "file:" so that a name with a colon is not read as a protocol; the whitelist keeps a playlist or a
     * reference movie from reaching beyond local files. */
    char url[4096];
    AVDictionary *opts = NULL;
    int r = snprintf(url, sizeof url, "file:%s", path);
    if (r < 0 || (size_t)r >= sizeof url) {
        mt_video_close(v);
        return mt_err_set(err, MT_ERR_INVALID_ARG, "%s: path too long", path);
    }
    av_dict_set(&opts, "protocol_whitelist", "file", 0);
    r = avformat_open_input(&v->fmt, url, NULL, &opts);
    av_dict_free(&opts);
    if (r < 0) {
        st = av_fail(err, MT_ERR_FORMAT, path, "not a video FFmpeg can read", r);
    } else if ((r = avformat_find_stream_info(v->fmt, NULL)) < 0) {
        st = av_fail(err, MT_ERR_FORMAT, path, "reading the stream headers", r);
    } else {
        st = open_decoder(v, max_pixels, err);
    }
    if (st) {
        mt_video_close(v);
        return st;
    }
    *out = v;
    return MT_OK;
}

mt_status mt_video_open(const char *path, int64_t max_pixels, mt_video **out, mt_err *err) {
    return mt_video_open_threads(path, max_pixels, 0, out, err);
}

mt_status mt_video_reopen(const mt_video *v, int threads, mt_video **out, mt_err *err) {
    return mt_video_open_threads(v->path, v->max_pixels, threads, out, err);
}

const mt_video_info *mt_video_get_info(const mt_video *v) { return &v->info; }

int64_t mt_video_frames_decoded(const mt_video *v) { return v->n_decoded; }

void mt_video_hint_next(mt_video *v, int64_t index) { v->hint = index; }

static void queue_clear(mt_video *v) {
    for (int i = 0; i < v->q_len; i++) av_packet_free(&v->queue[(v->q_head + i) % QUEUE_PACKETS]);
    v->q_head = v->q_len = 0;
    v->q_bytes = 0;
    v->demux_eof = false;
}

void mt_video_close(mt_video *v) {
    if (!v) return;
    queue_clear(v);
    sws_freeContext(v->sws);
    av_frame_free(&v->prev);
    av_frame_free(&v->cur);
    av_frame_free(&v->next);
    av_packet_free(&v->pkt);
    avcodec_free_context(&v->dec);
    avformat_close_input(&v->fmt);
    mt_free(v->path);
    mt_free(v);
}

/* The time of the newest decoded frame, for messages. */
static double now_s(const mt_video *v) { return v->have_cur ? (double)(v->cur->pts - v->start_pts) * v->tb : 0.0; }

static mt_status decode_fail(mt_video *v, const char *what, int r, mt_err *err) {
    char buf[128];
    return mt_err_set(err, MT_ERR_FORMAT, "%s: %s after %.3f s: %s", v->path, what, now_s(v),
                      av_msg(r, buf, sizeof buf));
}

/* The next packet of the stream from the demuxer into pkt; AVERROR_EOF at its end. */
static int demux_packet(mt_video *v, AVPacket *pkt) {
    for (;;) {
        int r = av_read_frame(v->fmt, pkt);
        if (r < 0) return r;
        if (pkt->stream_index == v->stream) {
            if ((pkt->flags & AV_PKT_FLAG_KEY) && pkt->pts != AV_NOPTS_VALUE && pkt->dts != AV_NOPTS_VALUE)
                v->key_delay = MT_MAX(v->key_delay, pkt->pts - pkt->dts);
            return 0;
        }
        av_packet_unref(pkt);
    }
}

/* The next packet for the decoder: the queue's first, else the demuxer's. */
static int next_packet(mt_video *v, AVPacket *pkt) {
    if (v->q_len) {
        AVPacket **q = &v->queue[v->q_head];
        v->q_bytes -= (size_t)(*q)->size;
        av_packet_move_ref(pkt, *q);
        av_packet_free(q);
        v->q_head = (v->q_head + 1) % QUEUE_PACKETS;
        v->q_len--;
        return 0;
    }
    return v->demux_eof ? AVERROR_EOF : demux_packet(v, pkt);
}

/* Reads packets into the queue until one is decoded after limit (its dts is past it: every packet shown by limit
 * is then known, since a frame is shown no earlier than it is decoded) or the stream ends. Returns the latest
 * timestamp shown by limit among the queued packets, which is then a frame the decoder will produce: every
 * frame shown before it is not the one sought. INT64_MIN when the queue cannot tell (a packet without
 * timestamps, a full queue, a read error, which the decoder then meets itself). */
static int64_t plan_skip(mt_video *v, int64_t limit) {
    for (;;) {
        int64_t best = INT64_MIN;
        bool known = false;
        for (int i = 0; i < v->q_len; i++) {
            const AVPacket *p = v->queue[(v->q_head + i) % QUEUE_PACKETS];
            if (p->pts == AV_NOPTS_VALUE || p->dts == AV_NOPTS_VALUE) return INT64_MIN;
            if (p->pts <= limit && p->pts > best) best = p->pts;
            if (p->dts > limit) known = true;
        }
        if (known || v->demux_eof) return best;
        if (v->q_len == QUEUE_PACKETS || v->q_bytes > QUEUE_BYTES) return INT64_MIN;
        AVPacket *p = av_packet_alloc();
        if (!p) return INT64_MIN;
        int r = demux_packet(v, p);
        if (r < 0) {
            av_packet_free(&p);
            if (r != AVERROR_EOF) return INT64_MIN;
            v->demux_eof = true;
            continue;
        }
        v->queue[(v->q_head + v->q_len++) % QUEUE_PACKETS] = p;
        v->q_bytes += (size_t)p->size;
    }
}

/* Decodes the next frame into v->cur (shifting cur to prev); sets v->eof at the end of the stream. */
static mt_status decode_next(mt_video *v, mt_err *err) {
    for (;;) {
        int r = avcodec_receive_frame(v->dec, v->next);
        if (r == 0) {
            if ((v->next->flags & AV_FRAME_FLAG_CORRUPT) || v->next->decode_error_flags)
                return mt_err_set(err, MT_ERR_FORMAT, "%s: corrupt frame after %.3f s", v->path, now_s(v));
            int64_t pts = v->next->best_effort_timestamp;
            if (pts == AV_NOPTS_VALUE)
                pts = v->have_cur ? v->cur->pts + (int64_t)llround(1.0 / (v->info.fps * v->tb))
                                  : v->start_pts;
            v->next->pts = pts;
            v->n_decoded++;
            av_frame_unref(v->prev);
            AVFrame *t = v->prev;
            v->prev = v->cur;
            v->cur = v->next;
            v->next = t;
            v->have_prev = v->have_cur;
            v->have_cur = true;
            return MT_OK;
        }
        if (r == AVERROR_EOF) {
            v->eof = true;
            return MT_OK;
        }
        if (r != AVERROR(EAGAIN)) return decode_fail(v, "decoding failed", r, err);
        if (v->draining) {
            v->eof = true;
            return MT_OK;
        }
        r = next_packet(v, v->pkt);
        if (r == AVERROR_EOF) {
            v->draining = true;
            avcodec_send_packet(v->dec, NULL);
            continue;
        }
        if (r < 0) return decode_fail(v, "reading the file failed", r, err);
        /* a B-frame nothing refers to, shown well before the frame sought, need not be decoded: most of a
         * typical H.264 stream between a keyframe and the sample */
        int64_t pts = v->pkt->pts;
        bool unneeded = pts != AV_NOPTS_VALUE &&
                        (pts < v->skip_before || (pts > v->skip_after && pts < v->skip_until));
        v->dec->skip_frame = unneeded ? AVDISCARD_NONREF : AVDISCARD_DEFAULT;
        r = avcodec_send_packet(v->dec, v->pkt);
        av_packet_unref(v->pkt);
        if (r < 0 && r != AVERROR(EAGAIN)) return decode_fail(v, "decoding failed", r, err);
    }
}

/* Frame intervals before a sought frame from which every frame is decoded (deeper than H.264's B-pyramids). */
#define SKIP_MARGIN_FRAMES 8

static mt_status seek_to(mt_video *v, int64_t target, mt_err *err) {
    int r = av_seek_frame(v->fmt, v->stream, target, AVSEEK_FLAG_BACKWARD);
    if (r < 0) r = avformat_seek_file(v->fmt, v->stream, INT64_MIN, target, INT64_MAX, 0);
    if (r < 0) return av_fail(err, MT_ERR_FORMAT, v->path, "seeking failed", r);
    queue_clear(v);
    avcodec_flush_buffers(v->dec);
    av_frame_unref(v->prev);
    av_frame_unref(v->cur);
    v->have_prev = v->have_cur = v->draining = v->eof = false;
    return MT_OK;
}

/* Whether reaching target by seeking beats decoding on from cur: true when the keyframe before target lies past
 * cur (or, without an index, when target is more than two seconds ahead). An index may hold decoding times (MP4
 * does), which run key_delay ahead of a keyframe's showing time: a keyframe shown after target (whose GOP does not
 * hold it) must not count, or the seek lands a whole GOP back and decodes it again. */
static bool seek_pays(const mt_video *v, int64_t target) {
    if (!v->have_cur) return true;
    int64_t at = v->cur->pts;
    AVStream *st = v->fmt->streams[v->stream];
    int i = av_index_search_timestamp(st, target - v->key_delay, AVSEEK_FLAG_BACKWARD);
    const AVIndexEntry *e = i >= 0 ? avformat_index_get_entry(st, i) : NULL;
    if (e) return e->timestamp + v->key_delay > at;
    return (double)(target - at) * v->tb > 2.0;
}

/* RGB8 of f, turned by the stream's rotation. */
static mt_status to_rgb(mt_video *v, const AVFrame *f, int64_t index, mt_image *out, mt_err *err) {
    if (f->width != v->coded_w || f->height != v->coded_h)
        return mt_err_set(err, MT_ERR_FORMAT, "%s: frame %lld is %dx%d but the stream header says %lldx%lld",
                          v->path, (long long)index, f->width, f->height, (long long)v->coded_w,
                          (long long)v->coded_h);
    int w = f->width, h = f->height;
    v->sws = sws_getCachedContext(v->sws, w, h, f->format, w, h, AV_PIX_FMT_RGB24, SWS_BILINEAR, NULL, NULL, NULL);
    if (!v->sws) return mt_err_set(err, MT_ERR_UNSUPPORTED, "%s: cannot convert pixel format %d to RGB", v->path,
                                   f->format);
    if (f->colorspace != AVCOL_SPC_UNSPECIFIED || f->color_range == AVCOL_RANGE_JPEG) {
        int cs = f->colorspace == AVCOL_SPC_UNSPECIFIED ? SWS_CS_DEFAULT : (int)f->colorspace;
        sws_setColorspaceDetails(v->sws, sws_getCoefficients(cs), f->color_range == AVCOL_RANGE_JPEG,
                                 sws_getCoefficients(SWS_CS_DEFAULT), 1, 0, 1 << 16, 1 << 16);
    }
    size_t n = (size_t)w * (size_t)h * 3;
    uint8_t *rgb = mt_malloc(n), *turned = NULL;
    if (!rgb) return mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory for a %dx%d frame", v->path, w, h);
    uint8_t *dst[4] = {rgb, NULL, NULL, NULL};
    int stride[4] = {w * 3, 0, 0, 0};
    sws_scale(v->sws, (const uint8_t *const *)f->data, f->linesize, 0, h, dst, stride);
    int rot = v->info.rotation;
    if (rot) {
        if (!(turned = mt_malloc(n))) {
            mt_free(rgb);
            return mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory for a %dx%d frame", v->path, w, h);
        }
        int64_t ow = rot == 180 ? w : h;
        for (int64_t y = 0; y < h; y++)
            for (int64_t x = 0; x < w; x++) {
                int64_t ox = rot == 90 ? h - 1 - y : rot == 180 ? w - 1 - x : y;
                int64_t oy = rot == 90 ? x : rot == 180 ? h - 1 - y : w - 1 - x;
                memcpy(turned + (oy * ow + ox) * 3, rgb + (y * w + x) * 3, 3);
            }
        mt_free(rgb);
        rgb = turned;
    }
    char name[64];
    snprintf(name, sizeof name, " frame %lld", (long long)index);
    size_t pl = strlen(v->path), nl = strlen(name);
    char *full = mt_malloc(pl + nl + 1);
    if (!full) {
        mt_free(rgb);
        return mt_err_set(err, MT_ERR_NOMEM, "%s: out of memory", v->path);
    }
    memcpy(full, v->path, pl);
    memcpy(full + pl, name, nl + 1);
    *out = (mt_image){.width = v->info.width, .height = v->info.height, .rgb = rgb, .name = full};
    return MT_OK;
}

/* The timestamp of frame index, and the last timestamp that still shows it: strictly before half an interval past
 * it; the margin keeps a frame exactly half an interval late out when the division lands a hair above an
 * integer. */
static void index_times(const mt_video *v, int64_t index, int64_t *target, int64_t *limit) {
    double t = (double)index / v->info.fps, half = 0.5 / v->info.fps;
    *target = v->start_pts + (int64_t)llround(t / v->tb);
    *limit = v->start_pts + (int64_t)ceil((t + half) / v->tb - 1e-7) - 1;
}

int64_t mt_video_keyframe_before(const mt_video *v, int64_t index) {
    if (index < 0 || index >= v->info.n_frames) return -1;
    if (v->intra_only) return index;
    AVStream *st = v->fmt->streams[v->stream];
    if (avformat_index_get_entries_count(st) == 0) return -1;
    int64_t target, limit;
    index_times(v, index, &target, &limit);
    int i = av_index_search_timestamp(st, limit - v->key_delay, AVSEEK_FLAG_BACKWARD);
    const AVIndexEntry *e = i >= 0 ? avformat_index_get_entry(st, i) : NULL;
    if (!e) return 0;
    int64_t k = llround((double)(e->timestamp + v->key_delay - v->start_pts) * v->tb * v->info.fps);
    return MT_MAX(0, MT_MIN(k, index));
}

mt_status mt_video_read_frame(mt_video *v, int64_t index, mt_image *out, mt_err *err) {
    if (!v || !out || index < 0 || index >= v->info.n_frames)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "%s: frame %lld is outside [0, %lld)", v ? v->path : "video",
                          (long long)index, v ? (long long)v->info.n_frames : 0LL);
    int64_t target, limit, next = v->hint;
    double t = (double)index / v->info.fps;
    index_times(v, index, &target, &limit);
    v->hint = -1;
    mt_status st;
    /* frames another index might need were skipped for the one promised: only a seek decodes them */
    bool backward = (v->have_prev && v->prev->pts > limit) ||
                    (!v->have_prev && v->have_cur && v->cur->pts > limit) ||
                    (v->promised >= 0 && v->promised != index);
    v->promised = -1;
    if (backward || (!(v->have_cur && v->cur->pts > limit) && seek_pays(v, target)))
        if ((st = seek_to(v, target, err))) return st;
    /* the packets read ahead name the frame sought, and unreferenced frames shown before it are not decoded; when
     * they cannot, frames within a few intervals of the target are all decoded, so the last one shown by then
     * is there. With the next index known, the frames shown after this one and before the next one's are not
     * decoded either (the decoder takes a few packets past the frame sought before it gives it out). */
    v->skip_before = plan_skip(v, limit);
    if (v->skip_before == INT64_MIN) {
        v->skip_before = target - (int64_t)llround(SKIP_MARGIN_FRAMES / v->info.fps / v->tb);
    } else if (next > index && next < v->info.n_frames) {
        int64_t next_target, next_limit;
        index_times(v, next, &next_target, &next_limit);
        v->skip_until = plan_skip(v, next_limit);
        if (v->skip_until != INT64_MIN) {
            v->skip_after = limit;
            v->promised = next;
        }
    }
    while (!v->eof && !(v->have_cur && v->cur->pts > limit))
        if ((st = decode_next(v, err))) return st;
    v->skip_before = v->skip_until = INT64_MIN;
    v->skip_after = INT64_MAX;
    const AVFrame *f;
    if (!v->have_cur) {
        return mt_err_set(err, MT_ERR_FORMAT, "%s: no frame could be decoded at or after %.3f s", v->path, t);
    } else if (v->cur->pts <= limit) {
        double last = (double)(v->cur->pts - v->start_pts) * v->tb;
        if (t > last + 2.0 / v->info.fps + 0.1)
            return mt_err_set(err, MT_ERR_FORMAT,
                              "%s: the video ends at %.3f s, before frame %lld at %.3f s that its header (%lld "
                              "frames, %.3f s) promises: truncated, or a wrong header",
                              v->path, last, (long long)index, t, (long long)v->info.n_frames, v->info.duration);
        f = v->cur;
    } else {
        f = v->have_prev ? v->prev : v->cur;
    }
    return to_rgb(v, f, index, out, err);
}
