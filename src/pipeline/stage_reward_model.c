/* Stage reward_model: the SFT model plus a score head, Bradley-Terry on the world's
 * preference pairs.  The rewards stage scores every model's answers with it. */
#include <stdlib.h>

#include "internal.h"

int pipeline_stage_reward_model(al_pipeline *p, json_t *fig)
{
    const al_pipeline_preset *k = p->preset;
    al_pref_train_opts o;
    al_pref_train_defaults(&o, AL_TRAINER_RM);
    char *run = pipeline_path(p, RM_RUN);
    int rc = run ? pipeline_pref_train(p, &o, "reward model", RM_RUN, k->rm_steps, k->rm_batch, k->rm_lr) : -1;
    if (rc == 0) {
        pipeline_set_real(fig, "eval_accuracy", pipeline_last_metric(run, "eval_accuracy"));
        pipeline_set_real(fig, "eval_loss", pipeline_last_metric(run, "eval_loss"));
    }
    free(run);
    return rc;
}
