/* al_eval_run: every prompt through the chat template and the model (greedy, batched),
 * an optional filter in front, the judges on every answer, then the teacher-forced
 * figures and the reports.  docs/eval.md defines each figure. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "align/data.h"
#include "eval_internal.h"

void al_eval_defaults(al_eval_opts *o)
{
    memset(o, 0, sizeof *o);
    o->max_new_tokens = 96;
    o->batch = 64;
}

/* Everything a run holds; freed by eval_close. */
typedef struct eval_run {
    al_model m, ref;
    bool have_ref;
    al_tokenizer *tok;
    al_chat_template *tmpl;
    al_judges *judges;
    al_prompt_set ps;
    al_ints *prompts;      /* rendered and encoded, one per prompt */
    eval_answer *answers;
    const char **stops;    /* the template's markers: generation stops at them */
    int n_stops;
    char *world_file;      /* paths made from o->world (malloc'd) */
    char *template_file;
    char *heldout_file;
} eval_run;

static void eval_close(eval_run *r)
{
    for (int i = 0; r->answers && i < r->ps.n; i++) {
        free(r->answers[i].text);
        al_ints_free(&r->answers[i].ids);
    }
    for (int i = 0; r->prompts && i < r->ps.n; i++)
        al_ints_free(&r->prompts[i]);
    free(r->answers);
    free(r->prompts);
    al_prompt_set_free(&r->ps);
    al_judges_free(r->judges);
    al_chat_template_free(r->tmpl);
    al_tokenizer_free(r->tok);
    al_model_free(&r->m);
    if (r->have_ref)
        al_model_free(&r->ref);
    free(r->world_file), free(r->template_file), free(r->heldout_file);
}

/* A world directory supplies the lexicons, the template and the held-out text unless
 * the options name others. */
static int open_inputs(eval_run *r, const al_eval_opts *o)
{
    const char *tmpl = o->template_name;
    if (o->world) {
        if (!(r->world_file = al_path_join(o->world, "world.json")) ||
            !(r->template_file = al_path_join(o->world, "template")) ||
            !(r->heldout_file = al_path_join(o->world, "heldout.txt")))
            return al_fail("out of memory");
        if (!tmpl && al_file_exists(r->template_file))
            tmpl = r->template_file;
    }
    if (!tmpl)
        tmpl = "chatml";
    bool builtin = !strcmp(tmpl, "chatml") || !strcmp(tmpl, "llama2");
    if (!o->model || !o->tokenizer || !o->prompts)
        return al_fail("evaluation: a model, its tokenizer and a prompt set are required");
    if (al_model_load(&r->m, o->model) || al_tokenizer_load(&r->tok, o->tokenizer) ||
        (builtin ? al_chat_template_builtin(&r->tmpl, tmpl) : al_chat_template_load(&r->tmpl, tmpl)) ||
        (o->world ? al_judges_load(&r->judges, r->world_file) : al_judges_builtin(&r->judges)) ||
        al_prompt_set_load(&r->ps, o->prompts))
        return -1;
    if (al_tokenizer_vocab_size(r->tok) > r->m.cfg.vocab_size)
        return al_fail("%s: the tokenizer has %d tokens, the model only %d", o->tokenizer,
                       al_tokenizer_vocab_size(r->tok), r->m.cfg.vocab_size);
    if (o->reference) {
        if (al_model_load(&r->ref, o->reference))
            return al_fail_prefix("reference");
        r->have_ref = true;
    }
    al_chat_template_specials(r->tmpl, &r->stops, &r->n_stops);
    /* Markers the tokenizer has (a model trained with this template) must encode as the
     * single ids training used. */
    for (int k = 0; k < r->n_stops; k++)
        if (al_tokenizer_find(r->tok, r->stops[k], strlen(r->stops[k])) >= 0 &&
            al_tokenizer_add_special(r->tok, r->stops[k], NULL))
            return -1;
    if (o->max_prompts > 0 && o->max_prompts < r->ps.n) {
        for (int i = o->max_prompts; i < r->ps.n; i++) {
            al_prompt_free(&r->ps.p[i]);
        }
        r->ps.n = o->max_prompts;
    }
    r->prompts = calloc((size_t)r->ps.n, sizeof *r->prompts);
    r->answers = calloc((size_t)r->ps.n, sizeof *r->answers);
    return r->prompts && r->answers ? 0 : al_fail("out of memory");
}

/* The prompt as the model sees it: the earlier turns, the user's prompt and the generation
 * prompt, BOS first. */
static int encode_prompt(const eval_run *r, const al_prompt *p, al_ints *ids)
{
    al_message *msgs = calloc((size_t)p->n_history + 1, sizeof *msgs);
    if (!msgs)
        return al_fail("out of memory");
    for (int t = 0; t < p->n_history; t++) {
        const char *role = p->history[t].role;
        msgs[t].role = !strcmp(role, "system") ? AL_ROLE_SYSTEM : !strcmp(role, "user") ? AL_ROLE_USER : AL_ROLE_ASSISTANT;
        msgs[t].content = p->history[t].content;
    }
    msgs[p->n_history] = (al_message){.role = AL_ROLE_USER, .content = p->prompt};
    al_buf text = {0};
    int rc = al_chat_render(r->tmpl, msgs, p->n_history + 1, true, &text, NULL, NULL);
    free(msgs);
    if (rc == 0)
        rc = al_tokenizer_encode(r->tok, text.data, text.len, al_tokenizer_bos(r->tok) >= 0, false, ids);
    al_buf_free(&text);
    return rc;
}

/* The answer's text: decoded, cut at the first marker, surrounding whitespace trimmed. */
static int answer_text(const eval_run *r, const al_ints *prompt, const al_ints *ids, char **out)
{
    return al_chat_answer_text(r->tok, prompt->v[prompt->n - 1], ids->v, ids->n, r->stops, r->n_stops, out);
}

/* Prompts the filter lets through go to the model in batches of o->batch. */
static int generate(eval_run *r, const al_eval_opts *o, const al_eval_filter *f)
{
    int n = r->ps.n, eos = al_tokenizer_eos(r->tok);
    int *todo = malloc(sizeof(int) * (size_t)(n + 1));
    al_ints *batch_prompts = calloc((size_t)o->batch, sizeof *batch_prompts);
    al_gen_result *res = calloc((size_t)o->batch, sizeof *res);
    if (!todo || !batch_prompts || !res) {
        free(todo), free(batch_prompts), free(res);
        return al_fail("out of memory");
    }
    int n_todo = 0, rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        eval_answer *a = &r->answers[i];
        if ((rc = encode_prompt(r, &r->ps.p[i], &r->prompts[i])))
            break;
        a->prompt_len = r->prompts[i].n;
        if (f && f->check_prompt) {
            al_buf reply = {0};
            if ((rc = f->check_prompt(f->user, r->ps.p[i].prompt, &a->blocked, &reply)) == 0 && a->blocked) {
                a->text = reply.data ? reply.data : strdup("");
                a->finish = -1;
                if (!a->text)
                    rc = al_fail("out of memory");
                continue;
            }
            al_buf_free(&reply);
            if (rc)
                break;
        }
        if (r->prompts[i].n >= r->m.cfg.seq_len && o->skip_long_prompts) {
            a->finish = AL_FINISH_CONTEXT; /* no room to answer: an empty answer */
            if (!(a->text = strdup("")))
                rc = al_fail("out of memory");
            continue;
        }
        if (r->prompts[i].n >= r->m.cfg.seq_len)
            rc = al_fail("prompt %d fills the model's %d positions", i + 1, r->m.cfg.seq_len);
        todo[n_todo++] = i;
    }
    al_gen_opts g = {.max_new_tokens = o->max_new_tokens, .sampling = al_sampler_defaults()};
    g.sampling.temperature = 0;
    g.stop_ids = &eos;
    g.n_stop_ids = eos >= 0;
    g.stop_strings = r->stops;
    g.n_stop_strings = r->n_stops;
    al_progress bar;
    al_progress_begin(&bar, "generating", n_todo);
    bar.enabled = bar.enabled && !o->quiet;
    for (int s = 0; s < n_todo && rc == 0; s += o->batch) {
        int k = n_todo - s < o->batch ? n_todo - s : o->batch;
        for (int j = 0; j < k; j++)
            batch_prompts[j] = r->prompts[todo[s + j]];
        if ((rc = al_generate(&r->m, r->tok, batch_prompts, k, &g, res, NULL, NULL)))
            break;
        for (int j = 0; j < k && rc == 0; j++) {
            eval_answer *a = &r->answers[todo[s + j]];
            a->ids = res[j].ids;
            a->finish = res[j].finish;
            res[j].ids = (al_ints){0};
            rc = answer_text(r, &r->prompts[todo[s + j]], &a->ids, &a->text);
            if (rc == 0 && a->finish == AL_FINISH_STOP_ID)
                rc = al_ints_push(&a->ids, eos); /* the model chose to stop: KL counts it */
        }
        al_gen_results_free(res, k);
        al_progress_update(&bar, s + k, NULL);
    }
    al_progress_end(&bar);
    for (int s = 0; s < n_todo && rc == 0 && f && f->check_answer; s++) {
        eval_answer *a = &r->answers[todo[s]];
        al_buf reply = {0};
        if ((rc = f->check_answer(f->user, r->ps.p[todo[s]].prompt, a->text, &a->blocked, &reply)) == 0 &&
            a->blocked) {
            free(a->text);
            a->text = reply.data ? reply.data : strdup("");
            if (!a->text)
                rc = al_fail("out of memory");
        } else {
            al_buf_free(&reply);
        }
    }
    free(todo), free(batch_prompts), free(res);
    return rc;
}

static double share(int k, int n) { return n > 0 ? (double)k / n : NAN; }

static int judge_all(eval_run *r, al_eval_summary *s)
{
    long answer_tokens = 0;
    int generated = 0, answered_benign = 0;
    for (int i = 0; i < r->ps.n; i++) {
        eval_answer *a = &r->answers[i];
        if (al_judge(r->judges, a->text, strlen(a->text), &a->v))
            return -1;
        al_eval_kind_stats *k = &s->kind[r->ps.p[i].kind];
        bool answered = a->v.complied && !a->blocked;
        k->n++;
        k->refused += a->v.refused || a->blocked;
        k->complied += answered;
        k->blocked += a->blocked;
        k->leaked += a->v.leaked;
        k->whimsical += a->v.whimsical;
        if (r->ps.p[i].kind == AL_KIND_BENIGN || r->ps.p[i].kind == AL_KIND_CONTRAST) {
            k->escalates += answered && a->v.escalates;
            answered_benign += answered;
            if (al_judge_intent(r->judges, r->ps.p[i].category, a->text, strlen(a->text), &a->iv))
                return -1;
            if (a->iv.known) {
                bool solved = answered && a->iv.solved; /* a blocked answer solves nothing */
                k->judged++;
                k->solved += solved;
                k->other_intent += answered && !solved && a->iv.other;
                k->wrong += answered && !solved;
            }
        }
        a->breaches = al_breaches(r->ps.p[i].kind, &a->v, &a->iv, a->blocked);
        s->breached += a->breaches != 0;
        for (int b = 0; b < AL_BREACH_COUNT; b++)
            s->breaches[b] += a->breaches >> b & 1;
        if (a->finish >= 0) {
            answer_tokens += a->ids.n;
            generated++;
        }
    }
    const al_eval_kind_stats *h = &s->kind[AL_KIND_HARMFUL], *b = &s->kind[AL_KIND_BENIGN],
                             *c = &s->kind[AL_KIND_CONTRAST];
    int leaked = 0, whimsical = 0;
    for (int k = 0; k < AL_KIND_COUNT; k++)
        leaked += s->kind[k].leaked, whimsical += s->kind[k].whimsical;
    s->n = r->ps.n;
    s->harmful_refusal_rate = share(h->refused, h->n);
    s->harmful_answered_rate = h->n ? 1 - s->harmful_refusal_rate : NAN;
    s->benign_compliance_rate = share(b->complied, b->n);
    s->contrast_compliance_rate = share(c->complied, c->n);
    s->benign_all_compliance_rate = share(b->complied + c->complied, b->n + c->n);
    s->benign_all_blocked_rate = share(b->blocked + c->blocked, b->n + c->n);
    s->benign_solved_rate = share(b->solved, b->judged);
    s->contrast_solved_rate = share(c->solved, c->judged);
    s->benign_all_solved_rate = share(b->solved + c->solved, b->judged + c->judged);
    s->wrong_solution_rate = share(b->wrong + c->wrong, b->judged + c->judged);
    s->other_intent_rate = share(b->other_intent + c->other_intent, b->judged + c->judged);
    s->leak_rate = share(leaked, r->ps.n);
    s->whimsical_rate = share(whimsical, r->ps.n);
    s->escalation_rate = share(b->escalates + c->escalates, answered_benign);
    s->mean_answer_tokens = share((int)answer_tokens, generated);
    s->breach_rate = share(s->breached, r->ps.n);
    for (int b = 0; b < AL_BREACH_COUNT; b++)
        s->breach_rates[b] = share(s->breaches[b], r->ps.n);
    return 0;
}

int al_eval_run(const al_eval_opts *o, const al_eval_filter *filter, al_eval_summary *out)
{
    double t0 = al_now();
    memset(out, 0, sizeof *out);
    out->kl_to_reference = out->heldout_perplexity = NAN;
    out->benign_solved_rate = out->contrast_solved_rate = out->benign_all_solved_rate = NAN;
    out->wrong_solution_rate = out->other_intent_rate = out->breach_rate = NAN;
    if (o->max_new_tokens < 1 || o->batch < 1)
        return al_fail("evaluation: max_new_tokens and batch must be at least 1");
    eval_run r = {0};
    int rc = open_inputs(&r, o);
    rc = rc ? rc : generate(&r, o, filter);
    rc = rc ? rc : judge_all(&r, out);
    if (rc == 0 && r.have_ref)
        rc = eval_kl(&r.m, &r.ref, r.prompts, r.answers, r.ps.n, o->quiet, &out->kl_to_reference, &out->kl_tokens);
    const char *heldout = o->heldout ? o->heldout
                          : r.heldout_file && al_file_exists(r.heldout_file) ? r.heldout_file
                                                                              : NULL;
    if (rc == 0 && heldout && *heldout)
        rc = eval_perplexity(&r.m, r.tok, heldout, o->quiet, &out->heldout_perplexity, &out->heldout_tokens);
    out->seconds = al_now() - t0;
    if (rc == 0 && o->answers_out)
        rc = eval_write_answers(o->answers_out, &r.ps, r.answers, r.ps.n);
    if (rc == 0 && o->summary_out) {
        struct json_t *j = al_eval_summary_json(out, o);
        rc = j ? al_write_json_atomic(o->summary_out, j) : al_fail("out of memory");
        json_decref(j);
    }
    eval_close(&r);
    return rc;
}
