/* Stage sft: supervised fine-tuning of the base model on the world's demonstrations, in
 * the world's chat template, packed.  With LoRA (the full preset) the adapters train in
 * runs/sft/lora and are merged into runs/sft/final, the model every later stage starts
 * from. */
#include <stdlib.h>

#include "internal.h"

int pipeline_stage_sft(al_pipeline *p, json_t *fig)
{
    const al_pipeline_preset *k = p->preset;
    pipeline_paths ps = {0};
    al_sft_opts o;
    al_sft_defaults(&o);
    o.data = pipeline_at(p, &ps, WORLD "/sft.jsonl");
    o.model = pipeline_at(p, &ps, BASE_RUN "/final");
    o.tokenizer = pipeline_at(p, &ps, TOKENIZER);
    o.chat_template = pipeline_at(p, &ps, WORLD "/template");
    o.out_dir = pipeline_at(p, &ps, k->sft_lora ? SFT_LORA_RUN : SFT_RUN);
    const char *adapters = k->sft_lora ? pipeline_at(p, &ps, SFT_LORA_RUN "/final") : NULL,
               *merged = k->sft_lora ? pipeline_at(p, &ps, SFT_RUN "/final") : NULL;
    int rc = o.out_dir && (!k->sft_lora || merged) ? 0 : -1, state = rc ? 0 : pipeline_run_state(o.out_dir);
    if (rc == 0 && state < 2) {
        o.packing = true;
        o.mask = k->sft_mask;
        o.epochs = k->sft_epochs;
        o.batch_size = k->sft_batch;
        o.seq_len = k->seq_len;
        o.sched = (al_schedule){.kind = AL_SCHED_COSINE, .peak_lr = k->sft_lr, .warmup = 10};
        o.eval_every = 1000000; /* at the start and the end */
        o.save_every = 50;
        o.keep = 1;
        o.seed = p->seed;
        o.quiet = !p->log;
        o.lora = k->sft_lora;
        o.lora_cfg = pipeline_lora_config(p);
        rc = pipeline_trained("SFT", o.out_dir, state == 1 ? al_sft_resume(o.out_dir, &o) : al_sft_train(&o));
    }
    if (rc == 0 && k->sft_lora)
        rc = pipeline_merge_adapters(o.model, adapters, merged);
    if (rc == 0) {
        pipeline_set_real(fig, "train_loss", pipeline_last_metric(o.out_dir, "loss"));
        pipeline_set_real(fig, "eval_loss", pipeline_last_metric(o.out_dir, "eval_loss"));
        json_object_set_new(fig, "lora", json_boolean(k->sft_lora));
    }
    pipeline_paths_free(&ps);
    return rc;
}
