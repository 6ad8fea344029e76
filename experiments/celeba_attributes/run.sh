#!/usr/bin/env bash
# Every training run of experiments/celeba_attributes/README.md: the four rows, seeds 0-2, two runs at a time
# with one thread each, through the shared runner experiments/colored_mnist/run.sh (same
# variables: SEEDS, JOBS, TAG, OVERRIDES, DATA_ROOT). Runs land in runs/<row><TAG>/seeds/seed<N>/;
# finished runs are skipped.
# Usage: bash experiments/celeba_attributes/run.sh [EXPERIMENT ...]   (default: the four rows)
set -euo pipefail
cd "$(dirname "$0")/../.."
rows=("$@")
[ ${#rows[@]} -eq 0 ] && rows=(celeba_attributes_erm celeba_attributes_group_balanced celeba_attributes_reweight celeba_attributes_group_dro)
bash experiments/colored_mnist/run.sh "${rows[@]}"
