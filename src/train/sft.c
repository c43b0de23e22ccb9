/* Supervised fine-tuning: TRL-format datasets, chat templates, loss masks, padded or
 * packed batches, through the shared training loop. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "align/dist.h"
#include "align/train.h"
#include "settings.h"

void al_sft_defaults(al_sft_opts *o)
{
    memset(o, 0, sizeof *o);
    o->chat_template = "chatml";
    o->mask = -1;
    o->held_out = 0.1;
    o->batch_size = 8;
    o->seq_len = 256;
    o->grad_accum = 1;
    o->epochs = 1;
    o->sched = (al_schedule){.kind = AL_SCHED_COSINE, .peak_lr = 2e-5f, .warmup = 0, .wsd_decay = 0.2f};
    o->min_lr_ratio = 0.1f;
    o->adamw = al_adamw_defaults();
    o->adamw.weight_decay = 0.0f; /* TRL's SFTTrainer default */
    o->grad_clip = 1.0f;
    o->eval_every = 50;
    o->eval_batches = 20;
    o->save_every = 100;
    o->keep = 2;
    o->seed = 42;
    o->lora_cfg = (al_lora_config){.rank = 8, .alpha = 16.0f, .dropout = 0.05f, .targets = AL_LORA_ALL, .seed = 42};
}

/* One dataset record as ids + mask, by its format. */
static int tokenize_example(const al_sft_example *e, const al_chat_template *t, const al_tokenizer *tok, int mask,
                            al_ints *ids, al_ints *m)
{
    int rc;
    switch (e->format) {
    case AL_SFT_TEXT:
        rc = al_tokenizer_encode(tok, e->text, strlen(e->text), al_tokenizer_bos(tok) >= 0,
                                 al_tokenizer_eos(tok) >= 0, ids);
        for (int i = 0; rc == 0 && i < ids->n; i++)
            rc = al_ints_push(m, 1);
        return rc;
    case AL_SFT_PROMPT_COMPLETION:
        rc = al_chat_tokenize_pc(tok, e->prompt, e->completion, true, ids, m);
        if (rc == 0 && mask == AL_MASK_ALL)
            for (int i = 0; i < m->n; i++)
                m->v[i] = 1;
        return rc;
    case AL_SFT_MESSAGES:
    case AL_SFT_CONV_PROMPT_COMPLETION:
        return al_chat_tokenize(t, tok, e->messages, e->n_messages, mask == AL_MASK_ALL ? AL_MASK_ALL : AL_MASK_ASSISTANT,
                                ids, m);
    }
    return al_fail("unknown example format");
}

static int build_set(al_example_set *set, const al_sft_dataset *d, const al_chat_template *t, const al_tokenizer *tok,
                     const al_sft_opts *o, long *n_tokens, long *n_trained)
{
    if (al_example_set_init(set, d->n, o->packing, o->seed))
        return -1;
    *n_tokens = *n_trained = 0;
    for (int i = 0; i < d->n; i++) {
        if (tokenize_example(&d->ex[i], t, tok, o->mask, &set->ids[i], &set->mask[i]))
            return al_fail_prefix("%s:%ld", o->data, d->ex[i].line);
        *n_tokens += set->ids[i].n;
        for (int j = 1; j < set->mask[i].n && j <= o->seq_len; j++)
            *n_trained += set->mask[i].v[j];
    }
    return 0;
}

/* ---- sft_args.json: every setting of a run, for --resume ---- */

#define S(KEY, TYPE, MEMBER) SETTING(al_sft_opts, KEY, TYPE, MEMBER)
static const setting sft_settings[] = {
    S("data", SET_STR, data),
    S("val_data", SET_STR, val_data),
    S("model", SET_STR, model),
    S("model_config", SET_STR, model_config),
    S("tokenizer", SET_STR, tokenizer),
    S("chat_template", SET_STR, chat_template),
    S("mask", SET_INT, mask),
    S("packing", SET_BOOL, packing),
    S("lora", SET_BOOL, lora),
    FINETUNE_SETTINGS(S),
};
#undef S
#define N_SFT_SETTINGS ((int)(sizeof sft_settings / sizeof sft_settings[0]))

static int write_args(const al_sft_opts *o)
{
    json_t *j = settings_to_json(o, sft_settings, N_SFT_SETTINGS);
    char *path = al_path_join(o->out_dir, "sft_args.json");
    int rc = path ? al_write_json_atomic(path, j) : al_fail("out of memory");
    free(path);
    json_decref(j);
    return rc;
}

/* The strings of o point into the returned JSON, which must outlive o. */
static json_t *read_args(al_sft_opts *o, const char *dir)
{
    json_t *j = settings_load(dir, "sft_args.json");
    if (!j)
        return NULL;
    al_sft_defaults(o);
    if (settings_from_json(o, j, sft_settings, N_SFT_SETTINGS, "sft_args.json")) {
        json_decref(j);
        return NULL;
    }
    o->out_dir = dir;
    return j;
}

/* A new model for the template: its markers become special tokens of the tokenizer, and
 * the vocabulary takes the tokenizer's size. */
static int init_from_scratch(al_model *m, al_tokenizer *tok, const al_chat_template *tmpl, const al_sft_opts *o)
{
    const char **markers;
    int n;
    al_chat_template_specials(tmpl, &markers, &n);
    for (int i = 0; i < n; i++)
        if (al_tokenizer_add_special(tok, markers[i], NULL))
            return -1;
    al_buf text = {0};
    if (al_read_file(o->model_config, &text))
        return -1;
    al_config c;
    int rc = al_config_from_hf_json(&c, text.data, text.len, o->model_config);
    al_buf_free(&text);
    if (rc)
        return -1;
    c.vocab_size = al_tokenizer_vocab_size(tok);
    c.bos_id = al_tokenizer_bos(tok);
    c.eos_id = al_tokenizer_eos(tok);
    if (c.seq_len < o->seq_len)
        c.seq_len = o->seq_len;
    if (al_model_init(m, &c))
        return -1;
    al_model_init_weights(m, o->seed);
    return 0;
}

static int run_sft(const al_sft_opts *given, bool resume)
{
    /* under mpirun rank 0 alone reports and writes files (docs/distributed.md) */
    const bool root = al_dist_is_root();
    al_sft_opts opts = *given;
    opts.quiet = opts.quiet || !root;
    const al_sft_opts *o = &opts;
    if (!o->data || (!o->model == !o->model_config) || !o->tokenizer || !o->out_dir)
        return al_fail("sft: --data, --tokenizer, --out and one of --model or --model-config are required");
    al_tokenizer *tok = NULL;
    al_chat_template *tmpl = NULL;
    al_sft_dataset all = {0}, train = {0}, val = {0};
    al_example_set tset = {0}, vset = {0};
    al_model m = {0};
    al_adamw opt = {0};
    al_train_state st = {.rng = o->seed};
    al_outlier_init(&st.outlier, o->skip_outliers);
    al_sft_load_opts lo = {.skip_bad_lines = o->skip_bad_lines, .max_examples = o->max_examples};
    int rc = -1;
    /* a tokenizer saved with a model brings back the special tokens it had */
    if (al_tokenizer_load(&tok, o->tokenizer) || al_model_dir_load_config(o->tokenizer, tok, NULL, NULL) ||
        al_mkdir_p(o->out_dir))
        goto done;
    if (al_chat_template_open(&tmpl, o->chat_template))
        goto done;
    if (al_sft_load(&all, o->data, &lo))
        goto done;
    if (all.n_skipped && !o->quiet) {
        fprintf(stderr, "sft: skipped %d bad record%s in %s (lines", all.n_skipped, all.n_skipped == 1 ? "" : "s",
                o->data);
        for (int i = 0; i < all.n_skipped_lines_stored; i++)
            fprintf(stderr, " %ld", all.skipped_lines[i]);
        fprintf(stderr, "%s)\n", all.n_skipped > all.n_skipped_lines_stored ? " ..." : "");
    }
    if (o->val_data ? al_sft_load(&val, o->val_data, &lo) : al_sft_split(&all, o->held_out, o->seed, &train, &val))
        goto done;
    const al_sft_dataset *tr = o->val_data ? &all : &train;
    if (o->model) {
        /* resuming a full run, the checkpoint brings the whole model */
        if (!(resume && !o->lora) && (al_model_load(&m, o->model) || al_model_to_half_rope(&m)))
            goto done;
    } else if (init_from_scratch(&m, tok, tmpl, o)) {
        goto done;
    }
    if (resume) {
        /* the checkpoint replaces the weights and brings the optimizer and the cursor */
        char used[1024];
        if (!o->lora)
            al_model_free(&m); /* a from-scratch model: the checkpoint replaces it */
        if (al_checkpoint_load(o->out_dir, &m, &opt, &st, used, sizeof used))
            goto done;
        if (m.lora)
            m.lora->c.seed = o->seed; /* dropout masks continue from the same stream */
        opt.o = o->adamw;
        if (!o->quiet)
            fprintf(stderr, "sft: resuming from %s (step %ld)\n", used, st.step);
        if (root && al_metrics_truncate_after(o->out_dir, st.step))
            goto done;
    } else if (root && write_args(o)) {
        goto done;
    }
    if (m.cfg.vocab_size < al_tokenizer_vocab_size(tok)) {
        al_fail("model vocabulary (%d) is smaller than the tokenizer's (%d)", m.cfg.vocab_size,
                al_tokenizer_vocab_size(tok));
        goto done;
    }
    long nt, ntr, vt, vtr;
    if (build_set(&tset, tr, tmpl, tok, o, &nt, &ntr) || build_set(&vset, &val, tmpl, tok, o, &vt, &vtr))
        goto done;
    if (tset.n == 0) {
        al_fail("%s: no training examples", o->data);
        goto done;
    }
    al_schedule sched = o->sched;
    long steps = o->steps;
    if (steps <= 0) {
        /* an epoch's micro-batches: rows needed, padded or packed */
        double rows = o->packing ? ceil((double)nt / o->seq_len) : tset.n;
        steps = (long)ceil(rows * (o->epochs > 0 ? o->epochs : 1) / ((double)o->batch_size * o->grad_accum));
        if (steps <= 0)
            steps = 1;
    }
    sched.total = steps;
    sched.min_lr = sched.peak_lr * o->min_lr_ratio;
    if (!o->quiet)
        fprintf(stderr,
                "sft: %d train / %d held-out examples (%s), %ld tokens, %ld trained; template %s; %s; %ld steps\n",
                tset.n, vset.n, al_sft_format_name(all.format), nt, ntr, al_chat_template_name(tmpl),
                o->packing ? "packed" : "padded", steps);
    if (resume) {
        /* optimizer restored above */
    } else if (o->lora) {
        al_lora_config lc = o->lora_cfg;
        lc.seed = o->seed;
        if (al_lora_attach(&m, &lc) || al_adamw_init_block(&opt, m.lora->n_params, NULL, &o->adamw))
            goto done;
        if (!o->quiet)
            fprintf(stderr, "sft: LoRA rank %d, alpha %g, dropout %g: %zu trainable of %zu parameters\n", lc.rank,
                    (double)lc.alpha, (double)lc.dropout, m.lora->n_params, m.n_params);
    } else if (al_adamw_init(&opt, &m, &o->adamw)) {
        goto done;
    }
    al_train_loop L = {.out_dir = o->out_dir, .label = "sft", .batch_size = o->batch_size, .seq_len = o->seq_len,
                       .grad_accum = o->grad_accum, .steps = steps, .sched = sched, .grad_clip = o->grad_clip,
                       .eval_every = vset.n ? o->eval_every : 0, .eval_batches = o->eval_batches,
                       .save_every = o->save_every, .keep = o->keep, .seed = o->seed, .quiet = o->quiet, .m = &m,
                       .tok = tok, .tmpl = tmpl, .opt = &opt, .st = &st, .train = al_example_source(&tset),
                       .eval = al_example_source(&vset)};
    if (al_train_loop_run(&L))
        goto done;
    if (!root) {
        rc = 0;
        goto done;
    }
    char *final = al_path_join(o->out_dir, "final");
    rc = !final ? al_fail("out of memory") : o->lora ? al_lora_save(&m, final) : al_model_save_safetensors(&m, final);
    /* the tokenizer (grown by added markers when training from scratch) and the template
     * travel with the model, so that the directory is usable alone */
    if (rc == 0)
        rc = al_model_dir_save_tokenizer(final, tok, tmpl);
    free(final);
done:
    al_adamw_free(&opt);
    al_model_free(&m);
    al_example_set_free(&tset);
    al_example_set_free(&vset);
    al_sft_free(&all);
    al_sft_free(&train);
    al_sft_free(&val);
    al_chat_template_free(tmpl);
    al_tokenizer_free(tok);
    return rc;
}

int al_sft_train(const al_sft_opts *o) { return run_sft(o, false); }

int al_sft_resume(const char *dir, const al_sft_opts *given)
{
    al_sft_opts o;
    json_t *args = read_args(&o, dir);
    if (!args)
        return -1;
    if (given && given->steps > 0)
        o.steps = given->steps;
    o.quiet = given && given->quiet;
    int rc = run_sft(&o, true);
    json_decref(args);
    return rc;
}
