/* The helpers every stage shares (internal.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "align/data.h"
#include "align/tokenizer.h"
#include "align/model.h"
#include "internal.h"

char *pipeline_path(const al_pipeline *p, const char *rel)
{
    char *path = al_path_join(p->out, rel);
    if (!path)
        al_fail("out of memory");
    return path;
}

const char *pipeline_at(const al_pipeline *p, pipeline_paths *ps, const char *rel)
{
    if (ps->n == (int)(sizeof ps->v / sizeof ps->v[0])) {
        al_fail("pipeline: too many paths in one stage");
        return NULL;
    }
    return ps->v[ps->n] = pipeline_path(p, rel), ps->v[ps->n++];
}

void pipeline_paths_free(pipeline_paths *ps)
{
    for (int i = 0; i < ps->n; i++)
        free(ps->v[i]);
    ps->n = 0;
}

int pipeline_run_state(const char *run)
{
    char *final = al_path_join(run, "final"), *latest = al_path_join(run, "checkpoints/latest");
    int s = final && al_is_dir(final) ? 2 : latest && al_file_exists(latest) ? 1 : 0;
    free(final);
    free(latest);
    return s;
}

double pipeline_last_metric(const char *run, const char *key)
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

double pipeline_metric_window(const char *run, const char *key, int n, bool last)
{
    char *path = al_path_join(run, "metrics.jsonl");
    al_buf b = {0};
    double *v = NULL;
    int count = 0;
    if (path && al_read_file(path, &b) == 0) {
        for (char *line = b.data, *next; line && *line; line = next) {
            next = strchr(line, '\n');
            if (next)
                *next++ = 0;
            json_t *o = json_loads(line, 0, NULL), *x = o ? json_object_get(o, key) : NULL;
            double *grown = json_is_number(x) ? realloc(v, (size_t)(count + 1) * sizeof *v) : NULL;
            if (grown)
                v = grown, v[count++] = json_number_value(x);
            json_decref(o);
        }
    }
    double sum = 0;
    int m = n < count ? n : count;
    for (int i = 0; i < m; i++)
        sum += v[last ? count - 1 - i : i];
    al_clear_error();
    al_buf_free(&b);
    free(path);
    free(v);
    return m ? sum / m : NAN;
}

void pipeline_set_real(json_t *o, const char *key, double x)
{
    json_object_set_new(o, key, isnan(x) ? json_null() : json_real(x));
}

int pipeline_trained(const char *what, const char *run, int rc)
{
    return rc ? al_fail_prefix("%s (%s)", what, run) : 0;
}

al_lora_config pipeline_lora_config(const al_pipeline *p)
{
    return (al_lora_config){.rank = p->preset->lora_r, .alpha = p->preset->lora_alpha, .dropout = 0,
                            .targets = AL_LORA_ALL, .seed = p->seed};
}

int pipeline_merge_adapters(const char *base, const char *adapters_dir, const char *out)
{
    if (al_is_dir(out))
        return 0;
    size_t n = strlen(out) + 8;
    char *tmp = malloc(n);
    if (!tmp)
        return al_fail("out of memory");
    snprintf(tmp, n, "%s.tmp", out);
    al_model m;
    int rc = pipeline_remove_tree(tmp) || al_model_load(&m, base) ? -1 : 0;
    if (rc == 0) {
        bool copied = false;
        rc = al_lora_load(&m, adapters_dir) || al_lora_merge(&m) || al_model_save_safetensors(&m, tmp) ||
                     al_model_dir_copy_tokenizer(adapters_dir, tmp, &copied)
                 ? -1
                 : 0;
        if (rc == 0 && !copied)
            rc = al_fail("%s: no tokenizer saved beside the adapters", adapters_dir);
        al_lora_detach(&m);
        al_model_free(&m);
    }
    if (rc == 0 && rename(tmp, out))
        rc = al_fail("%s: cannot rename to %s", tmp, out);
    free(tmp);
    return rc ? al_fail_prefix("merging %s into %s", adapters_dir, base) : 0;
}

int pipeline_copy_model(const char *src, const char *out)
{
    if (al_is_dir(out))
        return 0;
    size_t n = strlen(out) + 8;
    char *tmp = malloc(n);
    if (!tmp)
        return al_fail("out of memory");
    snprintf(tmp, n, "%s.tmp", out);
    al_model m;
    bool copied = false;
    int rc = pipeline_remove_tree(tmp) || al_model_load(&m, src) ? -1 : 0;
    if (rc == 0) {
        rc = al_model_save_safetensors(&m, tmp) || al_model_dir_copy_tokenizer(src, tmp, &copied) ? -1 : 0;
        al_model_free(&m);
    }
    if (rc == 0 && rename(tmp, out))
        rc = al_fail("%s: cannot rename to %s", tmp, out);
    free(tmp);
    return rc ? al_fail_prefix("copying %s to %s", src, out) : 0;
}

int pipeline_load_text(const al_pipeline *p, al_tokenizer **tok, al_chat_template **tmpl)
{
    *tok = NULL, *tmpl = NULL;
    char *tok_path = pipeline_path(p, TOKENIZER), *tpl_path = pipeline_path(p, WORLD "/template");
    int rc = tok_path && tpl_path && al_tokenizer_load(tok, tok_path) == 0 && al_chat_template_load(tmpl, tpl_path) == 0
                 ? 0
                 : -1;
    free(tok_path), free(tpl_path);
    if (rc) {
        al_tokenizer_free(*tok), al_chat_template_free(*tmpl);
        *tok = NULL, *tmpl = NULL;
    }
    return rc;
}

int pipeline_tokenize_turn(const al_tokenizer *tok, const al_chat_template *t, int seq_len, const char *prompt,
                           const char *chosen, const char *rejected, al_pref_tokens *out)
{
    al_message pm = {.role = AL_ROLE_USER, .content = (char *)prompt},
               cm = {.role = AL_ROLE_ASSISTANT, .content = (char *)chosen},
               rm = {.role = AL_ROLE_ASSISTANT, .content = (char *)rejected};
    al_pref_example e = {.conversational = true, .prompt_msgs = &pm, .n_prompt_msgs = 1, .chosen_msgs = &cm,
                         .n_chosen_msgs = 1, .rejected_msgs = rejected ? &rm : NULL,
                         .n_rejected_msgs = rejected ? 1 : 0, .label = 1};
    return al_pref_tokenize(&e, t, tok, seq_len, out);
}
