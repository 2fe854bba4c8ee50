/* mitten: the Multimodal Instruction Tuning ENgine - public C API.
 *
 * Usage:
 *     mt_err err;
 *     mt_model *m = NULL;
 *     if (mt_model_load("Qwen2.5-VL-3B-Instruct/", &mt_load_params_default, &m, &err) != MT_OK)
 *         fprintf(stderr, "%s\n", err.msg);
 *
 * Every function that can fail returns an mt_status and, when given a non-NULL mt_err, writes a message that
 * names the file and the field at fault. Outputs are left unchanged on failure. Every *_free accepts NULL.
 * The header compiles as C and as C++.
 */
#ifndef MITTEN_H
#define MITTEN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MT_VERSION "0.1.0"

typedef enum mt_status {
    MT_OK = 0,
    MT_ERR_INVALID_ARG = 1, /* a caller passed something that cannot work */
    MT_ERR_IO = 2,          /* a file could not be opened, read, mapped or written */
    MT_ERR_FORMAT = 3,      /* a file or body is malformed: header, JSON, image, template */
    MT_ERR_NOMEM = 4,       /* an allocation failed */
    MT_ERR_UNSUPPORTED = 5, /* well-formed, but mitten does not handle it (architecture, dtype, ...) */
    MT_ERR_LIMIT = 6,       /* a size, count or value is over a safety limit */
    MT_ERR_INTERNAL = 7     /* a bug in mitten */
} mt_status;

#define MT_ERR_MSG_MAX 512

typedef struct mt_err {
    mt_status code;
    char msg[MT_ERR_MSG_MAX];
} mt_err;

/* A short constant name for a status ("format error", ...). */
const char *mt_status_name(mt_status s);

#ifdef __cplusplus
}
#endif

#endif
