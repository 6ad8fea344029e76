"""Errors say what to type: every bad setting a newcomer tried is refused with the setting's name."""

from __future__ import annotations

import pytest
import torch

from support import compose_train
from robustml.train.checkpoint import load_checkpoint, save_checkpoint
from robustml.pipeline.run import run


@pytest.mark.parametrize("override,error,message", [
    ("seed=abc", TypeError, r"seed must be an integer, got 'abc' \(str\)"),
    ("seed=1.5", TypeError, r"seed must be an integer, got 1.5 \(float\)"),
    ("trainer.max_steps=abc", TypeError, r"trainer.max_steps must be an integer >= 1, got 'abc'"),
    ("trainer.max_steps=20.7", TypeError, r"trainer.max_steps must be an integer >= 1, got 20.7"),
    ("trainer.epochs=0", ValueError, r"trainer.epochs must be an integer >= 1, got 0"),
    ("trainer.l2_weight=-1", ValueError, r"trainer.l2_weight must be a finite number >= 0, got -1"),
])
def test_bad_run_settings_name_the_setting(override, error, message, tmp_path):
    cfg = compose_train([override, "trainer.progress=false"])
    with pytest.raises(error, match=message):
        run(cfg, run_dir=tmp_path)


@pytest.mark.parametrize("overrides,message", [
    (["trainer.batch_size=16", "trainer.accumulate=3"],
     r"trainer.accumulate must divide trainer.batch_size=16 .*expected a divisor of 16 .*"
     r"got trainer.accumulate=3"),
    (["trainer.accumulate=0"], r"trainer.accumulate must be an integer >= 1, got 0"),
])
def test_bad_accumulation_names_the_setting_and_what_it_expects(overrides, message, tmp_path):
    cfg = compose_train([*overrides, "trainer.progress=false"])
    with pytest.raises(ValueError, match=message):
        run(cfg, run_dir=tmp_path)


def test_resume_without_a_checkpoint_is_refused_with_what_to_type(tmp_path):
    cfg = compose_train(["trainer.resume=true", "trainer.progress=false"])
    with pytest.raises(FileNotFoundError, match=r"trainer.resume=true but there is no checkpoint at "
                                                r".*last.pt; pass .*hydra.run.dir="):
        run(cfg, run_dir=tmp_path)


def test_a_diverging_loss_stops_the_run_and_names_the_learning_rate(tmp_path):
    cfg = compose_train(["optimizer.lr=1e6", "trainer.progress=false"])
    with pytest.raises(FloatingPointError, match=r"above trainer.max_loss=1e\+06; lower the "
                                                 r"learning rate \(optimizer.lr=1e\+06 now\)"):
        run(cfg, run_dir=tmp_path)


def test_the_divergence_bound_is_a_setting(tmp_path):
    cfg = compose_train(["trainer.max_loss=1e-9", "trainer.max_steps=2", "trainer.progress=false"])
    with pytest.raises(FloatingPointError, match=r"loss at step 1 is .* above trainer.max_loss=1e-09"):
        run(cfg, run_dir=tmp_path)


def test_a_corrupt_checkpoint_names_its_path(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"step": 3, "model": {"w": torch.ones(1000)}})
    path.write_bytes(path.read_bytes()[:200])  # truncated, as by a full disk
    with pytest.raises(RuntimeError, match=f"checkpoint {path} cannot be read"):
        load_checkpoint(path)


def test_cleaning_on_disk_data_fits_on_cached_features_of_an_untrained_model(tmp_path):
    """On-disk inputs are not one tensor: cleaning uses the run model's features, never trained on y."""
    from robustml.data.datasets.example_files import write_image_csv
    csv = write_image_csv(tmp_path / "images")
    cfg = compose_train(["data=image_csv", f"data.csv={csv}", "data.image_size=32", "model=resnet18",
                         "trainer.batch_size=8", "trainer.max_steps=2", "trainer.progress=false",
                         "cleaning=confident_learning", "cleaning.progress=false"])
    final = run(cfg, run_dir=tmp_path / "run", summary="none")
    assert "cleaning/flagged" in final and final["steps"] == 2
    assert any((tmp_path / "run" / "cache" / "features").iterdir())
