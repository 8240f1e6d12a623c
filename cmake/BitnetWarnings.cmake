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

function(bitnet_target_defaults target)
  target_link_libraries(${target} PUBLIC bitnet_options)
endfunction()

# One layer of the library (src/<layer>): an object library compiled into the bitnet archive
# (src/CMakeLists.txt). Its code sees the public headers and, privately, the other layers'
# headers under src/; programs outside the library see src/ only through bitnet::internal.
function(bitnet_layer_defaults target)
  bitnet_target_defaults(${target})
  target_include_directories(${target}
    PUBLIC ${PROJECT_SOURCE_DIR}/include
    PRIVATE ${PROJECT_SOURCE_DIR}/src)
endfunction()
