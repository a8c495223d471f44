# Runs `petrel template ...` and compares stdout byte for byte with an expected file.
# -DPETREL=<binary> -DARGS=<;-list of arguments> -DEXPECTED=<file> -DOUT=<scratch file>
execute_process(COMMAND ${PETREL} ${ARGS} OUTPUT_FILE ${OUT} RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "petrel template failed (${rc}): ${err}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${OUT} ${EXPECTED} RESULT_VARIABLE diff)
if(NOT diff EQUAL 0)
  message(FATAL_ERROR "output of petrel template differs from ${EXPECTED} (see ${OUT})")
endif()
