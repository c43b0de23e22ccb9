
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/main/src/cli/args.c" "CMakeFiles/align.dir/src/cli/args.c.o" "gcc" "CMakeFiles/align.dir/src/cli/args.c.o.d"
  "/work/main/src/cli/cmd_convert.c" "CMakeFiles/align.dir/src/cli/cmd_convert.c.o" "gcc" "CMakeFiles/align.dir/src/cli/cmd_convert.c.o.d"
  "/work/main/src/cli/cmd_generate.c" "CMakeFiles/align.dir/src/cli/cmd_generate.c.o" "gcc" "CMakeFiles/align.dir/src/cli/cmd_generate.c.o.d"
  "/work/main/src/cli/cmd_info.c" "CMakeFiles/align.dir/src/cli/cmd_info.c.o" "gcc" "CMakeFiles/align.dir/src/cli/cmd_info.c.o.d"
  "/work/main/src/cli/cmd_tokenizer.c" "CMakeFiles/align.dir/src/cli/cmd_tokenizer.c.o" "gcc" "CMakeFiles/align.dir/src/cli/cmd_tokenizer.c.o.d"
  "/work/main/src/cli/main.c" "CMakeFiles/align.dir/src/cli/main.c.o" "gcc" "CMakeFiles/align.dir/src/cli/main.c.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  "/work/main/build/CMakeFiles/alignlib.dir/DependInfo.cmake"
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
