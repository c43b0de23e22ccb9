/* Batched generation with continuous batching.  The decoder holds max_batch slots; each
 * request takes a free slot, its prompt is read in one batch of rows (prefill) or copied
 * from a slot that already read the same prompt, and every live slot then advances one
 * token per step.  A finished request frees its slot for the next one in the queue.
 * Each request samples with its own RNG, and the decoder's kernels compute a row from
 * that row alone, so a request's text does not depend on which others share its steps. */
#include <stdlib.h>
#include <string.h>

#include "align/model.h"

typedef struct request {
    int fed;      /* prompt and generated tokens in the cache */
    int next;     /* token to feed at the next step */
    int slot;     /* -1 before and after decoding */
    bool done;
    al_sampler sampler;
    al_buf text;  /* decoded output, for stop strings */
} request;

typedef struct gen_run {
    const al_model *m;
    const al_ints *prompts;
    const al_gen_opts *o;
    al_gen_result *results;
    request *rq;
    int *slot_req;     /* request in each slot, -1 when free */
    int *rows_req;     /* request of each row of the current step */
    int *sampled;      /* token sampled for each row */
} gen_run;

static bool ends_with_stop_string(const request *s, const al_gen_opts *o)
{
    for (int k = 0; k < o->n_stop_strings; k++) {
        size_t n = strlen(o->stop_strings[k]);
        /* The stop string may end anywhere in the last piece, so search a short tail. */
        if (n == 0 || s->text.len < n)
            continue;
        size_t from = s->text.len > n + 64 ? s->text.len - n - 64 : 0;
        if (memmem(s->text.data + from, s->text.len - from, o->stop_strings[k], n))
            return true;
    }
    return false;
}

/* Runs on the thread that computed the row: sampling is per request (own sampler, own
 * history), so rows sample in any order. */
static void sample_row(void *user, int row, float *logits)
{
    gen_run *g = user;
    const int r = g->rows_req[row];
    request *q = &g->rq[r];
    if (q->fed + 1 < g->prompts[r].n)
        return; /* still reading its prompt */
    g->sampled[row] = al_sample(&q->sampler, logits, g->results[r].ids.v, g->results[r].ids.n);
}

/* The slot holding a request whose cache begins with the first n tokens of prompt p, or -1.
 * Positions [0, n) of a slot hold its own prompt while n <= that prompt's length. */
static int prefix_donor(const gen_run *g, int S, const al_ints *p, int n)
{
    for (int s = 0; s < S; s++) {
        const int r = g->slot_req[s];
        if (r < 0)
            continue;
        const al_ints *q = &g->prompts[r];
        if (q->n >= n && g->rq[r].fed >= n && !memcmp(q->v, p->v, (size_t)n * sizeof(int)))
            return s;
    }
    return -1;
}

/* Puts request r into the free slot s with all its prompt but the last token in the cache;
 * the last one is fed by the next step, whose logits give the first new token. */
static int admit(gen_run *g, al_decoder *dec, int S, int s, int r)
{
    const al_ints *p = &g->prompts[r];
    const int n = p->n - 1;
    al_decoder_reset(dec, s);
    int donor = n > 0 ? prefix_donor(g, S, p, n) : -1;
    int rc = donor >= 0 ? al_decoder_copy_prefix(dec, s, donor, n) : al_decoder_prefill(dec, s, p->v, n);
    if (rc)
        return rc;
    g->slot_req[s] = r;
    g->rq[r].slot = s;
    g->rq[r].fed = n;
    g->rq[r].next = p->v[n];
    return 0;
}

/* After a step: request r took token id (or read its next prompt token).  Returns 1 when
 * it finished, 0 when it goes on, -1 on error. */
static int advance(gen_run *g, const al_tokenizer *tok, int r, int id, int max_len, al_gen_callback cb, void *user)
{
    const al_gen_opts *o = g->o;
    const al_ints *p = &g->prompts[r];
    request *s = &g->rq[r];
    al_gen_result *res = &g->results[r];
    s->fed++;
    if (s->fed < p->n) {
        s->next = p->v[s->fed];
        return 0;
    }
    int finish = -1;
    for (int q = 0; q < o->n_stop_ids; q++)
        if (id == o->stop_ids[q])
            finish = AL_FINISH_STOP_ID;
    if (finish < 0) {
        int prev = res->ids.n ? res->ids.v[res->ids.n - 1] : p->v[p->n - 1];
        if (al_ints_push(&res->ids, id))
            return -1;
        if (cb)
            cb(user, r, id);
        if (o->n_stop_strings > 0) {
            if (al_tokenizer_decode_token(tok, prev, id, &s->text))
                return -1;
            if (ends_with_stop_string(s, o))
                finish = AL_FINISH_STOP_STRING;
        }
        if (finish < 0 && res->ids.n >= o->max_new_tokens)
            finish = AL_FINISH_LENGTH;
        if (finish < 0 && s->fed >= max_len)
            finish = AL_FINISH_CONTEXT;
    }
    s->next = id;
    if (finish < 0)
        return 0;
    res->finish = finish;
    s->done = true;
    return 1;
}

static int check_args(const al_model *m, const al_tokenizer *tok, const al_ints *prompts, int n,
                      const al_gen_opts *o, int *max_len)
{
    if (o->n_stop_strings > 0 && !tok)
        return al_fail("generate: stop strings need a tokenizer");
    if (o->max_batch < 0)
        return al_fail("generate: max_batch must be >= 0 (0 = all at once), got %d", o->max_batch);
    *max_len = 0;
    for (int i = 0; i < n; i++) {
        if (prompts[i].n <= 0)
            return al_fail("generate: prompt %d is empty (it needs at least a BOS token)", i);
        if (prompts[i].n > m->cfg.seq_len)
            return al_fail("generate: prompt %d has %d tokens, the model %d positions", i, prompts[i].n,
                           m->cfg.seq_len);
        int want = prompts[i].n + o->max_new_tokens;
        *max_len = want > *max_len ? want : *max_len;
    }
    if (*max_len > m->cfg.seq_len)
        *max_len = m->cfg.seq_len;
    return 0;
}

int al_generate(const al_model *m, const al_tokenizer *tok, const al_ints *prompts, int n, const al_gen_opts *opts,
                al_gen_result *results, al_gen_callback cb, void *user)
{
    if (n <= 0)
        return 0;
    for (int i = 0; i < n; i++)
        memset(&results[i], 0, sizeof results[i]);
    if (opts->max_new_tokens <= 0)
        return 0;
    int max_len = 0;
    if (check_args(m, tok, prompts, n, opts, &max_len))
        return -1;
    const int S = opts->max_batch > 0 && opts->max_batch < n ? opts->max_batch : n;
    const double t_setup = al_now();
    al_decoder *dec = al_decoder_new_kv(m, S, max_len, opts->kv);
    if (dec && opts->weights != AL_W_F32 && al_decoder_set_weights(dec, opts->weights)) {
        al_decoder_free(dec);
        dec = NULL;
    }
    gen_run g = {.m = m, .prompts = prompts, .o = opts, .results = results};
    g.rq = calloc((size_t)n, sizeof *g.rq);
    g.slot_req = malloc((size_t)S * sizeof(int));
    g.rows_req = malloc((size_t)S * sizeof(int));
    g.sampled = malloc((size_t)S * sizeof(int));
    int *seqs = malloc((size_t)S * sizeof(int)), *toks = malloc((size_t)S * sizeof(int));
    int rc = 0;
    if (!dec || !g.rq || !g.slot_req || !g.rows_req || !g.sampled || !seqs || !toks)
        rc = dec ? al_fail("out of memory") : -1;
    for (int i = 0; i < n && rc == 0; i++) {
        al_sampler_opts so = opts->sampling;
        so.seed = opts->sampling.seed + (uint64_t)i;
        rc = al_sampler_init(&g.rq[i].sampler, m->cfg.vocab_size, &so);
        g.rq[i].slot = -1;
    }
    for (int s = 0; s < S && g.slot_req; s++)
        g.slot_req[s] = -1;
    int queued = 0, live = 0;
    /* The thread team is made here, with the decoder, rather than inside the first step. */
#pragma omp parallel
    {
    }
    const double t_steps = al_now();
    while (rc == 0 && (queued < n || live > 0)) {
        for (int s = 0; s < S && queued < n && rc == 0; s++)
            if (g.slot_req[s] < 0) {
                rc = admit(&g, dec, S, s, queued++);
                live += rc == 0;
            }
        if (rc)
            break;
        int k = 0;
        for (int s = 0; s < S; s++)
            if (g.slot_req[s] >= 0) {
                g.rows_req[k] = g.slot_req[s];
                seqs[k] = s;
                toks[k] = g.rq[g.slot_req[s]].next;
                k++;
            }
        if (!al_decoder_step_each(dec, seqs, toks, k, sample_row, &g)) {
            rc = -1;
            break;
        }
        /* in slot order, so callbacks come in a fixed order */
        for (int j = 0; j < k && rc == 0; j++) {
            const int r = g.rows_req[j];
            int f = advance(&g, tok, r, g.sampled[j], max_len, cb, user);
            if (f < 0)
                rc = -1;
            else if (f > 0) {
                g.slot_req[g.rq[r].slot] = -1;
                g.rq[r].slot = -1;
                live--;
            }
        }
    }
    if (opts->stats)
        *opts->stats = (al_gen_stats){.setup_seconds = t_steps - t_setup, .step_seconds = al_now() - t_steps};
    for (int i = 0; i < n && g.rq; i++) {
        al_sampler_free(&g.rq[i].sampler);
        al_buf_free(&g.rq[i].text);
    }
    al_decoder_free(dec);
    free(g.rq), free(g.slot_req), free(g.rows_req), free(g.sampled), free(seqs), free(toks);
    return rc;
}

void al_gen_results_free(al_gen_result *r, int n)
{
    for (int i = 0; i < n; i++)
        al_ints_free(&r[i].ids);
}
