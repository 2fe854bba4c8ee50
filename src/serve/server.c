/* serve/server: the HTTP side - libmicrohttpd's daemon, routing, body limits, the API key, logs and shutdown (see
 * server.h). Completion requests go to generate.c. */
#define _GNU_SOURCE
#include "base/json.h"
#include "serve/serve_int.h"
#include "serve/web_assets.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- replies ---- */

/* Whether origin is one of --cors's comma-separated origins (or --cors is "*"). Origins are compared whole and
 * exactly, as browsers send them (scheme://host[:port]). */
static bool origin_allowed(const mt_server *s, const char *origin) {
    const char *list = s->p.cors;
    if (!list || !origin || !*origin) return false;
    if (!strcmp(list, "*")) return true;
    size_t n = strlen(origin);
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len && *p == ' ') p++, len--;
        while (len && p[len - 1] == ' ') len--;
        if (len == n && !strncmp(p, origin, n)) return true;
        if (!end) break;
        p = end + 1;
    }
    return false;
}

void mt_serve_cors(const mt_server *s, struct MHD_Connection *c, struct MHD_Response *r) {
    if (!s->p.cors) return;
    const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    /* the answer depends on Origin whenever a list is configured, so caches must key on it */
    MHD_add_response_header(r, "Vary", "Origin");
    if (!origin_allowed(s, origin)) return;
    MHD_add_response_header(r, "Access-Control-Allow-Origin", strcmp(s->p.cors, "*") ? origin : "*");
}

enum MHD_Result mt_serve_reply(const mt_server *s, struct MHD_Connection *c, int http, const char *content_type,
                               const char *body, size_t n, const char *retry_after) {
    struct MHD_Response *r = MHD_create_response_from_buffer(n, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", content_type);
    if (retry_after) MHD_add_response_header(r, "Retry-After", retry_after);
    mt_serve_cors(s, c, r);
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)http, r);
    MHD_destroy_response(r);
    return ok;
}

enum MHD_Result mt_serve_error(const mt_server *s, struct MHD_Connection *c, int http, const char *type,
                               const char *code, const char *param, const char *message) {
    cJSON *root = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(root, "error");
    if (e) {
        cJSON_AddStringToObject(e, "message", message);
        cJSON_AddStringToObject(e, "type", type);
        if (param && *param) cJSON_AddStringToObject(e, "param", param);
        else cJSON_AddNullToObject(e, "param");
        if (code) cJSON_AddStringToObject(e, "code", code);
        else cJSON_AddNullToObject(e, "code");
    }
    char *text = e ? mt_json_print(root, false) : NULL;
    cJSON_Delete(root);
    static const char oom[] = "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\"}}";
    enum MHD_Result ok = text ? mt_serve_reply(s, c, http, "application/json", text, strlen(text), http == 429 ? "1" : NULL)
                              : mt_serve_reply(s, c, 500, "application/json", oom, sizeof oom - 1, NULL);
    mt_free(text);
    return ok;
}

void mt_serve_log(const mt_server *s, const char *method, const char *url, int http, double seconds,
                  const char *detail) {
    if (s->p.quiet) return;
    char when[32];
    time_t now = time(NULL);
    struct tm tm;
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", localtime_r(&now, &tm));
    fprintf(stderr, "%s %s %s %d %.2fs%s%s\n", when, method, url, http, seconds, detail && *detail ? " " : "",
            detail ? detail : "");
}

/* ---- small endpoints ---- */

static cJSON *model_object(const mt_server *s) {
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "id", s->p.model_id);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", (double)s->started);
    cJSON_AddStringToObject(m, "owned_by", "mitten");
    cJSON_AddNumberToObject(m, "max_model_len", (double)mt_sched_get_params(s->sched)->n_ctx);
    return m;
}

static enum MHD_Result send_json(const mt_server *s, struct MHD_Connection *c, int http, cJSON *v) {
    char *text = mt_json_print(v, false);
    cJSON_Delete(v);
    if (!text) return mt_serve_error(s, c, 500, "server_error", NULL, NULL, "out of memory");
    enum MHD_Result ok = mt_serve_reply(s, c, http, "application/json", text, strlen(text), NULL);
    mt_free(text);
    return ok;
}

static enum MHD_Result models(mt_server *s, struct MHD_Connection *c, const char *url, int *http) {
    if (!strcmp(url, "/v1/models")) {
        cJSON *list = cJSON_CreateObject();
        cJSON_AddStringToObject(list, "object", "list");
        cJSON *data = cJSON_AddArrayToObject(list, "data");
        cJSON_AddItemToArray(data, model_object(s));
        return send_json(s, c, 200, list);
    }
    const char *id = url + strlen("/v1/models/");
    if (strcmp(id, s->p.model_id)) {
        char msg[400];
        snprintf(msg, sizeof msg, "The model `%.200s` does not exist (this server serves `%.80s`)", id, s->p.model_id);
        return *http = 404, mt_serve_error(s, c, 404, "invalid_request_error", "model_not_found", "model", msg);
    }
    return send_json(s, c, 200, model_object(s));
}

/* ---- requests ---- */

/* What a connection keeps between libmicrohttpd's calls while its body arrives. */
typedef struct upload {
    mt_buf body;
    double t0;
} upload;

/* Compares the whole of a and b whatever they hold, so the time taken does not tell how much of a key was right. */
static bool same_secret(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    unsigned char diff = (unsigned char)(na != nb);
    for (size_t i = 0; i < na; i++) diff |= (unsigned char)(a[i] ^ b[nb ? i % nb : 0]);
    return diff == 0;
}

static bool authorized(const mt_server *s, struct MHD_Connection *c) {
    if (!s->p.api_key) return true;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (!h || strncmp(h, "Bearer ", 7)) return false;
    return same_secret(h + 7, s->p.api_key);
}

static bool is_generation(const char *url, bool *chat) {
    *chat = !strcmp(url, "/v1/chat/completions") || !strcmp(url, "/chat/completions");
    return *chat || !strcmp(url, "/v1/completions") || !strcmp(url, "/completions");
}

/* A browser's CORS preflight (before a cross-origin POST with JSON or an Authorization header): answered before the
 * key check, since browsers send it without credentials. An Origin --cors does not allow gets no Allow-Origin, and
 * the browser then refuses the real request. */
static enum MHD_Result preflight(const mt_server *s, struct MHD_Connection *c) {
    struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Allow", "GET, POST, OPTIONS");
    mt_serve_cors(s, c, r);
    if (origin_allowed(s, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin"))) {
        MHD_add_response_header(r, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
        MHD_add_response_header(r, "Access-Control-Allow-Headers", "Authorization, Content-Type");
        MHD_add_response_header(r, "Access-Control-Max-Age", "600");
    }
    enum MHD_Result ok = MHD_queue_response(c, 204, r);
    MHD_destroy_response(r);
    return ok;
}

/* The first call for a request: everything that can be answered before its body is read. NULL: go on reading. */
static enum MHD_Result early(mt_server *s, struct MHD_Connection *c, const char *url, const char *method, bool *done,
                             int *http) {
    *done = true;
    *http = 200;
    bool chat, gen = is_generation(url, &chat);
    if (!strcmp(method, "OPTIONS")) return preflight(s, c);
    if (!strcmp(url, "/health")) {
        static const char ok[] = "{\"status\":\"ok\"}";
        return mt_serve_reply(s, c, 200, "application/json", ok, sizeof ok - 1, NULL);
    }
    if (!authorized(s, c) && strncmp(url, "/v1/", 4) == 0)
        return *http = 401, mt_serve_error(s, c, 401, "invalid_request_error", "invalid_api_key", NULL,
                              "Incorrect API key provided (send it as Authorization: Bearer KEY)");
    if (gen && strcmp(method, "POST"))
        return *http = 405, mt_serve_error(s, c, 405, "invalid_request_error", NULL, NULL, "use POST");
    if (!gen && strcmp(method, "GET"))
        return *http = strncmp(url, "/v1/models", 10) ? 404 : 405, mt_serve_error(s, c, *http, "invalid_request_error", NULL, NULL,
                              "use GET");
    if (!gen) {
        if (!strcmp(url, "/v1/models") || !strncmp(url, "/v1/models/", 11)) return models(s, c, url, http);
        const unsigned char *page;
        size_t page_len;
        const char *mime;
        if (strncmp(url, "/v1/", 4) && mt_web_asset(url, &page, &page_len, &mime))
            return mt_serve_reply(s, c, 200, mime, (const char *)page, page_len, NULL);
        char msg[300];
        snprintf(msg, sizeof msg, "no endpoint %.200s (the API is under /v1)", url);
        return *http = 404, mt_serve_error(s, c, 404, "invalid_request_error", NULL, NULL, msg);
    }
    pthread_mutex_lock(&s->mu);
    bool stopping = s->stopping;
    pthread_mutex_unlock(&s->mu);
    if (stopping) return *http = 503, mt_serve_error(s, c, 503, "server_error", NULL, NULL, "the server is shutting down");
    const char *len = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    if (len && strtoull(len, NULL, 10) > s->p.max_body) {
        char msg[160];
        snprintf(msg, sizeof msg, "the request body of %s bytes is over this server's limit of %zu (--max-body)", len,
                 s->p.max_body);
        return *http = 413, mt_serve_error(s, c, 413, "invalid_request_error", NULL, NULL, msg);
    }
    *done = false;
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *data, size_t *data_size, void **con_cls) {
    (void)version;
    mt_server *s = cls;
    upload *u = *con_cls;
    if (!u) {
        bool done;
        int http;
        double t0 = mt_time_now();
        enum MHD_Result r = early(s, c, url, method, &done, &http);
        if (done) {
            mt_serve_log(s, method, url, http, mt_time_now() - t0, "");
            return r;
        }
        if (!(u = mt_calloc(1, sizeof *u))) return MHD_NO;
        u->t0 = t0;
        *con_cls = u;
        pthread_mutex_lock(&s->mu);
        s->running++;
        pthread_mutex_unlock(&s->mu);
        return MHD_YES;
    }
    if (*data_size) {
        /* a body without Content-Length that grows past the limit, or one that trickles in for minutes */
        if (u->body.n + *data_size > s->p.max_body || mt_time_now() - u->t0 > 4.0 * s->p.idle_seconds) return MHD_NO;
        mt_buf_add(&u->body, data, *data_size);
        *data_size = 0;
        return u->body.oom ? MHD_NO : MHD_YES;
    }
    bool chat;
    is_generation(url, &chat);
    return mt_serve_generate(s, c, url, chat, u->body.p ? u->body.p : "", u->body.n, u->t0);
}

/* The end of a request whose body was read, once its answer is sent or the connection is gone. */
static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode why) {
    (void)c, (void)why;
    mt_server *s = cls;
    upload *u = *con_cls;
    if (!u) return;
    mt_buf_free(&u->body);
    mt_free(u);
    *con_cls = NULL;
    pthread_mutex_lock(&s->mu);
    s->running--;
    pthread_cond_broadcast(&s->idle);
    pthread_mutex_unlock(&s->mu);
}

/* ---- lifecycle ---- */

static const mt_server_params defaults = {.max_body = (size_t)64 << 20, .request_seconds = 600, .idle_seconds = 30,
                                          .max_connections = 256};

static mt_status listen_address(const char *host, int port, struct sockaddr_storage *sa, bool *v6, mt_err *err) {
    memset(sa, 0, sizeof *sa);
    struct sockaddr_in *a4 = (struct sockaddr_in *)sa;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)sa;
    if (port < 0 || port > 65535) return mt_err_set(err, MT_ERR_INVALID_ARG, "--port %d is not a port", port);
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *v6 = false;
        return MT_OK;
    }
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *v6 = true;
        return MT_OK;
    }
    return mt_err_set(err, MT_ERR_INVALID_ARG, "--host %s is not a numeric IPv4 or IPv6 address (127.0.0.1, ::1, "
                      "0.0.0.0)", host);
}

mt_status mt_server_start(const mt_model *m, const mt_server_params *p, mt_server **out, mt_err *err) {
    if (!m->tok)
        return mt_err_set(err, MT_ERR_IO, "%s: no tokenizer.json or tokenizer.model, which serving needs", m->dir);
    mt_server *s = mt_calloc(1, sizeof *s);
    if (!s) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    s->m = m;
    s->p = *p;
    if (!s->p.host) s->p.host = "127.0.0.1";
    if (!s->p.max_body) s->p.max_body = defaults.max_body;
    if (!(s->p.request_seconds > 0)) s->p.request_seconds = defaults.request_seconds;
    if (!s->p.idle_seconds) s->p.idle_seconds = defaults.idle_seconds;
    if (!s->p.max_connections) s->p.max_connections = defaults.max_connections;
    s->started = time(NULL);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->idle, NULL);
    mt_status st = MT_OK;
    if (p->limits.allow_files) {
        s->allow_files = realpath(p->limits.allow_files, NULL);
        if (!s->allow_files) st = mt_err_set(err, MT_ERR_IO, "--allow-files %s: no such folder", p->limits.allow_files);
        s->p.limits.allow_files = s->allow_files;
    }
    struct sockaddr_storage sa;
    bool v6 = false;
    if (!st) st = listen_address(s->p.host, p->port, &sa, &v6, err);
    if (!st) st = mt_sched_new(m, &p->sched, &s->sched, err);
    if (!st) {
        unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG |
                         (v6 ? MHD_USE_IPv6 : 0);
        s->d = MHD_start_daemon(flags, (uint16_t)p->port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR,
                                (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_TIMEOUT, s->p.idle_seconds,
                                MHD_OPTION_CONNECTION_LIMIT, s->p.max_connections, MHD_OPTION_NOTIFY_COMPLETED,
                                on_completed, s, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 << 10, MHD_OPTION_END);
        if (!s->d) st = mt_err_set(err, MT_ERR_IO, "cannot listen on %s port %d (in use, or not an address of this "
                                   "machine)", s->p.host, p->port);
    }
    if (st) {
        mt_server_stop(s, 0);
        return st;
    }
    *out = s;
    return MT_OK;
}

int mt_server_port(const mt_server *s) {
    const union MHD_DaemonInfo *i = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    return i ? i->port : -1;
}

const mt_sched_params *mt_server_sched_params(const mt_server *s) { return mt_sched_get_params(s->sched); }

void mt_server_stop(mt_server *s, double grace) {
    if (!s) return;
    if (s->d) MHD_quiesce_daemon(s->d);
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    double until = mt_time_now() + grace;
    while (s->running > 0 && mt_time_now() < until) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
        pthread_cond_timedwait(&s->idle, &s->mu, &ts);
    }
    s->cutting = true;
    while (s->running > 0) pthread_cond_wait(&s->idle, &s->mu);
    pthread_mutex_unlock(&s->mu);
    if (s->d) MHD_stop_daemon(s->d);
    mt_sched_free(s->sched);
    free(s->allow_files);
    pthread_cond_destroy(&s->idle);
    pthread_mutex_destroy(&s->mu);
    mt_free(s);
}
