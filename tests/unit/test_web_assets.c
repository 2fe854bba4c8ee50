/* serve/web_assets: every file of src/serve/web/ is embedded byte for byte under its name with its Content-Type,
 * "/" is index.html, and nothing else is found. MT_WEB_DIR (set in tests/serve/tests.cmake) is that folder. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "serve/web_assets.h"

static unsigned char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            unsigned char *grown = realloc(buf, cap *= 2);
            if (!grown) free(buf);
            buf = grown;
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

static const char *expected_mime(const char *name) {
    const char *dot = strrchr(name, '.');
    if (dot && strcmp(dot, ".html") == 0) return "text/html; charset=utf-8";
    if (dot && strcmp(dot, ".js") == 0) return "text/javascript; charset=utf-8";
    if (dot && strcmp(dot, ".css") == 0) return "text/css; charset=utf-8";
    return NULL;
}

static void test_every_file(void) {
    DIR *dir = opendir(MT_WEB_DIR);
    CHECK_MSG(dir != NULL, "cannot list %s", MT_WEB_DIR);
    if (!dir) return;
    size_t files = 0;
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (e->d_name[0] == '.') continue;
        files++;
        char path[4096], url[512];
        snprintf(path, sizeof path, "%s/%s", MT_WEB_DIR, e->d_name);
        snprintf(url, sizeof url, "/%s", e->d_name);
        size_t want_len = 0;
        unsigned char *want = read_all(path, &want_len);
        CHECK_MSG(want != NULL, "cannot read %s", path);
        const unsigned char *data = NULL;
        size_t len = 0;
        const char *mime = NULL;
        CHECK_MSG(mt_web_asset(url, &data, &len, &mime), "%s is not embedded", url);
        CHECK_MSG(want && data && len == want_len && memcmp(data, want, len) == 0,
                  "%s: embedded %zu bytes differ from the file's %zu", url, len, want_len);
        const char *mime_want = expected_mime(e->d_name);
        CHECK_MSG(mime && mime_want && strcmp(mime, mime_want) == 0, "%s: type %s", url, mime ? mime : "(none)");
        free(want);
    }
    closedir(dir);
    CHECK_MSG(files == mt_web_file_count, "%zu files in %s, %zu embedded", files, MT_WEB_DIR, mt_web_file_count);
    CHECK(files >= 3);
}

static void test_paths(void) {
    const unsigned char *index = NULL, *data = NULL;
    size_t index_len = 0, len = 0;
    const char *mime = NULL;
    CHECK(mt_web_asset("/", &index, &index_len, &mime) && strcmp(mime, "text/html; charset=utf-8") == 0);
    CHECK(mt_web_asset("/index.html", &data, &len, &mime) && data == index && len == index_len);
    CHECK(mt_web_asset("/?session=1", &data, &len, &mime) && data == index);
    CHECK(mt_web_asset("/app.js?v=2", &data, &len, &mime) && strcmp(mime, "text/javascript; charset=utf-8") == 0);
    CHECK(mt_web_asset("/style.css#x", &data, &len, &mime) && strcmp(mime, "text/css; charset=utf-8") == 0);

    const char *missing[] = {"/nope.js", "/app.js/", "/app", "app.js", "", "//", "/../index.html",
                             "/web/index.html", "/index.html.bak", "/INDEX.HTML", "/v1/models", "/.hidden"};
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++) {
        const unsigned char *d = (const unsigned char *)"unchanged";
        size_t l = 7;
        const char *m = "unchanged";
        CHECK_MSG(!mt_web_asset(missing[i], &d, &l, &m), "'%s' was found", missing[i]);
        CHECK_MSG(l == 7 && strcmp(m, "unchanged") == 0, "'%s' changed the outputs", missing[i]);
    }
    CHECK(!mt_web_asset(NULL, &data, &len, &mime));
}

int main(void) {
    test_every_file();
    test_paths();
    return check_report();
}
