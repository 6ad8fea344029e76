"""torchrun / DDP: 2 processes on gloo train the same model as 1 process with the same global batch.

The 2-process runs call :func:`robustml.pipeline.run.run` in processes started by
``torch.multiprocessing`` (one start for every scenario), and the console script under
``torchrun``; each is compared with one process on the same config.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from support import compose_train
from robustml.data.samplers import EpochBatchSampler, shard_bounds
import robustml.train.loop as loop
from robustml.train import distributed
from robustml.pipeline.run import run

COMMON = ["trainer.max_steps=8", "trainer.eval_every=4", "trainer.progress=false",
          "model.hidden_dims=[64]", "optimizer.lr=0.003"]
SCENARIOS = {
    "full_batch_erm": [],
    # 1,168 training examples in batches of 99: shares of 50 and 49 (uneven, so scaled).
    "mini_batch_group_dro_balanced": ["loss=group_dro", "loss.criterion.step_size=0.5",
                                      "sampler=group_balanced", "trainer.batch_size=99"],
    "mini_batch_erm_reweight": ["sampler=reweight", "trainer.batch_size=99"],
    # Shares of 50 in 4 micro-batches (13, 13, 12, 12), all-reduced once per step (no_sync).
    "mini_batch_group_dro_accumulate": ["loss=group_dro", "loss.criterion.step_size=0.5",
                                        "trainer.batch_size=100", "trainer.accumulate=4"],
    "mini_batch_erm_reweight_accumulate": ["sampler=reweight", "trainer.batch_size=100",
                                           "trainer.accumulate=4"],
    # JTT: the processes train stage one together (no lock), rank 0 writes its cache entry.
    "jtt_stage_one_and_two": ["experiment=colored_digits_jtt", "method.stage_one.max_steps=4",
                              "method.cache_dir={root}/jtt_cache"],
}
REFUSED = {"irm": ["loss=irm"]}
# Resumed under torchrun: dropout draws from each process's own generator, on uneven shares.
RESUMED = ["loss=group_dro", "model.dropout=0.3", "trainer.batch_size=99"]
WORLD_SIZE = 2


class _Crash(Exception):
    """Raised inside training step 6 on every process (after the checkpoint of step 4)."""


def _crash_at_step_6(train_step):
    def crashing(self, batch):
        loss = train_step(self, batch)
        if self.step + 1 == 6:
            raise _Crash
        return loss
    return crashing


def _worker(rank: int, init_file: str, root: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=WORLD_SIZE)
    try:
        for name, overrides in SCENARIOS.items():
            run(compose_train(COMMON + [o.format(root=root) for o in overrides]), Path(root) / name,
                summary="none")
        run(compose_train(COMMON + RESUMED), Path(root) / "uninterrupted", summary="none")
        train_step = loop.Trainer._train_step
        loop.Trainer._train_step = _crash_at_step_6(train_step)
        try:
            run(compose_train(COMMON + RESUMED), Path(root) / "resumed", summary="none")
        except _Crash:
            pass
        finally:
            loop.Trainer._train_step = train_step
        run(compose_train(COMMON + RESUMED + ["trainer.resume=true"]), Path(root) / "resumed",
            summary="none")
        for name, overrides in REFUSED.items():
            try:
                run(compose_train(COMMON + overrides), Path(root) / name, summary="none")
            except ValueError as error:
                (Path(root) / f"{name}_rank{rank}.txt").write_text(str(error))
    finally:
        dist.destroy_process_group()


def _records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _assert_same_metrics(two: dict, one: dict, where: str) -> None:
    assert two.keys() == one.keys(), where
    for key, value in one.items():
        if key in ("elapsed_s", "train_seconds", "jtt/stage_one_dir"):
            continue
        if isinstance(value, float):
            assert two[key] == pytest.approx(value, rel=1e-5, abs=1e-6), f"{where}: {key}"
        else:
            assert two[key] == value, f"{where}: {key}"


@pytest.fixture(scope="module")
def two_process_runs(tmp_path_factory):
    if not dist.is_available():
        pytest.skip("torch.distributed is not available in this build")
    root = tmp_path_factory.mktemp("ddp")
    mp.spawn(_worker, args=(str(root / "init"), str(root)), nprocs=WORLD_SIZE, join=True)
    return root


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_two_processes_match_one_process(name, two_process_runs, tmp_path):
    one_dir = tmp_path / "one"
    run(compose_train(COMMON + [o.format(root=tmp_path) for o in SCENARIOS[name]]), one_dir,
        summary="none")
    two_dir = two_process_runs / name
    one_history, two_history = _records(one_dir), _records(two_dir)
    assert len(two_history) == len(one_history) == 2
    for step, (two, one) in enumerate(zip(two_history, one_history)):
        _assert_same_metrics(two, one, f"{name}, evaluation {step}")
    if "group_dro" in name:  # the group weights moved, identically
        assert max(abs(one_history[-1][f"train/q_{g}"] - 0.25) for g in range(4)) > 1e-4
    _assert_same_metrics(json.loads((two_dir / "metrics.json").read_text()),
                         json.loads((one_dir / "metrics.json").read_text()), f"{name}, final")
    # Rank 0 wrote the outputs; the other process wrote nothing beside them.
    assert sorted(p.name for p in two_dir.iterdir()) == sorted(p.name for p in one_dir.iterdir())


def test_two_processes_resume_exactly(two_process_runs):
    """A 2-process run stopped at step 6 and resumed from step 4's checkpoint ends as one never
    stopped: weights, optimizer, Group DRO's weights and each process's own random state."""
    resumed = json.loads((two_process_runs / "resumed" / "metrics.json").read_text())
    uninterrupted = json.loads((two_process_runs / "uninterrupted" / "metrics.json").read_text())
    assert resumed.pop("train_seconds") >= 0 and uninterrupted.pop("train_seconds") >= 0
    assert resumed == uninterrupted
    assert [{k: v for k, v in r.items() if k != "elapsed_s"} for r in _records(two_process_runs / "resumed")] \
        == [{k: v for k, v in r.items() if k != "elapsed_s"} for r in _records(two_process_runs / "uninterrupted")]


def test_a_checkpoint_of_two_processes_is_not_resumed_by_one(two_process_runs, tmp_path):
    shutil.copytree(two_process_runs / "resumed", tmp_path / "run")
    with pytest.raises(ValueError, match=r"saved by 2 process\(es\), but this run has 1: resume with "
                                         r"the same number \(torchrun --nproc_per_node=2"):
        run(compose_train(COMMON + RESUMED + ["trainer.resume=true"]), tmp_path / "run", summary="none")


def test_a_loss_that_cannot_be_distributed_is_refused_by_name(two_process_runs):
    for rank in range(WORLD_SIZE):
        message = (two_process_runs / f"irm_rank{rank}.txt").read_text()
        assert "loss IRMLoss cannot be trained by 2 processes" in message
        assert "ERMLoss, GroupDROLoss" in message


def test_shards_concatenate_to_the_global_batch():
    for size in (7, 8, 100):
        bounds = [shard_bounds(size, rank=r, world_size=3) for r in range(3)]
        assert bounds[0][0] == 0 and bounds[-1][1] == size
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
        assert max(b - a for a, b in bounds) - min(b - a for a, b in bounds) <= 1
    with pytest.raises(ValueError, match="a batch of 1 example"):
        shard_bounds(1, rank=0, world_size=2)
    one = iter(EpochBatchSampler(10, batch_size=4, seed=3))
    ranks = [iter(EpochBatchSampler(10, batch_size=4, seed=3, rank=r, world_size=2)) for r in range(2)]
    for _ in range(6):  # two epochs of 4 + 4 + 2
        assert next(ranks[0]) + next(ranks[1]) == next(one)


@pytest.mark.slow  # ~50 s on 2 shared cores; the README's torchrun block runs in the default suite
@pytest.mark.skipif(shutil.which("torchrun", path=str(Path(sys.executable).parent)) is None,
                    reason="torchrun is not installed beside this Python")
def test_torchrun_console_script_writes_one_run_folder_equal_to_one_process(tmp_path):
    overrides = COMMON + SCENARIOS["mini_batch_group_dro_balanced"]
    env = {**os.environ, "ROBUSTML_OUTPUT": str(tmp_path / "runs"), "OMP_NUM_THREADS": "1"}
    bin_dir = Path(sys.executable).parent
    out = subprocess.run([str(bin_dir / "torchrun"), "--standalone", "--nproc_per_node=2",
                          "--no-python", str(bin_dir / "robustml-train"), *overrides],
                         capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    run_dirs = [p.parent for p in (tmp_path / "runs").rglob("metrics.json")]
    assert len(run_dirs) == 1 and len(list((tmp_path / "runs").iterdir())) == 1
    assert out.stdout.count("(seed 0)") == 1  # one summary, printed by rank 0
    one_dir = tmp_path / "one"
    run(compose_train(overrides), one_dir, summary="none")
    _assert_same_metrics(json.loads((run_dirs[0] / "metrics.json").read_text()),
                         json.loads((one_dir / "metrics.json").read_text()), "torchrun")


def test_launch_arguments_keep_rank_0_the_only_writer_and_refuse_multirun(monkeypatch):
    monkeypatch.setattr(distributed, "is_distributed", lambda: True)
    monkeypatch.setattr(distributed, "rank", lambda: 1)
    assert distributed.launch_arguments(["seed=1"]) == ["seed=1", "hydra.output_subdir=null",
                                                       "hydra.run.dir=."]
    assert distributed.launch_arguments(["hydra.run.dir=x"]) == ["hydra.run.dir=x",
                                                                "hydra.output_subdir=null"]
    with pytest.raises(ValueError, match="a multirun .-m. cannot run under torchrun"):
        distributed.launch_arguments(["-m", "seed=0,1"])
    monkeypatch.setattr(distributed, "rank", lambda: 0)
    assert distributed.launch_arguments(["seed=1"]) == ["seed=1"]
