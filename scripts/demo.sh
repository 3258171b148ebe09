#!/usr/bin/env bash
# The main job. Builds the flowception program, then with the two reference checkpoints committed
# under assets/ (the rotating ring and crossing shapes on 8×8 frames; assets/README.md says how
# each was trained and what it scores) samples unconditional, image-to-video and interpolation
# videos of both toys, evaluates both against their data (with the project's targets and the
# method authors' figures beside each score) and writes runs/demo/index.html, which links the two
# eval reports and shows the videos.
#
#   bash scripts/demo.sh                  # the committed checkpoints
#   bash scripts/demo.sh --retrain        # retrains the ring model first (about ten minutes)
set -euo pipefail
cd "$(dirname "$0")/.."

retrain=0
train_seconds=600
for arg in "$@"; do
  case "$arg" in
    --retrain) retrain=1 ;;
    --train-seconds=*) train_seconds="${arg#*=}" ;;
    *) echo "usage: scripts/demo.sh [--retrain] [--train-seconds=N]" >&2; exit 2 ;;
  esac
done

bash scripts/install_deps.sh cmake g++ make libeigen3-dev xtensor-dev xtl-dev nlohmann-json3-dev libpng-dev libgif-dev libcli11-dev

start=$(date +%s)
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DFLOWCEPTION_BUILD_TESTS=OFF -DFLOWCEPTION_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build build/release -j "$(nproc)" --target flowception_cli
fc=build/release/examples/flowception
out=runs/demo
mkdir -p "$out"

ring=assets/ring_tiny.safetensors
shapes=assets/shapes8_tiny.safetensors
if [ "$retrain" = 1 ]; then
  echo "retraining the ring model for ${train_seconds} s with its recipe. This is far less training than the"
  echo "committed checkpoint had (assets/README.md), so expect clearly lower scores than with it."
  $fc train --data ring --time-limit "$train_seconds" --seed 1 --quiet --overwrite --out "$out/ring_train"
  $fc export --checkpoint "$out/ring_train/checkpoint.safetensors" --out "$out/ring_retrained.safetensors"
  ring="$out/ring_retrained.safetensors"
fi
echo "models: $ring, $shapes"

# Sampling settings of the reference figures (assets/README.md): N = 100 insertion steps on the
# end-dense grid, Euler. κ, n_start and anchoring come from each checkpoint.
common=(--steps 100 --grid end_dense:3 --solver euler --seed 7 --quiet)
for toy in ring shapes; do
  if [ "$toy" = ring ]; then ckpt=$ring data=ring; else ckpt=$shapes data=shapes:8; fi
  $fc sample --checkpoint "$ckpt" "${common[@]}" --count 8 --out "$out/$toy/sample"
  $fc i2v --checkpoint "$ckpt" "${common[@]}" --count 4 --data "$data" --image-from-data 7 --out "$out/$toy/i2v"
  $fc interpolate --checkpoint "$ckpt" "${common[@]}" --count 4 --data "$data" --keys-from-data 7 --num-keys 3 \
      --out "$out/$toy/interpolate"
  $fc eval --checkpoint "$ckpt" "${common[@]}" --count 200 --data "$data" --data-videos 2000 --out "$out/$toy/eval" \
      | head -n 1
done

# One page for everything: the two eval reports and the conditional samples.
{
  echo '<!doctype html><html><head><meta charset="utf-8"><title>flowception demo</title>'
  echo '<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}img{image-rendering:pixelated;margin:4px}</style></head><body>'
  echo '<h1>flowception demo</h1>'
  echo "<p>Models: $ring and $shapes. Scores, targets and the authors' figures are in each eval report.</p>"
  for toy in ring shapes; do
    echo "<h2>$toy</h2><p><a href=\"$toy/eval/report.html\">eval report: scores, length histogram, rate calibration, 200 videos</a></p>"
    for task in sample i2v interpolate; do
      echo "<h3>$task</h3><p><img src=\"$toy/$task/contact_sheet.png\" alt=\"$toy $task contact sheet\"></p><p>"
      for g in "$out/$toy/$task"/gifs/*.gif; do echo "<img src=\"$toy/$task/gifs/$(basename "$g")\" alt=\"$(basename "$g")\">"; done
      echo '</p>'
    done
  done
  echo '</body></html>'
} > "$out/index.html.tmp"
mv "$out/index.html.tmp" "$out/index.html"
echo "demo finished in $(( $(date +%s) - start )) s; open $out/index.html"
