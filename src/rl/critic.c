/* PPO's critic: a transformer with a score head read at every position, so position t
 * gives the value of the state before the completion token it predicts.  It starts from a
 * reward model (as TRL's PPO does), from an LM with a fresh head, or from the policy's own
 * weights, and trains on the clipped value loss with its own AdamW; it checkpoints beside
 * the policy (DIR/critic/checkpoints) so a resumed run continues both. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rl_internal.h"

static char *critic_dir(const rl_run *R) { return al_path_join(R->o->out_dir, "critic"); }

int rl_critic_open(rl_run *R, const al_train_state *resume)
{
    const al_rl_opts *o = R->o;
    char *dir = critic_dir(R);
    if (!dir)
        return al_fail("out of memory");
    int rc = 0;
    if (resume) { /* exactly the policy's step: the critic is written first, so it exists */
        char name[64], used[1024];
        snprintf(name, sizeof name, "checkpoints/step_%08ld", resume->step);
        char *path = al_path_join(dir, name);
        al_train_state st;
        rc = !path ? al_fail("out of memory")
                   : al_checkpoint_load(path, &R->critic, &R->critic_opt, &st, used, sizeof used);
        free(path);
        R->critic_opt.o = o->adamw;
    } else {
        al_model lm = {0};
        const char *from = o->value_model ? o->value_model : o->model;
        rc = al_model_load(&lm, from) || al_model_to_half_rope(&lm) ? -1 : 0;
        if (rc == 0 && lm.cfg.n_labels > 0) {
            R->critic = lm;
            lm = (al_model){0};
        } else if (rc == 0) {
            rc = al_reward_model_from_lm(&R->critic, &lm, o->seed);
        }
        al_model_free(&lm);
        if (rc == 0 && R->critic.cfg.vocab_size != R->m.cfg.vocab_size)
            rc = al_fail("%s: the value model's vocabulary (%d) differs from the policy's (%d)", from,
                         R->critic.cfg.vocab_size, R->m.cfg.vocab_size);
        if (rc == 0)
            rc = al_adamw_init(&R->critic_opt, &R->critic, &o->adamw);
    }
    free(dir);
    if (rc == 0)
        rc = al_model_alloc_grads(&R->critic);
    R->have_critic = rc == 0;
    return rc;
}

int rl_critic_save(rl_run *R, const al_train_state *st)
{
    char *dir = critic_dir(R);
    int rc = dir ? al_checkpoint_save(dir, &R->critic, &R->critic_opt, st, R->o->keep) : al_fail("out of memory");
    free(dir);
    return rc;
}

int rl_critic_values(rl_run *R, al_train_ctx *cc, const int *tokens, const int *targets, int B, int T, float *values)
{
    if (al_forward_hidden(cc, tokens, NULL, NULL))
        return -1;
    const int D = R->critic.cfg.dim;
    const float *h = al_ctx_hidden(cc), *score = R->critic.w.score;
    for (size_t k = 0; k < (size_t)B * T; k++) {
        float v = 0;
        if (targets[k] >= 0)
            for (int i = 0; i < D; i++)
                v += h[k * D + i] * score[i];
        values[k] = v;
    }
    return 0;
}

int rl_critic_backward(rl_run *R, al_train_ctx *cc, const rl_rows *b, const int *rows_of_micro, const int *tokens,
                       const int *targets, int B, double w, update_stats *us)
{
    const int T = b->T, D = R->critic.cfg.dim;
    float *values = malloc((size_t)B * T * sizeof *values), *dh = calloc((size_t)B * T * D, sizeof *dh);
    if (!values || !dh) {
        free(values), free(dh);
        return al_fail("out of memory");
    }
    int rc = rl_critic_values(R, cc, tokens, targets, B, T, values);
    const float *h = al_ctx_hidden(cc), *score = R->critic.w.score;
    float *g_score = R->critic.g.score;
    for (int j = 0; rc == 0 && j < B; j++) {
        int r = rows_of_micro[j];
        for (int t = 0; r >= 0 && t < T; t++) {
            size_t k = (size_t)j * T + t, g = (size_t)r * T + t;
            if (targets[k] < 0 || b->weight[g] <= 0)
                continue;
            double dv;
            bool clipped;
            double loss = al_clipped_value_loss(values[k], b->value[g], b->ret[g], R->o->cliprange_value, &dv, &clipped);
            us->value_loss += w * loss;
            us->value_clipped += clipped;
            us->value_tokens++;
            const float c = (float)(w * dv);
            for (int i = 0; i < D; i++) {
                dh[k * D + i] = c * score[i];
                g_score[i] += c * h[k * D + i];
            }
        }
    }
    if (rc == 0)
        al_backward_hidden(cc, &R->critic, dh);
    free(values), free(dh);
    return rc;
}

int rl_critic_step(rl_run *R, float lr)
{
    al_grad_clip(R->critic.grads, R->critic.n_params, R->o->grad_clip > 0 ? R->o->grad_clip : INFINITY);
    al_adamw_step(&R->critic_opt, R->critic.params, R->critic.grads, lr);
    return 0;
}
