/* Configuration checks and the single parameter block's layout. */
#include "align/model.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

int al_config_validate(const al_config *c)
{
    if (c->dim <= 0 || c->hidden_dim <= 0 || c->n_layers <= 0 || c->n_heads <= 0 || c->n_kv_heads <= 0 ||
        c->vocab_size <= 0 || c->seq_len <= 0 || c->head_dim <= 0)
        return al_fail("config: sizes must be positive (dim %d, hidden_dim %d, n_layers %d, n_heads %d, "
                       "n_kv_heads %d, head_dim %d, vocab_size %d, seq_len %d)",
                       c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim,
                       c->vocab_size, c->seq_len);
    if (c->n_heads % c->n_kv_heads)
        return al_fail("config: n_heads (%d) must be a multiple of n_kv_heads (%d)", c->n_heads, c->n_kv_heads);
    if (c->n_labels < 0 || c->n_labels > 65536)
        return al_fail("config: n_labels (%d) must be in [0, 65536]", c->n_labels);
    if (c->arch != AL_ARCH_LLAMA && c->arch != AL_ARCH_GPT2)
        return al_fail("config: unknown architecture %d", (int)c->arch);
    if (c->arch == AL_ARCH_GPT2 && (c->n_kv_heads != c->n_heads || !c->qkv_bias))
        return al_fail("config: GPT-2 has as many key/value heads as heads (%d, %d) and q/k/v biases",
                       c->n_heads, c->n_kv_heads);
    if (c->arch == AL_ARCH_LLAMA && c->head_dim % 2)
        return al_fail("config: head_dim (%d) must be even for rotary embeddings", c->head_dim);
    /* Guard against sizes whose products overflow size_t arithmetic or are absurd. */
    if (c->dim > 65536 || c->hidden_dim > 262144 || c->n_layers > 1024 || c->n_heads > 1024 ||
        c->vocab_size > 4 * 1024 * 1024 || c->seq_len > 1024 * 1024 || c->head_dim > 4096)
        return al_fail("config: sizes out of supported range");
    if (!(c->norm_eps > 0) || (c->arch == AL_ARCH_LLAMA && !(c->rope_theta > 0)))
        return al_fail("config: norm_eps and rope_theta must be positive");
    return 0;
}

typedef void (*layout_visit)(void *user, const al_tensor_desc *d);

/* Walks the layout in storage order; the one place the order is written down.  Fills
 * out[0 .. max), calls visit (may be NULL) on every tensor, and sets *total (may be NULL)
 * to the block's size in floats. */
static int walk_layout(const al_config *c, al_tensor_desc *out, int max, size_t *total, layout_visit visit,
                       void *user)
{
    const int L = c->n_layers, D = c->dim, H = c->hidden_dim;
    const int qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    int n = 0;
    size_t off = 0;
#define ADD(KIND, LAYER, ROWS, COLS)                                                           \
    do {                                                                                       \
        al_tensor_desc desc_ = {KIND, LAYER, ROWS, COLS, off};                                 \
        if (n < max)                                                                           \
            out[n] = desc_;                                                                    \
        if (visit)                                                                             \
            visit(user, &desc_);                                                               \
        n++;                                                                                   \
        off += (size_t)(ROWS) * (size_t)((COLS) ? (COLS) : 1);                                 \
    } while (0)
#define PER_LAYER(KIND, ROWS, COLS)                                                            \
    for (int l = 0; l < L; l++)                                                                \
    ADD(KIND, l, ROWS, COLS)
    ADD("tok_emb", -1, c->vocab_size, D);
    if (c->arch == AL_ARCH_GPT2) {
        ADD("pos_emb", -1, c->seq_len, D);
        PER_LAYER("rms_att", D, 0);
        PER_LAYER("bln_att", D, 0);
        PER_LAYER("wq", qd, D);
        PER_LAYER("wk", kvd, D);
        PER_LAYER("wv", kvd, D);
        PER_LAYER("bq", qd, 0);
        PER_LAYER("bk", kvd, 0);
        PER_LAYER("bv", kvd, 0);
        PER_LAYER("wo", D, qd);
        PER_LAYER("bo", D, 0);
        PER_LAYER("rms_ffn", D, 0);
        PER_LAYER("bln_ffn", D, 0);
        PER_LAYER("w1", H, D);
        PER_LAYER("b1", H, 0);
        PER_LAYER("w2", D, H);
        PER_LAYER("b2", D, 0);
        ADD("rms_final", -1, D, 0);
        ADD("bln_final", -1, D, 0);
        if (!c->tied_embeddings)
            ADD("wcls", -1, c->vocab_size, D);
    } else {
        PER_LAYER("rms_att", D, 0);
        PER_LAYER("wq", qd, D);
        PER_LAYER("wk", kvd, D);
        PER_LAYER("wv", kvd, D);
        PER_LAYER("wo", D, qd);
        PER_LAYER("rms_ffn", D, 0);
        PER_LAYER("w1", H, D);
        PER_LAYER("w2", D, H);
        PER_LAYER("w3", H, D);
        ADD("rms_final", -1, D, 0);
        if (!c->tied_embeddings)
            ADD("wcls", -1, c->vocab_size, D);
        if (c->qkv_bias) {
            PER_LAYER("bq", qd, 0);
            PER_LAYER("bk", kvd, 0);
            PER_LAYER("bv", kvd, 0);
        }
    }
    if (c->n_labels > 0)
        ADD("score", -1, c->n_labels, D);
#undef PER_LAYER
#undef ADD
    if (total)
        *total = off;
    return n;
}

int al_tensor_layout(const al_config *c, al_tensor_desc *out, int max) { return walk_layout(c, out, max, NULL, NULL, NULL); }

size_t al_config_param_count(const al_config *c)
{
    size_t n = 0;
    walk_layout(c, NULL, 0, &n, NULL, NULL);
    return n;
}

struct bind_state {
    al_params *p;
    float *base;
};

static void bind_tensor(void *user, const al_tensor_desc *d)
{
    static const struct {
        const char *kind;
        size_t field;
    } fields[] = {
#define F(name) {#name, offsetof(al_params, name)}
        F(tok_emb), F(rms_att), F(wq), F(wk),      F(wv),        F(wo), F(rms_ffn), F(w1),
        F(w2),      F(w3),      F(rms_final), F(wcls), F(bq),    F(bk), F(bv),      F(score),
        F(pos_emb), F(bln_att), F(bln_ffn), F(bln_final), F(bo), F(b1), F(b2),
#undef F
    };
    const struct bind_state *st = user;
    if (d->layer > 0)
        return;
    for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++)
        if (!strcmp(fields[f].kind, d->kind))
            *(float **)((char *)st->p + fields[f].field) = st->base + d->offset;
}

/* Points every al_params field at its tensor's first (layer 0) element; absent ones NULL. */
void al_params_bind(al_params *p, const al_config *c, float *base)
{
    memset(p, 0, sizeof *p);
    struct bind_state st = {p, base};
    walk_layout(c, NULL, 0, NULL, bind_tensor, &st);
    if (c->tied_embeddings)
        p->wcls = p->tok_emb;
}

void al_config_print(const al_config *c, FILE *out)
{
    const bool gpt2 = c->arch == AL_ARCH_GPT2;
    fprintf(out, "arch %s\n", gpt2 ? "gpt2 (LayerNorm, learned positions, GELU MLP, biases)"
                                  : "llama (RMSNorm, rotary positions, SwiGLU MLP)");
    fprintf(out, "dim %d  hidden_dim %d  layers %d  heads %d  kv_heads %d  head_dim %d\n", c->dim, c->hidden_dim,
            c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim);
    if (gpt2)
        fprintf(out, "vocab %d  seq_len %d  norm_eps %g  positions learned (wpe)\n", c->vocab_size, c->seq_len,
                (double)c->norm_eps);
    else
        fprintf(out, "vocab %d  seq_len %d  norm_eps %g  rope_theta %g  rope %s\n", c->vocab_size, c->seq_len,
                (double)c->norm_eps, (double)c->rope_theta,
                c->rope == AL_ROPE_INTERLEAVED ? "interleaved (llama2.c)" : "half-split (HF)");
    fprintf(out, "embeddings %s  qkv_bias %s  bos %d  eos %d%s\n", c->tied_embeddings ? "tied" : "untied",
            c->qkv_bias ? "yes" : "no", c->bos_id, c->eos_id,
            c->n_labels > 0 ? "  head: score (sequence classifier / reward model)" : "");
}

int al_model_init(al_model *m, const al_config *c)
{
    memset(m, 0, sizeof *m);
    if (al_config_validate(c))
        return -1;
    m->cfg = *c;
    m->n_params = al_config_param_count(c);
    m->params = al_alloc(m->n_params * sizeof(float));
    if (!m->params)
        return -1;
    al_params_bind(&m->w, c, m->params);
    return 0;
}

int al_model_alloc_grads(al_model *m)
{
    if (m->grads)
        return 0;
    m->grads = al_alloc(m->n_params * sizeof(float));
    if (!m->grads)
        return -1;
    al_params_bind(&m->g, &m->cfg, m->grads);
    return 0;
}

void al_model_zero_grads(al_model *m)
{
    if (m->grads)
        memset(m->grads, 0, m->n_params * sizeof(float));
}

void al_model_free(al_model *m)
{
    al_lora_detach(m);
    al_free(m->params);
    al_free(m->grads);
    memset(m, 0, sizeof *m);
}

/* Per head: new row j < hd/2 is old row 2j, new row hd/2 + j is old row 2j + 1. */
static int permute_heads(float *w, int n_heads, int hd, int cols)
{
    size_t head = (size_t)hd * cols;
    float *tmp = malloc(head * sizeof *tmp);
    if (!tmp)
        return al_fail("out of memory");
    for (int h = 0; h < n_heads; h++) {
        float *base = w + (size_t)h * head;
        memcpy(tmp, base, head * sizeof *tmp);
        for (int j = 0; j < hd; j++) {
            int old = j < hd / 2 ? 2 * j : 2 * (j - hd / 2) + 1;
            memcpy(base + (size_t)j * cols, tmp + (size_t)old * cols, (size_t)cols * sizeof *tmp);
        }
    }
    free(tmp);
    return 0;
}

int al_model_to_half_rope(al_model *m)
{
    al_config *c = &m->cfg;
    if (c->rope == AL_ROPE_HALF || c->arch == AL_ARCH_GPT2) /* GPT-2 has no rotary embeddings */
        return 0;
    const int L = c->n_layers, D = c->dim, hd = c->head_dim;
    const int qd = c->n_heads * hd, kvd = c->n_kv_heads * hd;
    for (int l = 0; l < L; l++) {
        if (permute_heads(m->w.wq + (size_t)l * qd * D, c->n_heads, hd, D) ||
            permute_heads(m->w.wk + (size_t)l * kvd * D, c->n_kv_heads, hd, D))
            return -1;
        if (c->qkv_bias && (permute_heads(m->w.bq + (size_t)l * qd, c->n_heads, hd, 1) ||
                            permute_heads(m->w.bk + (size_t)l * kvd, c->n_kv_heads, hd, 1)))
            return -1;
    }
    c->rope = AL_ROPE_HALF;
    return 0;
}
