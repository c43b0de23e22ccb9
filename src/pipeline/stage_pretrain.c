/* Stage pretrain: the base model from scratch on the world's corpus. */
#include <stdlib.h>
#include <string.h>

#include "align/data.h"
#include "align/tokenizer.h"
#include "internal.h"

/* The corpus's chats are written in the world's template, so it is the base model's chat
 * template too: saved beside it, `align chat -m runs/base/final` talks to the base model
 * as the evaluation does. */
static int save_template(al_pipeline *p, const char *final_dir)
{
    al_tokenizer *tok;
    al_chat_template *t;
    int rc = pipeline_load_text(p, &tok, &t) ? -1 : al_model_dir_save_tokenizer(final_dir, tok, t);
    al_chat_template_free(t);
    al_tokenizer_free(tok);
    return rc;
}

int pipeline_stage_pretrain(al_pipeline *p, json_t *fig)
{
    pipeline_paths ps = {0};
    al_pretrain_opts o;
    al_pretrain_defaults(&o);
    o.data = pipeline_at(p, &ps, WORLD "/corpus.txt");
    o.tokenizer = pipeline_at(p, &ps, TOKENIZER);
    o.out_dir = pipeline_at(p, &ps, BASE_RUN);
    int rc = o.out_dir ? 0 : -1, state = rc ? 0 : pipeline_run_state(o.out_dir);
    if (rc == 0 && state < 2) {
        const char *cfg = p->preset->model_config;
        rc = al_config_from_hf_json(&o.model, cfg, strlen(cfg), "the demo's base model");
        o.batch_size = p->preset->pretrain_batch;
        o.seq_len = p->preset->seq_len;
        o.steps = p->preset->pretrain_steps;
        o.sched = (al_schedule){.kind = AL_SCHED_COSINE, .peak_lr = p->preset->pretrain_lr, .warmup = 30};
        o.eval_every = (int)o.steps; /* at the start and the end */
        o.eval_batches = 8;
        o.save_every = 100;
        o.keep = 1;
        o.seed = p->seed;
        o.quiet = !p->log;
        rc = rc ? rc : pipeline_trained("pretraining", o.out_dir, al_pretrain(&o, state == 1 ? o.out_dir : NULL));
    }
    char *final_dir = rc == 0 ? pipeline_path(p, BASE_RUN "/final") : NULL;
    rc = rc ? rc : final_dir ? save_template(p, final_dir) : -1;
    free(final_dir);
    if (rc == 0) {
        pipeline_set_real(fig, "train_loss", pipeline_last_metric(o.out_dir, "loss"));
        pipeline_set_real(fig, "eval_loss", pipeline_last_metric(o.out_dir, "eval_loss"));
        pipeline_set_real(fig, "tokens", pipeline_last_metric(o.out_dir, "tokens"));
        json_object_set_new(fig, "steps", json_integer(p->preset->pretrain_steps));
    }
    pipeline_paths_free(&ps);
    return rc;
}
