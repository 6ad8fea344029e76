"""Send a run to its trackers from a background thread, reading the run's own ``metrics.jsonl``.

The training loop knows nothing of trackers: it appends each evaluation to ``metrics.jsonl`` (and a
resumed run rewrites the file, atomically, to its checkpoint's history). :class:`TrackerThread`
reads the lines that appear there (every :data:`POLL_SECONDS`, and once more at the end), so the
trackers get exactly the run's records; it runs in the tracker process
(:mod:`robustml.trackers.process`), so importing a tracker, opening its store and each call run
beside training. A tracker whose call raises is reported in one warning line and dropped; the run
and its own files go on unaffected.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

from robustml.trackers.base import RunInfo, RunOutputs, numeric_values

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
JOIN_SECONDS = 600.0  # the longest wait for the trackers at the end of a run (uploads, registry)


class TrackerThread:
    """Start ``trackers`` and feed them the evaluations of ``metrics_path`` as they are written.

    Args:
        trackers: Objects with ``start``, ``log_metrics``, ``finish`` and ``close``
            (:mod:`robustml.trackers.base`), a ``name`` and a ``setting``.
        info: What each tracker's ``start`` receives.
        metrics_path: The run's ``metrics.jsonl``.
        logged_through: Records of this step or earlier are not sent (a resumed run's trackers
            already hold them).
    """

    def __init__(self, trackers: list[Any], info: RunInfo, metrics_path: str | Path, *,
                 logged_through: int = 0) -> None:
        self.trackers, self.info = list(trackers), info
        self.metrics_path = Path(metrics_path)
        self.logged_through = logged_through
        self.failed: list[str] = []
        self._tail = JsonlTail(self.metrics_path)
        self._stop = threading.Event()
        self._outputs: RunOutputs | None = None
        self._status = "FAILED"
        self._thread = threading.Thread(target=self._work, name="robustml-trackers", daemon=True)
        self._thread.start()

    def finish(self, outputs: RunOutputs | None, status: str = "FINISHED") -> None:
        """Send the remaining evaluations and ``outputs`` (``None``: a run that did not finish),
        close every tracker with ``status`` (``FINISHED``, ``FAILED`` or ``KILLED``) and wait."""
        self._outputs, self._status = outputs, status
        self._stop.set()
        self._thread.join(JOIN_SECONDS if outputs is not None else 30.0)
        if self._thread.is_alive():
            log.warning("trackers: still sending after %.0f s; the run's own files are complete "
                        "(%s)", JOIN_SECONDS, self.metrics_path.parent)

    def _work(self) -> None:
        self._call("start", self.info)
        while not self._stop.wait(POLL_SECONDS):
            self._send_new_records()
        self._send_new_records()
        if self._outputs is not None:
            for note in self._outputs.notes:
                log.warning(note)
            self._call("finish", self._outputs)
        for tracker in list(self.trackers):
            try:
                tracker.close(self._status)
            except Exception as err:  # reported, the run's files are untouched
                self._drop(tracker, "close", err)

    def _call(self, method: str, *args: Any) -> None:
        for tracker in list(self.trackers):
            try:
                getattr(tracker, method)(*args)
            except Exception as err:
                self._drop(tracker, method, err)
                try:
                    tracker.close("FAILED")
                except Exception:
                    pass  # the failure above is already reported

    def _drop(self, tracker: Any, method: str, err: Exception) -> None:
        if tracker in self.trackers:
            self.trackers.remove(tracker)
        self.failed.append(tracker.name)
        log.warning("%s stopped logging (%s failed: %s: %s); the run goes on and its own files "
                    "(%s) are complete; check the tracker's store, or drop %s",
                    tracker.name, method, type(err).__name__, err, self.metrics_path.parent,
                    tracker.setting)

    def _send_new_records(self) -> None:
        for record in self._tail.new_records():
            step = int(record["step"])
            if step <= self.logged_through:
                continue
            self.logged_through = step
            self._call("log_metrics", step, numeric_values(record))


class JsonlTail:
    """Read the complete lines added to a JSON-lines file since the last read.

    A file replaced since (a resume rewrites ``metrics.jsonl`` atomically) or cut shorter is read
    again from its start; a line still being written waits for its end.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._offset, self._file_id, self._partial = 0, None, b""

    def new_records(self) -> list[dict[str, Any]]:
        """Return the records of the lines completed since the last call, parsed."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return []
        file_id = (stat.st_dev, stat.st_ino)
        if file_id != self._file_id or stat.st_size < self._offset:
            self._file_id, self._offset, self._partial = file_id, 0, b""
        if stat.st_size == self._offset:
            return []
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            data = f.read()
        self._offset += len(data)
        *lines, self._partial = (self._partial + data).split(b"\n")
        return [json.loads(line) for line in lines if line.strip()]
