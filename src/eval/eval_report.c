/* The reports of an evaluation: the JSON summary, the table on stdout, the answers file. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval_internal.h"

/* NaN (a figure with nothing to average) becomes null. */
static json_t *real_or_null(double x) { return isnan(x) ? json_null() : json_real(x); }

static json_t *kind_json(const al_eval_kind_stats *k)
{
    return json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i}", "n", k->n, "refused", k->refused,
                     "complied", k->complied, "blocked", k->blocked, "leaked", k->leaked, "whimsical", k->whimsical,
                     "escalates", k->escalates, "judged", k->judged, "solved", k->solved, "wrong", k->wrong,
                     "other_intent", k->other_intent);
}

static json_t *str_or_null(const char *s) { return s ? json_string(s) : json_null(); }

json_t *al_eval_summary_json(const al_eval_summary *s, const al_eval_opts *o)
{
    json_t *counts = json_object();
    for (int k = 0; counts && k < AL_KIND_COUNT; k++)
        json_object_set_new(counts, al_prompt_kind_name((al_prompt_kind)k), kind_json(&s->kind[k]));
    json_t *j = json_pack("{s:o, s:o, s:o, s:o, s:i, s:i, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:I, "
                     "s:o, s:I, s:o, s:f, s:o}",
                     "model", str_or_null(o ? o->model : NULL), "prompts", str_or_null(o ? o->prompts : NULL),
                     "reference", str_or_null(o ? o->reference : NULL), "world", str_or_null(o ? o->world : NULL),
                     "max_new_tokens", o ? o->max_new_tokens : 0, "n_prompts", s->n,
                     "harmful_refusal_rate", real_or_null(s->harmful_refusal_rate),
                     "harmful_answered_rate", real_or_null(s->harmful_answered_rate),
                     "benign_compliance_rate", real_or_null(s->benign_compliance_rate),
                     "contrast_compliance_rate", real_or_null(s->contrast_compliance_rate),
                     "benign_all_compliance_rate", real_or_null(s->benign_all_compliance_rate),
                     "benign_all_blocked_rate", real_or_null(s->benign_all_blocked_rate),
                     "leak_rate", real_or_null(s->leak_rate),
                     "whimsical_rate", real_or_null(s->whimsical_rate),
                     "escalation_rate", real_or_null(s->escalation_rate),
                     "kl_to_reference", real_or_null(s->kl_to_reference), "kl_tokens", (json_int_t)s->kl_tokens,
                     "heldout_perplexity", real_or_null(s->heldout_perplexity),
                     "heldout_tokens", (json_int_t)s->heldout_tokens,
                     "mean_answer_tokens", real_or_null(s->mean_answer_tokens), "seconds", s->seconds,
                     "counts", counts);
    json_t *solved = json_pack("{s:o, s:o, s:o, s:o, s:o}", "benign_solved_rate", real_or_null(s->benign_solved_rate),
                               "contrast_solved_rate", real_or_null(s->contrast_solved_rate),
                               "benign_all_solved_rate", real_or_null(s->benign_all_solved_rate),
                               "wrong_solution_rate", real_or_null(s->wrong_solution_rate), "other_intent_rate",
                               real_or_null(s->other_intent_rate));
    json_t *rules = json_object();
    for (int b = 0; rules && b < AL_BREACH_COUNT; b++)
        json_object_set_new(rules, al_breach_name((al_breach)b), real_or_null(s->breach_rates[b]));
    if (solved) {
        json_object_set_new(solved, "constitution_breach_rate", real_or_null(s->breach_rate));
        json_object_set_new(solved, "constitution_breaches", rules ? rules : json_null());
    }
    if (!j || !solved || json_object_update(j, solved)) {
        json_decref(j);
        j = NULL;
    }
    json_decref(solved);
    return j;
}

static void row(FILE *out, const char *name, double x, int num, int den, const char *note)
{
    if (isnan(x))
        fprintf(out, "  %-28s %8s\n", name, "-");
    else if (den > 0)
        fprintf(out, "  %-28s %7.1f%%  (%d/%d)%s\n", name, 100 * x, num, den, note);
    else
        fprintf(out, "  %-28s %8.4f%s\n", name, x, note);
}

void al_eval_summary_print(const al_eval_summary *s, FILE *out)
{
    const al_eval_kind_stats *h = &s->kind[AL_KIND_HARMFUL], *b = &s->kind[AL_KIND_BENIGN],
                             *c = &s->kind[AL_KIND_CONTRAST];
    int leaked = 0, whim = 0;
    for (int k = 0; k < AL_KIND_COUNT; k++)
        leaked += s->kind[k].leaked, whim += s->kind[k].whimsical;
    fprintf(out, "evaluation of %d prompts (%d harmful, %d benign, %d contrast)\n", s->n, h->n, b->n, c->n);
    row(out, "harmful refused", s->harmful_refusal_rate, h->refused, h->n, h->blocked ? "  incl. blocked" : "");
    row(out, "benign complied", s->benign_compliance_rate, b->complied, b->n, "");
    row(out, "contrast complied", s->contrast_compliance_rate, c->complied, c->n, "");
    row(out, "benign+contrast complied", s->benign_all_compliance_rate, b->complied + c->complied, b->n + c->n, "");
    row(out, "benign+contrast blocked", s->benign_all_blocked_rate, b->blocked + c->blocked, b->n + c->n, "");
    row(out, "benign solved", s->benign_solved_rate, b->solved, b->judged, "");
    row(out, "contrast solved", s->contrast_solved_rate, c->solved, c->judged, "");
    row(out, "benign+contrast solved", s->benign_all_solved_rate, b->solved + c->solved, b->judged + c->judged, "");
    row(out, "wrong solution (answered)", s->wrong_solution_rate, b->wrong + c->wrong, b->judged + c->judged, "");
    row(out, "another intent's solution", s->other_intent_rate, b->other_intent + c->other_intent,
        b->judged + c->judged, "");
    row(out, "leaks (all answers)", s->leak_rate, leaked, s->n, "");
    row(out, "whimsical style (all)", s->whimsical_rate, whim, s->n, "");
    row(out, "escalation path (answered)", s->escalation_rate, b->escalates + c->escalates,
        b->complied + c->complied, "");
    row(out, "constitution breached (all)", s->breach_rate, s->breached, s->n, "");
    for (int k = 0; k < AL_BREACH_COUNT; k++) {
        char name[64];
        snprintf(name, sizeof name, "  rule: %s", al_breach_name((al_breach)k));
        row(out, name, s->breach_rates[k], s->breaches[k], s->n, "");
    }
    row(out, "KL to reference (nats/tok)", s->kl_to_reference, 0, 0, "");
    row(out, "held-out perplexity", s->heldout_perplexity, 0, 0, "");
    row(out, "mean answer tokens", s->mean_answer_tokens, 0, 0, "");
}

/* A copy made valid UTF-8 (al_utf8_scrub). */
static char *utf8_clean(const char *s)
{
    size_t n = strlen(s);
    char *c = malloc(n + 1);
    if (c) {
        memcpy(c, s, n + 1);
        al_utf8_scrub(c, n);
    }
    return c;
}

int eval_write_answers(const char *path, const al_prompt_set *ps, const eval_answer *answers, int n)
{
    static const char *const finish[] = {"length", "stop_id", "stop_string", "context"};
    al_atomic_file f;
    if (al_atomic_open(&f, path))
        return -1;
    for (int i = 0; i < n; i++) {
        const eval_answer *a = &answers[i];
        const al_verdict *v = &a->v;
        char *text = utf8_clean(a->text);
        json_t *broken = json_array();
        for (int b = 0; broken && b < AL_BREACH_COUNT; b++)
            if (a->breaches >> b & 1)
                json_array_append_new(broken, json_string(al_breach_name((al_breach)b)));
        json_t *o =
            text ? json_pack("{s:s, s:s, s:s, s:s, s:b, s:b, s:b, s:b, s:b, s:b, s:i, s:s, s:o, s:o, s:o}", "prompt",
                             ps->p[i].prompt, "kind", al_prompt_kind_name(ps->p[i].kind), "category", ps->p[i].category,
                             "answer", text, "refused", v->refused, "complied", v->complied && !a->blocked, "blocked",
                             a->blocked, "leaked", v->leaked, "whimsical", v->whimsical, "escalates", v->escalates,
                             "answer_tokens", a->ids.n, "finish", a->finish < 0 ? "blocked" : finish[a->finish],
                             "solved",
                             a->iv.known ? json_boolean(a->iv.solved && v->complied && !a->blocked) : json_null(),
                             "solution_of", str_or_null(a->iv.other), "breaches", broken)
                 : NULL;
        if (!text)
            json_decref(broken); /* json_pack releases what it was given, even when it fails */
        free(text);
        char *line = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        json_decref(o);
        if (!line) {
            al_atomic_abort(&f);
            return al_fail("%s: out of memory", path);
        }
        fprintf(f.fp, "%s\n", line);
        free(line);
    }
    return al_atomic_commit(&f);
}
