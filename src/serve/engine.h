/* The server's decoding engine: one thread owns a batched decoder and advances every live
 * request together; HTTP threads submit jobs and wait for their tokens. */
#ifndef ALIGN_SERVE_ENGINE_H
#define ALIGN_SERVE_ENGINE_H

#include <stdbool.h>

#include "align/model.h"

typedef struct srv_engine srv_engine;
typedef struct srv_job srv_job;

typedef enum srv_finish {
    SRV_RUNNING = 0,
    SRV_STOP,      /* a stop id (the template's end marker, EOS) */
    SRV_LENGTH,    /* max_new_tokens */
    SRV_CONTEXT,   /* the model's positions ran out */
    SRV_CANCELLED, /* the caller cancelled (a rail fired, the client left, shutdown) */
} srv_finish;

typedef struct srv_job_opts {
    const int *prompt;   /* copied */
    int n_prompt;
    int max_new_tokens;  /* clipped to the positions the prompt leaves */
    al_sampler_opts sampling;
    const int *stop_ids; /* copied */
    int n_stop_ids;
} srv_job_opts;

srv_engine *srv_engine_start(const al_model *m, int slots, al_kv_type kv, al_weight_type w);
/* Cancels every job (their waiters wake) and joins the thread; jobs stay valid until
 * released, which must happen before srv_engine_free. */
void srv_engine_stop(srv_engine *e);
void srv_engine_free(srv_engine *e);

/* NULL with al_fail when the prompt does not fit or the engine is stopping. */
srv_job *srv_submit(srv_engine *e, const srv_job_opts *o);
/* Waits until the job has more than `have` tokens or has finished (or timeout_ms passes,
 * < 0: no timeout); copies tokens [have, n) to ids (cap entries at most) and returns how
 * many were copied; *finish gets the job's state once every token has been read. */
int srv_job_wait(srv_job *j, int have, int *ids, int cap, srv_finish *finish, int timeout_ms);
void srv_job_cancel(srv_job *j);
/* The caller's reference; the engine drops its own when the job leaves the batch. */
void srv_job_release(srv_job *j);

typedef struct srv_engine_stats {
    long long tokens;     /* generated, all jobs */
    long long steps;
    int live, queued, slots;
} srv_engine_stats;
void srv_engine_get_stats(srv_engine *e, srv_engine_stats *out);

#endif
