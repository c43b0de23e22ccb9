/* Preference datasets in TRL's formats (docs/datasets.md): pairs for reward models and the
 * DPO family, unpaired examples for KTO, and their tokenization.
 *
 * A record is paired when it has "chosen" and "rejected", unpaired when it has
 * "completion" and "label"; conversational when those hold message lists.  The first good
 * record sets the file's kind and every other must agree, as with SFT data. */
#include "align/data.h"
#include "records.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void msgs_free(al_message *m, int n)
{
    for (int i = 0; i < n; i++)
        free(m[i].content);
    free(m);
}

static void example_free(al_pref_example *e)
{
    free(e->prompt);
    free(e->chosen);
    free(e->rejected);
    msgs_free(e->prompt_msgs, e->n_prompt_msgs);
    msgs_free(e->chosen_msgs, e->n_chosen_msgs);
    msgs_free(e->rejected_msgs, e->n_rejected_msgs);
    memset(e, 0, sizeof *e);
}

void al_pref_free(al_pref_dataset *d)
{
    if (!d)
        return;
    for (int i = 0; i < d->n; i++)
        example_free(&d->ex[i]);
    free(d->ex);
    free(d->skipped_lines);
    memset(d, 0, sizeof *d);
}

/* ---- implicit prompts ---- */

size_t al_pref_shared_prefix(const char *a, const char *b)
{
    size_t i = 0;
    while (a[i] && a[i] == b[i])
        i++;
    if (!a[i] && !b[i])
        return i; /* identical: the caller rejects the record */
    /* TRL: a space just before the parting point goes to the answers */
    if (i > 0 && a[i - 1] == ' ')
        i--;
    /* never inside a UTF-8 character */
    while (i > 0 && ((unsigned char)a[i] & 0xC0) == 0x80)
        i--;
    /* HH-RLHF: the prompt ends with the last assistant marker, so both answers are whole */
    static const char marker[] = "Assistant:";
    const size_t ml = sizeof marker - 1;
    for (size_t k = i; k >= ml; k--)
        if (!memcmp(a + k - ml, marker, ml))
            return k;
    return i;
}

/* Splits chosen/rejected message lists at their shared prefix, which becomes the prompt. */
static int split_messages(const rec_ctx *r, al_pref_example *e)
{
    int k = 0;
    while (k < e->n_chosen_msgs && k < e->n_rejected_msgs && e->chosen_msgs[k].role == e->rejected_msgs[k].role &&
           !strcmp(e->chosen_msgs[k].content, e->rejected_msgs[k].content))
        k++;
    if (k == e->n_chosen_msgs || k == e->n_rejected_msgs)
        return rec_fail(r, "\"chosen\" and \"rejected\" %s, so there is no answer to compare",
                        e->n_chosen_msgs == e->n_rejected_msgs ? "are identical" : "differ only by added messages");
    if (k == 0)
        return 0;
    e->prompt_msgs = malloc((size_t)k * sizeof *e->prompt_msgs);
    if (!e->prompt_msgs)
        return REC_OOM;
    memcpy(e->prompt_msgs, e->chosen_msgs, (size_t)k * sizeof *e->prompt_msgs);
    e->n_prompt_msgs = k;
    for (int i = 0; i < k; i++)
        free(e->rejected_msgs[i].content);
    memmove(e->chosen_msgs, e->chosen_msgs + k, (size_t)(e->n_chosen_msgs - k) * sizeof *e->chosen_msgs);
    memmove(e->rejected_msgs, e->rejected_msgs + k, (size_t)(e->n_rejected_msgs - k) * sizeof *e->rejected_msgs);
    e->n_chosen_msgs -= k;
    e->n_rejected_msgs -= k;
    e->implicit_prompt = true;
    return 0;
}

static int split_strings(const rec_ctx *r, al_pref_example *e)
{
    size_t k = al_pref_shared_prefix(e->chosen, e->rejected);
    if (!e->chosen[k] || !e->rejected[k])
        return rec_fail(r, "\"chosen\" and \"rejected\" %s, so there is no answer to compare",
                        !e->chosen[k] && !e->rejected[k] ? "are identical" : "differ only by added text");
    e->prompt = rec_dup(e->chosen, k);
    char *c = rec_dup(e->chosen + k, strlen(e->chosen + k)), *rj = rec_dup(e->rejected + k, strlen(e->rejected + k));
    if (!e->prompt || !c || !rj) {
        free(c);
        free(rj);
        return REC_OOM;
    }
    free(e->chosen);
    free(e->rejected);
    e->chosen = c;
    e->rejected = rj;
    e->implicit_prompt = true;
    return 0;
}

/* ---- records ---- */

/* rec[key] as a number in [0, 1] (true 1, false 0), or def when absent. */
static int take_probability(const rec_ctx *r, const json_t *rec, const char *key, double def, double *out)
{
    json_t *v = json_object_get(rec, key);
    if (!v || json_is_null(v)) {
        *out = def;
        return 0;
    }
    if (json_is_boolean(v)) {
        *out = json_is_true(v) ? 1.0 : 0.0;
        return 0;
    }
    if (!json_is_number(v) || !(json_number_value(v) >= 0 && json_number_value(v) <= 1))
        return rec_fail(r, "\"%s\": expected true, false or a probability in [0, 1], got %s", key,
                        json_is_number(v) ? "a number outside [0, 1]" : rec_json_kind(v));
    *out = json_number_value(v);
    return 0;
}

static int take_answer(const rec_ctx *r, const json_t *rec, const char *key, bool conv, char **s, al_message **m,
                       int *n)
{
    if (!conv)
        return rec_take_string(r, rec, key, false, s);
    int rc = rec_take_messages(r, rec, key, m, n);
    if (rc == 0 && (*m)[*n - 1].role != AL_ROLE_ASSISTANT)
        return rec_fail(r, "\"%s\": expected the messages to end with an \"assistant\" message", key);
    return rc;
}

static int parse_example(const rec_ctx *r, const json_t *rec, bool paired, bool conv, al_pref_example *e)
{
    e->line = r->line;
    e->conversational = conv;
    e->label = 1;
    int rc = 0;
    json_t *prompt = json_object_get(rec, "prompt");
    if (prompt && !json_is_null(prompt)) {
        rc = conv ? rec_take_messages(r, rec, "prompt", &e->prompt_msgs, &e->n_prompt_msgs)
                  : rec_take_string(r, rec, "prompt", true, &e->prompt);
        if (rc)
            return rc;
    } else if (!paired) {
        return rec_fail(r, "missing \"prompt\" (unpaired KTO examples need one)");
    }
    if (!paired) {
        json_t *label = json_object_get(rec, "label");
        if (!json_is_boolean(label))
            return rec_fail(r, "\"label\": expected true (desirable) or false (undesirable), got %s",
                            rec_json_kind(label));
        e->label = json_is_true(label) ? 1 : 0;
        return take_answer(r, rec, "completion", conv, &e->chosen, &e->chosen_msgs, &e->n_chosen_msgs);
    }
    if ((rc = take_answer(r, rec, "chosen", conv, &e->chosen, &e->chosen_msgs, &e->n_chosen_msgs)) ||
        (rc = take_answer(r, rec, "rejected", conv, &e->rejected, &e->rejected_msgs, &e->n_rejected_msgs)) ||
        (rc = take_probability(r, rec, "label", 1, &e->label)))
        return rc;
    json_t *margin = json_object_get(rec, "margin");
    if (margin && !json_is_null(margin)) {
        if (!json_is_number(margin) || !isfinite(json_number_value(margin)))
            return rec_fail(r, "\"margin\": expected a number, got %s", rec_json_kind(margin));
        e->margin = json_number_value(margin);
    }
    if (!prompt || json_is_null(prompt))
        return conv ? split_messages(r, e) : split_strings(r, e);
    if (!conv && !strcmp(e->chosen, e->rejected))
        return rec_fail(r, "\"chosen\" and \"rejected\" are identical, so there is no answer to compare");
    return 0;
}

typedef struct loader {
    al_pref_dataset *d;
    int cap;
    long kind_line;
} loader;

static const char *kind_name(bool paired, bool conv)
{
    return paired ? (conv ? "conversational pairs (\"chosen\"/\"rejected\" message lists)"
                          : "pairs (\"chosen\"/\"rejected\" strings)")
                  : (conv ? "conversational unpaired examples (\"completion\" message lists with \"label\")"
                          : "unpaired examples (\"completion\" strings with \"label\")");
}

static int add_record(void *user, const json_t *rec, const rec_ctx *r)
{
    loader *L = user;
    al_pref_dataset *d = L->d;
    const json_t *chosen = json_object_get(rec, "chosen"), *rejected = json_object_get(rec, "rejected");
    const json_t *completion = json_object_get(rec, "completion");
    bool paired;
    if (chosen || rejected) {
        if (!chosen || !rejected)
            return rec_fail(r, "missing \"%s\" (a preference pair needs \"chosen\" and \"rejected\")",
                            chosen ? "rejected" : "chosen");
        paired = true;
    } else if (completion) {
        if (!json_object_get(rec, "label"))
            return rec_fail(r, "missing \"label\" (an unpaired KTO example needs \"prompt\", \"completion\" and "
                               "\"label\")");
        paired = false;
    } else {
        return rec_fail(r, "expected \"chosen\" and \"rejected\" (pairs) or \"prompt\", \"completion\" and "
                           "\"label\" (KTO), got none of them");
    }
    bool conv = json_is_array(paired ? chosen : completion);
    if (d->n > 0 && (paired != d->paired || conv != d->conversational))
        return rec_fail(r, "this record holds %s, but the file holds %s (from the record on line %ld); all records "
                           "must be of one kind",
                        kind_name(paired, conv), kind_name(d->paired, d->conversational), L->kind_line);
    void *ex = d->ex;
    int grown = rec_reserve(&ex, &L->cap, d->n, sizeof *d->ex, r->path);
    d->ex = ex;
    if (grown)
        return grown;
    al_pref_example *e = &d->ex[d->n];
    memset(e, 0, sizeof *e);
    int rc = parse_example(r, rec, paired, conv, e);
    if (rc) {
        example_free(e);
        return rc;
    }
    if (d->n == 0) {
        d->paired = paired;
        d->conversational = conv;
        L->kind_line = r->line;
    }
    d->n++;
    return 0;
}

int al_pref_load(al_pref_dataset *d, const char *path, const al_sft_load_opts *o)
{
    memset(d, 0, sizeof *d);
    loader L = {.d = d};
    if (rec_load(path, o, add_record, &L, &d->n_skipped, &d->skipped_lines, &d->n_skipped_lines_stored)) {
        al_pref_free(d);
        return -1;
    }
    return 0;
}

int al_split_indices(int n, double held_out_fraction, uint64_t seed, al_ints *train, al_ints *held_out)
{
    if (!(held_out_fraction >= 0 && held_out_fraction < 1))
        return al_fail("held-out fraction %g is not in [0, 1)", held_out_fraction);
    if (n < 1)
        return al_fail("cannot split an empty dataset");
    int k = (int)floor(held_out_fraction * n + 0.5);
    if (held_out_fraction > 0 && k < 1)
        k = 1;
    if (k > n - 1)
        k = n - 1;
    int *perm = malloc((size_t)n * sizeof *perm);
    bool *held = calloc((size_t)n, sizeof *held);
    int rc = 0;
    if (!perm || !held) {
        rc = al_fail("out of memory");
        goto done;
    }
    /* Fisher-Yates with llama2.c's xorshift*; the first k of the permutation are held out */
    uint64_t state = seed ? seed : 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < n; i++)
        perm[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(al_xorshift_u32(&state) % (uint32_t)(i + 1));
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (int i = 0; i < k; i++)
        held[perm[i]] = true;
    for (int i = 0; i < n && rc == 0; i++)
        rc = al_ints_push(held[i] ? held_out : train, i);
done:
    free(perm);
    free(held);
    return rc;
}

/* ---- tokenization ---- */

/* Cuts ids/mask to max_len: prompt tokens (mask 0 before the first 1) go from the front,
 * after a leading BOS, then answer tokens from the end. */
static bool truncate_keep_end(al_ints *ids, al_ints *mask, int max_len, int bos)
{
    if (ids->n <= max_len)
        return false;
    int keep_first = ids->n > 0 && bos >= 0 && ids->v[0] == bos ? 1 : 0;
    int prompt_end = 0;
    while (prompt_end < mask->n && !mask->v[prompt_end])
        prompt_end++;
    int excess = ids->n - max_len;
    int droppable = prompt_end - keep_first - 1; /* keep at least one prompt token */
    int drop = excess < droppable ? excess : (droppable > 0 ? droppable : 0);
    if (drop > 0) {
        memmove(ids->v + keep_first, ids->v + keep_first + drop, (size_t)(ids->n - keep_first - drop) * sizeof(int));
        memmove(mask->v + keep_first, mask->v + keep_first + drop,
                (size_t)(mask->n - keep_first - drop) * sizeof(int));
        ids->n -= drop;
        mask->n -= drop;
    }
    if (ids->n > max_len)
        ids->n = mask->n = max_len;
    return true;
}

static int tokenize_answer(const al_pref_example *e, const al_chat_template *t, const al_tokenizer *tok,
                           const char *answer, const al_message *msgs, int n_msgs, al_ints *ids, al_ints *mask)
{
    if (!e->conversational)
        return al_chat_tokenize_pc(tok, e->prompt ? e->prompt : "", answer, true, ids, mask);
    al_message *all = malloc((size_t)(e->n_prompt_msgs + n_msgs) * sizeof *all);
    if (!all)
        return al_fail("out of memory");
    memcpy(all, e->prompt_msgs, (size_t)e->n_prompt_msgs * sizeof *all);
    memcpy(all + e->n_prompt_msgs, msgs, (size_t)n_msgs * sizeof *all);
    int rc = al_chat_tokenize(t, tok, all, e->n_prompt_msgs + n_msgs, AL_MASK_COMPLETION, ids, mask);
    free(all);
    return rc;
}

int al_pref_tokenize(const al_pref_example *e, const al_chat_template *t, const al_tokenizer *tok, int max_len,
                     al_pref_tokens *out)
{
    memset(out, 0, sizeof *out);
    if (max_len < 2)
        return al_fail("preference data: maximum length %d is too short", max_len);
    if (e->conversational && !t)
        return al_fail("preference data: conversational records need a chat template");
    int bos = al_tokenizer_bos(tok);
    int rc = tokenize_answer(e, t, tok, e->chosen, e->chosen_msgs, e->n_chosen_msgs, &out->chosen, &out->chosen_mask);
    if (rc == 0)
        out->truncated |= truncate_keep_end(&out->chosen, &out->chosen_mask, max_len, bos);
    if (rc == 0 && (e->rejected || e->rejected_msgs)) {
        rc = tokenize_answer(e, t, tok, e->rejected, e->rejected_msgs, e->n_rejected_msgs, &out->rejected,
                             &out->rejected_mask);
        if (rc == 0)
            out->truncated |= truncate_keep_end(&out->rejected, &out->rejected_mask, max_len, bos);
    }
    if (rc)
        al_pref_tokens_free(out);
    return rc;
}

void al_pref_tokens_free(al_pref_tokens *p)
{
    al_ints_free(&p->chosen);
    al_ints_free(&p->chosen_mask);
    al_ints_free(&p->rejected);
    al_ints_free(&p->rejected_mask);
}
