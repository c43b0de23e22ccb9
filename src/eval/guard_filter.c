/* The guard in front of a model under evaluation, as an al_eval_filter. */
#include <string.h>

#include "align/eval.h"
#include "align/guard.h"

/* Block and escalate both keep the model's words from the customer (an escalated answer
 * waits for a person), so both count as blocked; redact lets the answer through. */
static int apply(const al_guard_decision *d, bool *blocked, al_buf *reply)
{
    *blocked = d->action >= AL_GUARD_ESCALATE;
    if (*blocked && d->reply)
        return al_buf_append(reply, d->reply, strlen(d->reply));
    return 0;
}

static int check_prompt(void *guard, const char *prompt, bool *blocked, al_buf *reply)
{
    al_guard_decision d = {0};
    int rc = al_guard_check_input(guard, prompt, strlen(prompt), &d);
    rc = rc ? rc : apply(&d, blocked, reply);
    al_guard_decision_free(&d);
    return rc;
}

static int check_answer(void *guard, const char *prompt, const char *answer, bool *blocked, al_buf *reply)
{
    al_guard_decision d = {0};
    int rc = al_guard_check_output(guard, prompt, strlen(prompt), answer, strlen(answer), &d);
    rc = rc ? rc : apply(&d, blocked, reply);
    al_guard_decision_free(&d);
    return rc;
}

int al_eval_guard_filter_open(al_eval_filter *f, const char *policy)
{
    al_guard_policy pol;
    *f = (al_eval_filter){0};
    if (!policy || !strcmp(policy, "default") ? al_guard_policy_default(&pol) : al_guard_policy_load(policy, &pol))
        return -1;
    al_guard *g = al_guard_open(&pol);
    al_guard_policy_free(&pol);
    if (!g)
        return -1;
    *f = (al_eval_filter){g, check_prompt, check_answer};
    return 0;
}

void al_eval_guard_filter_close(al_eval_filter *f)
{
    al_guard_close(f->user);
    *f = (al_eval_filter){0};
}
