#!/usr/bin/env bash
# The own-images example end to end, one run at a time: write the image folder, audit it, run the
# sweeps (3 seeds each; Group DRO's step size and JTT's lambda_up chosen on validation by
# robustml-collect), a run stopped too early (its health lines), then results.md.
# Usage: bash experiments/own_images/run.sh        (from any folder; about an hour on 2 CPU cores)
# BIN is the folder of robustml's console scripts and python (default .venv/bin); DATA_ROOT holds
# MNIST/raw.
# Outputs under runs/own_images/ (a finished sweep is skipped when run again); the table goes to
# experiments/own_images/results.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-.venv/bin}
DATA_ROOT=${DATA_ROOT:-../shared/data}
DATA=${DATA:-data/own_images}
OUT=${OUT:-runs/own_images}
SEEDS=${SEEDS:-0,1,2}
CSV="$DATA/images.csv"
mkdir -p "$OUT"

[ -f "$CSV" ] || "$BIN/python" experiments/own_images/make_images.py --data-root "$DATA_ROOT" --out "$DATA"
"$BIN/robustml-audit" --data data=image_csv data.csv="$CSV" data.image_size=28 \
  --out "$OUT/data_audit" > "$OUT/data_audit.out" 2>&1

sweep() {   # sweep DIR OVERRIDES...: a -m sweep over the seeds into $OUT/DIR (skipped when done)
  local dir=$1; shift
  [ -f "$OUT/$dir/wall.txt" ] && return
  rm -rf "${OUT:?}/$dir" && mkdir -p "$(dirname "$OUT/$dir")"
  local start=$SECONDS
  "$BIN/robustml-train" -m "$@" seed="$SEEDS" data.csv="$CSV" trainer.progress=false \
    hydra.sweep.dir="$OUT/$dir" > "$OUT/$dir.out" 2>&1 || { echo "FAILED: see $OUT/$dir.out"; exit 1; }
  echo "$dir: $((SECONDS - start)) s" | tee "$OUT/$dir/wall.txt"
}
# Group DRO's step size: two sweeps in one folder, which robustml-collect compares on validation.
sweep group_dro/step_0.01 experiment=own_images_group_dro loss.criterion.step_size=0.01
# JTT's lambda_up: likewise (the stage ones, which do not depend on lambda_up, are trained once).
sweep jtt/lambda_20 experiment=own_images_jtt method.lambda_up=20 method.cache_dir="$OUT/jtt_cache"
sweep jtt/lambda_5 experiment=own_images_jtt method.lambda_up=5 method.cache_dir="$OUT/jtt_cache"
# DFR on the plain ERM model (selected on val average accuracy: no group labels): its base/...
# metrics are the plain-ERM row.
sweep dfr experiment=own_images_dfr trainer.select=avg method.cache_dir="$OUT/features"
# Group DRO stopped after 20 steps: what its health checks say.
[ -f "$OUT/stopped_early/metrics.json" ] || "$BIN/robustml-train" experiment=own_images_group_dro trainer.max_steps=20 trainer.eval_every=5 \
  data.csv="$CSV" trainer.progress=false hydra.run.dir="$OUT/stopped_early" > "$OUT/stopped_early.out" 2>&1

sweep group_dro/step_0.1 experiment=own_images_group_dro loss.criterion.step_size=0.1
for dir in group_dro jtt dfr; do
  "$BIN/robustml-collect" "$OUT/$dir" --json "$OUT/$dir/collect.json" > "$OUT/$dir.collect.out"
done

"$BIN/python" experiments/own_images/summarize.py "$OUT" > experiments/own_images/results.md
echo "wrote experiments/own_images/results.md"
