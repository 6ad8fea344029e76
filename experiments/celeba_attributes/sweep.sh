#!/usr/bin/env bash
# The validation-only hyperparameter search of experiments/celeba_attributes/README.md (the grid
# and the table of experiments/adult/sweep.sh, on CelebA attributes).
set -euo pipefail
cd "$(dirname "$0")/../.."
DATASET=celeba_attributes exec bash experiments/adult/sweep.sh
