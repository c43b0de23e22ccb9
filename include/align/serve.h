/* align serve: an OpenAI-compatible HTTP server (libmicrohttpd) with the guard on both
 * sides of the model, requests from many clients sharing one batched decoder, and a
 * dashboard (/ui) over the trainers' runs and the review queue.  docs/serve.md. */
#ifndef ALIGN_SERVE_H
#define ALIGN_SERVE_H

#include <stdbool.h>
#include <stddef.h>

#include "align/core.h"
#include "align/data.h"
#include "align/guard.h"
#include "align/model.h"
#include "align/tokenizer.h"

typedef struct al_serve_opts {
    /* what is served: the caller loads them and keeps them alive until al_server_stop */
    const al_model *model;
    const al_tokenizer *tok;
    const al_chat_template *tmpl;  /* for /v1/chat/completions */
    const al_guard *guard;         /* NULL: no rails (moderations then answers 503) */
    const char *model_id;          /* the id in /v1/models and in responses */
    const char *model_path;        /* where model was read from: the dashboard's "aligned" stage
                                      shows the run holding it (NULL: not known) */
    const char *review_db;         /* escalations go here (NULL: AL_REVIEW_DEFAULT_DB) */
    const char *runs_dir;          /* the dashboard's runs (NULL: no pipeline view) */
    /* where */
    const char *host;              /* default "127.0.0.1": loopback unless told otherwise */
    int port;                      /* 0: a free port (al_server_port tells which) */
    const char *api_keys_path;     /* one key per line ('#' comments); NULL: no auth */
    /* limits */
    size_t max_body_bytes;         /* default 1 MiB; larger gets 413 */
    int max_tokens;                /* cap on a request's max_tokens (default 256) */
    int max_concurrent;            /* requests being answered at once (default 64); beyond: 429 */
    int max_connections;           /* open connections (default 256); beyond: refused */
    int slots;                     /* sequences decoded together (default 16) */
    al_kv_type kv;
    al_weight_type weights;
    int check_every;               /* a streamed reply is checked every this many tokens (default 1) */
    bool quiet;                    /* no request log on stderr */
} al_serve_opts;

al_serve_opts al_serve_defaults(void);

typedef struct al_server al_server;
/* Starts listening and decoding; returns once the port is bound. */
al_server *al_server_start(const al_serve_opts *o);
int al_server_port(const al_server *s);
/* Stops accepting, finishes nothing further, joins the threads and frees the server. */
void al_server_stop(al_server *s);

/* What the server has done since it started (the figures /metrics gives, summed). */
typedef struct al_serve_counts {
    long long requests, errors;          /* answered; of them with a status >= 400 */
    long long model_requests;            /* chat and text completions */
    long long input_blocked;             /* prompts the input rails blocked or escalated */
    long long output_cut;                /* replies the output rails cut */
    long long output_redacted;
    long long review_queued;
    long long prompt_tokens, completion_tokens;
    double model_latency_mean;           /* seconds, completions only */
    double model_latency_p50, model_latency_p99; /* upper bounds of their histogram buckets */
} al_serve_counts;
void al_server_counts(al_server *s, al_serve_counts *out);

/* ---- the dashboard's data (src/serve/runs.c) ----
 * The trainers' runs under dir (metrics.jsonl files up to four levels deep) grouped by
 * pipeline stage, as one JSON object (docs/serve.md, "GET /api/pipeline").  served_model
 * (or NULL): the path of the model being served; the run holding it is the aligned one. */
int al_serve_pipeline_json(const char *dir, const char *served_model, al_buf *out);

/* ---- the dashboard's files (generated at build time from src/serve/ui/) ---- */
typedef struct al_ui_file {
    const char *path;   /* "/ui/index.html", "/ui/app.js", ... */
    const char *mime;
    const unsigned char *data;
    size_t len;
} al_ui_file;
/* The file served at path ("/ui" and "/ui/" are index.html), or NULL. */
const al_ui_file *al_ui_find(const char *path);

#endif
