import math

import pytest
import torch

from support import toy_env_dataset
from robustml.losses import ERMLoss
from robustml.models import MLP
from robustml.models.forward import forward_in_chunks
from robustml.train import Trainer, TrainSettings, load_checkpoint, save_checkpoint


def _toy(n=64, seed=0):
    return toy_env_dataset(n, seed)


def _trainer(tmp_path, **settings):
    torch.manual_seed(0)
    model = MLP((2, 3, 3), 1, hidden_dims=(8,))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    defaults = dict(max_steps=6, eval_every=3, progress=False)
    defaults.update(settings)
    return Trainer(model, ERMLoss(4), optimizer, _toy(), _toy(seed=1), TrainSettings(**defaults),
                   run_dir=tmp_path)


def test_chunked_forward_gives_the_same_logits_and_gradients():
    model = MLP((6,), 2, hidden_dims=(5,))
    x = torch.randn(23, 6)
    full = model(x).square().sum()
    grads_full = torch.autograd.grad(full, list(model.parameters()))
    chunked = forward_in_chunks(model, x, 4).square().sum()
    grads_chunked = torch.autograd.grad(chunked, list(model.parameters()))
    torch.testing.assert_close(chunked, full)
    for a, b in zip(grads_full, grads_chunked):
        torch.testing.assert_close(a, b)


def test_resume_continues_exactly_where_the_run_stopped(tmp_path):
    straight = _trainer(tmp_path / "a", batch_size=16)
    straight.fit()
    interrupted = _trainer(tmp_path / "b", batch_size=16, max_steps=3)
    interrupted.fit()
    resumed = _trainer(tmp_path / "b", batch_size=16, resume=True)
    assert resumed.fit()["history"][0]["step"] == 3
    for a, b in zip(straight.model.parameters(), resumed.model.parameters()):
        torch.testing.assert_close(a, b)
    lines = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2  # steps 3 and 6, nothing duplicated


def test_selection_keeps_the_best_validation_checkpoint(tmp_path):
    trainer = _trainer(tmp_path, max_steps=9, eval_every=1)
    result = trainer.fit()
    scores = [r["val/acc_worst_group"] for r in result["history"]]
    best = max(range(len(scores)), key=lambda i: (scores[i], -i))
    assert result["best_step"] == result["history"][best]["step"]
    assert load_checkpoint(trainer.best_path)["step"] == result["best_step"]


def test_nan_loss_raises_instead_of_training_on(tmp_path):
    trainer = _trainer(tmp_path)
    with torch.no_grad():
        trainer.model.head.weight.fill_(math.nan)
    with pytest.raises(FloatingPointError, match="not finite"):
        trainer.fit()


@pytest.mark.parametrize("field,value,match", [("select", "best", "select must"),
                                               ("max_steps", 0, "max_steps must"),
                                               ("batch_size", 0, "batch_size must"),
                                               ("precision", "fp8", "precision must"),
                                               ("eval_train", "never", "eval_train must")])
def test_bad_trainer_settings_are_named(tmp_path, field, value, match):
    with pytest.raises(ValueError, match=match):
        _trainer(tmp_path, **{field: value}).fit()


def test_bf16_training_runs_and_keeps_float32_weights(tmp_path):
    trainer = _trainer(tmp_path, precision="bf16")
    trainer.fit()
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())


def test_checkpoint_writes_are_atomic_and_missing_files_are_named(tmp_path):
    save_checkpoint(tmp_path / "c.pt", {"a": torch.ones(2)})
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_checkpoint(tmp_path / "nope.pt")


def test_eval_train_auto_evaluates_in_memory_training_data_at_every_evaluation_as_before(tmp_path):
    auto, every = (_trainer(tmp_path / mode, eval_train=mode) for mode in ("auto", "every"))
    untimed = [[{k: v for k, v in r.items() if k != "elapsed_s"} for r in t.fit()["history"]] for t in (auto, every)]
    assert untimed[0] == untimed[1] and all("train/acc_worst_group" in r for r in untimed[0])
    assert auto.best_step == every.best_step


def test_eval_train_last_evaluates_train_at_the_last_step_only_and_trains_the_same(tmp_path):
    runs = {}
    for mode in ("every", "last"):
        trainer = _trainer(tmp_path / mode, batch_size=16, max_steps=7, eval_every=2, eval_train=mode)
        trainer.model.body.append(torch.nn.Dropout(0.3))  # random draws between evaluations
        runs[mode] = trainer, trainer.fit()
    (every, result_every), (last, result_last) = runs["every"], runs["last"]
    assert [r["step"] for r in result_last["history"]] == [2, 4, 6, 7]
    for record in result_last["history"][:-1]:
        assert "val/acc_worst_group" in record and "train/loss" in record
        assert not any(key.startswith("train/acc") for key in record)
    final_every, final_last = result_every["history"][-1], result_last["history"][-1]
    assert set(final_last) == set(final_every)
    for key in final_every:
        if key != "elapsed_s":
            assert final_last[key] == final_every[key], key
    assert result_last["best_step"] == result_every["best_step"]
    for a, b in zip(every.model.parameters(), last.model.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_without_a_progress_bar_each_evaluation_logs_one_line_with_an_eta(tmp_path, caplog):
    trainer = _trainer(tmp_path, max_steps=4, eval_every=2, progress=False)
    with caplog.at_level("INFO", logger="robustml.train.loop"):
        trainer.fit()
    lines = [r.getMessage() for r in caplog.records if r.name == "robustml.train.loop"]
    assert len(lines) == 2 and lines[0].startswith("step 2/4: train loss ")
    assert "val worst-group" in lines[0] and "ETA" in lines[0] and lines[1].endswith("ETA 0 s")
