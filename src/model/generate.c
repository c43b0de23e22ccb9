/* Batched generation: every live sequence advances one token per decoder step.  Prompts
 * of different lengths need no padding: a sequence still reading its prompt feeds the
 * next prompt token and ignores the logits, as run.c does for a single stream. */
#include <stdlib.h>
#include <string.h>

#include "align/model.h"

typedef struct seq_state {
    int fed;      /* tokens fed so far */
    int next;     /* token to feed at the next step */
    bool done;
    al_sampler sampler;
    al_buf text;  /* decoded output, for stop strings */
} seq_state;

static bool ends_with_stop_string(seq_state *s, const al_gen_opts *o)
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

int al_generate(const al_model *m, const al_tokenizer *tok, const al_ints *prompts, int n, const al_gen_opts *opts,
                al_gen_result *results, al_gen_callback cb, void *user)
{
    if (n <= 0)
        return 0;
    if (opts->max_new_tokens <= 0) {
        for (int i = 0; i < n; i++)
            memset(&results[i], 0, sizeof results[i]);
        return 0;
    }
    if (opts->n_stop_strings > 0 && !tok)
        return al_fail("generate: stop strings need a tokenizer");
    int max_len = 0;
    for (int i = 0; i < n; i++) {
        if (prompts[i].n <= 0)
            return al_fail("generate: prompt %d is empty (it needs at least a BOS token)", i);
        int want = prompts[i].n + opts->max_new_tokens;
        max_len = want > max_len ? want : max_len;
    }
    if (max_len > m->cfg.seq_len)
        max_len = m->cfg.seq_len;
    al_decoder *dec = al_decoder_new(m, n, max_len);
    seq_state *st = calloc((size_t)n, sizeof *st);
    int *seqs = malloc((size_t)n * sizeof(int)), *toks = malloc((size_t)n * sizeof(int));
    int *next = malloc((size_t)n * sizeof(int));
    if (!dec || !st || !seqs || !toks || !next) {
        al_decoder_free(dec);
        free(st), free(seqs), free(toks), free(next);
        return dec ? al_fail("out of memory") : -1;
    }
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        memset(&results[i], 0, sizeof results[i]);
        al_sampler_opts so = opts->sampling;
        so.seed = opts->sampling.seed + (uint64_t)i;
        rc = al_sampler_init(&st[i].sampler, m->cfg.vocab_size, &so);
        st[i].next = prompts[i].v[0];
    }
    int live = n;
    while (rc == 0 && live > 0) {
        int k = 0;
        for (int i = 0; i < n; i++) {
            if (st[i].done)
                continue;
            seqs[k] = i;
            toks[k] = st[i].next;
            k++;
        }
        float *logits = al_decoder_step(dec, seqs, toks, k);
        if (!logits) {
            rc = -1;
            break;
        }
        /* Sampling is independent per sequence (each has its own sampler and RNG), so it
         * runs in parallel; the bookkeeping after it stays serial and in order. */
#pragma omp parallel for schedule(static) if (k > 1)
        for (int j = 0; j < k; j++) {
            int i = seqs[j];
            if (st[i].fed + 1 < prompts[i].n)
                continue;
            next[j] = al_sample(&st[i].sampler, logits + (size_t)j * m->cfg.vocab_size, results[i].ids.v,
                                results[i].ids.n);
        }
        for (int j = 0; j < k; j++) {
            int i = seqs[j];
            seq_state *s = &st[i];
            s->fed++;
            if (s->fed < prompts[i].n) {
                s->next = prompts[i].v[s->fed];
                continue;
            }
            int id = next[j];
            int finish = -1;
            for (int q = 0; q < opts->n_stop_ids; q++)
                if (id == opts->stop_ids[q])
                    finish = AL_FINISH_STOP_ID;
            if (finish < 0) {
                int prev = results[i].ids.n ? results[i].ids.v[results[i].ids.n - 1] : prompts[i].v[prompts[i].n - 1];
                if (al_ints_push(&results[i].ids, id)) {
                    rc = -1;
                    break;
                }
                if (cb)
                    cb(user, i, id);
                if (opts->n_stop_strings > 0) {
                    if (al_tokenizer_decode_token(tok, prev, id, &s->text)) {
                        rc = -1;
                        break;
                    }
                    if (ends_with_stop_string(s, opts))
                        finish = AL_FINISH_STOP_STRING;
                }
                if (finish < 0 && results[i].ids.n >= opts->max_new_tokens)
                    finish = AL_FINISH_LENGTH;
                if (finish < 0 && s->fed >= max_len)
                    finish = AL_FINISH_CONTEXT;
            }
            s->next = id;
            if (finish >= 0) {
                results[i].finish = finish;
                s->done = true;
                live--;
            }
        }
    }
    for (int i = 0; i < n; i++) {
        al_sampler_free(&st[i].sampler);
        al_buf_free(&st[i].text);
    }
    al_decoder_free(dec);
    free(st), free(seqs), free(toks), free(next);
    return rc;
}

void al_gen_results_free(al_gen_result *r, int n)
{
    for (int i = 0; i < n; i++)
        al_ints_free(&r[i].ids);
}
