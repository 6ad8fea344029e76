"""The tracker process (``python -m robustml.trackers``), started by
:class:`~robustml.trackers.process.TrackerProcess`: its first input line names the trackers and the
run, the second brings the finished run's outputs (none: the run stopped)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

from robustml.trackers.base import RunInfo, RunOutputs
from robustml.trackers.worker import TrackerThread

log = logging.getLogger("robustml.trackers")


def build_tracker(spec: dict[str, Any]) -> Any:
    """Return the tracker a spec names: ``{"kind": "tensorboard" | "mlflow", <its arguments>}``."""
    from robustml.trackers.mlflow_tracker import MlflowTracker
    from robustml.trackers.tensorboard_tracker import TensorBoardTracker

    kinds = {"tensorboard": TensorBoardTracker, "mlflow": MlflowTracker}
    arguments = {key: value for key, value in spec.items() if key != "kind"}
    return kinds[spec["kind"]](**arguments)


def _decode(encoded: dict[str, Any]) -> RunOutputs:
    model = example = None
    if encoded["model"] is not None:
        import numpy as np
        import torch

        model = torch.load(encoded["model"], weights_only=False)  # written by the run just now
        example = np.load(encoded["input_example"])
    return RunOutputs(final=encoded["final"], selected_step=encoded["selected_step"],
                      files={folder: [Path(p) for p in paths] for folder, paths in encoded["files"].items()},
                      model=model, input_example=example, notes=encoded["notes"])


def main() -> None:
    """The child: start the trackers, follow ``metrics.jsonl``, finish when told (or stopped)."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    start = json.loads(sys.stdin.readline())
    info = RunInfo(**{**start["info"], "run_dir": Path(start["info"]["run_dir"])})
    trackers = [build_tracker(spec) for spec in start["specs"]]
    thread = TrackerThread(trackers, info, start["metrics_path"], logged_through=start["logged_through"])
    line = sys.stdin.readline()  # blocks until the run ends; empty: the training process is gone
    message = json.loads(line) if line.strip() else {"status": "FAILED", "outputs": None}
    status, outputs = message["status"], None
    try:
        outputs = None if message["outputs"] is None else _decode(message["outputs"])
    except Exception as err:  # the metrics are sent; the outputs are not
        log.warning("trackers: the run's outputs could not be read (%s: %s); they stay in the run "
                    "folder only", type(err).__name__, err)
    thread.finish(outputs, status)
    for tracker in thread.trackers:
        print(tracker.where(), flush=True)


if __name__ == "__main__":
    main()
