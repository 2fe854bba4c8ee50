/* serve/web_assets: the chat page of `mitten serve`, compiled into the binary.
 *
 * The files of src/serve/web/ become byte arrays at build time (src/serve/web_embed.cmake writes
 * <build>/generated/web_assets_data.c), so the server needs no files beside the binary and the page loads nothing
 * from outside its own origin. The arrays hold the files byte for byte; they are not NUL-terminated.
 *
 * Usage, in a request handler:
 *     const unsigned char *body; size_t len; const char *mime;
 *     if (mt_web_asset(path, &body, &len, &mime)) send 200 with Content-Type: mime
 *     else send 404
 */
#ifndef MT_WEB_ASSETS_H
#define MT_WEB_ASSETS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    const char *name; /* file name in src/serve/web/, e.g. "app.js" */
    const unsigned char *data;
    size_t len;
} mt_web_file;

/* The embedded files, sorted by name (generated). */
extern const mt_web_file mt_web_files[];
extern const size_t mt_web_file_count;

/* Looks up the asset an HTTP GET path names: "/" is index.html, "/app.js" is app.js; a query string or fragment
 * ("/app.js?v=2") is ignored. Only top-level file names match, so "/../x", "/web/app.js" and "app.js" (no slash)
 * are not found. On success sets *data, *len (static storage, never freed) and *mime (a Content-Type value with
 * a charset for text) and returns true; otherwise returns false and leaves the outputs unchanged. */
bool mt_web_asset(const char *path, const unsigned char **data, size_t *len, const char **mime);

#endif
