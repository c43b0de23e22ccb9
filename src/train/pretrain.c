/* The pretraining loop: next-token prediction over a token stream, with gradient
 * accumulation, clipping, outlier skipping, evaluation, samples, metrics and checkpoints. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "align/dist.h"
#include "align/train.h"
#include "settings.h"

void al_pretrain_defaults(al_pretrain_opts *o)
{
    memset(o, 0, sizeof *o);
    o->val_fraction = 0.05;
    o->doc_sep = "<|endoftext|>";
    o->batch_size = 8;
    o->seq_len = 256;
    o->grad_accum = 1;
    o->steps = 0;
    o->tokens = 0;
    o->sched = (al_schedule){.kind = AL_SCHED_COSINE, .peak_lr = 3e-4f, .warmup = 100, .wsd_decay = 0.2f};
    o->min_lr_ratio = 0.1f;
    o->adamw = al_adamw_defaults();
    o->grad_clip = 1.0f;
    o->skip_outliers = 0;
    o->eval_every = 100;
    o->eval_batches = 20;
    o->sample_every = 0;
    o->save_every = 100;
    o->keep = 3;
    o->seed = 1337;
}

/* ---- train_args.json ---- */

#define P(KEY, TYPE, MEMBER) SETTING(al_pretrain_opts, KEY, TYPE, MEMBER)
static const setting pretrain_settings[] = {
    P("data", SET_STR, data),
    P("val_data", SET_STR, val_data),
    P("tokenizer", SET_STR, tokenizer),
    P("init", SET_STR, init_model),
    P("cache_dir", SET_STR, cache_dir),
    P("doc_sep", SET_STR, doc_sep),
    P("val_fraction", SET_DOUBLE, val_fraction),
    P("batch_size", SET_INT, batch_size),
    P("seq_len", SET_INT, seq_len),
    P("grad_accum", SET_INT, grad_accum),
    P("steps", SET_LONG, steps),
    P("lr", SET_FLOAT, sched.peak_lr),
    P("min_lr_ratio", SET_FLOAT, min_lr_ratio),
    P("warmup", SET_LONG, sched.warmup),
    P("schedule", SET_SCHEDULE, sched.kind),
    P("wsd_decay", SET_FLOAT, sched.wsd_decay),
    P("weight_decay", SET_FLOAT, adamw.weight_decay),
    P("beta1", SET_FLOAT, adamw.beta1),
    P("beta2", SET_FLOAT, adamw.beta2),
    P("eps", SET_FLOAT, adamw.eps),
    P("grad_clip", SET_FLOAT, grad_clip),
    P("skip_outliers", SET_FLOAT, skip_outliers),
    P("eval_every", SET_INT, eval_every),
    P("eval_batches", SET_INT, eval_batches),
    P("sample_every", SET_INT, sample_every),
    P("save_every", SET_INT, save_every),
    P("keep", SET_INT, keep),
    P("seed", SET_U64, seed),
};
#undef P
#define N_PRETRAIN_SETTINGS ((int)(sizeof pretrain_settings / sizeof pretrain_settings[0]))

int al_pretrain_args_write(const al_pretrain_opts *o, const char *out_dir)
{
    json_t *j = settings_to_json(o, pretrain_settings, N_PRETRAIN_SETTINGS);
    /* the architecture, as the HF config.json the model is saved with */
    al_buf cfg = {0};
    if (al_config_to_hf_json(&o->model, &cfg) == 0)
        json_object_set_new(j, "model", json_loadb(cfg.data, cfg.len, 0, NULL));
    al_buf_free(&cfg);
    char *path = al_path_join(out_dir, "train_args.json");
    int rc = path ? al_write_json_atomic(path, j) : al_fail("out of memory");
    json_decref(j);
    free(path);
    return rc;
}

/* The saved settings of a run; strings point into the returned JSON, kept until the end. */
static json_t *read_args(al_pretrain_opts *o, const char *out_dir)
{
    json_t *j = settings_load(out_dir, "train_args.json");
    if (!j)
        return NULL;
    al_pretrain_defaults(o);
    o->steps = 0;
    if (settings_from_json(o, j, pretrain_settings, N_PRETRAIN_SETTINGS, "train_args.json")) {
        json_decref(j);
        return NULL;
    }
    if (!o->data || !o->tokenizer) {
        al_fail("train_args.json: missing data or tokenizer");
        json_decref(j);
        return NULL;
    }
    return j;
}

/* ---- the token stream as a batch source ---- */

static int stream_next(void *ctx, al_batch_cursor *c, int B, int T, al_batch *b)
{
    b->packed = false;
    return al_next_batch(&((al_token_data *)ctx)->train, c, B, T, b->tokens, b->targets);
}

static int stream_eval(void *ctx, int e, int B, int T, al_batch *b)
{
    b->packed = false;
    return al_eval_batch(&((al_token_data *)ctx)->val, e, B, T, b->tokens, b->targets);
}

/* ---- a run ---- */

typedef struct run {
    al_pretrain_opts o;
    al_tokenizer *tok;
    al_token_data data;
    al_model m;
    al_adamw opt;
    al_train_state st;
    json_t *saved_args;
} run;

static int setup_model(run *r)
{
    al_pretrain_opts *o = &r->o;
    if (o->init_model) {
        if (al_model_load(&r->m, o->init_model))
            return al_fail_prefix("--init %s", o->init_model);
    } else {
        if (al_model_init(&r->m, &o->model))
            return -1;
        al_model_init_weights(&r->m, o->seed);
    }
    if (r->m.cfg.vocab_size < al_tokenizer_vocab_size(r->tok))
        return al_fail("model vocabulary (%d) is smaller than the tokenizer's (%d)", r->m.cfg.vocab_size,
                       al_tokenizer_vocab_size(r->tok));
    if (o->seq_len > r->m.cfg.seq_len)
        return al_fail("--seq-len %d exceeds the model's %d positions", o->seq_len, r->m.cfg.seq_len);
    o->model = r->m.cfg;
    return al_model_to_half_rope(&r->m);
}

/* The weights and, so that the directory is usable alone, the tokenizer. */
static int save_model_dir(const al_model *m, const al_tokenizer *tok, const char *out_dir, const char *name)
{
    char *dir = al_path_join(out_dir, name);
    int rc = !dir ? al_fail("out of memory")
             : al_model_save_safetensors(m, dir) || al_model_dir_save_tokenizer(dir, tok, NULL) ? -1
                                                                                             : 0;
    free(dir);
    return rc;
}

static int start(run *r, const al_pretrain_opts *given, const char *resume)
{
    if (resume) {
        r->saved_args = read_args(&r->o, resume);
        if (!r->saved_args)
            return -1;
        r->o.out_dir = resume;
        if (given && given->steps > 0)
            r->o.steps = given->steps;
        r->o.quiet = given ? given->quiet : false;
    } else {
        r->o = *given;
    }
    al_pretrain_opts *o = &r->o;
    /* under mpirun rank 0 alone reports and writes files (docs/distributed.md) */
    const bool root = al_dist_is_root();
    o->quiet = o->quiet || !root;
    if (!o->data || !o->tokenizer || !o->out_dir)
        return al_fail("pretrain: --data, --tokenizer and --out are required");
    if (o->batch_size <= 0 || o->seq_len <= 0 || o->grad_accum <= 0)
        return al_fail("pretrain: batch size, sequence length and accumulation must be positive");
    if (al_tokenizer_load(&r->tok, o->tokenizer) || al_mkdir_p(o->out_dir))
        return -1;
    if (resume) {
        char used[1024];
        if (al_checkpoint_load(resume, &r->m, &r->opt, &r->st, used, sizeof used))
            return -1;
        r->opt.o = o->adamw;
        if (!o->quiet)
            fprintf(stderr, "resuming from %s (step %ld)\n", used, r->st.step);
        if (root && al_metrics_truncate_after(o->out_dir, r->st.step))
            return -1;
    } else {
        if (setup_model(r) || al_adamw_init(&r->opt, &r->m, &o->adamw))
            return -1;
        r->st = (al_train_state){.rng = o->seed};
        al_outlier_init(&r->st.outlier, o->skip_outliers);
        if (root && save_model_dir(&r->m, r->tok, o->out_dir, "init"))
            return -1;
    }
    al_data_opts d;
    al_data_opts_defaults(&d);
    d.train_path = o->data;
    d.val_path = o->val_data;
    d.val_fraction = o->val_fraction;
    d.doc_sep = o->doc_sep;
    d.cache_dir = o->cache_dir;
    d.tokenizer_path = o->tokenizer;
    d.quiet = o->quiet;
    if (al_token_data_load(&r->data, &d, r->tok) || (root && al_token_data_describe(&r->data, o->out_dir)))
        return -1;
    if (o->steps <= 0) {
        double per_step = (double)o->batch_size * o->seq_len * o->grad_accum;
        o->steps = o->tokens > 0 ? (long)ceil(o->tokens / per_step) : (long)(r->data.train.n / per_step);
        if (o->steps <= 0)
            o->steps = 1;
    }
    o->sched.total = o->steps;
    o->sched.min_lr = o->sched.peak_lr * o->min_lr_ratio;
    if (!resume && root && al_pretrain_args_write(o, o->out_dir))
        return -1;
    return 0;
}

static int train(run *r)
{
    al_pretrain_opts *o = &r->o;
    al_batch_source src = {&r->data, stream_next, stream_eval};
    al_train_loop L = {.out_dir = o->out_dir, .label = "pretrain", .batch_size = o->batch_size,
                       .seq_len = o->seq_len, .grad_accum = o->grad_accum, .steps = o->steps, .sched = o->sched,
                       .grad_clip = o->grad_clip, .eval_every = o->eval_every, .eval_batches = o->eval_batches,
                       .sample_every = o->sample_every, .save_every = o->save_every, .keep = o->keep,
                       .seed = o->seed, .quiet = o->quiet, .m = &r->m, .tok = r->tok, .opt = &r->opt,
                       .st = &r->st, .train = src, .eval = src};
    return al_train_loop_run(&L);
}

int al_pretrain(const al_pretrain_opts *opts, const char *resume)
{
    run r;
    memset(&r, 0, sizeof r);
    int rc = start(&r, opts, resume);
    if (rc == 0 && !r.o.quiet)
        fprintf(stderr, "model: %zu parameters; data: %zu train / %zu val tokens; %ld steps of %d x %d x %d tokens\n",
                r.m.n_params, r.data.train.n, r.data.val.n, r.o.steps, r.o.grad_accum, r.o.batch_size,
                r.o.seq_len);
    if (rc == 0)
        rc = train(&r);
    if (rc == 0 && al_dist_is_root())
        rc = save_model_dir(&r.m, r.tok, r.o.out_dir, "final");
    al_adamw_free(&r.opt);
    al_model_free(&r.m);
    al_token_data_free(&r.data);
    al_tokenizer_free(r.tok);
    json_decref(r.saved_args);
    return rc;
}
