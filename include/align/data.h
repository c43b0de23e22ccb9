/* align data: token streams from text files, cached, split, and read as batches.
 * See docs/training.md for the cache format and the batch order. */
#ifndef ALIGN_DATA_H
#define ALIGN_DATA_H

#include "align/core.h"
#include "align/tokenizer.h"

typedef struct al_token_stream {
    uint32_t *ids;
    size_t n;
    char *cache_path; /* where the ids are cached (malloc'd) */
    int bytes_per_id; /* id width in the cache file: 2 or 4 */
} al_token_stream;

typedef struct al_data_opts {
    const char *train_path;
    const char *val_path;  /* NULL: split off the last val_fraction of the documents */
    double val_fraction;   /* default 0.05 */
    const char *doc_sep;   /* default "<|endoftext|>" */
    const char *cache_dir; /* NULL: $XDG_CACHE_HOME/align or ~/.cache/align */
    const char *tokenizer_path; /* for the cache key */
    bool quiet;            /* no progress bar */
} al_data_opts;

typedef struct al_token_data {
    al_token_stream train, val;
    bool cache_hit;       /* both streams were read from the cache (nothing was tokenized) */
    int vocab_size;
    char *doc_sep;        /* copies of the options, for al_token_data_describe (malloc'd) */
    char *tokenizer_path; /* NULL if none was given */
} al_token_data;

void al_data_opts_defaults(al_data_opts *o);
/* Tokenizes (or reads from the cache) the training and validation streams.  Document
 * splitting, the split and the cache key are described at the top of src/data/load.c;
 * a damaged cache file is reported on stderr and rebuilt. */
int al_token_data_load(al_token_data *d, const al_data_opts *o, const al_tokenizer *tok);
void al_token_data_free(al_token_data *d);
/* Writes OUT/data.json describing both streams (paths, counts, id width). */
int al_token_data_describe(const al_token_data *d, const char *out_dir);

/* Reads a cache file written by align (validates magic, version, width and size). */
int al_token_stream_read(al_token_stream *s, const char *path);
int al_token_stream_write(const al_token_stream *s, const char *path, int vocab_size);
void al_token_stream_free(al_token_stream *s);

/* Sequential windows: fills tokens/targets [B*T] and advances the cursor by B*T.  Fails
 * (cursor untouched) if the stream has fewer than B*T+1 tokens. */
typedef struct al_batch_cursor {
    size_t pos;
    long epoch;
} al_batch_cursor;
int al_next_batch(const al_token_stream *s, al_batch_cursor *c, int B, int T, int *tokens, int *targets);
/* Evaluation batch e: non-overlapping windows from the start; targets past the end are -1
 * (their input tokens 0).  Returns the number of targets filled (0 when batch e starts past
 * the end), or -1 with an error for e < 0 or a bad B, T. */
int al_eval_batch(const al_token_stream *s, int e, int B, int T, int *tokens, int *targets);

/* ---- SFT datasets (src/data/sft_dataset.c) ---- */

/* ---- chat templates and loss masks (src/data/chat.c) ---- */

#endif
