# CMake generated Testfile for 
# Source directory: /work/main
# Build directory: /work/main/build
# 
# This file includes the relevant testing commands required for 
# testing this directory and lists subdirectories to be tested as well.
add_test([=[test_gguf]=] "/work/main/build/test_gguf")
set_tests_properties([=[test_gguf]=] PROPERTIES  ENVIRONMENT "OMP_NUM_THREADS=2" TIMEOUT "600" _BACKTRACE_TRIPLES "/work/main/CMakeLists.txt;64;add_test;/work/main/CMakeLists.txt;0;")
add_test([=[test_hf_config]=] "/work/main/build/test_hf_config")
set_tests_properties([=[test_hf_config]=] PROPERTIES  ENVIRONMENT "OMP_NUM_THREADS=2" TIMEOUT "600" _BACKTRACE_TRIPLES "/work/main/CMakeLists.txt;64;add_test;/work/main/CMakeLists.txt;0;")
add_test([=[test_model_reference]=] "/work/main/build/test_model_reference")
set_tests_properties([=[test_model_reference]=] PROPERTIES  ENVIRONMENT "OMP_NUM_THREADS=2" TIMEOUT "600" _BACKTRACE_TRIPLES "/work/main/CMakeLists.txt;64;add_test;/work/main/CMakeLists.txt;0;")
add_test([=[test_ops]=] "/work/main/build/test_ops")
set_tests_properties([=[test_ops]=] PROPERTIES  ENVIRONMENT "OMP_NUM_THREADS=2" TIMEOUT "600" _BACKTRACE_TRIPLES "/work/main/CMakeLists.txt;64;add_test;/work/main/CMakeLists.txt;0;")
add_test([=[test_safetensors]=] "/work/main/build/test_safetensors")
set_tests_properties([=[test_safetensors]=] PROPERTIES  ENVIRONMENT "OMP_NUM_THREADS=2" TIMEOUT "600" _BACKTRACE_TRIPLES "/work/main/CMakeLists.txt;64;add_test;/work/main/CMakeLists.txt;0;")
