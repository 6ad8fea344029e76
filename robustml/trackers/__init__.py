"""Experiment trackers: a run's evaluations, config and outputs sent to TensorBoard or MLflow.

Optional (``pip install 'robustml[trackers]'``): nothing here imports tensorboard or mlflow until a
tracker starts. :class:`TrackerProcess` runs the trackers in a child process, where a
:class:`TrackerThread` feeds them from the run's ``metrics.jsonl``; ``robustml-train logger=...``
builds them from the config (:mod:`robustml.pipeline.trackers`).
"""

from robustml.trackers.base import EXTRA, RunInfo, RunOutputs, numeric_values, require_module
from robustml.trackers.mlflow_tracker import MlflowTracker, check_tracking_uri
from robustml.trackers.process import TrackerProcess
from robustml.trackers.tensorboard_tracker import TensorBoardTracker
from robustml.trackers.worker import TrackerThread

__all__ = ["EXTRA", "MlflowTracker", "RunInfo", "RunOutputs", "TensorBoardTracker", "TrackerProcess",
           "TrackerThread",
           "check_tracking_uri", "numeric_values", "require_module"]
