#!/usr/bin/env bash
# Trained-model ablations on the two toy sets (docs/benchmarks.md, "Trained models"):
#  1. Flowception, full-sequence and autoregressive (causal) tiny DiTs trained with the SAME
#     training-FLOP budget on each toy set, then scored with the same sampler settings
#     (valid fraction, length TV, and drift: legal frames by frame index);
#  2. the Flowception models sampled with the learned insertion order and with the random,
#     hierarchical and left-to-right rules (target lengths drawn from the data's lengths).
# Usage: bash bench/run_toy_ablation.sh [FLOP_BUDGET] [OUT_DIR]
# The default budget, 3e13 FLOPs per model, is about five minutes of Flowception training on a
# 2-core machine; the whole script takes about an hour there.
set -euo pipefail
cd "$(dirname "$0")/.."
budget=${1:-3e13}
out=${2:-runs/toy_ablation}
bin=build/release/examples/flowception
[ -x "$bin" ] || { echo "build first: bash scripts/test.sh (or cmake --build build/release)"; exit 1; }
mkdir -p "$out"

declare -A data_flags=(
  [ring]="--data ring --patch 1"
  [shapes]="--data shapes --patch 4"
)
evals=()
for set in ring shapes; do
  for method in flowception full_sequence autoregressive; do
    run="$out/${set}_${method}"
    if [ ! -f "$run/checkpoint.safetensors" ]; then
      $bin train ${data_flags[$set]} --model tiny --batch 16 --lr 5e-4 --warmup 200 --ema 0.999 --seed 1 \
        --method "$method" --flop-budget "$budget" --save-every 0 --quiet --out "$run"
    fi
    data=${data_flags[$set]%% --patch*}
    $bin eval $data --checkpoint "$run/checkpoint.safetensors" --count 64 --steps 25 --solver heun \
      --grid end_dense:3 --max-frames 48 --seed 3 --quiet --out "$run/eval" > "$run/eval.txt"
    evals+=(--eval "${set}_${method}=$run/eval/run.json")
  done
  for rule in random hierarchical left_to_right; do
    run="$out/${set}_flowception"
    data=${data_flags[$set]%% --patch*}
    $bin eval $data --checkpoint "$run/checkpoint.safetensors" --count 64 --steps 25 --solver heun \
      --grid end_dense:3 --max-frames 48 --seed 3 --rule "$rule" --quiet --out "$run/eval_$rule" > "$run/eval_$rule.txt"
    evals+=(--eval "${set}_flowception_rule_${rule}=$run/eval_$rule/run.json")
  done
done
python3 bench/plot_benchmarks.py --out "$out/plots" --markdown "$out/tables.md" "${evals[@]}"
echo "tables: $out/tables.md; plots: $out/plots"
