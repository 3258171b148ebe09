# MODE=find_package: install flowception into WORK_DIR/prefix, then build the consumer against it.
# MODE=add_subdirectory: build the consumer with the source tree added as a subdirectory.
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "command failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  message(STATUS "${out}")
endfunction()
# CONSUMER: the consumer project's folder name (default: consumer, the core alone).
if(NOT DEFINED CONSUMER)
  set(CONSUMER consumer)
endif()
set(consumer ${CMAKE_CURRENT_LIST_DIR}/${CONSUMER})
if(MODE STREQUAL "find_package")
  # LIB_OPTION: one more option for the library's configure (e.g. -DFLOWCEPTION_MPI=ON).
  run(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/lib -DCMAKE_CXX_COMPILER=${CXX}
      -DFLOWCEPTION_BUILD_TESTS=OFF -DFLOWCEPTION_BUILD_EXAMPLES=OFF -DFLOWCEPTION_BUILD_BENCHMARKS=OFF
      -DCMAKE_INSTALL_PREFIX=${WORK_DIR}/prefix ${LIB_OPTION})
  run(${CMAKE_COMMAND} --install ${WORK_DIR}/lib)
  run(${CMAKE_COMMAND} -S ${consumer} -B ${WORK_DIR}/consumer -DCMAKE_CXX_COMPILER=${CXX}
      -DFLOWCEPTION_MODE=find_package -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix)
else()
  run(${CMAKE_COMMAND} -S ${consumer} -B ${WORK_DIR}/consumer -DCMAKE_CXX_COMPILER=${CXX}
      -DFLOWCEPTION_MODE=add_subdirectory -DFLOWCEPTION_SOURCE_DIR=${SOURCE_DIR})
endif()
run(${CMAKE_COMMAND} --build ${WORK_DIR}/consumer)
run(${WORK_DIR}/consumer/consumer)
