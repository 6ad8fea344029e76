"""After pruning, the train-mix average weights groups by the training data's mix, and says so."""

from __future__ import annotations

import torch

from robustml.pipeline.build import build_splits, build_trainer
from robustml.pipeline.instantiate import build_from
from robustml.pipeline.run import run
from support import compose_train

OVERRIDES = ["cleaning=confident_learning", "cleaning.action=prune", "cleaning.min_steps=20",
             "cleaning.epochs=1", "trainer.max_steps=2", "trainer.eval_every=2",
             "trainer.progress=false", "trainer.device=cpu", "model.hidden_dims=[16]"]


def test_pruned_runs_weight_the_train_mix_average_by_the_counts_before_cleaning(tmp_path):
    cfg = compose_train(OVERRIDES)
    before = build_from(cfg, "data").train.group_counts()
    data = build_splits(cfg, tmp_path)  # its out-of-fold cache serves the run below
    trainer, splits = build_trainer(cfg, data, tmp_path), data.splits
    assert len(splits.train) < int(before.sum())  # examples were pruned
    assert not torch.equal(splits.train.group_counts(), before)
    assert torch.equal(trainer.train_counts.cpu(), before)
    final = run(cfg, run_dir=tmp_path, summary="none")
    assert final["train_mix_counts"] == "training split before cleaning"
    assert "| train_mix_counts | training split before cleaning |" in (
        tmp_path / "report.md").read_text()
