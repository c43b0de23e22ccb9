/* Shared inside src/redteam. */
#ifndef ALIGN_REDTEAM_INTERNAL_H
#define ALIGN_REDTEAM_INTERNAL_H

#include <stdio.h>

#include "align/guard.h"
#include "align/redteam.h"

/* The invented cipher's table for seed, as the prompt shows it ("a=q b=w ..."). */
int redteam_cipher_table(uint64_t seed, al_buf *out);

/* ---- requests (requests.c) ---- */
typedef struct rt_request {
    char *text, *category; /* category "" when the source has none */
} rt_request;
typedef struct rt_requests {
    rt_request *r;
    int n;
} rt_requests;
int rt_requests_load(rt_requests *rs, const char *path, int max);
void rt_requests_free(rt_requests *rs);

/* ---- one attack: what was sent, what came back, the verdicts (run.c) ---- */
typedef struct rt_attack {
    char *prompt;     /* the last user turn sent */
    char **turns;     /* multi-turn: the turns before it, user and assistant alternating */
    int n_turns;
    char *answer;
    bool skipped, refused, blocked, success, harmful;
    float harm_score;
    int queries, backtracks; /* model calls; turns asked again after a refusal */
    double judge_margin;     /* the judge model's log p(Yes) - log p(No); NaN when not asked */
} rt_attack;
void rt_attack_free(rt_attack *a);

/* {"prompt": the prompt, or its turns and the prompt as messages, "kind": "harmful",
 * "category"} as one line of an eval prompt set */
int rt_write_prompt(FILE *fp, const rt_attack *a, const char *category);
/* Answers the prompt set at prompts_path with o's model, behind o's guard, into answers_path
 * (align eval's answers file). */
int rt_answer(const al_redteam_opts *o, const char *prompts_path, const char *answers_path);
/* One round of attacks against the target: slots[k]'s prompt (and turns), category
 * categories[k], written to prompts_path, answered into answers_path when n > 0, and read
 * back into the slots. */
int rt_attack_round(const al_redteam_opts *o, const char *prompts_path, const char *answers_path,
                    rt_attack *const *slots, const char *const *categories, int n, const al_harm_model *harm);
/* DIR/STEM_NN.jsonl and DIR/STEM_NN.answers.jsonl for round NN (malloc'd). */
int rt_round_paths(const char *dir, const char *stem, int round, char **prompts, char **answers);
/* The same through o->endpoint (endpoint.c). */
int rt_answer_endpoint(const al_redteam_opts *o, const char *prompts_path, const char *answers_path);
/* Reads the first n answers of path, in order, into slots[k]: answer and verdicts, the harm
 * judge's score for the successful ones; each answer the model gave counts a query. */
int rt_read_answers(const char *path, rt_attack *const *slots, int n, const al_harm_model *harm);

/* ---- multi-turn escalation (escalation.c) ---- */
/* Escalates every request of rs over rounds of turns (files in dir), backtracking on
 * refusals; out[i] is request i's attack. */
int rt_escalate(const al_redteam_opts *o, const rt_requests *rs, rt_attack *out, const char *dir,
                const al_harm_model *harm);

/* ---- the automated attacker (pair.c) ---- */
/* For every request of rs, rounds of an attacker model's prompts and the target's answers
 * (files in dir) until a success or o->pair_budget target queries; out[i] is request i's
 * last attack. */
int rt_pair(const al_redteam_opts *o, const rt_requests *rs, rt_attack *out, const char *dir,
            const al_harm_model *harm);

#endif
