
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/main/src/core/error.c" "CMakeFiles/alignlib.dir/src/core/error.c.o" "gcc" "CMakeFiles/alignlib.dir/src/core/error.c.o.d"
  "/work/main/src/core/file.c" "CMakeFiles/alignlib.dir/src/core/file.c.o" "gcc" "CMakeFiles/alignlib.dir/src/core/file.c.o.d"
  "/work/main/src/core/mem.c" "CMakeFiles/alignlib.dir/src/core/mem.c.o" "gcc" "CMakeFiles/alignlib.dir/src/core/mem.c.o.d"
  "/work/main/src/core/progress.c" "CMakeFiles/alignlib.dir/src/core/progress.c.o" "gcc" "CMakeFiles/alignlib.dir/src/core/progress.c.o.d"
  "/work/main/src/core/rng.c" "CMakeFiles/alignlib.dir/src/core/rng.c.o" "gcc" "CMakeFiles/alignlib.dir/src/core/rng.c.o.d"
  "/work/main/src/core/utf8.c" "CMakeFiles/alignlib.dir/src/core/utf8.c.o" "gcc" "CMakeFiles/alignlib.dir/src/core/utf8.c.o.d"
  "/work/main/src/model/layout.c" "CMakeFiles/alignlib.dir/src/model/layout.c.o" "gcc" "CMakeFiles/alignlib.dir/src/model/layout.c.o.d"
  "/work/main/src/model/llama2c.c" "CMakeFiles/alignlib.dir/src/model/llama2c.c.o" "gcc" "CMakeFiles/alignlib.dir/src/model/llama2c.c.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
