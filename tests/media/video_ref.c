/* video_ref: the decoding half of the video tests, driven by video_ref.py.
 *
 *     video_ref info FILE                 prints "width height n_frames fps duration rotation"
 *     video_ref frames FILE OUT I1 I2...  writes frames I1, I2, ... (RGB8, concatenated) to OUT and prints
 *                                         "decoded N", the frames the decoder produced to reach them; each
 *                                         read is hinted (mt_video_hint_next) with the index after it, every
 *                                         other one falsely (one more), which must cost a seek, not a wrong frame
 *     video_ref sampled FILE OUT I1 I2... the same with every hint true, as the sampler gives them
 * Errors: the message on stderr, exit status 1.
 */
#include <stdio.h>
#include <stdlib.h>

#include "media/video.h"

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: video_ref info FILE | video_ref frames|sampled FILE OUT INDEX...\n");
        return 2;
    }
    mt_err err;
    mt_video *v;
    if (mt_video_open(argv[2], MT_VIDEO_DEFAULT_MAX_PIXELS, &v, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    const mt_video_info *in = mt_video_get_info(v);
    int rc = 0;
    if (argv[1][0] == 'i') {
        printf("%lld %lld %lld %.17g %.17g %d\n", (long long)in->width, (long long)in->height,
               (long long)in->n_frames, in->fps, in->duration, in->rotation);
    } else if (argc >= 4) {
        FILE *f = fopen(argv[3], "wb");
        for (int i = 4; f && i < argc && !rc; i++) {
            mt_image img;
            long long next = i + 1 < argc ? strtoll(argv[i + 1], NULL, 10) + (argv[1][0] == 'f' && i % 2) : -1;
            mt_video_hint_next(v, next);
            if (mt_video_read_frame(v, strtoll(argv[i], NULL, 10), &img, &err)) {
                fprintf(stderr, "%s\n", err.msg);
                rc = 1;
                break;
            }
            fwrite(img.rgb, 1, (size_t)(img.width * img.height * 3), f);
            mt_image_free(&img);
        }
        if (!f) rc = 1;
        else fclose(f);
        printf("decoded %lld\n", (long long)mt_video_frames_decoded(v));
    }
    mt_video_close(v);
    return rc;
}
