/* engine: videos through the public API (mt_session_chat). A video by path and the same video by its bytes give the
 * same answer, and the bytes' temporary copy is gone afterwards; an image and a video in one message take their
 * placeholders in order; bad kinds and video settings are refused by name.
 * usage: chat_video MODEL_DIR CLIP.mp4 PICTURE.png TMPDIR (TMPDIR empty; set as the process's $TMPDIR by the caller) */
#include <dirent.h>
#include <stdio.h>
#include <string.h>

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
