#!/usr/bin/env bash
# Every training run of experiments/colored_mnist/README.md, seeds 0-2, two runs at a time with one
# thread each (on a 2-core CPU this beats one run with two threads; a GPU user can raise JOBS).
# Usage: bash experiments/colored_mnist/run.sh [EXPERIMENT ...]   (default: all of them)
# Each run writes runs/<experiment><TAG>/seeds/seed<N>/ (skipped when its metrics.json exists; a run
# that died resumes from its last checkpoint). Then summarize with the command in the README.
# Extra overrides for every run: OVERRIDES="trainer.precision=bf16" TAG=_bf16 bash ... run.sh ...
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA_ROOT=${DATA_ROOT:-../shared/data}
JOBS=${JOBS:-2}
SEEDS=${SEEDS:-"0 1 2"}
TRAIN=${TRAIN:-.venv/bin/robustml-train}
OVERRIDES=${OVERRIDES:-}
TAG=${TAG:-}
experiments=("$@")
if [ ${#experiments[@]} -eq 0 ]; then
  experiments=(colored_mnist_oracle colored_mnist_erm colored_mnist_group_dro colored_mnist_vrex
               colored_mnist_irm colored_mnist_irm_val colored_mnist_cf_replace colored_mnist_group_balanced
               colored_mnist_cf_paired colored_mnist_cf_paired_consistency)
fi
for experiment in "${experiments[@]}"; do
  for seed in $SEEDS; do
    dir="runs/$experiment$TAG/seeds/seed$seed"
    [ -f "$dir/metrics.json" ] && continue
    mkdir -p "$dir"
    echo "$experiment seed=$seed data.root=$DATA_ROOT hydra.run.dir=$dir trainer.resume=true${OVERRIDES:+ $OVERRIDES}"  # no trailing blank: xargs -L would join lines
  done
done | xargs -r -P "$JOBS" -L 1 sh -c \
  'OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} '"$TRAIN"' experiment=$0 "$@" trainer.progress=false \
     > "${3#hydra.run.dir=}/train.out" 2>&1 && echo "done $0 $1" || echo "FAILED $0 $1 (see ${3#hydra.run.dir=}/train.out)"'
