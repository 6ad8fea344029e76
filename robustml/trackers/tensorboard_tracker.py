"""TensorBoard: a run's evaluations as scalars in event files, written with tensorboard's own
event writer (no torch or TensorFlow import: the tracker process stays light).

Every evaluation's numbers are scalars under their record keys (``val/acc_worst_group``,
``train/q_0``, ``train/loss``, ...) at their step; the resolved config (as YAML) and the group-label
ledger are text summaries; the selected model's ``metrics.json`` numbers are scalars under
``selected/...`` at the selected step, and ``report.md`` is a text summary. TensorBoard has no
parameters or artifacts: the run folder keeps the files. ``tensorboard --logdir <folder>`` shows
every run whose event files lie under the folder.
"""

from __future__ import annotations

import json
import time
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
        from tensorboard.summary.writer.event_file_writer import EventFileWriter  # loads when chosen

        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._writer = EventFileWriter(str(self.log_dir))
        config = "\n".join(f"{key}: {json.dumps(value)}" for key, value in info.params.items())
        self._text("config", f"```yaml\n{config}\n```", step=0)
        for key, value in info.tags.items():
            self._text(key, value, step=0)

    def log_metrics(self, step: int, values: dict[str, float]) -> None:
        from tensorboard.compat.proto.summary_pb2 import Summary

        self._add(Summary(value=[Summary.Value(tag=key, simple_value=value)
                                 for key, value in values.items()]), step)

    def finish(self, outputs: RunOutputs) -> None:
        self.log_metrics(outputs.selected_step, {f"selected/{key}": value
                                                 for key, value in numeric_values(outputs.final).items()})
        for path in outputs.files.get("", []):
            if path.name == "report.md":
                self._text("report", path.read_text(), step=outputs.selected_step)

    def _add(self, summary: Any, step: int) -> None:
        from tensorboard.compat.proto.event_pb2 import Event

        self._writer.add_event(Event(wall_time=time.time(), step=step, summary=summary))

    def _text(self, tag: str, text: str, step: int) -> None:
        """Add a text summary as TensorBoard's text plugin reads it (``<tag>/text_summary``)."""
        from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
        from tensorboard.compat.proto.tensor_pb2 import TensorProto
        from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
        from tensorboard.plugins.text.plugin_data_pb2 import TextPluginData

        metadata = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(
            plugin_name="text", content=TextPluginData(version=0).SerializeToString()))
        tensor = TensorProto(dtype="DT_STRING", string_val=[text.encode("utf-8")],
                             tensor_shape=TensorShapeProto(dim=[TensorShapeProto.Dim(size=1)]))
        self._add(Summary(value=[Summary.Value(tag=f"{tag}/text_summary", metadata=metadata,
                                               tensor=tensor)]), step)

    def close(self, status: str) -> None:
        if self._writer is not None:
            self._writer.close()

    def where(self) -> str:
        """Return the line that says how to view the run."""
        return f"TensorBoard: tensorboard --logdir {self.log_dir}"
