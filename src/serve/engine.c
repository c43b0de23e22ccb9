/* Continuous batching for the server.  One thread owns the decoder: between steps it
 * takes queued jobs into free slots (their prompts read by one prefill each), then
 * advances every live slot by one token, sampling each row with its job's own sampler.
 * A job leaves its slot when it stops, reaches its length or is cancelled, and the next
 * queued job takes the slot at the following step.  The decoder computes each row from
 * that row alone, so a job's tokens do not depend on which others share its steps.
 *
 * One mutex guards the queue, every job's visible state and the counters; the decoding
 * itself runs unlocked.  Only the engine thread writes a job's tokens. */
#include "engine.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct srv_job {
    srv_engine *e;
    int refs; /* the caller's and, while queued or decoding, the engine's */
    int *prompt, n_prompt, max_new;
    int *stop, n_stop;
    al_sampler sampler;
    int *ids, n_ids, cap_ids; /* generated tokens */
    int next, pos;            /* token to feed next; positions in the cache */
    srv_finish finish;
    bool cancelled;
    pthread_cond_t changed;
    srv_job *queue_next;
};

struct srv_engine {
    const al_model *m;
    al_decoder *dec;
    int slots;
    srv_job **slot_job; /* NULL: free */
    srv_job *queue_head, *queue_tail;
    int queued, live;
    bool stopping;
    long long tokens, steps;
    pthread_mutex_t mu;
    pthread_cond_t work;
    pthread_t thread;
    /* the current step's rows (engine thread only) */
    int *seqs, *toks, *sampled;
    srv_job **row_job;
};

static void job_free(srv_job *j)
{
    al_sampler_free(&j->sampler);
    pthread_cond_destroy(&j->changed);
    free(j->prompt), free(j->stop), free(j->ids), free(j);
}

/* Under the engine's lock. */
static void job_unref(srv_job *j)
{
    if (--j->refs == 0)
        job_free(j);
}

/* Under the lock: the job's last state change. */
static void job_finish(srv_engine *e, srv_job *j, srv_finish f)
{
    (void)e;
    if (j->finish == SRV_RUNNING)
        j->finish = f;
    pthread_cond_broadcast(&j->changed);
}

static int job_push(srv_job *j, int id)
{
    if (j->n_ids == j->cap_ids) {
        int cap = j->cap_ids ? 2 * j->cap_ids : 64;
        int *v = realloc(j->ids, (size_t)cap * sizeof *v);
        if (!v)
            return -1;
        j->ids = v;
        j->cap_ids = cap;
    }
    j->ids[j->n_ids++] = id;
    return 0;
}

static void sample_row(void *user, int row, float *logits)
{
    srv_engine *e = user;
    srv_job *j = e->row_job[row];
    e->sampled[row] = al_sample(&j->sampler, logits, j->ids, j->n_ids);
}

/* Under the lock: frees slots whose jobs were cancelled, fills free slots from the queue.
 * The admitted jobs' prompts are read after the lock is dropped (admit[] lists them). */
static int take_jobs(srv_engine *e, int *admit)
{
    int n_admit = 0;
    for (int s = 0; s < e->slots; s++) {
        srv_job *j = e->slot_job[s];
        if (j && j->cancelled) {
            job_finish(e, j, SRV_CANCELLED);
            e->slot_job[s] = NULL;
            e->live--;
            job_unref(j);
        }
    }
    for (int s = 0; s < e->slots && e->queue_head; s++) {
        if (e->slot_job[s])
            continue;
        srv_job *j = NULL;
        while (e->queue_head && !j) {
            j = e->queue_head;
            e->queue_head = j->queue_next;
            if (!e->queue_head)
                e->queue_tail = NULL;
            e->queued--;
            if (j->cancelled) {
                job_finish(e, j, SRV_CANCELLED);
                job_unref(j);
                j = NULL;
            }
        }
        if (!j)
            break;
        e->slot_job[s] = j;
        e->live++;
        admit[n_admit++] = s;
    }
    return n_admit;
}

/* Under the lock: the sampled token of one row. */
static void advance(srv_engine *e, int s, srv_job *j, int id)
{
    srv_finish f = SRV_RUNNING;
    j->pos++;
    if (j->cancelled)
        f = SRV_CANCELLED;
    for (int q = 0; q < j->n_stop && f == SRV_RUNNING; q++)
        if (id == j->stop[q])
            f = SRV_STOP;
    if (f == SRV_RUNNING) {
        if (job_push(j, id))
            f = SRV_CANCELLED; /* out of memory: end the reply rather than lose the server */
        else {
            e->tokens++;
            if (j->n_ids >= j->max_new)
                f = SRV_LENGTH;
            else if (j->pos >= e->m->cfg.seq_len)
                f = SRV_CONTEXT;
        }
    }
    j->next = id;
    if (f == SRV_RUNNING) {
        pthread_cond_broadcast(&j->changed);
        return;
    }
    job_finish(e, j, f);
    e->slot_job[s] = NULL;
    e->live--;
    job_unref(j);
}

static void *engine_main(void *arg)
{
    srv_engine *e = arg;
    int *admit = malloc((size_t)e->slots * sizeof *admit);
    pthread_mutex_lock(&e->mu);
    while (admit) {
        while (!e->stopping && e->live == 0 && !e->queue_head)
            pthread_cond_wait(&e->work, &e->mu);
        if (e->stopping)
            break;
        int n_admit = take_jobs(e, admit);
        pthread_mutex_unlock(&e->mu);
        /* a job's prompt, all but its last token, in one prefill; the last is fed by the
         * step, whose logits give the first new token */
        for (int a = 0; a < n_admit; a++) {
            srv_job *j = e->slot_job[admit[a]];
            al_decoder_reset(e->dec, admit[a]);
            /* ids and length were checked at submit, so this does not fail */
            al_decoder_prefill(e->dec, admit[a], j->prompt, j->n_prompt - 1);
            j->pos = j->n_prompt - 1;
            j->next = j->prompt[j->n_prompt - 1];
        }
        int k = 0;
        for (int s = 0; s < e->slots; s++) {
            srv_job *j = e->slot_job[s];
            if (j) {
                e->seqs[k] = s;
                e->toks[k] = j->next;
                e->row_job[k] = j;
                k++;
            }
        }
        if (k > 0)
            al_decoder_step_each(e->dec, e->seqs, e->toks, k, sample_row, e);
        pthread_mutex_lock(&e->mu);
        for (int r = 0; r < k; r++)
            advance(e, e->seqs[r], e->row_job[r], e->sampled[r]);
        e->steps += k > 0;
    }
    /* stopping: every job still held ends as cancelled */
    for (int s = 0; s < e->slots; s++)
        if (e->slot_job[s]) {
            job_finish(e, e->slot_job[s], SRV_CANCELLED);
            job_unref(e->slot_job[s]);
            e->slot_job[s] = NULL;
        }
    while (e->queue_head) {
        srv_job *j = e->queue_head;
        e->queue_head = j->queue_next;
        job_finish(e, j, SRV_CANCELLED);
        job_unref(j);
    }
    e->queue_tail = NULL;
    e->live = e->queued = 0;
    pthread_mutex_unlock(&e->mu);
    free(admit);
    return NULL;
}

/* The decoder and the step's arrays, then the engine (its thread and locks are gone). */
static void engine_free_memory(srv_engine *e)
{
    al_decoder_free(e->dec);
    free(e->slot_job), free(e->row_job), free(e->seqs), free(e->toks), free(e->sampled), free(e);
}

srv_engine *srv_engine_start(const al_model *m, int slots, al_kv_type kv, al_weight_type w)
{
    if (slots <= 0) {
        al_fail("serve: slots must be positive, got %d", slots);
        return NULL;
    }
    srv_engine *e = calloc(1, sizeof *e);
    if (!e) {
        al_fail("out of memory");
        return NULL;
    }
    e->m = m;
    e->slots = slots;
    e->dec = al_decoder_new_kv(m, slots, m->cfg.seq_len, kv);
    if (e->dec && w != AL_W_F32 && al_decoder_set_weights(e->dec, w)) {
        al_decoder_free(e->dec);
        e->dec = NULL;
    }
    e->slot_job = calloc((size_t)slots, sizeof *e->slot_job);
    e->row_job = calloc((size_t)slots, sizeof *e->row_job);
    e->seqs = malloc((size_t)slots * sizeof(int));
    e->toks = malloc((size_t)slots * sizeof(int));
    e->sampled = malloc((size_t)slots * sizeof(int));
    bool ok = e->dec && e->slot_job && e->row_job && e->seqs && e->toks && e->sampled;
    if (ok) {
        pthread_mutex_init(&e->mu, NULL);
        pthread_cond_init(&e->work, NULL);
        if (pthread_create(&e->thread, NULL, engine_main, e)) {
            pthread_mutex_destroy(&e->mu);
            pthread_cond_destroy(&e->work);
            al_fail("serve: cannot start the decoding thread");
            ok = false;
        }
    } else if (e->dec) {
        al_fail("out of memory");
    }
    if (!ok) {
        engine_free_memory(e);
        return NULL;
    }
    return e;
}

void srv_engine_stop(srv_engine *e)
{
    if (!e)
        return;
    pthread_mutex_lock(&e->mu);
    bool joined = e->stopping;
    e->stopping = true;
    pthread_cond_broadcast(&e->work);
    pthread_mutex_unlock(&e->mu);
    if (!joined)
        pthread_join(e->thread, NULL);
}

void srv_engine_free(srv_engine *e)
{
    if (!e)
        return;
    srv_engine_stop(e);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->work);
    engine_free_memory(e);
}

srv_job *srv_submit(srv_engine *e, const srv_job_opts *o)
{
    const al_config *c = &e->m->cfg;
    if (o->n_prompt <= 0)
        return al_fail("the prompt is empty"), NULL;
    if (o->n_prompt >= c->seq_len) {
        al_fail("the prompt has %d tokens; the model has %d positions", o->n_prompt, c->seq_len);
        return NULL;
    }
    for (int i = 0; i < o->n_prompt; i++)
        if (o->prompt[i] < 0 || o->prompt[i] >= c->vocab_size) {
            al_fail("prompt token %d outside the vocabulary (%d)", o->prompt[i], c->vocab_size);
            return NULL;
        }
    srv_job *j = calloc(1, sizeof *j);
    if (!j)
        return al_fail("out of memory"), NULL;
    j->prompt = malloc((size_t)o->n_prompt * sizeof(int));
    j->stop = malloc((size_t)(o->n_stop_ids + 1) * sizeof(int));
    if (!j->prompt || !j->stop || al_sampler_init(&j->sampler, c->vocab_size, &o->sampling)) {
        if (!j->prompt || !j->stop)
            al_fail("out of memory");
        free(j->prompt), free(j->stop), free(j);
        return NULL;
    }
    memcpy(j->prompt, o->prompt, (size_t)o->n_prompt * sizeof(int));
    if (o->n_stop_ids > 0)
        memcpy(j->stop, o->stop_ids, (size_t)o->n_stop_ids * sizeof(int));
    j->n_prompt = o->n_prompt;
    j->n_stop = o->n_stop_ids;
    const int room = c->seq_len - o->n_prompt + 1;
    j->max_new = o->max_new_tokens < room ? o->max_new_tokens : room;
    if (j->max_new < 1)
        j->max_new = 1;
    j->e = e;
    j->refs = 2;
    pthread_cond_init(&j->changed, NULL);
    pthread_mutex_lock(&e->mu);
    if (e->stopping) {
        pthread_mutex_unlock(&e->mu);
        job_free(j);
        return al_fail("the server is shutting down"), NULL;
    }
    if (e->queue_tail)
        e->queue_tail->queue_next = j;
    else
        e->queue_head = j;
    e->queue_tail = j;
    e->queued++;
    pthread_cond_signal(&e->work);
    pthread_mutex_unlock(&e->mu);
    return j;
}

int srv_job_wait(srv_job *j, int have, int *ids, int cap, srv_finish *finish, int timeout_ms)
{
    srv_engine *e = j->e;
    struct timespec until;
    if (timeout_ms >= 0) {
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += timeout_ms / 1000;
        until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
    }
    pthread_mutex_lock(&e->mu);
    while (j->n_ids <= have && j->finish == SRV_RUNNING) {
        if (timeout_ms < 0)
            pthread_cond_wait(&j->changed, &e->mu);
        else if (pthread_cond_timedwait(&j->changed, &e->mu, &until) == ETIMEDOUT)
            break;
    }
    int n = j->n_ids - have;
    n = n < 0 ? 0 : n > cap ? cap : n;
    if (n > 0)
        memcpy(ids, j->ids + have, (size_t)n * sizeof(int));
    *finish = have + n >= j->n_ids ? j->finish : SRV_RUNNING;
    pthread_mutex_unlock(&e->mu);
    return n;
}

void srv_job_cancel(srv_job *j)
{
    pthread_mutex_lock(&j->e->mu);
    j->cancelled = true;
    pthread_cond_signal(&j->e->work); /* a queued job is dropped at the next look */
    pthread_mutex_unlock(&j->e->mu);
}

void srv_job_release(srv_job *j)
{
    if (!j)
        return;
    srv_engine *e = j->e;
    pthread_mutex_lock(&e->mu);
    j->cancelled = true;
    pthread_cond_signal(&e->work);
    job_unref(j);
    pthread_mutex_unlock(&e->mu);
}

void srv_engine_get_stats(srv_engine *e, srv_engine_stats *out)
{
    pthread_mutex_lock(&e->mu);
    *out = (srv_engine_stats){.tokens = e->tokens, .steps = e->steps, .live = e->live, .queued = e->queued,
                              .slots = e->slots};
    pthread_mutex_unlock(&e->mu);
}
