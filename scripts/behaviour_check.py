"""Record, then compare, the outputs of a fixed set of runs: a refactor must change none of them.

    python scripts/behaviour_check.py record experiments/behaviour/reference.json --data-root ../shared/data
    python scripts/behaviour_check.py compare experiments/behaviour/reference.json --data-root ../shared/data

Each case runs its console command in a fresh temporary folder (every cache inside it, so no
stage is reused from an earlier run) with one thread per process. ``record`` writes every key of
each run's ``metrics.json`` (and of the audit's ``audit.json``) but timings and paths;
``compare`` reruns the cases and prints every key whose value differs, exiting 1 when one does.
Floats compare exactly: the refactor it guards moves code, it does not change arithmetic.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
QUIET = ["trainer.progress=false"]
# (name, command after the console script, the file whose keys are compared)
CASES: list[tuple[str, list[str], str]] = [
    ("demo", ["robustml-train"], "metrics.json"),
    ("group_dro", ["robustml-train", "loss=group_dro"], "metrics.json"),
    ("jtt", ["robustml-train", "experiment=colored_digits_jtt"], "metrics.json"),
    ("dfr", ["robustml-train", "experiment=colored_digits_dfr"], "metrics.json"),
    ("inferred_group_dro", ["robustml-train", "experiment=colored_digits_inferred_group_dro"], "metrics.json"),
    ("eiil_irm", ["robustml-train", "experiment=colored_digits_eiil_irm"], "metrics.json"),
    ("cleaning", ["robustml-train", "cleaning=confident_learning"], "metrics.json"),
    ("adult_group_dro", ["robustml-train", "experiment=adult_group_dro", "data.root={data_root}"], "metrics.json"),
    ("torchrun_group_dro", ["torchrun", "--standalone", "--nproc_per_node=2", "--no-python",
                            str(BIN / "robustml-train"), "loss=group_dro", "sampler=group_balanced",
                            "trainer.batch_size=64", "trainer.max_steps=20"], "metrics.json"),
    ("audit_demo", ["robustml-audit", "{run:demo}", "--split", "val"], "audit/audit.json"),
]
# Keys that measure time or name a folder: they differ between any two runs (a value naming the
# temporary folder is compared with the folder replaced by "<tmp>").
SKIPPED_SUFFIXES = ("seconds", "_dir", "_cache", "path")
# Keys added on purpose after the reference was recorded (the health checks of issue 20, the
# predicted-class shares and DFR's tuning counts they read): new output, not a changed one.
ADDED_PREFIXES = ("health/",)
ADDED_PARTS = ("pred_share_", "dfr/tuning_fit_count_", "dfr/tuning_score_count_")


def _added(key: str) -> bool:
    return key.startswith(ADDED_PREFIXES) or any(part in key for part in ADDED_PARTS)


def _comparable(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Flatten ``tree`` to ``{"a/b": leaf}`` without the keys of :data:`SKIPPED_SUFFIXES`."""
    if isinstance(tree, dict):
        out: dict[str, Any] = {}
        for key, value in tree.items():
            if not str(key).endswith(SKIPPED_SUFFIXES) and not _added(str(key)):
                out.update(_comparable(value, f"{prefix}/{key}" if prefix else str(key)))
        return out
    if isinstance(tree, list):
        return {prefix: [_comparable(item) if isinstance(item, (dict, list)) else item for item in tree]}
    return {prefix: tree}


def run_cases(data_root: str, only: list[str] | None) -> dict[str, dict[str, Any]]:
    """Run every case (or those named in ``only``) in one temporary folder; return their outputs."""
    results: dict[str, dict[str, Any]] = {}
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ROBUSTML_DATA": str(Path(data_root).resolve())}
    with tempfile.TemporaryDirectory() as tmp:
        env["ROBUSTML_OUTPUT"] = str(Path(tmp) / "runs")
        for name, command, output in CASES:
            if only and name not in only:
                continue
            folder = Path(tmp) / name
            args = [part.format(data_root=Path(data_root).resolve(), run=_RunFolders(tmp))
                    for part in command]
            if args[0].startswith("robustml-train") or "--no-python" in args:
                args += QUIET + [f"hydra.run.dir={folder}"]
            program = args[0] if args[0].startswith("/") else str(BIN / args[0])
            done = subprocess.run([program, *args[1:]], cwd=tmp, env=env, capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"case {name} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
            source = (Path(tmp) / args[1] / output) if name.startswith("audit") else folder / output
            results[name] = _comparable(json.loads(source.read_text().replace(tmp, "<tmp>")))
            print(f"{name}: {len(results[name])} keys", flush=True)
    return results


class _RunFolders:
    """``{run:<case>}`` in a command: the folder of an earlier case."""

    def __init__(self, tmp: str) -> None:
        self.tmp = tmp

    def __format__(self, spec: str) -> str:
        return str(Path(self.tmp) / spec)


def compare(expected: dict[str, dict[str, Any]], found: dict[str, dict[str, Any]]) -> list[str]:
    """Return one line per case and key whose value differs (or is missing on one side)."""
    lines = []
    for case in sorted(set(expected) & set(found)):
        want, have = expected[case], found[case]
        for key in sorted(set(want) | set(have)):
            if want.get(key, "<absent>") != have.get(key, "<absent>"):
                lines.append(f"{case}: {key}: before {want.get(key, '<absent>')!r}, "
                             f"now {have.get(key, '<absent>')!r}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=("record", "compare"))
    parser.add_argument("file", type=Path)
    parser.add_argument("--data-root", default="../shared/data")
    parser.add_argument("--only", nargs="*", default=None, help="case names (default: all)")
    args = parser.parse_args()
    found = run_cases(args.data_root, args.only)
    if args.action == "record":
        args.file.parent.mkdir(parents=True, exist_ok=True)
        args.file.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")
        print(f"recorded {len(found)} cases in {args.file}")
        return
    expected = json.loads(args.file.read_text())
    lines = compare(expected, found)
    print("\n".join(lines) if lines else f"all {len(found)} cases equal ({sum(map(len, found.values()))} keys)")
    sys.exit(1 if lines else 0)


if __name__ == "__main__":
    main()
