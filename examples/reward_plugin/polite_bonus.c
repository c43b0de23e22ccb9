/* An example reward plugin: +1 when the completion says "please" or "thank you" (any
 * case), else 0.  An optional argument sets the bonus: plugin:./polite_bonus.so:0.5.
 * Build and use: see README.md beside this file; the ABI is include/align/reward_plugin.h. */
#include <ctype.h>
#include <stdlib.h>

#include "align/reward_plugin.h"

/* Case-insensitive substring test over ASCII (strcasestr is a GNU extension). */
static int contains(const char *text, const char *word)
{
    for (const char *t = text; *t; t++) {
        size_t k = 0;
        while (word[k] && tolower((unsigned char)t[k]) == word[k])
            k++;
        if (!word[k])
            return 1;
    }
    return 0;
}

ALIGN_REWARD_EXPORT int align_reward_abi_version(void) { return ALIGN_REWARD_PLUGIN_ABI; }

ALIGN_REWARD_EXPORT void *align_reward_init(const char *arg)
{
    double *bonus = malloc(sizeof *bonus);
    if (!bonus)
        return NULL;
    char *end = NULL;
    *bonus = arg ? strtod(arg, &end) : 1.0;
    if (arg && (end == arg || *end)) { /* not a number: refuse to start rather than guess */
        free(bonus);
        return NULL;
    }
    return bonus;
}

ALIGN_REWARD_EXPORT void align_reward_free(void *state) { free(state); }

ALIGN_REWARD_EXPORT int align_reward_score(void *state, const align_reward_plugin_sample *s, int n, double *out)
{
    const double bonus = *(const double *)state;
    for (int i = 0; i < n; i++)
        out[i] = contains(s[i].completion, "please") || contains(s[i].completion, "thank you") ? bonus : 0.0;
    return 0;
}
