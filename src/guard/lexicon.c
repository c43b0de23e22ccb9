/* The toxicity lexicon: terms with severities 1 (mild) to 3 (severe), matched as word
 * sequences (so "f*ck" in a list matches "f*ck" in text, and a leetspeak spelling of a
 * one-word term matches too).  A term's score is its severity / 3.
 *
 * The built-in list is ours: common English profanity, insults and slurs, enough for the
 * guard to work without ../shared.  The fuller list with per-term severities is
 * ../shared/data/safety/toxicity_lexicons/profanity_en.csv, which al_lexicon_load reads. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rules.h"

struct al_lexicon {
    guard_phrases phrases;
};

typedef struct term {
    const char *text;
    float severity;
} term;

static const term builtin[] = {
    {"damn", 1}, {"dammit", 1}, {"goddamn", 1.4f}, {"hell", 1}, {"crap", 1}, {"crappy", 1},
    {"bloody", 1}, {"bugger", 1.2f}, {"arse", 1.4f}, {"piss", 1.4f}, {"pissed", 1.2f},
    {"wtf", 1.2f}, {"sucks", 1}, {"jerk", 1}, {"dumb", 1}, {"stupid", 1}, {"idiot", 1.4f},
    {"idiots", 1.4f}, {"idiotic", 1.2f}, {"moron", 1.6f}, {"morons", 1.6f}, {"loser", 1.2f},
    {"imbecile", 1.6f}, {"cretin", 1.6f}, {"twit", 1.2f}, {"prat", 1.2f}, {"git", 1},
    {"shut up", 1.2f}, {"ass", 1.6f}, {"asses", 1.6f}, {"jackass", 2}, {"dumbass", 2},
    {"asshole", 2.4f}, {"assholes", 2.4f}, {"arsehole", 2.4f}, {"douche", 1.8f},
    {"douchebag", 2}, {"shit", 2}, {"shits", 2}, {"shitty", 2}, {"shite", 1.8f},
    {"bullshit", 2}, {"horseshit", 2}, {"piece of shit", 2.8f}, {"bitch", 2.4f},
    {"bitches", 2.4f}, {"son of a bitch", 2.6f}, {"bastard", 2}, {"bastards", 2},
    {"dick", 2}, {"dickhead", 2.4f}, {"prick", 2}, {"cock", 2.2f}, {"cocksucker", 2.8f},
    {"pussy", 2.4f}, {"twat", 2.6f}, {"wanker", 2.2f}, {"tosser", 1.8f}, {"bollocks", 1.6f},
    {"fuck", 2.6f}, {"fucks", 2.6f}, {"fucking", 2.6f}, {"fucked", 2.6f}, {"fucker", 2.8f},
    {"fuckers", 2.8f}, {"fuckhead", 2.8f}, {"fuck off", 2.8f}, {"fuck you", 2.8f},
    {"stfu", 2.2f}, {"gtfo", 2.2f}, {"motherfucker", 3}, {"motherfucking", 3}, {"cunt", 3},
    {"cunts", 3}, {"slut", 2.8f}, {"sluts", 2.8f}, {"whore", 2.8f}, {"whores", 2.8f},
    {"skank", 2.6f}, {"retard", 3}, {"retarded", 3}, {"retards", 3}, {"spastic", 2.6f},
    {"kill yourself", 3}, {"kys", 3}, {"go die", 2.6f}, {"drop dead", 2.4f},
    {"i hope you die", 3}, {"nobody loves you", 2.2f}, {"worthless piece", 2.6f},
    {"faggot", 3}, {"faggots", 3}, {"fag", 3}, {"dyke", 2.8f}, {"tranny", 2.8f},
    {"nigger", 3}, {"niggers", 3}, {"nigga", 2.8f}, {"chink", 3}, {"gook", 3}, {"spic", 3},
    {"wetback", 3}, {"kike", 3}, {"raghead", 3}, {"towelhead", 3}, {"paki", 2.8f},
    {"coon", 2.8f}, {"beaner", 2.8f}, {"gyp", 2.2f}, {"gypped", 2.2f},
};

static al_lexicon *lexicon_new(void)
{
    al_lexicon *lx = calloc(1, sizeof *lx);
    if (!lx)
        al_fail("out of memory");
    return lx;
}

al_lexicon *al_lexicon_builtin(void)
{
    al_lexicon *lx = lexicon_new();
    if (!lx)
        return NULL;
    for (size_t i = 0; i < sizeof builtin / sizeof *builtin; i++)
        if (guard_phrases_add(&lx->phrases, builtin[i].text, builtin[i].severity / 3.0f)) {
            al_lexicon_free(lx);
            return NULL;
        }
    if (guard_phrases_build(&lx->phrases)) {
        al_lexicon_free(lx);
        return NULL;
    }
    return lx;
}

/* Splits one CSV line in place (double-quoted fields with "" escapes); returns the count. */
static int split_csv(char *line, char **fields, int max)
{
    int n = 0;
    char *p = line;
    while (n < max) {
        char *out = p;
        fields[n++] = p;
        if (*p == '"') {
            char *r = p + 1;
            for (;;) {
                if (*r == 0)
                    break;
                if (*r == '"' && r[1] == '"') {
                    *out++ = '"';
                    r += 2;
                } else if (*r == '"') {
                    r++;
                    break;
                } else {
                    *out++ = *r++;
                }
            }
            p = r;
        } else {
            while (*p && *p != ',')
                out++, p++;
        }
        char next = *p;
        *out = 0;
        if (next != ',')
            break;
        p++;
    }
    return n;
}

al_lexicon *al_lexicon_load(const char *path)
{
    al_buf b = {0};
    if (al_read_file(path, &b))
        return NULL;
    al_lexicon *lx = lexicon_new();
    if (!lx) {
        al_buf_free(&b);
        return NULL;
    }
    int term_col = 0, sev_col = 1, line_no = 0;
    char *save = NULL;
    for (char *line = strtok_r(b.data ? b.data : (char *)"", "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        line_no++;
        size_t len = strlen(line);
        if (len && line[len - 1] == '\r')
            line[--len] = 0;
        if (len == 0 || line[0] == '#')
            continue;
        char *f[16];
        int nf = split_csv(line, f, 16);
        if (line_no == 1) {
            /* a header names the columns; profanity_en.csv: text ... severity_rating */
            int t = -1, s = -1;
            for (int i = 0; i < nf; i++) {
                if (strcmp(f[i], "text") == 0 || strcmp(f[i], "term") == 0)
                    t = i;
                if (strcmp(f[i], "severity_rating") == 0 || strcmp(f[i], "severity") == 0)
                    s = i;
            }
            if (t >= 0 && s >= 0) {
                term_col = t, sev_col = s;
                continue;
            }
        }
        int need = term_col > sev_col ? term_col : sev_col;
        char *end = NULL;
        double sev = nf > need ? strtod(f[sev_col], &end) : 0;
        if (nf <= need || end == f[sev_col] || *end || sev < 0 || sev > 3) {
            al_fail("%s:%d: expected \"term,severity\" with a severity from 0 to 3", path, line_no);
            goto fail;
        }
        if (guard_phrases_add(&lx->phrases, f[term_col], (float)(sev / 3.0)))
            goto fail;
    }
    if (guard_phrases_build(&lx->phrases))
        goto fail;
    al_buf_free(&b);
    return lx;
fail:
    al_buf_free(&b);
    al_lexicon_free(lx);
    return NULL;
}

void al_lexicon_free(al_lexicon *lx)
{
    if (!lx)
        return;
    guard_phrases_free(&lx->phrases);
    free(lx);
}

int al_lexicon_size(const al_lexicon *lx) { return lx ? lx->phrases.n : 0; }

const guard_phrases *guard_lexicon_phrases(const al_lexicon *lx) { return &lx->phrases; }

/* Severities are stored as float thirds (the rail's score); rounding back to six decimals
 * gives the file's own values (1.2, not 1.2000000179), so sums compare with what a person
 * adds up by hand. */
static double severity_of(const guard_hit *h) { return round(h->score * 3.0 * 1e6) / 1e6; }

int al_lexicon_severity(const al_lexicon *lx, const char *text, size_t n, double *sum, int *n_terms)
{
    *sum = 0;
    if (n_terms)
        *n_terms = 0;
    al_buf folded = {0};
    uint32_t *map = NULL;
    guard_fold_stats st;
    if (guard_needs_fold(text, n)) { /* homoglyphs and invisible characters read as the guard reads them */
        if (guard_fold(text, n, &folded, &map, &st))
            return -1;
        text = folded.data, n = folded.len;
    }
    guard_words w;
    guard_hits hits = {0};
    int rc = guard_split_words(text, n, lx->phrases.first.filter, &w);
    if (rc == 0) {
        rc = guard_phrases_scan(&lx->phrases, text, &w, true, 0, AL_GCAT_TOXICITY, "toxic_term", &hits);
        guard_words_free(&w);
    }
    for (int i = 0; rc == 0 && i < hits.n; i++) {
        bool seen = false; /* distinct terms: repeating a word does not repeat its penalty */
        for (int k = 0; k < i && !seen; k++)
            seen = strcmp(hits.v[k].label, hits.v[i].label) == 0;
        if (!seen) {
            *sum += severity_of(&hits.v[i]);
            if (n_terms)
                (*n_terms)++;
        }
    }
    free(hits.v);
    free(map);
    al_buf_free(&folded);
    return rc;
}
