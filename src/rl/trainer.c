/* The online-RL loop (GRPO, RLOO, REINFORCE++): sample, score, compare with the reference,
 * compute advantages, then several clipped policy-gradient updates per batch.  Sampling
 * and training share the exact kernels, so the log-probabilities recorded while sampling
 * are the "old" log-probabilities, and the first minibatch of each batch checks that the
 * probability ratio is exactly 1.  docs/online_rl.md gives the formulas and metrics. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "align/dist.h"
#include "rl_internal.h"

static const char *const algo_names[] = {"grpo", "rloo", "reinforce_pp", "reinforce_pp_baseline", "ppo"};

int al_rl_algo_parse(const char *name, al_rl_algo *out)
{
    for (int k = 0; k < 5; k++)
        if (!strcmp(name, algo_names[k]))
            return *out = (al_rl_algo)k, 0;
    return al_fail("unknown algorithm '%s' (expected grpo, rloo, reinforce_pp, reinforce_pp_baseline or ppo)", name);
}

const char *al_rl_algo_name(al_rl_algo a) { return (unsigned)a < 5 ? algo_names[a] : "?"; }

void al_rl_defaults(al_rl_opts *o, al_rl_algo algo)
{
    *o = (al_rl_opts){0};
    o->algo = algo;
    o->chat_template = "chatml";
    o->prompts_per_step = 8;
    o->num_generations = 8;
    o->max_completion_length = 64;
    o->max_prompt_length = 128;
    o->sampling = al_sampler_defaults(); /* temperature 1, as TRL's GRPO */
    o->missing_eos_penalty = 0;
    o->beta = algo == AL_RL_GRPO ? 0.04 : 0.05;
    o->kl_estimator = algo == AL_RL_GRPO ? AL_KL_K3 : AL_KL_K1;
    o->scale_rewards = AL_ADV_GRPO_GROUP;
    o->loss_type = AL_AGG_GRPO;
    o->epsilon_low = o->epsilon_high = 0.2;
    o->ppo_epochs = 1;
    o->minibatches = 1;
    o->gamma = 1.0;
    o->gae_lambda = 0.95;
    o->vf_coef = 0.1;
    o->cliprange_value = 0.2;
    o->steps = 100;
    o->seq_len = 0;
    o->sched = (al_schedule){.kind = AL_SCHED_CONSTANT, .peak_lr = 1e-5f};
    o->adamw = al_adamw_defaults();
    o->adamw.weight_decay = 0;
    o->grad_clip = 1.0f;
    o->keep = 2;
    o->log_every = 1;
    o->seed = 1;
    o->lora_cfg = (al_lora_config){.rank = 16, .alpha = 32, .targets = AL_LORA_ALL, .seed = 1};
}

/* ---- setup and the loop ---- */

static void run_free(rl_run *R)
{
    al_train_ctx_free(R->pc);
    al_train_ctx_free(R->rc);
    al_train_ctx_free(R->cc);
    if (R->m.lora)
        al_lora_detach(&R->m);
    al_model_free(&R->m);
    if (R->have_ref)
        al_model_free(&R->ref);
    al_model_free(&R->critic);
    al_adamw_free(&R->critic_opt);
    al_adamw_free(&R->opt);
    al_metrics_close(&R->mt);
    rl_prompts_free(&R->ps);
    al_rewards_free(R->rewards);
    al_chat_template_free(R->tmpl);
    al_tokenizer_free(R->tok);
    free(R->stop_ids);
    free(R->order);
    al_decoder_free(R->dec.d);
}

/* The settings a resumed run must share with its start (everything but steps and logging). */
static json_t *settings_json(const al_rl_opts *o)
{
    json_t *rw = json_array();
    for (int k = 0; k < o->n_rewards; k++)
        json_array_append_new(rw, json_pack("{s:s, s:f}", "spec", o->rewards[k], "weight",
                                            o->reward_weights ? o->reward_weights[k] : 1.0));
    json_t *j = json_object();
#define S(key, v) json_object_set_new(j, key, (v) ? json_string(v) : json_null())
#define I(key, v) json_object_set_new(j, key, json_integer((json_int_t)(v)))
#define F(key, v) json_object_set_new(j, key, json_real((double)(v)))
    S("algo", al_rl_algo_name(o->algo));
    S("data", o->data), S("model", o->model), S("ref_model", o->ref_model), S("tokenizer", o->tokenizer);
    S("chat_template", o->chat_template);
    json_object_set_new(j, "rewards", rw);
    I("max_prompts", o->max_prompts), I("prompts_per_step", o->prompts_per_step);
    I("num_generations", o->num_generations), I("max_completion_length", o->max_completion_length);
    I("max_prompt_length", o->max_prompt_length);
    F("temperature", o->sampling.temperature), I("top_k", o->sampling.top_k), F("top_p", o->sampling.top_p);
    F("min_p", o->sampling.min_p), F("missing_eos_penalty", o->missing_eos_penalty);
    I("mask_truncated_completions", o->mask_truncated), F("beta", o->beta);
    S("kl_estimator", al_kl_name(o->kl_estimator)), F("kl_target", o->kl_target), F("kl_horizon", o->kl_horizon);
    I("scale_rewards", o->scale_rewards), S("loss_type", al_loss_agg_name(o->loss_type));
    F("epsilon_low", o->epsilon_low), F("epsilon_high", o->epsilon_high), I("epochs", o->ppo_epochs);
    I("minibatches", o->minibatches), F("gamma", o->gamma), I("seq_len", o->seq_len);
    S("schedule", al_schedule_name(o->sched.kind)), F("lr", o->sched.peak_lr), I("warmup", o->sched.warmup);
    F("min_lr_ratio", o->min_lr_ratio), F("adam_beta1", o->adamw.beta1), F("adam_beta2", o->adamw.beta2);
    F("adam_eps", o->adamw.eps), F("weight_decay", o->adamw.weight_decay), F("grad_clip", o->grad_clip);
    I("seed", o->seed), I("lora", o->lora);
    if (o->rollout_weights != AL_W_F32) /* absent for floats: runs from before the option resume */
        S("rollout_weights", al_weight_type_name(o->rollout_weights));
    if (o->algo == AL_RL_PPO) {
        S("value_model", o->value_model), F("gae_lambda", o->gae_lambda), F("vf_coef", o->vf_coef);
        F("cliprange_value", o->cliprange_value);
    }
    if (o->lora) {
        I("lora_r", o->lora_cfg.rank), F("lora_alpha", o->lora_cfg.alpha), I("lora_targets", o->lora_cfg.targets);
        I("lora_seed", o->lora_cfg.seed);
    }
#undef S
#undef I
#undef F
    return j;
}

/* Writes DIR/rl_args.json on a fresh start; on resume, requires the same settings. */
static int check_settings(const al_rl_opts *o, bool resuming)
{
    char *path = al_path_join(o->out_dir, "rl_args.json");
    json_t *now = settings_json(o);
    int rc = path ? 0 : al_fail("out of memory");
    if (rc == 0 && !resuming) {
        rc = al_write_json_atomic(path, now);
    } else if (rc == 0) {
        json_error_t err;
        json_t *was = json_load_file(path, 0, &err);
        const char *key;
        json_t *v;
        if (!was)
            rc = al_fail("%s: %s (cannot resume without the run's settings)", path, err.text);
        json_object_foreach(now, key, v)
        {
            /* compared as written: the file's reals carry fewer digits than a double */
            const size_t flags = JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(7);
            char *a = json_dumps(v, flags), *b = json_dumps(json_object_get(was, key), flags);
            if (rc == 0 && (!a || !b || strcmp(a, b)))
                rc = al_fail("--resume: setting '%s' differs from the run's (%s); give the same settings", key, path);
            free(a), free(b);
        }
        json_decref(was);
    }
    json_decref(now);
    free(path);
    return rc;
}

static int check_opts(const al_rl_opts *o)
{
    if (!o->data || !o->model || !o->out_dir)
        return al_fail("%s: --data, --model and --out are required", al_rl_algo_name(o->algo));
    if (o->n_rewards <= 0)
        return al_fail("%s: at least one --reward is required (e.g. --reward model:runs/rm/final)",
                       al_rl_algo_name(o->algo));
    if (o->prompts_per_step < 1 || o->num_generations < 1 || o->max_completion_length < 1 || o->steps < 1)
        return al_fail("prompts per step, generations, completion length and steps must be positive");
    if (o->algo == AL_RL_PPO && (o->vf_coef <= 0 || o->cliprange_value <= 0 || o->gae_lambda < 0 || o->gae_lambda > 1))
        return al_fail("ppo: --vf-coef and --cliprange-value must be positive, --gae-lambda in [0, 1]");
    if ((o->algo == AL_RL_GRPO || o->algo == AL_RL_RLOO || o->algo == AL_RL_REINFORCE_PP_BASELINE) &&
        o->num_generations < 2)
        return al_fail("%s compares the completions of one prompt: --num-generations must be at least 2",
                       al_rl_algo_name(o->algo));
    if (o->ppo_epochs < 1 || o->minibatches < 1 || o->minibatches > o->prompts_per_step * o->num_generations)
        return al_fail("epochs must be >= 1 and minibatches in [1, sequences per step]");
    if (!(o->sampling.temperature > 0))
        return al_fail("the sampling temperature must be positive");
    if (o->prompts_per_step < al_dist_size()) /* ranks take whole prompt groups */
        return al_fail("%d ranks need at least %d prompts per step (each rank samples whole groups); got %d",
                       al_dist_size(), al_dist_size(), o->prompts_per_step);
    if (o->rollout_weights != AL_W_F32 && o->rollout_weights != AL_W_BF16 && o->rollout_weights != AL_W_INT8)
        return al_fail("unknown rollout weight type %d", (int)o->rollout_weights);
    if (o->epsilon_low < 0 || o->epsilon_high < 0 || o->beta < 0)
        return al_fail("epsilon and beta must be >= 0");
    return 0;
}

/* Tokenizer and template: given, else the ones saved beside the model. */
static int load_text(rl_run *R, const al_rl_opts *o)
{
    char *found = o->tokenizer ? NULL : al_model_dir_find_tokenizer(o->model);
    const char *path = o->tokenizer ? o->tokenizer : found;
    if (!path)
        return al_fail("%s: no tokenizer beside the model; give --tokenizer", o->model);
    int rc = al_tokenizer_load(&R->tok, path);
    free(found);
    if (rc)
        return -1;
    if (!o->tokenizer && al_model_dir_load_config(o->model, R->tok, &R->tmpl, NULL))
        return -1;
    if (!R->tmpl && al_chat_template_open(&R->tmpl, o->chat_template))
        return -1;
    /* stop at EOS and at the template's markers the tokenizer holds as single tokens */
    const char **marks;
    int n_marks = 0;
    al_chat_template_specials(R->tmpl, &marks, &n_marks);
    R->stop_ids = malloc((size_t)(n_marks + 1) * sizeof *R->stop_ids);
    if (!R->stop_ids)
        return al_fail("out of memory");
    if (al_tokenizer_eos(R->tok) >= 0)
        R->stop_ids[R->n_stop++] = al_tokenizer_eos(R->tok);
    for (int k = 0; k < n_marks; k++) {
        int id = al_tokenizer_find(R->tok, marks[k], strlen(marks[k]));
        if (id >= 0) {
            if (al_tokenizer_add_special(R->tok, marks[k], NULL))
                return -1;
            R->stop_ids[R->n_stop++] = id;
        }
    }
    return 0;
}

static int setup(rl_run *R, const al_rl_opts *o, al_train_state *resume_state)
{
    R->o = o;
    if (check_opts(o) || load_text(R, o) || al_model_load(&R->m, o->model) || al_model_to_half_rope(&R->m))
        return -1;
    if (R->m.cfg.vocab_size < al_tokenizer_vocab_size(R->tok))
        return al_fail("the model's vocabulary (%d) is smaller than the tokenizer's (%d)", R->m.cfg.vocab_size,
                       al_tokenizer_vocab_size(R->tok));
    R->kl = (al_kl_ctl){.beta = o->beta, .target = o->kl_target, .horizon = o->kl_horizon};
    if (rl_uses_reference(R) && !o->lora) {
        if (al_model_load(&R->ref, o->ref_model ? o->ref_model : o->model) || al_model_to_half_rope(&R->ref))
            return -1;
        R->have_ref = true;
    }
    const int seq_len = R->seq_len =
        o->seq_len > 0 && o->seq_len < R->m.cfg.seq_len ? o->seq_len : R->m.cfg.seq_len;
    int max_prompt = o->max_prompt_length < seq_len - 1 ? o->max_prompt_length : seq_len - 1;
    if (rl_prompts_load(&R->ps, o->data, R->tmpl, R->tok, max_prompt, o->max_prompts))
        return -1;
    al_reward_env env = {.tok = R->tok, .seq_len = seq_len, .batch = 16};
    if (!(R->rewards = al_rewards_new(&env)))
        return -1;
    for (int k = 0; k < o->n_rewards; k++)
        if (al_rewards_add(R->rewards, o->rewards[k], o->reward_weights ? o->reward_weights[k] : 1.0))
            return -1;
    if (resume_state) { /* the policy and optimizer from the newest checkpoint */
        char used[1024];
        if (!o->lora)
            al_model_free(&R->m), R->m = (al_model){0};
        if (al_checkpoint_load(o->out_dir, &R->m, &R->opt, resume_state, used, sizeof used))
            return -1;
        R->opt.o = o->adamw;
        if (!o->quiet && al_dist_is_root())
            fprintf(stderr, "%s: resuming from %s (step %ld)\n", al_rl_algo_name(o->algo), used, resume_state->step);
        if (!o->lora && al_model_alloc_grads(&R->m))
            return -1;
    } else if (o->lora) {
        if (al_lora_attach(&R->m, &o->lora_cfg) ||
            al_adamw_init_block(&R->opt, R->m.lora->n_params, NULL, &o->adamw))
            return -1;
    } else if (al_model_alloc_grads(&R->m) || al_adamw_init(&R->opt, &R->m, &o->adamw)) {
        return -1;
    }
    if (o->lora)
        R->m.lora->train = false; /* no dropout: sampling and training must be one function */
    R->order = malloc((size_t)R->ps.n * sizeof *R->order);
    if (!R->order)
        return al_fail("out of memory");
    R->order_epoch = -1;
    R->micro = 8;
    R->sched = o->sched;
    R->sched.total = o->steps * o->ppo_epochs * o->minibatches;
    R->sched.min_lr = o->sched.peak_lr * o->min_lr_ratio;
    if (o->algo == AL_RL_PPO && rl_critic_open(R, resume_state))
        return -1;
    if (resume_state) {
        R->cursor = (long)resume_state->cursor.pos;
        R->updates = resume_state->step * o->ppo_epochs * o->minibatches;
        R->kl.beta = resume_state->extra[0];
    }
    /* the run directory is rank 0's: the state every rank holds is the same (docs/distributed.md) */
    if (!al_dist_is_root())
        return 0;
    if (resume_state && al_metrics_truncate_after(o->out_dir, resume_state->step))
        return -1;
    return al_mkdir_p(o->out_dir) || check_settings(o, resume_state != NULL) ||
           al_metrics_open(&R->mt, o->out_dir, resume_state != NULL);
}

static int save_checkpoint(rl_run *R, long step)
{
    if (!al_dist_is_root())
        return 0;
    al_train_state st = {.step = step, .cursor = {.pos = (size_t)R->cursor}, .rng = R->o->seed};
    st.extra[0] = R->kl.beta;
    if (R->have_critic && rl_critic_save(R, &st)) /* first: a policy checkpoint implies its critic's */
        return -1;
    return al_checkpoint_save_with(R->o->out_dir, &R->m, &R->opt, &st, R->o->keep, R->tok, R->tmpl);
}

static int save_final(rl_run *R)
{
    if (!al_dist_is_root())
        return 0;
    char *final = al_path_join(R->o->out_dir, "final");
    int rc = !final                 ? al_fail("out of memory")
             : R->o->lora           ? al_lora_save(&R->m, final)
                                    : al_model_save_safetensors(&R->m, final);
    if (rc == 0)
        rc = al_model_dir_save_tokenizer(final, R->tok, R->tmpl);
    free(final);
    return rc;
}

int al_rl_train(const al_rl_opts *o_in)
{
    al_rl_opts quiet_rank = *o_in; /* ranks other than 0 print errors only */
    quiet_rank.quiet = o_in->quiet || !al_dist_is_root();
    const al_rl_opts *o = &quiet_rank;
    rl_run R = {0};
    al_train_state resumed = {0};
    char *ckpt = o->resume ? al_path_join(o->out_dir, "checkpoints") : NULL;
    bool resuming = ckpt && al_is_dir(ckpt);
    free(ckpt);
    int rc = setup(&R, o, resuming ? &resumed : NULL);
    const char *name = al_rl_algo_name(o->algo);
    if (rc == 0 && !o->quiet)
        fprintf(stderr, "%s: %d prompts, %d per step x %d generations, up to %d new tokens; %ld steps%s\n", name,
                R.ps.n, o->prompts_per_step, o->num_generations, o->max_completion_length, o->steps,
                o->lora ? " (LoRA)" : "");
    al_progress bar;
    if (rc == 0)
        al_progress_begin(&bar, name, o->steps);
    for (long step = resumed.step + 1; rc == 0 && step <= o->steps; step++) {
        json_t *metrics = json_object();
        rc = rl_step(&R, step, metrics);
        if (rc == 0) {
            char *text = json_dumps(metrics, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(8));
            rc = text ? al_metrics_write(&R.mt, text) : al_fail("out of memory");
            free(text);
            char extra[96];
            snprintf(extra, sizeof extra, "reward %.3f kl %.4f", json_real_value(json_object_get(metrics, "reward")),
                     json_real_value(json_object_get(metrics, "kl")));
            if (!o->quiet)
                al_progress_update(&bar, step, extra);
            if (o->save_every > 0 && step % o->save_every == 0 && step < o->steps)
                rc = save_checkpoint(&R, step);
        }
        json_decref(metrics);
    }
    if (rc == 0 && !o->quiet)
        al_progress_end(&bar);
    if (rc == 0)
        rc = save_final(&R);
    run_free(&R);
    if (rc && al_dist_size() > 1) { /* the other ranks may wait in a collective: end them all */
        al_fail_prefix("%s", name);
        al_dist_abort(al_errmsg());
    }
    return rc ? al_fail_prefix("%s", name) : 0;
}
