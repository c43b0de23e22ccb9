/* The supervised stage of Constitutional AI: answer, then for each round sample a
 * principle, ask the model to critique its answer under it, and ask it to revise.
 *
 * Every phase (first answers, each round's critiques, each round's revisions) runs all
 * prompts through batched decoding.  A sequence's sampler is seeded from the run's seed,
 * the phase and the prompt's index, never from its place in a batch, so the output does
 * not depend on --batch.  The critique and revision turns follow the constitution's
 * worked examples as earlier turns of the same conversation (few-shot), dropped for a
 * prompt whose conversation would not fit the model's context with them. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "align/cai.h"
#include "align/core.h"
#include "cai_internal.h"

al_cai_revise_opts al_cai_revise_defaults(void)
{
    al_cai_revise_opts o = {.rounds = 1, .max_new_tokens = 128, .batch = 16, .few_shot = true,
                            .critique_temperature = -1};
    o.sampling = al_sampler_defaults();
    return o;
}

void al_cai_revisions_free(al_cai_revision *r, int n)
{
    for (int i = 0; r && i < n; i++) {
        for (int k = 0; k < r[i].n_rounds; k++)
            free(r[i].rounds[k].critique), free(r[i].rounds[k].revision);
        free(r[i].rounds);
        free(r[i].first);
    }
    free(r);
}

/* The conversation of prompt i before the next generation: the few-shot examples when
 * asked, the prompt, and every turn so far.  phase 0: first answer; then per round r,
 * 1 + 2r: its critique, 2 + 2r: its revision. */
typedef struct convo {
    al_message *m;
    int n, cap;
} convo;

static int push(convo *c, al_role role, const char *text)
{
    if (c->n == c->cap) {
        int cap = c->cap ? 2 * c->cap : 16;
        al_message *m = realloc(c->m, (size_t)cap * sizeof *m);
        if (!m)
            return al_fail("out of memory");
        c->m = m, c->cap = cap;
    }
    c->m[c->n++] = (al_message){.role = role, .content = (char *)text};
    return 0;
}

static int build(convo *c, const al_constitution *k, const char *prompt, const al_cai_revision *r, int phase,
                 bool few_shot)
{
    c->n = 0;
    int rc = 0;
    if (phase > 0 && few_shot)
        for (int e = 0; rc == 0 && e < k->n_examples; e++) {
            const al_cai_example *x = &k->examples[e];
            const al_principle *p = &k->principles[al_constitution_find(k, x->principle)];
            rc = push(c, AL_ROLE_USER, x->prompt) || push(c, AL_ROLE_ASSISTANT, x->response) ||
                 push(c, AL_ROLE_USER, p->critique) || push(c, AL_ROLE_ASSISTANT, x->critique) ||
                 push(c, AL_ROLE_USER, p->revision) || push(c, AL_ROLE_ASSISTANT, x->revision);
        }
    rc = rc || push(c, AL_ROLE_USER, prompt);
    const char *answer = r->first;
    for (int round = 0; rc == 0 && phase > 0 && round <= (phase - 1) / 2; round++) {
        const al_cai_round *rd = &r->rounds[round];
        const al_principle *p = &k->principles[rd->principle];
        rc = push(c, AL_ROLE_ASSISTANT, answer) || push(c, AL_ROLE_USER, p->critique);
        if (rc == 0 && phase >= 2 + 2 * round)
            rc = push(c, AL_ROLE_ASSISTANT, rd->critique) || push(c, AL_ROLE_USER, p->revision);
        answer = rd->revision;
    }
    return rc;
}

/* One phase for every prompt: render and encode (without few-shot when it would not fit),
 * generate, and keep each answer's text as the phase's part of its revision. */
static int run_phase(const al_model *m, const al_tokenizer *tok, const al_chat_template *t, const al_constitution *k,
                     const char *const *prompts, int n, const al_cai_revise_opts *o, al_cai_revision *out, int phase)
{
    al_ints *enc = calloc((size_t)n, sizeof *enc);
    char **texts = calloc((size_t)n, sizeof *texts);
    convo c = {0};
    int rc = enc && texts ? 0 : al_fail("out of memory");
    for (int i = 0; rc == 0 && i < n; i++) {
        rc = build(&c, k, prompts[i], &out[i], phase, o->few_shot) || cai_encode(tok, t, c.m, c.n, NULL, &enc[i]);
        if (rc == 0 && enc[i].n + o->max_new_tokens > m->cfg.seq_len && phase > 0 && o->few_shot)
            rc = build(&c, k, prompts[i], &out[i], phase, false) || cai_encode(tok, t, c.m, c.n, NULL, &enc[i]);
        if (rc == 0 && enc[i].n >= m->cfg.seq_len)
            rc = al_fail("prompt %d: the conversation of %s needs %d tokens; the model's context holds %d "
                         "(use fewer rounds or shorter prompts)",
                         i + 1, phase == 0 ? "the first answer" : phase % 2 ? "a critique" : "a revision", enc[i].n,
                         m->cfg.seq_len);
    }
    /* seeded per prompt and phase, whatever the batch */
    al_sampler_opts so = o->sampling;
    so.seed = o->sampling.seed + (uint64_t)phase * 1000003u;
    if (phase > 0 && o->critique_temperature >= 0)
        so.temperature = o->critique_temperature;
    const al_model *gen = phase == 0 && o->answer_model ? o->answer_model : m;
    rc = rc || cai_generate_texts(gen, tok, t, enc, n, o->max_new_tokens, so, o->batch, texts);
    for (int i = 0; rc == 0 && i < n; i++) {
        al_cai_revision *r = &out[i];
        int round = (phase - 1) / 2;
        char **slot = phase == 0 ? &r->first : phase % 2 ? &r->rounds[round].critique : &r->rounds[round].revision;
        if (phase > 0 && phase % 2 == 0 && k->no_issue &&
            !strncmp(r->rounds[round].critique, k->no_issue, strlen(k->no_issue))) {
            /* nothing found: the answer stays as it was */
            const char *prev = round == 0 ? r->first : r->rounds[round - 1].revision;
            free(texts[i]);
            if (!(texts[i] = strdup(prev)))
                rc = al_fail("out of memory");
        }
        *slot = texts[i];
        texts[i] = NULL;
    }
    for (int i = 0; i < n; i++) {
        if (enc)
            al_ints_free(&enc[i]);
        if (texts)
            free(texts[i]);
    }
    free(enc), free(texts), free(c.m);
    return rc;
}

int al_cai_revise(const al_model *m, const al_tokenizer *tok, const al_chat_template *t, const al_constitution *k,
                  const char *const *prompts, int n, const al_cai_revise_opts *o, al_cai_revision **out)
{
    *out = NULL;
    if (n <= 0 || o->rounds < 1 || o->rounds > 16 || o->max_new_tokens < 1 || o->batch < 1 || k->n_principles < 1)
        return al_fail("cai revise: need prompts, 1..16 rounds, max_new_tokens >= 1, batch >= 1 and a constitution "
                       "with principles (got %d prompts, %d rounds, %d, %d)",
                       n, o->rounds, o->max_new_tokens, o->batch);
    const al_model *a = o->answer_model;
    if (a && (a->cfg.vocab_size != m->cfg.vocab_size || a->cfg.seq_len != m->cfg.seq_len))
        return al_fail("cai revise: the answer model has %d tokens and %d positions, the feedback model %d and %d",
                       a->cfg.vocab_size, a->cfg.seq_len, m->cfg.vocab_size, m->cfg.seq_len);
    al_cai_revision *r = calloc((size_t)n, sizeof *r);
    if (!r)
        return al_fail("out of memory");
    uint64_t rng = al_mix64(o->sampling.seed ^ 0xC0A1u) | 1;
    int rc = 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        r[i].prompt = prompts[i];
        r[i].n_rounds = o->rounds;
        if (!(r[i].rounds = calloc((size_t)o->rounds, sizeof *r[i].rounds)))
            rc = al_fail("out of memory");
        for (int k2 = 0; rc == 0 && k2 < o->rounds; k2++) /* principles drawn up front: one stream, any batch */
            r[i].rounds[k2].principle = (int)(al_xorshift_u32(&rng) % (uint32_t)k->n_principles);
    }
    for (int phase = 0; rc == 0 && phase <= 2 * o->rounds; phase++)
        rc = run_phase(m, tok, t, k, prompts, n, o, r, phase);
    if (rc) {
        al_cai_revisions_free(r, n);
        return -1;
    }
    *out = r;
    return 0;
}

const char *al_cai_final(const al_cai_revision *r)
{
    return r->n_rounds > 0 ? r->rounds[r->n_rounds - 1].revision : r->first;
}

typedef struct revision_rows {
    const al_cai_revision *r;
    const al_constitution *k;
} revision_rows;

static json_t *sft_row(void *ctx, int i)
{
    const revision_rows *x = ctx;
    return json_pack("{s:o, s:o}", "prompt", cai_turn("user", x->r[i].prompt), "completion",
                     cai_turn("assistant", al_cai_final(&x->r[i])));
}

static json_t *provenance_row(void *ctx, int i)
{
    const revision_rows *x = ctx;
    const al_cai_revision *r = &x->r[i];
    json_t *rounds = json_array();
    for (int j = 0; j < r->n_rounds; j++) {
        const al_principle *p = &x->k->principles[r->rounds[j].principle];
        json_array_append_new(rounds, json_pack("{s:s, s:s, s:s, s:s}", "principle", p->name, "critique_request",
                                                p->critique, "critique", r->rounds[j].critique, "revision",
                                                r->rounds[j].revision));
    }
    return json_pack("{s:s, s:s, s:s, s:o, s:s}", "constitution", x->k->name, "prompt", r->prompt, "first", r->first,
                     "rounds", rounds, "final", al_cai_final(r));
}

int al_cai_write_revisions(const char *sft_path, const char *provenance_path, const al_cai_revision *r, int n,
                           const al_constitution *c)
{
    revision_rows x = {r, c};
    if (sft_path && cai_write_jsonl(sft_path, n, sft_row, &x))
        return -1;
    return provenance_path ? cai_write_jsonl(provenance_path, n, provenance_row, &x) : 0;
}
