#!/usr/bin/env bash
# The main job: builds and runs examples/oracle_lengths, the length distribution the coupled
# ODE–jump sampler produces with the exact length oracle, against P(L), by grid and N.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cmake >/dev/null && command -v g++ >/dev/null || {
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq cmake g++ make
}
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j "$(nproc)" --target oracle_lengths >/dev/null
./build/release/examples/oracle_lengths "$@"
