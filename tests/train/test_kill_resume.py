"""Exact resume after SIGKILL: a killed and resumed run ends as the uninterrupted run did.

Each test trains the same tiny config three ways, each run in its own child process
(``os.fork`` of the test process, so the imports are paid once): uninterrupted; killed with
SIGKILL at a step drawn from a generator seeded by the test's name (reproducible, yet not
hand-picked); and resumed with ``trainer.resume=true`` in a new process (some runs are killed
twice). SIGKILL cannot be caught: no ``finally`` block, atexit handler or buffered write runs
in the killed process, as when the machine or a scheduler kills a job. The resumed
``metrics.json`` must equal the uninterrupted one in every key but the timing key
``train_seconds`` (wall time, which legitimately differs), and ``metrics.jsonl`` must hold each
evaluation once, equal to the uninterrupted run's lines but for their ``elapsed_s`` (wall time).

Kill points: ``("step", k)`` kills inside training step ``k`` (1-based), after its optimizer
step and before anything of it is saved (the weights in memory have moved on, the files have
not); ``("after_jsonl", k)`` kills after the evaluation of step ``k`` was appended to
``metrics.jsonl`` and before ``checkpoints/last.pt`` is written (a crash between the two).
"""

from __future__ import annotations

import json
import os
import random
import signal
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

import robustml.train.loop as loop
import robustml.pipeline.run as run_module
from robustml.data.datasets.example_files import write_image_csv
from robustml.train.checkpoint import config_differences, load_checkpoint
from robustml.pipeline.run import run
from support import compose_train, in_child

TIMING_KEYS = {"train_seconds", "elapsed_s", "cleaning/seconds"}
# Differs legitimately: the resumed process reads the out-of-fold probabilities that the killed
# one cached (the cached values are those it computed; the cache has its own tests).
CACHE_KEYS = {"cleaning/cache_hit"}


@pytest.fixture(scope="module", autouse=True)
def _imports_paid_once() -> None:
    """Import here what runs import lazily, so that each forked child does not import it again."""
    import cleanlab.filter  # noqa: F401
    import PIL.Image  # noqa: F401
    import sklearn.datasets  # noqa: F401

    import robustml.pipeline.clean  # noqa: F401
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # Adam's first use imports torch._dynamo


def _kill_at(mode: str, step: int) -> None:
    """Patch this (child) process's trainer so that it SIGKILLs itself at ``(mode, step)``."""
    def kill() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    if mode == "step":
        train_step = loop.Trainer._train_step

        def killing_step(self, batch):
            loss = train_step(self, batch)
            if self.step + 1 == step:
                kill()
            return loss

        loop.Trainer._train_step = killing_step
    else:
        save = loop.save_checkpoint

        def killing_save(path, state):
            if Path(path).name == "last.pt" and state["step"] == step:
                kill()
            save(path, state)

        loop.save_checkpoint = killing_save


def _train(run_dir: Path, overrides: list[str], kill: tuple[str, int] | None = None,
           resume: bool = False) -> int:
    def job() -> None:
        # Plots are most of a tiny run's time and are drawn from metrics.json's values.
        run_module.plot_history = run_module.plot_group_accuracy = lambda *args, **kwargs: None
        if kill is not None:
            _kill_at(*kill)
        cfg = compose_train([*overrides, "trainer.progress=false", "trainer.device=cpu",
                             f"trainer.resume={str(resume).lower()}"])
        run(cfg, run_dir=run_dir, summary="none")

    return in_child(job)


def _without_timing(record: dict) -> dict:
    return {key: value for key, value in record.items() if key not in TIMING_KEYS | CACHE_KEYS}


def _lines(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _check_kill_and_resume(tmp_path: Path, overrides: list[str],
                           kills: list[tuple[str, int]]) -> dict:
    """Train uninterrupted, then with each kill in turn and a final resume; compare the outputs."""
    assert _train(tmp_path / "straight", overrides) == 0
    run_dir = tmp_path / "killed"
    for i, kill in enumerate(kills):
        assert _train(run_dir, overrides, kill, resume=i > 0) == -signal.SIGKILL, kill
        assert not (run_dir / "metrics.json").exists()
    assert _train(run_dir, overrides, resume=True) == 0
    expected = json.loads((tmp_path / "straight" / "metrics.json").read_text())
    final = json.loads((run_dir / "metrics.json").read_text())
    assert _without_timing(final) == _without_timing(expected)
    lines = _lines(run_dir)
    assert [line["step"] for line in lines] == sorted({line["step"] for line in lines})  # no duplicates
    assert [_without_timing(r) for r in lines] == [_without_timing(r) for r in
                                                  _lines(tmp_path / "straight")]
    return final


def _draw(name: str, low: int, high: int, *, avoid_multiples_of: int = 0) -> int:
    """Return a step in ``[low, high]`` from a generator seeded by ``name`` (reproducible)."""
    rng = random.Random(name)
    while True:
        step = rng.randint(low, high)
        if not avoid_multiples_of or step % avoid_multiples_of:
            return step


def test_full_batch_irm_with_augmentation_resumes_exactly_across_the_anneal_step(tmp_path):
    # Full batch, counterfactual augmentation (its generator draws every step), IRM with the
    # unbiased estimator (random halves) and an optimizer reset at the anneal step 6.
    overrides = ["loss=irm", "loss.criterion.anneal_steps=6", "loss.criterion.unbiased=true",
                 "trainer.reset_optimizer_at_anneal=true", "augment=counterfactual",
                 "trainer.max_steps=12", "trainer.eval_every=3"]
    step = _draw("full_batch_irm", 2, 11)
    final = _check_kill_and_resume(tmp_path, overrides, [("step", step)])
    assert final["steps"] == 12


def test_mini_batch_group_dro_resumes_exactly_after_a_mid_epoch_kill_and_a_kill_between_writes(tmp_path):
    # 1,078 training examples in batches of 256: 5 batches per epoch. Dropout draws from torch's
    # global generator; the cosine schedule and Group DRO's q are state to restore. The second
    # kill lands after an evaluation was appended to metrics.jsonl, before its checkpoint.
    overrides = ["loss=group_dro", "scheduler=cosine", "model.dropout=0.2", "trainer.batch_size=256",
                 "trainer.max_steps=14", "trainer.eval_every=4"]
    first = _draw("mini_batch_group_dro", 2, 7, avoid_multiples_of=5)
    second = random.Random("mini_batch_group_dro_jsonl").choice([s for s in (8, 12) if s > first])
    _check_kill_and_resume(tmp_path, overrides, [("step", first), ("after_jsonl", second)])


def test_accumulated_fp16_group_dro_resumes_exactly_after_a_mid_epoch_kill(tmp_path):
    # 4 micro-batches of 64 per step, fp16 autocast with the loss scaler (its state is in the
    # checkpoint), Group DRO's q stepped on the whole batch; 5 batches per epoch.
    overrides = ["loss=group_dro", "trainer.batch_size=256", "trainer.accumulate=4",
                 "trainer.precision=fp16", "trainer.max_steps=9", "trainer.eval_every=3",
                 "model.hidden_dims=[64]"]
    step = _draw("accumulated_fp16", 4, 8, avoid_multiples_of=3)
    final = _check_kill_and_resume(tmp_path, overrides, [("step", step)])
    assert final["train/skipped_steps"] == 0


def test_on_disk_dataloader_run_resumes_exactly_mid_epoch(tmp_path):
    csv = write_image_csv(tmp_path / "data", per_group=6, size=(12, 12), split_column=True)
    # 12 training images in batches of 5: 3 batches per epoch, random crops and flips per image.
    overrides = ["data=image_csv", f"data.csv={csv}", "data.image_size=8", "data.augment=true",
                 "trainer.batch_size=5", "trainer.max_steps=8", "trainer.eval_every=3",
                 "trainer.eval_batch_size=7", "model.hidden_dims=[16]"]
    step = _draw("on_disk", 2, 7, avoid_multiples_of=3)
    _check_kill_and_resume(tmp_path, overrides, [("step", step)])


def test_run_with_a_cleaning_stage_resumes_exactly(tmp_path):
    overrides = ["cleaning=confident_learning", "cleaning.min_steps=20", "cleaning.epochs=1",
                 "trainer.max_steps=8", "trainer.eval_every=2", "model.hidden_dims=[32]"]
    step = _draw("cleaning", 2, 7)
    final = _check_kill_and_resume(tmp_path, overrides, [("step", step)])
    assert final["train_mix_counts"] == "training split before cleaning"
    assert final["cleaning/cache_hit"]


@pytest.mark.parametrize("override,key", [("seed=1", "seed"),
                                          ("optimizer.lr=0.5", "optimizer.lr")])
def test_resume_with_a_different_config_is_refused_naming_the_keys(tmp_path, override, key):
    overrides = ["trainer.max_steps=4", "trainer.eval_every=2", "model.hidden_dims=[8]",
                 "trainer.progress=false", "trainer.device=cpu"]
    run_dir = tmp_path / "run"
    assert _train(run_dir, overrides, ("step", 3)) == -signal.SIGKILL
    cfg = compose_train([*overrides, override, "trainer.resume=true"])
    with pytest.raises(ValueError, match="the config differs from the one saved in") as refused:
        run(cfg, run_dir=run_dir, summary="none")
    assert f"{key}: " in str(refused.value) and "trainer.resume_force=true" in str(refused.value)
    # Keys that cannot change results are exempt: trainer.progress, trainer.resume(_force).
    saved = load_checkpoint(run_dir / "checkpoints" / "last.pt")["config"]
    cfg = compose_train([*overrides, "trainer.progress=true", "trainer.resume=true"])
    assert config_differences(saved, OmegaConf.to_container(cfg, resolve=True)) == []
    assert config_differences(saved, OmegaConf.to_container(compose_train([*overrides, override]),
                                                            resolve=True))
    forced = compose_train([*overrides, override, "trainer.resume=true", "trainer.resume_force=true"])
    assert run(forced, run_dir=run_dir, summary="none")["steps"] == 4


def test_jtt_run_killed_in_stage_one_resumes_the_stage_and_ends_as_the_uninterrupted_run(tmp_path):
    # Stage one (ERM, 10 steps, checkpoints every 3) dies at a drawn step, before the main run
    # wrote anything; the same command again resumes stage one from its last checkpoint.
    overrides = ["experiment=colored_digits_jtt", "method.stage_one.max_steps=10",
                 "trainer.max_steps=6", "trainer.eval_every=3", "model.hidden_dims=[16]"]
    straight = [*overrides, f"method.cache_dir={tmp_path / 'cache_straight'}"]
    killed = [*overrides, f"method.cache_dir={tmp_path / 'cache_killed'}"]
    assert _train(tmp_path / "straight", straight) == 0
    step = _draw("jtt_stage_one", 4, 9, avoid_multiples_of=3)  # after a checkpoint
    assert _train(tmp_path / "killed", killed, ("step", step)) == -signal.SIGKILL
    (entry,) = (tmp_path / "cache_killed").iterdir()
    assert not (entry / "stage.json").exists()
    assert load_checkpoint(entry / "checkpoints" / "last.pt")["step"] == 3 * (step // 3)
    assert _train(tmp_path / "killed", killed) == 0
    assert "resume: true" in (entry / "config.yaml").read_text()  # continued, not retrained
    (straight_entry,) = (tmp_path / "cache_straight").iterdir()
    assert [_without_timing(r) for r in _lines(entry)] == [_without_timing(r) for r in _lines(straight_entry)]
    finals = [json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("straight", "killed")]
    finals = [{k: v for k, v in _without_timing(f).items() if k != "jtt/stage_one_dir"} for f in finals]
    assert finals[0] == finals[1]
