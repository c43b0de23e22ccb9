/* Self-rewarding: the model samples several answers per prompt, judges each with an
 * additive 5-point rubric, the best and the worst answer of each prompt become a DPO pair
 * (ties dropped), and DPO trains the next iteration's model, which then samples and
 * judges in turn.
 *
 * Two ways to read the judge's score:
 *  - generate: the judge writes its reasoning and ends with "Score: N"; the last such N
 *    counts; a judgement without one is left out (the share parsed is logged);
 *  - expect: the judge's reply is begun with "Score: " and the score is the expectation of
 *    0..5 under its next-token probabilities over those six digits (always defined, and
 *    deterministic for a model).
 * Each answer is judged `repeats` times (generate: different seeds) and the scores are
 * averaged; the judge agreement logged is the share of answers whose repeats agree. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "align/cai.h"
#include "align/core.h"
#include "cai_internal.h"

static const char rubric[] =
    "Judge the answer to the user's question below on an additive 5-point scale:\n"
    "- add 1 point if the answer is relevant to the question, even if incomplete;\n"
    "- add a 2nd point if it covers a substantial part of what was asked;\n"
    "- add a 3rd point if it answers the core of the question in a useful way;\n"
    "- add a 4th point if it is clear, complete and well organized, as an assistant should write;\n"
    "- add a 5th point if it is excellent: accurate, focused, with nothing unneeded.\n"
    "\nQuestion: %s\n\nAnswer: %s\n\n"
    "Explain your judgement in a sentence or two, then end with \"Score: <points>\".";

#define SCORE_PREFIX "Score: "

al_self_reward_opts al_self_reward_defaults(void)
{
    al_self_reward_opts o = {.iterations = 1, .samples = 4, .repeats = 1, .max_new_tokens = 128,
                             .judge_max_new_tokens = 96, .batch = 16, .judge = AL_JUDGE_GENERATE};
    o.sampling = al_sampler_defaults();
    al_pref_train_defaults(&o.dpo, AL_TRAINER_DPO);
    return o;
}

double al_cai_parse_score(const char *text)
{
    double score = NAN;
    for (const char *s = text ? strstr(text, "Score:") : NULL; s; s = strstr(s + 1, "Score:")) {
        const char *p = s + 6;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p >= '0' && *p <= '5' && !(p[1] >= '0' && p[1] <= '9'))
            score = *p - '0';
    }
    return score;
}

static int judge_ids(const al_tokenizer *tok, const al_chat_template *t, const char *prompt, const char *answer,
                     bool begin_score, al_ints *ids)
{
    al_buf q = {0};
    int rc = al_buf_printf(&q, rubric, prompt, answer) ||
             cai_encode_user_turn(tok, t, q.data, begin_score ? SCORE_PREFIX : NULL, ids);
    al_buf_free(&q);
    return rc;
}

/* One iteration: samples, scores, pairs.  scores[i * S + s] (NaN: not parsed). */
typedef struct iteration {
    char **answers; /* [n * S] */
    double *scores; /* [n * S] */
    int agree, judged, parsed, judgements;
} iteration;

static int sample_and_judge(const al_model *m, const al_tokenizer *tok, const al_chat_template *t,
                            const char *const *prompts, int n, const al_self_reward_opts *o, uint64_t seed,
                            iteration *it)
{
    const int S = o->samples, R = o->repeats, N = n * S;
    al_ints *ids = calloc((size_t)N * R, sizeof *ids);
    char **judgements = calloc((size_t)N * R, sizeof *judgements);
    double *each = malloc((size_t)N * R * sizeof *each);
    it->answers = calloc((size_t)N, sizeof *it->answers);
    it->scores = malloc((size_t)N * sizeof *it->scores);
    int rc = ids && judgements && each && it->answers && it->scores ? 0 : al_fail("out of memory");
    /* the answers: prompt i's S samples are sequences i*S .. i*S+S-1, each with its seed */
    for (int i = 0; rc == 0 && i < n; i++)
        for (int s = 0; rc == 0 && s < S; s++)
            rc = cai_encode_user_turn(tok, t, prompts[i], NULL, &ids[i * S + s]);
    al_sampler_opts so = o->sampling;
    so.seed = seed;
    rc = rc || cai_check_context(m, ids, N, o->max_new_tokens) ||
         cai_generate_texts(m, tok, t, ids, N, o->max_new_tokens, so, o->batch, it->answers);
    for (int k = 0; k < N * R && ids; k++)
        al_ints_free(&ids[k]);
    /* the judgements: answer a's repeats are sequences a*R .. a*R+R-1 */
    const bool expect = o->judge == AL_JUDGE_EXPECT;
    for (int a = 0; rc == 0 && a < N; a++)
        for (int r = 0; rc == 0 && r < R; r++)
            rc = judge_ids(tok, t, prompts[a / S], it->answers[a], expect, &ids[a * R + r]);
    if (rc == 0 && expect) {
        const int V = m->cfg.vocab_size;
        int digit[6];
        for (int d = 0; rc == 0 && d < 6; d++) {
            char c[2] = {(char)('0' + d), 0};
            if ((digit[d] = cai_next_token(tok, SCORE_PREFIX, c)) < 0)
                rc = al_fail("self-reward: the tokenizer gives no single token for '%s' after \"%s\": use the "
                             "generate judge",
                             c, SCORE_PREFIX);
        }
        float *logits = rc ? NULL : malloc((size_t)o->batch * V * sizeof *logits);
        if (rc == 0 && !logits)
            rc = al_fail("out of memory");
        for (int k0 = 0; rc == 0 && k0 < N * R; k0 += o->batch) {
            int b = N * R - k0 < o->batch ? N * R - k0 : o->batch;
            if ((rc = cai_prompt_logits(m, ids + k0, b, logits)))
                break;
            for (int j = 0; j < b; j++) {
                const float *z = logits + (size_t)j * V;
                double mx = -INFINITY, sum = 0, ex = 0;
                for (int d = 0; d < 6; d++)
                    mx = z[digit[d]] > mx ? z[digit[d]] : mx;
                for (int d = 0; d < 6; d++) {
                    double e = exp(z[digit[d]] - mx);
                    sum += e, ex += d * e;
                }
                each[k0 + j] = ex / sum;
            }
        }
        free(logits);
    } else if (rc == 0) {
        so.seed = seed + 7919u;
        rc = cai_check_context(m, ids, N * R, o->judge_max_new_tokens) ||
             cai_generate_texts(m, tok, t, ids, N * R, o->judge_max_new_tokens, so, o->batch, judgements);
        for (int k = 0; rc == 0 && k < N * R; k++)
            each[k] = al_cai_parse_score(judgements[k]);
    }
    for (int a = 0; rc == 0 && a < N; a++) {
        double sum = 0, first = NAN;
        int got = 0;
        bool same = true;
        for (int r = 0; r < R; r++) {
            double v = each[a * R + r];
            it->judgements++;
            if (v != v)
                continue;
            if (got == 0)
                first = v;
            else if (fabs(v - first) > 1e-9)
                same = false;
            sum += v, got++;
        }
        it->parsed += got;
        it->scores[a] = got ? sum / got : NAN;
        if (got) {
            it->judged++;
            it->agree += same && got == R;
        }
    }
    for (int k = 0; ids && k < N * R; k++)
        al_ints_free(&ids[k]);
    for (int k = 0; judgements && k < N * R; k++)
        free(judgements[k]);
    free(ids), free(judgements), free(each);
    return rc;
}

static void iteration_free(iteration *it, int N)
{
    for (int k = 0; it->answers && k < N; k++)
        free(it->answers[k]);
    free(it->answers), free(it->scores);
    memset(it, 0, sizeof *it);
}

/* best over worst per prompt; returns the number of pairs written (ties dropped) */
static int write_pairs(const char *path, const char *const *prompts, int n, int S, const iteration *it, int *pairs,
                       int *ties, double *best_mean)
{
    al_atomic_file f;
    if (al_atomic_open(&f, path))
        return -1;
    int rc = 0;
    *pairs = *ties = 0;
    double best_sum = 0;
    int n_best = 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        int hi = -1, lo = -1;
        for (int s = 0; s < S; s++) {
            double v = it->scores[i * S + s];
            if (v != v)
                continue;
            if (hi < 0 || v > it->scores[i * S + hi])
                hi = s;
            if (lo < 0 || v < it->scores[i * S + lo])
                lo = s;
        }
        if (hi < 0)
            continue;
        best_sum += it->scores[i * S + hi], n_best++;
        if (it->scores[i * S + hi] == it->scores[i * S + lo]) {
            (*ties)++;
            continue;
        }
        json_t *o = json_pack("{s:o, s:o, s:o, s:f, s:f}", "prompt", cai_turn("user", prompts[i]), "chosen",
                              cai_turn("assistant", it->answers[i * S + hi]), "rejected",
                              cai_turn("assistant", it->answers[i * S + lo]), "score_chosen", it->scores[i * S + hi],
                              "score_rejected", it->scores[i * S + lo]);
        char *line = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6)) : NULL;
        json_decref(o);
        if (!line || fputs(line, f.fp) < 0 || fputc('\n', f.fp) < 0)
            rc = al_fail("%s: write failed", path);
        free(line);
        (*pairs)++;
    }
    *best_mean = n_best ? best_sum / n_best : NAN;
    if (rc) {
        al_atomic_abort(&f);
        return -1;
    }
    return al_atomic_commit(&f);
}

int al_self_reward(const al_self_reward_opts *o, const char *const *prompts, int n)
{
    if (!o->model || !o->tokenizer || !o->out_dir || n <= 0 || o->iterations < 1 || o->samples < 2 ||
        o->repeats < 1 || o->batch < 1 || o->max_new_tokens < 1 || o->judge_max_new_tokens < 1)
        return al_fail("self-reward: need a model, its tokenizer, an output directory, prompts, iterations >= 1, "
                       "samples >= 2, repeats >= 1, batch >= 1 and token budgets >= 1");
    if (al_mkdir_p(o->out_dir))
        return -1;
    al_tokenizer *tok = NULL;
    al_chat_template *t = NULL;
    al_metrics mt;
    int rc = al_tokenizer_load(&tok, o->tokenizer) || al_chat_template_open(&t, o->chat_template) ||
             al_metrics_open(&mt, o->out_dir, false);
    if (rc) {
        al_tokenizer_free(tok);
        al_chat_template_free(t);
        return -1;
    }
    char model[1300], dir[1100], path[1200];
    snprintf(model, sizeof model, "%s", o->model);
    const int N = n * o->samples;
    for (int k = 0; rc == 0 && k < o->iterations; k++) {
        snprintf(dir, sizeof dir, "%s/iter%d", o->out_dir, k + 1);
        al_model m = {0};
        iteration it = {0};
        int pairs = 0, ties = 0;
        double best = NAN, mean = 0;
        int n_mean = 0;
        rc = al_mkdir_p(dir) || al_model_load(&m, model) ||
             sample_and_judge(&m, tok, t, prompts, n, o, o->sampling.seed + 1000003u * (uint64_t)k, &it);
        for (int a = 0; rc == 0 && a < N; a++)
            if (it.scores[a] == it.scores[a])
                mean += it.scores[a], n_mean++;
        snprintf(path, sizeof path, "%s/pairs.jsonl", dir);
        rc = rc || write_pairs(path, prompts, n, o->samples, &it, &pairs, &ties, &best);
        al_model_free(&m);
        if (rc == 0) {
            json_t *line = json_pack("{s:i, s:f, s:f, s:f, s:f, s:i, s:i, s:s}", "iteration", k + 1, "reward_mean",
                                     n_mean ? mean / n_mean : NAN, "reward_best_mean", best, "judge_agreement",
                                     it.judged ? (double)it.agree / it.judged : 0.0, "judge_parsed",
                                     it.judgements ? (double)it.parsed / it.judgements : 0.0, "pairs", pairs,
                                     "ties_dropped", ties, "model", model);
            char *s = line ? json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6)) : NULL;
            json_decref(line);
            rc = s ? al_metrics_write(&mt, s) : al_fail("out of memory");
            if (!o->quiet && s)
                fprintf(stderr, "self-reward iteration %d: %s\n", k + 1, s);
            free(s);
        }
        iteration_free(&it, N);
        if (rc == 0 && pairs > 0) {
            al_pref_train_opts d = o->dpo;
            char out[1200];
            snprintf(out, sizeof out, "%s/dpo", dir);
            d.data = path, d.model = model, d.tokenizer = o->tokenizer, d.out_dir = out;
            d.chat_template = o->chat_template;
            d.quiet = o->quiet;
            rc = al_pref_train(&d);
            snprintf(model, sizeof model, "%s/final", out);
        }
    }
    al_metrics_close(&mt);
    al_tokenizer_free(tok);
    al_chat_template_free(t);
    return rc ? -1 : 0;
}
