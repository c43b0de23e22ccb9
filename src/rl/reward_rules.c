/* Rule-based reward terms: patterns (regex, regex_not, format), the length penalty, and
 * the safety checks align already has (the guard's lexicon and output rails, the eval
 * judges' refusal patterns), scored on the completion's text. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <limits.h>
#include <jansson.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "align/eval.h"
#include "align/guard.h"
#include "reward_internal.h"

/* ---- patterns ---- */

typedef struct pattern_term {
    pcre2_code *re;
    char *pattern;      /* for matcher errors */
    double hit, miss;   /* the score when it matches, and when not */
} pattern_term;

static void pattern_free(void *state)
{
    pattern_term *p = state;
    pcre2_code_free(p->re);
    free(p->pattern);
    free(p);
}

static int pattern_score(void *state, const al_reward_sample *s, int n, double *out)
{
    const pattern_term *p = state;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(p->re, NULL);
    if (!md)
        return al_fail("out of memory");
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        int m = pcre2_match(p->re, (PCRE2_SPTR)s[i].completion, strlen(s[i].completion), 0, 0, md, NULL);
        if (m >= 0 || m == PCRE2_ERROR_NOMATCH) {
            out[i] = m >= 0 ? p->hit : p->miss;
        } else { /* e.g. the match limit: a pattern that backtracks without end */
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(m, msg, sizeof msg);
            rc = al_fail("sample %d: matching \"%s\": %s", i, p->pattern, (char *)msg);
        }
    }
    pcre2_match_data_free(md);
    return rc;
}

/* Case-sensitive, as Python's re that TRL reward functions use ((?i) turns case off).
 * UTF mode so '.' is a character; MATCH_INVALID_UTF because a completion cut at the
 * length limit may end inside one, and that must not make matching fail. */
static int open_pattern(const char *pat, uint32_t flags, double hit, double miss, reward_term *t)
{
    int err;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | flags,
                                   &err, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return al_fail("bad pattern \"%s\": at offset %zu: %s", pat, (size_t)off, (char *)msg);
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* optional: the interpreter gives the same answers */
    pattern_term *p = calloc(1, sizeof *p);
    char *copy = strdup(pat);
    if (!p || !copy) {
        free(p);
        free(copy);
        pcre2_code_free(re);
        return al_fail("out of memory");
    }
    *p = (pattern_term){re, copy, hit, miss};
    *t = (reward_term){p, pattern_score, pattern_free};
    return 0;
}

int reward_open_regex(const char *arg, const al_reward_env *env, reward_term *t)
{
    return open_pattern(arg, 0, 1, 0, t);
}

int reward_open_regex_not(const char *arg, const al_reward_env *env, reward_term *t)
{
    return open_pattern(arg, 0, -1, 0, t);
}

/* The whole completion must match; '.' crosses lines because formats span them
 * (open-r1's format reward uses re.DOTALL too). */
int reward_open_format(const char *arg, const al_reward_env *env, reward_term *t)
{
    return open_pattern(arg, PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_DOTALL, 1, 0, t);
}

/* ---- length ---- */

static int length_score(void *state, const al_reward_sample *s, int n, double *out)
{
    const double limit = (double)*(const int *)state;
    for (int i = 0; i < n; i++)
        out[i] = s[i].n_completion > limit ? -(s[i].n_completion - limit) / limit : 0.0;
    return 0;
}

int reward_open_length(const char *arg, const al_reward_env *env, reward_term *t)
{
    char *end;
    errno = 0;
    long v = strtol(arg, &end, 10);
    if (end == arg || *end || errno || v < 1 || v > INT_MAX)
        return al_fail("expected length:N with N a positive number of tokens, not \"%s\"", arg);
    int *limit = malloc(sizeof *limit);
    if (!limit)
        return al_fail("out of memory");
    *limit = (int)v;
    *t = (reward_term){limit, length_score, free};
    return 0;
}

/* ---- lexicon ---- */

static int lexicon_score(void *state, const al_reward_sample *s, int n, double *out)
{
    for (int i = 0; i < n; i++) {
        double sum;
        if (al_lexicon_severity(state, s[i].completion, strlen(s[i].completion), &sum, NULL))
            return al_fail_prefix("sample %d", i);
        out[i] = -sum;
    }
    return 0;
}

static void lexicon_free(void *state) { al_lexicon_free(state); }

int reward_open_lexicon(const char *arg, const al_reward_env *env, reward_term *t)
{
    al_lexicon *lx;
    if (strcmp(arg, "builtin") == 0) {
        lx = al_lexicon_builtin();
    } else {
        char *path = reward_path(env, arg);
        lx = path ? al_lexicon_load(path) : NULL;
        free(path);
    }
    if (!lx)
        return -1;
    *t = (reward_term){lx, lexicon_score, lexicon_free};
    return 0;
}

/* ---- refusal ---- */

static int refusal_score(void *state, const al_reward_sample *s, int n, double *out)
{
    for (int i = 0; i < n; i++) {
        al_verdict v;
        if (al_judge(state, s[i].completion, strlen(s[i].completion), &v))
            return al_fail_prefix("sample %d", i);
        out[i] = v.refused ? 1.0 : 0.0;
    }
    return 0;
}

static void refusal_free(void *state) { al_judges_free(state); }

/* WORLD: a world directory (as align eval --world takes) or its world.json. */
static al_judges *open_world_judges(const char *arg, const al_reward_env *env)
{
    al_judges *j = NULL;
    char *path = reward_path(env, arg);
    if (path && al_is_dir(path)) {
        char *json = al_path_join(path, "world.json");
        free(path);
        path = json;
    }
    int rc = !path                 ? al_fail("out of memory")
             : !al_file_exists(path) ? al_fail("%s: no such world directory or world.json", path)
                                     : al_judges_load(&j, path);
    free(path);
    return rc ? NULL : j;
}

int reward_open_refusal(const char *arg, const al_reward_env *env, reward_term *t)
{
    al_judges *j = NULL;
    if (!arg ? al_judges_builtin(&j) != 0 : !(j = open_world_judges(arg, env)))
        return -1;
    *t = (reward_term){j, refusal_score, refusal_free};
    return 0;
}

/* ---- intent: the answer solves the intent the prompt's record names ---- */

static int intent_score(void *state, const al_reward_sample *s, int n, double *out)
{
    for (int i = 0; i < n; i++) {
        json_t *rec = s[i].record ? json_loads(s[i].record, 0, NULL) : NULL;
        const char *intent = json_string_value(json_object_get(rec, "category"));
        al_intent_verdict v = {0};
        int rc = intent ? al_judge_intent(state, intent, s[i].completion, strlen(s[i].completion), &v) : 0;
        json_decref(rec);
        if (rc)
            return al_fail_prefix("sample %d", i);
        /* no penalty for another intent's solution: with one, GRPO learned to answer
         * vaguely (0 beats -1) and the solved share fell */
        out[i] = v.known && v.solved ? 1.0 : 0.0;
    }
    return 0;
}

/* The world's judges (a world directory or its world.json); they must know some intent. */
int reward_open_intent(const char *arg, const al_reward_env *env, reward_term *t)
{
    al_judges *j = open_world_judges(arg, env);
    if (!j)
        return -1;
    if (al_judges_n_intents(j) == 0) {
        al_judges_free(j);
        return al_fail("%s: the world defines no intents (world.json \"intents\")", arg);
    }
    *t = (reward_term){j, intent_score, refusal_free};
    return 0;
}

/* ---- guard ---- */

static double action_score(al_guard_action a)
{
    switch (a) {
    case AL_GUARD_ALLOW:
        return 0.0;
    case AL_GUARD_REDACT:
    case AL_GUARD_ESCALATE:
        return -0.5;
    case AL_GUARD_BLOCK:
        break;
    }
    return -1.0;
}

/* The user's message is the prompt context: the escalation rule reads it, and the chat
 * template around it would only add noise. */
static int guard_score(void *state, const al_reward_sample *s, int n, double *out)
{
    for (int i = 0; i < n; i++) {
        al_guard_decision d;
        if (al_guard_check_output(state, s[i].query, strlen(s[i].query), s[i].completion, strlen(s[i].completion),
                                  &d))
            return al_fail_prefix("sample %d", i);
        out[i] = action_score(d.action);
        al_guard_decision_free(&d);
    }
    return 0;
}

static void guard_free(void *state) { al_guard_close(state); }

int reward_open_guard(const char *arg, const al_reward_env *env, reward_term *t)
{
    al_guard_policy p;
    char *path = arg ? reward_path(env, arg) : NULL;
    int rc = !arg ? al_guard_policy_default(&p) : path ? al_guard_policy_load(path, &p) : -1;
    free(path);
    if (rc)
        return -1;
    al_guard *g = al_guard_open(&p);
    al_guard_policy_free(&p);
    if (!g)
        return -1;
    *t = (reward_term){g, guard_score, guard_free};
    return 0;
}
