/* plugin:PATH.so[:ARG]: a reward term in C, loaded with dlopen.  The ABI is
 * include/align/reward_plugin.h; this file checks it at load time, so a wrong or stale
 * shared object fails when the term is added, not in the middle of a run. */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "align/reward_plugin.h"
#include "reward_internal.h"

typedef struct plugin {
    void *handle, *state;
    char *path;
    align_reward_score_fn score;
    align_reward_free_fn free_state;
    bool inited;                      /* free_state is owed a call */
    align_reward_plugin_sample *buf;  /* the batch in the plugin's struct */
    int cap;
} plugin;

static void plugin_free(void *p_)
{
    plugin *p = p_;
    if (p->inited && p->free_state)
        p->free_state(p->state);
    if (p->handle)
        dlclose(p->handle);
    free(p->buf);
    free(p->path);
    free(p);
}

static int plugin_score(void *p_, const al_reward_sample *s, int n, double *out)
{
    plugin *p = p_;
    if (n > p->cap) {
        align_reward_plugin_sample *b = realloc(p->buf, (size_t)n * sizeof *b);
        if (!b)
            return al_fail("out of memory");
        p->buf = b, p->cap = n;
    }
    for (int i = 0; i < n; i++)
        p->buf[i] = (align_reward_plugin_sample){s[i].prompt,     s[i].query,      s[i].completion, s[i].prompt_ids,
                                                 s[i].completion_ids, s[i].n_prompt, s[i].n_completion, s[i].eos,
                                                 s[i].record};
    int rc = p->score(p->state, p->buf, n, out);
    return rc ? al_fail("%s: align_reward_score returned %d", p->path, rc) : 0;
}

/* dlsym returns void *; going through a union avoids the object-to-function pointer cast
 * ISO C leaves undefined (POSIX guarantees the representation). */
#define FN(type, ptr) (((union { void *obj; type fn; }){.obj = (ptr)}).fn)

/* "PATH.so:ARG" splits after ".so"; a path without ".so:" has no argument. */
static int split_arg(const char *arg, char **path, char **parg)
{
    const char *cut = strstr(arg, ".so:");
    size_t len = cut ? (size_t)(cut + 3 - arg) : strlen(arg);
    *path = strndup(arg, len);
    *parg = cut ? strdup(cut + 4) : NULL;
    if (!*path || (cut && !*parg)) {
        free(*path);
        free(*parg);
        return al_fail("out of memory");
    }
    return 0;
}

/* dlopen searches the library path for a bare name: "my.so" must mean the file here. */
static char *plugin_path(const al_reward_env *env, const char *given)
{
    char *p = reward_path(env, given);
    if (p && !strchr(p, '/')) {
        char *q = al_path_join(".", p);
        free(p);
        if (!(p = q))
            al_fail("out of memory");
    }
    return p;
}

static int load(plugin *p, const char *parg)
{
    if (!(p->handle = dlopen(p->path, RTLD_NOW | RTLD_LOCAL)))
        return al_fail("%s", dlerror());
    void *abi = dlsym(p->handle, "align_reward_abi_version");
    if (abi) {
        int v = FN(align_reward_abi_version_fn, abi)();
        if (v != ALIGN_REWARD_PLUGIN_ABI)
            return al_fail("%s was built for reward plugin ABI %d, this align uses ABI %d: rebuild it against "
                           "include/align/reward_plugin.h", p->path, v, ALIGN_REWARD_PLUGIN_ABI);
    }
    void *score = dlsym(p->handle, "align_reward_score");
    if (!score)
        return al_fail("%s does not export align_reward_score: not an align reward plugin "
                       "(include/align/reward_plugin.h)", p->path);
    p->score = FN(align_reward_score_fn, score);
    void *init = dlsym(p->handle, "align_reward_init"), *fr = dlsym(p->handle, "align_reward_free");
    p->free_state = fr ? FN(align_reward_free_fn, fr) : NULL;
    if (init) {
        if (!(p->state = FN(align_reward_init_fn, init)(parg)))
            return al_fail("%s: align_reward_init(%s%s%s) failed", p->path, parg ? "\"" : "", parg ? parg : "NULL",
                           parg ? "\"" : "");
        p->inited = true;
    }
    return 0;
}

int reward_open_plugin(const char *arg, const al_reward_env *env, reward_term *t)
{
    char *given, *parg;
    if (split_arg(arg, &given, &parg))
        return -1;
    plugin *p = calloc(1, sizeof *p);
    int rc = !p ? al_fail("out of memory") : !(p->path = plugin_path(env, given)) ? -1 : load(p, parg);
    free(given);
    free(parg);
    if (rc) {
        if (p)
            plugin_free(p);
        return -1;
    }
    *t = (reward_term){p, plugin_score, plugin_free};
    return 0;
}
