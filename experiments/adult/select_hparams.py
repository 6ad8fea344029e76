"""Pick each method's hyperparameters from a validation sweep table (``sweep.json``).

Rule: the highest validation worst-group accuracy of the selected checkpoint, ties broken by the
higher validation average accuracy. Only validation metrics are read; the test split plays no part.

    .venv/bin/python experiments/adult/select_hparams.py experiments/adult/sweep.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path, help="sweep.json written by sweep.sh")
    table = json.loads(parser.parse_args().sweep.read_text())
    best: dict[str, tuple[tuple[float, float], str]] = {}
    for row, stats in table.items():
        method, setting = row.split(", ", 1)
        score = (stats["val/acc_worst_group"]["mean"], stats["val/acc_avg"]["mean"])
        if method not in best or score > best[method][0]:
            best[method] = (score, setting)
    for method, ((worst, avg), setting) in best.items():
        print(f"{method}: {setting} (val worst-group {worst:.2f}%, val average {avg:.2f}%)")


if __name__ == "__main__":
    main()
