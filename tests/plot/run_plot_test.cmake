# Runs bench/plot_benchmarks.py on the small benchmark JSON files of tests/data/bench_sample and
# checks that every promised PNG is written (with the PNG signature) and the tables are there;
# then that an input which is not benchmark JSON fails with a message naming it.
# Variables: PYTHON, SCRIPT, DATA (input folder), OUT (scratch folder).
foreach(v PYTHON SCRIPT DATA OUT)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "run_plot_test.cmake needs -D${v}=...")
  endif()
endforeach()
file(REMOVE_RECURSE "${OUT}")
execute_process(
  COMMAND "${PYTHON}" "${SCRIPT}" --out "${OUT}" --markdown "${OUT}/tables.md"
          "${DATA}/training_cost.json" "${DATA}/sampling_cost.json" "${DATA}/ablation.json"
          --eval "ring=${DATA}/eval_ring_run.json"
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "plot_benchmarks.py failed (${rc}): ${out}${err}")
endif()
foreach(png training_flops_ratio training_attention_ratio sampling_flops sampling_time ablation_length_tv drift_ring)
  if(NOT EXISTS "${OUT}/${png}.png")
    message(FATAL_ERROR "plot_benchmarks.py did not write ${png}.png")
  endif()
  file(READ "${OUT}/${png}.png" sig LIMIT 8 HEX)
  if(NOT sig STREQUAL "89504e470d0a1a0a")
    message(FATAL_ERROR "${png}.png is not a PNG file (starts with ${sig})")
  endif()
  file(SIZE "${OUT}/${png}.png" size)
  if(size LESS 2000)
    message(FATAL_ERROR "${png}.png is only ${size} bytes")
  endif()
endforeach()
file(READ "${OUT}/tables.md" md)
foreach(needle "### Training cost per step" "| tiny | 16 | full_sequence |" "### Sampling cost per video"
               "### κ × solver × grid" "### Jump mode × insertion rule" "| ring | autoregressive |")
  string(FIND "${md}" "${needle}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "tables.md lacks '${needle}':\n${md}")
  endif()
endforeach()
# Bad input: a file that is not benchmark JSON.
file(WRITE "${OUT}/bad.json" "{\"context\": {}}")
execute_process(COMMAND "${PYTHON}" "${SCRIPT}" --out "${OUT}" "${OUT}/bad.json"
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
string(FIND "${err}" "bad.json is not Google Benchmark JSON" at)
if(rc EQUAL 0 OR at EQUAL -1)
  message(FATAL_ERROR "bad input was not rejected with its reason (rc ${rc}): ${err}")
endif()
file(WRITE "${OUT}/cut.json" "{\"benchmarks\": [")
execute_process(COMMAND "${PYTHON}" "${SCRIPT}" --out "${OUT}" "${OUT}/cut.json"
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
string(FIND "${err}" "cannot read" at)
if(rc EQUAL 0 OR at EQUAL -1)
  message(FATAL_ERROR "truncated JSON was not rejected with its reason (rc ${rc}): ${err}")
endif()
