/* Per-group rates of the guard's flags on ToxiGen's statements: for each target group, how
 * often its hateful statements are flagged (the guard's recall for that group) and how
 * often its neutral ones are (its false positives).  A guard that flags neutral statements
 * about one group more than about another treats the groups differently; the spread of
 * the neutral rates across groups is that difference in one figure. */
#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "align/eval.h"
#include "align/guard.h"

#define WILSON_Z 1.959963984540054

/* The statements of one prompt file: each line lists several as "- a\n- b\n-" with the
 * "\n" written out as two characters; kept once each, in order, at most max (0: all). */
static int statements(const char *path, int max, char ***out, int *n)
{
    al_buf in = {0};
    *out = NULL, *n = 0;
    if (al_read_file(path, &in))
        return -1;
    int cap = 0, rc = 0;
    for (char *p = in.data; rc == 0 && p && *p && (max <= 0 || *n < max);) {
        while (*p == '-' || *p == ' ' || *p == '\n' || *p == '\r')
            p++;
        char *end = p;
        while (*end && *end != '\n' && !(end[0] == '\\' && end[1] == 'n'))
            end++;
        size_t len = (size_t)(end - p);
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\r'))
            len--;
        bool seen = len == 0;
        for (int i = 0; !seen && i < *n; i++)
            seen = strlen((*out)[i]) == len && !memcmp((*out)[i], p, len);
        if (!seen) {
            if (*n == cap) {
                cap = cap ? 2 * cap : 256;
                char **grown = realloc(*out, (size_t)cap * sizeof *grown);
                if (!grown) {
                    rc = al_fail("out of memory");
                    break;
                }
                *out = grown;
            }
            if (!((*out)[*n] = strndup(p, len)))
                rc = al_fail("out of memory");
            else
                (*n)++;
        }
        p = *end == '\\' ? end + 2 : *end ? end + 1 : end;
    }
    al_buf_free(&in);
    return rc;
}

static void free_strings(char **v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const al_toxigen_group *)a)->name, ((const al_toxigen_group *)b)->name);
}

int al_toxigen_audit(const char *dir, const char *policy, int max_per_group, al_toxigen_summary *out)
{
    *out = (al_toxigen_summary){0};
    char *prompts = al_path_join(dir, "prompts");
    DIR *d = prompts ? opendir(prompts) : NULL;
    if (!d) {
        int rc = al_fail("%s: no prompts/ directory (ToxiGen's hate_GROUP_1k.txt and neutral_GROUP_1k.txt)",
                         prompts ? prompts : dir);
        free(prompts);
        return rc;
    }
    al_guard_policy pol;
    al_guard *g = NULL;
    int rc = !policy || !strcmp(policy, "default") ? al_guard_policy_default(&pol) : al_guard_policy_load(policy, &pol);
    if (rc == 0) {
        g = al_guard_open(&pol);
        al_guard_policy_free(&pol);
        rc = g ? 0 : -1;
    }
    int cap = 0;
    for (struct dirent *e; rc == 0 && (e = readdir(d));) {
        const char *name = e->d_name;
        const bool hate = !strncmp(name, "hate_", 5), neutral = !strncmp(name, "neutral_", 8);
        const char *suffix = strstr(name, "_1k.txt");
        if ((!hate && !neutral) || !suffix)
            continue;
        const char *group = name + (hate ? 5 : 8);
        char gname[64];
        snprintf(gname, sizeof gname, "%.*s", (int)(suffix - group), group);
        int k = 0;
        while (k < out->n_groups && strcmp(out->groups[k].name, gname))
            k++;
        if (k == out->n_groups) {
            if (out->n_groups == cap) {
                cap = cap ? 2 * cap : 16;
                al_toxigen_group *grown = realloc(out->groups, (size_t)cap * sizeof *grown);
                if (!grown) {
                    rc = al_fail("out of memory");
                    break;
                }
                out->groups = grown;
            }
            out->groups[out->n_groups++] = (al_toxigen_group){0};
            snprintf(out->groups[k].name, sizeof out->groups[k].name, "%s", gname);
        }
        char *path = al_path_join(prompts, name), **st = NULL;
        int n = 0;
        rc = path ? statements(path, max_per_group, &st, &n) : -1;
        al_toxigen_group *gr = &out->groups[k];
        for (int i = 0; rc == 0 && i < n; i++) {
            al_guard_decision dec = {0};
            rc = al_guard_check_output(g, "", 0, st[i], strlen(st[i]), &dec);
            const bool flagged = rc == 0 && dec.action != AL_GUARD_ALLOW;
            if (hate)
                gr->hate++, gr->hate_flagged += flagged;
            else
                gr->neutral++, gr->neutral_flagged += flagged;
            al_guard_decision_free(&dec);
        }
        free_strings(st, n);
        free(path);
    }
    closedir(d);
    free(prompts);
    al_guard_close(g);
    if (rc == 0 && out->n_groups == 0)
        rc = al_fail("%s/prompts: no hate_GROUP_1k.txt or neutral_GROUP_1k.txt files", dir);
    if (rc) {
        al_toxigen_summary_free(out);
        return rc;
    }
    qsort(out->groups, (size_t)out->n_groups, sizeof *out->groups, by_name);
    double lo = 2, hi = -1;
    for (int k = 0; k < out->n_groups; k++) {
        al_toxigen_group *gr = &out->groups[k];
        gr->hate_rate = gr->hate ? (double)gr->hate_flagged / gr->hate : NAN;
        gr->neutral_rate = gr->neutral ? (double)gr->neutral_flagged / gr->neutral : NAN;
        al_wilson(gr->hate_flagged, gr->hate, WILSON_Z, &gr->hate_lo, &gr->hate_hi);
        al_wilson(gr->neutral_flagged, gr->neutral, WILSON_Z, &gr->neutral_lo, &gr->neutral_hi);
        if (gr->neutral) {
            lo = gr->neutral_rate < lo ? gr->neutral_rate : lo;
            hi = gr->neutral_rate > hi ? gr->neutral_rate : hi;
        }
        out->hate += gr->hate, out->hate_flagged += gr->hate_flagged;
        out->neutral += gr->neutral, out->neutral_flagged += gr->neutral_flagged;
    }
    out->neutral_spread = hi >= lo ? hi - lo : NAN;
    return 0;
}

void al_toxigen_summary_free(al_toxigen_summary *s)
{
    free(s->groups);
    *s = (al_toxigen_summary){0};
}
