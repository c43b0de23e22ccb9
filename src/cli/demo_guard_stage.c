/* The evaluation side of the demo's guard: the labelled prompts and the deny-list come
 * from the world (its training prompts, its demonstrations, its judges' lexicons), and
 * the guard sits in front of the aligned model through the evaluation's filter hook. */
#include <stdlib.h>
#include <string.h>

#include "align/data.h"
#include "demo.h"
#include "demo_guard.h"

/* prompts_train.jsonl (kind and category), then the demonstrations' prompts, labelled
 * harmful exactly when their demonstrated answer is a refusal.  Held-out prompts never. */
static int load_prompts(demo_ctx *c, const al_judges *j, demo_prompts *out)
{
    char *prompts = demo_path(c, "world/prompts_train.jsonl"), *sft = demo_path(c, "world/sft.jsonl");
    al_prompt_set ps = {0};
    al_sft_dataset sd = {0};
    int rc = prompts && sft ? al_prompt_set_load(&ps, prompts) : -1;
    for (int i = 0; rc == 0 && i < ps.n; i++)
        rc = demo_prompts_add(out, ps.p[i].prompt, ps.p[i].kind == AL_KIND_HARMFUL, ps.p[i].category);
    rc = rc ? rc : al_sft_load(&sd, sft, NULL);
    for (int i = 0; rc == 0 && i < sd.n; i++) {
        const al_sft_example *e = &sd.ex[i];
        if (e->n_messages < 2 || e->messages[0].role != AL_ROLE_USER || e->messages[1].role != AL_ROLE_ASSISTANT)
            continue;
        al_verdict v;
        const char *answer = e->messages[1].content;
        rc = al_judge(j, answer, strlen(answer), &v);
        rc = rc ? rc : demo_prompts_add(out, e->messages[0].content, v.refused, "");
    }
    al_sft_free(&sd);
    al_prompt_set_free(&ps);
    free(prompts);
    free(sft);
    return rc;
}

int demo_guard_stage(demo_ctx *c, json_t *fig)
{
    char *world_json = demo_path(c, "world/world.json"), *dir = demo_path(c, "guard");
    al_judges *j = NULL;
    demo_prompts p = {0};
    const char *const *deny = NULL;
    int rc = world_json && dir ? al_judges_load(&j, world_json) : -1;
    rc = rc ? rc : load_prompts(c, j, &p);
    rc = rc ? rc : al_judges_patterns(j, AL_LEX_LEAK, &deny);
    rc = rc ? rc : demo_guard_build(dir, &p, deny, c->seed, c->p->guard_threshold, fig);
    demo_prompts_free(&p);
    al_judges_free(j);
    free(world_json);
    free(dir);
    return rc;
}

int demo_guard_eval(demo_ctx *c, const al_eval_opts *o, al_eval_summary *s)
{
    char *policy = demo_path(c, "guard/policy.yaml");
    void *g = policy ? demo_guard_open(policy) : NULL;
    free(policy);
    if (!g)
        return -1;
    al_eval_filter f = {g, demo_guard_check_prompt, demo_guard_check_answer};
    int rc = al_eval_run(o, &f, s);
    demo_guard_close(g);
    return rc;
}
