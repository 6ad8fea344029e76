#!/usr/bin/env bash
# The validation-only hyperparameter search of experiments/adult/README.md: for each row, seed 0,
# every lr x L2 of the grid (runs/<row>_lr<LR>_l2<L2>/seeds/seed0/), then a table of the selected
# checkpoints' VALIDATION accuracies (sweep.md). The test split plays no part in the choice.
# Usage: bash experiments/adult/sweep.sh   (DATASET=celeba_attributes for the other study)
set -euo pipefail
cd "$(dirname "$0")/../.."
DATASET=${DATASET:-adult}
LRS=${LRS:-"0.001 0.0001"}
L2S=${L2S:-"0 0.0001"}
methods=(erm group_balanced reweight group_dro)
rows=()
for lr in $LRS; do
  for l2 in $L2S; do
    SEEDS=0 TAG="_lr${lr}_l2${l2}" OVERRIDES="optimizer.lr=$lr trainer.l2_weight=$l2" \
      bash experiments/colored_mnist/run.sh "${methods[@]/#/${DATASET}_}"
  done
done
for method in "${methods[@]}"; do
  for lr in $LRS; do
    for l2 in $L2S; do
      rows+=(--row "$method, lr $lr, L2 $l2=runs/${DATASET}_${method}_lr${lr}_l2${l2}/seeds/*")
    done
  done
done
.venv/bin/python scripts/summarize_runs.py --out "experiments/$DATASET/sweep" \
  --key val/acc_worst_group --key val/acc_avg --key selected_step "${rows[@]}"
