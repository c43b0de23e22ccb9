/* Stage cai: one round of Constitutional AI against the world's five rules
 * (world/constitution.yaml), with a feedback model beside the policy as in the CAI paper.
 *
 * The feedback model is the SFT model taught to apply the rules by the world's examples
 * of critiques, revisions and judgements (world/cai_sft.jsonl: a short LoRA SFT merged
 * into runs/cai/critic/final).  The policy, the SFT model, answers the training prompts
 * (sampled at the preset's temperature); the feedback model critiques each answer under
 * a rule drawn from the constitution and revises it (both greedy; a critique that finds
 * nothing leaves the answer: al_cai_revise), and labels each pair of revision and first
 * answer under rules drawn per pair, asked in both orders (al_cai_label).  DPO on those
 * soft labels, with the RPO term on the revisions (the supervised stage's target), trains
 * LoRA adapters on the SFT model (off: the reference) into runs/cai/final.  No human label
 * and no reward model enter the round: the demo's judges only measure it (the breach
 * shares of the first answers and of the revisions, and how often the model's labels side
 * with the answer the judges find clean). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "align/cai.h"
#include "align/eval.h"
#include "internal.h"

/* What the demo's judges find in one answer to prompt q. */
static int judge_breaches(const al_judges *j, const al_prompt *q, const char *text, unsigned *out)
{
    al_verdict v;
    al_intent_verdict iv = {0};
    if (al_judge(j, text, strlen(text), &v))
        return -1;
    if (q->kind != AL_KIND_HARMFUL && al_judge_intent(j, q->category, text, strlen(text), &iv))
        return -1;
    *out = al_breaches(q->kind, &v, &iv, false);
    return 0;
}

/* {"any": share, rule: share, ...} of n breach masks. */
static json_t *breach_shares(const unsigned *b, int n)
{
    int any = 0, rule[AL_BREACH_COUNT] = {0};
    for (int i = 0; i < n; i++) {
        any += b[i] != 0;
        for (int k = 0; k < AL_BREACH_COUNT; k++)
            rule[k] += b[i] >> k & 1;
    }
    json_t *o = json_pack("{s:f}", "any", n ? (double)any / n : 0.0);
    for (int k = 0; o && k < AL_BREACH_COUNT; k++)
        json_object_set_new(o, al_breach_name((al_breach)k), json_real(n ? (double)rule[k] / n : 0.0));
    return o;
}

typedef struct feedback_inputs {
    al_model m;      /* the feedback model: critiques, revisions, labels */
    al_model policy; /* the SFT model: the first answers */
    al_tokenizer *tok;
    al_chat_template *t;
    al_constitution c;
    al_prompt_set ps;
    al_judges *j;
} feedback_inputs;

static void inputs_free(feedback_inputs *in)
{
    al_model_free(&in->m);
    al_model_free(&in->policy);
    al_tokenizer_free(in->tok);
    al_chat_template_free(in->t);
    al_constitution_free(&in->c);
    al_prompt_set_free(&in->ps);
    al_judges_free(in->j);
}

/* The feedback model revises and labels; the judges measure both.  Writes the run's
 * revisions, provenance and labels, and the figures to fig (feedback.json). */
static int self_feedback(al_pipeline *p, feedback_inputs *in, json_t *fig)
{
    const al_pipeline_preset *k = p->preset;
    pipeline_paths ps = {0};
    const char *revisions = pipeline_at(p, &ps, CAI_RUN "/revisions.jsonl"),
               *provenance = pipeline_at(p, &ps, CAI_RUN "/provenance.jsonl"),
               *labels = pipeline_at(p, &ps, CAI_RUN "/labels.jsonl");
    int n = in->ps.n < k->cai_prompts ? in->ps.n : k->cai_prompts, n_pairs = 0;
    size_t cap = n > 0 ? (size_t)n : 1;
    const char **prompts = malloc(cap * sizeof *prompts);
    al_cai_pair *pairs = malloc(cap * sizeof *pairs);
    al_cai_pair_label *lab = calloc(cap, sizeof *lab);
    unsigned *first_b = calloc(cap, sizeof *first_b), *final_b = calloc(cap, sizeof *final_b);
    int *pair_of = malloc(cap * sizeof *pair_of);
    int rc = revisions && provenance && labels && prompts && pairs && lab && first_b && final_b && pair_of
                 ? 0
                 : al_fail("out of memory");
    if (rc == 0 && n < 1)
        rc = al_fail("cai: no training prompts");
    for (int i = 0; rc == 0 && i < n; i++)
        prompts[i] = in->ps.p[i].prompt;

    al_cai_revision *r = NULL;
    al_cai_revise_opts ro = al_cai_revise_defaults();
    ro.rounds = 1;
    ro.max_new_tokens = k->max_new_tokens;
    ro.batch = 32;
    ro.few_shot = false; /* the model learned the turns from cai_sft.jsonl */
    ro.sampling.temperature = k->cai_temperature;
    ro.critique_temperature = 0;
    ro.answer_model = &in->policy; /* the policy's own answers, the feedback model's critiques */
    ro.sampling.seed = p->seed;
    if (rc == 0 && p->log)
        fprintf(p->log, "critique and revise: %d training prompts, one round\n", n);
    rc = rc ? rc : al_cai_revise(&in->m, in->tok, in->t, &in->c, prompts, n, &ro, &r);
    rc = rc ? rc : al_cai_write_revisions(revisions, provenance, r, n, &in->c);
    for (int i = 0; rc == 0 && i < n; i++) {
        const char *final = al_cai_final(&r[i]);
        rc = judge_breaches(in->j, &in->ps.p[i], r[i].first, &first_b[i]) ||
             judge_breaches(in->j, &in->ps.p[i], final, &final_b[i]);
        if (rc == 0 && strcmp(final, r[i].first)) { /* an unchanged answer makes no pair */
            pair_of[n_pairs] = i;
            pairs[n_pairs++] = (al_cai_pair){prompts[i], final, r[i].first};
        }
    }
    if (rc == 0 && n_pairs == 0)
        rc = al_fail("cai: every revision equals its first answer; no pairs to label");
    al_cai_label_opts lo = al_cai_label_defaults();
    lo.principles = k->cai_principles;
    lo.batch = 16;
    lo.seed = p->seed;
    lo.skip_too_long = true; /* two long answers and a question may not fit 256 positions */
    if (rc == 0 && p->log)
        fprintf(p->log, "AI feedback: %d pairs (first answer, revision), %d rules each, both orders\n", n_pairs,
                lo.principles);
    rc = rc ? rc : al_cai_label(&in->m, in->tok, in->t, &in->c, pairs, n_pairs, &lo, lab);
    rc = rc ? rc : al_cai_write_labels(labels, pairs, lab, n_pairs, &in->c);
    int fitted = 0;
    for (int q = 0; rc == 0 && q < n_pairs; q++)
        fitted += !isnan(lab[q].label);
    if (rc == 0 && fitted == 0)
        rc = al_fail("cai: no pair's judge questions fit the model's context");

    if (rc == 0) {
        /* the labels against the judges: pairs where exactly one side breaks a rule */
        double label_sum = 0, swap_sum = 0;
        int prefers_revision = 0, decided = 0, agree = 0, labelled = 0;
        for (int q = 0; q < n_pairs; q++) {
            int i = pair_of[q];
            if (isnan(lab[q].label))
                continue;
            labelled++;
            label_sum += lab[q].label, swap_sum += lab[q].swap_consistent;
            prefers_revision += lab[q].label > 0.5;
            if ((first_b[i] == 0) != (final_b[i] == 0)) {
                decided++;
                agree += (lab[q].label > 0.5) == (final_b[i] == 0);
            }
        }
        json_object_set_new(fig, "prompts", json_integer(n));
        json_object_set_new(fig, "pairs", json_integer(labelled));
        json_object_set_new(fig, "pairs_too_long", json_integer(n_pairs - labelled));
        json_object_set_new(fig, "first_answer_breaches", breach_shares(first_b, n));
        json_object_set_new(fig, "revision_breaches", breach_shares(final_b, n));
        pipeline_set_real(fig, "label_mean", labelled ? label_sum / labelled : NAN);
        pipeline_set_real(fig, "ai_prefers_revision", labelled ? (double)prefers_revision / labelled : NAN);
        pipeline_set_real(fig, "judge_swap_consistency", labelled ? swap_sum / labelled : NAN);
        json_object_set_new(fig, "judge_pairs_decided_by_judges", json_integer(decided));
        pipeline_set_real(fig, "judge_agreement_with_judges", decided ? (double)agree / decided : NAN);
        json_object_set_new(fig, "label_principles", json_integer(lo.principles));
    }
    al_cai_revisions_free(r, n);
    free(prompts), free(pairs), free(lab), free(first_b), free(final_b), free(pair_of);
    pipeline_paths_free(&ps);
    return rc;
}

static int open_inputs(al_pipeline *p, feedback_inputs *in)
{
    pipeline_paths ps = {0};
    const char *critic = pipeline_at(p, &ps, CAI_CRITIC_RUN "/final"), *sft = pipeline_at(p, &ps, SFT_RUN "/final"),
               *c = pipeline_at(p, &ps, WORLD "/constitution.yaml"),
               *prompts = pipeline_at(p, &ps, WORLD "/prompts_train.jsonl"),
               *world = pipeline_at(p, &ps, WORLD "/world.json");
    int rc = critic && sft && c && prompts && world ? 0 : -1;
    rc = rc || pipeline_load_text(p, &in->tok, &in->t) || al_model_load(&in->m, critic) ||
         al_model_load(&in->policy, sft) ||
         al_constitution_load(c, &in->c) || al_prompt_set_load(&in->ps, prompts) || al_judges_load(&in->j, world);
    pipeline_paths_free(&ps);
    return rc ? -1 : 0;
}

/* cai_sft.jsonl and the first n demonstrations of sft.jsonl, into dst (atomically). */
static int write_critic_data(const char *cai, const char *sft, int n, const char *dst)
{
    al_buf a = {0}, b = {0};
    al_atomic_file f;
    int rc = al_read_file(cai, &a) || al_read_file(sft, &b) || al_atomic_open(&f, dst) ? -1 : 0;
    if (rc == 0) {
        size_t end = 0;
        for (int lines = 0; end < b.len && lines < n; end++)
            lines += b.data[end] == '\n';
        if (fwrite(a.data, 1, a.len, f.fp) != a.len || fwrite(b.data, 1, end, f.fp) != end)
            rc = al_fail("%s: write failed", dst);
        rc = rc ? (al_atomic_abort(&f), rc) : al_atomic_commit(&f);
    }
    al_buf_free(&a), al_buf_free(&b);
    return rc;
}

/* The SFT model taught the constitution's feedback by example: LoRA on cai_sft.jsonl (and
 * the first cai_critic_replay demonstrations of sft.jsonl, 0 in the presets: the policy
 * writes the first answers, so the feedback model need not keep answering well), merged
 * into runs/cai/critic/final. */
static int train_critic(al_pipeline *p, json_t *fig)
{
    const al_pipeline_preset *k = p->preset;
    pipeline_paths ps = {0};
    al_sft_opts o;
    al_sft_defaults(&o);
    o.data = pipeline_at(p, &ps, CAI_CRITIC_RUN "/train.jsonl");
    const char *cai = pipeline_at(p, &ps, WORLD "/cai_sft.jsonl"), *sft = pipeline_at(p, &ps, WORLD "/sft.jsonl"),
               *critic_dir = pipeline_at(p, &ps, CAI_CRITIC_RUN);
    o.model = pipeline_at(p, &ps, SFT_RUN "/final");
    o.tokenizer = pipeline_at(p, &ps, TOKENIZER);
    o.chat_template = pipeline_at(p, &ps, WORLD "/template");
    o.out_dir = pipeline_at(p, &ps, CAI_CRITIC_LORA_RUN);
    const char *adapters = pipeline_at(p, &ps, CAI_CRITIC_LORA_RUN "/final"),
               *merged = pipeline_at(p, &ps, CAI_CRITIC_RUN "/final");
    int rc = o.data && o.model && o.out_dir && adapters && merged && cai && sft && critic_dir ? 0 : -1,
        state = rc ? 0 : pipeline_run_state(o.out_dir);
    if (rc == 0 && state < 2)
        rc = al_mkdir_p(critic_dir) || write_critic_data(cai, sft, k->cai_critic_replay, o.data) ? -1 : 0;
    if (rc == 0 && state < 2) {
        o.packing = true;
        o.mask = k->sft_mask; /* the drafts and the judge's quoted answers have weight 0 */
        o.epochs = k->cai_critic_epochs;
        o.batch_size = k->sft_batch;
        o.seq_len = k->seq_len;
        o.sched = (al_schedule){.kind = AL_SCHED_COSINE, .peak_lr = k->cai_critic_lr, .warmup = 5};
        o.eval_every = 1000000;
        o.save_every = 50;
        o.keep = 1;
        o.seed = p->seed;
        o.quiet = !p->log;
        o.lora = true;
        o.lora_cfg = pipeline_lora_config(p);
        rc = pipeline_trained("CAI critic SFT", o.out_dir,
                              state == 1 ? al_sft_resume(o.out_dir, &o) : al_sft_train(&o));
    }
    rc = rc ? rc : pipeline_merge_adapters(o.model, adapters, merged);
    if (rc == 0)
        pipeline_set_real(fig, "critic_eval_loss", pipeline_last_metric(o.out_dir, "eval_loss"));
    pipeline_paths_free(&ps);
    return rc;
}

int pipeline_stage_cai(al_pipeline *p, json_t *fig)
{
    const al_pipeline_preset *k = p->preset;
    pipeline_paths ps = {0};
    const char *dir = pipeline_at(p, &ps, CAI_RUN), *feedback = pipeline_at(p, &ps, CAI_RUN "/feedback.json"),
               *sft = pipeline_at(p, &ps, SFT_RUN "/final"),
               *adapters = pipeline_at(p, &ps, CAI_LORA_RUN "/final"), *merged = pipeline_at(p, &ps, CAI_RUN "/final");
    int rc = dir && feedback && sft && adapters && merged ? 0 : -1;
    rc = rc ? rc : al_mkdir_p(dir);
    rc = rc ? rc : train_critic(p, fig);
    /* the feedback is computed once: a resumed run trains on the same labels */
    json_t *fb = NULL;
    if (rc == 0 && al_file_exists(feedback)) {
        json_error_t err;
        fb = json_load_file(feedback, 0, &err);
        if (!fb)
            rc = al_fail("%s:%d: %s", feedback, err.line, err.text);
    } else if (rc == 0) {
        feedback_inputs in = {0};
        fb = json_object();
        rc = fb ? open_inputs(p, &in) : al_fail("out of memory");
        rc = rc ? rc : self_feedback(p, &in, fb);
        rc = rc ? rc : al_write_json_atomic(feedback, fb);
        inputs_free(&in);
    }
    if (rc == 0)
        json_object_update(fig, fb);
    json_decref(fb);

    /* DPO on the feedback model's labels, from the SFT model */
    al_pref_train_opts o;
    al_pref_train_defaults(&o, AL_TRAINER_DPO);
    o.precompute_ref = true;
    o.pref.beta = k->dpo_beta;
    o.pref.rpo_alpha = k->dpo_rpo_alpha;
    o.lora = true;
    o.lora_cfg = pipeline_lora_config(p);
    rc = rc ? rc
            : pipeline_pref_train(p, &o, "CAI DPO", CAI_RUN "/labels.jsonl", SFT_RUN "/final", CAI_LORA_RUN,
                                  k->cai_steps, k->dpo_batch, k->cai_lr);
    rc = rc ? rc : pipeline_merge_adapters(sft, adapters, merged);
    if (rc == 0) {
        char *run = pipeline_path(p, CAI_LORA_RUN);
        pipeline_set_real(fig, "eval_loss", run ? pipeline_last_metric(run, "eval_loss") : NAN);
        pipeline_set_real(fig, "eval_rewards_accuracies",
                          run ? pipeline_last_metric(run, "eval_rewards/accuracies") : NAN);
        json_object_set_new(fig, "steps", json_integer(k->cai_steps));
        free(run);
    }
    pipeline_paths_free(&ps);
    return rc;
}
