#!/usr/bin/env bash
# Learning curve of one training configuration: trains it in segments that stop at doubling
# budgets of videos seen (25 K, 50 K, 100 K, ...), keeps the EMA weights of each (export), scores
# each with `flowception eval`, and writes curve.json plus plots of every quality metric against
# videos seen and training FLOPs (bench/plot_learning_curves.py).
#
#   bash bench/learning_curve.sh --out runs/lc/ring_pooled [--budgets 25000,50000,...] \
#        [--eval-count 200] [--eval-steps 100] [--eval-flags "..."] [--no-train] [--no-eval] \
#        -- --data ring --batch 64 ...            (everything after -- goes to 'flowception train')
#
# A resumed training run is bit-identical to an uninterrupted one, so the snapshots are those of
# one run. Rerunning the script skips what is already there: it resumes the last segment, and it
# evaluates only snapshots without an eval. Stop it at any time; the last checkpoint stays valid.
set -euo pipefail
cd "$(dirname "$0")/.."

out=""
budgets="25000,50000,100000,200000,400000,800000,1600000,3200000"
eval_count=200
eval_steps=100
eval_flags="--grid end_dense:3 --solver euler --max-frames 64 --seed 7"
train=1
evaluate=1
bin=${FLOWCEPTION_BIN:-build/release/examples/flowception}
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --budgets) budgets=$2; shift 2 ;;
    --eval-count) eval_count=$2; shift 2 ;;
    --eval-steps) eval_steps=$2; shift 2 ;;
    --eval-flags) eval_flags=$2; shift 2 ;;
    --no-train) train=0; shift ;;
    --no-eval) evaluate=0; shift ;;
    --) shift; break ;;
    *) echo "learning_curve.sh: unknown argument '$1' (flags of 'flowception train' go after --)" >&2; exit 2 ;;
  esac
done
[ -n "$out" ] || { echo "learning_curve.sh: --out DIR is required" >&2; exit 2; }
[ -x "$bin" ] || { echo "learning_curve.sh: build first ($bin is missing): cmake --build build/release --target flowception_cli" >&2; exit 2; }
train_flags=("$@")
# Rerunning on an existing run folder: its recorded train flags unless others are given.
if [ ${#train_flags[@]} -eq 0 ] && [ -f "$out/train_flags.txt" ]; then
  mapfile -t train_flags < "$out/train_flags.txt"
fi

# The batch decides how many steps a budget of videos is; the data set is needed to evaluate.
batch="" data=""
for ((i = 0; i < ${#train_flags[@]}; ++i)); do
  case "${train_flags[$i]}" in
    --batch) batch=${train_flags[$((i + 1))]} ;;
    --data) data=${train_flags[$((i + 1))]} ;;
  esac
done
if [ -z "$batch" ] || [ -z "$data" ]; then
  echo "learning_curve.sh: give --batch and --data among the train flags (after --)" >&2
  exit 2
fi
mkdir -p "$out/snapshots"
printf '%s\n' "${train_flags[@]}" > "$out/train_flags.txt"
ckpt="$out/train/checkpoint.safetensors"

IFS=',' read -r -a budget_list <<< "$budgets"
if [ "$train" = 1 ]; then
  for videos in "${budget_list[@]}"; do
    snap="$out/snapshots/videos_${videos}.safetensors"
    [ -f "$snap" ] && continue
    steps=$(( (videos + batch - 1) / batch ))
    resume=()
    [ -f "$ckpt" ] && resume=(--resume "$ckpt")
    echo "== $(date +%T) training to $videos videos ($steps steps)"
    "$bin" train "${train_flags[@]}" --steps "$steps" --out "$out/train" --quiet "${resume[@]}" \
      | tee -a "$out/train.log"
    cp "$out/train/run.json" "$out/snapshots/videos_${videos}.train.json"
    "$bin" export --checkpoint "$ckpt" --out "$snap" > /dev/null
  done
fi

if [ "$evaluate" = 1 ]; then
  for videos in "${budget_list[@]}"; do
    snap="$out/snapshots/videos_${videos}.safetensors"
    [ -f "$snap" ] || continue
    [ -f "$out/eval/videos_${videos}/run.json" ] && continue
    echo "== $(date +%T) evaluating the snapshot at $videos videos"
    # shellcheck disable=SC2086
    "$bin" eval --data "$data" --checkpoint "$snap" --count "$eval_count" --steps "$eval_steps" $eval_flags \
      --quiet --out "$out/eval/videos_${videos}" | tail -n 2
  done
  python3 bench/plot_learning_curves.py --out "$out/plots" "$out"
fi
