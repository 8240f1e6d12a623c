# Script mode (cmake -P), run on every build by bitnet_build_info_header(): writes the build
# facts header; configure_file leaves it untouched when nothing changed, so nothing rebuilds.
execute_process(COMMAND git rev-parse --short=12 HEAD
  WORKING_DIRECTORY ${SOURCE_DIR}
  OUTPUT_VARIABLE BITNET_BUILD_COMMIT OUTPUT_STRIP_TRAILING_WHITESPACE
  ERROR_QUIET RESULT_VARIABLE git_rc)
if(NOT git_rc EQUAL 0 OR BITNET_BUILD_COMMIT STREQUAL "")
  set(BITNET_BUILD_COMMIT "unknown")
endif()
configure_file(${TEMPLATE} ${OUT} @ONLY)
