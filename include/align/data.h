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
/* Records in TRL's field names, one JSON object per line (JSONL) or a JSON array (a file
 * whose first non-space byte is '['); the format is detected from the records and all of
 * them must agree.  docs/datasets.md lists the formats, the checks and the messages. */
typedef enum al_sft_format {
    AL_SFT_TEXT,                  /* {"text": "..."} */
    AL_SFT_PROMPT_COMPLETION,     /* {"prompt": "...", "completion": "..."} */
    AL_SFT_MESSAGES,              /* {"messages": [{"role": ..., "content": ...}, ...]} */
    AL_SFT_CONV_PROMPT_COMPLETION /* {"prompt": [messages], "completion": [messages]} */
} al_sft_format;

typedef enum al_role { AL_ROLE_SYSTEM, AL_ROLE_USER, AL_ROLE_ASSISTANT } al_role;

typedef struct al_message {
    al_role role;
    char *content; /* malloc'd, NUL-terminated, valid UTF-8 */
    bool no_loss;  /* a turn shown but never trained on ("weight": 0, OpenAI's fine-tuning
                    * format): its tokens get mask 0 in every mask mode */
} al_message;

typedef struct al_sft_example {
    al_sft_format format;
    char *text;                  /* AL_SFT_TEXT (else NULL) */
    char *prompt, *completion;   /* AL_SFT_PROMPT_COMPLETION (else NULL); prompt may be "" */
    al_message *messages;        /* the conversational formats (else NULL) */
    int n_messages;
    int n_prompt_messages;       /* for conversational prompt-completion: the first
                                  * n_prompt_messages are the prompt (else 0) */
    long line;                   /* 1-based line of the file where the record starts */
} al_sft_example;

#define AL_SFT_MAX_SKIPPED_LINES 100

typedef struct al_sft_dataset {
    al_sft_format format;
    al_sft_example *ex;
    int n;
    int n_skipped;              /* bad records skipped (skip_bad_lines) */
    long *skipped_lines;        /* their lines, the first AL_SFT_MAX_SKIPPED_LINES of them */
    int n_skipped_lines_stored;
} al_sft_dataset;

typedef struct al_sft_load_opts {
    bool skip_bad_lines; /* skip (count and list) bad records instead of failing; prints nothing */
    int max_examples;    /* 0 = all */
} al_sft_load_opts;

/* Loads PATH (o may be NULL for the defaults).  A bad record fails with
 * "PATH:LINE:COLUMN: what was expected" (columns count bytes, from 1). */
int al_sft_load(al_sft_dataset *d, const char *path, const al_sft_load_opts *o);
void al_sft_free(al_sft_dataset *d);
/* Deterministic split: a shuffle of the indices seeded by seed picks
 * round(held_out_fraction * n) examples (at least 1 when the fraction is > 0, at most
 * n - 1) for held_out; both keep the file order and are deep copies (no skip lists). */
int al_sft_split(const al_sft_dataset *d, double held_out_fraction, uint64_t seed, al_sft_dataset *train,
                 al_sft_dataset *held_out);
const char *al_sft_format_name(al_sft_format f); /* "language modelling (\"text\")", ... */
const char *al_sft_role_name(al_role r);         /* "system", "user", "assistant" */

/* ---- chat templates and loss masks (src/data/chat.c) ---- */
/* See docs/chat_templates.md for the built-in templates, the template file format and
 * how masks are computed. */


typedef struct al_chat_template al_chat_template; /* opaque */

/* "chatml" (also NULL or "") or "llama2". */
int al_chat_template_builtin(al_chat_template **out, const char *name);
/* A template file ("key = value" lines; errors read "FILE:LINE: ..."). */
int al_chat_template_load(al_chat_template **out, const char *path);
void al_chat_template_free(al_chat_template *t);
const char *al_chat_template_name(const al_chat_template *t);

/* Renders n messages, appending to text.  add_generation_prompt appends the assistant
 * header so that a model continues as the assistant.  span_start/span_end (each NULL or
 * an array of n) receive per message the [start, end) byte offsets in text->data of its
 * content plus its end marker: what an assistant-only loss trains on. */
int al_chat_render(const al_chat_template *t, const al_message *m, int n, bool add_generation_prompt,
                   al_buf *text, int *span_start, int *span_end);

typedef enum { AL_MASK_ALL, AL_MASK_ASSISTANT, AL_MASK_COMPLETION } al_mask_mode;

/* Renders and tokenizes a conversation; ids and mask (same length, mask 1 = counts in the
 * loss) are appended to.  AL_MASK_ALL: every token; AL_MASK_ASSISTANT: tokens overlapping
 * an assistant span (content + end marker, not the header); AL_MASK_COMPLETION: tokens
 * overlapping the spans of the trailing run of assistant messages (the completion of a
 * conversational prompt-completion pair).  Template markers become single ids when the
 * tokenizer has them, else text.  BOS first when the template asks for it and the
 * tokenizer has one; EOS after the last assistant turn (mask 1) for AL_MASK_ASSISTANT and
 * AL_MASK_COMPLETION when the template asks for it.  A message with no_loss never counts. */
int al_chat_tokenize(const al_chat_template *t, const al_tokenizer *tok, const al_message *m, int n,
                     al_mask_mode mode, al_ints *ids, al_ints *mask);
/* Plain prompt-completion: ids = BOS (if any) + prompt tokens + completion tokens (+ EOS),
 * mask 1 on the completion tokens (and EOS) only.  The completion is tokenized as a
 * continuation (no SentencePiece dummy-prefix space). */
int al_chat_tokenize_pc(const al_tokenizer *tok, const char *prompt, const char *completion, bool add_eos,
                        al_ints *ids, al_ints *mask);
/* A generated answer as text: ids decoded after the token prev, cut at the first of the
 * stop strings (template markers), surrounding whitespace trimmed.  *out is malloc'd. */
int al_chat_answer_text(const al_tokenizer *tok, int prev, const int *ids, int n, const char *const *stops,
                        int n_stops, char **out);
/* The template's marker strings that should become special tokens (owned by t). */
int al_chat_template_specials(const al_chat_template *t, const char ***out, int *n);
/* spec: "chatml", "llama2" (built-in; NULL or "" = chatml), or a template file's path. */
int al_chat_template_open(al_chat_template **out, const char *spec);
/* Template-file text already in memory; path names it in errors ("PATH:LINE: ...") and its
 * base name is the default name. */
int al_chat_template_parse(al_chat_template **out, const char *text, size_t len, const char *path);
/* "chatml" or "llama2" for a built-in template, NULL for one read from a file. */
const char *al_chat_template_builtin_name(const al_chat_template *t);
/* True when tokenization prepends the tokenizer's BOS (the template's "bos" key). */
bool al_chat_template_adds_bos(const al_chat_template *t);
/* Appends t as template-file text that al_chat_template_parse reads back to the same
 * template (every key written; fails for the built-in llama2, which no file expresses). */
int al_chat_template_write(const al_chat_template *t, al_buf *out);
/* Appends t as a Hugging Face chat_template (Jinja) rendering the same text: Meta's own for
 * llama2; for the others, {{ bos_token }} first when t adds a BOS and tok (may be NULL)
 * has one, and eos_token after the last assistant turn when t inserts an EOS. */
int al_chat_template_jinja(const al_chat_template *t, const al_tokenizer *tok, al_buf *out);

/* ---- what travels with a saved model (src/data/model_dir.c) ----
 * As Hugging Face's save_pretrained does, a model directory carries its tokenizer and chat
 * template, so that it can be used alone.  Written by every trainer, `align convert` and
 * `align lora merge`; read by `align chat` and `align generate`. */

/* DIR/tokenizer.json (byte-level kinds) or DIR/tokenizer.bin (SentencePiece kinds, llama2.c
 * format), and DIR/tokenizer_config.json: bos_token, eos_token, additional_special_tokens
 * (every other split-out special, so tokens added in training stay special after a reload
 * even in formats that cannot mark them) and, when tmpl is not NULL, "chat_template" (HF
 * Jinja) plus "align_chat_template" ({"builtin": NAME} or {"file": TEXT}), which loads back
 * exactly.  Each file is written atomically. */
int al_model_dir_save_tokenizer(const char *dir, const al_tokenizer *tok, const al_chat_template *tmpl);
/* The tokenizer file beside a model (model_path: a directory, or a file whose directory is
 * searched): tokenizer.json, tokenizer.bin or tok512.bin; NULL if none.  A GGUF model file
 * that holds a vocabulary (tokenizer.ggml.*) is its own tokenizer.  malloc'd. */
char *al_model_dir_find_tokenizer(const char *model_path);
/* Reads tokenizer_config.json beside model_path, if there is one (else changes nothing).
 * tok (may be NULL): its additional_special_tokens become split-out specials again; a token
 * the tokenizer lacks is an error.  tmpl (may be NULL): receives the saved align chat
 * template, or NULL when there is none; *jinja_only (may be NULL) is then set when the file
 * holds only a Jinja chat_template, which align cannot run. */
int al_model_dir_load_config(const char *model_path, al_tokenizer *tok, al_chat_template **tmpl, bool *jinja_only);
/* Carries the tokenizer and template found beside from_model (al_model_dir_find_tokenizer,
 * al_model_dir_load_config) into to_dir; *copied (may be NULL) tells whether there was a
 * tokenizer to carry (none is not an error). */
int al_model_dir_copy_tokenizer(const char *from_model, const char *to_dir, bool *copied);

/* ---- preference datasets (src/data/pref_dataset.c) ---- */
/* TRL's preference formats, read with the same file rules and located errors as SFT data:
 *   paired:   {"prompt": P, "chosen": C, "rejected": R}, strings (standard) or message
 *             lists (conversational); without "prompt" (HH-RLHF's whole transcripts) the
 *             shared prefix of chosen and rejected becomes the prompt.
 *   unpaired: {"prompt": P, "completion": C, "label": true|false} (KTO).
 * Optional on pairs: "label", the probability that chosen is better (a number in [0, 1],
 * or true/false; 1 when absent), and "margin", a reward-model margin (0 when absent). */
typedef struct al_pref_example {
    bool conversational;
    char *prompt, *chosen, *rejected;  /* standard; unpaired: the completion is in chosen */
    al_message *prompt_msgs, *chosen_msgs, *rejected_msgs;
    int n_prompt_msgs, n_chosen_msgs, n_rejected_msgs;
    double label;         /* paired: P(chosen better); unpaired: 1 desirable, 0 undesirable */
    double margin;
    bool implicit_prompt; /* the prompt was the shared prefix */
    long line;
} al_pref_example;

typedef struct al_pref_dataset {
    bool paired, conversational;
    al_pref_example *ex;
    int n;
    int n_skipped;
    long *skipped_lines;
    int n_skipped_lines_stored;
} al_pref_dataset;

int al_pref_load(al_pref_dataset *d, const char *path, const al_sft_load_opts *o);
void al_pref_free(al_pref_dataset *d);
/* The shared prefix of two transcripts that becomes an implicit prompt: TRL's rule (the
 * common prefix, ending before a space where the texts part), cut back to just after the
 * last "Assistant:" marker when the prefix holds one (HH-RLHF), so that both answers are
 * whole.  Returns its length in bytes. */
size_t al_pref_shared_prefix(const char *a, const char *b);
/* Deterministic split of n items: a seeded shuffle holds out round(fraction * n) of them
 * (at least 1 when fraction > 0, at most n - 1); both index lists keep ascending order. */
int al_split_indices(int n, double held_out_fraction, uint64_t seed, al_ints *train, al_ints *held_out);

/* A tokenized preference example: prompt + answer sequences with their loss masks (1 on the
 * answer's tokens).  Sequences longer than max_len tokens lose prompt tokens from the
 * front (after BOS) first, then answer tokens from the end (TRL's keep_end, then
 * max_completion_length). */
typedef struct al_pref_tokens {
    al_ints chosen, chosen_mask, rejected, rejected_mask; /* unpaired: only chosen */
    bool truncated;
} al_pref_tokens;
/* t: the chat template for conversational data (ignored for standard data). */
int al_pref_tokenize(const al_pref_example *e, const al_chat_template *t, const al_tokenizer *tok, int max_len,
                     al_pref_tokens *out);
void al_pref_tokens_free(al_pref_tokens *p);

/* A synthetic preference task (src/data/synth_pref.c): DIR/sft.jsonl (prompt/completion
 * demonstrations, helpful and rude answers alike), DIR/sft_heldout.jsonl (helpful answers
 * to held-out prompts), DIR/pref.jsonl and DIR/pref_heldout.jsonl (helpful over rude).  The
 * same seed writes the same files; held-out prompts never occur in the training files. */
int al_synth_pref_write(const char *dir, uint64_t seed, int n_train, int n_heldout);

#endif
