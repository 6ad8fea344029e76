"""TensorBoard: a run's evaluations as scalars in event files, through ``torch.utils.tensorboard``.

Every evaluation's numbers are scalars under their record keys (``val/acc_worst_group``,
``train/q_0``, ``train/loss``, ...) at their step; the resolved config (as YAML) and the group-label
ledger are text summaries; the selected model's ``metrics.json`` numbers are scalars under
``selected/...`` at the selected step, and ``report.md`` is a text summary. TensorBoard has no
parameters or artifacts: the run folder keeps the files. ``tensorboard --logdir <folder>`` shows
every run whose event files lie under the folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from robustml.trackers.base import RunInfo, RunOutputs, numeric_values


class TensorBoardTracker:
    """Write event files into ``log_dir``.

    Args:
        log_dir: The event files' folder (``<run dir>/tensorboard`` by default in
            ``configs/logger/tensorboard.yaml``).
    """

    name = "TensorBoard"
    setting = "logger=tensorboard"

    def __init__(self, log_dir: str | Path) -> None:
        self.log_dir = Path(log_dir)
        self._writer: Any = None

    def start(self, info: RunInfo) -> None:
        from torch.utils.tensorboard import SummaryWriter  # tensorboard loads only when chosen

        self._writer = SummaryWriter(log_dir=str(self.log_dir))
        config = "\n".join(f"{key}: {json.dumps(value)}" for key, value in info.params.items())
        self._writer.add_text("config", f"```yaml\n{config}\n```")
        for key, value in info.tags.items():
            self._writer.add_text(key, value)

    def log_metrics(self, step: int, values: dict[str, float]) -> None:
        for key, value in values.items():
            self._writer.add_scalar(key, value, global_step=step)

    def finish(self, outputs: RunOutputs) -> None:
        for key, value in numeric_values(outputs.final).items():
            self._writer.add_scalar(f"selected/{key}", value, global_step=outputs.selected_step)
        for path in outputs.files.get("", []):
            if path.name == "report.md":
                self._writer.add_text("report", path.read_text())

    def close(self, status: str) -> None:
        if self._writer is not None:
            self._writer.close()

    def where(self) -> str:
        """Return the line that says how to view the run."""
        return f"TensorBoard: tensorboard --logdir {self.log_dir}"
