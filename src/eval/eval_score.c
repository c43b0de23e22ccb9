/* The teacher-forced figures of an evaluation: KL to a reference model over the model's
 * own answers, and perplexity on held-out text. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "align/data.h"
#include "eval_internal.h"

enum { ROWS = 8 };

/* KL(p || q) of two logit rows, in double. */
static double kl_row(const float *lp, const float *lq, int V)
{
    double mp = lp[0], mq = lq[0];
    for (int v = 1; v < V; v++) {
        mp = lp[v] > mp ? lp[v] : mp;
        mq = lq[v] > mq ? lq[v] : mq;
    }
    double zp = 0, zq = 0;
    for (int v = 0; v < V; v++) {
        zp += exp(lp[v] - mp);
        zq += exp(lq[v] - mq);
    }
    double lzp = mp + log(zp), lzq = mq + log(zq), kl = 0;
    for (int v = 0; v < V; v++) {
        double a = lp[v] - lzp, b = lq[v] - lzq;
        kl += exp(a) * (a - b);
    }
    return kl;
}

int eval_kl(const al_model *m, const al_model *ref, const al_ints *prompts, const eval_answer *answers, int n,
            bool quiet, double *kl, long *tokens)
{
    *kl = NAN;
    *tokens = 0;
    if (m->cfg.vocab_size != ref->cfg.vocab_size)
        return al_fail("reference: vocabulary of %d tokens, the model has %d (KL needs the same vocabulary)",
                       ref->cfg.vocab_size, m->cfg.vocab_size);
    int T = 1;
    for (int i = 0; i < n; i++)
        if (answers[i].ids.n > 0 && prompts[i].n + answers[i].ids.n - 1 > T)
            T = prompts[i].n + answers[i].ids.n - 1;
    int limit = m->cfg.seq_len < ref->cfg.seq_len ? m->cfg.seq_len : ref->cfg.seq_len;
    T = T < limit ? T : limit;
    al_train_ctx *cm = al_train_ctx_new(m, ROWS, T), *cr = cm ? al_train_ctx_new(ref, ROWS, T) : NULL;
    int *tok = malloc(sizeof(int) * ROWS * (size_t)T), *tgt = malloc(sizeof(int) * ROWS * (size_t)T);
    int *row_of = malloc(sizeof(int) * ROWS);
    int rc = cm && cr && tok && tgt && row_of ? 0 : (cm && cr ? al_fail("out of memory") : -1);
    double sum = 0;
    long count = 0;
    al_progress bar;
    al_progress_begin(&bar, "KL to reference", n);
    bar.enabled = bar.enabled && !quiet;
    const int V = m->cfg.vocab_size;
    for (int start = 0; start < n && rc == 0;) {
        int rows = 0;
        for (int b = 0; b < ROWS * T; b++)
            tok[b] = 0, tgt[b] = -1;
        for (; start < n && rows < ROWS; start++) {
            if (answers[start].ids.n == 0)
                continue;
            const al_ints *p = &prompts[start];
            const eval_answer *a = &answers[start];
            for (int t = 0; t < p->n + a->ids.n - 1 && t < T; t++) {
                tok[rows * T + t] = t < p->n ? p->v[t] : a->ids.v[t - p->n];
                tgt[rows * T + t] = t + 1 < p->n ? p->v[t + 1] : a->ids.v[t + 1 - p->n];
            }
            row_of[rows++] = start;
        }
        if (rows == 0)
            break;
        if (al_forward(cm, tok, tgt, NULL, NULL) || al_forward(cr, tok, tgt, NULL, NULL)) {
            rc = -1;
            break;
        }
        const float *lm = al_ctx_logits(cm), *lr = al_ctx_logits(cr);
        for (int b = 0; b < rows; b++) {
            int i = row_of[b];
            int from = prompts[i].n - 1, to = prompts[i].n + answers[i].ids.n - 1;
            to = to < T ? to : T;
            for (int t = from; t < to; t++) {
                sum += kl_row(lm + ((size_t)b * T + t) * V, lr + ((size_t)b * T + t) * V, V);
                count++;
            }
        }
        al_progress_update(&bar, start, NULL);
    }
    al_progress_end(&bar);
    al_train_ctx_free(cm);
    al_train_ctx_free(cr);
    free(tok), free(tgt), free(row_of);
    if (rc == 0 && count > 0)
        *kl = sum / (double)count;
    *tokens = count;
    return rc;
}

/* Documents of text: lines equal to "<|endoftext|>" separate them (the separator's own
 * line and the newline before it belong to no document), each encoded BOS-first. */
static int encode_documents(const al_tokenizer *tok, const char *text, size_t len, al_ints *ids)
{
    static const char sep[] = "<|endoftext|>";
    const size_t sl = sizeof sep - 1;
    size_t doc = 0;
    bool bos = al_tokenizer_bos(tok) >= 0, eos = !bos && al_tokenizer_eos(tok) >= 0;
    for (size_t line = 0; line <= len;) {
        const char *nl = memchr(text + line, '\n', len - line);
        size_t end = nl ? (size_t)(nl - text) : len;
        bool is_sep = end - line == sl && !memcmp(text + line, sep, sl);
        if (is_sep || end == len) {
            size_t doc_end = is_sep ? (line > doc ? line - 1 : doc) : len;
            if (doc_end > doc && al_tokenizer_encode(tok, text + doc, doc_end - doc, bos, eos, ids))
                return -1;
            doc = end + 1;
        }
        if (!nl)
            break;
        line = end + 1;
    }
    return 0;
}

int eval_perplexity(const al_model *m, const al_tokenizer *tok, const char *path, bool quiet, double *ppl,
                    long *tokens)
{
    *ppl = NAN;
    *tokens = 0;
    al_buf text = {0};
    al_ints ids = {0};
    if (al_read_file(path, &text) || encode_documents(tok, text.data, text.len, &ids)) {
        al_buf_free(&text);
        al_ints_free(&ids);
        return al_fail_prefix("held-out text %s", path);
    }
    al_buf_free(&text);
    if (ids.n < 2) {
        al_ints_free(&ids);
        return al_fail("held-out text %s: fewer than 2 tokens", path);
    }
    int T = m->cfg.seq_len < 256 ? m->cfg.seq_len : 256;
    al_token_stream s = {.ids = malloc(sizeof(uint32_t) * (size_t)ids.n), .n = (size_t)ids.n};
    al_train_ctx *ctx = al_train_ctx_new(m, ROWS, T);
    int *tk = malloc(sizeof(int) * ROWS * (size_t)T), *tg = malloc(sizeof(int) * ROWS * (size_t)T);
    int rc = s.ids && ctx && tk && tg ? 0 : (ctx ? al_fail("out of memory") : -1);
    for (int i = 0; rc == 0 && i < ids.n; i++)
        s.ids[i] = (uint32_t)ids.v[i];
    al_ints_free(&ids);
    double nll = 0;
    long count = 0;
    long batches = ((long)s.n - 1 + (long)ROWS * T - 1) / ((long)ROWS * T);
    al_progress bar;
    al_progress_begin(&bar, "held-out perplexity", batches);
    bar.enabled = bar.enabled && !quiet;
    for (int e = 0; rc == 0; e++) {
        int got = al_eval_batch(&s, e, ROWS, T, tk, tg);
        if (got <= 0) {
            rc = got < 0 ? -1 : 0;
            break;
        }
        if (al_forward(ctx, tk, tg, NULL, NULL)) {
            rc = -1;
            break;
        }
        const float *lp = al_ctx_logp(ctx);
        for (int k = 0; k < ROWS * T; k++)
            if (tg[k] >= 0)
                nll -= lp[k], count++;
        al_progress_update(&bar, e + 1, NULL);
    }
    al_progress_end(&bar);
    free(s.ids);
    free(tk), free(tg);
    al_train_ctx_free(ctx);
    if (rc == 0 && count > 0)
        *ppl = exp(nll / (double)count);
    *tokens = count;
    return rc;
}
