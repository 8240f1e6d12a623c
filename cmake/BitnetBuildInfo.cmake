# Build facts for receipts and `bitnet --version`: version, commit, build type, compiler.
# The commit is read at build time, not configure time (cmake/WriteBuildInfo.cmake runs on
# every build and rewrites the header only when a fact changed), so a rebuild after a new
# commit reports that commit.
set(BITNET_COMPILER "${CMAKE_CXX_COMPILER_ID} ${CMAKE_CXX_COMPILER_VERSION}")

# bitnet_build_info_header(TARGET OUT): generate OUT from tools/bitnet/build_info.hpp.in
# before TARGET builds.
function(bitnet_build_info_header target out)
  add_custom_target(${target}_build_info
    COMMAND ${CMAKE_COMMAND}
      -DSOURCE_DIR=${PROJECT_SOURCE_DIR}
      -DTEMPLATE=${PROJECT_SOURCE_DIR}/tools/bitnet/build_info.hpp.in
      -DOUT=${out}
      -DPROJECT_VERSION=${PROJECT_VERSION}
      -DCMAKE_BUILD_TYPE=${CMAKE_BUILD_TYPE}
      "-DBITNET_COMPILER=${BITNET_COMPILER}"
      -P ${PROJECT_SOURCE_DIR}/cmake/WriteBuildInfo.cmake
    BYPRODUCTS ${out}
    COMMENT "Build info (commit)"
    VERBATIM)
  add_dependencies(${target} ${target}_build_info)
endfunction()
