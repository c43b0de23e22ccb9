/* A synthetic preference task, for checking a preference trainer end to end in seconds.
 *
 * A child asks for a thing; the helpful answer hands it over, the rude one sends the
 * child away:
 *   prompt:   "Lily asks: can I have the red kite?"
 *   chosen:   " Here is the red kite, Lily."
 *   rejected: " No, Lily. Go away."
 * The SFT demonstrations are helpful and rude equally often, so a model fine-tuned on
 * them has no preference; the pairs teach it one.  The vocabulary is TinyStories', so the
 * stories260K tokenizer covers it.  Held-out prompts never occur in the training files. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "align/data.h"

static const char *const names[] = {"Lily", "Tom", "Sam", "Ben", "Mia", "Max", "Sue", "Tim"};
static const char *const colors[] = {"red", "blue", "green", "yellow", "pink"};
static const char *const things[] = {"ball", "cat", "dog", "box", "hat", "car", "cup", "kite"};
#define COUNT(a) ((int)(sizeof a / sizeof a[0]))

static const char *const asks[] = {"%s asks: can I have the %s %s?", "%s wants the %s %s.",
                                   "May %s play with the %s %s?"};

typedef struct task {
    int who, color, thing, ask;
} task;

static int pick(uint64_t *rng, int n) { return (int)(al_xorshift_u32(rng) % (uint32_t)n); }

static task draw(uint64_t *rng)
{
    task t = {pick(rng, COUNT(names)), pick(rng, COUNT(colors)), pick(rng, COUNT(things)), pick(rng, COUNT(asks))};
    return t;
}

static void prompt_text(const task *t, char *buf, size_t n)
{
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    snprintf(buf, n, asks[t->ask], names[t->who], colors[t->color], things[t->thing]);
#pragma GCC diagnostic pop
}

static void answer_text(const task *t, bool helpful, char *buf, size_t n)
{
    if (helpful)
        snprintf(buf, n, " Here is the %s %s, %s.", colors[t->color], things[t->thing], names[t->who]);
    else
        snprintf(buf, n, " No, %s. Go away.", names[t->who]);
}

typedef struct out_file {
    al_atomic_file f;
    bool open;
} out_file;

static int write_record(FILE *fp, json_t *rec)
{
    char *s = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(rec);
    if (!s)
        return al_fail("out of memory");
    fprintf(fp, "%s\n", s);
    free(s);
    return 0;
}

/* Draws a task whose prompt is new (not in seen), and marks it seen. */
static task fresh_task(uint64_t *rng, uint64_t *seen, size_t cap, char *prompt, size_t n)
{
    for (;;) {
        task t = draw(rng);
        prompt_text(&t, prompt, n);
        uint64_t h = al_hash64(prompt, strlen(prompt), 7) | 1;
        size_t i = h % cap;
        while (seen[i] && seen[i] != h)
            i = (i + 1) % cap;
        if (!seen[i]) {
            seen[i] = h;
            return t;
        }
    }
}

int al_synth_pref_write(const char *dir, uint64_t seed, int n_train, int n_heldout)
{
    /* 8 names x 5 colors x 8 things x 3 phrasings = 960 distinct prompts */
    if (n_train < 1 || n_heldout < 1 || 2 * (n_train + n_heldout) > 900)
        return al_fail("synthetic task: sizes must be positive, with 2 (n_train + n_heldout) at most 900");
    static const char *const files[] = {"sft.jsonl", "sft_heldout.jsonl", "pref.jsonl", "pref_heldout.jsonl"};
    out_file out[4] = {0};
    size_t cap = 4 * (size_t)(2 * n_train + 2 * n_heldout);
    uint64_t *seen = calloc(cap, sizeof *seen);
    int rc = seen ? al_mkdir_p(dir) : al_fail("out of memory");
    for (int i = 0; rc == 0 && i < 4; i++) {
        char *path = al_path_join(dir, files[i]);
        rc = path ? al_atomic_open(&out[i].f, path) : al_fail("out of memory");
        out[i].open = rc == 0;
        free(path);
    }
    uint64_t rng = seed ? seed : 1;
    char prompt[256], good[128], bad[128];
    /* sft: right and wrong answers alike; pairs: right over wrong; each with held-out prompts */
    for (int part = 0; rc == 0 && part < 4; part++) {
        int n = part % 2 ? n_heldout : n_train;
        for (int i = 0; rc == 0 && i < n; i++) {
            task t = fresh_task(&rng, seen, cap, prompt, sizeof prompt);
            answer_text(&t, true, good, sizeof good);
            answer_text(&t, false, bad, sizeof bad);
            json_t *rec;
            if (part == 0)
                rec = json_pack("{s:s,s:s}", "prompt", prompt, "completion", i % 2 ? bad : good);
            else if (part == 1)
                rec = json_pack("{s:s,s:s}", "prompt", prompt, "completion", good);
            else
                rec = json_pack("{s:s,s:s,s:s}", "prompt", prompt, "chosen", good, "rejected", bad);
            rc = write_record(out[part].f.fp, rec);
        }
    }
    for (int i = 0; i < 4; i++) {
        if (!out[i].open)
            continue;
        if (rc == 0)
            rc = al_atomic_commit(&out[i].f);
        else
            al_atomic_abort(&out[i].f);
    }
    free(seen);
    return rc;
}
