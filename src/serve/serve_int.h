/* serve/serve_int: what the server's files share (private to src/serve). server.c owns the HTTP side (routing,
 * limits, keys, logs); generate.c runs completion requests on the scheduler and writes their answers. */
#ifndef MT_SERVE_INT_H
#define MT_SERVE_INT_H

#include <microhttpd.h>
#include <pthread.h>
#include <time.h>

#include "base/buf.h"
#include "serve/server.h"

struct mt_server {
    const mt_model *m;
    mt_server_params p;
    char *allow_files; /* realpath of --allow-files */
    mt_sched *sched;
    struct MHD_Daemon *d;
    pthread_mutex_t mu;
    pthread_cond_t idle; /* signalled when a generation ends */
    int running;         /* requests past their headers, until their answer is sent (or the client left) */
    bool stopping;       /* new requests get 503 */
    bool cutting;        /* running requests are cancelled */
    time_t started;
    uint64_t next_id;
};

/* Sends an OpenAI error object. */
enum MHD_Result mt_serve_error(const mt_server *s, struct MHD_Connection *c, int http, const char *type,
                               const char *code, const char *param, const char *message);
/* Sends body [n] with status and content type; retry_after (or NULL) becomes the Retry-After header. */
enum MHD_Result mt_serve_reply(const mt_server *s, struct MHD_Connection *c, int http, const char *content_type,
                               const char *body, size_t n, const char *retry_after);
/* Adds the CORS headers a response to c's request gets (none unless --cors allows its Origin). */
void mt_serve_cors(const mt_server *s, struct MHD_Connection *c, struct MHD_Response *r);
/* The per-request log line. */
void mt_serve_log(const mt_server *s, const char *method, const char *url, int http, double seconds,
                  const char *detail);

/* POST /v1/chat/completions (chat) or /v1/completions: the whole request, its body read. */
enum MHD_Result mt_serve_generate(mt_server *s, struct MHD_Connection *c, const char *url, bool chat, const char *body,
                                  size_t n, double t0);

#endif
