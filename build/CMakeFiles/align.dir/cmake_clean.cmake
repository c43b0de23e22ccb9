file(REMOVE_RECURSE
  "CMakeFiles/align.dir/src/cli/args.c.o"
  "CMakeFiles/align.dir/src/cli/args.c.o.d"
  "CMakeFiles/align.dir/src/cli/cmd_convert.c.o"
  "CMakeFiles/align.dir/src/cli/cmd_convert.c.o.d"
  "CMakeFiles/align.dir/src/cli/cmd_generate.c.o"
  "CMakeFiles/align.dir/src/cli/cmd_generate.c.o.d"
  "CMakeFiles/align.dir/src/cli/cmd_info.c.o"
  "CMakeFiles/align.dir/src/cli/cmd_info.c.o.d"
  "CMakeFiles/align.dir/src/cli/cmd_tokenizer.c.o"
  "CMakeFiles/align.dir/src/cli/cmd_tokenizer.c.o.d"
  "CMakeFiles/align.dir/src/cli/main.c.o"
  "CMakeFiles/align.dir/src/cli/main.c.o.d"
  "align"
  "align.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/align.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
