#!/usr/bin/env bash
# The validation-only hyperparameter search of the IRM row `colored_mnist_irm_val`: the penalty
# weight over 1e3, 1e4, 1e5 at seed 0, each run keeping its checkpoint of best validation
# worst-group accuracy. The weight with the highest validation worst-group accuracy goes into
# configs/experiment/colored_mnist_irm_val.yaml; test numbers are read only after that choice.
# Usage: bash experiments/colored_mnist/sweep_irm_val.sh   (JOBS, DATA_ROOT, TRAIN as in run.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA_ROOT=${DATA_ROOT:-../shared/data}
JOBS=${JOBS:-2}
TRAIN=${TRAIN:-.venv/bin/robustml-train}
PYTHON=${PYTHON:-.venv/bin/python}
for weight in 1000 10000 100000; do
  dir="runs/colored_mnist_irm_val/sweep/weight$weight/seed0"
  [ -f "$dir/metrics.json" ] && continue
  mkdir -p "$dir"
  echo "loss.criterion.penalty_weight=$weight seed=0 data.root=$DATA_ROOT hydra.run.dir=$dir"
done | xargs -P "$JOBS" -L 1 sh -c \
  'OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} '"$TRAIN"' experiment=colored_mnist_irm_val "$0" "$@" \
     trainer.resume=true trainer.progress=false > "${3#hydra.run.dir=}/train.out" 2>&1 \
     && echo "done $0" || echo "FAILED $0 (see ${3#hydra.run.dir=}/train.out)"'
"$PYTHON" scripts/summarize_runs.py --key val/acc_worst_group --key val/acc_avg \
  --row "weight 1e3=runs/colored_mnist_irm_val/sweep/weight1000/*" \
  --row "weight 1e4=runs/colored_mnist_irm_val/sweep/weight10000/*" \
  --row "weight 1e5=runs/colored_mnist_irm_val/sweep/weight100000/*"
