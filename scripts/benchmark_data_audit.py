"""Time the data audit (:func:`robustml.audit.audit_data`) on Adult and CelebA's attribute table.

Each data set is built once, as ``robustml-audit --data`` builds it (its data config with
``data.root``), then the audit alone is timed; the target is under 30 s each. Prints one line per
data set: rows per split, the seconds and the number of findings.

    python scripts/benchmark_data_audit.py --root ../shared/data
"""

from __future__ import annotations

import argparse
import time

from robustml.audit import audit_data
from robustml.pipeline.audit import compose_audit_data

DATASETS = ("adult", "celeba_attributes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default="../shared/data", help="folder holding adult/ and celeba/")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    args = parser.parse_args()
    for name in args.datasets:
        splits = compose_audit_data(None, [f"data={name}", f"data.root={args.root}"])
        rows = "/".join(f"{len(d):,}" for _, d in splits.items())
        start = time.perf_counter()
        result = audit_data(splits)
        seconds = time.perf_counter() - start
        print(f"{name}: {rows} rows (train/val/test), {splits.train.x.shape[1]} columns: data audit in "
              f"{seconds:.1f} s, {len(result.findings)} findings (target < 30 s)")


if __name__ == "__main__":
    main()
