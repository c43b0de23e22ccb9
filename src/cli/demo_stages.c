/* The stages of align demo, in the order they run (docs/demo.md).  Each reads what the
 * earlier stages wrote into the run directory and adds its figures to a JSON object. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "align/tokenizer.h"
#include "align/train.h"
#include "demo.h"

/* ---- the presets ----
 * Tuned on a 2-core machine shared with other jobs (docs/demo.md has the measurements):
 * the full demo must reach every acceptance figure in under 10 minutes, --quick must run
 * every stage in under 2. */
#define BASE_MODEL(DIM, HIDDEN, LAYERS, HEADS, VOCAB)                                                   \
    "{\"model_type\": \"llama\", \"hidden_size\": " #DIM ", \"intermediate_size\": " #HIDDEN               \
    ", \"num_hidden_layers\": " #LAYERS ", \"num_attention_heads\": " #HEADS ", \"num_key_value_heads\": " #HEADS \
    ", \"vocab_size\": " #VOCAB ", \"max_position_embeddings\": 256, \"tie_word_embeddings\": true}"

const demo_preset demo_preset_full = {
    .name = "full", .quick = false, .vocab_size = 2048, .model_config = BASE_MODEL(128, 352, 4, 4, 2048),
    .seq_len = 256, .pretrain_steps = 400, .pretrain_batch = 16, .pretrain_lr = 3e-3f,
    .sft_epochs = 1, .sft_batch = 8, .sft_lr = 1e-3f,
    .rm_steps = 100, .rm_batch = 8, .rm_lr = 2e-4f,
    .dpo_steps = 300, .dpo_batch = 8, .dpo_lr = 3e-4f, .dpo_beta = 0.1f, .dpo_rpo_alpha = 1.0f,
    .max_new_tokens = 96, .guard_threshold = 0.5f};

const demo_preset demo_preset_quick = {
    .name = "quick", .quick = true, .vocab_size = 1024, .model_config = BASE_MODEL(64, 176, 2, 4, 1024),
    .seq_len = 256, .pretrain_steps = 60, .pretrain_batch = 8, .pretrain_lr = 3e-3f,
    .sft_epochs = 1, .sft_batch = 8, .sft_lr = 1e-3f,
    .rm_steps = 20, .rm_batch = 8, .rm_lr = 2e-4f,
    .dpo_steps = 20, .dpo_batch = 8, .dpo_lr = 3e-4f, .dpo_beta = 0.1f, .dpo_rpo_alpha = 1.0f,
    .pref_max_examples = 300, .max_new_tokens = 48, .guard_threshold = 0.5f};

/* ---- helpers ---- */

/* The paths every stage shares, relative to the run directory. */
#define WORLD "world"
#define TOKENIZER "tokenizer/tokenizer.json"
#define BASE_RUN "runs/base"
#define SFT_RUN "runs/sft"
#define RM_RUN "runs/reward_model"
#define DPO_RUN "runs/dpo"

typedef struct paths {
    char *v[8];
    int n;
} paths;

/* OUT/rel, kept in ps until paths_free. */
static const char *at(const demo_ctx *c, paths *ps, const char *rel)
{
    if (ps->n == (int)(sizeof ps->v / sizeof ps->v[0])) {
        al_fail("demo: too many paths in one stage");
        return NULL;
    }
    return ps->v[ps->n] = demo_path(c, rel), ps->v[ps->n++];
}

static void paths_free(paths *ps)
{
    for (int i = 0; i < ps->n; i++)
        free(ps->v[i]);
    ps->n = 0;
}

/* A trainer's state in RUN: 2 = finished (RUN/final exists), 1 = interrupted after a
 * checkpoint (resume from it), 0 = nothing to keep (start afresh). */
static int run_state(const char *run)
{
    char *final = al_path_join(run, "final"), *latest = al_path_join(run, "checkpoints/latest");
    int s = final && al_is_dir(final) ? 2 : latest && al_file_exists(latest) ? 1 : 0;
    free(final);
    free(latest);
    return s;
}

/* The last value of key in RUN/metrics.jsonl (NaN when no line has it). */
static double last_metric(const char *run, const char *key)
{
    char *path = al_path_join(run, "metrics.jsonl");
    al_buf b = {0};
    double v = NAN;
    if (path && al_read_file(path, &b) == 0) {
        for (char *line = b.data, *next; line && *line; line = next) {
            next = strchr(line, '\n');
            if (next)
                *next++ = 0;
            json_t *o = json_loads(line, 0, NULL), *x = o ? json_object_get(o, key) : NULL;
            if (json_is_number(x))
                v = json_number_value(x);
            json_decref(o);
        }
    }
    al_clear_error();
    al_buf_free(&b);
    free(path);
    return v;
}

static void set_real(json_t *o, const char *key, double x)
{
    json_object_set_new(o, key, isnan(x) ? json_null() : json_real(x));
}

static int trained(const char *what, const char *run, int rc)
{
    return rc ? al_fail_prefix("%s (%s)", what, run) : 0;
}

/* ---- stages ---- */

static int stage_world(demo_ctx *c, json_t *fig)
{
    al_world_sizes s;
    al_world_sizes_default(&s, c->p->quick);
    paths ps = {0};
    const char *dir = at(c, &ps, WORLD);
    int rc = dir ? al_world_write(dir, c->seed, &s) : -1;
    json_object_set_new(fig, "corpus_docs", json_integer(s.corpus_docs));
    json_object_set_new(fig, "sft_demonstrations", json_integer(s.sft));
    json_object_set_new(fig, "preference_pairs", json_integer(s.preferences));
    json_object_set_new(fig, "train_prompts", json_integer(s.train_prompts));
    json_object_set_new(fig, "heldout_prompts", json_integer(s.heldout_harmful + s.heldout_benign + s.heldout_contrast));
    paths_free(&ps);
    return rc;
}

static void tok_progress(void *ctx, const char *stage, long done, long total)
{
    al_progress *bar = ctx;
    if (!bar->label) /* the merges are what takes time: one bar for them */
        al_progress_begin(bar, "tokenizer merges", total);
    if (!strcmp(stage, "merge"))
        al_progress_update(bar, done, NULL);
}

static int stage_tokenizer(demo_ctx *c, json_t *fig)
{
    paths ps = {0};
    const char *corpus = at(c, &ps, WORLD "/corpus.txt"), *out = at(c, &ps, TOKENIZER),
               *dir = at(c, &ps, "tokenizer");
    al_buf text = {0};
    al_tokenizer *t = NULL;
    al_progress bar = {0};
    /* <|endoftext|> is the corpus's document separator: one id, BOS and EOS alike */
    const char *specials[] = {"<|endoftext|>"};
    al_bpe_train_opts o = {c->p->vocab_size, specials, 1, tok_progress, &bar};
    const char *texts[1];
    size_t lens[1];
    int rc = out && dir ? al_read_file(corpus, &text) : -1;
    texts[0] = text.data, lens[0] = text.len;
    if (rc == 0)
        rc = al_bpe_train(&t, texts, lens, 1, &o);
    if (bar.label)
        al_progress_end(&bar);
    if (rc == 0)
        rc = al_mkdir_p(dir) || al_tokenizer_save_json(t, out) ? -1 : 0;
    if (rc == 0) {
        json_object_set_new(fig, "vocab_size", json_integer(al_tokenizer_vocab_size(t)));
        json_object_set_new(fig, "merges", json_integer(al_tokenizer_n_merges(t)));
    }
    al_tokenizer_free(t);
    al_buf_free(&text);
    paths_free(&ps);
    return rc;
}

static int stage_pretrain(demo_ctx *c, json_t *fig)
{
    paths ps = {0};
    al_pretrain_opts o;
    al_pretrain_defaults(&o);
    o.data = at(c, &ps, WORLD "/corpus.txt");
    o.tokenizer = at(c, &ps, TOKENIZER);
    o.out_dir = at(c, &ps, BASE_RUN);
    int rc = o.out_dir ? 0 : -1, state = rc ? 0 : run_state(o.out_dir);
    if (rc == 0 && state < 2) {
        const char *cfg = c->p->model_config;
        rc = al_config_from_hf_json(&o.model, cfg, strlen(cfg), "the demo's base model");
        o.batch_size = c->p->pretrain_batch;
        o.seq_len = c->p->seq_len;
        o.steps = c->p->pretrain_steps;
        o.sched = (al_schedule){.kind = AL_SCHED_COSINE, .peak_lr = c->p->pretrain_lr, .warmup = 30};
        o.eval_every = (int)o.steps; /* at the start and the end */
        o.eval_batches = 8;
        o.save_every = 50;
        o.keep = 1;
        o.seed = c->seed;
        rc = rc ? rc : trained("pretraining", o.out_dir, al_pretrain(&o, state == 1 ? o.out_dir : NULL));
    }
    if (rc == 0) {
        set_real(fig, "train_loss", last_metric(o.out_dir, "loss"));
        set_real(fig, "eval_loss", last_metric(o.out_dir, "eval_loss"));
        set_real(fig, "tokens", last_metric(o.out_dir, "tokens"));
        json_object_set_new(fig, "steps", json_integer(c->p->pretrain_steps));
    }
    paths_free(&ps);
    return rc;
}

static int stage_sft(demo_ctx *c, json_t *fig)
{
    paths ps = {0};
    al_sft_opts o;
    al_sft_defaults(&o);
    o.data = at(c, &ps, WORLD "/sft.jsonl");
    o.model = at(c, &ps, BASE_RUN "/final");
    o.tokenizer = at(c, &ps, TOKENIZER);
    o.chat_template = at(c, &ps, WORLD "/template");
    o.out_dir = at(c, &ps, SFT_RUN);
    int rc = o.out_dir ? 0 : -1, state = rc ? 0 : run_state(o.out_dir);
    if (rc == 0 && state < 2) {
        o.packing = true;
        o.epochs = c->p->sft_epochs;
        o.batch_size = c->p->sft_batch;
        o.seq_len = c->p->seq_len;
        o.sched = (al_schedule){.kind = AL_SCHED_COSINE, .peak_lr = c->p->sft_lr, .warmup = 10};
        o.eval_every = 1000000; /* at the start and the end */
        o.save_every = 50;
        o.keep = 1;
        o.seed = c->seed;
        rc = trained("SFT", o.out_dir, state == 1 ? al_sft_resume(o.out_dir, &o) : al_sft_train(&o));
    }
    if (rc == 0) {
        set_real(fig, "train_loss", last_metric(o.out_dir, "loss"));
        set_real(fig, "eval_loss", last_metric(o.out_dir, "eval_loss"));
    }
    paths_free(&ps);
    return rc;
}

/* The preference trainers share everything but the trainer kind and the knobs. */
static int pref_stage(demo_ctx *c, json_t *fig, al_trainer_kind kind, const char *run, long steps, int batch,
                      float lr)
{
    paths ps = {0};
    al_pref_train_opts o;
    al_pref_train_defaults(&o, kind);
    o.data = at(c, &ps, WORLD "/preferences.jsonl");
    o.model = at(c, &ps, SFT_RUN "/final");
    o.tokenizer = at(c, &ps, TOKENIZER);
    o.chat_template = at(c, &ps, WORLD "/template");
    o.out_dir = at(c, &ps, run);
    int rc = o.out_dir ? 0 : -1, state = rc ? 0 : run_state(o.out_dir);
    if (rc == 0 && state < 2) {
        o.steps = steps;
        o.max_examples = c->p->pref_max_examples;
        o.batch_size = batch;
        o.seq_len = c->p->seq_len;
        o.sched = (al_schedule){.kind = AL_SCHED_LINEAR, .peak_lr = lr, .warmup = steps / 10};
        o.eval_every = (int)steps;
        o.eval_batches = 10;
        o.save_every = 50;
        o.keep = 1;
        o.seed = c->seed;
        if (kind == AL_TRAINER_DPO) {
            o.precompute_ref = true; /* the reference is the SFT model: one pass, cached */
            o.pref.beta = c->p->dpo_beta;
            o.pref.rpo_alpha = c->p->dpo_rpo_alpha;
        }
        rc = trained(kind == AL_TRAINER_RM ? "reward model" : "DPO", o.out_dir,
                     state == 1 ? al_pref_resume(o.out_dir, &o) : al_pref_train(&o));
    }
    if (rc == 0 && kind == AL_TRAINER_RM) {
        set_real(fig, "eval_accuracy", last_metric(o.out_dir, "eval_accuracy"));
        set_real(fig, "eval_loss", last_metric(o.out_dir, "eval_loss"));
    } else if (rc == 0) {
        set_real(fig, "eval_loss", last_metric(o.out_dir, "eval_loss"));
        set_real(fig, "eval_rewards_accuracies", last_metric(o.out_dir, "eval_rewards/accuracies"));
        set_real(fig, "eval_rewards_margins", last_metric(o.out_dir, "eval_rewards/margins"));
    }
    paths_free(&ps);
    return rc;
}

static int stage_reward_model(demo_ctx *c, json_t *fig)
{
    return pref_stage(c, fig, AL_TRAINER_RM, RM_RUN, c->p->rm_steps, c->p->rm_batch, c->p->rm_lr);
}

static int stage_dpo(demo_ctx *c, json_t *fig)
{
    return pref_stage(c, fig, AL_TRAINER_DPO, DPO_RUN, c->p->dpo_steps, c->p->dpo_batch, c->p->dpo_lr);
}

/* The held-out evaluation of one model (the guard in front when guarded), with the base
 * model as the KL reference; the summary and every answer go to OUT/eval/. */
static int evaluate(demo_ctx *c, json_t *fig, const char *name, const char *run, bool guarded)
{
    paths ps = {0};
    char model[256], summary[128], answers[128];
    snprintf(model, sizeof model, "%s/final", run);
    snprintf(summary, sizeof summary, "eval/%s.json", name);
    snprintf(answers, sizeof answers, "eval/%s.answers.jsonl", name);
    al_eval_opts o;
    al_eval_defaults(&o);
    o.model = at(c, &ps, model);
    o.tokenizer = at(c, &ps, TOKENIZER);
    o.world = at(c, &ps, WORLD);
    o.prompts = at(c, &ps, WORLD "/prompts_heldout.jsonl");
    o.reference = at(c, &ps, BASE_RUN "/final");
    o.summary_out = at(c, &ps, summary);
    o.answers_out = at(c, &ps, answers);
    const char *dir = at(c, &ps, "eval");
    o.max_new_tokens = c->p->max_new_tokens;
    al_eval_summary s;
    int rc = dir ? al_mkdir_p(dir) : -1;
    if (rc == 0)
        rc = guarded ? demo_guard_eval(c, &o, &s) : al_eval_run(&o, NULL, &s);
    json_t *j = rc == 0 ? al_eval_summary_json(&s, &o) : NULL;
    if (rc == 0 && !j)
        rc = al_fail("out of memory");
    if (rc == 0) {
        json_object_update(fig, j);
        al_eval_summary_print(&s, stdout);
    }
    json_decref(j);
    paths_free(&ps);
    return rc;
}

static int stage_eval_base(demo_ctx *c, json_t *fig) { return evaluate(c, fig, "base", BASE_RUN, false); }
static int stage_eval_sft(demo_ctx *c, json_t *fig) { return evaluate(c, fig, "sft", SFT_RUN, false); }
static int stage_eval_dpo(demo_ctx *c, json_t *fig) { return evaluate(c, fig, "dpo", DPO_RUN, false); }
static int stage_eval_guard(demo_ctx *c, json_t *fig) { return evaluate(c, fig, "guard", DPO_RUN, true); }

/* Mean reward-model score of each evaluated model's held-out answers: the reward model's
 * view of before and after (it never saw these prompts). */
static int score_answers(const al_model *rm, const al_tokenizer *tok, const al_chat_template *t, const char *path,
                         int seq_len, double *mean)
{
    al_buf b = {0};
    al_ints *seqs = NULL;
    float *r = NULL;
    int n = 0, cap = 0, rc = al_read_file(path, &b);
    for (char *line = b.data, *next; rc == 0 && line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        json_t *o = json_loads(line, 0, NULL);
        const char *prompt = json_string_value(json_object_get(o, "prompt"));
        const char *answer = json_string_value(json_object_get(o, "answer"));
        if (!prompt || !answer) {
            json_decref(o);
            rc = al_fail("%s: a line without prompt and answer", path);
            break;
        }
        al_message pm = {AL_ROLE_USER, (char *)prompt}, am = {AL_ROLE_ASSISTANT, (char *)answer};
        al_pref_example e = {.conversational = true, .prompt_msgs = &pm, .n_prompt_msgs = 1, .chosen_msgs = &am,
                             .n_chosen_msgs = 1, .label = 1};
        al_pref_tokens pt = {0};
        if (n == cap) {
            cap = cap ? 2 * cap : 256;
            al_ints *grown = realloc(seqs, (size_t)cap * sizeof *seqs);
            if (!grown) {
                json_decref(o);
                rc = al_fail("out of memory");
                break;
            }
            seqs = grown;
        }
        rc = al_pref_tokenize(&e, t, tok, seq_len, &pt);
        json_decref(o);
        if (rc == 0) {
            seqs[n++] = pt.chosen;
            pt.chosen = (al_ints){0};
        }
        al_pref_tokens_free(&pt);
    }
    if (rc == 0 && n > 0 && !(r = malloc((size_t)n * sizeof *r)))
        rc = al_fail("out of memory");
    if (rc == 0 && n > 0)
        rc = al_reward_score(rm, seqs, n, 16, seq_len, r);
    double sum = 0;
    for (int i = 0; rc == 0 && i < n; i++)
        sum += r[i];
    *mean = rc == 0 && n > 0 ? sum / n : NAN;
    for (int i = 0; i < n; i++)
        al_ints_free(&seqs[i]);
    free(seqs);
    free(r);
    al_buf_free(&b);
    return rc;
}

static int stage_rewards(demo_ctx *c, json_t *fig)
{
    paths ps = {0};
    const char *rm_path = at(c, &ps, RM_RUN "/final"), *tok_path = at(c, &ps, TOKENIZER),
               *tpl_path = at(c, &ps, WORLD "/template");
    al_model rm = {0};
    al_tokenizer *tok = NULL;
    al_chat_template *t = NULL;
    int rc = tpl_path && al_model_load(&rm, rm_path) == 0 && al_tokenizer_load(&tok, tok_path) == 0 &&
                     al_chat_template_load(&t, tpl_path) == 0
                 ? 0
                 : -1;
    for (int i = 0; rc == 0 && i < demo_n_rows; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "eval/%s.answers.jsonl", demo_rows[i].model);
        char *path = demo_path(c, rel);
        double mean = NAN;
        rc = path ? score_answers(&rm, tok, t, path, c->p->seq_len, &mean) : -1;
        free(path);
        set_real(fig, demo_rows[i].model, mean);
    }
    al_chat_template_free(t);
    al_tokenizer_free(tok);
    al_model_free(&rm);
    paths_free(&ps);
    return rc;
}

static int stage_guard(demo_ctx *c, json_t *fig) { return demo_guard_stage(c, fig); }

const demo_stage demo_stages[] = {
    {"world", "generate the support world: corpus, demonstrations, preference pairs, prompts", stage_world},
    {"tokenizer", "train a byte-level BPE tokenizer on the corpus", stage_tokenizer},
    {"pretrain", "pretrain the base model from scratch on the corpus", stage_pretrain},
    {"eval_base", "evaluate the base model on the held-out prompts", stage_eval_base},
    {"sft", "supervised fine-tuning on the demonstrations", stage_sft},
    {"eval_sft", "evaluate the SFT model", stage_eval_sft},
    {"reward_model", "train a reward model on the preference pairs", stage_reward_model},
    {"dpo", "DPO (with the RPO term) on the preference pairs, from the SFT model", stage_dpo},
    {"eval_dpo", "evaluate the aligned model", stage_eval_dpo},
    {"guard", "build the guard: a harm classifier on the training prompts and the demo's policy", stage_guard},
    {"eval_guard", "evaluate the aligned model behind the guard", stage_eval_guard},
    {"rewards", "score every model's held-out answers with the reward model", stage_rewards},
};
const int demo_n_stages = (int)(sizeof demo_stages / sizeof demo_stages[0]);

/* The table's rows: the evaluation stage, the label, and the answers file's name. */
const demo_row demo_rows[] = {
    {"eval_base", "base", "base"},
    {"eval_sft", "SFT", "sft"},
    {"eval_dpo", "DPO (aligned)", "dpo"},
    {"eval_guard", "aligned + guard", "guard"},
};
const int demo_n_rows = (int)(sizeof demo_rows / sizeof demo_rows[0]);
