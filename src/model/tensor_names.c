/* Tensor names of the file formats (see tensor_names.h). */
#include "tensor_names.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tn_kind_of(const tn_table *t, const char *kind)
{
    for (int k = 0; k < t->n; k++)
        if (!strcmp(t->e[k].kind, kind))
            return k;
    return -1;
}

int tn_layout_build(tn_layout *lo, const al_config *c, const tn_table *t, bool every_kind_named)
{
    lo->n = al_tensor_layout(c, NULL, 0);
    lo->d = malloc((size_t)lo->n * sizeof *lo->d);
    if (!lo->d)
        return al_fail("out of memory");
    al_tensor_layout(c, lo->d, lo->n);
    for (int k = 0; k < TN_MAX_KINDS; k++)
        lo->kind_start[k] = -1;
    for (int i = lo->n - 1; i >= 0; i--) {
        int k = tn_kind_of(t, lo->d[i].kind);
        if (k < 0 && every_kind_named)
            return al_fail("tensor kind '%s' has no %s name", lo->d[i].kind, t->format);
        if (k >= 0)
            lo->kind_start[k] = i;
    }
    return 0;
}

void tn_format(char *buf, size_t n, const tn_table *t, const al_tensor_desc *d)
{
    const tn_entry *e = &t->e[tn_kind_of(t, d->kind)];
    if (e->per_layer)
        snprintf(buf, n, "%s%d.%s", t->layer_prefix, d->layer, e->name);
    else
        snprintf(buf, n, "%s", e->name);
}

int tn_parse(const tn_table *t, const char *name, int *kind, long *layer)
{
    const size_t pl = strlen(t->layer_prefix);
    const bool per_layer = !strncmp(name, t->layer_prefix, pl);
    const char *rest = name;
    *kind = -1, *layer = -1;
    if (per_layer) {
        const char *p = name + pl, *q = p;
        long v = 0;
        while (*q >= '0' && *q <= '9' && q - p < 7)
            v = v * 10 + (*q++ - '0');
        if (q == p || *q != '.' || (q - p > 1 && *p == '0')) /* no number, or a leading zero */
            return -1;
        *layer = v;
        rest = q + 1;
    }
    for (int k = 0; k < t->n; k++)
        if (t->e[k].per_layer == per_layer && !strcmp(rest, t->e[k].name))
            *kind = k;
    return *kind < 0 ? -1 : 0;
}
