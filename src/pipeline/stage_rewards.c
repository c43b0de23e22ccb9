/* Stage rewards: the reward model's mean score of each evaluated model's held-out
 * answers — its view of before and after (it never saw these prompts) — and two signs of
 * a model that learned to please the reward model rather than the customer: the
 * correlation of answer length with reward, and the share of answers that repeat
 * themselves (a word 3-gram said twice). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "align/tokenizer.h"
#include "internal.h"

/* Words of text (runs of non-space). */
static int count_words(const char *s)
{
    int n = 0;
    for (bool in = false; *s; s++) {
        bool sp = *s == ' ' || *s == '\n' || *s == '\t';
        n += !sp && !in;
        in = !sp;
    }
    return n;
}

/* True when some word 3-gram (case-sensitive, split at spaces) occurs twice. */
static bool repeats_itself(const char *s)
{
    const char *w[512];
    int lens[512], n = 0;
    for (const char *p = s; *p && n < 512;) {
        while (*p == ' ' || *p == '\n' || *p == '\t')
            p++;
        if (!*p)
            break;
        w[n] = p;
        while (*p && *p != ' ' && *p != '\n' && *p != '\t')
            p++;
        lens[n] = (int)(p - w[n]);
        n++;
    }
    for (int i = 0; i + 2 < n; i++)
        for (int j = i + 1; j + 2 < n; j++) {
            bool same = true;
            for (int k = 0; k < 3 && same; k++)
                same = lens[i + k] == lens[j + k] && !memcmp(w[i + k], w[j + k], (size_t)lens[i + k]);
            if (same)
                return true;
        }
    return false;
}

/* Pearson's correlation of x and y (NaN when either is constant). */
static double correlation(const double *x, const float *y, int n)
{
    double mx = 0, my = 0, sxy = 0, sxx = 0, syy = 0;
    for (int i = 0; i < n; i++)
        mx += x[i] / n, my += y[i] / n;
    for (int i = 0; i < n; i++)
        sxy += (x[i] - mx) * (y[i] - my), sxx += (x[i] - mx) * (x[i] - mx), syy += (y[i] - my) * (y[i] - my);
    return sxx > 0 && syy > 0 ? sxy / sqrt(sxx * syy) : NAN;
}

typedef struct answer_figures {
    double mean, length_corr, repetition;
} answer_figures;

/* The reward model's view of one answers file (NaNs when it has no answers). */
static int score_answers(const al_model *rm, const al_tokenizer *tok, const al_chat_template *t, const char *path,
                         int seq_len, answer_figures *out)
{
    double *words = NULL;
    int repeated = 0;
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
        al_pref_tokens pt = {0};
        if (n == cap) {
            cap = cap ? 2 * cap : 256;
            al_ints *grown = realloc(seqs, (size_t)cap * sizeof *seqs);
            double *wgrown = grown ? realloc(words, (size_t)cap * sizeof *words) : NULL;
            seqs = grown ? grown : seqs;
            words = wgrown ? wgrown : words;
            if (!grown || !wgrown) {
                json_decref(o);
                rc = al_fail("out of memory");
                break;
            }
        }
        words[n] = count_words(answer);
        repeated += repeats_itself(answer);
        rc = pipeline_tokenize_turn(tok, t, seq_len, prompt, answer, NULL, &pt);
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
    out->mean = rc == 0 && n > 0 ? sum / n : NAN;
    out->length_corr = rc == 0 && n > 1 ? correlation(words, r, n) : NAN;
    out->repetition = rc == 0 && n > 0 ? (double)repeated / n : NAN;
    for (int i = 0; i < n; i++)
        al_ints_free(&seqs[i]);
    free(seqs);
    free(words);
    free(r);
    al_buf_free(&b);
    return rc;
}

int pipeline_stage_rewards(al_pipeline *p, json_t *fig)
{
    pipeline_paths ps = {0};
    const char *rm_path = pipeline_at(p, &ps, RM_RUN "/final");
    al_model rm = {0};
    al_tokenizer *tok = NULL;
    al_chat_template *t = NULL;
    int rc = rm_path && pipeline_load_text(p, &tok, &t) == 0 && al_model_load(&rm, rm_path) == 0 ? 0 : -1;
    for (int i = 0; rc == 0 && i < pipeline_n_rows; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "eval/%s.answers.jsonl", pipeline_rows[i].model);
        char *path = pipeline_path(p, rel);
        answer_figures a = {NAN, NAN, NAN};
        rc = path ? score_answers(&rm, tok, t, path, p->preset->seq_len, &a) : -1;
        free(path);
        char key[96];
        pipeline_set_real(fig, pipeline_rows[i].model, a.mean);
        snprintf(key, sizeof key, "%s_length_corr", pipeline_rows[i].model);
        pipeline_set_real(fig, key, a.length_corr);
        snprintf(key, sizeof key, "%s_repetition", pipeline_rows[i].model);
        pipeline_set_real(fig, key, a.repetition);
    }
    al_chat_template_free(t);
    al_tokenizer_free(tok);
    al_model_free(&rm);
    pipeline_paths_free(&ps);
    return rc;
}
