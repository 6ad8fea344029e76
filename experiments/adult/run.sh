#!/usr/bin/env bash
# Every training run of experiments/adult/README.md: the four rows, seeds 0-2, two runs at a time
# with one thread each, through the shared runner experiments/colored_mnist/run.sh (same
# variables: SEEDS, JOBS, TAG, OVERRIDES, DATA_ROOT). Runs land in runs/<row><TAG>/seeds/seed<N>/;
# finished runs are skipped.
# Usage: bash experiments/adult/run.sh [EXPERIMENT ...]   (default: the four rows)
set -euo pipefail
cd "$(dirname "$0")/../.."
rows=("$@")
[ ${#rows[@]} -eq 0 ] && rows=(adult_erm adult_group_balanced adult_reweight adult_group_dro)
bash experiments/colored_mnist/run.sh "${rows[@]}"
