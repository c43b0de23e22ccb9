file(REMOVE_RECURSE
  "CMakeFiles/alignlib.dir/src/core/error.c.o"
  "CMakeFiles/alignlib.dir/src/core/error.c.o.d"
  "CMakeFiles/alignlib.dir/src/core/file.c.o"
  "CMakeFiles/alignlib.dir/src/core/file.c.o.d"
  "CMakeFiles/alignlib.dir/src/core/mem.c.o"
  "CMakeFiles/alignlib.dir/src/core/mem.c.o.d"
  "CMakeFiles/alignlib.dir/src/core/progress.c.o"
  "CMakeFiles/alignlib.dir/src/core/progress.c.o.d"
  "CMakeFiles/alignlib.dir/src/core/rng.c.o"
  "CMakeFiles/alignlib.dir/src/core/rng.c.o.d"
  "CMakeFiles/alignlib.dir/src/core/utf8.c.o"
  "CMakeFiles/alignlib.dir/src/core/utf8.c.o.d"
  "CMakeFiles/alignlib.dir/src/model/layout.c.o"
  "CMakeFiles/alignlib.dir/src/model/layout.c.o.d"
  "CMakeFiles/alignlib.dir/src/model/llama2c.c.o"
  "CMakeFiles/alignlib.dir/src/model/llama2c.c.o.d"
  "libalign.a"
  "libalign.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/alignlib.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
