"""The cleaning stage end to end: clean_splits on Colored Digits with known synthetic noise."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_module
from hydra.utils import instantiate
from omegaconf import OmegaConf

import robustml.cleaning.crossfit as crossfit_module
import robustml.configs
import robustml.cleaning.methods as methods_module
from robustml.cleaning import CSV_COLUMNS, FitSettings
from robustml.cleaning.networks import (batch_indices, extract_features, fresh_model,
                                        train_classifier)
from robustml.data.contract import DataSplits, GroupedTensorDataset
from robustml.data.datasets import with_label_noise
from robustml.pipeline.clean import METHODS, clean_splits, main_clean

KFOLD = ["cleaning.method=kfold", "cleaning.min_steps=100"]  # 5 short trainings


def compose_clean(overrides: list[str]):
    """Compose ``configs/clean.yaml`` (the robustml-clean config) as Hydra would."""
    with initialize_config_module(config_module="robustml.configs", version_base="1.3"):
        return compose(config_name="clean", overrides=["trainer.progress=false", *overrides])


@pytest.fixture(scope="module")
def splits() -> DataSplits:
    """Colored Digits without the paper's 25% label flip, plus 20% known synthetic noise on train."""
    base = instantiate(compose_clean(["data.label_noise=0.0"]).data)
    return DataSplits(with_label_noise(base.train, 0.2, seed=1), base.val, base.test)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    """One probability cache for the module: each cleaning config trains its models once."""
    return tmp_path_factory.mktemp("oof_cache")


def run_clean(splits, run_dir, overrides, cache_dir):
    cfg = compose_clean(["data.label_noise=0.0", f"cleaning.cache_dir={cache_dir}", *overrides])
    return clean_splits(cfg, splits, run_dir)


def read_csv(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        return reader.fieldnames, list(reader)


def test_kfold_probs_never_come_from_a_model_that_saw_the_example(splits, tmp_path, monkeypatch):
    trained_on, folds = [], []
    real_train, real_kfold = methods_module.train_classifier, methods_module.network_fit_predict

    def recording_train(model, x, y, *, settings):
        trained_on.append(x.clone())
        return real_train(model, x, y, settings=settings)

    def recording_kfold(*args, **kwargs):
        fit_predict = real_kfold(*args, **kwargs)

        def wrapped(train_idx, eval_idx):
            folds.append((train_idx, eval_idx, fit_predict(train_idx, eval_idx)))
            return folds[-1][2]
        return wrapped

    monkeypatch.setattr(methods_module, "train_classifier", recording_train)
    monkeypatch.setattr(methods_module, "network_fit_predict", recording_kfold)
    cleaned = run_clean(splits, tmp_path, KFOLD, tmp_path / "cache")

    assert len(folds) == len(trained_on) == 5
    held_out = np.concatenate([eval_idx for _, eval_idx, _ in folds])
    np.testing.assert_array_equal(np.sort(held_out), np.arange(len(splits.train)))
    (cache_file,) = (tmp_path / "cache").glob("oof_*.npy")
    probs = np.load(cache_file)
    for (train_idx, eval_idx, fold_probs), x_seen in zip(folds, trained_on):
        assert np.intersect1d(train_idx, eval_idx).size == 0
        assert torch.equal(x_seen, splits.train.x[train_idx])  # the model saw these rows only
        np.testing.assert_array_equal(probs[eval_idx], fold_probs)  # rows come from that model
    # 20% of labels flipped, so flagging at random would give precision ~0.2.
    assert cleaned.summary["cleaning/precision"] >= 0.5
    assert cleaned.summary["cleaning/recall"] >= 0.8


def test_default_fast_path_trains_two_networks_and_hits_the_cache(splits, tmp_path, monkeypatch):
    calls = []
    real_train = crossfit_module.train_classifier
    monkeypatch.setattr(crossfit_module, "train_classifier",
                        lambda *a, **k: calls.append(len(a[1])) or real_train(*a, **k))
    first = run_clean(splits, tmp_path / "a", [], tmp_path / "cache")
    n = len(splits.train)
    assert sorted(calls) == [n // 2, n - n // 2]  # one network per half, on the other half
    assert first.summary["cleaning/cache_hit"] is False
    assert "cross-fitted over 2 disjoint parts" in first.report_md
    assert first.summary["cleaning/precision"] >= 0.5  # 2.5x the base rate of 0.18
    assert first.summary["cleaning/recall"] >= 0.8

    def must_not_train(*args, **kwargs):
        raise AssertionError("a cache hit must not train")

    monkeypatch.setattr(crossfit_module, "train_classifier", must_not_train)
    second = run_clean(splits, tmp_path / "b", [], tmp_path / "cache")
    assert second.summary["cleaning/cache_hit"] is True
    assert (tmp_path / "a" / "label_issues.csv").read_text() == \
        (tmp_path / "b" / "label_issues.csv").read_text()
    other = DataSplits(with_label_noise(splits.train, 0.1, seed=5), splits.val, splits.test)
    with pytest.raises(AssertionError, match="must not train"):  # new labels: a cache miss
        run_clean(other, tmp_path / "c", [], tmp_path / "cache")


def tabular_splits(n: int = 400) -> DataSplits:
    """Two Gaussian classes in 5-D with a binary attribute, 20% symmetric noise on train."""
    generator = torch.Generator().manual_seed(0)

    def split(size):
        y = torch.arange(size) % 2
        x = torch.randn(size, 5, generator=generator) + 2.0 * y[:, None]
        return GroupedTensorDataset(x, y, torch.arange(size) // 2 % 2, num_classes=2,
                                    attr_names=("a", "b"))

    return DataSplits(with_label_noise(split(n), 0.2, seed=0), split(50), split(50))


def test_auto_uses_the_estimator_on_tabular_inputs(tmp_path, monkeypatch):
    calls = []
    real = methods_module.estimator_fit_predict
    monkeypatch.setattr(methods_module, "estimator_fit_predict",
                        lambda est, *a, **k: calls.append(type(est).__name__) or real(est, *a, **k))
    cleaned = clean_splits(compose_clean([f"cleaning.cache_dir={tmp_path / 'cache'}"]),
                           tabular_splits(), tmp_path)
    assert calls == ["HistGradientBoostingClassifier"]
    assert "cross-validation of `HistGradientBoostingClassifier`" in cleaned.report_md
    assert cleaned.summary["cleaning/recall"] >= 0.7


def test_a_class_with_a_single_example_is_named(tmp_path):
    y = torch.arange(100) % 2
    y[0] = 2
    one = GroupedTensorDataset(torch.randn(100, 3), y, torch.zeros(100, dtype=torch.long),
                               num_classes=3, attr_names=("a",))
    with pytest.raises(ValueError, match="labels: class 2 has a single example.*num_folds=5"):
        clean_splits(compose_clean([]), DataSplits(one, one, one), tmp_path)


def test_label_issues_csv_lists_every_flagged_row(splits, tmp_path, cache_dir):
    cleaned = run_clean(splits, tmp_path, KFOLD, cache_dir)
    header, rows = read_csv(tmp_path / "label_issues.csv")
    assert tuple(header) == CSV_COLUMNS == ("index", "given_label", "suggested_label", "quality",
                                            "group", "action")
    assert len(rows) == cleaned.summary["cleaning/flagged"] > 0
    qualities = [float(r["quality"]) for r in rows]
    assert qualities == sorted(qualities)  # most likely errors first
    for row in rows:
        i = int(row["index"])
        assert int(row["given_label"]) == int(splits.train.y[i])
        assert int(row["group"]) == int(splits.train.group[i])
        assert row["action"] == "prune"
    summary = json.loads((tmp_path / "cleaning_summary.json").read_text())
    assert summary["flagged"] == len(rows)
    assert [g["flagged"] for g in summary["groups"]] == [
        cleaned.summary[f"cleaning/flagged_group_{g}"] for g in range(4)]


def test_guard_caps_and_protects_groups(splits, tmp_path, cache_dir):
    free = run_clean(splits, tmp_path / "free", KFOLD, cache_dir)
    before = np.array([free.summary[f"cleaning/flagged_group_{g}"] for g in range(4)])
    counts = splits.train.group_counts().numpy()
    assert (before / counts).max() > 0.3  # the minority groups are flagged heavily

    capped = run_clean(splits, tmp_path / "cap", [*KFOLD, "cleaning.guard.max_fraction=0.3"],
                       cache_dir)
    after = np.array([capped.summary[f"cleaning/flagged_group_{g}"] for g in range(4)])
    np.testing.assert_array_equal(after, np.minimum(before, np.floor(0.3 * counts)))
    np.testing.assert_array_equal(
        [capped.summary[f"cleaning/flagged_before_guard_group_{g}"] for g in range(4)], before)
    assert capped.summary["cleaning/removed"] == after.sum()

    protected = run_clean(splits, tmp_path / "protect",
                          [*KFOLD, "cleaning.guard.protect_groups=[1,2]"], cache_dir)
    _, rows = read_csv(tmp_path / "protect" / "label_issues.csv")
    for row in rows:
        assert row["action"] == ("guarded" if int(row["group"]) in (1, 2) else "prune")
    assert sum(r["action"] == "guarded" for r in rows) == before[1] + before[2]
    kept_groups = protected.train.group_counts().numpy()
    np.testing.assert_array_equal(kept_groups[[1, 2]], counts[[1, 2]])
    report = json.loads((tmp_path / "protect" / "cleaning_summary.json").read_text())["groups"]
    assert [g["flagged_before"] for g in report] == before.tolist()
    assert "| y=digit<5,color=green" in protected.report_md


@pytest.mark.parametrize("action", ["prune", "relabel", "reweight"])
def test_actions_build_the_right_train_split(splits, tmp_path, cache_dir, action):
    cleaned = run_clean(splits, tmp_path, [*KFOLD, f"cleaning.action={action}"], cache_dir)
    _, rows = read_csv(tmp_path / "label_issues.csv")
    flagged = np.array([int(r["index"]) for r in rows])
    train, n = splits.train, len(splits.train)
    if action == "prune":
        keep = np.setdiff1d(np.arange(n), flagged)
        assert torch.equal(cleaned.train.x, train.x[keep])
        assert torch.equal(cleaned.train.y, train.y[keep])
        assert cleaned.weights is None and cleaned.summary["cleaning/removed"] == flagged.size
    elif action == "relabel":
        expected = train.y.clone()
        expected[flagged] = torch.tensor([int(r["suggested_label"]) for r in rows])
        assert torch.equal(cleaned.train.y, expected) and torch.equal(cleaned.train.x, train.x)
        assert torch.equal(cleaned.train.group, expected * 2 + train.attr)
        assert cleaned.weights is None
        assert cleaned.summary["cleaning/relabeled"] == int((expected != train.y).sum())
    else:
        expected = torch.ones(n)
        expected[flagged] = torch.tensor([float(r["quality"]) for r in rows])
        assert torch.equal(cleaned.train.y, train.y)
        torch.testing.assert_close(cleaned.weights, expected)
        assert cleaned.weights.shape == (n,) and cleaned.summary["cleaning/reweighted"] == flagged.size


@pytest.mark.parametrize("override,key", [
    ("cleaning.method=ensemble", "cleaning.method"),
    ("cleaning.action=drop", "cleaning.action"),
    ("cleaning.num_folds=1", "cleaning.num_folds"),
    ("cleaning.guard.max_fraction=1.5", "cleaning.guard.max_fraction"),
    ("cleaning.guard.protect_groups=[4]", "cleaning.guard.protect_groups"),
    ("cleaning.num_parts=1", "cleaning.num_parts"),
    ("cleaning.lr=0", "cleaning.lr"),
    ("cleaning.min_steps=-1", "cleaning.min_steps"),
    ("cleaning.epochs=0 cleaning.min_steps=0", "cleaning.epochs=0 and cleaning.min_steps=0"),
])
def test_bad_options_name_the_key(splits, tmp_path, override, key):
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        run_clean(splits, tmp_path, override.split(), tmp_path / "cache")


def test_main_clean_writes_the_report_and_prints_the_groups(splits, tmp_path, cache_dir, capsys):
    cfg = compose_clean(["data.label_noise=0.0", f"cleaning.cache_dir={cache_dir}", *KFOLD])
    main_clean(cfg, splits, tmp_path)
    out = capsys.readouterr().out
    assert "## Label cleaning" in out and "y=digit>=5,color=red" in out
    for name in ("config.yaml", "cleaning_report.md", "label_issues.csv", "cleaning_summary.json"):
        assert (tmp_path / name).is_file(), name


def test_fit_settings_budget_is_epochs_with_a_floor_of_steps():
    assert FitSettings(epochs=2, min_steps=0, batch_size=300).num_steps(1000) == 8  # 2 x ceil(1000/300)
    assert FitSettings(epochs=3, min_steps=500, batch_size=128).num_steps(1797) == 500  # small data
    assert FitSettings(epochs=3, min_steps=500, batch_size=128).num_steps(30000) == 705
    assert FitSettings(epochs=3, min_steps=0, batch_size=None).num_steps(10) == 3  # full batch
    with pytest.raises(ValueError, match="batch_size must"):
        FitSettings(batch_size=0)
    with pytest.raises(ValueError, match="epochs=0 and min_steps=0"):
        FitSettings(epochs=0, min_steps=0)
    batches = batch_indices(10, batch_size=4, seed=0, device=torch.device("cpu"))
    epoch = torch.cat([next(batches) for _ in range(3)])  # sizes 4, 4, 2
    assert sorted(epoch.tolist()) == list(range(10))
    assert next(batch_indices(10, batch_size=None, seed=0, device=torch.device("cpu"))) is None


def test_fresh_model_is_seeded_and_leaves_the_global_rng_alone():
    def build():
        return torch.nn.Linear(3, 2)

    state = torch.get_rng_state()
    a = fresh_model(build, seed=4, device=torch.device("cpu"))
    b = fresh_model(build, seed=4, device=torch.device("cpu"))
    assert torch.equal(a.weight, b.weight)
    assert torch.equal(torch.get_rng_state(), state)
    with pytest.raises(TypeError, match="features"):
        extract_features(a, torch.zeros(2, 3))


def test_train_classifier_fits_a_separable_problem():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(200, 2, generator=generator)
    y = (x[:, 0] + x[:, 1] > 0).long()
    model = fresh_model(lambda: torch.nn.Linear(2, 1), seed=0, device=torch.device("cpu"))
    train_classifier(model, x, y, settings=FitSettings(epochs=0, min_steps=100, batch_size=50,
                                                       lr=0.1))
    assert not model.training
    assert ((model(x)[:, 0] > 0).long() == y).float().mean() >= 0.97


def test_clean_config_has_every_group_of_train_config():
    """robustml-clean must accept every experiment robustml-train accepts."""
    configs = Path(robustml.configs.__file__).parent
    assert "train" in OmegaConf.load(configs / "clean.yaml").defaults  # clean extends train
    for experiment in sorted((configs / "experiment").glob("*.yaml")):
        assert compose_clean([f"experiment={experiment.stem}"]).cleaning.method in METHODS


def test_non_finite_training_inputs_are_counted(tmp_path):
    data = tabular_splits()
    x = data.train.x.clone()
    x[[3, 7], 1] = float("nan")
    bad = DataSplits(data.train.replace(x=x), data.val, data.test)
    with pytest.raises(ValueError, match=r"training inputs must be finite, got NaN or inf in 2 of 400 rows .*row 3"):
        clean_splits(compose_clean([]), bad, tmp_path)
