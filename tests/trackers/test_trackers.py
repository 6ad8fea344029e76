"""Trackers (logger=): runs read back with the real MLflow client and TensorBoard's event reader;
bad settings stop before training; a tracker that fails leaves the run and its files intact."""

from __future__ import annotations

import http.server
import json
import logging
import socket
import sys
import threading

import pytest
import torch

from support import compose_train

from robustml.pipeline.labels import describe_group_label_use
from robustml.pipeline.run import run
from robustml.trackers import MlflowTracker, RunInfo, TrackerThread, numeric_values
from robustml.trackers.worker import JsonlTail

pytest.importorskip("mlflow", reason="the trackers extra (mlflow-skinny) is not installed")
pytest.importorskip("tensorboard", reason="the trackers extra (tensorboard) is not installed")

TINY = ["trainer.max_steps=6", "trainer.eval_every=2", "trainer.progress=false", "model.hidden_dims=[16]",
        "loss=group_dro"]


def _records(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    """One tiny Group DRO run with both trackers and a registered model."""
    root = tmp_path_factory.mktemp("tracked")
    cfg = compose_train([*TINY, "logger=[tensorboard,mlflow]", "logger.mlflow.register_model=digits",
                         f"paths.output_root={root / 'runs'}"])
    run_dir = root / "runs" / "one"
    run(cfg, run_dir=run_dir, summary="none")
    return cfg, run_dir, f"sqlite:///{root / 'runs' / 'mlflow.db'}"


def _mlflow_run(uri, experiment):
    from mlflow.tracking import MlflowClient
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    (found,) = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    return client, found


def test_tensorboard_events_hold_every_evaluation_the_config_and_the_ledger(tracked):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    cfg, run_dir, _ = tracked
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    records = _records(run_dir)
    for key in ("val/acc_worst_group", "val/acc_avg", "val/acc_group_2", "train/q_0", "train/loss_group_1",
                "train/loss"):
        scalars = events.Scalars(key)
        assert [s.step for s in scalars] == [r["step"] for r in records] == [2, 4, 6]
        assert [s.value for s in scalars] == pytest.approx([r[key] for r in records], rel=1e-6)
    final = json.loads((run_dir / "metrics.json").read_text())
    (selected,) = events.Scalars("selected/test/acc_worst_group")
    assert selected.step == final["selected_step"]
    assert selected.value == pytest.approx(final["test/acc_worst_group"], rel=1e-6)

    def text(tag):
        return events.Tensors(f"{tag}/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "optimizer.lr: 0.001" in text("config")
    assert text("group_labels.training") == describe_group_label_use(cfg)["training"]
    assert "worst-group report" in text("report")


def test_mlflow_run_holds_metrics_params_ledger_artifacts_and_registered_model(tracked, monkeypatch):
    import mlflow.pytorch
    cfg, run_dir, uri = tracked
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # where models:/ URIs are looked up
    client, found = _mlflow_run(uri, cfg.name)
    run_id = found.info.run_id
    assert found.info.status == "FINISHED" and found.info.run_name == "one"
    records = _records(run_dir)
    for key in ("val/acc_worst_group", "val/acc_weighted_avg", "train/q_3", "train/loss", "lr"):
        history = sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)
        assert [(m.step, m.value) for m in history] == [(r["step"], pytest.approx(r[key])) for r in records]
    final = json.loads((run_dir / "metrics.json").read_text())
    assert found.data.metrics["selected/test/acc_worst_group"] == pytest.approx(final["test/acc_worst_group"])
    assert found.data.params["optimizer.lr"] == "0.001"
    assert found.data.params["loss.criterion.step_size"] == str(cfg.loss.criterion.step_size)
    uses = describe_group_label_use(cfg)
    assert {k: found.data.tags[f"group_labels.{k}"] for k in uses} == uses
    assert found.data.tags["robustml.run_dir"] == str(run_dir.resolve())
    top = {a.path for a in client.list_artifacts(run_id)}
    assert {"report.md", "metrics.json", "config.yaml", "plots", "checkpoints"} <= top
    assert [a.path for a in client.list_artifacts(run_id, "checkpoints")] == ["checkpoints/best.pt"]
    # The registered model is the selected one: the same logits as checkpoints/best.pt.
    (version,) = client.search_model_versions("name='digits'")
    assert version.run_id == run_id
    registered = mlflow.pytorch.load_model("models:/digits/1")
    from robustml.models import MLP
    model = MLP((2, 8, 8), num_outputs=1, hidden_dims=(16,))
    model.load_state_dict(torch.load(run_dir / "checkpoints" / "best.pt", weights_only=True)["model"])
    x = torch.rand(5, 2, 8, 8)
    with torch.no_grad():
        assert torch.equal(registered.eval()(x), model.eval()(x))


def test_a_resumed_run_continues_its_mlflow_run_without_repeating_steps(tmp_path):
    args = [*TINY, "logger=mlflow", f"paths.output_root={tmp_path / 'runs'}"]
    run(compose_train(args), run_dir=tmp_path / "r", summary="none")
    run(compose_train([*args, "trainer.resume=true"]), run_dir=tmp_path / "r", summary="none")
    client, found = _mlflow_run(f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}", "colored_digits_group_dro")
    steps = [m.step for m in client.get_metric_history(found.info.run_id, "val/acc_worst_group")]
    assert sorted(steps) == [2, 4, 6]


class _RejectingServer(http.server.BaseHTTPRequestHandler):
    """A tracking server that answers its health check, then fails every MLflow call."""

    def _answer(self):
        healthy = self.path == "/health"
        body = b"OK" if healthy else b'{"error_code": "INTERNAL_ERROR", "message": "store is down"}'
        self.send_response(200 if healthy else 400)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


def test_a_tracker_that_fails_during_the_run_leaves_the_run_and_its_files(tmp_path, capfd):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RejectingServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        uri = f"http://127.0.0.1:{server.server_address[1]}"
        cfg = compose_train([*TINY, "logger=[tensorboard,mlflow]", f"logger.mlflow.tracking_uri={uri}"])
        final = run(cfg, run_dir=tmp_path, summary="none")
    finally:
        server.shutdown()
    assert [r["step"] for r in _records(tmp_path)] == [2, 4, 6]
    assert (tmp_path / "report.md").is_file() and final["steps"] == 6
    err = capfd.readouterr().err
    assert "MLflow stopped logging (start failed: " in err and "store is down" in err
    assert "the run goes on and its own files" in err and "drop logger=mlflow" in err
    # The other tracker went on.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert [s.step for s in events.Scalars("val/acc_worst_group")] == [2, 4, 6]


def test_the_thread_drops_a_tracker_whose_call_fails_and_feeds_the_others(tmp_path, caplog):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 2, "a": 1}\n{"step": 4, "a": 0.5}\n{"step": 6, "a": 0.25}\n')
    failing, healthy = _Recorder(fail_at=4), _Recorder()
    with caplog.at_level(logging.WARNING):
        thread = TrackerThread([failing, healthy], RunInfo("r", tmp_path, {}, {}), path)
        thread.finish(None, "FAILED")
    assert [c[1] for c in failing.calls if c[0] == "log"] == [2, 4]
    assert failing.calls[-1] == ("close", "FAILED")  # closed once, after its failure
    assert [c[1] for c in healthy.calls if c[0] == "log"] == [2, 4, 6]
    (warning,) = [r.getMessage() for r in caplog.records]
    assert warning.startswith("Recorder stopped logging (log_metrics failed: OSError: disk full)")
    assert "drop logger=recorder" in warning


def test_logger_mlflow_without_mlflow_names_the_extra_before_training(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # importlib.util.find_spec finds nothing
    cfg = compose_train([*TINY, "logger=mlflow", f"paths.output_root={tmp_path}"])
    with pytest.raises(ModuleNotFoundError, match=r"logger=mlflow needs the mlflow package, which is "
                       r"not installed: pip install 'robustml\[trackers\]'"):
        run(cfg, run_dir=tmp_path / "r", summary="none")
    assert not (tmp_path / "r" / "metrics.jsonl").exists()


def test_an_unreachable_tracking_uri_stops_before_training_naming_it(tmp_path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    uri = f"http://127.0.0.1:{port}"
    cfg = compose_train([*TINY, "logger=mlflow", f"logger.mlflow.tracking_uri={uri}"])
    with pytest.raises(ConnectionError, match=rf"logger.mlflow.tracking_uri={uri} is unreachable"):
        run(cfg, run_dir=tmp_path / "r", summary="none")
    assert not (tmp_path / "r" / "metrics.jsonl").exists()
    (tmp_path / "file").write_text("")
    cfg = compose_train([*TINY, "logger=mlflow", f"logger.mlflow.tracking_uri=sqlite:///{tmp_path}/file/x.db"])
    with pytest.raises(ConnectionError, match="cannot create the folder"):
        run(cfg, run_dir=tmp_path / "s", summary="none")


class _Recorder:
    name, setting = "Recorder", "logger=recorder"

    def __init__(self, fail_at=None):
        self.calls, self.fail_at = [], fail_at

    def start(self, info):
        self.calls.append(("start", info.name))

    def log_metrics(self, step, values):
        self.calls.append(("log", step, values))
        if step == self.fail_at:
            raise OSError("disk full")

    def finish(self, outputs):
        self.calls.append(("finish", outputs))

    def close(self, status):
        self.calls.append(("close", status))


def test_the_tail_reads_complete_lines_once_and_a_rewritten_file_again(tmp_path):
    path = tmp_path / "metrics.jsonl"
    line = {2: '{"step": 2}\n', 4: '{"step": 4, "a": 0.5}\n', 6: '{"step": 6}\n'}
    tail = JsonlTail(path)
    assert tail.new_records() == []  # no file yet
    path.write_text(line[2] + line[4][:9])  # step 4 half written
    assert tail.new_records() == [{"step": 2}]
    with open(path, "a") as f:
        f.write(line[4][9:])
    assert tail.new_records() == [{"step": 4, "a": 0.5}]
    assert tail.new_records() == []
    path.with_name("new").write_text(line[2] + line[4] + line[6])
    path.with_name("new").replace(path)  # a resume rewrites the file atomically
    assert [r["step"] for r in tail.new_records()] == [2, 4, 6]


def test_the_thread_sends_steps_after_logged_through_then_closes(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 2, "a": 1}\n{"step": 4, "a": 0.5, "s": "x", "n": null}\n')
    recorder = _Recorder()
    thread = TrackerThread([recorder], RunInfo("r", tmp_path, {}, {}), path, logged_through=2)
    thread.finish(None, "KILLED")  # a run that did not finish: no outputs
    assert recorder.calls == [("start", "r"), ("log", 4, {"a": 0.5}), ("close", "KILLED")]


def test_numeric_values_keep_finite_numbers_only():
    assert numeric_values({"step": 3, "a": 1, "b": 0.5, "c": float("nan"), "d": "x", "e": True, "f": None}) \
        == {"a": 1.0, "b": 0.5}


def test_mlflow_tracker_names_the_store_and_the_ui_command():
    tracker = MlflowTracker("sqlite:////tmp/x/mlflow.db", "exp")
    tracker.run_id = "abc"
    assert tracker.where() == ("MLflow: run abc in experiment 'exp'; view with: "
                               "mlflow ui --backend-store-uri sqlite:////tmp/x/mlflow.db")


def test_a_sweep_ends_naming_its_trackers_and_the_ui_command(tmp_path):
    from robustml.pipeline.sweep import tracker_lines
    cfg = compose_train(["logger=[tensorboard,mlflow]", f"paths.output_root={tmp_path}"])
    assert tracker_lines(cfg, tmp_path / "sweep") == [
        f"TensorBoard: tensorboard --logdir {tmp_path / 'sweep'}",
        f"MLflow: experiment '{tmp_path / 'sweep'}', one run per job; view with: "
        f"mlflow ui --backend-store-uri sqlite:///{tmp_path / 'mlflow.db'}"]
    assert tracker_lines(compose_train([]), tmp_path) == []


def test_the_logger_never_blocks_a_resume_nor_splits_a_sweep(tmp_path):
    from robustml.report.collect import Run, varying_keys
    from robustml.train.checkpoint import config_differences
    saved = {"logger": {}, "optimizer": {"lr": 0.1}, "seed": 0}
    current = {"logger": {"mlflow": {"experiment": "x", "register_model": None}}, "optimizer": {"lr": 0.1},
               "seed": 0}
    assert config_differences(saved, current) == []
    current["optimizer"]["lr"] = 0.2
    assert config_differences(saved, current) == ["optimizer.lr: 0.1 -> 0.2"]
    runs = [Run(tmp_path, {"logger": "{}", "optimizer.lr": 0.1, "seed": 0}, None),
            Run(tmp_path, {"logger.mlflow.experiment": "x", "optimizer.lr": 0.2, "seed": 0}, None)]
    assert varying_keys(runs) == ["optimizer.lr"]
