/* Stage world: the support world every later stage reads (docs/demo_world.md). */
#include "align/eval.h"
#include "internal.h"

int pipeline_stage_world(al_pipeline *p, json_t *fig)
{
    al_world_sizes s;
    al_world_sizes_default(&s, p->preset->quick);
    pipeline_paths ps = {0};
    const char *dir = pipeline_at(p, &ps, WORLD);
    int rc = dir ? al_world_write(dir, p->seed, &s) : -1;
    json_object_set_new(fig, "corpus_docs", json_integer(s.corpus_docs));
    json_object_set_new(fig, "sft_demonstrations", json_integer(s.sft));
    json_object_set_new(fig, "preference_pairs", json_integer(s.preferences));
    json_object_set_new(fig, "train_prompts", json_integer(s.train_prompts));
    json_object_set_new(fig, "heldout_prompts", json_integer(s.heldout_harmful + s.heldout_benign + s.heldout_contrast));
    pipeline_paths_free(&ps);
    return rc;
}
