# Dependencies of a cross build (cmake/toolchain-aarch64.cmake). It exists to run the kernel
# and model parity tests under qemu, and the target sysroot has none of our packages:
# - fmt, spdlog (bitnet_util links them) and nlohmann/json (the tests' fixtures) are used
#   header-only from the host's headers, which are architecture-independent. Only those
#   directories are exposed, through links in the build tree: adding the host's /usr/include
#   itself would shadow the target libc headers.
# - GoogleTest is built for the target from the host's sources (/usr/src/googletest).
# - CLI11 and PCRE2 are not available: the tools and bench must be off, and PkgConfig::PCRE2
#   is an empty placeholder so the tree configures; the tokenizer is not cross-built (the
#   parity test feeds the fixtures' token ids). Debian's multiarch libpcre2-dev:arm64 is no
#   way out: it brings libc6:arm64, whose libc.so.6 qemu then loads with the cross sysroot's
#   older ld.so (-L /usr/aarch64-linux-gnu), and every program that starts a thread hangs.
if(BITNET_BUILD_TOOLS OR BITNET_BUILD_BENCH)
  message(FATAL_ERROR "A cross build supports only the kernel and model tests: "
    "configure with -DBITNET_BUILD_TOOLS=OFF -DBITNET_BUILD_BENCH=OFF")
endif()

set(_host_headers ${CMAKE_BINARY_DIR}/host-headers)
file(MAKE_DIRECTORY ${_host_headers})
foreach(_header fmt/format.h spdlog/spdlog.h nlohmann/json.hpp)
  cmake_path(GET _header PARENT_PATH _lib)
  find_path(BITNET_HOST_${_lib}_DIR ${_header} PATHS /usr/include
    NO_DEFAULT_PATH NO_CMAKE_FIND_ROOT_PATH)
  if(NOT BITNET_HOST_${_lib}_DIR)
    message(FATAL_ERROR "Cross build: host ${_header} not found (install lib${_lib}-dev)")
  endif()
  file(CREATE_LINK ${BITNET_HOST_${_lib}_DIR}/${_lib} ${_host_headers}/${_lib} SYMBOLIC)
endforeach()

find_package(Threads REQUIRED)
add_library(fmt::fmt INTERFACE IMPORTED)
set_target_properties(fmt::fmt PROPERTIES
  INTERFACE_INCLUDE_DIRECTORIES ${_host_headers}
  INTERFACE_COMPILE_DEFINITIONS FMT_HEADER_ONLY)
add_library(spdlog::spdlog INTERFACE IMPORTED)
set_target_properties(spdlog::spdlog PROPERTIES
  INTERFACE_COMPILE_DEFINITIONS SPDLOG_FMT_EXTERNAL
  INTERFACE_LINK_LIBRARIES "fmt::fmt;Threads::Threads")
add_library(nlohmann_json::nlohmann_json INTERFACE IMPORTED)
set_target_properties(nlohmann_json::nlohmann_json PROPERTIES
  INTERFACE_INCLUDE_DIRECTORIES ${_host_headers})
add_library(PkgConfig::PCRE2 INTERFACE IMPORTED)

if(BITNET_BUILD_TESTS)
  set(BUILD_GMOCK OFF CACHE BOOL "" FORCE)
  set(INSTALL_GTEST OFF CACHE BOOL "" FORCE)
  add_subdirectory(/usr/src/googletest ${CMAKE_BINARY_DIR}/googletest EXCLUDE_FROM_ALL)
  include(GoogleTest)
endif()
