/* Stage guard: the guard in front of the aligned model, built from the world alone — the
 * labelled prompts and the deny-list come from the world (its training prompts, its
 * demonstrations, its judges' lexicons); guard_build.c trains and writes it. */
#include <stdlib.h>
#include <string.h>

#include "align/data.h"
#include "align/eval.h"
#include "guard_build.h"
#include "internal.h"

/* prompts_train.jsonl (kind and category), then the demonstrations' prompts, labelled
 * harmful exactly when their demonstrated answer is a refusal.  Held-out prompts never. */
static int load_prompts(al_pipeline *p, const al_judges *j, pipeline_prompts *out)
{
    char *prompts = pipeline_path(p, WORLD "/prompts_train.jsonl"), *sft = pipeline_path(p, WORLD "/sft.jsonl");
    al_prompt_set ps = {0};
    al_sft_dataset sd = {0};
    int rc = prompts && sft ? al_prompt_set_load(&ps, prompts) : -1;
    for (int i = 0; rc == 0 && i < ps.n; i++)
        rc = pipeline_prompts_add(out, ps.p[i].prompt, ps.p[i].kind == AL_KIND_HARMFUL, ps.p[i].category);
    rc = rc ? rc : al_sft_load(&sd, sft, NULL);
    for (int i = 0; rc == 0 && i < sd.n; i++) {
        const al_sft_example *e = &sd.ex[i];
        if (e->n_messages < 2 || e->messages[0].role != AL_ROLE_USER || e->messages[1].role != AL_ROLE_ASSISTANT)
            continue;
        al_verdict v;
        const char *answer = e->messages[1].content;
        rc = al_judge(j, answer, strlen(answer), &v);
        rc = rc ? rc : pipeline_prompts_add(out, e->messages[0].content, v.refused, "");
    }
    al_sft_free(&sd);
    al_prompt_set_free(&ps);
    free(prompts);
    free(sft);
    return rc;
}

int pipeline_stage_guard(al_pipeline *p, json_t *fig)
{
    char *world_json = pipeline_path(p, WORLD "/world.json"), *dir = pipeline_path(p, "guard");
    al_judges *j = NULL;
    pipeline_prompts prompts = {0};
    const char *const *deny = NULL;
    int rc = world_json && dir ? al_judges_load(&j, world_json) : -1;
    rc = rc ? rc : load_prompts(p, j, &prompts);
    rc = rc ? rc : al_judges_patterns(j, AL_LEX_LEAK, &deny);
    rc = rc ? rc : pipeline_guard_build(dir, &prompts, deny, p->seed, p->preset->guard_threshold, fig, p->log);
    pipeline_prompts_free(&prompts);
    al_judges_free(j);
    free(world_json);
    free(dir);
    return rc;
}
