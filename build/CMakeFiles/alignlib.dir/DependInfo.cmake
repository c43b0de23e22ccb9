
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/main/src/core/error.c" "CMakeFiles/alignlib.dir/src/core/error.c.o" "gcc" "CMakeFiles/alignlib.dir/src/core/error.c.o.d"
  "/work/main/src/core/file.c" "CMakeFiles/alignlib.dir/src/core/file.c.o" "gcc" "CMakeFiles/alignlib.dir/src/core/file.c.o.d"
  "/work/main/src/core/gguf.c" "CMakeFiles/alignlib.dir/src/core/gguf.c.o" "gcc" "CMakeFiles/alignlib.dir/src/core/gguf.c.o.d"
  "/work/main/src/core/mem.c" "CMakeFiles/alignlib.dir/src/core/mem.c.o" "gcc" "CMakeFiles/alignlib.dir/src/core/mem.c.o.d"
  "/work/main/src/core/progress.c" "CMakeFiles/alignlib.dir/src/core/progress.c.o" "gcc" "CMakeFiles/alignlib.dir/src/core/progress.c.o.d"
  "/work/main/src/core/rng.c" "CMakeFiles/alignlib.dir/src/core/rng.c.o" "gcc" "CMakeFiles/alignlib.dir/src/core/rng.c.o.d"
  "/work/main/src/core/utf8.c" "CMakeFiles/alignlib.dir/src/core/utf8.c.o" "gcc" "CMakeFiles/alignlib.dir/src/core/utf8.c.o.d"
  "/work/main/src/model/decoder.c" "CMakeFiles/alignlib.dir/src/model/decoder.c.o" "gcc" "CMakeFiles/alignlib.dir/src/model/decoder.c.o.d"
  "/work/main/src/model/generate.c" "CMakeFiles/alignlib.dir/src/model/generate.c.o" "gcc" "CMakeFiles/alignlib.dir/src/model/generate.c.o.d"
  "/work/main/src/model/hf_config.c" "CMakeFiles/alignlib.dir/src/model/hf_config.c.o" "gcc" "CMakeFiles/alignlib.dir/src/model/hf_config.c.o.d"
  "/work/main/src/model/layout.c" "CMakeFiles/alignlib.dir/src/model/layout.c.o" "gcc" "CMakeFiles/alignlib.dir/src/model/layout.c.o.d"
  "/work/main/src/model/llama2c.c" "CMakeFiles/alignlib.dir/src/model/llama2c.c.o" "gcc" "CMakeFiles/alignlib.dir/src/model/llama2c.c.o.d"
  "/work/main/src/model/load.c" "CMakeFiles/alignlib.dir/src/model/load.c.o" "gcc" "CMakeFiles/alignlib.dir/src/model/load.c.o.d"
  "/work/main/src/model/ops.c" "CMakeFiles/alignlib.dir/src/model/ops.c.o" "gcc" "CMakeFiles/alignlib.dir/src/model/ops.c.o.d"
  "/work/main/src/model/safetensors.c" "CMakeFiles/alignlib.dir/src/model/safetensors.c.o" "gcc" "CMakeFiles/alignlib.dir/src/model/safetensors.c.o.d"
  "/work/main/src/model/sampler.c" "CMakeFiles/alignlib.dir/src/model/sampler.c.o" "gcc" "CMakeFiles/alignlib.dir/src/model/sampler.c.o.d"
  "/work/main/src/model/train_ctx.c" "CMakeFiles/alignlib.dir/src/model/train_ctx.c.o" "gcc" "CMakeFiles/alignlib.dir/src/model/train_ctx.c.o.d"
  "/work/main/src/tokenizer/bpe_files.c" "CMakeFiles/alignlib.dir/src/tokenizer/bpe_files.c.o" "gcc" "CMakeFiles/alignlib.dir/src/tokenizer/bpe_files.c.o.d"
  "/work/main/src/tokenizer/bpe_train.c" "CMakeFiles/alignlib.dir/src/tokenizer/bpe_train.c.o" "gcc" "CMakeFiles/alignlib.dir/src/tokenizer/bpe_train.c.o.d"
  "/work/main/src/tokenizer/bytelevel_bpe.c" "CMakeFiles/alignlib.dir/src/tokenizer/bytelevel_bpe.c.o" "gcc" "CMakeFiles/alignlib.dir/src/tokenizer/bytelevel_bpe.c.o.d"
  "/work/main/src/tokenizer/gguf_vocab.c" "CMakeFiles/alignlib.dir/src/tokenizer/gguf_vocab.c.o" "gcc" "CMakeFiles/alignlib.dir/src/tokenizer/gguf_vocab.c.o.d"
  "/work/main/src/tokenizer/hashmap.c" "CMakeFiles/alignlib.dir/src/tokenizer/hashmap.c.o" "gcc" "CMakeFiles/alignlib.dir/src/tokenizer/hashmap.c.o.d"
  "/work/main/src/tokenizer/merge.c" "CMakeFiles/alignlib.dir/src/tokenizer/merge.c.o" "gcc" "CMakeFiles/alignlib.dir/src/tokenizer/merge.c.o.d"
  "/work/main/src/tokenizer/sentencepiece.c" "CMakeFiles/alignlib.dir/src/tokenizer/sentencepiece.c.o" "gcc" "CMakeFiles/alignlib.dir/src/tokenizer/sentencepiece.c.o.d"
  "/work/main/src/tokenizer/tokenizer.c" "CMakeFiles/alignlib.dir/src/tokenizer/tokenizer.c.o" "gcc" "CMakeFiles/alignlib.dir/src/tokenizer/tokenizer.c.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
