/* What the server's files share: the server, the per-request state, the helpers that
 * answer.  http.c owns the daemon and the routing, openai.c the model endpoints,
 * dashboard.c the /api and /ui routes, stats.c the counters behind /metrics. */
#ifndef ALIGN_SERVE_INTERNAL_H
#define ALIGN_SERVE_INTERNAL_H

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>

#include "align/serve.h"
#include "engine.h"

enum { SRV_N_ENDPOINTS = 12, SRV_N_CODES = 12, SRV_N_BUCKETS = 12 };

typedef struct srv_stats {
    pthread_mutex_t mu;
    long long requests[SRV_N_ENDPOINTS][SRV_N_CODES];
    long long guard[2][AL_GUARD_BLOCK + 1]; /* [input, output][action] */
    long long prompt_tokens, completion_tokens, review_enqueued;
    long long guard_blocked_input, guard_cut_output; /* model requests the rails answered */
    long long latency[SRV_N_ENDPOINTS][SRV_N_BUCKETS + 1]; /* histogram, last = +Inf */
    double latency_sum[SRV_N_ENDPOINTS];
} srv_stats;

struct al_server {
    al_serve_opts o;
    struct MHD_Daemon *daemon;
    srv_engine *engine;
    al_review *review;
    pthread_mutex_t review_mu; /* one SQLite connection, used by one thread at a time */
    bool guard_serialize;      /* the guard is not thread-safe: its calls take turns */
    pthread_mutex_t guard_mu;
    char **keys;
    int n_keys;
    int port;
    atomic_int in_flight;
    atomic_bool stopping;
    atomic_ullong seed;
    double started;
    srv_stats stats;
    /* chat: the template's markers end a reply (as ids when the tokenizer has them, and
     * as text), and EOS does */
    int *chat_stop_ids, n_chat_stop_ids;
    int *text_stop_ids, n_text_stop_ids;
    const char **chat_stop_strings;
    int n_chat_stop_strings;
};

/* One request as MHD hands it over in pieces. */
typedef struct srv_request {
    al_buf body;
    bool too_large, counted;
    int endpoint;
    double t0;
} srv_request;

/* endpoints, for the counters */
enum {
    EP_CHAT, EP_COMPLETIONS, EP_MODERATIONS, EP_MODELS, EP_HEALTH, EP_METRICS,
    EP_UI, EP_PIPELINE, EP_REVIEW, EP_OTHER
};
const char *srv_endpoint_name(int ep);

/* answers */
enum MHD_Result srv_send_json(struct MHD_Connection *c, int status, json_t *body); /* steals body */
enum MHD_Result srv_send_text(struct MHD_Connection *c, int status, const char *type, const char *text, size_t n);
enum MHD_Result srv_send_error(struct MHD_Connection *c, int status, const char *type, const char *param,
                               const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* the same with OpenAI's machine-readable error code (e.g. "context_length_exceeded") */
enum MHD_Result srv_send_error_code(struct MHD_Connection *c, int status, const char *type, const char *param,
                                    const char *code, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* openai.c: each returns what MHD_queue_response returned */
enum MHD_Result srv_chat(al_server *s, struct MHD_Connection *c, srv_request *r);
enum MHD_Result srv_completions(al_server *s, struct MHD_Connection *c, srv_request *r);
enum MHD_Result srv_moderations(al_server *s, struct MHD_Connection *c, srv_request *r);
enum MHD_Result srv_models(al_server *s, struct MHD_Connection *c);

/* dashboard.c */
enum MHD_Result srv_pipeline(al_server *s, struct MHD_Connection *c);
enum MHD_Result srv_review_list(al_server *s, struct MHD_Connection *c);
enum MHD_Result srv_review_decide(al_server *s, struct MHD_Connection *c, srv_request *r, const char *url);
enum MHD_Result srv_ui(struct MHD_Connection *c, const char *url);
/* Queues an escalated decision for review (at most once per prompt and answer). */
void srv_review_enqueue(al_server *s, const al_guard_decision *d, const char *prompt, size_t plen,
                        const char *answer, size_t alen);

/* stats.c */
void srv_stats_init(srv_stats *st);
void srv_stats_free(srv_stats *st);
void srv_count_request(srv_stats *st, int endpoint, int status, double seconds);
void srv_count_guard(srv_stats *st, int side, al_guard_action a);
void srv_count_tokens(srv_stats *st, int prompt, int completion);
void srv_count_filtered(srv_stats *st, bool at_input);
enum MHD_Result srv_metrics(al_server *s, struct MHD_Connection *c);

#endif
