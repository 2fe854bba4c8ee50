/* io: helpers shared by the writers of this module (safetensors, npy). Not part of the public API.
 *
 * mt_outfile streams a file that appears at its final path only when complete: bytes go to "PATH.tmp.PID" beside
 * it, and commit fsyncs and renames it over PATH, so a crash or an error never leaves a half-written checkpoint
 * under the real name. mt_strbuf is a growable NUL-terminated byte string for headers built piece by piece.
 */
#ifndef MT_IO_INT_H
#define MT_IO_INT_H

#include "base/base.h"

typedef struct mt_outfile {
    int fd;
    const char *path; /* borrowed; must outlive the outfile */
    char tmp[4096];
} mt_outfile;

/* Creates the temporary file. On failure nothing is left on disk. */
mt_status mt_outfile_open(mt_outfile *f, const char *path, mt_err *err);
/* Writes all n bytes (retrying short writes). On failure the caller still calls mt_outfile_abort. */
mt_status mt_outfile_write(mt_outfile *f, const void *data, size_t n, mt_err *err);
/* fsync, close, rename over the final path. On failure the temporary file is removed. */
mt_status mt_outfile_commit(mt_outfile *f, mt_err *err);
/* Like commit, but never replaces a file already at the final path: then MT_ERR_IO saying it exists, and the
 * temporary file is removed. link(2) makes the check and the rename one step, so a file that appears meanwhile is
 * not overwritten either. */
mt_status mt_outfile_commit_new(mt_outfile *f, mt_err *err);
/* Closes and removes the temporary file; safe after a failed open or a commit. */
void mt_outfile_abort(mt_outfile *f);

typedef struct mt_strbuf {
    char *s;    /* NUL-terminated once anything was appended; owned */
    size_t len; /* bytes before the NUL */
    size_t cap;
    bool oom;   /* an append failed: the content is incomplete */
} mt_strbuf;

/* Appends; on allocation failure sets oom and ignores this and later appends. Check oom once at the end. */
void mt_strbuf_append(mt_strbuf *b, const char *s, size_t n);
void mt_strbuf_printf(mt_strbuf *b, const char *fmt, ...) MT_PRINTF(2, 3);
/* Appends s as a JSON string literal with its quotes: '"', '\\' and control bytes are escaped, and U+0000 in base/json's
 * form (C0 80, as names read from a header hold it) is written \u0000; other bytes are kept. */
void mt_strbuf_json_string(mt_strbuf *b, const char *s);
void mt_strbuf_free(mt_strbuf *b);

/* safetensors reader internals, shared by safetensors.c (one file) and safetensors_dir.c (a model directory).
 * A handle is built by adding files one after another, then indexed: mt_st_index sorts the names for lookup and
 * rejects a name that appears twice anywhere. Whatever was added stays owned by the handle, also after an error,
 * so mt_safetensors_close releases it. */
typedef struct mt_safetensors mt_safetensors;
mt_status mt_st_create(const char *where, mt_safetensors **out, mt_err *err);
/* Maps path and parses it. */
mt_status mt_st_add_file(mt_safetensors *st, const char *path, mt_err *err);
/* Parses a borrowed in-memory image named name. */
mt_status mt_st_add_buffer(mt_safetensors *st, const char *name, const uint8_t *buf, size_t size, mt_err *err);
mt_status mt_st_index(mt_safetensors *st, mt_err *err);

#endif
