/* The merge loop both BPE flavours share: a doubly linked list of symbols and a binary
 * heap of candidate pairs, best first, leftmost on ties.  Each merge costs O(log n)
 * instead of a rescan of the whole sequence, so long texts stay linear-ish.
 *
 * Heap entries are not removed when a neighbour changes; instead each records the ids
 * it was computed from and is dropped at pop time if the symbols no longer match.  A
 * symbol's id only ever changes by absorbing its right neighbour, which makes its piece
 * strictly longer, so (position, id) identifies a symbol's state uniquely. */
#include "merge.h"

#include <stdlib.h>
#include <string.h>

static int grow(void **p, int *cap, int need, size_t elem)
{
    if (need <= *cap)
        return 0;
    int c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, (size_t)c * elem);
    if (!q)
        return al_fail("out of memory for %d merge symbols", c);
    *p = q;
    *cap = c;
    return 0;
}

void tok_work_free(tok_work *w)
{
    free(w->sym);
    free(w->heap);
    free(w->scratch);
    memset(w, 0, sizeof *w);
}

int tok_work_scratch(tok_work *w, size_t n)
{
    if (n <= w->scratch_cap)
        return 0;
    char *s = realloc(w->scratch, n);
    if (!s)
        return al_fail("out of memory for a %zu-byte buffer", n);
    w->scratch = s;
    w->scratch_cap = n;
    return 0;
}

/* a before b: higher priority, then further left. */
static bool better(const tok_cand *a, const tok_cand *b)
{
    if (a->prio != b->prio)
        return a->prio > b->prio;
    return a->left < b->left;
}

static void sift_down(tok_cand *h, int n, int i)
{
    tok_cand x = h[i];
    for (;;) {
        int c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && better(&h[c + 1], &h[c]))
            c++;
        if (!better(&h[c], &x))
            break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

static void sift_up(tok_cand *h, int i)
{
    tok_cand x = h[i];
    while (i > 0) {
        int p = (i - 1) / 2;
        if (!better(&x, &h[p]))
            break;
        h[i] = h[p];
        i = p;
    }
    h[i] = x;
}

static int push_candidate(tok_work *w, const al_tokenizer *t, tok_pair_fn fn, int left, int right, bool heapify)
{
    tok_cand c;
    if (!fn(t, w, w->sym[left].id, w->sym[right].id, &c.prio, &c.result))
        return 0;
    if (grow((void **)&w->heap, &w->heap_cap, w->heap_n + 1, sizeof *w->heap))
        return -1;
    c.left = left;
    c.right = right;
    c.lid = w->sym[left].id;
    c.rid = w->sym[right].id;
    w->heap[w->heap_n++] = c;
    if (heapify)
        sift_up(w->heap, w->heap_n - 1);
    return 0;
}

static tok_cand pop(tok_work *w)
{
    tok_cand top = w->heap[0];
    w->heap[0] = w->heap[--w->heap_n];
    if (w->heap_n > 0)
        sift_down(w->heap, w->heap_n, 0);
    return top;
}

static bool stale(const tok_work *w, const tok_cand *c)
{
    const tok_sym *l = &w->sym[c->left], *r = &w->sym[c->right];
    return l->id != c->lid || l->next != c->right || r->id != c->rid || r->id < 0;
}

int tok_work_begin(tok_work *w, int n)
{
    w->n = 0;
    w->heap_n = 0;
    return grow((void **)&w->sym, &w->sym_cap, n, sizeof *w->sym);
}

void tok_work_add(tok_work *w, int id)
{
    int i = w->n++;
    w->sym[i].id = id;
    w->sym[i].prev = i - 1;
    w->sym[i].next = i + 1;
}

int tok_merge(tok_work *w, const al_tokenizer *t, tok_pair_fn fn, al_ints *out)
{
    int n = w->n;
    if (n == 0)
        return 0;
    w->sym[n - 1].next = -1;
    for (int i = 0; i + 1 < n; i++)
        if (push_candidate(w, t, fn, i, i + 1, false))
            return -1;
    for (int i = w->heap_n / 2 - 1; i >= 0; i--)
        sift_down(w->heap, w->heap_n, i);
    while (w->heap_n > 0) {
        tok_cand c = pop(w);
        if (stale(w, &c))
            continue;
        tok_sym *l = &w->sym[c.left], *r = &w->sym[c.right];
        l->id = c.result;
        l->next = r->next;
        r->id = -1; /* dead */
        if (r->next >= 0)
            w->sym[r->next].prev = c.left;
        if (l->prev >= 0 && push_candidate(w, t, fn, l->prev, c.left, true))
            return -1;
        if (l->next >= 0 && push_candidate(w, t, fn, c.left, l->next, true))
            return -1;
    }
    for (int i = 0; i >= 0; i = w->sym[i].next)
        if (al_ints_push(out, w->sym[i].id))
            return -1;
    return 0;
}
