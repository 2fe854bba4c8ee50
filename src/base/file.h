/* base/file: read-only file mapping, bounded whole-file reads, paths. */
#ifndef MT_FILE_H
#define MT_FILE_H

#include <stdio.h>

#include "base/base.h"

typedef struct mt_mapping {
    const uint8_t *data; /* NULL for an empty file */
    size_t size;
    int fd; /* the file, kept open for mt_mapping_copy; meaningful only while data is not NULL */
} mt_mapping;

/* Maps path read-only. MT_ERR_IO names the path and the errno text. Unmap with mt_file_unmap. */
mt_status mt_file_map(const char *path, mt_mapping *out, mt_err *err);
void mt_file_unmap(mt_mapping *m);
/* Whether [p, p + n) lies wholly in m. */
bool mt_mapping_holds(const mt_mapping *m, const void *p, size_t n);
/* Copies [p, p + n), which m holds, to dst by reading the file (pread), not through the mapping: that maps no page
 * of it into this process (about 7x faster than memcpy from a fresh mapping in a VM where each page fault exits to
 * the hypervisor). Falls back to memcpy where a read fails. */
void mt_mapping_copy(const mt_mapping *m, const void *p, size_t n, void *dst);
/* Drops the pages wholly inside [p, p + n), which must lie in a read-only mapping of mt_file_map, from this process's
 * memory (MADV_DONTNEED): touched again, they are read from the file. Best effort: nothing happens on failure. */
void mt_file_drop_pages(const void *p, size_t n);

/* Reads a whole file into a NUL-terminated buffer the caller frees with mt_free. Files over max_size bytes give
 * MT_ERR_LIMIT without reading them. */
mt_status mt_file_read_all(const char *path, size_t max_size, char **out, size_t *out_len, mt_err *err);

/* Reads f (stdin, a pipe) to its end into a NUL-terminated buffer the caller frees with mt_free; what names it in
 * errors. More than max_size bytes give MT_ERR_LIMIT. */
mt_status mt_file_read_stream(FILE *f, const char *what, size_t max_size, char **out, size_t *out_len, mt_err *err);

/* Writes data to path atomically: a temporary file beside it, fsync, rename. The old file stays intact on error. */
mt_status mt_file_write_atomic(const char *path, const void *data, size_t size, mt_err *err);

bool mt_file_exists(const char *path);
/* MT_OK when path is a regular file; MT_ERR_IO saying "no such file", "is a directory", "is a named pipe"... */
mt_status mt_file_check_regular(const char *path, mt_err *err);
/* Creates folder path (its parent must exist); an existing folder is fine. MT_ERR_IO naming path otherwise. */
mt_status mt_dir_make(const char *path, mt_err *err);
/* Creates folder path and any missing parents, as `mkdir -p` and Python's os.makedirs(exist_ok=True) do. MT_ERR_IO
 * names the first folder that could not be made (or a file standing where a folder must be). */
mt_status mt_dir_make_all(const char *path, mt_err *err);

/* dir + "/" + name into buf; MT_ERR_LIMIT when it does not fit. */
mt_status mt_path_join(char *buf, size_t cap, const char *dir, const char *name, mt_err *err);

#endif
