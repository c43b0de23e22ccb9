/* The guard side of the pipeline's guard (guard_build.h): the harm classifier, the policy
 * file and the checks.  Nothing comes from ../shared: the demo runs on a fresh machine. */
#include <stdlib.h>
#include <string.h>

#include "align/eval.h"
#include "align/guard.h"
#include "guard_build.h"

int pipeline_prompts_add(pipeline_prompts *p, const char *text, bool harmful, const char *category)
{
    if (p->n == p->cap) {
        int cap = p->cap ? 2 * p->cap : 256;
        char **t = realloc(p->text, (size_t)cap * sizeof *t);
        if (t)
            p->text = t;
        char **c = t ? realloc(p->category, (size_t)cap * sizeof *c) : NULL;
        if (c)
            p->category = c;
        bool *h = c ? realloc(p->harmful, (size_t)cap * sizeof *h) : NULL;
        if (!h)
            return al_fail("out of memory");
        p->harmful = h;
        p->cap = cap;
    }
    p->text[p->n] = strdup(text);
    p->category[p->n] = strdup(category ? category : "");
    p->harmful[p->n] = harmful;
    if (!p->text[p->n] || !p->category[p->n]) {
        free(p->text[p->n]), free(p->category[p->n]);
        return al_fail("out of memory");
    }
    p->n++;
    return 0;
}

void pipeline_prompts_free(pipeline_prompts *p)
{
    for (int i = 0; i < p->n; i++)
        free(p->text[i]), free(p->category[i]);
    free(p->text), free(p->category), free(p->harmful);
    memset(p, 0, sizeof *p);
}

/* The world's harmful categories on the guard's hazard taxonomy (a hint for the
 * per-hazard heads; blocking rests on the overall head). */
static uint32_t world_hazards(const char *category)
{
    static const struct {
        const char *category;
        al_hazard h;
    } map[] = {
        {"violence", AL_HAZ_VIOLENT_CRIME}, {"weapons", AL_HAZ_INDISCRIMINATE_WEAPONS},
        {"hacking", AL_HAZ_NONVIOLENT_CRIME}, {"theft", AL_HAZ_NONVIOLENT_CRIME},
        {"fraud", AL_HAZ_NONVIOLENT_CRIME}, {"drugs", AL_HAZ_NONVIOLENT_CRIME},
        {"hate", AL_HAZ_HATE}, {"discrimination", AL_HAZ_HATE},
        {"stalking", AL_HAZ_PRIVACY}, {"system_probe", AL_HAZ_PRIVACY},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(category, map[i].category))
            return 1u << map[i].h;
    return 0;
}

/* A YAML double-quoted scalar: JSON's string escapes are valid YAML. */
static int put_quoted(FILE *fp, const char *s)
{
    json_t *j = json_string(s);
    char *q = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
    json_decref(j);
    if (!q)
        return al_fail("out of memory");
    fputs(q, fp);
    free(q);
    return 0;
}

static const char refuse_reply[] = "I'm sorry, but I can't help with that. If someone is in danger, contact your local "
                                   "emergency services.";
static const char leak_reply[] = "I'm sorry, but I can't share internal details. Our support team can help through "
                                 "Help > Contact support in the app.";

/* DIR/policy.yaml, overlaid on the built-in policy (docs/guard.md): the rule rails stay
 * as they are; this adds the classifier on input, the deny-list on output, the replies. */
static int write_policy(const char *path, const char *const *deny, float threshold)
{
    al_atomic_file f;
    if (al_atomic_open(&f, path))
        return -1;
    FILE *fp = f.fp;
    fprintf(fp, "# The guard of align demo (written by its guard stage; docs/demo.md, docs/guard.md).\n"
                "# Overlaid on the built-in policy.  Relative paths are relative to this file.\n"
                "version: 1\n"
                "rails:\n"
                "  input: [decode, injection, roleplay, harm]\n"
                "  output: [pii, toxicity, constitution]\n"
                "harm:\n"
                "  model: harm_classifier.bin\n"
                "constitution:\n"
                "  # the world's leak deny-list (world.json leak_patterns)\n"
                "  deny_patterns:\n");
    int rc = 0;
    for (int i = 0; rc == 0 && deny && deny[i]; i++) {
        fprintf(fp, "    - name: leak_%d\n      regex: ", i + 1);
        rc = put_quoted(fp, deny[i]);
        fputc('\n', fp);
    }
    fprintf(fp, "categories:\n  hazards:\n    action: block\n    threshold: %.3f\n    reply: ", (double)threshold);
    rc = rc ? rc : put_quoted(fp, refuse_reply);
    fprintf(fp, "\n  deny_term:\n    reply: ");
    rc = rc ? rc : put_quoted(fp, leak_reply);
    fputc('\n', fp);
    if (rc || ferror(fp)) {
        al_atomic_abort(&f);
        return rc ? rc : al_fail("%s: write failed", path);
    }
    return al_atomic_commit(&f);
}

static json_t *prf_json(const al_harm_prf *p)
{
    return json_pack("{s:i, s:i, s:i, s:i, s:f, s:f, s:f}", "tp", p->tp, "fp", p->fp, "fn", p->fn, "tn", p->tn,
                     "precision", p->precision, "recall", p->recall, "f1", p->f1);
}

int pipeline_guard_build(const char *dir, const pipeline_prompts *p, const char *const *deny, uint64_t seed,
                         float threshold, json_t *fig, FILE *log)
{
    char *model_path = al_path_join(dir, "harm_classifier.bin"), *policy_path = al_path_join(dir, "policy.yaml");
    al_harm_dataset all = {0}, train = {0}, test = {0};
    al_harm_model *m = NULL;
    al_harm_eval ev;
    int rc = model_path && policy_path ? 0 : al_fail("out of memory");
    for (int i = 0; rc == 0 && i < p->n; i++)
        rc = al_harm_dataset_add(&all, p->text[i], p->harmful[i], p->harmful[i] ? world_hazards(p->category[i]) : 0,
                                 "demo_world");
    rc = rc ? rc : al_harm_dataset_split(&all, 20, &train, &test);
    al_harm_train_opts to = al_harm_train_defaults();
    to.lr = 0.05f; /* the world's prompts were settled at 0.05, before the library default moved to 0.01 */
    to.seed = seed;
    to.threshold = threshold;
    if (rc == 0 && !(m = al_harm_train(&train, &to)))
        rc = -1;
    rc = rc ? rc : al_harm_evaluate(m, &test, &ev);
    rc = rc ? rc : al_mkdir_p(dir);
    rc = rc ? rc : al_harm_save(m, model_path);
    rc = rc ? rc : write_policy(policy_path, deny, threshold);
    al_eval_filter check; /* opening the policy shows a problem in it here */
    if (rc == 0 && (rc = al_eval_guard_filter_open(&check, policy_path)) == 0)
        al_eval_guard_filter_close(&check);
    if (rc == 0) {
        int n_deny = 0;
        while (deny && deny[n_deny])
            n_deny++;
        json_object_set_new(fig, "classifier_train_prompts", json_integer(train.n));
        json_object_set_new(fig, "classifier_test_prompts", json_integer(test.n));
        json_object_set_new(fig, "classifier_test", prf_json(&ev.overall));
        json_object_set_new(fig, "threshold", json_real(threshold));
        json_object_set_new(fig, "deny_patterns", json_integer(n_deny));
        json_object_set_new(fig, "policy", json_string(policy_path));
        if (log)
            fprintf(log,
                    "harm classifier: trained on %d prompts; on %d other training prompts precision %.3f, recall %.3f\n"
                    "policy: %s (%d deny patterns, blocks at %.2f)\n",
                    train.n, test.n, ev.overall.precision, ev.overall.recall, policy_path, n_deny, (double)threshold);
    }
    al_harm_free(m);
    al_harm_dataset_free(&all);
    al_harm_dataset_free(&train);
    al_harm_dataset_free(&test);
    free(model_path), free(policy_path);
    return rc;
}
