/* The training loop every trainer shares: gradient accumulation normalized by the step's
 * target count, clipping, outlier skipping, AdamW, metrics, evaluation, samples and
 * checkpoints.  What differs between trainers is only where batches come from.
 *
 * Under mpirun the loop is data-parallel (docs/distributed.md): every rank reads the
 * step's whole global batch (so the cursor and the target count are the same everywhere),
 * computes only its micro-batches (k % ranks == rank), and the gradient and the loss are
 * summed over the ranks; clipping and AdamW then run identically on every rank.  Rank 0
 * alone writes metrics, checkpoints and progress. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "align/dist.h"
#include "align/dist_extra.h"
#include "align/train.h"

typedef struct loop_state {
    al_train_loop *L;
    al_train_ctx *ctx;
    al_metrics mt;
    int *buf; /* tokens, targets, pos, seg_start: 4 x [K][B*T] */
    float *dlogp;
    bool root;               /* rank 0: writes metrics, checkpoints, progress */
    size_t bytes_at_start;   /* al_dist_bytes_reduced() when the run began */
    double seconds_at_start, t_start;
    long steps_at_start;
} loop_state;

static al_batch micro_batch(loop_state *s, int k)
{
    const size_t BT = (size_t)s->L->batch_size * s->L->seq_len, KBT = BT * (size_t)s->L->grad_accum;
    int *base = s->buf + (size_t)k * BT;
    return (al_batch){base, base + KBT, base + 2 * KBT, base + 3 * KBT, false};
}

static int log_json(loop_state *s, json_t *j)
{
    if (!s->root) {
        json_decref(j);
        return 0;
    }
    char *text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(8));
    json_decref(j);
    int rc = text ? al_metrics_write(&s->mt, text) : al_fail("out of memory");
    free(text);
    return rc;
}

static int forward(loop_state *s, const al_batch *b)
{
    return al_forward(s->ctx, b->tokens, b->targets, b->packed ? b->pos : NULL, b->packed ? b->seg_start : NULL);
}

/* Next-token cross-entropy: the default objective. */
static int nll_gradient(loop_state *s, double *loss_out, double *items)
{
    al_train_loop *L = s->L;
    const int BT = L->batch_size * L->seq_len, K = L->grad_accum;
    al_batch mb[K];
    long n_targets = 0;
    for (int k = 0; k < K; k++) {
        mb[k] = micro_batch(s, k);
        if (L->train.next(L->train.ctx, &L->st->cursor, L->batch_size, L->seq_len, &mb[k]))
            return -1;
        for (int i = 0; i < BT; i++)
            n_targets += mb[k].targets[i] >= 0;
    }
    /* Every micro-batch scales by the step's total count: the mean over all K micro-batches. */
    for (int i = 0; i < BT; i++)
        s->dlogp[i] = -1.0f / (float)(n_targets ? n_targets : 1);
    double loss = 0;
    al_lora *lora = L->m->lora;
    const uint64_t dropout_base = lora ? lora->dropout_step : 0;
    for (int k = 0; k < K; k++) {
        if (!al_dist_owns(k))
            continue;
        if (lora) /* micro-batch k's dropout masks, whichever rank computes it */
            lora->dropout_step = dropout_base + (uint64_t)k;
        if (forward(s, &mb[k]))
            return -1;
        const float *lp = al_ctx_logp(s->ctx);
        for (int i = 0; i < BT; i++)
            loss -= mb[k].targets[i] >= 0 ? lp[i] : 0.0f;
        al_backward(s->ctx, L->m, s->dlogp);
    }
    if (lora)
        lora->dropout_step = dropout_base + (uint64_t)K;
    if (al_dist_sum_doubles(&loss, 1)) /* the gradient is summed by train_step */
        return -1;
    *loss_out = loss / (double)(n_targets ? n_targets : 1);
    *items = (double)n_targets;
    return 0;
}

static int train_step(loop_state *s, double *loss_out, double *norm_out, bool *skipped, char *why, size_t why_len,
                      json_t *metrics)
{
    al_train_loop *L = s->L;
    /* With adapters attached only they train; the base stays frozen. */
    al_lora *lora = L->m->lora;
    float *params = lora ? lora->params : L->m->params, *grads = lora ? lora->grads : L->m->grads;
    size_t n_params = lora ? lora->n_params : L->m->n_params;
    if (lora)
        al_lora_zero_grads(L->m);
    else
        al_model_zero_grads(L->m);
    double loss = 0, items = 0;
    const al_objective *obj = L->objective;
    if (obj ? obj->step(obj->ctx, L, s->ctx, &loss, &items, metrics) : nll_gradient(s, &loss, &items))
        return -1;
    /* Each rank holds the gradient of its micro-batches (zero if it had none); the sum,
     * taken in rank order, is the step's gradient on every rank. */
    if (al_dist_sum_floats(grads, n_params))
        return -1;
    double norm = al_grad_clip(grads, n_params, L->grad_clip);
    *skipped = al_outlier_check(&L->st->outlier, loss, norm, why, why_len);
    if (!*skipped)
        al_adamw_step(L->opt, params, grads, al_schedule_lr(&L->sched, L->st->step));
    L->st->tokens += items;
    *loss_out = loss;
    *norm_out = norm;
    return 0;
}

static int evaluate(loop_state *s)
{
    al_train_loop *L = s->L;
    if (L->objective) {
        if (L->m->lora)
            L->m->lora->train = false;
        json_t *j = json_pack("{s:I}", "step", (json_int_t)L->st->step);
        int rc = L->objective->evaluate(L->objective->ctx, L, s->ctx, j);
        if (L->m->lora)
            L->m->lora->train = true;
        json_t *el = json_object_get(j, "eval_loss");
        if (rc == 0 && !L->quiet)
            fprintf(stderr, "%sstep %ld: eval_loss %.4f\n", isatty(2) ? "\r\033[K" : "", L->st->step,
                    json_number_value(el));
        if (rc) {
            json_decref(j);
            return -1;
        }
        return log_json(s, j);
    }
    double sum = 0;
    long count = 0;
    al_batch b = micro_batch(s, 0);
    if (L->m->lora)
        L->m->lora->train = false; /* no dropout while measuring */
    /* evaluation batches split over the ranks like micro-batches, the sums then shared */
    for (int e = 0; e < L->eval_batches; e++) {
        if (!al_dist_owns(e))
            continue;
        int n = L->eval.eval(L->eval.ctx, e, L->batch_size, L->seq_len, &b);
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        if (forward(s, &b))
            return -1;
        const float *lp = al_ctx_logp(s->ctx);
        for (int i = 0; i < L->batch_size * L->seq_len; i++)
            if (b.targets[i] >= 0)
                sum -= lp[i], count++;
    }
    if (L->m->lora)
        L->m->lora->train = true;
    double sums[2] = {sum, (double)count};
    if (al_dist_sum_doubles(sums, 2))
        return -1;
    sum = sums[0], count = (long)sums[1];
    double vl = count ? sum / (double)count : NAN;
    if (!L->quiet)
        fprintf(stderr, "%sstep %ld: eval_loss %.4f\n", isatty(2) ? "\r\033[K" : "", L->st->step, vl);
    return log_json(s, json_pack("{s:I,s:f}", "step", (json_int_t)L->st->step, "eval_loss", vl));
}

static char *sample_text(const al_model *m, const al_tokenizer *tok, uint64_t seed, int n)
{
    al_ints prompt = {0};
    int bos = al_tokenizer_bos(tok);
    if (al_ints_push(&prompt, bos >= 0 ? bos : 0))
        return NULL;
    al_gen_opts go = {.max_new_tokens = n, .sampling = al_sampler_defaults()};
    go.sampling.temperature = 0.8f;
    go.sampling.top_p = 0.95f;
    go.sampling.seed = seed;
    int eos = al_tokenizer_eos(tok);
    go.stop_ids = &eos;
    go.n_stop_ids = eos >= 0 ? 1 : 0;
    al_gen_result r = {0};
    al_buf text = {0};
    if (al_generate(m, tok, &prompt, 1, &go, &r, NULL, NULL) == 0)
        al_tokenizer_decode(tok, r.ids.v, r.ids.n, &text);
    al_gen_results_free(&r, 1);
    al_ints_free(&prompt);
    return text.data;
}

static int sample(loop_state *s)
{
    al_train_loop *L = s->L;
    char *text = sample_text(L->m, L->tok, L->seed + (uint64_t)L->st->step, 64);
    if (!text)
        return 0;
    if (!L->quiet)
        fprintf(stderr, "%sstep %ld sample: %s\n", isatty(2) ? "\r\033[K" : "", L->st->step, text);
    int rc = log_json(s, json_pack("{s:I,s:s}", "step", (json_int_t)L->st->step, "sample", text));
    free(text);
    return rc;
}

static int rows_per_micro_batch(const al_train_loop *L)
{
    return L->objective && L->objective->rows > 0 ? L->objective->rows : L->batch_size;
}

static int run_steps(loop_state *s)
{
    al_train_loop *L = s->L;
    al_progress bar;
    al_progress_begin(&bar, L->label ? L->label : "train", L->steps);
    s->steps_at_start = L->st->step;
    s->bytes_at_start = al_dist_bytes_reduced();
    s->seconds_at_start = al_dist_seconds_reduced();
    s->t_start = al_now();
    bar.enabled = bar.enabled && !L->quiet;
    double t_last = al_now();
    int rc = 0;
    /* A fresh run reports where it starts from. */
    if (L->eval_every > 0 && L->st->step == 0)
        rc = evaluate(s);
    while (rc == 0 && L->st->step < L->steps) {
        double loss = 0, norm = 0;
        bool skipped = false;
        char why[96];
        double t0 = al_now();
        const size_t bytes0 = al_dist_bytes_reduced();
        json_t *extra = json_object();
        if ((rc = train_step(s, &loss, &norm, &skipped, why, sizeof why, extra))) {
            json_decref(extra);
            break;
        }
        long step = ++L->st->step;
        double dt = al_now() - t0;
        double tps = (double)rows_per_micro_batch(L) * L->seq_len * L->grad_accum / (dt > 0 ? dt : 1e-9);
        json_t *j = json_pack("{s:I,s:f,s:f,s:f,s:I,s:f,s:f,s:b}", "step", (json_int_t)step, "loss", loss,
                              "grad_norm", norm, "learning_rate", (double)al_schedule_lr(&L->sched, step - 1),
                              "epoch", (json_int_t)L->st->cursor.epoch, "tokens", L->st->tokens,
                              "tokens_per_second", tps, "skipped", skipped);
        json_object_update(j, extra);
        json_decref(extra);
        if (al_dist_size() > 1) /* what this rank sent to the step's sums (as online RL logs it) */
            json_object_set_new(j, "dist/bytes_reduced", json_integer((json_int_t)(al_dist_bytes_reduced() - bytes0)));
        if (skipped)
            json_object_set_new(j, "skip_reason", json_string(why));
        if ((rc = log_json(s, j)))
            break;
        if (al_now() - t_last > 0.1 || step == L->steps) {
            char extra[160];
            snprintf(extra, sizeof extra, "loss %.4f  %.0f tok/s%s", loss, tps, skipped ? "  (skipped)" : "");
            al_progress_update(&bar, step, extra);
            t_last = al_now();
        }
        if (L->eval_every > 0 && (step % L->eval_every == 0 || step == L->steps))
            rc = evaluate(s);
        if (rc == 0 && s->root && L->sample_every > 0 && step % L->sample_every == 0)
            rc = sample(s);
        if (rc == 0 && s->root && L->save_every > 0 && (step % L->save_every == 0 || step == L->steps))
            rc = al_checkpoint_save_with(L->out_dir, L->m, L->opt, L->st, L->keep, L->tok, L->tmpl);
    }
    al_progress_end(&bar);
    if (rc == 0 && !L->quiet && al_dist_size() > 1) {
        long steps = L->st->step - s->steps_at_start;
        double bytes = (double)(al_dist_bytes_reduced() - s->bytes_at_start);
        double secs = al_dist_seconds_reduced() - s->seconds_at_start, wall = al_now() - s->t_start;
        fprintf(stderr,
                "%s: %d ranks; summed %.0f bytes per step over %ld steps (%.1f MB in all; gradient %zu bytes); "
                "%.1f ms per step in the sums (%.1f%% of the time, waiting for the slower rank included)\n",
                L->label ? L->label : "train", al_dist_size(), steps > 0 ? bytes / (double)steps : 0.0, steps,
                bytes / 1e6, (L->m->lora ? L->m->lora->n_params : L->m->n_params) * sizeof(float),
                steps > 0 ? 1e3 * secs / (double)steps : 0.0, wall > 0 ? 100 * secs / wall : 0.0);
    }
    return rc;
}

/* Ranks that loaded different weights, optimizer state or position (different files at the
 * same path on two machines) would silently train different models: refuse to start. */
static int same_start(const al_train_loop *L)
{
    if (al_dist_size() == 1)
        return 0;
    const al_lora *lora = L->m->lora;
    const float *params = lora ? lora->params : L->m->params;
    size_t n = lora ? lora->n_params : L->m->n_params;
    const long where[4] = {L->st->step, (long)L->st->cursor.pos, L->st->cursor.epoch, L->opt->t};
    return al_dist_check_same(params, n * sizeof *params, "weights") ||
           al_dist_check_same(L->opt->m, 2 * L->opt->n * sizeof *L->opt->m, "optimizer state") ||
           al_dist_check_same(where, sizeof where, "step and data position");
}

int al_train_loop_run(al_train_loop *L)
{
    if (L->batch_size <= 0 || L->seq_len <= 0 || L->grad_accum <= 0)
        return al_fail("train: batch size, sequence length and accumulation must be positive");
    loop_state s = {.L = L, .root = al_dist_is_root()};
    /* Only rank 0 reports; the others stay quiet whatever the caller says. */
    L->quiet = L->quiet || !s.root;
    size_t KBT = (size_t)L->batch_size * L->seq_len * L->grad_accum;
    int rc = L->m->lora ? 0 : al_model_alloc_grads(L->m);
    if (L->m->lora)
        L->m->lora->train = true;
    if (rc == 0) {
        s.ctx = al_train_ctx_new(L->m, rows_per_micro_batch(L), L->seq_len);
        s.buf = calloc(4 * KBT, sizeof(int));
        s.dlogp = malloc((size_t)L->batch_size * L->seq_len * sizeof(float));
        rc = !s.ctx ? -1 : (!s.buf || !s.dlogp) ? al_fail("out of memory") : 0;
    }
    if (rc == 0)
        rc = same_start(L);
    if (rc == 0 && s.root)
        rc = al_metrics_open(&s.mt, L->out_dir, L->st->step > 0);
    if (rc == 0)
        rc = run_steps(&s);
    al_metrics_close(&s.mt);
    al_train_ctx_free(s.ctx);
    free(s.buf);
    free(s.dlogp);
    return rc;
}
