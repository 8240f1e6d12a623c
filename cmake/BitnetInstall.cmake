# `cmake --install`: the library, its public headers (include/bitnet only; src/ stays private)
# and a package config, so another CMake project can find_package(bitnet) and link
# bitnet::bitnet. The CLI installs itself (tools/CMakeLists.txt).
include(CMakePackageConfigHelpers)

set(BITNET_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/bitnet)
install(TARGETS bitnet_lib EXPORT bitnetTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/bitnet DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.hpp")
install(EXPORT bitnetTargets NAMESPACE bitnet:: DESTINATION ${BITNET_CMAKE_DIR})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/bitnetConfig.cmake.in
  ${PROJECT_BINARY_DIR}/bitnetConfig.cmake INSTALL_DESTINATION ${BITNET_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/bitnetConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/bitnetConfig.cmake ${PROJECT_BINARY_DIR}/bitnetConfigVersion.cmake
        DESTINATION ${BITNET_CMAKE_DIR})
