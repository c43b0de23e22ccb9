/* Stage dpo: DPO (sigmoid loss with the RPO term) on the world's preference pairs, from
 * the SFT model, which is also the reference.  With LoRA (the full preset) the adapters
 * train in runs/dpo/lora, the SFT model without them is the reference, and they are
 * merged into runs/dpo/final. */
#include <stdlib.h>

#include "internal.h"

int pipeline_stage_dpo(al_pipeline *p, json_t *fig)
{
    const al_pipeline_preset *k = p->preset;
    al_pref_train_opts o;
    al_pref_train_defaults(&o, AL_TRAINER_DPO);
    o.precompute_ref = true; /* the reference is the SFT model: one pass, cached */
    o.pref.beta = k->dpo_beta;
    o.pref.rpo_alpha = k->dpo_rpo_alpha;
    o.lora = k->dpo_lora;
    o.lora_cfg = pipeline_lora_config(p);
    const char *run_rel = k->dpo_lora ? DPO_LORA_RUN : DPO_RUN;
    char *run = pipeline_path(p, run_rel);
    int rc = run ? pipeline_pref_train(p, &o, "DPO", WORLD "/preferences.jsonl", SFT_RUN "/final", run_rel,
                                       k->dpo_steps, k->dpo_batch, k->dpo_lr)
                 : -1;
    if (rc == 0 && k->dpo_lora) {
        char *sft = pipeline_path(p, SFT_RUN "/final"), *adapters = pipeline_path(p, DPO_LORA_RUN "/final"),
             *merged = pipeline_path(p, DPO_RUN "/final");
        rc = sft && adapters && merged ? pipeline_merge_adapters(sft, adapters, merged) : -1;
        free(sft), free(adapters), free(merged);
    }
    if (rc == 0) {
        pipeline_set_real(fig, "eval_loss", pipeline_last_metric(run, "eval_loss"));
        pipeline_set_real(fig, "eval_rewards_accuracies", pipeline_last_metric(run, "eval_rewards/accuracies"));
        pipeline_set_real(fig, "eval_rewards_margins", pipeline_last_metric(run, "eval_rewards/margins"));
        json_object_set_new(fig, "lora", json_boolean(k->dpo_lora));
    }
    free(run);
    return rc;
}
