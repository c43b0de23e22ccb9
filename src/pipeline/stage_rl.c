/* Stage rl: online RL (GRPO) from the SFT model on the world's training prompts, the
 * reward the demo's reward model plus the guard's decision as a rule (a blocked answer
 * costs rl_guard_weight).  LoRA adapters train in runs/rl/lora (off, they are the
 * reference) and are merged into runs/rl/final; an interrupted run resumes from its last
 * checkpoint. */
#include <stdlib.h>

#include "align/rl.h"
#include "internal.h"

int pipeline_stage_rl(al_pipeline *p, json_t *fig)
{
    const al_pipeline_preset *k = p->preset;
    pipeline_paths ps = {0};
    char rm_spec[1200], guard_spec[1200];
    const char *sft = pipeline_at(p, &ps, SFT_RUN "/final"), *rm = pipeline_at(p, &ps, RM_RUN "/final"),
               *policy = pipeline_at(p, &ps, "guard/policy.yaml"), *run = pipeline_at(p, &ps, RL_LORA_RUN),
               *adapters = pipeline_at(p, &ps, RL_LORA_RUN "/final"), *merged = pipeline_at(p, &ps, RL_RUN "/final"),
               *prompts = pipeline_at(p, &ps, WORLD "/prompts_train.jsonl");
    int rc = sft && rm && policy && run && adapters && merged && prompts ? 0 : -1;
    snprintf(rm_spec, sizeof rm_spec, "model:%s", rm ? rm : "");
    snprintf(guard_spec, sizeof guard_spec, "guard:%s", policy ? policy : "");
    const char *rewards[] = {rm_spec, guard_spec};
    const double weights[] = {1.0, k->rl_guard_weight};
    al_rl_opts o;
    al_rl_defaults(&o, AL_RL_GRPO);
    o.data = prompts, o.model = sft, o.out_dir = run;
    o.rewards = rewards, o.reward_weights = weights, o.n_rewards = 2;
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
        pipeline_set_real(fig, "rollout_tokens_per_s", pipeline_metric_window(run, "rollout_tokens_per_s", 1000, true));
        json_object_set_new(fig, "steps", json_integer(k->rl_steps));
        json_object_set_new(fig, "algorithm", json_string("grpo"));
    }
    pipeline_paths_free(&ps);
    return rc;
}
