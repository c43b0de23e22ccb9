/* Stage sft: supervised fine-tuning of the base model on the world's demonstrations, in
 * the world's chat template, packed. */
#include "internal.h"

int pipeline_stage_sft(al_pipeline *p, json_t *fig)
{
    pipeline_paths ps = {0};
    al_sft_opts o;
    al_sft_defaults(&o);
    o.data = pipeline_at(p, &ps, WORLD "/sft.jsonl");
    o.model = pipeline_at(p, &ps, BASE_RUN "/final");
    o.tokenizer = pipeline_at(p, &ps, TOKENIZER);
    o.chat_template = pipeline_at(p, &ps, WORLD "/template");
    o.out_dir = pipeline_at(p, &ps, SFT_RUN);
    int rc = o.out_dir ? 0 : -1, state = rc ? 0 : pipeline_run_state(o.out_dir);
    if (rc == 0 && state < 2) {
        o.packing = true;
        o.epochs = p->preset->sft_epochs;
        o.batch_size = p->preset->sft_batch;
        o.seq_len = p->preset->seq_len;
        o.sched = (al_schedule){.kind = AL_SCHED_COSINE, .peak_lr = p->preset->sft_lr, .warmup = 10};
        o.eval_every = 1000000; /* at the start and the end */
        o.save_every = 50;
        o.keep = 1;
        o.seed = p->seed;
        o.quiet = !p->log;
        rc = pipeline_trained("SFT", o.out_dir, state == 1 ? al_sft_resume(o.out_dir, &o) : al_sft_train(&o));
    }
    if (rc == 0) {
        pipeline_set_real(fig, "train_loss", pipeline_last_metric(o.out_dir, "loss"));
        pipeline_set_real(fig, "eval_loss", pipeline_last_metric(o.out_dir, "eval_loss"));
    }
    pipeline_paths_free(&ps);
    return rc;
}
