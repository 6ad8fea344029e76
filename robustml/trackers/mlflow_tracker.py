"""MLflow: a run's evaluations, config, group-label ledger, outputs and selected model.

One MLflow run per robustml run: parameters are the resolved config (flattened keys, values as
text, cut at MLflow's 6,000 characters; ``config.yaml`` among the artifacts holds it whole); tags
the group-label ledger and the run folder; metrics every evaluation's numbers at their step and
the selected model's ``metrics.json`` numbers as ``selected/...``; artifacts ``report.md``,
``metrics.json``, ``config.yaml``, ``plots/`` and the selected checkpoint. With a
``register_model`` name the selected model is logged with ``mlflow.pytorch`` (pickled, so loading
it needs robustml installed) and registered as a new version of that name. A resumed run
continues the MLflow run that holds its folder's tag.
"""

from __future__ import annotations

import os
import time
from contextlib import nullcontext
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from robustml.trackers.base import RunInfo, RunOutputs, numeric_values, text_values

SETTING = "logger.mlflow.tracking_uri"
RUN_DIR_TAG = "robustml.run_dir"
MAX_PARAM_LENGTH = 6000  # mlflow.utils.validation.MAX_PARAM_VAL_LENGTH
BATCH = 100              # parameters per log_batch call (MLflow's limit)


def sqlite_path(uri: str) -> Path | None:
    """Return the database file of a ``sqlite:///`` URI (``None`` for other URIs)."""
    return Path(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else None


def check_tracking_uri(uri: str) -> None:
    """Raise naming ``logger.mlflow.tracking_uri`` when the store cannot be reached or created.

    A ``sqlite:///`` file or a local folder (``file:`` or a plain path) needs a folder that can be
    created and written; an ``http(s)://`` server must answer (any HTTP status counts, a refused
    connection or a 10-second silence does not). Other schemes (``postgresql://``, ...) are asked
    for one experiment through the MLflow client.
    """
    if uri.startswith(("http://", "https://")):
        try:
            urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=10).close()
        except urllib.error.HTTPError:
            return  # the server answered
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise ConnectionError(
                f"{SETTING}={uri} is unreachable ({reason}); start the tracking server "
                f"(mlflow server --host ... --port ...), set {SETTING} to a reachable one, or drop "
                "logger=mlflow (nothing was trained)") from err
        return
    folder = sqlite_path(uri)
    if folder is not None:
        folder = folder.parent
    elif "://" not in uri:
        folder = Path(uri.removeprefix("file:"))
    if folder is None:
        from mlflow.tracking import MlflowClient
        try:
            MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
        except Exception as err:
            raise ConnectionError(f"{SETTING}={uri} is unreachable ({type(err).__name__}: {err}); "
                                  f"set {SETTING} to a reachable store, or drop logger=mlflow "
                                  "(nothing was trained)") from err
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConnectionError(f"{SETTING}={uri}: cannot create the folder {folder} ({err}); "
                              f"set {SETTING} to a writable place") from err
    if not os.access(folder, os.W_OK):
        raise ConnectionError(f"{SETTING}={uri}: the folder {folder} is not writable; "
                              f"set {SETTING} to a writable place")


class MlflowTracker:
    """Log one run to MLflow.

    Args:
        tracking_uri: The store (``sqlite:///...``, a folder, ``http(s)://...``); also the
            model registry's.
        experiment: The experiment's name; created when absent.
        artifact_location: Where a new experiment keeps its artifacts (``None``: the store's
            default; local stores get an absolute folder so that no ``mlruns/`` appears in the
            working directory).
        register_model: Register the selected model under this name (``None``: no registration).
    """

    name = "MLflow"
    setting = "logger=mlflow"

    def __init__(self, tracking_uri: str, experiment: str, *, artifact_location: str | None = None,
                 register_model: str | None = None) -> None:
        self.tracking_uri, self.experiment = tracking_uri, experiment
        self.artifact_location, self.register_model = artifact_location, register_model
        self.run_id: str | None = None
        self._client: Any = None

    def start(self, info: RunInfo) -> None:
        from filelock import FileLock
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        database = sqlite_path(self.tracking_uri)
        # Jobs of a parallel sweep share the database: one creates its tables, then the others.
        lock = FileLock(f"{database}.lock") if database is not None else None
        with lock if lock is not None else nullcontext():
            self._client = client = MlflowClient(tracking_uri=self.tracking_uri,
                                                 registry_uri=self.tracking_uri)
            experiment = client.get_experiment_by_name(self.experiment)
            experiment_id = (experiment.experiment_id if experiment is not None else
                             client.create_experiment(self.experiment,
                                                      artifact_location=self.artifact_location))
        tags = {**info.tags, RUN_DIR_TAG: str(info.run_dir.resolve())}
        if info.resumed:
            found = client.search_runs([experiment_id],
                                       filter_string=f"tags.`{RUN_DIR_TAG}` = '{tags[RUN_DIR_TAG]}'",
                                       max_results=1)
            if found:
                self.run_id = found[0].info.run_id
                client.update_run(self.run_id, status="RUNNING")
                return  # its parameters are logged (and immutable)
        self.run_id = client.create_run(experiment_id, run_name=info.name, tags=tags).info.run_id
        params = [Param(key, str(value)[:MAX_PARAM_LENGTH]) for key, value in info.params.items()]
        for start in range(0, len(params), BATCH):
            client.log_batch(self.run_id, params=params[start:start + BATCH])

    def log_metrics(self, step: int, values: dict[str, float]) -> None:
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        self._client.log_batch(self.run_id, metrics=[Metric(key, value, stamp, step)
                                                     for key, value in values.items()])

    def finish(self, outputs: RunOutputs) -> None:
        self.log_metrics(outputs.selected_step, {f"selected/{key}": value
                                                 for key, value in numeric_values(outputs.final).items()})
        for key, value in text_values(outputs.final).items():
            self._client.set_tag(self.run_id, f"selected/{key}", value[:8000])
        for folder, paths in outputs.files.items():
            for path in paths:
                if path.is_dir():
                    self._client.log_artifacts(self.run_id, str(path), artifact_path=path.name)
                elif path.is_file():
                    self._client.log_artifact(self.run_id, str(path), artifact_path=folder or None)
        if self.register_model and outputs.model is not None:
            self._register(outputs)

    def _register(self, outputs: RunOutputs) -> None:
        import mlflow
        import mlflow.pytorch
        import torch

        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        with mlflow.start_run(run_id=self.run_id):
            mlflow.pytorch.log_model(
                outputs.model, name="model", registered_model_name=self.register_model,
                serialization_format="pickle", input_example=outputs.input_example,
                pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"])

    def close(self, status: str) -> None:
        if self._client is not None and self.run_id is not None:
            self._client.set_terminated(self.run_id, status=status)

    def where(self) -> str:
        """Return the line that says where the run is and how to view it."""
        return (f"MLflow: run {self.run_id} in experiment '{self.experiment}'; view with: "
                f"mlflow ui --backend-store-uri {self.tracking_uri}")

