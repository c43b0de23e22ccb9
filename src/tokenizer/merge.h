/* Private to src/tokenizer: the shared pair-merge loop (see merge.c). */
#ifndef ALIGN_TOKENIZER_MERGE_H
#define ALIGN_TOKENIZER_MERGE_H

#include "internal.h"

typedef struct tok_sym {
    int id, prev, next; /* id -1: absorbed by its left neighbour */
} tok_sym;

typedef struct tok_cand {
    double prio; /* higher merges first */
    int left, right, lid, rid, result;
} tok_cand;

/* Reusable buffers for one encode call. */
typedef struct tok_work {
    tok_sym *sym;
    tok_cand *heap;
    int n, sym_cap, heap_n, heap_cap;
    char *scratch;
    size_t scratch_cap;
} tok_work;

/* The merge of (a, b), if any: its priority and the id it produces. */
typedef bool (*tok_pair_fn)(const al_tokenizer *t, tok_work *w, int a, int b, double *prio, int *result);

int tok_work_begin(tok_work *w, int n); /* room for n symbols, list emptied */
void tok_work_add(tok_work *w, int id); /* after tok_work_begin reserved room */
int tok_work_scratch(tok_work *w, size_t n);
/* Merges the symbols added since tok_work_begin and appends the result to out. */
int tok_merge(tok_work *w, const al_tokenizer *t, tok_pair_fn fn, al_ints *out);
void tok_work_free(tok_work *w);

#endif
