/* Stage dpo: DPO (sigmoid loss with the RPO term) on the world's preference pairs, from
 * the SFT model, which is also the reference. */
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
    char *run = pipeline_path(p, DPO_RUN);
    int rc = run ? pipeline_pref_train(p, &o, "DPO", DPO_RUN, k->dpo_steps, k->dpo_batch, k->dpo_lr) : -1;
    if (rc == 0) {
        pipeline_set_real(fig, "eval_loss", pipeline_last_metric(run, "eval_loss"));
        pipeline_set_real(fig, "eval_rewards_accuracies", pipeline_last_metric(run, "eval_rewards/accuracies"));
        pipeline_set_real(fig, "eval_rewards_margins", pipeline_last_metric(run, "eval_rewards/margins"));
    }
    free(run);
    return rc;
}
