/* serve/server: mitten's OpenAI-compatible HTTP server over one loaded model (libmicrohttpd, a thread per
 * connection; the engine's scheduler batches every request's decoding into one forward).
 *
 *     mt_server *s;  mt_server_start(model, &params, &s, err);   // listening when it returns
 *     ... until SIGINT / SIGTERM ...
 *     mt_server_stop(s, 30);   // no new requests; running ones get up to 30 s to end, then are cut
 *
 * Browsers: with params.cors, answers carry Access-Control-Allow-Origin for the Origins it allows, and OPTIONS
 * preflights are answered (Authorization and Content-Type may be sent); without it, pages on other origins cannot
 * read answers, so a web page a user visits cannot drive a server on their machine.
 *
 * Endpoints: POST /v1/chat/completions, POST /v1/completions (streamed as OpenAI's server-sent events when
 * "stream" is true), GET /v1/models, GET /v1/models/{id}, GET /health, and the chat page at /.
 *
 * Errors are OpenAI's error object ({"error": {"message", "type", "param", "code"}}) with the matching status:
 * 400 a bad request, 401 a missing or wrong key, 404 an unknown path or model, 405 a wrong method, 413 a body over
 * the limit, 429 a full queue (with Retry-After), 500 a failure inside, 503 while shutting down. */
#ifndef MT_SERVER_H
#define MT_SERVER_H

#include "engine/sched.h"
#include "serve/oai_request.h"

typedef struct mt_server mt_server;

typedef struct mt_server_params {
    const char *host;          /* numeric IPv4 or IPv6 address; NULL: 127.0.0.1 */
    int port;                  /* 0: any free port (mt_server_port says which) */
    const char *api_key;       /* NULL: no key needed */
    const char *model_id;      /* the name /v1/models lists and requests may give */
    mt_sched_params sched;     /* --parallel, --ctx, threads */
    mt_oai_limits limits;      /* allow_files: as given; the server resolves it */
    size_t max_body;           /* request body bytes; 0: 64 MiB */
    double request_seconds;    /* longest a request may take, prompt and answer; 0: 600 */
    unsigned idle_seconds;     /* a connection silent this long while sending its request is closed; 0: 30 */
    unsigned max_connections;  /* 0: 256 */
    bool quiet;                /* no log line per request */
    const char *cors;          /* Origins whose pages may call the API (comma-separated, "*": any); NULL: none */
} mt_server_params;

mt_status mt_server_start(const mt_model *m, const mt_server_params *p, mt_server **out, mt_err *err);
int mt_server_port(const mt_server *s);
/* The scheduler's settings with the defaults filled in. */
const mt_sched_params *mt_server_sched_params(const mt_server *s);
/* Stops taking requests (new ones get 503), waits up to grace seconds for those running, cancels the rest (their
 * streams still end with a finish_reason and [DONE]), then frees everything. */
void mt_server_stop(mt_server *s, double grace);

#endif
