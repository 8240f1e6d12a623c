# cmake -DBUILD_DIR=.. -DSOURCE_DIR=.. -DWORK_DIR=.. -DGENERATOR=.. -DCXX=.. [-DLAUNCHER=..]
#       -DMODEL=.. -DREFERENCE=.. -P check_install.cmake
# Installs the build into a fresh prefix, checks what it holds, builds examples/ as an outside
# project with find_package(bitnet) against that prefix alone, and runs it (check_stream).
include(${CMAKE_CURRENT_LIST_DIR}/check_stream.cmake)

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}")
  endif()
endfunction()

set(prefix ${WORK_DIR}/prefix)
file(REMOVE_RECURSE ${WORK_DIR})
run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})

# The binary runs.
run(${prefix}/bin/bitnet --version)

# Without -m it has no model (the demo model belongs to the build tree): one error line naming
# -m, exit 2 (README: bad command line), nothing on stdout.
execute_process(COMMAND ${prefix}/bin/bitnet run -p hi -n 1 RESULT_VARIABLE rc
  OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 2 OR NOT out STREQUAL "" OR
   NOT err MATCHES "^bitnet: error: no model given: pass -m/--model FILE.gguf[^\n]*\n$")
  message(FATAL_ERROR "installed bitnet run without -m: exit ${rc}, stdout '${out}', "
    "stderr '${err}'")
endif()

# Exactly the public headers, and none reaches outside include/bitnet.
file(GLOB_RECURSE installed RELATIVE ${prefix}/include ${prefix}/include/*)
file(GLOB_RECURSE public RELATIVE ${SOURCE_DIR}/include ${SOURCE_DIR}/include/bitnet/*.hpp)
list(SORT installed)
list(SORT public)
if(NOT installed STREQUAL public)
  message(FATAL_ERROR "installed headers [${installed}] are not the public ones [${public}]")
endif()
foreach(header ${installed})
  file(STRINGS ${prefix}/include/${header} includes REGEX "^[ \t]*#[ \t]*include[ \t]*\"")
  foreach(line ${includes})
    if(NOT line MATCHES "\"bitnet/[^\"/]+\\.hpp\"")
      message(FATAL_ERROR "${header} includes a non-public header: ${line}")
    endif()
  endforeach()
endforeach()

# examples/ as someone else's project: only the prefix to find bitnet by, no package registry.
set(configure ${CMAKE_COMMAND} -S ${SOURCE_DIR}/examples -B ${WORK_DIR}/build -G ${GENERATOR}
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_PREFIX_PATH=${prefix}
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
if(LAUNCHER)
  list(APPEND configure -DCMAKE_CXX_COMPILER_LAUNCHER=${LAUNCHER})
endif()
run(${configure})
file(STRINGS ${WORK_DIR}/build/CMakeCache.txt found REGEX "^bitnet_DIR:")
string(FIND "${found}" "bitnet_DIR:PATH=${prefix}/" at)
if(NOT at EQUAL 0)
  message(FATAL_ERROR "examples/ found bitnet elsewhere: ${found}")
endif()
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
check_stream(${WORK_DIR}/build/bitnet_stream)
