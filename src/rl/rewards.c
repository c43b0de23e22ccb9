/* The reward of online RL: a weighted sum of terms, each built from a spec "KIND[:ARG]"
 * (TRL's reward_funcs with reward_weights).  This file parses specs, names the terms
 * (unique, for the rewards/<name>/mean metrics) and sums; the kinds live in
 * reward_rules.c, reward_plugin.c and reward_model_term.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reward_internal.h"

typedef struct term {
    char *name, *spec;
    double weight;
    reward_term t;
} term;

struct al_rewards {
    al_reward_env env;
    char *base_dir; /* env.base_dir points here: the caller's string need not outlive us */
    term *v;
    int n, cap;
    double *scores;          /* one term's scores for a batch */
    al_reward_sample *norm;  /* the batch with NULL texts replaced */
    int scratch_n;
};

typedef struct kind {
    const char *name, *usage;
    reward_open_fn open;
    bool needs_arg;
} kind;

static const kind kinds[] = {
    {"model", "model:DIR", reward_open_model, true},
    {"regex", "regex:PATTERN", reward_open_regex, true},
    {"regex_not", "regex_not:PATTERN", reward_open_regex_not, true},
    {"lexicon", "lexicon:FILE or lexicon:builtin", reward_open_lexicon, true},
    {"length", "length:N", reward_open_length, true},
    {"refusal", "refusal or refusal:WORLD", reward_open_refusal, false},
    {"format", "format:PATTERN", reward_open_format, true},
    {"guard", "guard or guard:POLICY", reward_open_guard, false},
    {"intent", "intent:WORLD", reward_open_intent, true},
    {"plugin", "plugin:PATH.so or plugin:PATH.so:ARG", reward_open_plugin, true},
};
#define N_KINDS ((int)(sizeof kinds / sizeof *kinds))

char *reward_path(const al_reward_env *env, const char *path)
{
    char *p = path[0] != '/' && env->base_dir && env->base_dir[0] ? al_path_join(env->base_dir, path) : strdup(path);
    if (!p)
        al_fail("out of memory");
    return p;
}

al_rewards *al_rewards_new(const al_reward_env *env)
{
    al_rewards *r = calloc(1, sizeof *r);
    if (!r) {
        al_fail("out of memory");
        return NULL;
    }
    if (env)
        r->env = *env;
    if (r->env.base_dir && !(r->base_dir = strdup(r->env.base_dir))) {
        free(r);
        al_fail("out of memory");
        return NULL;
    }
    r->env.base_dir = r->base_dir;
    return r;
}

void al_rewards_free(al_rewards *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->n; i++) {
        if (r->v[i].t.free)
            r->v[i].t.free(r->v[i].t.state);
        free(r->v[i].name);
        free(r->v[i].spec);
    }
    free(r->v);
    free(r->scores);
    free(r->norm);
    free(r->base_dir);
    free(r);
}

static const kind *find_kind(const char *name, size_t len)
{
    for (int k = 0; k < N_KINDS; k++)
        if (strlen(kinds[k].name) == len && memcmp(kinds[k].name, name, len) == 0)
            return &kinds[k];
    return NULL;
}

static bool name_taken(const al_rewards *r, const char *name)
{
    for (int i = 0; i < r->n; i++)
        if (strcmp(r->v[i].name, name) == 0)
            return true;
    return false;
}

/* The kind's name, or name_2, name_3, ...: metrics are keyed by it, so two regex terms
 * must not share one. */
static char *unique_name(const al_rewards *r, const char *base)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%s", base);
    for (int k = 2; name_taken(r, buf); k++)
        snprintf(buf, sizeof buf, "%s_%d", base, k);
    char *s = strdup(buf);
    if (!s)
        al_fail("out of memory");
    return s;
}

static int open_term(const al_rewards *r, const char *spec, reward_term *t, const kind **out)
{
    const char *colon = strchr(spec, ':');
    size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
    const kind *k = find_kind(spec, len);
    if (!k)
        return al_fail("unknown kind \"%.*s\" (expected model, regex, regex_not, lexicon, length, refusal, format, "
                       "guard, intent or plugin; docs/rewards.md)", (int)len, spec);
    const char *arg = colon && colon[1] ? colon + 1 : NULL;
    if (k->needs_arg && !arg)
        return al_fail("expected %s", k->usage);
    *out = k;
    return k->open(arg, &r->env, t);
}

int al_rewards_add(al_rewards *r, const char *spec, double weight)
{
    if (!spec || !*spec)
        return al_fail("reward: empty spec (expected KIND[:ARG], e.g. model:DIR or length:200)");
    if (!isfinite(weight))
        return al_fail("reward \"%s\": the weight must be a finite number", spec);
    if (r->n == r->cap) {
        int cap = r->cap ? r->cap * 2 : 4;
        term *v = realloc(r->v, (size_t)cap * sizeof *v);
        if (!v)
            return al_fail("out of memory");
        r->v = v, r->cap = cap;
    }
    reward_term t = {0};
    const kind *k = NULL;
    if (open_term(r, spec, &t, &k))
        return al_fail_prefix("reward \"%s\"", spec);
    term *e = &r->v[r->n];
    *e = (term){unique_name(r, k->name), strdup(spec), weight, t};
    if (!e->name || !e->spec) {
        free(e->name);
        free(e->spec);
        if (t.free)
            t.free(t.state);
        return al_fail("out of memory");
    }
    r->n++;
    return 0;
}

int al_rewards_n_terms(const al_rewards *r) { return r->n; }

const char *al_rewards_term_name(const al_rewards *r, int i) { return i >= 0 && i < r->n ? r->v[i].name : NULL; }

double al_rewards_term_weight(const al_rewards *r, int i) { return i >= 0 && i < r->n ? r->v[i].weight : 0; }

/* The batch with NULL texts made "" (query: the prompt), so no term checks for NULL. */
static int normalize(al_rewards *r, const al_reward_sample *s, int n)
{
    if (n > r->scratch_n) {
        double *sc = realloc(r->scores, (size_t)n * sizeof *sc);
        if (sc)
            r->scores = sc;
        al_reward_sample *nm = sc ? realloc(r->norm, (size_t)n * sizeof *nm) : NULL;
        if (!nm)
            return al_fail("out of memory");
        r->norm = nm, r->scratch_n = n;
    }
    for (int i = 0; i < n; i++) {
        al_reward_sample *o = &r->norm[i];
        *o = s[i];
        if (o->n_prompt < 0 || o->n_completion < 0 || (o->n_prompt && !o->prompt_ids) ||
            (o->n_completion && !o->completion_ids))
            return al_fail("reward: sample %d: token counts do not match its ids", i);
        o->prompt = o->prompt ? o->prompt : "";
        o->query = o->query ? o->query : o->prompt;
        o->completion = o->completion ? o->completion : "";
    }
    return 0;
}

int al_rewards_score(al_rewards *r, const al_reward_sample *s, int n, double *total, double *per_term)
{
    if (r->n == 0)
        return al_fail("reward: no terms (add one: --reward KIND[:ARG], docs/rewards.md)");
    if (n < 0)
        return al_fail("reward: %d samples", n);
    if (n == 0)
        return 0;
    if (normalize(r, s, n))
        return -1;
    for (int i = 0; i < n; i++)
        total[i] = 0;
    for (int k = 0; k < r->n; k++) {
        const term *e = &r->v[k];
        if (e->t.score(e->t.state, r->norm, n, r->scores))
            return al_fail_prefix("reward \"%s\"", e->spec);
        for (int i = 0; i < n; i++) {
            double x = r->scores[i];
            if (!isfinite(x)) /* one NaN would turn every advantage of the batch into NaN */
                return al_fail("reward \"%s\": sample %d: the score is not finite (%g)", e->spec, i, x);
            total[i] += e->weight * x;
            if (per_term)
                per_term[(size_t)i * r->n + k] = x;
        }
    }
    return 0;
}
