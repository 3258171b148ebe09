#!/usr/bin/env bash
# Installs what is missing (Debian packages), builds, and runs the whole test suite twice:
# optimised (every test) and under AddressSanitizer + UndefinedBehaviorSanitizer (library tests).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(cmake g++ make libgtest-dev libbenchmark-dev libeigen3-dev xtensor-dev xtl-dev nlohmann-json3-dev
          libpng-dev libgif-dev libcli11-dev)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi

jobs=$(nproc)
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release
cmake --build build/release -j "$jobs"
ctest --test-dir build/release --output-on-failure -j "$jobs"

# The library's tests again under ASan + UBSan (the CLI and packaging tests are not repeated).
cmake -S . -B build/sanitize -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFLOWCEPTION_SANITIZE=address,undefined \
      -DFLOWCEPTION_BUILD_EXAMPLES=OFF -DFLOWCEPTION_BUILD_BENCHMARKS=OFF
cmake --build build/sanitize -j "$jobs"
ctest --test-dir build/sanitize --output-on-failure -j "$jobs" -L 'core|io|dit|train'
