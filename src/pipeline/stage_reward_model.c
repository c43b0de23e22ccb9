/* Stage reward_model: the SFT model plus a score head, Bradley-Terry on the world's
 * preference pairs.  Its accuracy is then measured on held-out pairs (other wordings and
 * frames) per pair kind: a reward model that prefers polite answers but not right ones
 * shows here as a low wrong_intent accuracy.  The rewards stage scores every model's
 * answers with it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "align/tokenizer.h"
#include "internal.h"

/* The first message's content of a conversational field ([{"role", "content"}]). */
static const char *first_content(const json_t *rec, const char *key)
{
    return json_string_value(json_object_get(json_array_get(json_object_get(rec, key), 0), "content"));
}

/* Held-out pairs tokenized as chosen/rejected sequences, with each pair's kind. */
typedef struct heldout_pairs {
    al_ints *chosen, *rejected;
    char **kind;
    int n, cap;
} heldout_pairs;

static void heldout_pairs_free(heldout_pairs *h)
{
    for (int i = 0; i < h->n; i++) {
        al_ints_free(&h->chosen[i]);
        al_ints_free(&h->rejected[i]);
        free(h->kind[i]);
    }
    free(h->chosen), free(h->rejected), free(h->kind);
}

static int add_pair(heldout_pairs *h, const json_t *rec, const al_chat_template *t, const al_tokenizer *tok,
                    int seq_len, const char *where)
{
    const char *prompt = first_content(rec, "prompt"), *chosen = first_content(rec, "chosen"),
               *rejected = first_content(rec, "rejected"), *kind = json_string_value(json_object_get(rec, "pair_kind"));
    if (!prompt || !chosen || !rejected || !kind)
        return al_fail("%s: expected prompt, chosen and rejected messages and a pair_kind", where);
    if (h->n == h->cap) {
        h->cap = h->cap ? 2 * h->cap : 256;
        al_ints *c = realloc(h->chosen, (size_t)h->cap * sizeof *c);
        if (c)
            h->chosen = c;
        al_ints *r = realloc(h->rejected, (size_t)h->cap * sizeof *r);
        if (r)
            h->rejected = r;
        char **k = realloc(h->kind, (size_t)h->cap * sizeof *k);
        if (k)
            h->kind = k;
        if (!c || !r || !k)
            return al_fail("out of memory");
    }
    al_pref_tokens pt = {0};
    int rc = pipeline_tokenize_turn(tok, t, seq_len, prompt, chosen, rejected, &pt);
    if (rc == 0 && !(h->kind[h->n] = strdup(kind)))
        rc = al_fail("out of memory");
    if (rc == 0) {
        h->chosen[h->n] = pt.chosen, h->rejected[h->n] = pt.rejected;
        pt.chosen = pt.rejected = (al_ints){0};
        h->n++;
    }
    al_pref_tokens_free(&pt);
    return rc;
}

static int load_pairs(const char *path, const al_chat_template *t, const al_tokenizer *tok, int seq_len,
                      heldout_pairs *h)
{
    al_buf b = {0};
    int rc = al_read_file(path, &b), line_no = 0;
    for (char *line = b.data, *next; rc == 0 && line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        line_no++;
        json_error_t err;
        json_t *rec = json_loads(line, 0, &err);
        char where[64];
        snprintf(where, sizeof where, "%d", line_no);
        rc = rec ? add_pair(h, rec, t, tok, seq_len, where) : al_fail("%d:%d: %s", line_no, err.column, err.text);
        json_decref(rec);
    }
    al_buf_free(&b);
    return rc ? al_fail_prefix("%s", path) : 0;
}

/* Accuracy (chosen scored above rejected) over all held-out pairs and per kind. */
static int heldout_accuracy(al_pipeline *p, json_t *fig)
{
    pipeline_paths ps = {0};
    const char *rm_path = pipeline_at(p, &ps, RM_RUN "/final"),
               *pairs = pipeline_at(p, &ps, WORLD "/preferences_heldout.jsonl");
    al_model rm = {0};
    al_tokenizer *tok = NULL;
    al_chat_template *t = NULL;
    heldout_pairs h = {0};
    float *score_c = NULL, *rr = NULL;
    int T = p->preset->seq_len;
    int rc = rm_path && pairs && pipeline_load_text(p, &tok, &t) == 0 && al_model_load(&rm, rm_path) == 0 ? 0 : -1;
    rc = rc ? rc : load_pairs(pairs, t, tok, T, &h);
    if (rc == 0 && h.n > 0 && (!(score_c = malloc((size_t)h.n * sizeof *score_c)) || !(rr = malloc((size_t)h.n * sizeof *rr))))
        rc = al_fail("out of memory");
    if (rc == 0 && h.n > 0)
        rc = al_reward_score(&rm, h.chosen, h.n, 16, T, score_c) || al_reward_score(&rm, h.rejected, h.n, 16, T, rr) ? -1
                                                                                                                : 0;
    json_t *by_kind = json_object(), *counts = json_object();
    int right = 0;
    for (int i = 0; rc == 0 && i < h.n; i++) {
        bool ok = score_c[i] > rr[i];
        right += ok;
        json_t *c = json_object_get(counts, h.kind[i]);
        json_int_t n = json_integer_value(json_array_get(c, 0)), k = json_integer_value(json_array_get(c, 1));
        json_object_set_new(counts, h.kind[i], json_pack("[I, I]", n + 1, k + ok));
    }
    const char *kind;
    json_t *c;
    json_object_foreach(counts, kind, c)
    {
        json_int_t n = json_integer_value(json_array_get(c, 0)), k = json_integer_value(json_array_get(c, 1));
        json_object_set_new(by_kind, kind, json_real((double)k / (double)n));
    }
    if (rc == 0) {
        pipeline_set_real(fig, "heldout_pairs_accuracy", h.n ? (double)right / h.n : NAN);
        json_object_set_new(fig, "heldout_pairs", json_integer(h.n));
        json_object_set(fig, "heldout_accuracy_by_kind", by_kind);
        json_object_set(fig, "heldout_pairs_by_kind", counts);
        if (p->log) {
            fprintf(p->log, "reward model on %d held-out pairs: accuracy %.1f%%;", h.n, h.n ? 100.0 * right / h.n : 0);
            json_object_foreach(by_kind, kind, c) fprintf(p->log, " %s %.1f%%", kind, 100 * json_real_value(c));
            fputc('\n', p->log);
        }
    }
    json_decref(by_kind);
    json_decref(counts);
    free(score_c), free(rr);
    heldout_pairs_free(&h);
    al_chat_template_free(t);
    al_tokenizer_free(tok);
    al_model_free(&rm);
    pipeline_paths_free(&ps);
    return rc;
}

int pipeline_stage_reward_model(al_pipeline *p, json_t *fig)
{
    const al_pipeline_preset *k = p->preset;
    al_pref_train_opts o;
    al_pref_train_defaults(&o, AL_TRAINER_RM);
    char *run = pipeline_path(p, RM_RUN);
    int rc = run ? pipeline_pref_train(p, &o, "reward model", WORLD "/preferences.jsonl", SFT_RUN "/final", RM_RUN,
                                       k->rm_steps, k->rm_batch, k->rm_lr)
                 : -1;
    if (rc == 0) {
        pipeline_set_real(fig, "eval_accuracy", pipeline_last_metric(run, "eval_accuracy"));
        pipeline_set_real(fig, "eval_loss", pipeline_last_metric(run, "eval_loss"));
        rc = heldout_accuracy(p, fig);
    }
    free(run);
    return rc;
}
