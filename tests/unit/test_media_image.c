/* media/image: decode round trips (and the name a decoded image keeps), paths that are not files, bad input (empty,
 * wrong magic, truncated, corrupt, bombs), allocation failure, resize invariants. Test images are encoded here with libpng, libjpeg and libwebp; the PIL comparison lives in
 * tests/media/ref_media.py. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>
#include <png.h>
#include <webp/encode.h>

#include "check.h"
#include "media/image.h"

typedef struct blob {
    uint8_t *data;
    size_t size;
} blob;

enum { W = 19, H = 13 };

static void make_rgb(uint8_t *rgb, int w, int h) {
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = rgb + (y * w + x) * 3;
            p[0] = (uint8_t)(x * 13 + y);
            p[1] = (uint8_t)(y * 19);
            p[2] = (uint8_t)(200 - x * 5 - y * 3);
        }
}

static blob encode_png(const uint8_t *rgb, int w, int h) {
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    im.width = (png_uint_32)w;
    im.height = (png_uint_32)h;
    im.format = PNG_FORMAT_RGB;
    png_alloc_size_t n = 0;
    png_image_write_to_memory(&im, NULL, &n, 0, rgb, 0, NULL);
    blob b = {malloc(n), n};
    png_image_write_to_memory(&im, b.data, &n, 0, rgb, 0, NULL);
    b.size = n;
    return b;
}

static blob encode_jpeg(const uint8_t *rgb, int w, int h, int progressive) {
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    unsigned char *buf = NULL;
    unsigned long n = 0;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &buf, &n);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 95, TRUE);
    if (progressive) jpeg_simple_progression(&c);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(rgb + c.next_scanline * (size_t)w * 3);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    blob b = {malloc(n), n};
    memcpy(b.data, buf, n);
    free(buf);
    return b;
}

static blob encode_webp(const uint8_t *rgb, int w, int h) {
    uint8_t *out = NULL;
    size_t n = WebPEncodeLosslessRGB(rgb, w, h, w * 3, &out);
    blob b = {malloc(n), n};
    memcpy(b.data, out, n);
    WebPFree(out);
    return b;
}

static uint32_t crc32_of(const uint8_t *p, size_t n) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
    }
    return ~c;
}

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void test_round_trips(void) {
    uint8_t rgb[W * H * 3];
    make_rgb(rgb, W, H);
    blob png = encode_png(rgb, W, H), webp = encode_webp(rgb, W, H), jpg = encode_jpeg(rgb, W, H, 0),
         pjpg = encode_jpeg(rgb, W, H, 1);
    blob all[] = {png, webp, jpg, pjpg};
    for (int i = 0; i < 4; i++) {
        mt_image img = {0};
        mt_err err;
        CHECK_MSG(mt_image_decode(all[i].data, all[i].size, "x", 1000, &img, &err) == MT_OK, "%d: %s", i, err.msg);
        CHECK(img.width == W && img.height == H && img.rgb && img.name && !strcmp(img.name, "x"));
        int maxd = 0;
        for (int k = 0; img.rgb && k < W * H * 3; k++) maxd = MT_MAX(maxd, abs(img.rgb[k] - rgb[k]));
        /* Lossless formats are exact; JPEG at quality 95 stays close on this smooth-ish pattern. */
        CHECK_MSG(i < 2 ? maxd == 0 : maxd < 24, "format %d: max diff %d", i, maxd);
        mt_image_free(&img);
        CHECK(img.rgb == NULL && img.name == NULL);
        mt_image_free(&img);
    }
    mt_image_free(NULL);
    for (int i = 0; i < 4; i++) free(all[i].data);
}

/* Every cut of a valid file must fail cleanly (except cuts that only lose trailing chunks PIL also ignores), and
 * every corrupted copy must either decode or fail with a message. */
static void test_truncated_and_corrupt(void) {
    uint8_t rgb[W * H * 3];
    make_rgb(rgb, W, H);
    blob files[] = {encode_png(rgb, W, H), encode_webp(rgb, W, H), encode_jpeg(rgb, W, H, 0),
                    encode_jpeg(rgb, W, H, 1)};
    const char *names[] = {"cut.png", "cut.webp", "cut.jpg", "cutp.jpg"};
    for (int f = 0; f < 4; f++) {
        blob b = files[f];
        int unexpected_ok = 0, bad_msg = 0;
        for (size_t n = 0; n < b.size; n++) {
            uint8_t *copy = malloc(n ? n : 1);
            memcpy(copy, b.data, n);
            mt_image img = {7, 7, NULL, NULL};
            mt_err err = {0};
            mt_status st = mt_image_decode(copy, n, names[f], 1000, &img, &err);
            /* PNG's IEND (12 bytes) and JPEG's EOI (2 bytes) follow the last pixel. */
            size_t tail = f == 0 ? 12 : f >= 2 ? 2 : 0;
            if (st == MT_OK) {
                if (n + tail < b.size) unexpected_ok++;
                mt_image_free(&img);
            } else {
                bad_msg += st != MT_ERR_FORMAT || !strstr(err.msg, names[f]) || img.width != 7 || img.rgb;
            }
            free(copy);
        }
        CHECK_MSG(unexpected_ok == 0, "%s: %d truncated copies decoded", names[f], unexpected_ok);
        CHECK_MSG(bad_msg == 0, "%s: %d failures without a FORMAT error naming the file", names[f], bad_msg);

        uint32_t seed = 12345u + (uint32_t)f;
        uint8_t *copy = malloc(b.size);
        for (int round = 0; round < 300; round++) {
            memcpy(copy, b.data, b.size);
            for (int k = 0; k < 1 + round % 4; k++) {
                seed = seed * 1103515245u + 12345u;
                size_t pos = (seed >> 8) % b.size;
                copy[pos] ^= (uint8_t)(1u << ((seed >> 4) % 8));
            }
            mt_image img = {0};
            mt_err err = {0};
            mt_status st = mt_image_decode(copy, b.size, names[f], 1000, &img, &err);
            CHECK(st == MT_OK ? img.rgb && img.width * img.height <= 1000 : err.msg[0] != 0 && img.rgb == NULL);
            mt_image_free(&img);
        }
        free(copy);
        free(b.data);
    }
}

static void expect_status(const uint8_t *data, size_t n, int64_t max_pixels, mt_status want, const char *text) {
    mt_image img = {0};
    mt_err err = {0};
    mt_alloc_fail_after(0);
    mt_status st = mt_image_decode(data, n, "bomb.img", max_pixels, &img, &err);
    size_t allocs = mt_alloc_fail_after(0);
    CHECK_MSG(st == want, "%s: status %d, want %d (%s)", text, st, want, err.msg);
    CHECK_MSG(strstr(err.msg, "bomb.img") != NULL, "%s: message does not name the input: %s", text, err.msg);
    if (want == MT_ERR_LIMIT) CHECK_MSG(allocs == 0, "%s: %zu allocations before refusing", text, allocs);
    mt_image_free(&img);
}

static void test_bad_input(void) {
    mt_image img = {0};
    mt_err err;
    CHECK(mt_image_decode(NULL, 0, "empty.png", 100, &img, &err) == MT_ERR_FORMAT && strstr(err.msg, "empty.png"));
    CHECK(mt_image_decode((const uint8_t *)"x", 1, "a", 0, &img, &err) == MT_ERR_INVALID_ARG);
    CHECK(mt_image_decode(NULL, 5, "a", 10, &img, &err) == MT_ERR_INVALID_ARG);
    const char *text = "hello, this is not an image";
    expect_status((const uint8_t *)text, strlen(text), 100, MT_ERR_FORMAT, "text");
    expect_status((const uint8_t *)"GIF89a\1\0\1\0", 10, 100, MT_ERR_UNSUPPORTED, "gif");
    expect_status((const uint8_t *)"BM\0\0\0\0", 6, 100, MT_ERR_UNSUPPORTED, "bmp");
    expect_status((const uint8_t *)"\x89PNG\r\n\x1a\n", 8, 100, MT_ERR_FORMAT, "png signature only");
    expect_status((const uint8_t *)"\xff\xd8\xff", 3, 100, MT_ERR_FORMAT, "jpeg magic only");
    expect_status((const uint8_t *)"RIFF\0\0\0\0WEBP", 12, 100, MT_ERR_FORMAT, "webp magic only");

    /* A PNG whose header claims 100000 x 100000 (valid CRC). */
    uint8_t png[8 + 25 + 12];
    memcpy(png, "\x89PNG\r\n\x1a\n", 8);
    put_be32(png + 8, 13);
    memcpy(png + 12, "IHDR", 4);
    put_be32(png + 16, 100000);
    put_be32(png + 20, 100000);
    memcpy(png + 24, "\x08\x02\x00\x00\x00", 5);
    put_be32(png + 29, crc32_of(png + 12, 17));
    memcpy(png + 33, "\0\0\0\0IEND\xae\x42\x60\x82", 12);
    expect_status(png, sizeof png, MT_IMAGE_DEFAULT_MAX_PIXELS, MT_ERR_LIMIT, "png bomb");
    put_be32(png + 16, 0);
    put_be32(png + 29, crc32_of(png + 12, 17));
    expect_status(png, sizeof png, 100, MT_ERR_FORMAT, "png zero width");

    /* Real files with their size fields raised. */
    uint8_t rgb[W * H * 3];
    make_rgb(rgb, W, H);
    blob jpg = encode_jpeg(rgb, W, H, 0);
    for (size_t i = 2; i + 9 < jpg.size; i++)
        if (jpg.data[i] == 0xff && jpg.data[i + 1] == 0xc0) {
            jpg.data[i + 5] = jpg.data[i + 7] = 0xfd; /* height, width = 65000 */
            jpg.data[i + 6] = jpg.data[i + 8] = 0xe8;
            break;
        }
    expect_status(jpg.data, jpg.size, MT_IMAGE_DEFAULT_MAX_PIXELS, MT_ERR_LIMIT, "jpeg bomb");
    free(jpg.data);
    blob webp = encode_webp(rgb, W, H);
    CHECK(webp.size > 25 && memcmp(webp.data + 12, "VP8L", 4) == 0);
    uint32_t bits = (uint32_t)webp.data[21] | (uint32_t)webp.data[22] << 8 | (uint32_t)webp.data[23] << 16 |
                    (uint32_t)webp.data[24] << 24;
    bits = (bits & 0xf0000000u) | 0x3fffu | 0x3fffu << 14; /* 16384 x 16384 */
    for (int k = 0; k < 4; k++) webp.data[21 + k] = (uint8_t)(bits >> (8 * k));
    expect_status(webp.data, webp.size, MT_IMAGE_DEFAULT_MAX_PIXELS, MT_ERR_LIMIT, "webp bomb");
    free(webp.data);

    /* Genuine small files over a small max_pixels. */
    blob small[] = {encode_png(rgb, W, H), encode_jpeg(rgb, W, H, 0), encode_webp(rgb, W, H)};
    for (int i = 0; i < 3; i++) {
        expect_status(small[i].data, small[i].size, W * H - 1, MT_ERR_LIMIT, "max_pixels");
        free(small[i].data);
    }

    CHECK(mt_image_load("/nonexistent/dir/x.png", 100, &img, &err) == MT_ERR_IO && strstr(err.msg, "x.png"));
    /* what the path is instead of a file, as `cat` would say */
    CHECK(mt_image_load("/", 100, &img, &err) == MT_ERR_IO && !strcmp(err.msg, "/: is a directory, not a file"));
    CHECK_MSG(mt_image_load("/dev/zero", 100, &img, &err) == MT_ERR_IO &&
                  !strcmp(err.msg, "/dev/zero: is a character device, not a regular file"),
              "%s", err.msg);
    char fifo[] = "/tmp/mt_test_image_fifo_XXXXXX";
    int fd = mkstemp(fifo);
    CHECK(fd >= 0);
    close(fd);
    remove(fifo);
    CHECK(mkfifo(fifo, 0600) == 0);
    CHECK(mt_image_load(fifo, 100, &img, &err) == MT_ERR_IO &&
          strstr(err.msg, "is a named pipe (FIFO), not a regular file"));
    remove(fifo);
    CHECK(img.rgb == NULL && img.name == NULL);
}

typedef mt_status (*resize_fn)(const mt_image *, int64_t, int64_t, mt_image *, mt_err *);
static const resize_fn resizes[2] = {mt_image_resize_bicubic, mt_image_resize_bicubic_torch};

static void test_alloc_failures(void) {
    uint8_t rgb[W * H * 3];
    make_rgb(rgb, W, H);
    blob files[] = {encode_png(rgb, W, H), encode_webp(rgb, W, H), encode_jpeg(rgb, W, H, 1)};
    for (int f = 0; f < 3; f++) {
        int k, bad = 0;
        for (k = 1; k < 20; k++) {
            mt_image img = {0};
            mt_err err;
            mt_alloc_fail_after((size_t)k);
            mt_status st = mt_image_decode(files[f].data, files[f].size, "x", 1000, &img, &err);
            mt_alloc_fail_after(0);
            mt_image_free(&img);
            if (st == MT_OK) break;
            bad += st != MT_ERR_NOMEM;
        }
        CHECK_MSG(bad == 0 && k < 20, "file %d: %d wrong statuses, k %d", f, bad, k);
        free(files[f].data);
    }
    mt_image src = {W, H, rgb, NULL};
    const int64_t targets[][2] = {{7, 30}, {7, H}, {W, 30}};
    for (int r = 0; r < 2; r++)
        for (size_t t = 0; t < MT_ARRAY_LEN(targets); t++) {
            int k, bad = 0;
            for (k = 1; k < 20; k++) {
                mt_image out = {0};
                mt_err err;
                mt_alloc_fail_after((size_t)k);
                mt_status st = resizes[r](&src, targets[t][0], targets[t][1], &out, &err);
                mt_alloc_fail_after(0);
                mt_image_free(&out);
                if (st == MT_OK) break;
                bad += st != MT_ERR_NOMEM;
            }
            CHECK_MSG(bad == 0 && k > 1 && k < 20, "resize %d to %lldx%lld: %d wrong statuses, k %d", r,
                      (long long)targets[t][0], (long long)targets[t][1], bad, k);
        }
}

static void test_resize(resize_fn resize) {
    uint8_t rgb[W * H * 3];
    make_rgb(rgb, W, H);
    mt_image src = {W, H, rgb, NULL}, out = {0};
    mt_err err;
    CHECK(resize(&src, W, H, &out, &err) == MT_OK && memcmp(out.rgb, rgb, sizeof rgb) == 0);
    mt_image_free(&out);
    CHECK(resize(&src, 0, 5, &out, &err) == MT_ERR_INVALID_ARG && out.rgb == NULL && strstr(err.msg, "0x5"));
    CHECK(resize(&src, 5, -1, &out, &err) == MT_ERR_INVALID_ARG);
    CHECK(resize(&src, (int64_t)1 << 31, 5, &out, &err) == MT_ERR_INVALID_ARG);
    mt_image empty = {0, 0, NULL, NULL};
    CHECK(resize(&empty, 5, 5, &out, &err) == MT_ERR_INVALID_ARG);

    /* The normalised weights sum to 1 within rounding, so a flat image stays exactly flat. */
    uint8_t flat[W * H * 3];
    for (int i = 0; i < W * H; i++) memcpy(flat + 3 * i, "\x00\x80\xff", 3);
    mt_image fsrc = {W, H, flat, NULL};
    const int64_t sizes[][2] = {{1, 1}, {100, 3}, {4, 77}, {W, 50}, {3, H}, {257, 129}};
    for (size_t s = 0; s < MT_ARRAY_LEN(sizes); s++) {
        CHECK(resize(&fsrc, sizes[s][0], sizes[s][1], &out, &err) == MT_OK);
        int ok = out.width == sizes[s][0] && out.height == sizes[s][1];
        for (int64_t i = 0; ok && i < out.width * out.height; i++) ok = memcmp(out.rgb + 3 * i, "\x00\x80\xff", 3) == 0;
        CHECK_MSG(ok, "flat image changed at size %lldx%lld", (long long)sizes[s][0], (long long)sizes[s][1]);
        mt_image_free(&out);
    }
}

int main(void) {
    test_round_trips();
    test_truncated_and_corrupt();
    test_bad_input();
    test_alloc_failures();
    test_resize(mt_image_resize_bicubic);
    test_resize(mt_image_resize_bicubic_torch);
    return check_report();
}
