/* The HTTP side: libmicrohttpd with a thread per connection (a request's thread may wait
 * for its tokens without holding up anyone else's), the routing, API keys and limits. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "internal.h"

al_serve_opts al_serve_defaults(void)
{
    return (al_serve_opts){.model_id = "align", .host = "127.0.0.1", .port = 8080,
                           .max_body_bytes = (size_t)1 << 20, .max_tokens = 256, .max_concurrent = 64,
                           .max_connections = 256, .slots = 16, .kv = AL_KV_F32, .weights = AL_W_F32,
                           .check_every = 1};
}

const char *srv_endpoint_name(int ep)
{
    static const char *const names[] = {"/v1/chat/completions", "/v1/completions", "/v1/moderations",
                                        "/v1/models", "/health", "/metrics", "/ui", "/api/pipeline",
                                        "/api/review", "other"};
    return ep >= 0 && ep <= EP_OTHER ? names[ep] : "other";
}

enum MHD_Result srv_send_text(struct MHD_Connection *c, int status, const char *type, const char *text, size_t n)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(n, (void *)text, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (status == MHD_HTTP_TOO_MANY_REQUESTS || status == MHD_HTTP_SERVICE_UNAVAILABLE)
        MHD_add_response_header(r, "Retry-After", "1");
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

enum MHD_Result srv_send_json(struct MHD_Connection *c, int status, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(body);
    if (!text)
        return srv_send_text(c, 500, "application/json", "{\"error\":{\"message\":\"out of memory\"}}", 37);
    enum MHD_Result ret = srv_send_text(c, status, "application/json", text, strlen(text));
    free(text);
    return ret;
}

static enum MHD_Result send_error_v(struct MHD_Connection *c, int status, const char *type, const char *param,
                                    const char *code, const char *fmt, va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    json_t *err = json_pack("{s:{s:s, s:s, s:s?, s:s?}}", "error", "message", msg, "type", type, "param", param,
                            "code", code);
    return srv_send_json(c, status, err);
}

enum MHD_Result srv_send_error(struct MHD_Connection *c, int status, const char *type, const char *param,
                               const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    enum MHD_Result ret = send_error_v(c, status, type, param, NULL, fmt, ap);
    va_end(ap);
    return ret;
}

enum MHD_Result srv_send_error_code(struct MHD_Connection *c, int status, const char *type, const char *param,
                                    const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    enum MHD_Result ret = send_error_v(c, status, type, param, code, fmt, ap);
    va_end(ap);
    return ret;
}

/* ---- API keys ---- */

static int load_keys(al_server *s, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return al_fail("%s: cannot read the API keys file", path);
    char line[1024];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        char *p = line, *end;
        while (*p == ' ' || *p == '\t')
            p++;
        end = p + strlen(p);
        while (end > p && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
            *--end = 0;
        if (!*p || *p == '#')
            continue;
        if (end - p < 8 || strpbrk(p, " \t")) {
            rc = al_fail("%s:%d: expected one API key per line (8 or more characters, no spaces)", path, lineno);
            break;
        }
        char **k = realloc(s->keys, (size_t)(s->n_keys + 1) * sizeof *k);
        if (!k || !(k[s->n_keys] = strdup(p))) {
            if (k)
                s->keys = k;
            rc = al_fail("out of memory");
            break;
        }
        s->keys = k;
        s->n_keys++;
    }
    fclose(f);
    if (rc == 0 && s->n_keys == 0)
        rc = al_fail("%s: no API key in the file (one per line; '#' starts a comment)", path);
    return rc;
}

/* Compares every key in full, so the time taken does not tell how much of a guess was right. */
static bool key_ok(const al_server *s, const char *given)
{
    bool ok = false;
    size_t gn = strlen(given);
    for (int i = 0; i < s->n_keys; i++) {
        size_t kn = strlen(s->keys[i]);
        unsigned diff = (unsigned)(kn ^ gn);
        for (size_t j = 0; j < kn; j++)
            diff |= (unsigned char)s->keys[i][j] ^ (unsigned char)(j < gn ? given[j] : 0);
        ok |= diff == 0;
    }
    return ok;
}

static bool authorized(const al_server *s, struct MHD_Connection *c)
{
    if (s->n_keys == 0)
        return true;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7))
        return false;
    return key_ok(s, h + 7);
}

/* A browser names the page that sent a request in Origin.  Without API keys, a page on
 * any other site could otherwise post to a server on loopback (approve review items, spend
 * the model); a form post cannot forge Origin, and a script's cross-origin post is
 * refused here whatever its content type.  Clients that are not browsers send no Origin. */
static bool same_origin(struct MHD_Connection *c)
{
    const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
    if (!origin)
        return true;
    const char *o = strstr(origin, "://");
    return o && host && !strcmp(o + 3, host);
}

/* ---- routing ---- */

static int endpoint_of(const char *url)
{
    static const struct {
        const char *path;
        int ep;
    } exact[] = {{"/v1/chat/completions", EP_CHAT}, {"/v1/completions", EP_COMPLETIONS},
                 {"/v1/moderations", EP_MODERATIONS}, {"/v1/models", EP_MODELS},
                 {"/health", EP_HEALTH}, {"/metrics", EP_METRICS}, {"/api/pipeline", EP_PIPELINE},
                 {"/api/review", EP_REVIEW}};
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        if (!strcmp(url, exact[i].path))
            return exact[i].ep;
    if (!strncmp(url, "/api/review/", 12))
        return EP_REVIEW;
    if (!strcmp(url, "/ui") || !strncmp(url, "/ui/", 4) || !strcmp(url, "/"))
        return EP_UI;
    return EP_OTHER;
}

static bool needs_post(int ep, const char *url)
{
    return ep == EP_CHAT || ep == EP_COMPLETIONS || ep == EP_MODERATIONS ||
           (ep == EP_REVIEW && strcmp(url, "/api/review"));
}

static enum MHD_Result route(al_server *s, struct MHD_Connection *c, const char *url, const char *method,
                             srv_request *r)
{
    const int ep = r->endpoint;
    if (ep == EP_OTHER)
        return srv_send_error(c, 404, "invalid_request_error", NULL, "no route for %s %s", method, url);
    const bool post = !strcmp(method, "POST"), get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    if (needs_post(ep, url) ? !post : !get)
        return srv_send_error(c, 405, "invalid_request_error", NULL, "%s takes %s, not %s", url,
                              needs_post(ep, url) ? "POST" : "GET", method);
    if (r->too_large)
        return srv_send_error(c, 413, "invalid_request_error", NULL, "the body is over the limit of %zu bytes",
                              s->o.max_body_bytes);
    if (post && !same_origin(c))
        return srv_send_error(c, 403, "invalid_request_error", NULL,
                              "a request from another web origin is not served (Origin does not match Host)");
    if ((!strncmp(url, "/v1/", 4) || !strncmp(url, "/api/", 5)) && !authorized(s, c))
        return srv_send_error(c, 401, "invalid_request_error", NULL,
                              "a valid API key is required (Authorization: Bearer KEY)");
    if (atomic_load(&s->stopping))
        return srv_send_error(c, 503, "server_error", NULL, "the server is shutting down");
    switch (ep) {
    case EP_HEALTH:
        return srv_send_json(c, 200, json_pack("{s:s, s:f}", "status", "ok", "uptime_seconds", al_now() - s->started));
    case EP_METRICS:
        return srv_metrics(s, c);
    case EP_MODELS:
        return srv_models(s, c);
    case EP_UI:
        return srv_ui(c, url);
    case EP_PIPELINE:
        return srv_pipeline(s, c);
    case EP_REVIEW:
        return post ? srv_review_decide(s, c, r, url) : srv_review_list(s, c);
    default:
        break;
    }
    /* the model endpoints: bounded, so a flood gets 429s instead of unbounded queues */
    if (atomic_fetch_add(&s->in_flight, 1) >= s->o.max_concurrent) {
        atomic_fetch_sub(&s->in_flight, 1);
        return srv_send_error(c, 429, "rate_limit_error", NULL,
                              "%d requests are already being answered; retry shortly", s->o.max_concurrent);
    }
    r->counted = true;
    return ep == EP_CHAT ? srv_chat(s, c, r) : ep == EP_COMPLETIONS ? srv_completions(s, c, r)
                                                                    : srv_moderations(s, c, r);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_size,
                                  void **con_cls)
{
    (void)version;
    al_server *s = cls;
    srv_request *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        r->t0 = al_now();
        r->endpoint = endpoint_of(url);
        *con_cls = r;
        const char *len = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (len && strtoull(len, NULL, 10) > s->o.max_body_bytes) {
            r->too_large = true; /* answered now: the body is never read */
            return srv_send_error(c, 413, "invalid_request_error", NULL,
                                  "the body is over the limit of %zu bytes", s->o.max_body_bytes);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (!r->too_large && r->body.len + *upload_size > s->o.max_body_bytes)
            r->too_large = true;
        if (!r->too_large && al_buf_append(&r->body, upload_data, *upload_size))
            r->too_large = true;
        *upload_size = 0;
        return MHD_YES;
    }
    return route(s, c, url, method, r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)toe;
    al_server *s = cls;
    srv_request *r = *con_cls;
    if (!r)
        return;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_HTTP_STATUS);
    int status = ci ? (int)ci->http_status : 0;
    double dt = al_now() - r->t0;
    srv_count_request(&s->stats, r->endpoint, status, dt);
    if (r->counted)
        atomic_fetch_sub(&s->in_flight, 1);
    if (!s->o.quiet)
        fprintf(stderr, "serve: %s %d %.1f ms\n", srv_endpoint_name(r->endpoint), status, 1e3 * dt);
    al_buf_free(&r->body);
    free(r);
    *con_cls = NULL;
}

static void log_mhd(void *cls, const char *fmt, va_list ap)
{
    const al_server *s = cls;
    if (s->o.quiet)
        return;
    fputs("serve: libmicrohttpd: ", stderr);
    vfprintf(stderr, fmt, ap);
}

/* The chat template's markers as stop ids (when the tokenizer has them whole) and as text. */
static int chat_stops(al_server *s)
{
    const char **markers = NULL;
    int n = 0;
    if (s->o.tmpl)
        al_chat_template_specials(s->o.tmpl, &markers, &n);
    s->chat_stop_ids = malloc((size_t)(n + 2) * sizeof(int));
    s->text_stop_ids = malloc(2 * sizeof(int));
    if (!s->chat_stop_ids || !s->text_stop_ids)
        return al_fail("out of memory");
    const int eos = al_tokenizer_eos(s->o.tok), bos = al_tokenizer_bos(s->o.tok);
    for (int k = 0; k < n; k++) {
        int id = al_tokenizer_find(s->o.tok, markers[k], strlen(markers[k]));
        if (id >= 0 && id != bos)
            s->chat_stop_ids[s->n_chat_stop_ids++] = id;
    }
    int model_eos = s->o.model->cfg.eos_id;
    if (eos >= 0) {
        s->chat_stop_ids[s->n_chat_stop_ids++] = eos;
        s->text_stop_ids[s->n_text_stop_ids++] = eos;
    }
    if (model_eos >= 0 && model_eos != eos) {
        s->chat_stop_ids[s->n_chat_stop_ids++] = model_eos;
        s->text_stop_ids[s->n_text_stop_ids++] = model_eos;
    }
    s->chat_stop_strings = markers;
    s->n_chat_stop_strings = n;
    return 0;
}

static void server_free(al_server *s)
{
    srv_engine_free(s->engine);
    if (s->review) {
        al_review_close(s->review);
        pthread_mutex_destroy(&s->review_mu);
    }
    for (int i = 0; i < s->n_keys; i++)
        free(s->keys[i]);
    free(s->keys);
    free(s->chat_stop_ids);
    free(s->text_stop_ids);
    srv_stats_free(&s->stats);
    pthread_mutex_destroy(&s->guard_mu);
    free(s);
}

al_server *al_server_start(const al_serve_opts *o)
{
    if (!o->model || !o->tok) {
        al_fail("serve: a model and its tokenizer are required");
        return NULL;
    }
    al_server *s = calloc(1, sizeof *s);
    if (!s) {
        al_fail("out of memory");
        return NULL;
    }
    s->o = *o;
    al_serve_opts d = al_serve_defaults();
    if (!s->o.model_id)
        s->o.model_id = d.model_id;
    if (!s->o.host)
        s->o.host = d.host;
    if (!s->o.max_body_bytes)
        s->o.max_body_bytes = d.max_body_bytes;
    if (s->o.max_tokens <= 0)
        s->o.max_tokens = d.max_tokens;
    if (s->o.max_concurrent <= 0)
        s->o.max_concurrent = d.max_concurrent;
    if (s->o.max_connections <= 0)
        s->o.max_connections = d.max_connections;
    if (s->o.slots <= 0)
        s->o.slots = d.slots;
    if (s->o.check_every <= 0)
        s->o.check_every = d.check_every;
    s->started = al_now();
    atomic_init(&s->seed, (unsigned long long)time(NULL) * 0x9E3779B97F4A7C15ull);
    srv_stats_init(&s->stats);
    pthread_mutex_init(&s->guard_mu, NULL);
    s->guard_serialize = o->guard && !al_guard_thread_safe(o->guard);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->o.port)};
    if (inet_pton(AF_INET, s->o.host, &addr.sin_addr) != 1) {
        al_fail("serve: --host takes an IPv4 address such as 127.0.0.1 or 0.0.0.0, got '%s'", s->o.host);
        server_free(s);
        return NULL;
    }
    if ((s->o.api_keys_path && load_keys(s, s->o.api_keys_path)) || chat_stops(s)) {
        server_free(s);
        return NULL;
    }
    const char *db = s->o.review_db ? s->o.review_db : AL_REVIEW_DEFAULT_DB;
    s->review = al_review_open(db);
    if (!s->review) {
        al_fail_prefix("serve: review queue %s: ", db);
        server_free(s);
        return NULL;
    }
    pthread_mutex_init(&s->review_mu, NULL);
    s->engine = srv_engine_start(o->model, s->o.slots, s->o.kv, s->o.weights);
    if (!s->engine) {
        server_free(s);
        return NULL;
    }
    s->daemon = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                                     MHD_USE_ERROR_LOG,
                                 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, log_mhd, s,
                                 MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                                 MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_CONNECTION_LIMIT,
                                 (unsigned)s->o.max_connections, MHD_OPTION_CONNECTION_TIMEOUT, 120u,
                                 MHD_OPTION_END);
    if (!s->daemon) {
        al_fail("serve: cannot listen on %s:%d (in use, or not permitted)", s->o.host, s->o.port);
        server_free(s);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : s->o.port;
    return s;
}

int al_server_port(const al_server *s) { return s->port; }

void al_server_stop(al_server *s)
{
    if (!s)
        return;
    atomic_store(&s->stopping, true);
    /* the engine first: it cancels every job, which wakes the connection threads that
     * wait for tokens, so stopping the daemon (which joins them) cannot hang */
    srv_engine_stop(s->engine);
    MHD_stop_daemon(s->daemon);
    server_free(s);
}
