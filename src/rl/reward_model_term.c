/* model:DIR: a reward model's raw score (align rm train output) of the prompt's tokens
 * followed by the completion's.  The model is loaded once, when the term is added;
 * scoring runs in batches of env->batch sequences of at most env->seq_len tokens (longer
 * ones keep their end, as al_reward_score does). */
#include <stdlib.h>
#include <string.h>

#include "align/train.h"
#include "reward_internal.h"

typedef struct model_term {
    al_model m;
    int batch, seq_len;
    al_ints *seqs;  /* views into ids, one per sample */
    int *ids;
    float *rewards;
    int cap_seqs;
    size_t cap_ids;
} model_term;

static void model_free(void *state)
{
    model_term *t = state;
    al_model_free(&t->m);
    free(t->seqs);
    free(t->ids);
    free(t->rewards);
    free(t);
}

static int reserve(model_term *t, int n, size_t ids)
{
    if (n > t->cap_seqs) {
        al_ints *s = realloc(t->seqs, (size_t)n * sizeof *s);
        if (s)
            t->seqs = s;
        float *r = s ? realloc(t->rewards, (size_t)n * sizeof *r) : NULL;
        if (!r)
            return al_fail("out of memory");
        t->rewards = r, t->cap_seqs = n;
    }
    if (ids > t->cap_ids) {
        int *v = realloc(t->ids, ids * sizeof *v);
        if (!v)
            return al_fail("out of memory");
        t->ids = v, t->cap_ids = ids;
    }
    return 0;
}

/* An id past the embedding table would read outside the model: the reward model must
 * share the policy's tokenizer. */
static int check_ids(const model_term *t, const int *ids, int n, int sample)
{
    for (int j = 0; j < n; j++)
        if (ids[j] < 0 || ids[j] >= t->m.cfg.vocab_size)
            return al_fail("sample %d: token id %d is outside the reward model's vocabulary (%d tokens)", sample,
                           ids[j], t->m.cfg.vocab_size);
    return 0;
}

static int model_score(void *state, const al_reward_sample *s, int n, double *out)
{
    model_term *t = state;
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += (size_t)s[i].n_prompt + (size_t)s[i].n_completion;
    if (reserve(t, n, total ? total : 1))
        return -1;
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        if (check_ids(t, s[i].prompt_ids, s[i].n_prompt, i) || check_ids(t, s[i].completion_ids, s[i].n_completion, i))
            return -1;
        int *v = t->ids + at;
        if (s[i].n_prompt)
            memcpy(v, s[i].prompt_ids, (size_t)s[i].n_prompt * sizeof *v);
        if (s[i].n_completion)
            memcpy(v + s[i].n_prompt, s[i].completion_ids, (size_t)s[i].n_completion * sizeof *v);
        int len = s[i].n_prompt + s[i].n_completion;
        t->seqs[i] = (al_ints){v, len, len};
        at += (size_t)len;
    }
    if (al_reward_score(&t->m, t->seqs, n, t->batch, t->seq_len, t->rewards))
        return -1;
    for (int i = 0; i < n; i++)
        out[i] = t->rewards[i];
    return 0;
}

int reward_open_model(const char *arg, const al_reward_env *env, reward_term *out)
{
    model_term *t = calloc(1, sizeof *t);
    char *path = t ? reward_path(env, arg) : NULL;
    int rc = !t ? al_fail("out of memory") : !path ? -1 : al_model_load(&t->m, path);
    if (rc == 0 && t->m.cfg.n_labels < 1)
        rc = al_fail("%s is a language model without a score head, not a reward model (train one with align rm train)",
                     path);
    int vocab = env->tok ? al_tokenizer_vocab_size(env->tok) : 0;
    if (rc == 0 && vocab > t->m.cfg.vocab_size)
        rc = al_fail("%s has %d tokens, the policy's tokenizer %d: the reward model must use the policy's tokenizer",
                     path, t->m.cfg.vocab_size, vocab);
    free(path);
    if (rc) {
        if (t)
            model_free(t);
        return -1;
    }
    t->batch = env->batch > 0 ? env->batch : 16;
    t->seq_len = env->seq_len > 0 && env->seq_len < t->m.cfg.seq_len ? env->seq_len : t->m.cfg.seq_len;
    *out = (reward_term){t, model_score, model_free};
    return 0;
}
