/* Rollouts: G samples per prompt from one exact decoder.  Each prompt is read once and
 * its cache copied to its G sequences; every sampled token's log-probability is taken
 * from the same logits the token was drawn from, by the training forward's own code
 * (al_logprob), so the trainer can demand a probability ratio of exactly 1. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rl_internal.h"

void rl_rollout_free(rl_rollout *r)
{
    free(r->prompt), free(r->seq), free(r->ids), free(r->logp), free(r->len), free(r->eos);
    *r = (rl_rollout){0};
}


static bool is_stop(int id, const int *stop_ids, int n_stop)
{
    for (int k = 0; k < n_stop; k++)
        if (id == stop_ids[k])
            return true;
    return false;
}

/* Reads every prompt into its group's first sequence, all prompts advancing together;
 * the logits after each prompt's last token go to first[p]. */
static int prefill(al_decoder *dec, const rl_prompts *ps, const int *prompts, int n_prompts, int G, int V,
                   float *first, int *seqs, int *toks)
{
    int longest = 0;
    for (int p = 0; p < n_prompts; p++)
        if (ps->p[prompts[p]].ids.n > longest)
            longest = ps->p[prompts[p]].ids.n;
    for (int t = 0; t < longest; t++) {
        int k = 0;
        for (int p = 0; p < n_prompts; p++) {
            const al_ints *ids = &ps->p[prompts[p]].ids;
            if (t < ids->n)
                seqs[k] = p * G, toks[k] = ids->v[t], k++;
        }
        const float *logits = al_decoder_step(dec, seqs, toks, k);
        if (!logits)
            return -1;
        for (int j = 0; j < k; j++) {
            int p = seqs[j] / G;
            if (t == ps->p[prompts[p]].ids.n - 1)
                memcpy(first + (size_t)p * V, logits + (size_t)j * V, (size_t)V * sizeof(float));
        }
    }
    for (int p = 0; p < n_prompts; p++)
        for (int g = 1; g < G; g++)
            if (al_decoder_copy_seq(dec, p * G + g, p * G))
                return -1;
    return 0;
}

/* The sampling loop: every live sequence draws its token from its row of cur, then the
 * live ones advance through the decoder.  One parallel region for the whole loop: each
 * step splits the live sequences evenly over the threads, and a thread samples and
 * decodes its share with no fork in between (the step's rows are independent, and each
 * sequence has its own sampler, so the tokens do not depend on the split). */
static int sample_loop(rl_rollout *r, al_decoder *dec, const rl_prompts *ps, float *cur, float *scratch, int *seqs,
                       int *toks, bool *done, al_sampler *samplers, int V, float temperature, int max_len,
                       const int *stop_ids, int n_stop)
{
    const int n = r->n, max_new = r->max_new;
    int failed = 0;
    char why[512] = "";
#pragma omp parallel if (n > 1)
    {
        const int nt = omp_get_num_threads(), t = omp_get_thread_num();
        float *sc = scratch + 2 * (size_t)V * t; /* al_sample rewrites its logits: a copy, and al_logprob's row */
        int *mine = malloc((size_t)n * sizeof *mine);
        long tokens = 0;
        if (!mine) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp barrier
        for (;;) {
            /* this thread's share: the live sequences [lo, hi) in index order, read before
             * the barrier (after it the owners mark their finished ones) */
            int live = 0, stop, lo = 0, share = 0;
#pragma omp atomic read
            stop = failed;
            for (int i = 0; i < n && !stop; i++)
                live += !done[i];
            if (!stop) {
                lo = (int)((long)live * t / nt);
                const int hi = (int)((long)live * (t + 1) / nt);
                for (int i = 0, k = 0; i < n && k < hi; i++)
                    if (!done[i] && k++ >= lo)
                        mine[share++] = i;
            }
#pragma omp barrier
            if (live == 0 || stop)
                break;
            int m = 0; /* survivors, at decoder rows from lo on */
            for (int j = 0; j < share; j++) {
                const int i = mine[j];
                const float *row = cur + (size_t)i * V;
                int *hist = r->ids + (size_t)i * max_new;
                memcpy(sc, row, (size_t)V * sizeof(float));
                const int id = al_sample(&samplers[i], sc, hist, r->len[i]);
                r->logp[(size_t)i * max_new + r->len[i]] = al_logprob(row, V, temperature, id, sc + V);
                hist[r->len[i]++] = id;
                tokens++;
                const int pos = ps->p[r->prompt[i]].ids.n + r->len[i];
                if (is_stop(id, stop_ids, n_stop) || r->len[i] == max_new || pos >= max_len) {
                    r->eos[i] = is_stop(id, stop_ids, n_stop);
                    done[i] = true;
                    continue;
                }
                seqs[lo + m] = i, toks[lo + m] = id, m++;
            }
            if (m > 0) {
                const float *logits = al_decoder_step_rows(dec, seqs + lo, toks + lo, m, lo);
                if (!logits) {
#pragma omp critical(rl_rollout_error)
                    if (!why[0])
                        snprintf(why, sizeof why, "%s", al_errmsg());
#pragma omp atomic write
                    failed = 1;
                } else {
                    for (int j = 0; j < m; j++)
                        memcpy(cur + (size_t)seqs[lo + j] * V, logits + (size_t)j * V, (size_t)V * sizeof(float));
                }
            }
#pragma omp barrier
        }
#pragma omp atomic
        r->tokens += tokens;
        free(mine);
    }
    return failed ? al_fail("%s", why) : 0;
}

/* keep's decoder reset and refreshed from m when it fits n sequences of max_len, else a new
 * one sized for the longest prompt of ps (kept in keep when given) */
static al_decoder *rollout_decoder(rl_decoder *keep, const al_model *m, const rl_prompts *ps, int n, int max_len,
                                   int max_new, al_weight_type wt)
{
    if (keep && keep->d && keep->n == n && keep->max_len >= max_len) {
        al_decoder_reset(keep->d, -1);
        if (al_decoder_set_exact(keep->d, true)) /* the weights have moved since the last rollout */
            return NULL;
        return keep->d;
    }
    if (keep) {
        for (int i = 0; i < ps->n; i++)
            max_len = ps->p[i].ids.n + max_new > max_len ? ps->p[i].ids.n + max_new : max_len;
        max_len = max_len > m->cfg.seq_len ? m->cfg.seq_len : max_len;
        al_decoder_free(keep->d);
        *keep = (rl_decoder){0};
    }
    al_decoder *d = al_decoder_new(m, n, max_len);
    if (d && ((wt != AL_W_F32 && al_decoder_set_weights(d, wt)) || al_decoder_set_exact(d, true))) {
        al_decoder_free(d);
        return NULL;
    }
    if (keep && d)
        *keep = (rl_decoder){.d = d, .n = n, .max_len = max_len};
    return d;
}

int rl_rollout_sample(rl_rollout *r, rl_decoder *keep, const al_model *m, const rl_prompts *ps, const int *prompts,
                      const int *groups, int n_prompts, int G, int max_new, const al_sampler_opts *sampling,
                      const int *stop_ids, int n_stop, uint64_t seed, al_weight_type wt)
{
    const int n = n_prompts * G, V = m->cfg.vocab_size;
    if (!(sampling->temperature > 0))
        return al_fail("rollouts: the sampling temperature must be positive (the policy is softmax(logits / T))");
    *r = (rl_rollout){.n = n, .max_new = max_new};
    int max_len = 0;
    for (int p = 0; p < n_prompts; p++) {
        int want = ps->p[prompts[p]].ids.n + max_new;
        max_len = want > max_len ? want : max_len;
    }
    if (max_len > m->cfg.seq_len)
        max_len = m->cfg.seq_len;
    r->prompt = malloc((size_t)n * sizeof *r->prompt);
    r->seq = malloc((size_t)n * sizeof *r->seq);
    r->ids = malloc((size_t)n * max_new * sizeof *r->ids);
    r->logp = malloc((size_t)n * max_new * sizeof *r->logp);
    r->len = calloc((size_t)n, sizeof *r->len);
    r->eos = calloc((size_t)n, sizeof *r->eos);
    float *cur = malloc((size_t)n * V * sizeof *cur);
    float *scratch = malloc(2 * (size_t)V * omp_get_max_threads() * sizeof *scratch); /* two rows per thread */
    int *seqs = malloc((size_t)n * sizeof *seqs), *toks = malloc((size_t)n * sizeof *toks);
    bool *done = calloc((size_t)n, sizeof *done);
    al_sampler *samplers = calloc((size_t)n, sizeof *samplers);
    al_decoder *dec = NULL;
    int rc = !r->prompt || !r->seq || !r->ids || !r->logp || !r->len || !r->eos || !cur || !scratch || !seqs || !toks ||
                     !done || !samplers
                 ? al_fail("out of memory")
                 : !(dec = rollout_decoder(keep, m, ps, n, max_len, max_new, wt)) ? -1 : 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        r->prompt[i] = prompts[i / G];
        r->seq[i] = (groups ? groups[i / G] : i / G) * G + i % G;
        al_sampler_opts so = *sampling;
        so.seed = al_mix64(seed ^ al_mix64((uint64_t)r->seq[i] + 1)); /* by the global index: rank-independent */
        rc = al_sampler_init(&samplers[i], V, &so);
    }
    float *first = cur; /* group g's first sequence row holds its prompt's logits */
    if (rc == 0 && (rc = prefill(dec, ps, prompts, n_prompts, G, V, cur, seqs, toks)) == 0) {
        /* prefill wrote prompt p's logits at row p; spread them to the group's rows (backwards,
         * so no row is overwritten before it is read) */
        for (int p = n_prompts - 1; p >= 0; p--)
            for (int g = G - 1; g >= 0; g--)
                memmove(cur + ((size_t)p * G + g) * V, first + (size_t)p * V, (size_t)V * sizeof(float));
    }
    if (rc == 0)
        rc = sample_loop(r, dec, ps, cur, scratch, seqs, toks, done, samplers, V, sampling->temperature, max_len,
                         stop_ids, n_stop);
    for (int i = 0; i < n && samplers; i++)
        al_sampler_free(&samplers[i]);
    free(samplers), free(cur), free(scratch), free(seqs), free(toks), free(done);
    if (!keep)
        al_decoder_free(dec);
    if (rc)
        rl_rollout_free(r);
    return rc;
}
