# Compiles SOURCE twice: with -DFLOWCEPTION_CONTROL (the complete type) it must compile; without
# it (one requirement missing) it must fail with a message naming EXPECT (the concept) and
# EXPECT2 (the missing expression).
foreach(var CXX SOURCE INCLUDE EXPECT EXPECT2)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "check_compile_fail.cmake: ${var} not set")
  endif()
endforeach()
execute_process(COMMAND ${CXX} -std=c++20 -fsyntax-only ${FLAG} -DFLOWCEPTION_CONTROL -I${INCLUDE} ${SOURCE}
                RESULT_VARIABLE control_rc OUTPUT_VARIABLE control_out ERROR_VARIABLE control_err)
if(NOT control_rc EQUAL 0)
  message(FATAL_ERROR "control variant of ${SOURCE} does not compile:\n${control_err}")
endif()
execute_process(COMMAND ${CXX} -std=c++20 -fsyntax-only ${FLAG} -I${INCLUDE} ${SOURCE}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(rc EQUAL 0)
  message(FATAL_ERROR "${SOURCE} compiled, but a type missing a requirement must be rejected")
endif()
string(FIND "${err}" "${EXPECT}" at1)
string(FIND "${err}" "${EXPECT2}" at2)
if(at1 EQUAL -1 OR at2 EQUAL -1)
  message(FATAL_ERROR "rejected, but the message does not name '${EXPECT}' and '${EXPECT2}':\n${err}")
endif()
message(STATUS "rejected with a message naming ${EXPECT} and ${EXPECT2}")
