/* Perplexity heuristics for adversarial prompts, after NeMo Guardrails'
 * jailbreak_detection/heuristics: optimized attack strings (GCG suffixes) are token soup
 * that a language model finds very unlikely, while pasted jailbreak templates are long
 * and fluent.  The language model is any model align loads; the decoder scores a text
 * token by token through its KV cache. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "align/guard.h"
#include "align/model.h"
#include "align/tokenizer.h"

struct al_ppl_guard {
    al_model model;
    al_tokenizer *tok;
    al_decoder *dec;
};

al_ppl_opts al_ppl_defaults(void)
{
    return (al_ppl_opts){.lp_threshold = 89.79f, .ps_threshold = 1845.65f, .min_words = 20, .window_words = 19};
}

al_ppl_guard *al_ppl_guard_open(const char *model_path, const char *tokenizer_path)
{
    al_ppl_guard *g = calloc(1, sizeof *g);
    if (!g) {
        al_fail("perplexity guard: out of memory");
        return NULL;
    }
    if (al_model_load(&g->model, model_path)) {
        free(g);
        return NULL;
    }
    if (al_tokenizer_load(&g->tok, tokenizer_path)) {
        al_model_free(&g->model);
        free(g);
        return NULL;
    }
    if (al_tokenizer_vocab_size(g->tok) > g->model.cfg.vocab_size) {
        al_fail("%s: tokenizer has %d tokens but the model %s only %d", tokenizer_path,
                al_tokenizer_vocab_size(g->tok), model_path, g->model.cfg.vocab_size);
        al_ppl_guard_close(g);
        return NULL;
    }
    g->dec = al_decoder_new(&g->model, 1, g->model.cfg.seq_len);
    if (!g->dec) {
        al_ppl_guard_close(g);
        return NULL;
    }
    return g;
}

void al_ppl_guard_close(al_ppl_guard *g)
{
    if (!g)
        return;
    al_decoder_free(g->dec);
    al_tokenizer_free(g->tok);
    al_model_free(&g->model);
    free(g);
}

/* log p(next | logits), computed stably. */
static double log_prob(const float *logits, int vocab, int next)
{
    float mx = logits[0];
    for (int i = 1; i < vocab; i++)
        mx = logits[i] > mx ? logits[i] : mx;
    double z = 0;
    for (int i = 0; i < vocab; i++)
        z += exp((double)(logits[i] - mx));
    return (double)(logits[next] - mx) - log(z);
}

int al_ppl_perplexity(al_ppl_guard *g, const char *text, double *ppl, int *n_tokens)
{
    al_ints ids = {0};
    if (al_tokenizer_encode(g->tok, text, strlen(text), false, false, &ids))
        return -1;
    int bos = al_tokenizer_bos(g->tok);
    if (bos < 0)
        bos = g->model.cfg.bos_id;
    const int vocab = g->model.cfg.vocab_size, window = g->model.cfg.seq_len - 1;
    double nll = 0;
    /* Each window starts from BOS, so every token of the text is predicted once; a text
     * longer than the context is scored in consecutive windows (NeMo uses a stride of
     * the context length the same way). */
    for (int start = 0; start < ids.n; start += window) {
        int end = start + window < ids.n ? start + window : ids.n, prev = bos;
        al_decoder_reset(g->dec, 0);
        for (int i = start; i < end; i++) {
            float *logits = al_decoder_step(g->dec, NULL, &prev, 1);
            if (!logits) {
                al_ints_free(&ids);
                return -1;
            }
            nll -= log_prob(logits, vocab, ids.v[i]);
            prev = ids.v[i];
        }
    }
    *n_tokens = ids.n;
    *ppl = ids.n ? exp(nll / ids.n) : 1.0;
    al_ints_free(&ids);
    return 0;
}

/* Byte ranges of the whitespace-separated words of text (Python's str.split()). */
static int split_words(const char *text, size_t **starts, size_t **ends)
{
    size_t n = strlen(text);
    int count = 0;
    *starts = malloc((n / 2 + 1) * sizeof **starts);
    *ends = malloc((n / 2 + 1) * sizeof **ends);
    if (!*starts || !*ends) {
        free(*starts);
        free(*ends);
        return al_fail("perplexity guard: out of memory");
    }
    for (size_t i = 0; i < n;) {
        while (i < n && isspace((unsigned char)text[i]))
            i++;
        if (i == n)
            break;
        (*starts)[count] = i;
        while (i < n && !isspace((unsigned char)text[i]))
            i++;
        (*ends)[count++] = i;
    }
    return count;
}

/* Perplexity of words [a, b) joined by single spaces (" ".join(words[a:b])). */
static int window_perplexity(al_ppl_guard *g, const char *text, const size_t *starts, const size_t *ends, int a,
                             int b, double *ppl)
{
    al_buf w = {0};
    for (int i = a; i < b; i++)
        if ((i > a && al_buf_append(&w, " ", 1)) || al_buf_append(&w, text + starts[i], ends[i] - starts[i])) {
            al_buf_free(&w);
            return -1;
        }
    int n;
    int rc = al_ppl_perplexity(g, w.data ? w.data : "", ppl, &n);
    al_buf_free(&w);
    return rc;
}

int al_ppl_check(al_ppl_guard *g, const char *text, const al_ppl_opts *o, al_ppl_result *out)
{
    memset(out, 0, sizeof *out);
    if (al_ppl_perplexity(g, text, &out->perplexity, &out->n_tokens))
        return -1;
    /* NeMo divides Python's len() (code points); UTF-8 continuation bytes are skipped to
     * count the same thing. */
    size_t chars = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        chars += (*p & 0xC0) != 0x80;
    out->length_per_perplexity = (double)chars / out->perplexity;
    out->lp_jailbreak = out->length_per_perplexity >= o->lp_threshold;

    size_t *starts, *ends;
    int words = split_words(text, &starts, &ends);
    if (words < 0)
        return -1;
    int rc = 0;
    if (words >= o->min_words && o->window_words > 0) {
        int w = o->window_words < words ? o->window_words : words;
        /* NeMo's windows: words[0:19] and words[-20:-1] (the last word left out). */
        int suffix_end = words - 1, suffix_start = suffix_end - w > 0 ? suffix_end - w : 0;
        rc = window_perplexity(g, text, starts, ends, 0, w, &out->prefix_perplexity);
        if (!rc)
            rc = window_perplexity(g, text, starts, ends, suffix_start, suffix_end, &out->suffix_perplexity);
        out->ps_jailbreak = !rc && (out->prefix_perplexity >= o->ps_threshold ||
                                    out->suffix_perplexity >= o->ps_threshold);
    }
    free(starts);
    free(ends);
    out->jailbreak = out->lp_jailbreak || out->ps_jailbreak;
    return rc;
}
