/* The evaluation stages (eval_base, eval_sft, eval_dpo, eval_guard, eval_rl, eval_cai): one model each on
 * the world's held-out prompts, greedy, with the base model as the KL reference.  Each is
 * a row of the before/after table (pipeline_rows in stages.c). */
#include <stdlib.h>

#include "align/eval.h"
#include "guard_build.h"
#include "internal.h"

/* The evaluation with the guard of OUT/guard/policy.yaml in front of the model. */
static int guarded_eval(al_pipeline *p, const al_eval_opts *o, al_eval_summary *s)
{
    char *policy = pipeline_path(p, "guard/policy.yaml");
    al_eval_filter f;
    int rc = policy ? al_eval_guard_filter_open(&f, policy) : -1;
    free(policy);
    if (rc)
        return -1;
    rc = al_eval_run(o, &f, s);
    al_eval_guard_filter_close(&f);
    return rc;
}

/* Evaluates RUN/final (behind the guard when guarded); the summary and every answer go to
 * OUT/eval/NAME.json and NAME.answers.jsonl, the figures to fig, the table to the log. */
static int evaluate(al_pipeline *p, json_t *fig, const char *name, const char *run, bool guarded)
{
    pipeline_paths ps = {0};
    char model[256], summary[128], answers[128];
    snprintf(model, sizeof model, "%s/final", run);
    snprintf(summary, sizeof summary, "eval/%s.json", name);
    snprintf(answers, sizeof answers, "eval/%s.answers.jsonl", name);
    al_eval_opts o;
    al_eval_defaults(&o);
    o.model = pipeline_at(p, &ps, model);
    o.tokenizer = pipeline_at(p, &ps, TOKENIZER);
    o.world = pipeline_at(p, &ps, WORLD);
    o.prompts = pipeline_at(p, &ps, WORLD "/prompts_heldout.jsonl");
    o.reference = pipeline_at(p, &ps, BASE_RUN "/final");
    o.summary_out = pipeline_at(p, &ps, summary);
    o.answers_out = pipeline_at(p, &ps, answers);
    const char *dir = pipeline_at(p, &ps, "eval");
    o.max_new_tokens = p->preset->max_new_tokens;
    o.quiet = !p->log;
    al_eval_summary s;
    int rc = dir ? al_mkdir_p(dir) : -1;
    if (rc == 0)
        rc = guarded ? guarded_eval(p, &o, &s) : al_eval_run(&o, NULL, &s);
    json_t *j = rc == 0 ? al_eval_summary_json(&s, &o) : NULL;
    if (rc == 0 && !j)
        rc = al_fail("out of memory");
    if (rc == 0) {
        json_object_update(fig, j);
        if (p->log)
            al_eval_summary_print(&s, p->log);
    }
    json_decref(j);
    pipeline_paths_free(&ps);
    return rc;
}

int pipeline_stage_eval_base(al_pipeline *p, json_t *fig) { return evaluate(p, fig, "base", BASE_RUN, false); }
int pipeline_stage_eval_sft(al_pipeline *p, json_t *fig) { return evaluate(p, fig, "sft", SFT_RUN, false); }
int pipeline_stage_eval_dpo(al_pipeline *p, json_t *fig) { return evaluate(p, fig, "dpo", DPO_RUN, false); }
int pipeline_stage_eval_guard(al_pipeline *p, json_t *fig) { return evaluate(p, fig, "guard", DPO_RUN, true); }
int pipeline_stage_eval_rl(al_pipeline *p, json_t *fig) { return evaluate(p, fig, "rl", RL_RUN, false); }
int pipeline_stage_eval_cai(al_pipeline *p, json_t *fig) { return evaluate(p, fig, "cai", CAI_RUN, false); }
int pipeline_stage_eval_redteam(al_pipeline *p, json_t *fig) { return evaluate(p, fig, "redteam", REDTEAM_RUN, false); }
