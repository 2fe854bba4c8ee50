/* engine: videos through the public API (mt_session_chat). A video by path and the same video by its bytes give the
 * same answer, and the bytes' temporary copy is gone afterwards; an image and a video in one message take their
 * placeholders in order; bad kinds and video settings are refused by name. A second turn takes the video's pixels
 * the first turn left in the session instead of decoding it again (mt_gen_stats.media_decoded / media_reused) and
 * answers as a fresh session does; the file rewritten (a new modification time) is decoded again.
 * usage: chat_video MODEL_DIR CLIP.mp4 PICTURE.png TMPDIR (TMPDIR empty; set as the process's $TMPDIR by the caller) */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "../unit/check.h"
#include "base/file.h"
#include "mitten.h"

typedef struct answer {
    char text[512];
    size_t n;
} answer;

static bool on_text(void *user, const char *t, size_t len) {
    answer *a = user;
    size_t k = len < sizeof a->text - 1 - a->n ? len : sizeof a->text - 1 - a->n;
    memcpy(a->text + a->n, t, k);
    a->n += k;
    a->text[a->n] = 0;
    return true;
}

static mt_status ask(mt_session *s, const mt_image_ref *refs, size_t n, answer *a, mt_err *err) {
    mt_session_reset(s);
    *a = (answer){0};
    mt_message msg = {.role = "user", .text = "What colour is the shape?", .images = refs, .n_images = n};
    mt_gen_params gp = mt_gen_params_default();
    gp.max_new_tokens = 8;
    return mt_session_chat(s, &msg, 1, &gp, on_text, a, NULL, err);
}

static mt_status turn(mt_session *s, const mt_message *msgs, size_t n, answer *a, mt_gen_stats *gs, mt_err *err) {
    *a = (answer){0};
    mt_gen_params gp = mt_gen_params_default();
    gp.max_new_tokens = 8;
    return mt_session_chat(s, msgs, n, &gp, on_text, a, gs, err);
}

/* Two turns about the clip in one session: the second must not decode it again. */
static void second_turn(mt_session *s, const char *clip) {
    mt_err err;
    mt_gen_stats gs;
    answer first, second, fresh, changed;
    mt_image_ref ref = {.path = clip, .kind = MT_MEDIA_VIDEO};
    mt_message conv[3] = {{.role = "user", .text = "What colour is the shape?", .images = &ref, .n_images = 1},
                          {.role = "assistant"},
                          {.role = "user", .text = "And where is it?"}};
    mt_session_reset(s);
    CHECK_MSG(!turn(s, conv, 1, &first, &gs, &err), "turn 1: %s", err.msg);
    CHECK_MSG(gs.media_decoded == 1 && gs.media_reused == 0, "turn 1: %lld decoded, %lld reused",
              (long long)gs.media_decoded, (long long)gs.media_reused);
    conv[1].text = first.text;
    CHECK_MSG(!turn(s, conv, 3, &second, &gs, &err), "turn 2: %s", err.msg);
    CHECK_MSG(gs.media_decoded == 0 && gs.media_reused == 1, "turn 2: %lld decoded, %lld reused",
              (long long)gs.media_decoded, (long long)gs.media_reused);
    CHECK_MSG(gs.reused_tokens > 0, "turn 2 reused no KV cache");
    mt_session_reset(s);
    CHECK_MSG(!turn(s, conv, 3, &fresh, &gs, &err), "fresh: %s", err.msg);
    CHECK_MSG(gs.media_decoded == 1 && gs.media_reused == 0, "after a reset: %lld decoded, %lld reused",
              (long long)gs.media_decoded, (long long)gs.media_reused);
    CHECK_MSG(second.n > 0 && strcmp(second.text, fresh.text) == 0, "turn 2 \"%s\", a fresh session \"%s\"",
              second.text, fresh.text);
    struct timespec old[2] = {{.tv_sec = 1000000000}, {.tv_sec = 1000000000}};
    CHECK_MSG(utimensat(AT_FDCWD, clip, old, 0) == 0, "cannot set the modification time of %s", clip);
    CHECK_MSG(!turn(s, conv, 3, &changed, &gs, &err), "rewritten: %s", err.msg);
    CHECK_MSG(gs.media_decoded == 1 && gs.media_reused == 0, "a rewritten file: %lld decoded, %lld reused",
              (long long)gs.media_decoded, (long long)gs.media_reused);
}

static int entries(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += e->d_name[0] != '.';
    if (d) closedir(d);
    return n;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: chat_video MODEL_DIR CLIP.mp4 PICTURE.png TMPDIR\n");
        return 2;
    }
    const char *clip = argv[2], *picture = argv[3], *tmp = argv[4];
    mt_err err;
    mt_model *m = NULL;
    mt_session *s = NULL;
    mt_status st = mt_model_open(argv[1], &m, &err);
    CHECK_MSG(st == MT_OK, "open: %s", err.msg);
    if (!st) st = mt_session_new(m, NULL, &s, &err);
    CHECK_MSG(st == MT_OK, "session: %s", err.msg);
    char *bytes = NULL;
    size_t size = 0;
    CHECK_MSG(!mt_file_read_all(clip, (size_t)1 << 26, &bytes, &size, &err), "%s", err.msg);
    if (st || !bytes) return check_report();

    answer by_path, by_bytes, pic, both;
    mt_image_ref path_ref = {.path = clip, .kind = MT_MEDIA_VIDEO};
    mt_image_ref bytes_ref = {.data = bytes, .size = size, .kind = MT_MEDIA_VIDEO};
    CHECK_MSG(!ask(s, &path_ref, 1, &by_path, &err), "by path: %s", err.msg);
    CHECK_MSG(!ask(s, &bytes_ref, 1, &by_bytes, &err), "by bytes: %s", err.msg);
    CHECK_MSG(by_path.n > 0 && strcmp(by_path.text, by_bytes.text) == 0, "by path \"%s\", by bytes \"%s\"",
              by_path.text, by_bytes.text);
    CHECK_MSG(entries(tmp) == 0, "%d file(s) left in %s", entries(tmp), tmp);

    /* a still clip of the picture: the picture's answer, with the image first and the video second */
    mt_image_ref image_ref = {.path = picture};
    CHECK_MSG(!ask(s, &image_ref, 1, &pic, &err), "picture: %s", err.msg);
    CHECK_MSG(strcmp(pic.text, by_path.text) == 0, "picture \"%s\", its still clip \"%s\"", pic.text, by_path.text);
    mt_image_ref mixed[2] = {image_ref, path_ref};
    CHECK_MSG(!ask(s, mixed, 2, &both, &err), "image and video: %s", err.msg);

    mt_image_ref odd = {.path = clip, .kind = (mt_media_kind)7};
    st = ask(s, &odd, 1, &both, &err);
    CHECK_MSG(st == MT_ERR_INVALID_ARG && strstr(err.msg, "kind 7"), "kind 7: %s", err.msg);
    second_turn(s, clip);
    mt_image_ref empty = {.kind = MT_MEDIA_VIDEO};
    st = ask(s, &empty, 1, &both, &err);
    CHECK_MSG(st == MT_ERR_INVALID_ARG && strstr(err.msg, "video 1: no path and no bytes"), "empty: %s", err.msg);
    mt_image_ref junk = {.data = "not a video", .size = 11, .kind = MT_MEDIA_VIDEO};
    st = ask(s, &junk, 1, &both, &err);
    CHECK_MSG(st != MT_OK && strstr(err.msg, "video 1") && !strstr(err.msg, tmp), "junk bytes: %s", err.msg);
    CHECK_MSG(entries(tmp) == 0, "%d file(s) left in %s after a failure", entries(tmp), tmp);
    mt_session_free(s);
    mt_model_close(m);

    mt_model_params mp = {.video = {.fps = -1}};
    st = mt_model_open_params(argv[1], &mp, &m, &err);
    CHECK_MSG(st == MT_OK, "open: %s", err.msg);
    if (!st) st = mt_session_new(m, NULL, &s, &err);
    if (!st) {
        st = ask(s, &path_ref, 1, &both, &err);
        CHECK_MSG(st == MT_ERR_INVALID_ARG && strstr(err.msg, "fps -1"), "fps -1: %s", err.msg);
    }
    mt_session_free(s);
    mt_model_close(m);
    mt_free(bytes);
    return check_report();
}
