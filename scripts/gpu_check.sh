#!/usr/bin/env bash
# The GPU check of the CUDA DiT, in one run, for a machine with a GPU and the CUDA toolkit:
#   1. builds the library's CUDA parts (tests, flowception-cuda, gpu_dit_bench) for sm_80/sm_90;
#   2. ctest -L gpu: CPU/GPU parity of forward, backward, training steps, sampling, TF32/BF16;
#   3. the GPU benchmark (JSON): S and B at 1024/4096 tokens in FP32/TF32/BF16, linear layers
#      beside cuBLASLt products of the same shapes, attention alone, 512 ring videos x 100 steps;
#   4. trains the ring model on the GPU for TRAIN_SECONDS (default 240), scoring it every
#      EVAL_EVERY seconds of training (default 60): quality reached per minute of GPU time.
# Everything it measures goes to $OUT (default runs/gpu_check): logs, JSON, checkpoints.
#   bash scripts/gpu_check.sh                 # everything
#   STAGES="build test bench" bash scripts/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu_check}
STAGES=${STAGES:-"build test bench train"}
TRAIN_SECONDS=${TRAIN_SECONDS:-240}
EVAL_EVERY=${EVAL_EVERY:-60}
mkdir -p "$OUT"
status=0
has() { [[ " $STAGES " == *" $1 "* ]]; }
log() { echo "gpu_check: $*" | tee -a "$OUT/summary.txt"; }

nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || log "nvidia-smi failed (no driver?)"
B=build/gpu
if has build; then
  start=$(date +%s)
  cmake -S . -B $B -DCMAKE_BUILD_TYPE=Release -DFLOWCEPTION_CUDA=ON -DFLOWCEPTION_CUDA_PROGRAMS=ON \
        -DFLOWCEPTION_BUILD_TESTS=ON -DFLOWCEPTION_BUILD_EXAMPLES=ON -DFLOWCEPTION_BUILD_BENCHMARKS=ON \
        > "$OUT/configure.log" 2>&1 || { log "configure failed"; exit 1; }
  cmake --build $B -j "$(nproc)" --target test_gpu_device_sampling gpu_dit_bench flowception_cli_cuda \
        > "$OUT/build.log" 2>&1 || { log "build failed (see build.log)"; exit 1; }
  log "build: $(( $(date +%s) - start )) s"
fi
if has test; then
  ctest --test-dir $B -L gpu --output-on-failure -V > "$OUT/ctest_gpu.log" 2>&1 || status=1
  log "ctest -L gpu: $(grep -E 'tests passed|tests failed' "$OUT/ctest_gpu.log" | tail -1)"
  grep -E '^(ok|FAIL|skipped)' "$OUT/ctest_gpu.log" | sed 's/^[0-9]*: //' >> "$OUT/summary.txt"
fi
if has bench; then
  FLOWCEPTION_RING_CHECKPOINT=assets/ring_tiny.safetensors timeout 300 $B/bench/gpu_dit_bench \
      --benchmark_format=json --benchmark_out="$OUT/gpu_dit_bench.json" --benchmark_min_time=0.2 \
      > "$OUT/gpu_dit_bench.txt" 2>&1 || { status=1; log "gpu_dit_bench failed or timed out"; }
  log "benchmark: $OUT/gpu_dit_bench.json"
  # Sampling through the program as a user runs it: 512 ring videos, 100 steps.
  $B/examples/flowception-cuda sample --device cuda --checkpoint assets/ring_tiny.safetensors --count 512 --steps 100 \
      --grid end_dense:3 --solver euler --max-frames 64 --seed 7 --quiet --out "$OUT/ring_sample" \
      > "$OUT/ring_sample.log" 2>&1 || status=1
  log "512 ring videos, 100 steps: $(grep -o '"seconds": [0-9.e+-]*' "$OUT/ring_sample/run.json" | head -1)"
fi
if has train; then
  # The ring recipe (the previous issue's) on the GPU, in segments; each segment resumes the last
  # checkpoint, and the EMA weights are scored after each: quality per minute of GPU time.
  T="$OUT/ring_train"
  mkdir -p "$T"
  done_s=0
  while [ "$done_s" -lt "$TRAIN_SECONDS" ]; do
    resume=()
    [ -f "$T/checkpoint.safetensors" ] && resume=(--resume "$T/checkpoint.safetensors")
    $B/examples/flowception-cuda train --device cuda --data ring --steps 100000000 --time-limit "$EVAL_EVERY" \
        --save-every 0 --quiet --out "$T" "${resume[@]}" >> "$T/train.log" 2>&1 || { status=1; break; }
    done_s=$(( done_s + EVAL_EVERY ))
    $B/examples/flowception-cuda eval --device cuda --checkpoint "$T/checkpoint.safetensors" --data ring --count 200 \
        --steps 100 --grid end_dense:3 --solver euler --max-frames 64 --seed 7 --quiet --out "$T/eval_${done_s}s" \
        >> "$T/eval.log" 2>&1 || status=1
    log "ring after ${done_s} s of GPU training: $(tail -1 "$T/train.log")"
    grep -o '"[a-z_ ]*consistent[a-z_ ]*": [0-9.e+-]*\|"[a-z_ ]*legal[a-z_ ]*": [0-9.e+-]*' "$T/eval_${done_s}s/run.json" \
        | head -4 | sed 's/^/    /' >> "$OUT/summary.txt"
  done
fi
log "done (status $status)"
exit $status
