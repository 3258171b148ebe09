#!/usr/bin/env bash
# The GPU check of the CUDA DiT, in one run, for a machine with a GPU and the CUDA toolkit. Each
# stage runs under its own time limit and writes one status line; a failed or timed-out stage
# does not stop the next ones, so one run on a GPU tells everything:
#   env     nvidia-smi, nvcc, cmake, the GPU's compute capability
#   build   the CUDA parts (GPU tests, flowception-cuda, gpu_dit_bench) for this GPU's architecture
#   test    ctest -L gpu: CPU/GPU parity of forward, backward, training steps (device losses),
#           sampling, TF32/BF16, the GELU epilogue, a too-large model, the product counts
#   bench   the GPU benchmark (JSON): S and B at 1024/4096 tokens in FP32/TF32/BF16, linear layers
#           beside cuBLASLt products of the same shapes, attention alone, 512 ring videos x 100
#           steps; every benchmark reports its fused products and fallbacks
#   sample  512 ring videos with flowception-cuda, as a user runs it (run.json: seconds, products)
#   train   the ring recipe on the GPU in segments of EVAL_EVERY seconds, each scored (quality per
#           minute of GPU time)
# Results go to $OUT (default runs/gpu_check): one log per stage, status.txt (a line per stage),
# summary.txt (the status lines, the figures, and the tail of the log of every stage that failed).
#   bash scripts/gpu_check.sh                          # everything, about 8 minutes on an H100/H200
#   STAGES="env build test" bash scripts/gpu_check.sh
# Time limits in seconds (environment): BUILD_LIMIT (360), TEST_LIMIT (120), BENCH_LIMIT (120),
# SAMPLE_LIMIT (60), TRAIN_SECONDS (60 of training, in segments of EVAL_EVERY = 30, with a limit of
# TRAIN_LIMIT = 150 on the stage). The defaults add up to 810 s at most and to about 8 minutes in
# practice, within the 10 minutes of GPU-machine time a check may take (docs/cuda.md).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu_check}
STAGES=${STAGES:-"env build test bench sample train"}
BUILD_LIMIT=${BUILD_LIMIT:-360}
TEST_LIMIT=${TEST_LIMIT:-120}
BENCH_LIMIT=${BENCH_LIMIT:-120}
SAMPLE_LIMIT=${SAMPLE_LIMIT:-60}
TRAIN_SECONDS=${TRAIN_SECONDS:-60}
EVAL_EVERY=${EVAL_EVERY:-30}
TRAIN_LIMIT=${TRAIN_LIMIT:-150}
B=${BUILD_DIR:-build/gpu}
mkdir -p "$OUT"
: > "$OUT/status.txt"
: > "$OUT/summary.txt"
failed=()
has() { [[ " $STAGES " == *" $1 "* ]]; }
note() { echo "gpu_check: $*" | tee -a "$OUT/summary.txt"; }

# run_stage NAME LIMIT COMMAND: runs COMMAND (a bash string) under `timeout LIMIT`, its output in
# $OUT/NAME.log, and writes "NAME: ok|FAILED|TIMED OUT ... in S s" to status.txt and summary.txt.
run_stage() {
  local name=$1 limit=$2 cmd=$3 start rc elapsed line
  start=$(date +%s)
  timeout --kill-after=10 "$limit" bash -c "$cmd" > "$OUT/$name.log" 2>&1
  rc=$?
  elapsed=$(( $(date +%s) - start ))
  if [ $rc -eq 0 ]; then
    line="$name: ok in ${elapsed} s"
  elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    line="$name: TIMED OUT after ${elapsed} s (limit ${limit} s)"
    failed+=("$name")
  else
    line="$name: FAILED (exit $rc) in ${elapsed} s"
    failed+=("$name")
  fi
  echo "$line" | tee -a "$OUT/status.txt" >> "$OUT/summary.txt"
  echo "gpu_check: $line"
  return $rc
}

if has env; then
  run_stage env 30 "nvidia-smi; nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version --format=csv; \
                    nvcc --version; cmake --version; nproc"
fi
# This GPU's architecture (e.g. 9.0 -> 90-real); the tests' default list (sm_80, sm_90, PTX) otherwise.
cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')
arch=${CUDA_ARCH:-${cap:+${cap}-real}}
if has build; then
  run_stage build "$BUILD_LIMIT" "cmake -S . -B $B -DCMAKE_BUILD_TYPE=Release -DFLOWCEPTION_CUDA=ON \
      -DFLOWCEPTION_CUDA_PROGRAMS=ON -DFLOWCEPTION_BUILD_TESTS=ON -DFLOWCEPTION_BUILD_EXAMPLES=ON \
      -DFLOWCEPTION_BUILD_BENCHMARKS=ON ${arch:+-DFLOWCEPTION_CUDA_ARCHITECTURES=$arch} && \
      cmake --build $B -j $(nproc) --target test_gpu_device_sampling gpu_dit_bench flowception_cli_cuda"
fi
if has test; then
  run_stage test "$TEST_LIMIT" "ctest --test-dir $B -L gpu --output-on-failure -V"
  grep -E '^[0-9]*: (ok|FAIL|skipped|products|  depth)' "$OUT/test.log" | sed 's/^[0-9]*: /    /' >> "$OUT/summary.txt"
fi
if has bench; then
  run_stage bench "$BENCH_LIMIT" "FLOWCEPTION_RING_CHECKPOINT=assets/ring_tiny.safetensors $B/bench/gpu_dit_bench \
      --benchmark_format=json --benchmark_out=$OUT/gpu_dit_bench.json --benchmark_min_time=0.2 ${BENCH_FILTER:+--benchmark_filter=$BENCH_FILTER}"
  [ -s "$OUT/gpu_dit_bench.json" ] && note "benchmark: $OUT/gpu_dit_bench.json"
fi
if has sample; then
  # Sampling through the program as a user runs it: 512 ring videos, 100 steps.
  run_stage sample "$SAMPLE_LIMIT" "$B/examples/flowception-cuda sample --device cuda --checkpoint assets/ring_tiny.safetensors \
      --count 512 --steps 100 --grid end_dense:3 --solver euler --max-frames 64 --seed 7 --quiet --out $OUT/ring_sample"
  [ -f "$OUT/ring_sample/run.json" ] &&
    grep -o '"seconds": [0-9.e+-]*\|"cublaslt_[a-z_]*": [0-9]*' "$OUT/ring_sample/run.json" | sed 's/^/    /' >> "$OUT/summary.txt"
fi
if has train; then
  # The ring recipe on the GPU, in segments; each resumes the last checkpoint and is scored.
  T="$OUT/ring_train"
  run_stage train "$TRAIN_LIMIT" "set -e; mkdir -p $T; done_s=0; while [ \$done_s -lt $TRAIN_SECONDS ]; do \
      resume=(); [ -f $T/checkpoint.safetensors ] && resume=(--resume $T/checkpoint.safetensors); \
      $B/examples/flowception-cuda train --device cuda --data ring --steps 100000000 --time-limit $EVAL_EVERY \
          --save-every 0 --quiet --out $T \"\${resume[@]}\"; \
      done_s=\$(( done_s + $EVAL_EVERY )); \
      $B/examples/flowception-cuda eval --device cuda --checkpoint $T/checkpoint.safetensors --data ring --count 200 \
          --steps 100 --grid end_dense:3 --solver euler --max-frames 64 --seed 7 --quiet --out $T/eval_\${done_s}s; \
      echo \"after \${done_s} s of training:\"; grep -o '\"videos_per_second\": [0-9.e+-]*\\|\"[a-z_]*consistent[a-z_]*\": [0-9.e+-]*\\|\"length_legal_fraction\": [0-9.e+-]*' \
          $T/run.json $T/eval_\${done_s}s/run.json || true; \
    done"
  grep -E 'after|videos_per_second|consistent|legal' "$OUT/train.log" | sed 's/^/    /' >> "$OUT/summary.txt"
fi

if [ ${#failed[@]} -eq 0 ]; then
  note "every stage passed: ${STAGES}"
  exit 0
fi
note "failed: ${failed[*]}"
for s in "${failed[@]}"; do
  { echo "---- the last 40 lines of $s.log ----"; tail -n 40 "$OUT/$s.log"; } >> "$OUT/summary.txt"
done
exit 1
