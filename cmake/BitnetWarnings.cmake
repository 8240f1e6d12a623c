# Warnings for every project target: call bitnet_target_defaults(<target>).
add_library(bitnet_options INTERFACE)
target_compile_options(bitnet_options INTERFACE -Wall -Wextra)
if(BITNET_WERROR)
  target_compile_options(bitnet_options INTERFACE -Werror)
endif()
if(BITNET_SANITIZE)
  target_compile_options(bitnet_options INTERFACE -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all)
  target_link_options(bitnet_options INTERFACE -fsanitize=address,undefined)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # GCC 12's flow analysis misreads ASan's instrumentation of std::string/variant moves
    # (false -Wmaybe-uninitialized / -Wrestrict in libstdc++ headers); the Release build
    # keeps both warnings as errors.
    target_compile_options(bitnet_options INTERFACE -Wno-maybe-uninitialized -Wno-restrict)
  endif()
endif()
if(BITNET_FUZZ)
  # Instrument the library code too, so libFuzzer's coverage guidance sees the parsers.
  target_compile_options(bitnet_options INTERFACE -fsanitize=fuzzer-no-link,address,undefined)
  target_link_options(bitnet_options INTERFACE -fsanitize=address,undefined)
endif()
target_include_directories(bitnet_options INTERFACE
  ${PROJECT_SOURCE_DIR}/include ${PROJECT_SOURCE_DIR}/src)

function(bitnet_target_defaults target)
  target_link_libraries(${target} PUBLIC bitnet_options)
endfunction()
