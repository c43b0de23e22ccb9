/* Preference items as micro-batches, and the reference model's log-probs, computed once
 * and cached beside the run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "align/dist.h"
#include "align/dist_extra.h"
#include "pref_internal.h"

void pref_items_free(pref_items *it)
{
    for (int i = 0; it->seq && i < 2 * it->n; i++) {
        al_ints_free(&it->seq[i]);
        al_ints_free(&it->mask[i]);
    }
    free(it->seq);
    free(it->mask);
    free(it->label);
    free(it->margin);
    free(it->ref);
    free(it->perm);
    memset(it, 0, sizeof *it);
}

/* KTO's KL completion of example i: its own prompt with the next example's completion,
 * fixed when the data is prepared (as TRL does), so reference log-probs can be cached. */
static al_pref_example kl_example(const al_pref_dataset *d, int i, int next)
{
    al_pref_example e = d->ex[i];
    e.chosen = d->ex[next].chosen;
    e.chosen_msgs = d->ex[next].chosen_msgs;
    e.n_chosen_msgs = d->ex[next].n_chosen_msgs;
    e.rejected = NULL;
    e.rejected_msgs = NULL;
    e.n_rejected_msgs = 0;
    return e;
}

int pref_items_build(pref_items *it, const al_pref_dataset *d, const al_ints *idx, const al_chat_template *t,
                     const al_tokenizer *tok, int max_len, bool kto, uint64_t seed)
{
    memset(it, 0, sizeof *it);
    int n = idx ? idx->n : d->n;
    it->n = n;
    it->seed = seed;
    it->perm_epoch = -1;
    size_t k = (size_t)(n > 0 ? n : 1);
    it->seq = calloc(2 * k, sizeof *it->seq);
    it->mask = calloc(2 * k, sizeof *it->mask);
    it->label = calloc(k, sizeof *it->label);
    it->margin = calloc(k, sizeof *it->margin);
    it->perm = calloc(k, sizeof *it->perm);
    if (!it->seq || !it->mask || !it->label || !it->margin || !it->perm) {
        pref_items_free(it);
        return al_fail("out of memory");
    }
    for (int i = 0; i < n; i++) {
        int src = idx ? idx->v[i] : i;
        const al_pref_example *e = &d->ex[src];
        al_pref_tokens a = {0}, b = {0};
        int rc = al_pref_tokenize(e, t, tok, max_len, &a);
        if (rc == 0 && kto) {
            int next = idx ? idx->v[(i + 1) % n] : (i + 1) % n;
            al_pref_example kl = kl_example(d, src, next);
            rc = al_pref_tokenize(&kl, t, tok, max_len, &b);
        }
        if (rc) {
            al_pref_tokens_free(&a);
            pref_items_free(it);
            return al_fail_prefix("line %ld", e->line);
        }
        it->seq[2 * i] = a.chosen;
        it->mask[2 * i] = a.chosen_mask;
        it->seq[2 * i + 1] = kto ? b.chosen : a.rejected;
        it->mask[2 * i + 1] = kto ? b.chosen_mask : a.rejected_mask;
        if (kto)
            al_ints_free(&a.rejected), al_ints_free(&a.rejected_mask);
        it->truncated += a.truncated + b.truncated;
        it->label[i] = e->label;
        it->margin[i] = e->margin;
    }
    return 0;
}

int pref_items_next(pref_items *it, al_batch_cursor *c)
{
    if (c->pos >= (size_t)it->n) {
        c->pos = 0;
        c->epoch++;
    }
    if (it->perm_epoch != c->epoch) {
        al_epoch_order(it->perm, it->n, it->seed, c->epoch);
        it->perm_epoch = c->epoch;
    }
    return it->perm[c->pos++];
}

int pref_batch_alloc(pref_batch *b, int B, int T)
{
    size_t rows = 2 * (size_t)B;
    b->tokens = malloc(rows * T * sizeof *b->tokens);
    b->targets = malloc(rows * T * sizeof *b->targets);
    b->last = malloc(rows * sizeof *b->last);
    b->item = malloc((size_t)B * sizeof *b->item);
    if (!b->tokens || !b->targets || !b->last || !b->item) {
        pref_batch_free(b);
        return al_fail("out of memory");
    }
    return 0;
}

void pref_batch_free(pref_batch *b)
{
    free(b->tokens);
    free(b->targets);
    free(b->last);
    free(b->item);
    memset(b, 0, sizeof *b);
}

/* One row: for a language-model row inputs ids[0..n-1) predict ids[1..n) (targets where
 * the mask is 1); for a reward row all n ids are inputs.  At most T positions. */
static int place_row(int *tok, int *tgt, const al_ints *ids, const al_ints *mask, int T, bool lm)
{
    int span = lm ? ids->n - 1 : ids->n;
    if (span > T)
        span = T;
    if (span < 0)
        span = 0;
    for (int j = 0; j < span; j++) {
        tok[j] = ids->v[j];
        tgt[j] = lm && mask->v[j + 1] ? ids->v[j + 1] : -1;
    }
    for (int j = span; j < T; j++) {
        tok[j] = 0;
        tgt[j] = -1;
    }
    return span - 1;
}

void pref_batch_fill(pref_batch *b, const pref_items *it, const int *items, int B, int T, bool lm)
{
    static const al_ints empty = {0};
    for (int r = 0; r < B; r++) {
        int item = items[r];
        b->item[r] = item;
        for (int s = 0; s < 2; s++) {
            int row = s * B + r;
            const al_ints *ids = item >= 0 ? &it->seq[2 * item + s] : &empty;
            const al_ints *mask = item >= 0 ? &it->mask[2 * item + s] : &empty;
            int last = place_row(b->tokens + (size_t)row * T, b->targets + (size_t)row * T, ids, mask, T, lm);
            b->last[row] = item >= 0 ? last : -1;
        }
    }
}

void pref_eval_items(int *items, int i0, int n, int B)
{
    for (int i = 0; i < B; i++)
        items[i] = i0 + i < n ? i0 + i : -1;
}

int pref_eval_count(const pref_items *it, int eval_batches, int B)
{
    return eval_batches > 0 && it->n > eval_batches * B ? eval_batches * B : it->n;
}

void pref_put_metrics(json_t *j, const char *prefix, const char *const *names, const double *values, int n)
{
    for (int i = 0; i < n; i++) {
        char key[96];
        snprintf(key, sizeof key, "%s%s", prefix, names[i]);
        json_object_set_new(j, key, json_real(values[i]));
    }
}

void pref_row_sums(const float *logp, const int *targets, int rows, int T, double *sum, int *count)
{
    for (int r = 0; r < rows; r++) {
        double s = 0;
        int c = 0;
        for (int j = 0; j < T; j++) {
            if (targets[(size_t)r * T + j] >= 0) {
                s += logp[(size_t)r * T + j];
                c++;
            }
        }
        sum[r] = s;
        count[r] = c;
    }
}

/* ---- reference log-probs ---- */

#define REF_MAGIC 0x46455241u /* "AREF" */
#define REF_VERSION 1u

/* What the cached values depend on: the reference weights (and adapters' state) and every
 * sequence with its mask. */
static uint64_t reference_key(const pref_items *it, const al_model *ref)
{
    uint64_t h = al_hash64(ref->params, ref->n_params * sizeof(float), 0x5EED);
    h = al_hash64(&ref->cfg, sizeof ref->cfg, h);
    for (int i = 0; i < 2 * it->n; i++) {
        h = al_hash64(it->seq[i].v, (size_t)it->seq[i].n * sizeof(int), h);
        h = al_hash64(it->mask[i].v, (size_t)it->mask[i].n * sizeof(int), h);
    }
    return h;
}

static int read_cache(const char *path, uint64_t key, int n, double *out)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return -1;
    uint32_t head[2];
    uint64_t k, count;
    int ok = fread(head, sizeof head, 1, fp) == 1 && head[0] == REF_MAGIC && head[1] == REF_VERSION &&
             fread(&k, sizeof k, 1, fp) == 1 && k == key && fread(&count, sizeof count, 1, fp) == 1 &&
             count == 2 * (uint64_t)n && fread(out, sizeof *out, 2 * (size_t)n, fp) == 2 * (size_t)n;
    uint64_t check;
    ok = ok && fread(&check, sizeof check, 1, fp) == 1 && check == al_hash64(out, 2 * (size_t)n * sizeof *out, key);
    fclose(fp);
    return ok ? 0 : -1;
}

static int write_cache(const char *path, uint64_t key, int n, const double *v)
{
    al_atomic_file f;
    if (al_atomic_open(&f, path))
        return -1;
    uint32_t head[2] = {REF_MAGIC, REF_VERSION};
    uint64_t count = 2 * (uint64_t)n, check = al_hash64(v, 2 * (size_t)n * sizeof *v, key);
    fwrite(head, sizeof head, 1, f.fp);
    fwrite(&key, sizeof key, 1, f.fp);
    fwrite(&count, sizeof count, 1, f.fp);
    fwrite(v, sizeof *v, 2 * (size_t)n, f.fp);
    fwrite(&check, sizeof check, 1, f.fp);
    if (ferror(f.fp)) {
        al_atomic_abort(&f);
        return al_fail("%s: write failed", path);
    }
    return al_atomic_commit(&f);
}

int pref_reference_logps(pref_items *it, const char *cache_path, al_model *ref, int B, int T, bool quiet,
                         const char *label)
{
    free(it->ref);
    it->ref = calloc(2 * (size_t)(it->n > 0 ? it->n : 1), sizeof *it->ref);
    if (!it->ref)
        return al_fail("out of memory");
    bool lora_was = ref->lora && ref->lora->enabled;
    if (ref->lora)
        al_lora_set_enabled(ref, false);
    uint64_t key = reference_key(it, ref); /* the base weights: adapters are off */
    int rc = 0;
    /* Under mpirun the ranks decide together: if any lacks the cache, all compute. */
    double missing = !(cache_path && read_cache(cache_path, key, it->n, it->ref) == 0);
    if (al_dist_sum_doubles(&missing, 1)) {
        rc = -1;
        goto done;
    }
    if (missing == 0) {
        if (!quiet)
            fprintf(stderr, "%s: reference log-probs from %s\n", label, cache_path);
        goto done;
    }
    al_train_ctx *ctx = al_train_ctx_new(ref, 2 * B, T);
    pref_batch b = {0};
    double *sums = malloc(2 * (size_t)B * sizeof *sums);
    int *counts = malloc(2 * (size_t)B * sizeof *counts), *items = malloc((size_t)B * sizeof *items);
    rc = !ctx ? -1 : pref_batch_alloc(&b, B, T);
    if (rc == 0 && (!sums || !counts || !items))
        rc = al_fail("out of memory");
    al_progress bar;
    al_progress_begin(&bar, "reference", it->n);
    bar.enabled = bar.enabled && !quiet;
    if (ref->lora)
        ref->lora->train = false;
    memset(it->ref, 0, 2 * (size_t)it->n * sizeof *it->ref);
    /* each rank computes its share of the batches, zeros elsewhere; the sum is exact */
    for (int i0 = 0; rc == 0 && i0 < it->n; i0 += B) {
        if (!al_dist_owns(i0 / B))
            continue;
        pref_eval_items(items, i0, it->n, B);
        pref_batch_fill(&b, it, items, B, T, true);
        if ((rc = al_forward(ctx, b.tokens, b.targets, NULL, NULL)))
            break;
        pref_row_sums(al_ctx_logp(ctx), b.targets, 2 * B, T, sums, counts);
        for (int r = 0; r < B && items[r] >= 0; r++) {
            it->ref[2 * items[r]] = sums[r];
            it->ref[2 * items[r] + 1] = sums[B + r];
        }
        al_progress_update(&bar, i0 + B < it->n ? i0 + B : it->n, NULL);
    }
    al_progress_end(&bar);
    if (ref->lora)
        ref->lora->train = true;
    if (rc == 0)
        rc = al_dist_sum_doubles(it->ref, 2 * (size_t)it->n);
    if (rc == 0 && cache_path && al_dist_is_root())
        rc = write_cache(cache_path, key, it->n, it->ref);
    al_train_ctx_free(ctx);
    pref_batch_free(&b);
    free(sums);
    free(counts);
    free(items);
done:
    if (lora_was)
        al_lora_set_enabled(ref, true);
    if (rc) {
        free(it->ref);
        it->ref = NULL;
    }
    return rc;
}
