/* llama2.c checkpoints: seven int32 header fields, then float32 weights in the same
 * grouped order as align's block (freq_cis tables after rms_final are skipped, and a
 * separate classifier follows when vocab_size is stored negative). */
#include "align/model.h"

#include <string.h>

typedef struct llama2c_header {
    int32_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
} llama2c_header;

int al_model_load_llama2c(al_model *m, const char *path)
{
    al_mapped f;
    if (al_map_file(path, &f))
        return -1;
    llama2c_header h;
    if (f.size < sizeof h) {
        al_unmap_file(&f);
        return al_fail("%s: llama2.c checkpoint: file is %zu bytes, shorter than the 28-byte header", path, f.size);
    }
    memcpy(&h, f.data, sizeof h);
    if (h.vocab_size == INT32_MIN) {
        al_unmap_file(&f);
        return al_fail("%s: llama2.c checkpoint header: vocab_size %d is out of range", path, h.vocab_size);
    }
    al_config c = {
        .dim = h.dim,
        .hidden_dim = h.hidden_dim,
        .n_layers = h.n_layers,
        .n_heads = h.n_heads,
        .n_kv_heads = h.n_kv_heads,
        .head_dim = h.n_heads > 0 ? h.dim / h.n_heads : 0,
        .vocab_size = h.vocab_size < 0 ? -h.vocab_size : h.vocab_size,
        .seq_len = h.seq_len,
        .norm_eps = 1e-5f,
        .rope_theta = 10000.0f,
        .rope = AL_ROPE_INTERLEAVED,
        .tied_embeddings = h.vocab_size > 0,
        .qkv_bias = false,
        .bos_id = 1,
        .eos_id = 2,
    };
    if (h.n_heads > 0 && h.dim % h.n_heads) {
        al_unmap_file(&f);
        return al_fail("%s: llama2.c checkpoint: dim %d is not a multiple of n_heads %d", path, h.dim, h.n_heads);
    }
    if (al_config_validate(&c)) {
        al_unmap_file(&f);
        return al_fail_prefix("%s: llama2.c checkpoint header", path);
    }
    /* The rotary tables sit between rms_final and the untied classifier. */
    size_t n = al_config_param_count(&c);
    size_t n_cls = c.tied_embeddings ? 0 : (size_t)c.vocab_size * (size_t)c.dim;
    size_t n_before_freq = n - n_cls;
    size_t n_freq = (size_t)c.seq_len * (size_t)c.head_dim; /* real + imag halves */
    size_t need = sizeof h + (n + n_freq) * sizeof(float);
    if (f.size != need) {
        al_unmap_file(&f);
        return al_fail("%s: llama2.c checkpoint: expected %zu bytes for this header "
                       "(dim %d, hidden %d, layers %d, heads %d/%d, vocab %d, seq %d), file has %zu",
                       path, need, c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size,
                       c.seq_len, f.size);
    }
    if (al_model_init(m, &c)) {
        al_unmap_file(&f);
        return -1;
    }
    const float *src = (const float *)(f.data + sizeof h);
    memcpy(m->params, src, n_before_freq * sizeof(float));
    if (n_cls)
        memcpy(m->params + n_before_freq, src + n_before_freq + n_freq, n_cls * sizeof(float));
    al_unmap_file(&f);
    return 0;
}
