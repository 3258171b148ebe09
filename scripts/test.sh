#!/usr/bin/env bash
# Installs what is missing (Debian packages), builds (the API reference too), and runs the whole
# test suite twice, the tutorial's programs against docs/tutorial.md included:
# optimised with MPI (every test, the multi-rank ones under mpirun with 2 and 3 ranks on this
# machine) and under AddressSanitizer + UndefinedBehaviorSanitizer (library tests, no MPI);
# then fuzzes each loader and flag parser for 60 s on the committed corpus (clang's libFuzzer,
# ASan + UBSan), and runs the demo (the README's first command) and checks that it wrote its pages.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install_deps.sh cmake g++ make libgtest-dev libbenchmark-dev libeigen3-dev xtensor-dev xtl-dev nlohmann-json3-dev libpng-dev libgif-dev libcli11-dev python3 gnuplot-nox \
                              openmpi-bin libopenmpi-dev clang libclang-rt-dev libomp-dev doxygen

jobs=$(nproc)
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DFLOWCEPTION_BUILD_TESTS=ON -DFLOWCEPTION_BUILD_EXAMPLES=ON \
      -DFLOWCEPTION_BUILD_BENCHMARKS=ON -DFLOWCEPTION_MPI=ON
cmake --build build/release -j "$jobs"
cmake --build build/release --target docs   # the API reference; a warning (an undocumented public name) fails
ctest --test-dir build/release --output-on-failure --no-tests=error -j "$jobs"

# The library's tests again under ASan + UBSan (the CLI and packaging tests are not repeated);
# this build is also the one without FLOWCEPTION_MPI, which must build and pass on its own.
cmake -S . -B build/sanitize -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFLOWCEPTION_SANITIZE=address,undefined -DFLOWCEPTION_CUDA=OFF \
      -DFLOWCEPTION_BUILD_TESTS=ON -DFLOWCEPTION_BUILD_EXAMPLES=OFF -DFLOWCEPTION_BUILD_BENCHMARKS=OFF
cmake --build build/sanitize -j "$jobs"
ctest --test-dir build/sanitize --output-on-failure --no-tests=error -j "$jobs" -L 'core|io|dit|train'

# Fuzzing (tests/fuzz): 60 s per harness on the committed corpus; new inputs go to the build.
CC=clang CXX=clang++ cmake -S . -B build/fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFLOWCEPTION_FUZZ=ON -DFLOWCEPTION_CUDA=OFF \
      -DFLOWCEPTION_BUILD_TESTS=OFF -DFLOWCEPTION_BUILD_EXAMPLES=OFF -DFLOWCEPTION_BUILD_BENCHMARKS=OFF -DFLOWCEPTION_INSTALL=OFF
cmake --build build/fuzz -j "$jobs"
ctest --test-dir build/fuzz --output-on-failure --no-tests=error -j "$jobs" -L fuzz

# The demo, as a user runs it, from the committed checkpoints.
rm -rf runs/demo
bash scripts/demo.sh
for f in runs/demo/index.html runs/demo/ring/eval/report.html runs/demo/shapes/eval/report.html \
         runs/demo/ring/eval/run.json runs/demo/shapes/eval/run.json; do
  [ -s "$f" ] || { echo "test.sh: the demo did not write $f" >&2; exit 1; }
done
echo "test.sh: every test passed and the demo ran"
