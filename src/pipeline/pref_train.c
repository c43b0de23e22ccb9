/* What the preference stages (reward_model, dpo, cai) share: the starting model, the
 * schedule and checkpoints (internal.h). */
#include "internal.h"

int pipeline_pref_train(al_pipeline *p, al_pref_train_opts *o, const char *what, const char *data, const char *model,
                        const char *run, long steps, int batch, float lr)
{
    pipeline_paths ps = {0};
    o->data = pipeline_at(p, &ps, data);
    o->model = pipeline_at(p, &ps, model);
    o->tokenizer = pipeline_at(p, &ps, TOKENIZER);
    o->chat_template = pipeline_at(p, &ps, WORLD "/template");
    o->out_dir = pipeline_at(p, &ps, run);
    int rc = o->out_dir ? 0 : -1, state = rc ? 0 : pipeline_run_state(o->out_dir);
    if (rc == 0 && state < 2) {
        o->steps = steps;
        o->max_examples = p->preset->pref_max_examples;
        o->batch_size = batch;
        o->seq_len = p->preset->seq_len;
        o->sched = (al_schedule){.kind = AL_SCHED_LINEAR, .peak_lr = lr, .warmup = steps / 10};
        o->eval_every = (int)steps;
        o->eval_batches = 10;
        o->save_every = 50;
        o->keep = 1;
        o->seed = p->seed;
        o->quiet = !p->log;
        rc = pipeline_trained(what, o->out_dir, state == 1 ? al_pref_resume(o->out_dir, o) : al_pref_train(o));
    }
    /* the paths die here: o must not point at them */
    o->data = o->model = o->tokenizer = o->chat_template = o->out_dir = NULL;
    pipeline_paths_free(&ps);
    return rc;
}
