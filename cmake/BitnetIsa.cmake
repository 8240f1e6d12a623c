# ISA-specific compile flags are given per source file, never globally: the default
# build is portable and picks the kernel variant at run time.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
  set(BITNET_ARCH_X86 ON)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64|ARM64)$")
  set(BITNET_ARCH_ARM64 ON)
endif()

set(BITNET_FLAGS_AVX2 -mavx2 -mfma -mf16c)
set(BITNET_FLAGS_AVXVNNI -mavx2 -mfma -mf16c -mavxvnni)
set(BITNET_FLAGS_AVX512 -mavx2 -mfma -mf16c -mavx512f -mavx512bw -mavx512vl -mavx512vnni)
set(BITNET_FLAGS_AMX ${BITNET_FLAGS_AVX512} -mamx-tile -mamx-int8)
set(BITNET_FLAGS_NEON -march=armv8-a)
set(BITNET_FLAGS_NEON_DOTPROD -march=armv8.2-a+dotprod)

# bitnet_isa_sources(<target> <flags-variable> <files...>)
function(bitnet_isa_sources target flags_var)
  target_sources(${target} PRIVATE ${ARGN})
  set_source_files_properties(${ARGN} PROPERTIES COMPILE_OPTIONS "${${flags_var}}")
endfunction()
