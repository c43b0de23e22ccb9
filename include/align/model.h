/* align model: a Llama-family decoder (RMSNorm, rotary embeddings, SwiGLU, grouped-query
 * attention, tied or untied embeddings, optional q/k/v biases) or a GPT-2 decoder (learned
 * positions, LayerNorm with biases, tanh GELU, biases on every projection) in fp32.
 *
 * Memory: parameters live in one contiguous block, gradients in another of the same
 * layout, training activations in a third sized for (batch, length) before use.
 * The parameter order is llama2.c's, grouped by kind across layers, so a gradient
 * compares element for element with llama2.c/PyTorch references:
 *   tok_emb, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final, [wcls], [bq, bk, bv], [score]
 * and for GPT-2 (llm.c's order, with q/k/v split):
 *   tok_emb, pos_emb, rms_att, bln_att, wq, wk, wv, bq, bk, bv, wo, bo, rms_ffn, bln_ffn,
 *   w1, b1, w2, b2, rms_final, bln_final, [wcls], [score]
 * Matrices are row-major [out][in] (y = W x).  w1 is the gate, w3 the up, w2 the down
 * projection.  wcls exists only when embeddings are untied; biases only with qkv_bias;
 * score only for a sequence classifier (n_labels > 0: a reward model keeps the language
 * model head too, so it can still be read as a causal LM). */
#ifndef ALIGN_MODEL_H
#define ALIGN_MODEL_H

#include "align/core.h"
#include "align/tokenizer.h"

typedef enum {
    AL_ROPE_INTERLEAVED = 0, /* llama2.c / Meta: rotate pairs (x[2i], x[2i+1]) */
    AL_ROPE_HALF = 1,        /* Hugging Face: rotate pairs (x[i], x[i + head_dim/2]) */
} al_rope_layout;

typedef enum {
    AL_ARCH_LLAMA = 0, /* RMSNorm, rotary positions, SwiGLU MLP (w1 gate, w3 up, w2 down) */
    AL_ARCH_GPT2 = 1,  /* GPT-2 / nanoGPT / llm.c: token + learned position embeddings, pre-LayerNorm
                        * (weight rms_*, bias bln_*), attention and MLP with biases everywhere, MLP
                        * w2 gelu_tanh(w1 x + b1) + b2 (no w3), tied or untied classifier, no rope */
} al_arch;

typedef struct al_config {
    al_arch arch;    /* AL_ARCH_LLAMA (0) unless set */
    int dim;         /* hidden size */
    int hidden_dim;  /* MLP intermediate size */
    int n_layers;
    int n_heads;
    int n_kv_heads;  /* < n_heads: grouped-query attention */
    int head_dim;    /* usually dim / n_heads */
    int vocab_size;
    int seq_len;     /* maximum positions */
    float norm_eps;
    float rope_theta;
    al_rope_layout rope;
    bool tied_embeddings;
    bool qkv_bias;
    int bos_id, eos_id;
    int n_labels;    /* > 0: a sequence-classification head (reward model), score [n_labels][dim] */
} al_config;

/* Views into one parameter (or gradient) block. */
typedef struct al_params {
    float *tok_emb;   /* [vocab][dim] */
    float *rms_att;   /* [L][dim] */
    float *wq;        /* [L][n_heads*head_dim][dim] */
    float *wk;        /* [L][n_kv_heads*head_dim][dim] */
    float *wv;        /* [L][n_kv_heads*head_dim][dim] */
    float *wo;        /* [L][dim][n_heads*head_dim] */
    float *rms_ffn;   /* [L][dim] */
    float *w1;        /* [L][hidden][dim] gate */
    float *w2;        /* [L][dim][hidden] down */
    float *w3;        /* [L][hidden][dim] up */
    float *rms_final; /* [dim] */
    float *wcls;      /* [vocab][dim]; aliases tok_emb when tied */
    float *bq;        /* [L][n_heads*head_dim] or NULL */
    float *bk;        /* [L][n_kv_heads*head_dim] or NULL */
    float *bv;        /* [L][n_kv_heads*head_dim] or NULL */
    float *score;     /* [n_labels][dim] or NULL: HF's score.weight, read at a sequence's last token */
    /* GPT-2 only (NULL for Llama; w3 is NULL for GPT-2, and rms_* hold the LayerNorm weights) */
    float *pos_emb;    /* [seq_len][dim] learned positions (wpe) */
    float *bln_att;    /* [L][dim] LayerNorm biases */
    float *bln_ffn;    /* [L][dim] */
    float *bln_final;  /* [dim] */
    float *bo;         /* [L][dim] attention output bias */
    float *b1;         /* [L][hidden] MLP up (c_fc) bias */
    float *b2;         /* [L][dim] MLP down (c_proj) bias */
} al_params;

/* One named tensor of the layout, for savers, loaders and `align info`. */
typedef struct al_tensor_desc {
    const char *kind; /* "wq", "rms_att", ... */
    int layer;        /* -1 for non-layer tensors */
    int rows, cols;   /* cols == 0 for vectors */
    size_t offset;    /* in floats from the block start */
} al_tensor_desc;

typedef struct al_model {
    al_config cfg;
    size_t n_params;
    float *params; /* one block of n_params floats */
    al_params w;
    float *grads;  /* NULL until al_model_alloc_grads */
    al_params g;
    struct al_lora *lora; /* attached LoRA adapters or NULL (src/model/lora.c) */
} al_model;

/* ---- configuration and layout ---- */
int al_config_validate(const al_config *c);
size_t al_config_param_count(const al_config *c);
void al_params_bind(al_params *p, const al_config *c, float *base);
/* Fills up to max descriptors in storage order; returns how many the layout has. */
int al_tensor_layout(const al_config *c, al_tensor_desc *out, int max);
void al_config_print(const al_config *c, FILE *out);

/* ---- lifecycle ---- */
int al_model_init(al_model *m, const al_config *c); /* zeroed parameters */
int al_model_alloc_grads(al_model *m);
void al_model_zero_grads(al_model *m);
void al_model_free(al_model *m);

/* ---- files ---- */
/* Detects the format: a directory or .safetensors (HF, config.json beside it),
 * a .gguf file (or one starting with "GGUF"), else a llama2.c .bin checkpoint. */
int al_model_load(al_model *m, const char *path);
int al_model_load_llama2c(al_model *m, const char *path);
/* path: a directory holding model.safetensors + config.json, or the .safetensors file.
 * GPT-2 checkpoints (GPT2LMHeadModel, or GPT2Model without the "transformer." prefix) load
 * as AL_ARCH_GPT2: Conv1D weights transposed to [out][in], c_attn split into q, k, v. */
int al_model_load_safetensors(al_model *m, const char *path);
/* Writes DIR/model.safetensors (F32) and DIR/config.json atomically, in HF naming and
 * HF's half-split rotary layout (q/k rows permuted if the model is interleaved); a GPT-2
 * model in GPT2LMHeadModel's names and layout (docs/formats.md, "GPT-2"). */
int al_model_save_safetensors(const al_model *m, const char *dir);
/* A llama.cpp GGUF file (general.architecture "llama" or "qwen2"; tensors F32, F16, BF16,
 * Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, dequantized to float32).  Llama files hold q/k rows
 * in interleaved rotary order (cfg.rope = AL_ROPE_INTERLEAVED), Qwen2 files in half-split
 * order (AL_ROPE_HALF); the rows are kept as stored.  docs/formats.md. */
int al_model_load_gguf(al_model *m, const char *path);
/* Writes path atomically as GGUF v3 (alignment 32; not for GPT-2 models yet): "llama" with
 * interleaved q/k rows, or "qwen2" with half-split rows for a model with q/k/v biases (rows
 * permuted as needed).
 * type (F32, F16, BF16, Q8_0, Q4_0) applies to matrices; norms and biases stay F32, and a
 * matrix whose rows are not whole 32-element blocks falls back to F16 under Q8_0/Q4_0.
 * tok (may be NULL; its vocabulary size must be the model's) goes in as tokenizer.ggml.*. */
int al_model_save_gguf(const al_model *m, const al_tokenizer *tok, const char *path, al_ggml_type type);
/* How many matrices al_model_save_gguf stores as F16 instead of type (rows not whole blocks). */
int al_model_gguf_fallback_count(const al_config *c, al_ggml_type type);
/* Permutes q/k rows (and biases) of an interleaved model into HF's half-split order in
 * place and switches its rope layout; the function computed is unchanged.  Trainers do
 * this first so checkpoints (HF layout) and optimizer state agree. */
int al_model_to_half_rope(al_model *m);
/* Parses an HF config.json (LlamaForCausalLM / MistralForCausalLM / Qwen2ForCausalLM,
 * GPT2LMHeadModel / GPT2Model, and the ForSequenceClassification forms) into c. */
int al_config_from_hf_json(al_config *c, const char *json_text, size_t len, const char *origin);
/* Writes c as an HF config.json (LlamaForCausalLM, Qwen2ForCausalLM with qkv_bias, or
 * GPT2LMHeadModel for AL_ARCH_GPT2, which needs head_dim = dim / n_heads). */
int al_config_to_hf_json(const al_config *c, al_buf *out);

/* ---- training forward / backward ----
 * A training context owns the activation block for a fixed (B, T).  The forward pass
 * reads tokens[B*T] and targets[B*T] and produces, per position, the log-probability of
 * the target token (logp) and the full logits.  Every loss in align is a function of
 * those log-probabilities (cross-entropy, masked SFT, DPO, ...), so the backward pass
 * takes dloss/dlogp per position and accumulates into the model's gradient block.
 * pos[B*T] (optional) gives rotary positions; seg_start[B*T] (optional) gives, per
 * position, the first position of its own sample in the row, so packed samples never
 * attend to each other.  Targets < 0 are ignored (logp 0, no gradient). */
typedef struct al_train_ctx al_train_ctx;
al_train_ctx *al_train_ctx_new(const al_model *m, int B, int T);
void al_train_ctx_free(al_train_ctx *ctx);
/* The context for B rows of T positions from now on, as a new one would be (its modes and
 * temperature kept), reusing its memory when the shape fits: a trainer whose batches change
 * length avoids allocating and first-touching a new context each time. */
int al_train_ctx_reshape(al_train_ctx *ctx, int B, int T);
size_t al_train_ctx_bytes(const al_config *c, int B, int T); /* the activation plan */
/* The same plan for this model, including its attached LoRA adapters' activations. */
size_t al_train_ctx_model_bytes(const al_model *m, int B, int T);
int al_forward(al_train_ctx *ctx, const int *tokens, const int *targets, const int *pos,
               const int *seg_start);
const float *al_ctx_logp(const al_train_ctx *ctx);   /* [B*T] */
const float *al_ctx_logits(const al_train_ctx *ctx); /* [B*T][vocab] */
void al_backward(al_train_ctx *ctx, al_model *m, const float *dlogp);
/* The trunk alone, for heads other than the language model's (reward models): the
 * forward stops at the final RMSNorm, whose output [B*T][dim] al_ctx_hidden returns; the
 * backward takes dloss/d(that output).  Heads compute their own weights' gradients. */
int al_forward_hidden(al_train_ctx *ctx, const int *tokens, const int *pos, const int *seg_start);
const float *al_ctx_hidden(const al_train_ctx *ctx); /* [B*T][dim] */
void al_backward_hidden(al_train_ctx *ctx, al_model *m, const float *d_hidden);
/* Exact mode (off by default): every forward product runs on the weights transposed
 * afresh at each forward (src/model/ops_transposed.c) and attention through one row
 * kernel, so a position's logits depend on its own row alone and equal the exact
 * decoder's (al_decoder_set_exact) bit for bit.  The backward pass is unchanged.  Online
 * RL trains in this mode.  Call after attaching adapters. */
int al_train_ctx_set_exact(al_train_ctx *ctx, bool on);
/* Sampling temperature (1 by default): the forward's logits (al_ctx_logits) and
 * log-probabilities are those of logits / temperature, and the backward differentiates
 * through the scaling, as TRL's trainers score completions sampled at a temperature. */
int al_train_ctx_set_temperature(al_train_ctx *ctx, float temperature);
/* log softmax(logits / temperature)[token] for one row of V logits, by the same code
 * as al_forward (scratch: V floats), so a sampled token's log-probability equals the
 * training forward's when the logits do (exact mode). */
float al_logprob(const float *logits, int V, float temperature, int token, float *scratch);
/* Entropy of softmax(p) and KL(softmax(p) || softmax(r)) over one row of V logits (r may be
 * p), in float with vectorized exponentials: the per-token figures RL logs beside its KL
 * estimator.  Identical rows give a KL of exactly 0. */
void al_softmax_entropy_kl(const float *p, const float *r, int V, double *entropy, double *kl);
/* Mean cross-entropy over targets >= 0 (forward + convenience). */
float al_ctx_mean_nll(const al_train_ctx *ctx, const int *targets);

/* ---- inference with a KV cache ----
 * A decoder holds the cache of n_seq independent sequences.  Each step feeds one token
 * to each listed sequence at its own next position and returns logits [n][vocab]. */
typedef struct al_decoder al_decoder;
/* What the KV cache holds: floats (exact), or IEEE halves, half the memory and the memory
 * traffic of attention, at a rounding of each cached key and value (llama.cpp's default). */
typedef enum { AL_KV_F32 = 0, AL_KV_F16 = 1 } al_kv_type;
int al_kv_type_parse(const char *s, al_kv_type *t); /* "f32" or "f16" */
/* How the decoder stores its copy of the weight matrices (al_decoder_set_weights): floats,
 * bfloat16 (round to nearest even, NaN kept NaN), or int8 with one scale per output row
 * (s = max|w_row| / 127, q = round-to-nearest(w / s) in [-127, 127], value = fl(q * s)).
 * The seven per-layer matrices and the classifier; embeddings, norms and biases stay float. */
typedef enum { AL_W_F32 = 0, AL_W_BF16 = 1, AL_W_INT8 = 2 } al_weight_type;
const char *al_weight_type_name(al_weight_type t); /* "f32", "bf16", "int8" */
int al_weight_type_parse(const char *s, al_weight_type *t);
al_decoder *al_decoder_new(const al_model *m, int n_seq, int max_len); /* AL_KV_F32 */
al_decoder *al_decoder_new_kv(const al_model *m, int n_seq, int max_len, al_kv_type kv);
void al_decoder_free(al_decoder *d);
size_t al_decoder_bytes(const al_config *c, int n_seq, int max_len, al_kv_type kv);
void al_decoder_reset(al_decoder *d, int seq); /* seq < 0: all */
int al_decoder_pos(const al_decoder *d, int seq);
/* Exact mode (off by default): a step's logits equal al_forward's logits for the same
 * sequence bit for bit, on any batch composition, with enabled LoRA adapters applied as
 * training applies them (dropout off).  Online RL samples in this mode, so the policy that
 * sampled and the policy that trains are the same function to the last bit.  Slower than
 * the default kernels for small models.  Call after attaching adapters. */
int al_decoder_set_exact(al_decoder *d, bool on);
/* Weight-only reduced precision (AL_W_F32 by default): the decoder multiplies by its own
 * transposed copy of the matrices held as bf16 (half the bytes) or int8 (a quarter), for
 * every model size, widening each weight to float inside the kernel; the logits equal those
 * of float decoding on weights rounded to the type, bit for bit.  Works in exact mode too,
 * where a step equals al_forward's under al_train_ctx_set_weights(ctx, t).  The copy is
 * made here and again by al_decoder_set_exact (after the weights moved). */
int al_decoder_set_weights(al_decoder *d, al_weight_type t);
/* The exact training forward on weights rounded to t as it transposes them, so it computes
 * what the decoder with al_decoder_set_weights(d, t) computes, bit for bit (online RL's
 * ratio stays exactly 1).  The backward runs on the float weights and updates them: a
 * straight-through estimator (the rounding's derivative taken as 1).  Needs exact mode
 * (al_train_ctx_set_exact(ctx, false) returns to floats). */
int al_train_ctx_set_weights(al_train_ctx *ctx, al_weight_type t);
/* Sequence dst continues from src's cache and position (G samples share one prompt). */
int al_decoder_copy_seq(al_decoder *d, int dst, int src);
/* Sequence dst continues from src's first n positions (n <= src's position): a prompt read
 * once serves every request that begins with it.  Copies only the tiles that hold them. */
int al_decoder_copy_prefix(al_decoder *d, int dst, int src, int n);
/* seqs may be NULL for 0..n-1.  Returns a pointer to logits [n][vocab] owned by d. */
float *al_decoder_step(al_decoder *d, const int *seqs, const int *tokens, int n);
/* The same step, with fn called once for each row i < n and its logits, by the thread that
 * computed them, before the step returns (rows in any order, several at once): sampling
 * runs inside the step's parallel region instead of in a second one. */
typedef void (*al_decoder_row_fn)(void *user, int row, float *logits);
float *al_decoder_step_each(al_decoder *d, const int *seqs, const int *tokens, int n, al_decoder_row_fn fn,
                            void *user);
/* Feeds n tokens to one sequence at its next positions as one batch of rows (the products
 * through sgemm on large models), the same numbers as n single steps on the decoder's
 * row-independent kernels.  No logits: a prompt's last token is fed by a step, whose
 * logits give the first new token. */
int al_decoder_prefill(al_decoder *d, int seq, const int *tokens, int n);
/* The same step on the calling thread alone, through the decoder's scratch rows
 * [row0, row0 + n); returns those rows' logits [n][vocab].  Threads may call it at once
 * with disjoint row ranges and disjoint sequences: a loop that owns its threads (RL
 * rollouts sample and decode in one parallel region) needs no fork per step. */
float *al_decoder_step_rows(al_decoder *d, const int *seqs, const int *tokens, int n, int row0);

/* ---- sampling ---- */
typedef struct al_sampler_opts {
    float temperature;    /* 0 = greedy */
    int top_k;            /* 0 = off */
    float top_p;          /* 1 = off */
    float min_p;          /* 0 = off */
    float repeat_penalty; /* 1 = off (CTRL-style: divide positive logits, multiply negative) */
    int repeat_last_n;    /* window for the penalty; 0 = whole history */
    uint64_t seed;
    bool llama2c;         /* reproduce run.c's sampler bit for bit (temperature, top_p only) */
} al_sampler_opts;

typedef struct al_sampler {
    al_sampler_opts o;
    int vocab;
    uint64_t rng;
    void *scratch;  /* vocab (prob, index) pairs for the truncating samplers */
    uint8_t *seen; /* repetition penalty marks */
} al_sampler;
al_sampler_opts al_sampler_defaults(void);
int al_sampler_init(al_sampler *s, int vocab, const al_sampler_opts *o);
void al_sampler_free(al_sampler *s);
/* logits are modified in place; history (may be NULL) feeds the repetition penalty. */
int al_sample(al_sampler *s, float *logits, const int *history, int n_history);

/* ---- generation ----
 * Continues n prompts through one decoder: up to max_batch at once, each joining as
 * another finishes (continuous batching).  A prompt is read in one batch of rows, or
 * copied from a sequence that read the same prompt (G samples of one prompt read it once).
 * Each sequence has its own sampler seeded with opts->sampling.seed + its index, so results
 * do not depend on how many sequences share the batch.  A sequence ends at max_new_tokens, at a stop
 * id, at a stop string (needs tok; the text up to the string is kept), or when the
 * context is full. */
typedef struct al_gen_opts {
    int max_new_tokens;
    al_sampler_opts sampling;
    const int *stop_ids; /* e.g. EOS */
    int n_stop_ids;
    const char *const *stop_strings;
    int n_stop_strings;
    int max_batch;  /* sequences decoded at once (0 = all n); the others queue and take the
                     * place of finished ones (continuous batching) */
    al_kv_type kv;  /* KV cache type (AL_KV_F32 = 0 by default) */
    al_weight_type weights; /* the decoder's weight storage (AL_W_F32 = 0 by default) */
    struct al_gen_stats *stats; /* where the run's timings go (may be NULL) */
} al_gen_opts;

/* How a generation's time divides: making the decoder (its cache and weight copies are
 * allocated and first touched here, a fixed cost) and the steps themselves (prompt reads,
 * decoding, sampling), the part that grows with the tokens: llama.cpp's "load" vs "eval". */
typedef struct al_gen_stats {
    double setup_seconds;
    double step_seconds;
} al_gen_stats;

typedef struct al_gen_result {
    al_ints ids;     /* generated ids only (no prompt) */
    int finish;      /* AL_FINISH_* */
} al_gen_result;

enum { AL_FINISH_LENGTH = 0, AL_FINISH_STOP_ID = 1, AL_FINISH_STOP_STRING = 2, AL_FINISH_CONTEXT = 3 };

/* Called after every step with the sequences that produced a token; may be NULL. */
typedef void (*al_gen_callback)(void *user, int seq, int id);

int al_generate(const al_model *m, const al_tokenizer *tok, const al_ints *prompts, int n, const al_gen_opts *opts,
                al_gen_result *results, al_gen_callback cb, void *user);
void al_gen_results_free(al_gen_result *r, int n);

/* ---- LoRA adapters (src/model/lora.c) ----
 * Low-rank adapters on the linear projections of every layer: a targeted projection
 * computes y = W x + (alpha/rank) B A dropout(x), with A [rank][in] and B [out][rank].
 * The adapters' parameters live in one block (lora->params) and their gradients in
 * another of the same layout (lora->grads), per layer and target in the order
 * q, k, v, o, gate, up, down, A before B.  While adapters are attached the base model is
 * frozen: al_backward computes no base gradients (m->grads may even be NULL) and
 * accumulates only into lora->grads.  With the adapters disabled, al_forward computes
 * exactly the base model (bit for bit): the frozen base then serves as the DPO reference
 * model without a second copy in memory.  A training context plans its LoRA activations
 * when it is created, so attach adapters before al_train_ctx_new.  The KV-cache decoder
 * (al_decoder, al_generate) ignores adapters unless in exact mode (al_decoder_set_exact):
 * merge them first (al_lora_merge).
 * Adapters must be detached (al_lora_detach or al_lora_merge) before al_model_free. */
enum {
    AL_LORA_Q = 1u << 0,    /* self_attn.q_proj (wq) */
    AL_LORA_K = 1u << 1,    /* self_attn.k_proj (wk) */
    AL_LORA_V = 1u << 2,    /* self_attn.v_proj (wv) */
    AL_LORA_O = 1u << 3,    /* self_attn.o_proj (wo) */
    AL_LORA_GATE = 1u << 4, /* mlp.gate_proj (w1) */
    AL_LORA_UP = 1u << 5,   /* mlp.up_proj (w3) */
    AL_LORA_DOWN = 1u << 6, /* mlp.down_proj (w2) */
    AL_LORA_ALL = 0x7fu,
};
#define AL_LORA_N_TARGETS 7

typedef struct al_lora_config {
    int rank;         /* r >= 1 */
    float alpha;      /* scale = alpha / rank */
    float dropout;    /* on the adapter input, in [0, 1); 0 = none */
    unsigned targets; /* AL_LORA_* bitmask */
    uint64_t seed;    /* initialization of A and the dropout masks */
} al_lora_config;

/* One adapted projection; A == NULL when the target is not adapted. */
typedef struct al_lora_adapter {
    float *A, *B;   /* [rank][in], [out][rank] in lora->params */
    float *gA, *gB; /* the same places in lora->grads */
    int in, out;
} al_lora_adapter;

typedef struct al_lora {
    al_lora_config c;
    float scale;          /* alpha / rank */
    int n_layers;
    size_t n_params;
    float *params, *grads;  /* one block each, n_params floats */
    al_lora_adapter *ad;    /* [n_layers][AL_LORA_N_TARGETS], target index = bit position */
    bool enabled;           /* false: al_forward computes the base model */
    bool train;             /* false: no dropout (evaluation); true after attach */
    uint64_t dropout_step;  /* advanced by every al_forward that applies dropout */
} al_lora;

/* Names of the targets in PEFT/HF ("q_proj", ...), by bit position. */
const char *al_lora_target_name(int t);
/* Parses "q,k,v,o,gate,up,down" (also "q_proj,..." and "all") into a bitmask. */
int al_lora_parse_targets(const char *list, unsigned *out);
/* Allocates adapters and their gradients (zeroed): A ~ U(-1/sqrt(in), 1/sqrt(in)) (PEFT's
 * kaiming_uniform(a=sqrt(5))) from c->seed, B = 0, so the model is unchanged; enabled.
 * Llama-layout models only: a GPT-2 model is refused. */
int al_lora_attach(al_model *m, const al_lora_config *c);
void al_lora_set_enabled(al_model *m, bool on);
void al_lora_detach(al_model *m); /* frees the adapters; no-op without */
void al_lora_zero_grads(al_model *m);
/* Writes DIR/adapter_model.safetensors (F32, PEFT names
 * base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight, ...) and
 * DIR/adapter_config.json atomically.  q/k lora_B rows of an interleaved-rope model are
 * permuted to HF's half-split order, as al_model_save_safetensors does for wq/wk. */
int al_lora_save(const al_model *m, const char *dir);
/* Attaches the adapters in DIR (PEFT layout; F32, F16 or BF16) to m, which must have none. */
int al_lora_load(al_model *m, const char *dir);
/* W += (alpha/rank) B A for every adapted projection, then detaches the adapters. */
int al_lora_merge(al_model *m);

#endif
