/* Private to src/eval: the teacher-forced figures and the per-answer records. */
#ifndef ALIGN_EVAL_INTERNAL_H
#define ALIGN_EVAL_INTERNAL_H

#include "align/eval.h"
#include "align/model.h"

/* One judged answer. */
typedef struct eval_answer {
    char *text;      /* the answer (the model's, or the filter's reply) */
    al_ints ids;     /* the model's answer ids, + EOS when it stopped there; empty if blocked */
    int prompt_len;  /* ids of the rendered prompt */
    int finish;      /* AL_FINISH_*, or -1 when the filter blocked the prompt */
    bool blocked;
    al_verdict v;
    al_intent_verdict iv; /* the correctness judge (benign and contrast prompts) */
    unsigned breaches;    /* the constitution's rules broken (al_breaches) */
} eval_answer;

/* Mean KL(model || reference) in nats over every answer token: answers[i].ids continue
 * prompts[i], both teacher-forced through each model. */
int eval_kl(const al_model *m, const al_model *ref, const al_ints *prompts, const eval_answer *answers, int n,
            bool quiet, double *kl, long *tokens);
/* exp(mean next-token NLL) over the documents of a text file (separator lines
 * "<|endoftext|>", each document BOS-first as in pretraining). */
int eval_perplexity(const al_model *m, const al_tokenizer *tok, const char *path, bool quiet, double *ppl,
                    long *tokens);

/* One JSON line per answer: the prompt, its kind and category, the answer and the verdict. */
int eval_write_answers(const char *path, const al_prompt_set *ps, const eval_answer *answers, int n);

#endif
