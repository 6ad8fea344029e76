"""The trackers in their own process, so that a run never waits for them.

Importing MLflow or TensorBoard and opening a store take seconds of Python work; in a thread of
the training process that work would hold the interpreter lock while data is built and the model
trains. :class:`TrackerProcess` starts ``python -m robustml.trackers`` (:mod:`robustml.trackers.__main__`)
instead: the child reads its trackers and the run's facts from the first line of its standard input, runs a
:class:`~robustml.trackers.worker.TrackerThread` on the run's ``metrics.jsonl``, and waits for a
second line, the finished run's outputs (or the end of its input: a run that stopped). It prints
where each tracker put the run, one line each, and exits. Its warnings reach the console
directly; whatever it does, the run's own files are the training process's alone.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from robustml.trackers.base import RunInfo, RunOutputs
from robustml.trackers.worker import JOIN_SECONDS

log = logging.getLogger(__name__)


class TrackerProcess:
    """Start the tracker process for one run.

    Args:
        specs: One spec per tracker (``{"kind": "tensorboard" | "mlflow", <its arguments>}``).
        info: What each tracker's ``start`` receives.
        metrics_path: The run's ``metrics.jsonl``.
        logged_through: Records of this step or earlier are not sent again (a resumed run).
    """

    def __init__(self, specs: list[dict[str, Any]], info: RunInfo, metrics_path: str | Path, *,
                 logged_through: int = 0) -> None:
        self.specs = specs
        # Its own session: a Ctrl-C reaches the training process only, which then says how the
        # run ended (KILLED). The child also ends when its input closes (the training process died).
        self._process = subprocess.Popen(
            [sys.executable, "-m", "robustml.trackers"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, start_new_session=True)
        start = {"specs": specs, "info": {**asdict(info), "run_dir": str(info.run_dir)},
                 "metrics_path": str(metrics_path), "logged_through": logged_through}
        try:
            self._process.stdin.write(json.dumps(start) + "\n")
            self._process.stdin.flush()
        except OSError as err:  # the child is gone already; finish() reports its exit code
            log.warning("trackers: their process did not start (%s); the run goes on", err)

    def finish(self, outputs: RunOutputs | None, status: str = "FINISHED") -> list[str]:
        """Send ``outputs`` (``None``: the run did not finish) and ``status``, wait for the child;
        return its lines that say where each tracker put the run."""
        with tempfile.TemporaryDirectory(prefix="robustml-trackers-") as tmp:
            message = {"status": status, "outputs": None if outputs is None else _encode(outputs, Path(tmp))}
            try:
                out, _ = self._process.communicate(json.dumps(message) + "\n",
                                                   timeout=JOIN_SECONDS if outputs is not None else 30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                log.warning("trackers: still sending after %.0f s, stopped; the run's own files are "
                            "complete", JOIN_SECONDS)
                return []
        if self._process.returncode != 0:
            log.warning("trackers: their process ended with exit code %d; the run's own files are "
                        "complete", self._process.returncode)
        return [line for line in out.splitlines() if line.strip()]


def _encode(outputs: RunOutputs, tmp: Path) -> dict[str, Any]:
    """Return ``outputs`` as JSON values; the model and its input example go to files in ``tmp``."""
    encoded = {"final": outputs.final, "selected_step": outputs.selected_step, "notes": outputs.notes,
               "files": {folder: [str(p) for p in paths] for folder, paths in outputs.files.items()},
               "model": None, "input_example": None}
    if outputs.model is not None:
        import numpy as np
        import torch

        try:  # the whole module, pickled, for mlflow.pytorch
            torch.save(outputs.model, tmp / "model.pt")
        except Exception as err:  # a module that does not pickle: the rest is still sent
            log.warning("trackers: the selected model cannot be pickled for registration (%s: %s); "
                        "its checkpoint is logged, nothing is registered", type(err).__name__, err)
            return encoded
        np.save(tmp / "input_example.npy", outputs.input_example)
        encoded["model"], encoded["input_example"] = str(tmp / "model.pt"), str(tmp / "input_example.npy")
    return encoded
