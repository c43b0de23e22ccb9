/* HF config.json parsing: Llama, Mistral, Qwen2, defaults, explicit head_dim, errors
 * that name the field, and the writer's round trip. */
#include "align/model.h"
#include "test.h"

static bool config_eq(const al_config *a, const al_config *b)
{
    return a->dim == b->dim && a->hidden_dim == b->hidden_dim && a->n_layers == b->n_layers &&
           a->n_heads == b->n_heads && a->n_kv_heads == b->n_kv_heads && a->head_dim == b->head_dim &&
           a->vocab_size == b->vocab_size && a->seq_len == b->seq_len && a->norm_eps == b->norm_eps &&
           a->rope_theta == b->rope_theta && a->rope == b->rope && a->tied_embeddings == b->tied_embeddings &&
           a->qkv_bias == b->qkv_bias && a->bos_id == b->bos_id && a->eos_id == b->eos_id;
}

static int parse(al_config *c, const char *json)
{
    return al_config_from_hf_json(c, json, strlen(json), "config.json");
}

/* The config must be rejected with a message containing want. */
static void expect_error(const char *json, const char *want)
{
    al_config c;
    memset(&c, 0x5a, sizeof c);
    al_config before = c;
    int rc = parse(&c, json);
    CHECKF(rc == -1, "accepted: %s", json);
    CHECKF(rc == -1 && strstr(al_errmsg(), want), "message '%s' lacks '%s'", al_errmsg(), want);
    CHECKF(!memcmp(&c, &before, sizeof c), "config modified on failure");
}

static void test_stories_config(void)
{
    al_buf b = {0};
    CHECK_OK(al_read_file(shared_path("models/stories260K-hf/config.json"), &b));
    al_config c;
    CHECK_OK(al_config_from_hf_json(&c, b.data, b.len, "stories260K-hf/config.json"));
    CHECK(c.dim == 64 && c.hidden_dim == 172 && c.n_layers == 5 && c.n_heads == 8 && c.n_kv_heads == 4);
    CHECK(c.head_dim == 8 && c.vocab_size == 512 && c.seq_len == 512);
    CHECK(c.norm_eps == 1e-5f && c.rope_theta == 10000.0f && c.rope == AL_ROPE_HALF);
    CHECK(c.tied_embeddings && !c.qkv_bias && c.bos_id == 1 && c.eos_id == 2);
    al_buf_free(&b);
}

static void test_llama2_7b(void)
{
    /* meta-llama/Llama-2-7b-hf's config (no num_key_value_heads in early versions, no rope_theta). */
    const char *j = "{\"architectures\":[\"LlamaForCausalLM\"],\"bos_token_id\":1,\"eos_token_id\":2,"
                    "\"hidden_act\":\"silu\",\"hidden_size\":4096,\"initializer_range\":0.02,"
                    "\"intermediate_size\":11008,\"max_position_embeddings\":4096,\"model_type\":\"llama\","
                    "\"num_attention_heads\":32,\"num_hidden_layers\":32,\"pretraining_tp\":1,"
                    "\"rms_norm_eps\":1e-05,\"rope_scaling\":null,\"tie_word_embeddings\":false,"
                    "\"torch_dtype\":\"float16\",\"transformers_version\":\"4.31.0.dev0\",\"use_cache\":true,"
                    "\"vocab_size\":32000}";
    al_config c;
    CHECK_OK(parse(&c, j));
    CHECK(c.dim == 4096 && c.hidden_dim == 11008 && c.n_layers == 32 && c.n_heads == 32);
    CHECK(c.n_kv_heads == 32 && c.head_dim == 128 && c.vocab_size == 32000 && c.seq_len == 4096);
    CHECK(c.norm_eps == 1e-5f && c.rope_theta == 10000.0f && !c.tied_embeddings && !c.qkv_bias);
    CHECK(c.bos_id == 1 && c.eos_id == 2 && c.rope == AL_ROPE_HALF);
}

static void test_qwen2(void)
{
    /* Qwen/Qwen2.5-0.5B-Instruct's config.json. */
    const char *j = "{\"architectures\":[\"Qwen2ForCausalLM\"],\"attention_dropout\":0.0,"
                    "\"bos_token_id\":151643,\"eos_token_id\":151645,\"hidden_act\":\"silu\","
                    "\"hidden_size\":896,\"initializer_range\":0.02,\"intermediate_size\":4864,"
                    "\"max_position_embeddings\":32768,\"max_window_layers\":21,\"model_type\":\"qwen2\","
                    "\"num_attention_heads\":14,\"num_hidden_layers\":24,\"num_key_value_heads\":2,"
                    "\"rms_norm_eps\":1e-06,\"rope_theta\":1000000.0,\"sliding_window\":32768,"
                    "\"tie_word_embeddings\":true,\"torch_dtype\":\"bfloat16\",\"use_cache\":true,"
                    "\"use_sliding_window\":false,\"vocab_size\":151936}";
    al_config c;
    CHECK_OK(parse(&c, j));
    CHECK(c.dim == 896 && c.hidden_dim == 4864 && c.n_layers == 24 && c.n_heads == 14 && c.n_kv_heads == 2);
    CHECK(c.head_dim == 64 && c.vocab_size == 151936 && c.seq_len == 32768);
    CHECK(c.norm_eps == 1e-6f && c.rope_theta == 1e6f && c.tied_embeddings);
    CHECK(c.qkv_bias); /* Qwen2 always has q/k/v biases */
    CHECK(c.bos_id == 151643 && c.eos_id == 151645);
}

static void test_mistral(void)
{
    /* Sliding window 4096 < max positions: exact up to the window, so seq_len is capped.
     * eos as an array (take the first), bos null (-1), head_dim null (default). */
    const char *j = "{\"model_type\":\"mistral\",\"hidden_size\":256,\"intermediate_size\":512,"
                    "\"num_hidden_layers\":2,\"num_attention_heads\":8,\"num_key_value_heads\":2,"
                    "\"vocab_size\":1000,\"max_position_embeddings\":32768,\"sliding_window\":4096,"
                    "\"head_dim\":null,\"bos_token_id\":null,\"eos_token_id\":[7,8]}";
    al_config c;
    CHECK_OK(parse(&c, j));
    CHECK(c.seq_len == 4096 && c.head_dim == 32 && c.bos_id == -1 && c.eos_id == 7 && !c.qkv_bias);
}

static void test_defaults_and_head_dim(void)
{
    const char *j = "{\"model_type\":\"llama\",\"hidden_size\":64,\"intermediate_size\":128,"
                    "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"vocab_size\":100,"
                    "\"max_position_embeddings\":256}";
    al_config c;
    CHECK_OK(parse(&c, j));
    CHECK(c.n_kv_heads == 4 && c.head_dim == 16 && c.norm_eps == 1e-6f && c.rope_theta == 10000.0f);
    CHECK(!c.tied_embeddings && !c.qkv_bias && c.bos_id == -1 && c.eos_id == -1 && c.rope == AL_ROPE_HALF);

    /* Explicit head_dim that is not hidden/heads (q projection wider than the model). */
    const char *j2 = "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64,\"intermediate_size\":128,"
                     "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,"
                     "\"head_dim\":32,\"vocab_size\":100,\"max_position_embeddings\":256,"
                     "\"eos_token_id\":[]}";
    CHECK_OK(parse(&c, j2));
    CHECK(c.head_dim == 32 && c.n_kv_heads == 2 && c.eos_id == -1);
    CHECK(al_config_param_count(&c) > 0);

    /* hidden not divisible by heads and no head_dim: an error; with head_dim: fine. */
    expect_error("{\"model_type\":\"llama\",\"hidden_size\":60,\"intermediate_size\":128,"
                 "\"num_hidden_layers\":2,\"num_attention_heads\":8,\"vocab_size\":100,"
                 "\"max_position_embeddings\":256}",
                 "not a multiple");
    CHECK_OK(parse(&c, "{\"model_type\":\"llama\",\"hidden_size\":60,\"intermediate_size\":128,"
                       "\"num_hidden_layers\":2,\"num_attention_heads\":8,\"head_dim\":8,\"vocab_size\":100,"
                       "\"max_position_embeddings\":256}"));
}

#define BASE                                                                                                   \
    "\"hidden_size\":64,\"intermediate_size\":128,\"num_hidden_layers\":2,\"vocab_size\":100,"                \
    "\"max_position_embeddings\":256"

static void test_errors(void)
{
    expect_error("{\"model_type\":\"llama\"," BASE ",\"num_attention_heads\":\"4\"}",
                 "config.json: num_attention_heads: expected a positive integer");
    expect_error("{\"model_type\":\"llama\"," BASE ",\"num_attention_heads\":0}",
                 "config.json: num_attention_heads: expected a positive integer");
    expect_error("{\"model_type\":\"llama\"," BASE ",\"num_attention_heads\":-4}", "num_attention_heads");
    expect_error("{\"model_type\":\"llama\"," BASE ",\"num_attention_heads\":4.0}", "num_attention_heads");
    expect_error("{\"model_type\":\"llama\"," BASE ",\"num_attention_heads\":99999999999}", "num_attention_heads");
    expect_error("{\"model_type\":\"llama\"," BASE "}", "config.json: num_attention_heads: missing");
    expect_error("{\"model_type\":\"llama\",\"num_attention_heads\":4}", "hidden_size: missing");
    expect_error("{\"model_type\":\"llama\"," BASE ",\"num_attention_heads\":4,"
                 "\"rope_scaling\":{\"type\":\"linear\",\"factor\":2.0}}",
                 "config.json: rope_scaling: not supported");
    expect_error("{\"model_type\":\"llama\"," BASE ",\"num_attention_heads\":4,\"hidden_act\":\"gelu\"}",
                 "hidden_act");
    expect_error("{\"model_type\":\"llama\"," BASE ",\"num_attention_heads\":4,\"hidden_act\":1}", "hidden_act");
    expect_error("{\"model_type\":\"gpt_neox\"," BASE ",\"num_attention_heads\":4}", "model_type: 'gpt_neox'");
    expect_error("{" BASE ",\"num_attention_heads\":4}", "model_type: missing");
    expect_error("{\"architectures\":[\"GPTNeoXForCausalLM\"]," BASE ",\"num_attention_heads\":4}", "architectures");
    /* GPT-2 is read (tests/test_gpt2_hf.c), but not with Llama's intermediate_size */
    expect_error("{\"model_type\":\"gpt2\"," BASE ",\"num_attention_heads\":4}", "intermediate_size: not a GPT-2 field");
    expect_error("{\"architectures\":\"LlamaForCausalLM\"," BASE ",\"num_attention_heads\":4}", "architectures");
    expect_error("{\"architectures\":[\"Qwen2ForCausalLM\"],\"model_type\":\"llama\"," BASE
                 ",\"num_attention_heads\":4}",
                 "disagrees");
    expect_error("{\"model_type\":\"llama\"," BASE ",\"num_attention_heads\":4,\"tie_word_embeddings\":\"yes\"}",
                 "tie_word_embeddings: expected true or false");
    expect_error("{\"model_type\":\"llama\"," BASE ",\"num_attention_heads\":4,\"rms_norm_eps\":\"1e-5\"}",
                 "rms_norm_eps: expected a positive number");
    expect_error("{\"model_type\":\"llama\"," BASE ",\"num_attention_heads\":4,\"rope_theta\":-1}", "rope_theta");
    expect_error("{\"model_type\":\"llama\"," BASE ",\"num_attention_heads\":4,\"bos_token_id\":\"<s>\"}",
                 "bos_token_id");
    expect_error("{\"model_type\":\"llama\"," BASE ",\"num_attention_heads\":4,\"attention_bias\":true}",
                 "attention_bias");
    expect_error("{\"model_type\":\"llama\"," BASE ",\"num_attention_heads\":4,\"mlp_bias\":true}", "mlp_bias");
    expect_error("{\"model_type\":\"llama\"," BASE ",\"num_attention_heads\":4,\"num_key_value_heads\":3}",
                 "config.json: config: n_heads (4) must be a multiple of n_kv_heads (3)");
    expect_error("{\"model_type\":\"llama\"," BASE ",\"num_attention_heads\":4,\"num_attention_heads\":8}",
                 "not valid JSON");
    expect_error("{\"model_type\":\"llama\",", "not valid JSON");
    expect_error("", "not valid JSON");
    expect_error("[1,2]", "expected a JSON object");
    /* rope_scaling null is fine. */
    al_config c;
    CHECK_OK(parse(&c, "{\"model_type\":\"llama\"," BASE ",\"num_attention_heads\":4,\"rope_scaling\":null}"));
    /* The origin is the caller's. */
    CHECK(al_config_from_hf_json(&c, "{}", 2, "/x/y/config.json") == -1);
    CHECK(strstr(al_errmsg(), "/x/y/config.json: ") == al_errmsg());
}

static void test_round_trip(void)
{
    al_config cs[3] = {
        {.dim = 64, .hidden_dim = 172, .n_layers = 5, .n_heads = 8, .n_kv_heads = 4, .head_dim = 8,
         .vocab_size = 512, .seq_len = 512, .norm_eps = 1e-5f, .rope_theta = 10000.0f, .rope = AL_ROPE_HALF,
         .tied_embeddings = true, .bos_id = 1, .eos_id = 2},
        {.dim = 896, .hidden_dim = 4864, .n_layers = 24, .n_heads = 14, .n_kv_heads = 2, .head_dim = 64,
         .vocab_size = 151936, .seq_len = 32768, .norm_eps = 1e-6f, .rope_theta = 1e6f, .rope = AL_ROPE_HALF,
         .tied_embeddings = true, .qkv_bias = true, .bos_id = 151643, .eos_id = 151645},
        {.dim = 64, .hidden_dim = 100, .n_layers = 1, .n_heads = 2, .n_kv_heads = 1, .head_dim = 48,
         .vocab_size = 7, .seq_len = 9, .norm_eps = 3.3e-7f, .rope_theta = 500000.0f, .rope = AL_ROPE_HALF,
         .tied_embeddings = false, .bos_id = -1, .eos_id = -1},
    };
    for (int i = 0; i < 3; i++) {
        al_buf b = {0};
        CHECK_OK(al_config_to_hf_json(&cs[i], &b));
        al_config back;
        CHECK_OK(al_config_from_hf_json(&back, b.data, b.len, "written"));
        CHECKF(config_eq(&back, &cs[i]), "round trip %d differs:\n%s", i, b.data);
        CHECK(strstr(b.data, cs[i].qkv_bias ? "Qwen2ForCausalLM" : "LlamaForCausalLM") != NULL);
        al_buf_free(&b);
    }
}

int main(void)
{
    test_stories_config();
    test_llama2_7b();
    test_qwen2();
    test_mistral();
    test_defaults_and_head_dim();
    test_errors();
    test_round_trip();
    return test_report();
}
