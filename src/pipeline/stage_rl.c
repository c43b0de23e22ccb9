/* Stage rl: online RL (GRPO) from the SFT model on the world's training prompts (as user
 * turns, so the policy sees them through its chat template, as in the evaluation), the
 * reward the demo's reward model plus two rules: the guard's decision (a blocked answer
 * costs rl_guard_weight) and the intent judge on the prompt's category (rl_intent_weight
 * for the asked intent's solution).  The judge sees only training prompts; the
 * evaluation's held-out wordings stay unseen.  LoRA adapters train in runs/rl/lora (off,
 * they are the reference) and are merged into runs/rl/final; an interrupted run resumes
 * from its last checkpoint. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "align/rl.h"
#include "internal.h"

/* The world's prompt file (a "prompt" string per line) in TRL's conversational prompt-only
 * form, {"prompt": [{"role": "user", "content": ...}], ...} with the other fields kept: a
 * string prompt is the policy's raw input (TRL's rule), a message list goes through the
 * chat template with its generation prompt. */
static int write_chat_prompts(const char *src, const char *dst)
{
    al_buf in = {0};
    if (al_read_file(src, &in))
        return -1;
    al_atomic_file f;
    int rc = al_atomic_open(&f, dst), line_no = 0;
    for (char *line = in.data, *next; rc == 0 && line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        line_no++;
        if (strspn(line, " \t\r") == strlen(line))
            continue;
        json_t *rec = json_loads(line, 0, NULL), *prompt = json_object_get(rec, "prompt");
        if (!json_is_string(prompt)) {
            json_decref(rec);
            rc = al_fail("%s:%d: expected an object with a \"prompt\" string", src, line_no);
            break;
        }
        json_object_set_new(rec, "prompt", json_pack("[{s:s, s:O}]", "role", "user", "content", prompt));
        char *text = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(rec);
        rc = text && fprintf(f.fp, "%s\n", text) > 0 ? 0 : al_fail("%s: write failed", dst);
        free(text);
    }
    al_buf_free(&in);
    if (rc == 0)
        return al_atomic_commit(&f);
    if (f.fp)
        al_atomic_abort(&f);
    return rc;
}

int pipeline_stage_rl(al_pipeline *p, json_t *fig)
{
    const al_pipeline_preset *k = p->preset;
    pipeline_paths ps = {0};
    char rm_spec[1200], guard_spec[1200], intent_spec[1200];
    const char *sft = pipeline_at(p, &ps, SFT_RUN "/final"), *rm = pipeline_at(p, &ps, RM_RUN "/final"),
               *policy = pipeline_at(p, &ps, "guard/policy.yaml"), *run = pipeline_at(p, &ps, RL_LORA_RUN),
               *adapters = pipeline_at(p, &ps, RL_LORA_RUN "/final"), *merged = pipeline_at(p, &ps, RL_RUN "/final"),
               *world_prompts = pipeline_at(p, &ps, WORLD "/prompts_train.jsonl"), *world = pipeline_at(p, &ps, WORLD),
               *rl_dir = pipeline_at(p, &ps, RL_RUN), *prompts = pipeline_at(p, &ps, RL_RUN "/prompts.jsonl");
    int rc = sft && rm && policy && run && adapters && merged && world_prompts && world && rl_dir && prompts ? 0 : -1;
    if (rc == 0)
        rc = al_mkdir_p(rl_dir) || write_chat_prompts(world_prompts, prompts) ? -1 : 0;
    snprintf(rm_spec, sizeof rm_spec, "model:%s", rm ? rm : "");
    snprintf(guard_spec, sizeof guard_spec, "guard:%s", policy ? policy : "");
    snprintf(intent_spec, sizeof intent_spec, "intent:%s", world ? world : "");
    const char *rewards[] = {rm_spec, guard_spec, intent_spec};
    const double weights[] = {1.0, k->rl_guard_weight, k->rl_intent_weight};
    al_rl_opts o;
    al_rl_defaults(&o, AL_RL_GRPO);
    o.data = prompts, o.model = sft, o.out_dir = run;
    o.rewards = rewards, o.reward_weights = weights, o.n_rewards = 3;
    o.prompts_per_step = k->rl_prompts, o.num_generations = k->rl_generations;
    o.max_completion_length = k->max_new_tokens;
    o.beta = k->rl_beta;
    o.steps = k->rl_steps;
    o.sched.peak_lr = k->rl_lr;
    o.lora = true;
    o.lora_cfg = pipeline_lora_config(p);
    o.seed = p->seed;
    o.save_every = 10;
    o.resume = true; /* continues an interrupted run; starts afresh when there is none */
    o.quiet = !p->log;
    if (rc == 0 && pipeline_run_state(run) < 2)
        rc = pipeline_trained("GRPO", run, al_rl_train(&o));
    if (rc == 0)
        rc = pipeline_merge_adapters(sft, adapters, merged);
    if (rc == 0) {
        /* the first and the last five steps: where the reward and the KL went */
        pipeline_set_real(fig, "reward_first", pipeline_metric_window(run, "reward", 5, false));
        pipeline_set_real(fig, "reward_last", pipeline_metric_window(run, "reward", 5, true));
        pipeline_set_real(fig, "kl_exact_last", pipeline_metric_window(run, "kl_exact", 5, true));
        pipeline_set_real(fig, "guard_reward_last", pipeline_metric_window(run, "rewards/guard/mean", 5, true));
        pipeline_set_real(fig, "intent_reward_first", pipeline_metric_window(run, "rewards/intent/mean", 5, false));
        pipeline_set_real(fig, "intent_reward_last", pipeline_metric_window(run, "rewards/intent/mean", 5, true));
        pipeline_set_real(fig, "rollout_tokens_per_s", pipeline_metric_window(run, "rollout_tokens_per_s", 1000, true));
        json_object_set_new(fig, "steps", json_integer(k->rl_steps));
        json_object_set_new(fig, "algorithm", json_string("grpo"));
    }
    pipeline_paths_free(&ps);
    return rc;
}
