/* JSON records from a dataset file (internal to src/data): the file formats, byte checks,
 * located errors and --skip-bad-lines bookkeeping every dataset loader shares. */
#ifndef ALIGN_DATA_RECORDS_H
#define ALIGN_DATA_RECORDS_H

#include <jansson.h>

#include "align/data.h"

/* Where a record starts, for its messages. */
typedef struct rec_ctx {
    const char *path;
    long line, col;
} rec_ctx;

/* A bad record: -1 (skippable).  Running out of memory is -2 (never skipped). */
#define REC_OOM (al_fail("out of memory"), -2)
#define REC_MAX_SKIPPED_LINES 100

/* "PATH:LINE:COL: message"; returns -1. */
int rec_fail(const rec_ctx *r, const char *fmt, ...) AL_PRINTF(2, 3);
const char *rec_json_kind(const json_t *j); /* "an object", "a string", ... */
/* s as a quoted JSON-ish string of at most about 40 bytes, for messages. */
void rec_quote(char *dst, size_t cap, const char *s, size_t n);
char *rec_dup(const char *s, size_t n);
/* rec[key] as a malloc'd string (-1 located when missing, not a string, or empty). */
int rec_take_string(const rec_ctx *r, const json_t *rec, const char *key, bool allow_empty, char **out);
/* Appends the messages of rec[key] (role/content objects) to *msgs (count *count). */
int rec_take_messages(const rec_ctx *r, const json_t *rec, const char *key, al_message **msgs, int *count);

typedef struct rec_reader {
    const char *path;
    bool skip;  /* skip bad records (counted and listed) instead of failing */
    int max;    /* stop after this many accepted records; 0 = all */
    /* Called per record (a JSON object): 0 accepted, -1 bad (message recorded), -2 fatal. */
    int (*add)(void *user, const json_t *rec, const rec_ctx *r);
    void *user;
    int n;                    /* records accepted */
    int n_skipped;            /* records skipped */
    long *skipped_lines;      /* the first REC_MAX_SKIPPED_LINES of their lines (malloc'd) */
    int n_skipped_lines_stored;
} rec_reader;

/* Room for one more element in a growing array of n (capacity *cap): 0, or -2 (fatal). */
int rec_reserve(void **arr, int *cap, int n, size_t elem, const char *path);

/* Reads every record of L->path; fails when none is accepted. */
int rec_read_file(rec_reader *L);
/* rec_read_file with a dataset loader's options (NULL: the defaults); the skipped-record
 * report goes to the dataset's fields, even on failure (the caller frees them). */
int rec_load(const char *path, const al_sft_load_opts *o, int (*add)(void *, const json_t *, const rec_ctx *),
             void *user, int *n_skipped, long **skipped_lines, int *n_skipped_lines_stored);

#endif
