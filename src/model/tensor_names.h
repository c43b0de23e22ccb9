/* A file format's names for align's tensors (HF safetensors, GGUF): a table from each
 * tensor kind ("wq", "rms_att", ...) to its name, per-layer ones under a prefix with the
 * layer number ("model.layers.3.", "blk.3."), and a model's layout indexed by kind.  A table
 * need not name every kind: HF GPT-2 stores wq, wk and wv as one tensor, named for wq.
 * Internal to the model module. */
#ifndef ALIGN_MODEL_TENSOR_NAMES_H
#define ALIGN_MODEL_TENSOR_NAMES_H

#include <stddef.h>

#include "align/model.h"

typedef struct tn_entry {
    const char *kind, *name;
    bool per_layer;
} tn_entry;

typedef struct tn_table {
    const tn_entry *e;
    int n;                    /* at most TN_MAX_KINDS */
    const char *layer_prefix; /* "model.layers." */
    const char *format;       /* "HF", "GGUF": for messages */
} tn_table;

#define TN_MAX_KINDS 24

/* The layout of a config, with the index of each kind's first descriptor (-1: none). */
typedef struct tn_layout {
    al_tensor_desc *d;
    int n;
    int kind_start[TN_MAX_KINDS];
} tn_layout;

int tn_kind_of(const tn_table *t, const char *kind); /* -1 if the table has no such kind */
/* Fails (al_fail) when out of memory or, if every_kind_named, when the layout holds a kind
 * the table does not name.  Free lo->d. */
int tn_layout_build(tn_layout *lo, const al_config *c, const tn_table *t, bool every_kind_named);
/* The file's name of descriptor d. */
void tn_format(char *buf, size_t n, const tn_table *t, const al_tensor_desc *d);
/* The kind (table index) and layer (-1 for a model-wide tensor) a name stands for: 0, or -1
 * when the name is not the table's (a layer number that is not a plain decimal included).
 * The layer is not checked against the config. */
int tn_parse(const tn_table *t, const char *name, int *kind, long *layer);

#endif
