/* One batch's rows for the training forward, and its rewards: the rollouts laid out as
 * prompt + completion per row with targets on the completion, decoded and scored. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rl_internal.h"

void rl_rows_free(rl_rows *b)
{
    free(b->tokens), free(b->targets), free(b->old_logp), free(b->ref_logp), free(b->adv), free(b->weight);
    free(b->value), free(b->ret);
    free(b->n_tok), free(b->global), free(b->local);
    *b = (rl_rows){0};
}

int rl_rows_build(rl_rows *b, const rl_run *R, const rl_rollout *ro, int seq_len)
{
    int longest = 1;
    for (int i = 0; i < ro->n; i++) {
        int len = R->ps.p[ro->prompt[i]].ids.n + ro->len[i] - 1;
        longest = len > longest ? len : longest;
    }
    int T = (longest + 15) / 16 * 16;
    T = T < seq_len ? T : seq_len;
    const size_t NT = (size_t)ro->n * T;
    *b = (rl_rows){.n = ro->n, .T = T, .n_all = R->o->prompts_per_step * R->o->num_generations,
                   .max_new = ro->max_new};
    b->global = malloc((size_t)ro->n * sizeof *b->global), b->local = malloc((size_t)b->n_all * sizeof *b->local);
    b->tokens = malloc(NT * sizeof *b->tokens), b->targets = malloc(NT * sizeof *b->targets);
    b->old_logp = calloc(NT, sizeof *b->old_logp), b->ref_logp = calloc(NT, sizeof *b->ref_logp);
    b->adv = calloc(NT, sizeof *b->adv), b->weight = calloc(NT, sizeof *b->weight);
    b->value = calloc(NT, sizeof *b->value), b->ret = calloc(NT, sizeof *b->ret);
    b->n_tok = calloc((size_t)ro->n, sizeof *b->n_tok);
    if (!b->tokens || !b->targets || !b->old_logp || !b->ref_logp || !b->adv || !b->weight || !b->n_tok || !b->value ||
        !b->ret || !b->global || !b->local)
        return al_fail("out of memory");
    for (int j = 0; j < b->n_all; j++)
        b->local[j] = -1;
    for (int i = 0; i < ro->n; i++)
        b->global[i] = ro->seq[i], b->local[ro->seq[i]] = i;
    for (int i = 0; i < ro->n; i++) {
        const al_ints *p = &R->ps.p[ro->prompt[i]].ids;
        const int *c = ro->ids + (size_t)i * ro->max_new;
        int *tk = b->tokens + (size_t)i * T, *tg = b->targets + (size_t)i * T;
        for (int t = 0; t < T; t++) {
            int at = t, next = t + 1; /* position t reads token t and predicts token t + 1 */
            tk[t] = at < p->n ? p->v[at] : at - p->n < ro->len[i] ? c[at - p->n] : 0;
            tg[t] = next >= p->n && next - p->n < ro->len[i] ? c[next - p->n] : -1;
            if (tg[t] >= 0) {
                b->old_logp[(size_t)i * T + t] = ro->logp[(size_t)i * ro->max_new + next - p->n];
                b->n_tok[i]++;
            }
        }
    }
    return 0;
}

/* The completion's text: decoded, cut at the first template marker, trimmed. */
static int completion_text(const rl_run *R, const al_ints *prompt, const int *ids, int n, char **out)
{
    const char **marks;
    int n_marks = 0;
    al_chat_template_specials(R->tmpl, &marks, &n_marks);
    return al_chat_answer_text(R->tok, prompt->v[prompt->n - 1], ids, n, marks, n_marks, out);
}

/* scores[i] (with the missing-EOS penalty), per_term[i][k] unweighted. */
int rl_score_rollouts(rl_run *R, const rl_rollout *ro, double *scores, double *per_term)
{
    al_reward_sample *s = calloc((size_t)ro->n, sizeof *s);
    char **texts = calloc((size_t)ro->n, sizeof *texts);
    int rc = s && texts ? 0 : al_fail("out of memory");
    for (int i = 0; rc == 0 && i < ro->n; i++) {
        const rl_prompt *p = &R->ps.p[ro->prompt[i]];
        const int *ids = ro->ids + (size_t)i * ro->max_new;
        int n = ro->len[i] - (ro->eos[i] ? 1 : 0); /* the reward sees no stop marker */
        rc = completion_text(R, &p->ids, ids, n, &texts[i]);
        s[i] = (al_reward_sample){.prompt = p->text, .query = p->query, .completion = texts[i],
                                  .prompt_ids = p->ids.v, .n_prompt = p->ids.n, .completion_ids = ids,
                                  .n_completion = ro->len[i], .eos = ro->eos[i], .record = p->record};
    }
    if (rc == 0)
        rc = al_rewards_score(R->rewards, s, ro->n, scores, per_term);
    for (int i = 0; rc == 0 && i < ro->n; i++)
        if (!ro->eos[i])
            scores[i] -= R->o->missing_eos_penalty;
    for (int i = 0; texts && i < ro->n; i++)
        free(texts[i]);
    free(texts), free(s);
    return rc;
}

