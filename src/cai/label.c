/* AI feedback: the model as judge of answer pairs under the constitution's questions.
 *
 * For a pair and a principle the judge reads one user turn, the principle's question with
 * the prompt and the two answers as options (A) and (B), and, as the start of its own
 * reply, "The better answer is (".  The soft label is P(A) / (P(A) + P(B)) over the next
 * token (al_cai_soft_label).  Every question is asked twice, the answers in both orders:
 * the pair's label under the principle is the mean of the two (the order's bias cancels)
 * and the pair is swap-consistent when both orders prefer the same answer.  Several
 * principles, drawn from the seed without repeats, are averaged (ensembling).  With
 * chain-of-thought the judge's reply is begun with "Let's think step by step. ", it writes
 * its reasoning, and the option is then read after the reasoning and the same prefix. */
#include <jansson.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "align/cai.h"
#include "align/core.h"
#include "cai_internal.h"

#define COT_PREFIX "Let's think step by step. "

al_cai_label_opts al_cai_label_defaults(void)
{
    al_cai_label_opts o = {.principles = 2, .batch = 16, .seed = 1, .clamp_lo = 0, .clamp_hi = 1, .cot_tokens = 0};
    o.cot_sampling = al_sampler_defaults();
    return o;
}

/* the single token of text following prefix, or -1 */
int cai_next_token(const al_tokenizer *tok, const char *prefix, const char *letter)
{
    /* the letter as it follows "(": encode "(" and "(A" and take the difference */
    al_ints a = {0}, b = {0};
    char with[64];
    snprintf(with, sizeof with, "%s%s", prefix, letter);
    int id = -1;
    if (al_tokenizer_encode(tok, prefix, strlen(prefix), false, false, &a) == 0 &&
        al_tokenizer_encode(tok, with, strlen(with), false, false, &b) == 0 && b.n == a.n + 1 &&
        !memcmp(a.v, b.v, (size_t)a.n * sizeof *a.v))
        id = b.v[b.n - 1];
    al_ints_free(&a);
    al_ints_free(&b);
    return id;
}

int al_cai_judge_question(const char *question, const char *prompt, const char *a, const char *b, al_buf *out)
{
    return al_buf_printf(
        out, "%s\n\nConversation:\nUser: %s\n\nOption (A):\n%s\n\nOption (B):\n%s\n\nAnswer with (A) or (B).", question,
        prompt, a, b);
}

static int judge_ids(const al_tokenizer *tok, const al_chat_template *t, const al_principle *p, const char *prompt,
                     const char *first, const char *second, const char *reasoning, bool ask, al_ints *ids)
{
    al_buf q = {0}, reply = {0};
    int rc = al_cai_judge_question(p->question, prompt, first, second, &q);
    /* with chain-of-thought the judge first reasons (ask false: its reasoning is generated
     * next), then the reasoning is kept and the answer asked for */
    if (rc == 0 && reasoning)
        rc = al_buf_printf(&reply, "%s%s%s", COT_PREFIX, reasoning, ask ? "\n" : "");
    if (rc == 0 && ask)
        rc = al_buf_append(&reply, AL_CAI_JUDGE_REPLY, strlen(AL_CAI_JUDGE_REPLY));
    rc = rc || cai_encode_user_turn(tok, t, q.data, reply.data, ids);
    al_buf_free(&q);
    al_buf_free(&reply);
    return rc;
}

/* The next-token logits after each of n prompts, read through one decoder. */
int cai_prompt_logits(const al_model *m, const al_ints *ids, int n, float *out)
{
    const int V = m->cfg.vocab_size;
    int longest = 0;
    for (int i = 0; i < n; i++)
        longest = ids[i].n > longest ? ids[i].n : longest;
    if (longest > m->cfg.seq_len)
        return al_fail("a judge prompt needs %d tokens; the model's context holds %d (shorter answers, or "
                       "a model with a longer context)",
                       longest, m->cfg.seq_len);
    al_decoder *dec = al_decoder_new(m, n, longest);
    int *seqs = malloc((size_t)n * sizeof *seqs), *toks = malloc((size_t)n * sizeof *toks), rc = 0;
    if (!dec || !seqs || !toks)
        rc = al_fail("out of memory");
    for (int t = 0; rc == 0 && t < longest; t++) {
        int k = 0;
        for (int i = 0; i < n; i++)
            if (t < ids[i].n)
                seqs[k] = i, toks[k] = ids[i].v[t], k++;
        const float *logits = al_decoder_step(dec, seqs, toks, k);
        if (!logits) {
            rc = -1;
            break;
        }
        for (int j = 0; j < k; j++)
            if (t == ids[seqs[j]].n - 1)
                memcpy(out + (size_t)seqs[j] * V, logits + (size_t)j * V, (size_t)V * sizeof(float));
    }
    al_decoder_free(dec);
    free(seqs), free(toks);
    return rc;
}

/* skip_too_long: a pair whose questions, with extra tokens still to come (its reasoning),
 * do not fit the context is marked and its questions shrunk to one token, so the batch
 * still runs.  Without it the usual checks fail the call (cai_check_context before the
 * reasoning, cai_prompt_logits before the answer). */
static void mark_too_long(const al_model *m, al_ints *q, int per, int extra, bool *skip)
{
    for (int k = 0; k < per; k++)
        *skip = *skip || q[k].n + extra > m->cfg.seq_len;
    for (int k = 0; *skip && k < per; k++)
        q[k].n = q[k].n > 0 ? 1 : 0;
}

int al_cai_label(const al_model *m, const al_tokenizer *tok, const al_chat_template *t, const al_constitution *c,
                 const al_cai_pair *pairs, int n, const al_cai_label_opts *o, al_cai_pair_label *out)
{
    if (n <= 0 || o->principles < 1 || o->principles > c->n_principles || o->principles > AL_CAI_MAX_PRINCIPLES ||
        o->batch < 1 ||
        !(o->clamp_lo <= o->clamp_hi))
        return al_fail("cai label: need pairs, 1..%d principles per pair (at most %d), batch >= 1 and clamp_lo <= "
                       "clamp_hi",
                       c->n_principles, AL_CAI_MAX_PRINCIPLES);
    const int ta = cai_next_token(tok, "(", "A"), tb = cai_next_token(tok, "(", "B"), V = m->cfg.vocab_size;
    if (ta < 0 || tb < 0 || ta == tb)
        return al_fail("cai label: the tokenizer does not give 'A' and 'B' one token each after '(': the judge's "
                       "options cannot be read");
    /* per pair, its principles (a partial Fisher-Yates from the seed), then every question
     * in both orders: 2 * principles judge prompts per pair */
    const int per = 2 * o->principles;
    int *chosen = malloc((size_t)n * o->principles * sizeof *chosen);
    int *order = malloc(sizeof(int) * (size_t)c->n_principles);
    al_ints *ids = calloc((size_t)o->batch * per, sizeof *ids);
    float *logits = malloc((size_t)o->batch * per * V * sizeof *logits);
    char **cot = o->cot_tokens > 0 ? calloc((size_t)o->batch * per, sizeof *cot) : NULL;
    bool *too_long = calloc((size_t)o->batch, sizeof *too_long);
    int rc = chosen && order && ids && logits && too_long && (cot || o->cot_tokens <= 0) ? 0 : al_fail("out of memory");
    uint64_t rng = al_mix64(o->seed ^ 0x1ABE1u) | 1;
    for (int i = 0; rc == 0 && i < n; i++) {
        for (int k = 0; k < c->n_principles; k++)
            order[k] = k;
        for (int k = 0; k < o->principles; k++) {
            int j = k + (int)(al_xorshift_u32(&rng) % (uint32_t)(c->n_principles - k)), s = order[k];
            order[k] = order[j], order[j] = s;
            chosen[(size_t)i * o->principles + k] = order[k];
        }
    }
    for (int i0 = 0; rc == 0 && i0 < n; i0 += o->batch) {
        int b = n - i0 < o->batch ? n - i0 : o->batch;
        memset(too_long, 0, (size_t)o->batch * sizeof *too_long);
        /* with chain-of-thought: the reasoning of every question first */
        for (int j = 0; rc == 0 && o->cot_tokens > 0 && j < b; j++)
            for (int k = 0; rc == 0 && k < o->principles; k++) {
                const al_cai_pair *pr = &pairs[i0 + j];
                const al_principle *p = &c->principles[chosen[(size_t)(i0 + j) * o->principles + k]];
                rc = judge_ids(tok, t, p, pr->prompt, pr->a, pr->b, "", false, &ids[j * per + 2 * k]) ||
                     judge_ids(tok, t, p, pr->prompt, pr->b, pr->a, "", false, &ids[j * per + 2 * k + 1]);
            }
        if (rc == 0 && o->cot_tokens > 0) {
            al_sampler_opts so = o->cot_sampling;
            so.seed = o->seed + (uint64_t)i0 * (uint64_t)per;
            for (int j = 0; o->skip_too_long && j < b; j++)
                mark_too_long(m, ids + j * per, per, o->cot_tokens, &too_long[j]);
            rc = cai_check_context(m, ids, b * per, o->cot_tokens) ||
                 cai_generate_texts(m, tok, t, ids, b * per, o->cot_tokens, so, b * per, cot);
        }
        for (int j = 0; rc == 0 && j < b; j++)
            for (int k = 0; rc == 0 && k < o->principles; k++) {
                const int q = j * per + 2 * k;
                const char *r1 = o->cot_tokens > 0 ? cot[q] : NULL, *r2 = o->cot_tokens > 0 ? cot[q + 1] : NULL;
                const al_cai_pair *pr = &pairs[i0 + j];
                const al_principle *p = &c->principles[chosen[(size_t)(i0 + j) * o->principles + k]];
                rc = judge_ids(tok, t, p, pr->prompt, pr->a, pr->b, r1, true, &ids[q]) ||
                     judge_ids(tok, t, p, pr->prompt, pr->b, pr->a, r2, true, &ids[q + 1]);
            }
        for (int q = 0; cot && q < b * per; q++) {
            free(cot[q]);
            cot[q] = NULL;
        }
        for (int j = 0; rc == 0 && o->skip_too_long && j < b; j++)
            mark_too_long(m, ids + j * per, per, 0, &too_long[j]);
        rc = rc || cai_prompt_logits(m, ids, b * per, logits);
        for (int j = 0; rc == 0 && j < b; j++) {
            al_cai_pair_label *L = &out[i0 + j];
            double labels[AL_CAI_MAX_PRINCIPLES];
            int consistent = 0;
            if (too_long[j]) {
                L->label = L->swap_consistent = NAN;
                L->n_principles = 0;
                continue;
            }
            for (int k = 0; k < o->principles && rc == 0; k++) {
                double ab = al_cai_soft_label(logits + (size_t)(j * per + 2 * k) * V, V, ta, tb);
                double ba = al_cai_soft_label(logits + (size_t)(j * per + 2 * k + 1) * V, V, ta, tb);
                if (ab != ab || ba != ba) {
                    rc = -1;
                    break;
                }
                consistent += al_cai_swap_consistent(ab, ba);
                labels[k] = al_cai_clamp_label((ab + al_cai_unswap(ba)) / 2, o->clamp_lo, o->clamp_hi);
                L->principle[k] = chosen[(size_t)(i0 + j) * o->principles + k];
            }
            L->n_principles = o->principles;
            L->label = rc ? 0 : al_cai_ensemble(labels, o->principles);
            L->swap_consistent = rc ? 0 : (double)consistent / o->principles;
        }
    }
    for (int j = 0; ids && j < o->batch * per; j++)
        al_ints_free(&ids[j]);
    for (int q = 0; cot && q < o->batch * per; q++)
        free(cot[q]);
    free(cot);
    free(ids), free(logits), free(chosen), free(order), free(too_long);
    return rc ? -1 : 0;
}

typedef struct label_rows {
    const al_cai_pair *pairs;
    const al_cai_pair_label *labels;
    const al_constitution *c;
    const int *kept; /* row i is pair kept[i] */
} label_rows;

static json_t *label_row(void *ctx, int row)
{
    const label_rows *r = ctx;
    const int i = r->kept[row];
    json_t *ps = json_array();
    for (int k = 0; k < r->labels[i].n_principles; k++)
        json_array_append_new(ps, json_string(r->c->principles[r->labels[i].principle[k]].name));
    return json_pack("{s:o, s:o, s:o, s:f, s:o, s:f}", "prompt", cai_turn("user", r->pairs[i].prompt), "chosen",
                     cai_turn("assistant", r->pairs[i].a), "rejected", cai_turn("assistant", r->pairs[i].b), "label",
                     r->labels[i].label, "principles", ps, "swap_consistent", r->labels[i].swap_consistent);
}

int al_cai_write_labels(const char *path, const al_cai_pair *pairs, const al_cai_pair_label *labels, int n,
                        const al_constitution *c)
{
    int *kept = malloc(sizeof *kept * (size_t)(n > 0 ? n : 1)), n_kept = 0;
    if (!kept)
        return al_fail("out of memory");
    for (int i = 0; i < n; i++)
        if (!isnan(labels[i].label))
            kept[n_kept++] = i;
    label_rows r = {pairs, labels, c, kept};
    int rc = cai_write_jsonl(path, n_kept, label_row, &r);
    free(kept);
    return rc;
}
