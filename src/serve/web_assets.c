/* serve/web_assets: path lookup over the embedded page files (see web_assets.h). */
#include "serve/web_assets.h"

#include <string.h>

/* The types browsers need to run the page; text is UTF-8 (the files are written so). */
static const char *mime_of(const char *name) {
    static const struct {
        const char *ext, *mime;
    } types[] = {
        {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},   {".svg", "image/svg+xml"},
        {".png", "image/png"},                 {".ico", "image/x-icon"},
        {".json", "application/json"},
    };
    const char *dot = strrchr(name, '.');
    if (dot)
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (strcmp(dot, types[i].ext) == 0) return types[i].mime;
    return "application/octet-stream";
}

bool mt_web_asset(const char *path, const unsigned char **data, size_t *len, const char **mime) {
    if (!path || path[0] != '/') return false;
    const char *name = path + 1;
    size_t n = strcspn(name, "?#");
    if (n == 0) {
        name = "index.html";
        n = strlen(name);
    }
    for (size_t i = 0; i < mt_web_file_count; i++) {
        const mt_web_file *f = &mt_web_files[i];
        if (strlen(f->name) == n && memcmp(f->name, name, n) == 0) {
            *data = f->data;
            *len = f->len;
            *mime = mime_of(f->name);
            return true;
        }
    }
    return false;
}
