/* The preference trainers' run: options, data, reference, model, resume and the loop.
 * The objective (dpo.c, reward.c) is what differs between `align dpo` and `align rm`. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "align/dist.h"
#include "pref_internal.h"
#include "settings.h"

void al_pref_train_defaults(al_pref_train_opts *o, al_trainer_kind trainer)
{
    memset(o, 0, sizeof *o);
    o->trainer = trainer;
    o->chat_template = "chatml";
    o->loss = trainer == AL_TRAINER_KTO ? "kto" : "sigmoid";
    al_pref_defaults(&o->pref);
    o->desirable_weight = o->undesirable_weight = 1.0;
    o->held_out = 0.1;
    o->batch_size = 4;
    o->seq_len = 256;
    o->grad_accum = 1;
    o->epochs = 1;
    /* TRL's defaults: DPOConfig lr 1e-6, RewardConfig (TrainingArguments) 5e-5 */
    o->sched = (al_schedule){.kind = AL_SCHED_LINEAR, .peak_lr = trainer == AL_TRAINER_RM ? 5e-5f : 1e-6f,
                             .wsd_decay = 0.2f};
    o->min_lr_ratio = 0.0f;
    o->adamw = al_adamw_defaults();
    o->adamw.weight_decay = 0.0f;
    o->grad_clip = 1.0f;
    o->eval_every = 50;
    o->eval_batches = 20;
    o->save_every = 100;
    o->keep = 2;
    o->seed = 42;
    o->lora_cfg = (al_lora_config){.rank = 8, .alpha = 16.0f, .dropout = 0.0f, .targets = AL_LORA_ALL, .seed = 42};
}

/* ---- pref_args.json: every setting of a run, for --resume ---- */

#define S(KEY, TYPE, MEMBER) SETTING(al_pref_train_opts, KEY, TYPE, MEMBER)
static const setting pref_settings[] = {
    S("trainer", SET_INT, trainer),
    S("data", SET_STR, data),
    S("val_data", SET_STR, val_data),
    S("model", SET_STR, model),
    S("ref_model", SET_STR, ref_model),
    S("tokenizer", SET_STR, tokenizer),
    S("chat_template", SET_STR, chat_template),
    S("loss", SET_STR, loss),
    S("loss_weights", SET_STR, loss_weights),
    S("beta", SET_DOUBLE, pref.beta),
    S("label_smoothing", SET_DOUBLE, pref.label_smoothing),
    S("simpo_gamma", SET_DOUBLE, pref.simpo_gamma),
    S("rpo_alpha", SET_DOUBLE, pref.rpo_alpha),
    S("length_normalize", SET_BOOL, pref.length_normalize),
    S("desirable_weight", SET_DOUBLE, desirable_weight),
    S("undesirable_weight", SET_DOUBLE, undesirable_weight),
    S("center_rewards", SET_DOUBLE, center_rewards),
    S("precompute_ref", SET_BOOL, precompute_ref),
    S("lora", SET_BOOL, lora),
    S("lora_rank", SET_INT, lora_cfg.rank),
    S("lora_alpha", SET_FLOAT, lora_cfg.alpha),
    S("lora_dropout", SET_FLOAT, lora_cfg.dropout),
    FINETUNE_SETTINGS(S),
};
#undef S
#define N_PREF_SETTINGS ((int)(sizeof pref_settings / sizeof pref_settings[0]))

static const char *trainer_name(al_trainer_kind k)
{
    return k == AL_TRAINER_RM ? "rm" : k == AL_TRAINER_KTO ? "kto" : "dpo";
}

/* "sigmoid,bco_pair" with "1,0.5" into r->kinds and r->weights. */
static int parse_losses(pref_run *r, const char *loss, const char *weights)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", loss);
    r->n_kinds = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (r->n_kinds == AL_PREF_N_KINDS)
            return al_fail("--loss: too many losses");
        if (al_pref_loss_parse(tok, &r->kinds[r->n_kinds]))
            return -1;
        r->weights[r->n_kinds++] = 1.0;
    }
    if (r->n_kinds == 0)
        return al_fail("--loss: expected a loss name");
    if (weights) {
        snprintf(buf, sizeof buf, "%s", weights);
        int k = 0;
        for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save), k++) {
            char *end;
            double w = strtod(tok, &end);
            if (k >= r->n_kinds || *end || !isfinite(w))
                return al_fail("--loss-weights: expected %d number%s (one per loss), got '%s'", r->n_kinds,
                               r->n_kinds == 1 ? "" : "s", weights);
            r->weights[k] = w;
        }
        if (k != r->n_kinds)
            return al_fail("--loss-weights: expected %d numbers (one per loss), got %d", r->n_kinds, k);
    }
    r->reference_free = true;
    for (int k = 0; k < r->n_kinds; k++)
        r->reference_free &= al_pref_loss_reference_free(r->kinds[k]);
    return 0;
}

static int check_opts(const al_pref_train_opts *o, const al_pref_dataset *d)
{
    const char *cmd = trainer_name(o->trainer);
    if (o->trainer == AL_TRAINER_KTO ? d->paired : !d->paired)
        return al_fail("%s: %s holds %s; %s", o->data, o->data, d->paired ? "preference pairs" : "unpaired examples",
                       o->trainer == AL_TRAINER_KTO ? "KTO needs prompt/completion/label records (use --loss sigmoid "
                                                      "or another pair loss for pairs)"
                                                    : "pairs (prompt/chosen/rejected) are needed; for unpaired "
                                                      "prompt/completion/label data use --loss kto");
    if (o->trainer == AL_TRAINER_RM && o->lora)
        return al_fail("rm: --lora is not supported for reward models (the score head and the model train in full)");
    if (!(o->pref.beta > 0))
        return al_fail("%s: beta must be positive", cmd);
    return 0;
}

/* ---- the run ---- */

typedef struct run_state {
    al_tokenizer *tok;
    al_chat_template *tmpl;
    al_pref_dataset all, val;
    al_model m, ref;
    al_adamw opt;
    al_train_state st;
    pref_run r;
} run_state;

static void run_free(run_state *s)
{
    pref_items_free(&s->r.train);
    pref_items_free(&s->r.eval);
    pref_batch_free(&s->r.batch);
    al_train_ctx_free(s->r.ref_ctx);
    free(s->r.dlogp);
    free(s->r.sums);
    free(s->r.ref_sums);
    free(s->r.counts);
    al_free(s->r.d_hidden);
    al_adamw_free(&s->opt);
    al_model_free(&s->m);
    al_model_free(&s->ref);
    al_pref_free(&s->all);
    al_pref_free(&s->val);
    al_chat_template_free(s->tmpl);
    al_tokenizer_free(s->tok);
}

static int load_data(run_state *s, const al_pref_train_opts *o)
{
    al_sft_load_opts lo = {.skip_bad_lines = o->skip_bad_lines, .max_examples = o->max_examples};
    if (al_pref_load(&s->all, o->data, &lo))
        return -1;
    if (s->all.n_skipped && !o->quiet)
        fprintf(stderr, "%s: skipped %d bad record%s in %s\n", trainer_name(o->trainer), s->all.n_skipped,
                s->all.n_skipped == 1 ? "" : "s", o->data);
    if (check_opts(o, &s->all))
        return -1;
    const bool kto = o->trainer == AL_TRAINER_KTO;
    const int max_len = o->trainer == AL_TRAINER_RM ? o->seq_len : o->seq_len + 1;
    if (o->val_data) {
        if (al_pref_load(&s->val, o->val_data, &lo) || check_opts(o, &s->val))
            return -1;
        return pref_items_build(&s->r.train, &s->all, NULL, s->tmpl, s->tok, max_len, kto, o->seed) ||
               pref_items_build(&s->r.eval, &s->val, NULL, s->tmpl, s->tok, max_len, kto, o->seed);
    }
    al_ints tr = {0}, ev = {0};
    int rc = al_split_indices(s->all.n, o->held_out, o->seed, &tr, &ev);
    if (rc == 0)
        rc = pref_items_build(&s->r.train, &s->all, &tr, s->tmpl, s->tok, max_len, kto, o->seed);
    if (rc == 0)
        rc = pref_items_build(&s->r.eval, &s->all, &ev, s->tmpl, s->tok, max_len, kto, o->seed);
    al_ints_free(&tr);
    al_ints_free(&ev);
    return rc ? al_fail_prefix("%s", o->data) : 0;
}

/* The starting model (plus a fresh score head for a reward model). */
static int load_start(al_model *m, const al_pref_train_opts *o)
{
    al_model lm = {0};
    if (al_model_load(&lm, o->model) || al_model_to_half_rope(&lm)) {
        al_model_free(&lm);
        return -1;
    }
    if (o->trainer != AL_TRAINER_RM || lm.cfg.n_labels > 0) {
        *m = lm;
        return 0;
    }
    int rc = al_reward_model_from_lm(m, &lm, o->seed);
    al_model_free(&lm);
    return rc;
}

/* The policy and its optimizer.  On resume the checkpoint brings them: the whole model,
 * or with LoRA only the adapters, on top of the starting model. */
static int load_model(run_state *s, const al_pref_train_opts *o, bool resume)
{
    if (resume) {
        char used[1024];
        if (o->lora && load_start(&s->m, o))
            return -1;
        if (al_checkpoint_load(o->out_dir, &s->m, &s->opt, &s->st, used, sizeof used))
            return -1;
        s->opt.o = o->adamw;
        if (!o->quiet)
            fprintf(stderr, "%s: resuming from %s (step %ld)\n", trainer_name(o->trainer), used, s->st.step);
        return al_dist_is_root() ? al_metrics_truncate_after(o->out_dir, s->st.step) : 0;
    }
    if (load_start(&s->m, o))
        return -1;
    if (o->lora) {
        al_lora_config lc = o->lora_cfg;
        lc.seed = o->seed;
        return al_lora_attach(&s->m, &lc) || al_adamw_init_block(&s->opt, s->m.lora->n_params, NULL, &o->adamw);
    }
    return al_adamw_init(&s->opt, &s->m, &o->adamw);
}

/* DPO/KTO: reference log-probs cached up front (--precompute-ref), or a reference model
 * run beside the policy: the LoRA-disabled policy, or --ref-model / the starting model. */
static int setup_reference(run_state *s, const al_pref_train_opts *o, int T)
{
    pref_run *r = &s->r;
    if (o->trainer == AL_TRAINER_RM || r->reference_free)
        return 0;
    al_model *ref = &s->m;
    if (!s->m.lora || o->ref_model) {
        const char *path = o->ref_model ? o->ref_model : o->model;
        if (al_model_load(&s->ref, path) || al_model_to_half_rope(&s->ref))
            return -1;
        if (s->ref.cfg.vocab_size != s->m.cfg.vocab_size)
            return al_fail("%s: the reference's vocabulary (%d) differs from the policy's (%d)", path,
                           s->ref.cfg.vocab_size, s->m.cfg.vocab_size);
        ref = &s->ref;
    }
    if (o->precompute_ref) {
        char *path = al_path_join(o->out_dir, "ref_logps.bin"), *eval_path = al_path_join(o->out_dir,
                                                                                           "ref_logps_eval.bin");
        const char *label = trainer_name(o->trainer);
        int rc = !path || !eval_path ? al_fail("out of memory")
                                     : pref_reference_logps(&r->train, path, ref, o->batch_size, T, o->quiet,
                                                            label) ||
                                           pref_reference_logps(&r->eval, eval_path, ref, o->batch_size, T,
                                                                o->quiet, label);
        free(path);
        free(eval_path);
        if (ref == &s->ref)
            al_model_free(&s->ref); /* cached: the reference is no longer needed */
        return rc;
    }
    if (ref == &s->ref && !(r->ref_ctx = al_train_ctx_new(&s->ref, 2 * o->batch_size, T)))
        return -1;
    return 0;
}

/* Rows as long as the longest sequence needs (in steps of 16), not --seq-len: TRL pads to
 * the longest in the batch; padding to the longest in the data keeps one training context
 * and halves the work on short preference data. */
static int row_length(const run_state *s, const al_pref_train_opts *o)
{
    const int lm = o->trainer != AL_TRAINER_RM; /* inputs are all tokens but the last */
    int longest = 1;
    const pref_items *sets[2] = {&s->r.train, &s->r.eval};
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 2 * sets[k]->n; i++)
            if (sets[k]->seq[i].n - lm > longest)
                longest = sets[k]->seq[i].n - lm;
    int T = (longest + 15) / 16 * 16;
    return T < o->seq_len ? T : o->seq_len;
}

static long steps_for(const al_pref_train_opts *o, int n_items)
{
    if (o->steps > 0)
        return o->steps;
    long steps = (long)ceil((double)n_items * (o->epochs > 0 ? o->epochs : 1) / ((double)o->batch_size * o->grad_accum));
    return steps > 0 ? steps : 1;
}

static int write_args(const al_pref_train_opts *o)
{
    json_t *j = settings_to_json(o, pref_settings, N_PREF_SETTINGS);
    char *path = al_path_join(o->out_dir, "pref_args.json");
    int rc = path ? al_write_json_atomic(path, j) : al_fail("out of memory");
    free(path);
    json_decref(j);
    return rc;
}

static int run_pref(const al_pref_train_opts *given, bool resume)
{
    /* under mpirun rank 0 alone reports and writes files (docs/distributed.md) */
    const bool root = al_dist_is_root();
    al_pref_train_opts opts = *given;
    opts.quiet = opts.quiet || !root;
    const al_pref_train_opts *o = &opts;
    const char *cmd = trainer_name(o->trainer);
    if (!o->data || !o->model || !o->tokenizer || !o->out_dir)
        return al_fail("%s: --data, --model, --tokenizer and --out are required", cmd);
    run_state s = {0};
    s.st.rng = o->seed;
    al_outlier_init(&s.st.outlier, o->skip_outliers);
    s.r.o = o;
    int rc = -1;
    const int B = o->batch_size;
    int T = o->seq_len;
    bool builtin = !strcmp(o->chat_template, "chatml") || !strcmp(o->chat_template, "llama2");
    if (parse_losses(&s.r, o->trainer == AL_TRAINER_DPO ? o->loss : "sigmoid", o->loss_weights) ||
        al_tokenizer_load(&s.tok, o->tokenizer) || al_model_dir_load_config(o->tokenizer, s.tok, NULL, NULL) ||
        al_mkdir_p(o->out_dir) ||
        (builtin ? al_chat_template_builtin(&s.tmpl, o->chat_template)
                 : al_chat_template_load(&s.tmpl, o->chat_template)) ||
        load_data(&s, o) || load_model(&s, o, resume))
        goto done;
    if (s.m.cfg.vocab_size < al_tokenizer_vocab_size(s.tok)) {
        al_fail("model vocabulary (%d) is smaller than the tokenizer's (%d)", s.m.cfg.vocab_size,
                al_tokenizer_vocab_size(s.tok));
        goto done;
    }
    if (!resume && root && write_args(o))
        goto done;
    if (s.r.train.n == 0) {
        al_fail("%s: no training examples", o->data);
        goto done;
    }
    long steps = steps_for(o, s.r.train.n);
    T = row_length(&s, o);
    if (!o->quiet)
        fprintf(stderr, "%s: %d train / %d held-out %s%s; %ld steps; rows of %d tokens%s\n", cmd, s.r.train.n,
                s.r.eval.n, s.all.paired ? "pairs" : "examples", s.all.conversational ? " (conversational)" : "",
                steps, T, s.r.train.truncated + s.r.eval.truncated ? "; some sequences truncated to --seq-len" : "");
    if (setup_reference(&s, o, T))
        goto done;
    s.r.dlogp = malloc(2 * (size_t)B * T * sizeof *s.r.dlogp);
    s.r.sums = malloc(2 * (size_t)B * sizeof *s.r.sums);
    s.r.ref_sums = malloc(2 * (size_t)B * sizeof *s.r.ref_sums);
    s.r.counts = malloc(2 * (size_t)B * sizeof *s.r.counts);
    if (o->trainer == AL_TRAINER_RM && !(s.r.d_hidden = al_alloc(2 * (size_t)B * T * s.m.cfg.dim * sizeof(float))))
        goto done;
    if (!s.r.dlogp || !s.r.sums || !s.r.ref_sums || !s.r.counts || pref_batch_alloc(&s.r.batch, B, T)) {
        al_fail("out of memory");
        goto done;
    }
    al_objective obj = o->trainer == AL_TRAINER_RM    ? reward_objective(&s.r)
                       : o->trainer == AL_TRAINER_KTO ? kto_objective(&s.r)
                                                      : dpo_objective(&s.r);
    al_schedule sched = o->sched;
    sched.total = steps;
    sched.min_lr = sched.peak_lr * o->min_lr_ratio;
    al_train_loop L = {.out_dir = o->out_dir, .label = cmd, .batch_size = B, .seq_len = T,
                       .grad_accum = o->grad_accum, .steps = steps, .sched = sched, .grad_clip = o->grad_clip,
                       .eval_every = s.r.eval.n ? o->eval_every : 0, .eval_batches = o->eval_batches,
                       .save_every = o->save_every, .keep = o->keep, .seed = o->seed, .quiet = o->quiet, .m = &s.m,
                       .tok = s.tok, .tmpl = s.tmpl, .opt = &s.opt, .st = &s.st, .objective = &obj};
    if (al_train_loop_run(&L))
        goto done;
    if (!root) {
        rc = 0;
        goto done;
    }
    char *final = al_path_join(o->out_dir, "final");
    rc = !final ? al_fail("out of memory") : o->lora ? al_lora_save(&s.m, final) : al_model_save_safetensors(&s.m, final);
    if (rc == 0)
        rc = al_model_dir_save_tokenizer(final, s.tok, s.tmpl);
    free(final);
done:
    run_free(&s);
    return rc;
}

int al_pref_train(const al_pref_train_opts *o) { return run_pref(o, false); }

int al_pref_resume(const char *dir, const al_pref_train_opts *given)
{
    json_t *j = settings_load(dir, "pref_args.json");
    if (!j)
        return -1;
    al_pref_train_opts o;
    al_pref_train_defaults(&o, AL_TRAINER_DPO);
    int rc = settings_from_json(&o, j, pref_settings, N_PREF_SETTINGS, "pref_args.json");
    if (rc == 0) {
        o.out_dir = dir;
        if (given && given->steps > 0)
            o.steps = given->steps;
        o.quiet = given && given->quiet;
        rc = run_pref(&o, true);
    }
    json_decref(j);
    return rc;
}
