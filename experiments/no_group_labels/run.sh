#!/usr/bin/env bash
# Every training run of experiments/no_group_labels/README.md (the rows this session owns), seeds
# 0-2, one torch thread per run, JOBS runs at a time (default 1).
# Usage: bash experiments/no_group_labels/run.sh [EXPERIMENT ...]   (default: all of them)
# Each run writes runs/<experiment>/seeds/seed<N>/ (skipped when its metrics.json exists); ERM
# reference stages land in runs/reference_cache/<config hash>/ and are shared by the rows whose
# reference configs are equal (the same data, model, optimizer, trainer values and seed).
# colored_digits_group_dro is `robustml-train loss=group_dro` (the labelled reference row).
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA_ROOT=${DATA_ROOT:-../shared/data}
JOBS=${JOBS:-1}
SEEDS=${SEEDS:-"0 1 2"}
TRAIN=${TRAIN:-.venv/bin/robustml-train}
experiments=("$@")
if [ ${#experiments[@]} -eq 0 ]; then
  experiments=(colored_digits_group_dro colored_digits_inferred_group_dro colored_digits_eiil_irm
               colored_mnist_eiil_irm colored_mnist_inferred_group_dro
               adult_inferred_group_dro adult_eiil_irm celeba_attributes_inferred_group_dro
               celeba_attributes_eiil_irm)
fi
for experiment in "${experiments[@]}"; do
  for seed in $SEEDS; do
    dir="runs/$experiment/seeds/seed$seed"
    [ -f "$dir/metrics.json" ] && continue
    mkdir -p "$dir"
    if [ "$experiment" = colored_digits_group_dro ]; then choice="loss=group_dro"; else choice="experiment=$experiment"; fi
    echo "$choice seed=$seed paths.data_root=$DATA_ROOT hydra.run.dir=$dir"
  done
done | xargs -r -P "$JOBS" -L 1 sh -c \
  'OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} nice -n 10 '"$TRAIN"' "$0" "$@" trainer.progress=false \
     > "${3#hydra.run.dir=}/train.out" 2>&1 && echo "done $0 $1" || echo "FAILED $0 $1 (see ${3#hydra.run.dir=}/train.out)"'
