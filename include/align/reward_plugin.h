/* align reward plugins: a reward term written in C and loaded at run time
 * (`--reward plugin:./my_reward.so[:ARG]`, docs/rewards.md).
 *
 * This header is the whole ABI: a plugin includes it alone (no other align header, no
 * align library to link) and is built as a shared object:
 *
 *     cc -O2 -shared -fPIC -I include -o my_reward.so my_reward.c
 *
 * The shared object exports, with C linkage and default visibility:
 *
 *   int align_reward_score(void *state, const align_reward_plugin_sample *s, int n, double *out);
 *       Required.  Writes the reward of each of the n samples to out[0..n) and returns 0,
 *       or returns non-zero to stop the run (align reports the plugin and the code).
 *       Every score must be finite, and the same samples must give the same scores:
 *       align checks the first and relies on the second (runs resume and compare).
 *   void *align_reward_init(const char *arg);
 *       Optional.  Called once when the term is added, with the ARG of the spec (NULL
 *       when the spec has none; valid during the call only).  Its result is passed to every align_reward_score call
 *       and to align_reward_free.  Returning NULL means the plugin could not start: the
 *       term fails to load.  Without it, state is NULL.
 *   void align_reward_free(void *state);
 *       Optional.  Called once when the rewards are freed (after a successful init).
 *   int align_reward_abi_version(void);
 *       Optional but recommended: return ALIGN_REWARD_PLUGIN_ABI.  align refuses a plugin
 *       that reports another version, so a stale build fails with a message instead of
 *       reading a sample struct of the wrong shape.
 *
 * Calls come from one thread at a time.  The sample pointers are valid only during the
 * call; copy what must outlive it.  examples/reward_plugin/polite_bonus.c is a complete
 * plugin. */
#ifndef ALIGN_REWARD_PLUGIN_H
#define ALIGN_REWARD_PLUGIN_H

/* Bumped whenever align_reward_plugin_sample or a function signature changes. */
#define ALIGN_REWARD_PLUGIN_ABI 2

/* Marks the exported functions, so plugins built with -fvisibility=hidden still export them. */
#if defined(__GNUC__) || defined(__clang__)
#define ALIGN_REWARD_EXPORT __attribute__((visibility("default")))
#else
#define ALIGN_REWARD_EXPORT
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* One (prompt, completion) pair.  Texts are NUL-terminated UTF-8 (a completion cut at the
 * length limit may end inside a character); ids are the policy's token ids. */
typedef struct align_reward_plugin_sample {
    const char *prompt;        /* the prompt as the policy saw it (chat template applied) */
    const char *query;         /* the user's message alone; equals prompt for raw text */
    const char *completion;    /* the decoded completion, without the EOS marker */
    const int *prompt_ids;     /* n_prompt ids */
    const int *completion_ids; /* n_completion ids */
    int n_prompt, n_completion;
    int eos;                   /* 1: the completion ended with EOS; 0: cut at the length limit */
    const char *record;        /* the prompt's dataset record (a JSON object as read), or NULL;
                                * since ABI 2 */
} align_reward_plugin_sample;

ALIGN_REWARD_EXPORT int align_reward_score(void *state, const align_reward_plugin_sample *s, int n, double *out);
ALIGN_REWARD_EXPORT void *align_reward_init(const char *arg);
ALIGN_REWARD_EXPORT void align_reward_free(void *state);
ALIGN_REWARD_EXPORT int align_reward_abi_version(void);

/* The function types align looks up (dlsym), for hosts other than align. */
typedef int (*align_reward_score_fn)(void *state, const align_reward_plugin_sample *s, int n, double *out);
typedef void *(*align_reward_init_fn)(const char *arg);
typedef void (*align_reward_free_fn)(void *state);
typedef int (*align_reward_abi_version_fn)(void);

#ifdef __cplusplus
}
#endif

#endif
