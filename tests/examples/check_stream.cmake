# cmake -DEXAMPLE=<bitnet_stream> -DMODEL=<gguf> -DREFERENCE=<reference.json> -P check_stream.cmake
# Runs the example on the first greedy reference run and requires exit 0 and exactly the
# continuation bitnet.cpp printed, then a newline.
function(check_stream example)
  file(READ ${REFERENCE} json)
  string(JSON prompt GET "${json}" runs 0 prompt)
  string(JSON n_predict GET "${json}" runs 0 n_predict)
  string(JSON want GET "${json}" runs 0 gen_text)
  execute_process(COMMAND ${example} ${MODEL} "${prompt}" ${n_predict}
    OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc TIMEOUT 120)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${example} exited with ${rc}:\n${err}")
  endif()
  if(NOT out STREQUAL "${want}\n")
    message(FATAL_ERROR "${example} printed\n[${out}]\nbitnet.cpp's greedy continuation is\n[${want}]")
  endif()
  message(STATUS "${example}: bitnet.cpp's continuation of \"${prompt}\" (${n_predict} tokens)")
endfunction()

if(CMAKE_SCRIPT_MODE_FILE STREQUAL CMAKE_CURRENT_LIST_FILE)
  check_stream(${EXAMPLE})
endif()
