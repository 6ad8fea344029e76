#!/usr/bin/env bash
# The results table of experiments/adult/README.md from the runs of run.sh (results.md/.json):
# test worst-group, average and train-prior-weighted average accuracy, each group's test accuracy
# and the validation worst-group accuracy, mean ± sample std over seeds.
# Usage: bash experiments/adult/summarize.sh   (DATASET=celeba_attributes for the other study)
set -euo pipefail
cd "$(dirname "$0")/../.."
DATASET=${DATASET:-adult}
keys=(test/acc_worst_group test/acc_avg test/acc_weighted_avg test/acc_group_0 test/acc_group_1
      test/acc_group_2 test/acc_group_3 val/acc_worst_group train_seconds)
.venv/bin/python scripts/summarize_runs.py --out "experiments/$DATASET/results" "${keys[@]/#/--key=}" \
  --row "ERM, selected on val average=runs/${DATASET}_erm_select_avg/seeds/*" \
  --row "ERM=runs/${DATASET}_erm/seeds/*" \
  --row "ERM + group-balanced sampling=runs/${DATASET}_group_balanced/seeds/*" \
  --row "ERM + reweighting=runs/${DATASET}_reweight/seeds/*" \
  --row "Group DRO=runs/${DATASET}_group_dro/seeds/*"
