/* Reward terms behind al_rewards (src/rl/rewards.c): each kind has an opener that parses
 * its argument and loads what it needs once, and a scorer that fills unweighted scores.
 * Openers record plain messages; rewards.c prefixes them with the spec. */
#ifndef ALIGN_RL_REWARD_INTERNAL_H
#define ALIGN_RL_REWARD_INTERNAL_H

#include "align/reward.h"

typedef struct reward_term {
    void *state;
    /* out[0..n) gets each sample's score; samples arrive with non-NULL texts */
    int (*score)(void *state, const al_reward_sample *s, int n, double *out);
    void (*free)(void *state);
} reward_term;

/* arg: the text after "KIND:" (NULL when the spec has none).  On failure nothing is held. */
typedef int (*reward_open_fn)(const char *arg, const al_reward_env *env, reward_term *t);

/* src/rl/reward_rules.c */
int reward_open_regex(const char *arg, const al_reward_env *env, reward_term *t);
int reward_open_regex_not(const char *arg, const al_reward_env *env, reward_term *t);
int reward_open_format(const char *arg, const al_reward_env *env, reward_term *t);
int reward_open_length(const char *arg, const al_reward_env *env, reward_term *t);
int reward_open_lexicon(const char *arg, const al_reward_env *env, reward_term *t);
int reward_open_refusal(const char *arg, const al_reward_env *env, reward_term *t);
int reward_open_guard(const char *arg, const al_reward_env *env, reward_term *t);
int reward_open_intent(const char *arg, const al_reward_env *env, reward_term *t);
/* src/rl/reward_plugin.c */
int reward_open_plugin(const char *arg, const al_reward_env *env, reward_term *t);
/* src/rl/reward_model_term.c */
int reward_open_model(const char *arg, const al_reward_env *env, reward_term *t);

/* A path from a spec: absolute as given, relative against env->base_dir (when set).
 * Malloc'd; NULL with an error recorded when out of memory. */
char *reward_path(const al_reward_env *env, const char *path);

#endif
