/* Concept features for the harm classifier, from WordNet (Debian's wordnet-base).
 *
 * A bag of n-grams knows only the words it was trained on: "sarin" teaches nothing about
 * "VX gas".  WordNet places both under "nerve gas"/"chemical weapon", so each word also
 * emits the concepts above it: its two most frequent noun and verb senses and their
 * hypernyms up to CONCEPT_LEVELS steps, minus the most general ones (within
 * CONCEPT_MIN_DEPTH of a root: "entity", "object", "act").  A request for an agent or a
 * weapon never seen in training then shares features with the ones that were.
 *
 * The table is built once, at training, from the WordNet files, and saved inside the
 * model (harm model version 2), so scoring needs no WordNet and gives the same features
 * on every machine.  Lookup: the longest WordNet lemma (up to three words: "mustard gas",
 * "pipe bomb") at each position, else the word itself, else its base form by WordNet's
 * suffix rules (morphy) and exception lists (folded into the table at build). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "align/core.h"
#include "harm_features.h"

#define CONCEPT_SENSES 2     /* most frequent senses per part of speech */
#define CONCEPT_LEVELS 4     /* hypernym steps above a sense */
#define CONCEPT_MIN_DEPTH 4  /* concepts at least this far below a root */
#define CONCEPT_MAX 24       /* per word */
#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

static uint64_t word_hash(const char *s, size_t n)
{
    uint64_t h = FNV_OFFSET;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * FNV_PRIME;
    return h;
}

void harm_lexicon_free(harm_lexicon *lx)
{
    free(lx->hash);
    free(lx->start);
    free(lx->ids);
    memset(lx, 0, sizeof *lx);
}

/* ---- building from the WordNet files ---- */

/* One part of speech: its synsets (sorted by offset, as the data file is) and their
 * hypernyms. */
typedef struct wn_pos {
    uint32_t *offset;   /* [n] */
    uint32_t *hyp0;     /* [n + 1] start of each synset's hypernyms in hyp */
    uint32_t *hyp;      /* hypernym offsets (same part of speech) */
    int *depth;         /* [n] shortest distance to a root, -1 not yet known */
    size_t n, nh;
} wn_pos;

static void wn_pos_free(wn_pos *p)
{
    free(p->offset), free(p->hyp0), free(p->hyp), free(p->depth);
    memset(p, 0, sizeof *p);
}

static long find_synset(const wn_pos *p, uint32_t off)
{
    size_t lo = 0, hi = p->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (p->offset[mid] < off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < p->n && p->offset[lo] == off ? (long)lo : -1;
}

static int grow_u32(uint32_t **v, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap * 2 : 4096;
    while (c < need)
        c *= 2;
    uint32_t *q = realloc(*v, c * sizeof *q);
    if (!q)
        return al_fail("out of memory reading WordNet");
    *v = q, *cap = c;
    return 0;
}

/* data.noun / data.verb: "offset lex_filenum ss_type w_cnt word lex_id ... p_cnt
 * [sym offset pos src/tgt]... | gloss"; hypernyms are '@' and '@i' */
static int read_data(const char *dir, const char *name, char pos, wn_pos *p)
{
    char *path = al_path_join(dir, name);
    al_buf b = {0};
    int rc = path ? al_read_file(path, &b) : al_fail("out of memory");
    size_t cap_s = 0, cap_s0 = 0, cap_h = 0;
    int line_no = 0;
    for (char *line = rc ? NULL : b.data; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        line_no++;
        if (line[0] != ' ') { /* the licence lines start with two spaces */
            char *s = line, *e;
            unsigned long off = strtoul(s, &e, 10);
            strtoul(e, &e, 10);               /* lex_filenum */
            while (*e == ' ')
                e++;
            e++;                              /* ss_type */
            unsigned long wc = strtoul(e, &e, 16);
            for (unsigned long k = 0; k < wc; k++) { /* word, lex_id */
                while (*e == ' ')
                    e++;
                while (*e && *e != ' ')
                    e++;
                strtoul(e, &e, 16);
            }
            unsigned long pc = strtoul(e, &e, 10);
            if ((rc = grow_u32(&p->offset, &cap_s, p->n + 1)) || (rc = grow_u32(&p->hyp0, &cap_s0, p->n + 2)))
                break;
            p->offset[p->n] = (uint32_t)off;
            p->hyp0[p->n] = (uint32_t)p->nh;
            for (unsigned long k = 0; k < pc; k++) {
                char sym[4] = {0};
                while (*e == ' ')
                    e++;
                for (int c = 0; c < 3 && *e && *e != ' '; c++)
                    sym[c] = *e++;
                while (*e && *e != ' ')
                    e++;
                unsigned long to = strtoul(e, &e, 10);
                while (*e == ' ')
                    e++;
                char to_pos = *e;
                while (*e && *e != ' ')
                    e++;
                strtoul(e, &e, 16); /* source/target */
                if ((!strcmp(sym, "@") || !strcmp(sym, "@i")) && to_pos == pos) {
                    if ((rc = grow_u32(&p->hyp, &cap_h, p->nh + 1)))
                        break;
                    p->hyp[p->nh++] = (uint32_t)to;
                }
            }
            if (rc)
                break;
            if (p->n > 0 && p->offset[p->n - 1] >= off) {
                rc = al_fail("%s:%d: synset offsets are not increasing", path, line_no);
                break;
            }
            p->n++;
            p->hyp0[p->n] = (uint32_t)p->nh;
        }
        line = nl ? nl + 1 : NULL;
    }
    if (rc == 0 && !(p->depth = malloc((p->n + 1) * sizeof *p->depth)))
        rc = al_fail("out of memory reading WordNet");
    for (size_t i = 0; rc == 0 && i < p->n; i++)
        p->depth[i] = -1;
    al_buf_free(&b);
    free(path);
    return rc;
}

/* Shortest distance from synset i to a root (a synset without hypernyms). */
static int depth_of(wn_pos *p, long i, int guard)
{
    if (i < 0 || guard > 64)
        return 0;
    if (p->depth[i] >= 0)
        return p->depth[i];
    int best = -1;
    for (uint32_t k = p->hyp0[i]; k < p->hyp0[i + 1]; k++) {
        int d = depth_of(p, find_synset(p, p->hyp[k]), guard + 1) + 1;
        if (best < 0 || d < best)
            best = d;
    }
    return p->depth[i] = best < 0 ? 0 : best;
}

/* The table being built: one entry per lemma, its concept ids appended. */
typedef struct entry {
    uint64_t hash;
    uint32_t start, count;
} entry;

typedef struct builder {
    entry *e;
    size_t n, cap;
    uint32_t *ids;
    size_t nids, cap_ids;
} builder;

static int add_concept(builder *b, size_t first, uint32_t id)
{
    for (size_t k = first; k < b->nids; k++)
        if (b->ids[k] == id)
            return 0;
    if (b->nids - first >= CONCEPT_MAX)
        return 0;
    if (grow_u32(&b->ids, &b->cap_ids, b->nids + 1))
        return -1;
    b->ids[b->nids++] = id;
    return 0;
}

/* Synset i and its hypernyms up to CONCEPT_LEVELS steps, the general ones left out. */
static int add_sense(builder *b, size_t first, wn_pos *p, long i, uint32_t pos_bit, int level)
{
    if (i < 0 || level > CONCEPT_LEVELS)
        return 0;
    if (depth_of(p, i, 0) >= CONCEPT_MIN_DEPTH && add_concept(b, first, pos_bit | p->offset[i]))
        return -1;
    for (uint32_t k = p->hyp0[i]; k < p->hyp0[i + 1]; k++)
        if (add_sense(b, first, p, find_synset(p, p->hyp[k]), pos_bit, level + 1))
            return -1;
    return 0;
}

/* entry e's concepts appended to the entry being built from first */
static int copy_concepts(builder *b, size_t first, entry e)
{
    for (uint32_t j = 0; j < e.count; j++)
        if (add_concept(b, first, b->ids[e.start + j]))
            return -1;
    return 0;
}

static int add_entry(builder *b, const char *word, size_t n, size_t first)
{
    if (b->nids == first)
        return 0;
    if (b->n == b->cap) {
        size_t c = b->cap ? b->cap * 2 : 65536;
        entry *q = realloc(b->e, c * sizeof *q);
        if (!q)
            return al_fail("out of memory building the concept table");
        b->e = q, b->cap = c;
    }
    b->e[b->n++] = (entry){word_hash(word, n), (uint32_t)first, (uint32_t)(b->nids - first)};
    return 0;
}

/* index.noun / index.verb: "lemma pos synset_cnt p_cnt [ptr_symbol...] sense_cnt
 * tagsense_cnt synset_offset...", senses by frequency */
static int read_index(const char *dir, const char *name, wn_pos *p, uint32_t pos_bit, builder *b)
{
    char *path = al_path_join(dir, name);
    al_buf buf = {0};
    int rc = path ? al_read_file(path, &buf) : al_fail("out of memory");
    for (char *line = rc ? NULL : buf.data; line && *line && rc == 0;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        if (line[0] != ' ') {
            char *e = strchr(line, ' ');
            if (e) {
                size_t wn = (size_t)(e - line);
                for (size_t k = 0; k < wn; k++)
                    if (line[k] == '_')
                        line[k] = ' ';
                e += 3; /* " n " */
                unsigned long sc = strtoul(e, &e, 10), pc = strtoul(e, &e, 10);
                for (unsigned long k = 0; k < pc; k++) {
                    while (*e == ' ')
                        e++;
                    while (*e && *e != ' ')
                        e++;
                }
                strtoul(e, &e, 10);
                strtoul(e, &e, 10);
                size_t first = b->nids;
                for (unsigned long k = 0; k < sc && k < CONCEPT_SENSES && rc == 0; k++) {
                    unsigned long off = strtoul(e, &e, 10);
                    rc = add_sense(b, first, p, find_synset(p, (uint32_t)off), pos_bit, 0);
                }
                if (rc == 0)
                    rc = add_entry(b, line, wn, first);
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    al_buf_free(&buf);
    free(path);
    return rc;
}

static int cmp_entry(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    return (x->hash > y->hash) - (x->hash < y->hash);
}

static long find_entry(const entry *e, size_t n, uint64_t h)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (e[mid].hash < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && e[lo].hash == h ? (long)lo : -1;
}

/* noun.exc / verb.exc: "inflected base": the inflected form gets the base's concepts,
 * when the inflected form is not a lemma of its own. */
static int read_exceptions(const char *dir, const char *name, builder *b, size_t n_sorted)
{
    char *path = al_path_join(dir, name);
    al_buf buf = {0};
    int rc = path ? al_read_file(path, &buf) : al_fail("out of memory");
    for (char *line = rc ? NULL : buf.data; line && *line && rc == 0;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        char *sp = strchr(line, ' ');
        if (sp) {
            char *base = sp + 1, *end = strchr(base, ' ');
            size_t bn = end ? (size_t)(end - base) : strlen(base);
            for (char *c = line; c < sp; c++)
                if (*c == '_')
                    *c = ' ';
            for (size_t k = 0; k < bn; k++)
                if (base[k] == '_')
                    base[k] = ' ';
            long bi = find_entry(b->e, n_sorted, word_hash(base, bn));
            if (bi >= 0 && find_entry(b->e, n_sorted, word_hash(line, (size_t)(sp - line))) < 0) {
                size_t first = b->nids;
                rc = copy_concepts(b, first, b->e[bi]) || add_entry(b, line, (size_t)(sp - line), first);
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    al_buf_free(&buf);
    free(path);
    return rc;
}

int harm_lexicon_build_wordnet(harm_lexicon *lx, const char *dir)
{
    memset(lx, 0, sizeof *lx);
    wn_pos noun = {0}, verb = {0};
    builder b = {0};
    int rc = read_data(dir, "data.noun", 'n', &noun) || read_data(dir, "data.verb", 'v', &verb) ||
             read_index(dir, "index.noun", &noun, 0, &b) || read_index(dir, "index.verb", &verb, 1u << 31, &b);
    /* a lemma that is a noun and a verb ("bomb") has two entries: merge them */
    if (rc == 0) {
        qsort(b.e, b.n, sizeof *b.e, cmp_entry);
        size_t k = 0;
        for (size_t i = 0; i < b.n && rc == 0; i++) {
            if (k > 0 && b.e[k - 1].hash == b.e[i].hash) {
                size_t first = b.nids;
                rc = copy_concepts(&b, first, b.e[k - 1]) || copy_concepts(&b, first, b.e[i]);
                b.e[k - 1] = (entry){b.e[k - 1].hash, (uint32_t)first, (uint32_t)(b.nids - first)};
            } else {
                b.e[k++] = b.e[i];
            }
        }
        b.n = k;
    }
    size_t n_sorted = b.n;
    if (rc == 0)
        rc = read_exceptions(dir, "noun.exc", &b, n_sorted) || read_exceptions(dir, "verb.exc", &b, n_sorted);
    if (rc == 0) {
        qsort(b.e, b.n, sizeof *b.e, cmp_entry);
        /* duplicates left by two exception lines for one form: keep the first */
        size_t k = 0;
        for (size_t i = 0; i < b.n; i++)
            if (k == 0 || b.e[k - 1].hash != b.e[i].hash)
                b.e[k++] = b.e[i];
        b.n = k;
        /* compact: ids in entry order, so a word's concepts are contiguous */
        lx->n_words = (uint32_t)b.n;
        lx->hash = malloc(b.n * sizeof *lx->hash);
        lx->start = malloc((b.n + 1) * sizeof *lx->start);
        size_t total = 0;
        for (size_t i = 0; i < b.n; i++)
            total += b.e[i].count;
        lx->ids = malloc((total ? total : 1) * sizeof *lx->ids);
        if (!lx->hash || !lx->start || !lx->ids) {
            rc = al_fail("out of memory building the concept table");
        } else {
            size_t at = 0;
            for (size_t i = 0; i < b.n; i++) {
                lx->hash[i] = b.e[i].hash;
                lx->start[i] = (uint32_t)at;
                memcpy(lx->ids + at, b.ids + b.e[i].start, b.e[i].count * sizeof *lx->ids);
                at += b.e[i].count;
            }
            lx->start[b.n] = (uint32_t)at;
            lx->n_ids = (uint32_t)at;
        }
    }
    free(b.e), free(b.ids);
    wn_pos_free(&noun), wn_pos_free(&verb);
    if (rc)
        harm_lexicon_free(lx);
    return rc ? -1 : 0;
}

/* ---- lookup ---- */

static long lookup(const harm_lexicon *lx, const char *s, size_t n)
{
    uint64_t h = word_hash(s, n);
    size_t lo = 0, hi = lx->n_words;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (lx->hash[mid] < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < lx->n_words && lx->hash[lo] == h ? (long)lo : -1;
}

/* WordNet's detachment rules (morphy), nouns then verbs: suffix -> replacement */
static const char *const morph_rules[][2] = {
    {"s", ""},     {"ses", "s"},  {"xes", "x"}, {"zes", "z"}, {"ches", "ch"}, {"shes", "sh"},
    {"men", "man"}, {"ies", "y"}, {"es", "e"},  {"es", ""},   {"ed", "e"},    {"ed", ""},
    {"ing", "e"},  {"ing", ""},
};

static long lookup_word(const harm_lexicon *lx, const char *w, size_t n)
{
    long e = lookup(lx, w, n);
    char tmp[64];
    for (size_t r = 0; e < 0 && r < sizeof morph_rules / sizeof *morph_rules; r++) {
        size_t sl = strlen(morph_rules[r][0]), rl = strlen(morph_rules[r][1]);
        if (n <= sl + 1 || n - sl + rl >= sizeof tmp || memcmp(w + n - sl, morph_rules[r][0], sl))
            continue;
        memcpy(tmp, w, n - sl);
        memcpy(tmp + n - sl, morph_rules[r][1], rl);
        e = lookup(lx, tmp, n - sl + rl);
    }
    /* a doubled final consonant before -ed/-ing: "stabbed" -> "stab" */
    if (e < 0 && n > 5 && n < sizeof tmp) {
        size_t sl = !memcmp(w + n - 3, "ing", 3) ? 3 : !memcmp(w + n - 2, "ed", 2) ? 2 : 0;
        if (sl && w[n - sl - 1] == w[n - sl - 2])
            e = lookup(lx, w, n - sl - 1);
    }
    return e;
}

size_t harm_concept_features(const harm_lexicon *lx, const char *norm, size_t len, int log2_buckets, uint64_t seed,
                             uint32_t *idx)
{
    if (!lx || !lx->n_words)
        return 0;
    /* word boundaries of the normalized text (" w1 w2 ... ") */
    size_t out = 0;
    const uint64_t s = (FNV_OFFSET ^ seed) + 4 * 0x9e3779b97f4a7c15ull;
    size_t i = 1;
    while (i < len) {
        size_t ends[3], n_words = 0, j = i;
        while (n_words < 3 && j < len) {
            size_t k = j;
            while (k < len && norm[k] != ' ')
                k++;
            if (k == j)
                break;
            ends[n_words++] = k;
            j = k + 1;
        }
        if (n_words == 0)
            break;
        long e = -1;
        size_t used = 1;
        for (size_t w = n_words; w >= 2 && e < 0; w--) /* "pipe bomb", "mustard gas" */
            if ((e = lookup(lx, norm + i, ends[w - 1] - i)) >= 0)
                used = w;
        if (e < 0 && ends[0] - i < 64)
            e = lookup_word(lx, norm + i, ends[0] - i);
        if (e >= 0)
            for (uint32_t k = lx->start[e]; k < lx->start[e + 1]; k++)
                idx[out++] = harm_bucket(s ^ ((uint64_t)lx->ids[k] * FNV_PRIME), log2_buckets);
        i = ends[used - 1] + 1;
    }
    return out;
}

size_t harm_concept_max(size_t n) { return ((n + 2) / 2 + 1) * CONCEPT_MAX; }

/* ---- in the model file ---- */

uint64_t harm_lexicon_hash(const harm_lexicon *lx, uint64_t h)
{
    uint32_t counts[2] = {lx->n_words, lx->n_ids};
    h = al_hash64(counts, sizeof counts, h);
    if (lx->n_words) {
        h = al_hash64(lx->hash, (size_t)lx->n_words * 8, h);
        h = al_hash64(lx->start, ((size_t)lx->n_words + 1) * 4, h);
        h = al_hash64(lx->ids, (size_t)lx->n_ids * 4, h);
    }
    return h;
}

int harm_lexicon_write(const harm_lexicon *lx, FILE *fp)
{
    uint32_t counts[2] = {lx->n_words, lx->n_ids};
    if (fwrite(counts, sizeof counts, 1, fp) != 1)
        return -1;
    if (lx->n_words && (fwrite(lx->hash, 8, lx->n_words, fp) != lx->n_words ||
                        fwrite(lx->start, 4, (size_t)lx->n_words + 1, fp) != (size_t)lx->n_words + 1 ||
                        fwrite(lx->ids, 4, lx->n_ids, fp) != lx->n_ids))
        return -1;
    if (!lx->n_words && fwrite(&counts[1], 4, 1, fp) != 1) /* start[0] of the empty table */
        return -1;
    return 0;
}

int harm_lexicon_read(harm_lexicon *lx, FILE *fp, size_t avail, const char *path)
{
    memset(lx, 0, sizeof *lx);
    uint32_t counts[2];
    if (avail < 12 || fread(counts, sizeof counts, 1, fp) != 1)
        return al_fail("%s: the concept table is truncated", path);
    size_t need = 8 + (size_t)counts[0] * 12 + 4 + (size_t)counts[1] * 4;
    if (need != avail)
        return al_fail("%s: size: the concept table says %zu bytes, the file has %zu after the weights (truncated or "
                       "padded file, or a header that does not match it)",
                       path, need, avail);
    lx->n_words = counts[0], lx->n_ids = counts[1];
    lx->hash = malloc(((size_t)counts[0] + 1) * 8);
    lx->start = malloc(((size_t)counts[0] + 1) * 4);
    lx->ids = malloc(((size_t)counts[1] + 1) * 4);
    if (!lx->hash || !lx->start || !lx->ids) {
        harm_lexicon_free(lx);
        return al_fail("%s: out of memory for the concept table", path);
    }
    if ((counts[0] && fread(lx->hash, 8, counts[0], fp) != counts[0]) ||
        fread(lx->start, 4, (size_t)counts[0] + 1, fp) != (size_t)counts[0] + 1 ||
        (counts[1] && fread(lx->ids, 4, counts[1], fp) != counts[1])) {
        harm_lexicon_free(lx);
        return al_fail("%s: read failed in the concept table", path);
    }
    for (uint32_t i = 0; i < counts[0]; i++)
        if (lx->start[i] > lx->start[i + 1] || (i > 0 && lx->hash[i - 1] >= lx->hash[i])) {
            harm_lexicon_free(lx);
            return al_fail("%s: the concept table is not sorted", path);
        }
    if (lx->start[0] != 0 || lx->start[counts[0]] != counts[1]) {
        harm_lexicon_free(lx);
        return al_fail("%s: the concept table's offsets do not cover its ids", path);
    }
    return 0;
}
