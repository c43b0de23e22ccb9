/* The DPO family and KTO as objectives of the shared training loop.  A micro-batch of B
 * items is 2B rows (TRL's concatenated forward: chosen rows, then rejected rows; for KTO
 * the examples, then their KL completions); every loss is a function of each row's summed
 * answer log-probs, so the backward pass only needs d loss / d logp per position. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "align/dist.h"
#include "align/dist_extra.h"
#include "pref_internal.h"

/* Reference sums of the batch's rows: cached, or from a forward pass of the reference
 * (a separate model, or the policy with its adapters switched off, run before the policy's
 * own forward so that the activations the backward needs are the policy's). */
static int reference_sums(pref_run *r, const pref_items *it, al_train_ctx *tc, al_model *m, int B, int T)
{
    const pref_batch *b = &r->batch;
    if (it->ref) {
        for (int i = 0; i < B; i++)
            for (int s = 0; s < 2; s++)
                r->ref_sums[s * B + i] = b->item[i] >= 0 ? it->ref[2 * b->item[i] + s] : 0;
        return 0;
    }
    if (r->ref_ctx) {
        if (al_forward(r->ref_ctx, b->tokens, b->targets, NULL, NULL))
            return -1;
        pref_row_sums(al_ctx_logp(r->ref_ctx), b->targets, 2 * B, T, r->ref_sums, r->counts);
        return 0;
    }
    /* the LoRA-disabled policy */
    bool train = m->lora->train;
    m->lora->train = false;
    al_lora_set_enabled(m, false);
    int rc = al_forward(tc, b->tokens, b->targets, NULL, NULL);
    al_lora_set_enabled(m, true);
    m->lora->train = train;
    if (rc == 0)
        pref_row_sums(al_ctx_logp(tc), b->targets, 2 * B, T, r->ref_sums, r->counts);
    return rc;
}

/* Policy and reference sums for the items of one micro-batch. */
static int batch_sums(pref_run *r, const pref_items *it, al_train_ctx *tc, al_model *m, const int *items, int B,
                      int T)
{
    pref_batch_fill(&r->batch, it, items, B, T, true);
    const bool ref_free = r->reference_free;
    if (!ref_free && reference_sums(r, it, tc, m, B, T))
        return -1;
    if (al_forward(tc, r->batch.tokens, r->batch.targets, NULL, NULL))
        return -1;
    pref_row_sums(al_ctx_logp(tc), r->batch.targets, 2 * B, T, r->sums, r->counts);
    if (ref_free)
        memset(r->ref_sums, 0, 2 * (size_t)B * sizeof *r->ref_sums);
    return 0;
}

/* d loss / d logp: each row's gradient on its target positions. */
static void set_row_grads(pref_run *r, const double *drow, int rows, int T, double scale)
{
    for (int row = 0; row < rows; row++)
        for (int j = 0; j < T; j++) {
            size_t k = (size_t)row * T + j;
            r->dlogp[k] = r->batch.targets[k] >= 0 ? (float)(drow[row] * scale) : 0.0f;
        }
}

/* The losses of a micro-batch's pairs: outs[i] for pair i, done[i] 1 when it has one
 * (present, both answers non-empty), else 0; returns how many have. */
static int pair_losses(pref_run *r, int B, al_pref_out *outs, double *done, double *drow)
{
    const double beta = r->o->pref.beta;
    al_pref_opts po = r->o->pref;
    /* bco_pair's reference point: the running mean of this batch's rewards, updated first */
    double sum = 0;
    int n = 0;
    for (int i = 0; i < B; i++)
        if (r->batch.item[i] >= 0) {
            sum += beta * (r->sums[i] - r->ref_sums[i]) + beta * (r->sums[B + i] - r->ref_sums[B + i]);
            n += 2;
        }
    for (int k = 0; k < r->n_kinds; k++)
        if (r->kinds[k] == AL_PREF_BCO_PAIR && n)
            al_bco_running_update(&r->bco, sum / n);
    po.bco_delta = r->bco.mean;
    int count = 0;
    for (int i = 0; i < 2 * B; i++)
        drow[i] = 0;
    for (int i = 0; i < B; i++) {
        int item = r->batch.item[i];
        done[i] = 0;
        if (item < 0 || r->counts[i] == 0 || r->counts[B + i] == 0)
            continue;
        al_pref_pair p = {.pc = r->sums[i], .pr = r->sums[B + i], .rc = r->ref_sums[i], .rr = r->ref_sums[B + i],
                          .nc = r->counts[i], .nr = r->counts[B + i], .label = r->batch_items->label[item]};
        if (al_pref_loss_mix(r->n_kinds, r->kinds, r->weights, &po, &p, &outs[i]))
            return -1;
        drow[i] = outs[i].d_pc;
        drow[B + i] = outs[i].d_pr;
        done[i] = 1;
        count++;
    }
    return count;
}

/* Moves the outputs that exist (done[i] != 0) of n to the front, in order; returns how many. */
static int compact_outs(al_pref_out *outs, const double *done, int n)
{
    int c = 0;
    for (int i = 0; i < n; i++)
        if (done[i] != 0)
            outs[c++] = outs[i];
    return c;
}

static void put_pair_metrics(json_t *j, const char *prefix, const al_pref_out *outs, int n)
{
    al_pref_metrics pm;
    al_pref_metrics_compute(outs, n, &pm);
    static const char *const names[] = {"rewards/chosen", "rewards/rejected", "rewards/accuracies",
                                        "rewards/margins", "logps/chosen", "logps/rejected"};
    const double v[] = {pm.rewards_chosen,  pm.rewards_rejected, pm.rewards_accuracies,
                        pm.rewards_margins, pm.logps_chosen,     pm.logps_rejected};
    pref_put_metrics(j, prefix, names, v, 6);
}

/* Picks the step's K*B items first, so every micro-batch knows the step's pair count. */
static int *pick_items(pref_items *it, al_batch_cursor *c, int n)
{
    int *v = malloc((size_t)n * sizeof *v);
    if (!v) {
        al_fail("out of memory");
        return NULL;
    }
    for (int i = 0; i < n; i++)
        v[i] = pref_items_next(it, c);
    return v;
}

/* Under mpirun each rank computes the micro-batches k with k % ranks == rank.  Every pair's
 * output has its slot (micro-batch k, pair i at k B + i), zero on the ranks that did not
 * compute it, so one sum gathers them and every rank then reads the step's pairs in the
 * order one rank would: the loss and the metrics come out the same.  bco_pair is the
 * exception: its reference point moves with each micro-batch's rewards in turn, so every
 * rank runs every micro-batch's forward pass (the backward only for its own). */
static int dpo_step(void *ctx, al_train_loop *L, al_train_ctx *tc, double *loss, double *items, json_t *metrics)
{
    pref_run *r = ctx;
    const int B = L->batch_size, T = L->seq_len, K = L->grad_accum;
    const size_t W = sizeof(al_pref_out) / sizeof(double), KB = (size_t)K * B;
    _Static_assert(sizeof(al_pref_out) % sizeof(double) == 0, "al_pref_out is summed as doubles");
    bool serial = false;
    for (int k = 0; k < r->n_kinds; k++)
        serial |= r->kinds[k] == AL_PREF_BCO_PAIR && al_dist_size() > 1;
    int *picks = pick_items(&r->train, &L->st->cursor, K * B);
    /* [KB] outputs, [KB] done flags, tokens: one block, one sum */
    double *shared = calloc(KB * (W + 1) + 1, sizeof *shared);
    al_pref_out *outs = (al_pref_out *)shared;
    double *done = shared + KB * W, *tokens = done + KB;
    double *drow = malloc(2 * (size_t)B * sizeof *drow);
    int rc = picks && shared && drow ? 0 : al_fail("out of memory"), n = 0;
    r->batch_items = &r->train;
    al_lora *lora = L->m->lora;
    const uint64_t dropout_base = lora ? lora->dropout_step : 0;
    for (int k = 0; rc == 0 && k < K; k++) {
        const bool own = al_dist_owns(k);
        if (!own && !serial)
            continue;
        if (lora) /* micro-batch k's dropout masks, whichever rank computes it */
            lora->dropout_step = dropout_base + (uint64_t)k;
        if ((rc = batch_sums(r, &r->train, tc, L->m, picks + k * B, B, T)))
            break;
        if (pair_losses(r, B, outs + (size_t)k * B, done + (size_t)k * B, drow) < 0) {
            rc = -1;
            break;
        }
        if (!own) { /* serial: computed for the reference point only; the owner reports it */
            memset(outs + (size_t)k * B, 0, (size_t)B * sizeof *outs);
            memset(done + (size_t)k * B, 0, (size_t)B * sizeof *done);
            continue;
        }
        for (int i = 0; i < 2 * B; i++)
            *tokens += r->counts[i];
        /* TRL's loss is the mean over the step's pairs */
        set_row_grads(r, drow, 2 * B, T, 1.0 / (K * B));
        al_backward(tc, L->m, r->dlogp);
    }
    if (lora)
        lora->dropout_step = dropout_base + (uint64_t)K;
    if (rc == 0)
        rc = al_dist_sum_doubles(shared, KB * (W + 1) + 1);
    if (rc == 0) {
        n = compact_outs(outs, done, (int)KB);
        double s = 0;
        for (int i = 0; i < n; i++)
            s += outs[i].loss;
        *loss = s / (K * B);
        *items = *tokens;
        put_pair_metrics(metrics, "", outs, n);
    }
    free(picks);
    free(shared);
    free(drow);
    return rc;
}

static int dpo_evaluate(void *ctx, al_train_loop *L, al_train_ctx *tc, json_t *metrics)
{
    pref_run *r = ctx;
    const int B = L->batch_size, T = L->seq_len;
    int n_items = pref_eval_count(&r->eval, L->eval_batches, B);
    /* every rank evaluates all of it (the same figure as one rank; only rank 0 logs it) */
    al_pref_out *outs = malloc((size_t)(n_items + B) * sizeof *outs);
    double *drow = malloc(2 * (size_t)B * sizeof *drow), *done = malloc((size_t)B * sizeof *done);
    int *items = malloc((size_t)B * sizeof *items);
    int rc = outs && drow && items && done ? 0 : al_fail("out of memory"), n = 0;
    al_bco_running saved = r->bco; /* evaluation must not move the training's reference point */
    r->batch_items = &r->eval;
    for (int i0 = 0; rc == 0 && i0 < n_items; i0 += B) {
        pref_eval_items(items, i0, n_items, B);
        if ((rc = batch_sums(r, &r->eval, tc, L->m, items, B, T)))
            break;
        if (pair_losses(r, B, outs + n, done, drow) < 0)
            rc = -1;
        else
            n += compact_outs(outs + n, done, B);
    }
    r->bco = saved;
    if (rc == 0) {
        double s = 0;
        for (int i = 0; i < n; i++)
            s += outs[i].loss;
        json_object_set_new(metrics, "eval_loss", json_real(n ? s / n : NAN));
        put_pair_metrics(metrics, "eval_", outs, n);
    }
    free(outs);
    free(drow);
    free(done);
    free(items);
    return rc;
}

al_objective dpo_objective(pref_run *r)
{
    return (al_objective){.ctx = r, .rows = 2 * r->o->batch_size, .step = dpo_step, .evaluate = dpo_evaluate};
}

/* ---- KTO ---- */

typedef struct kto_sums {
    double loss, reward[2], logp[2], z0;
    int count[2]; /* undesirable, desirable */
} kto_sums;

/* One micro-batch: z0 from its KL rows (detached), then each example's loss. */
static int kto_losses(pref_run *r, int B, double *drow, kto_sums *acc)
{
    const al_pref_train_opts *o = r->o;
    const pref_items *it = r->batch_items;
    double pol[B], ref[B];
    memset(pol, 0, sizeof pol);
    memset(ref, 0, sizeof ref);
    int n = 0;
    for (int i = 0; i < B; i++)
        if (r->batch.item[i] >= 0 && r->counts[B + i] > 0) {
            pol[n] = r->sums[B + i];
            ref[n] = r->ref_sums[B + i];
            n++;
        }
    double z0 = al_kto_z0(pol, ref, n);
    acc->z0 = z0;
    int count = 0;
    for (int i = 0; i < 2 * B; i++)
        drow[i] = 0;
    for (int i = 0; i < B; i++) {
        int item = r->batch.item[i];
        if (item < 0 || r->counts[i] == 0)
            continue;
        bool good = it->label[item] > 0.5;
        double l, d;
        if (al_kto_loss(&o->pref, r->sums[i], r->ref_sums[i], good, z0, o->desirable_weight, o->undesirable_weight,
                        &l, &d))
            return -1;
        drow[i] = d;
        acc->loss += l;
        acc->reward[good] += o->pref.beta * (r->sums[i] - r->ref_sums[i]);
        acc->logp[good] += r->sums[i];
        acc->count[good]++;
        count++;
    }
    return count;
}

static void put_kto_metrics(json_t *j, const char *prefix, const kto_sums *s)
{
    double rc = s->count[1] ? s->reward[1] / s->count[1] : 0, rr = s->count[0] ? s->reward[0] / s->count[0] : 0;
    static const char *const names[] = {"rewards/chosen", "rewards/rejected", "rewards/margins",
                                        "logps/chosen",   "logps/rejected",   "kl"};
    const double v[] = {rc, rr, rc - rr, s->count[1] ? s->logp[1] / s->count[1] : 0,
                        s->count[0] ? s->logp[0] / s->count[0] : 0, s->z0};
    pref_put_metrics(j, prefix, names, v, 6);
}

/* Under mpirun as dpo_step: each rank its micro-batches, then the sums are shared.  The
 * logged kl is the last micro-batch's z0, as with one rank. */
static int kto_step(void *ctx, al_train_loop *L, al_train_ctx *tc, double *loss, double *items, json_t *metrics)
{
    pref_run *r = ctx;
    const int B = L->batch_size, T = L->seq_len, K = L->grad_accum;
    int *picks = pick_items(&r->train, &L->st->cursor, K * B);
    double *drow = malloc(2 * (size_t)B * sizeof *drow);
    int rc = picks && drow ? 0 : al_fail("out of memory");
    kto_sums acc = {0};
    double tokens = 0;
    r->batch_items = &r->train;
    al_lora *lora = L->m->lora;
    const uint64_t dropout_base = lora ? lora->dropout_step : 0;
    for (int k = 0; rc == 0 && k < K; k++) {
        if (!al_dist_owns(k))
            continue;
        if (lora) /* micro-batch k's dropout masks, whichever rank computes it */
            lora->dropout_step = dropout_base + (uint64_t)k;
        if ((rc = batch_sums(r, &r->train, tc, L->m, picks + k * B, B, T)))
            break;
        if (kto_losses(r, B, drow, &acc) < 0) {
            rc = -1;
            break;
        }
        for (int i = 0; i < B; i++)
            tokens += r->counts[i];
        set_row_grads(r, drow, 2 * B, T, 1.0 / (K * B));
        al_backward(tc, L->m, r->dlogp);
    }
    if (lora)
        lora->dropout_step = dropout_base + (uint64_t)K;
    double shared[] = {acc.loss, acc.reward[0], acc.reward[1], acc.logp[0], acc.logp[1], acc.count[0], acc.count[1],
                       al_dist_owns(K - 1) ? acc.z0 : 0, tokens};
    if (rc == 0 && (rc = al_dist_sum_doubles(shared, sizeof shared / sizeof *shared)) == 0) {
        acc = (kto_sums){.loss = shared[0], .reward = {shared[1], shared[2]}, .logp = {shared[3], shared[4]},
                         .count = {(int)shared[5], (int)shared[6]}, .z0 = shared[7]};
        *loss = acc.loss / (K * B);
        *items = shared[8];
        put_kto_metrics(metrics, "", &acc);
    }
    free(picks);
    free(drow);
    return rc;
}

static int kto_evaluate(void *ctx, al_train_loop *L, al_train_ctx *tc, json_t *metrics)
{
    pref_run *r = ctx;
    const int B = L->batch_size, T = L->seq_len;
    int n_items = pref_eval_count(&r->eval, L->eval_batches, B);
    double *drow = malloc(2 * (size_t)B * sizeof *drow);
    int *items = malloc((size_t)B * sizeof *items);
    int rc = drow && items ? 0 : al_fail("out of memory"), n = 0;
    kto_sums acc = {0};
    r->batch_items = &r->eval;
    for (int i0 = 0; rc == 0 && i0 < n_items; i0 += B) {
        pref_eval_items(items, i0, n_items, B);
        if ((rc = batch_sums(r, &r->eval, tc, L->m, items, B, T)))
            break;
        int c = kto_losses(r, B, drow, &acc);
        if (c < 0)
            rc = -1;
        else
            n += c;
    }
    if (rc == 0) {
        json_object_set_new(metrics, "eval_loss", json_real(n ? acc.loss / n : NAN));
        put_kto_metrics(metrics, "eval_", &acc);
    }
    free(drow);
    free(items);
    return rc;
}

al_objective kto_objective(pref_run *r)
{
    return (al_objective){.ctx = r, .rows = 2 * r->o->batch_size, .step = kto_step, .evaluate = kto_evaluate};
}
