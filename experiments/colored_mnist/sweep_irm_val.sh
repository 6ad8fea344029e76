#!/usr/bin/env bash
# The validation-only hyperparameter search of the IRM row `colored_mnist_irm_val`: the penalty
# weight over 1e3, 1e4, 1e5 at seed 0, each run keeping its checkpoint of best validation
# worst-group accuracy. The weight with the highest validation worst-group accuracy goes into
# configs/experiment/colored_mnist_irm_val.yaml; test numbers are read only after that choice.
# Usage: bash experiments/colored_mnist/sweep_irm_val.sh   (DATA_ROOT, TRAIN as in run.sh)
# The three runs go side by side (one thread each), into runs/colored_mnist_irm_val_weight<W>/.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-.venv/bin/python}
for weight in 1000 10000 100000; do
  SEEDS=0 JOBS=1 TAG="_weight$weight" OVERRIDES="loss.criterion.penalty_weight=$weight" \
    bash experiments/colored_mnist/run.sh colored_mnist_irm_val &
done
wait
"$PYTHON" scripts/summarize_runs.py --key val/acc_worst_group --key val/acc_avg \
  --row "weight 1e3=runs/colored_mnist_irm_val_weight1000/seeds/*" \
  --row "weight 1e4=runs/colored_mnist_irm_val_weight10000/seeds/*" \
  --row "weight 1e5=runs/colored_mnist_irm_val_weight100000/seeds/*"
