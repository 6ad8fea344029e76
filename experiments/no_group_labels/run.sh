#!/usr/bin/env bash
# Every training run of experiments/no_group_labels/README.md (the rows this session owns), seeds
# 0-2, one torch thread per run, JOBS runs at a time (default 1).
# Usage: bash experiments/no_group_labels/run.sh [EXPERIMENT ...]   (default: all of them)
# Each run writes runs/<experiment>/seeds/seed<N>/ (skipped when its metrics.json exists); ERM
# reference stages land in runs/reference_cache/<config hash>/ and are shared by the rows whose
# reference configs are equal (the same data, model, optimizer, trainer values and seed).
# colored_digits_eiil_irm_last is colored_digits_eiil_irm reporting the last step (trainer.select=last).
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA_ROOT=${DATA_ROOT:-../shared/data}
JOBS=${JOBS:-1}
SEEDS=${SEEDS:-"0 1 2"}
TRAIN=${TRAIN:-.venv/bin/robustml-train}
experiments=("$@")
if [ ${#experiments[@]} -eq 0 ]; then
  experiments=(colored_digits_group_dro colored_digits_inferred_group_dro colored_digits_eiil_irm
               colored_digits_eiil_irm_last
               colored_mnist_eiil_irm colored_mnist_inferred_group_dro
               adult_inferred_group_dro adult_eiil_irm celeba_attributes_inferred_group_dro
               celeba_attributes_eiil_irm)
fi
for experiment in "${experiments[@]}"; do
  for seed in $SEEDS; do
    dir="runs/$experiment/seeds/seed$seed"
    [ -f "$dir/metrics.json" ] && continue
    mkdir -p "$dir"
    case "$experiment" in
      colored_digits_eiil_irm_last) choice="experiment=colored_digits_eiil_irm trainer.select=last" ;;
      *) choice="experiment=$experiment" ;;
    esac
    echo "hydra.run.dir=$dir $choice seed=$seed paths.data_root=$DATA_ROOT"
  done
done | xargs -r -P "$JOBS" -L 1 sh -c \
  'OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} nice -n 10 '"$TRAIN"' "$0" "$@" trainer.progress=false \
     > "${0#hydra.run.dir=}/train.out" 2>&1 && echo "done $*" || echo "FAILED $* (see ${0#hydra.run.dir=}/train.out)"'
