/* Stage rewards: the reward model's mean score of each evaluated model's held-out
 * answers — its view of before and after (it never saw these prompts). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "align/tokenizer.h"
#include "internal.h"

/* The mean score of the answers of one answers file (NaN when it has none). */
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
    *mean = rc == 0 && n > 0 ? sum / n : NAN;
    for (int i = 0; i < n; i++)
        al_ints_free(&seqs[i]);
    free(seqs);
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
        double mean = NAN;
        rc = path ? score_answers(&rm, tok, t, path, p->preset->seq_len, &mean) : -1;
        free(path);
        pipeline_set_real(fig, pipeline_rows[i].model, mean);
    }
    al_chat_template_free(t);
    al_tokenizer_free(tok);
    al_model_free(&rm);
    pipeline_paths_free(&ps);
    return rc;
}
