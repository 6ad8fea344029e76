#!/usr/bin/env bash
# The results table of experiments/celeba_attributes/README.md (the table of
# experiments/adult/summarize.sh, on CelebA attributes).
set -euo pipefail
cd "$(dirname "$0")/../.."
DATASET=celeba_attributes exec bash experiments/adult/summarize.sh
