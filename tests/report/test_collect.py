"""robustml-collect on a hand-made sweep folder: means, stds, intervals and choices checked with numpy."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from robustml.cli.collect import collect_sweep, main
from robustml.report.collect import bootstrap_interval, collect

# (loss, lr) -> per seed (val worst, val avg, val worst_class, test worst, test avg)
VALUES = {
    ("ERMLoss", 0.001): [(0.30, 0.90, 0.50, 0.20, 0.91), (0.34, 0.88, 0.52, 0.25, 0.90),
                         (0.32, 0.89, 0.51, 0.30, 0.92)],
    ("ERMLoss", 0.01): [(0.20, 0.95, 0.60, 0.90, 0.96), (0.22, 0.94, 0.61, 0.80, 0.95),
                        (0.24, 0.96, 0.62, 0.85, 0.97)],
    ("GroupDROLoss", 0.001): [(0.60, 0.80, 0.70, 0.55, 0.81), (0.64, 0.82, 0.72, 0.60, 0.80)],
    ("GroupDROLoss", 0.01): [(0.58, 0.85, 0.73, 0.70, 0.86), (0.57, 0.84, 0.71, 0.75, 0.84)],
}


def _write_run(folder: Path, loss: str, lr: float, seed: int, values) -> None:
    val_worst, val_avg, val_class, test_worst, test_avg = values
    config = {"seed": seed, "name": f"digits_{loss}", "paths": {"output_root": "runs"},
              "data": {"seed": seed},  # an interpolation of seed: not a hyperparameter
              "loss": {"partition": "group", "criterion": {"_target_": f"robustml.losses.{loss}"}},
              "optimizer": {"_target_": "torch.optim.Adam", "lr": lr},
              "trainer": {"max_steps": 100, "select": "worst_group", "resume": False}}
    final = {"selection": "worst_group", "selected_step": 50, "val/acc_worst_group": val_worst,
             "val/acc_avg": val_avg, "val/acc_worst_class": val_class, "val/acc_group_0": 0.99,
             "test/acc_worst_group": test_worst, "test/acc_avg": test_avg,
             "test/acc_worst_class": test_avg}
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    (folder / "metrics.json").write_text(json.dumps(final))
    (folder / "metrics.jsonl").write_text(json.dumps({"step": 50, **final}) + "\n")
    (folder / ".hydra").mkdir()
    (folder / ".hydra" / "config.yaml").write_text("seed: ${oc.env:NOT_RESOLVED}\n")
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([f"seed={seed}", f"optimizer.lr={lr}"]))


@pytest.fixture()
def sweep(tmp_path):
    job = 0
    for (loss, lr), seeds in VALUES.items():
        for seed, values in enumerate(seeds):
            _write_run(tmp_path / f"{job}_digits", loss, lr, seed, values)
            job += 1
    unfinished = tmp_path / f"{job}_digits"
    unfinished.mkdir()
    (unfinished / "config.yaml").write_text(yaml.safe_dump({"seed": 9, "optimizer": {"lr": 0.5}}))
    return tmp_path


def _column(loss, lr, index):
    return np.array([v[index] for v in VALUES[(loss, lr)]])


@pytest.mark.parametrize("rule, index", [("worst_group", 0), ("avg", 1), ("worst_class", 2)])
def test_means_stds_and_choice_match_numpy(sweep, rule, index):
    result = collect(sweep, select=rule)
    assert list(result.tables) == ["loss.criterion._target_=robustml.losses.ERMLoss",
                                   "loss.criterion._target_=robustml.losses.GroupDROLoss"]
    for loss, table in zip(("ERMLoss", "GroupDROLoss"), result.tables.values()):
        lrs = [row.hparams["optimizer.lr"] for row in table]
        assert sorted(lrs) == [0.001, 0.01]
        for row in table:
            lr = row.hparams["optimizer.lr"]
            test = _column(loss, lr, 3)
            assert row.seeds == list(range(len(test)))
            assert row.select["mean"] == pytest.approx(_column(loss, lr, index).mean())
            assert row.metrics["test/acc_worst_group"]["mean"] == pytest.approx(test.mean())
            assert row.metrics["test/acc_worst_group"]["std"] == pytest.approx(test.std(ddof=1))
            assert row.metrics["test/acc_avg"]["mean"] == pytest.approx(_column(loss, lr, 4).mean())
            low, high = row.interval
            assert test.min() <= low <= test.mean() <= high <= test.max()
        expected = max((0.001, 0.01), key=lambda lr: _column(loss, lr, index).mean())
        assert [row.hparams["optimizer.lr"] for row in table if row.chosen] == [expected]
    assert len(result.unfinished) == 1


def test_validation_choice_differs_from_the_oracle_and_the_oracle_is_labelled(sweep, tmp_path):
    # ERM: lr 0.001 has the better val worst-group, lr 0.01 the better test worst-group.
    val = collect(sweep, select="worst_group").tables
    oracle = collect(sweep, select="worst_group", oracle=True)
    erm = "loss.criterion._target_=robustml.losses.ERMLoss"
    assert [r.hparams["optimizer.lr"] for r in val[erm] if r.chosen] == [0.001]
    assert [r.hparams["optimizer.lr"] for r in oracle.tables[erm] if r.chosen] == [0.01]
    collect_sweep([str(sweep), "--oracle", "--out", str(tmp_path / "out")])
    assert "ORACLE TABLE" in (tmp_path / "out" / "collect_oracle.md").read_text()
    assert not (tmp_path / "out" / "collect.md").exists()


def test_bootstrap_interval_is_the_percentile_interval_of_resampled_means():
    values = np.array([0.2, 0.25, 0.3, 0.5])
    draws = np.random.default_rng(0).integers(0, 4, size=(10_000, 4))
    expected = np.percentile(values[draws].mean(axis=1), [2.5, 97.5])
    assert bootstrap_interval(values) == pytest.approx(tuple(expected))
    assert all(np.isnan(bootstrap_interval([0.4])))  # one seed: no spread to resample


def test_selecting_on_test_is_refused_and_unknown_rules_list_the_valid_ones(sweep):
    with pytest.raises(ValueError, match="chooses on the test split.*--oracle"):
        collect(sweep, select="test/acc_worst_group")
    with pytest.raises(ValueError, match=r"one of \['avg', 'worst_class', 'worst_group'\]"):
        collect(sweep, select="inferred_group")


def test_command_line_writes_markdown_csv_plot_and_json(sweep, tmp_path, capsys):
    collect_sweep([str(sweep), "--select", "avg", "--json", str(tmp_path / "r.json")])
    assert "Configurations chosen by validation `val/acc_avg`" in capsys.readouterr().out
    for name in ("collect.md", "collect.csv", "collect.png"):
        assert (sweep / name).stat().st_size > 0
    rows = json.loads((tmp_path / "r.json").read_text())["rows"]
    chosen = [r for r in rows if r["chosen"]]
    assert len(chosen) == 2 and all(not r["oracle"] for r in rows)
    csv_lines = (sweep / "collect.csv").read_text().splitlines()
    assert len(csv_lines) == 1 + len(VALUES)


def test_a_missing_sweep_folder_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv("ROBUSTML_DEBUG", raising=False)
    monkeypatch.setattr(sys, "argv", ["robustml-collect", str(tmp_path / "missing")])
    with pytest.raises(SystemExit, match="Error: FileNotFoundError: SWEEP_DIR .*missing is not a folder"):
        main()


def _two_runs(tmp_path, name, config_extra, seed=0):
    values = (0.3, 0.9, 0.5, 0.2, 0.91)
    _write_run(tmp_path / name, "ERMLoss", 0.001, seed, values)
    config = yaml.safe_load((tmp_path / name / "config.yaml").read_text())
    for key, value in config_extra.items():
        node = config
        *parents, last = key.split(".")
        for parent in parents:
            node = node.setdefault(parent, {})
        node[last] = value
    (tmp_path / name / "config.yaml").write_text(yaml.safe_dump(config))


def test_data_keys_define_settings_and_an_oracle_validation_is_refused(tmp_path):
    _two_runs(tmp_path, "a", {"data.val": "train_envs"})
    _two_runs(tmp_path, "b", {"data.val": "oracle"})
    with pytest.raises(ValueError, match=r"validate on the test distribution \(data.val=oracle\)"):
        collect(tmp_path)
    assert collect(tmp_path, oracle=True).by == ["data.val"]  # a setting, never a hyperparameter
    (tmp_path / "b" / "config.yaml").write_text((tmp_path / "b" / "config.yaml").read_text()
                                                .replace("val: oracle", "val_fraction: 0.5"))
    result = collect(tmp_path)
    assert len(result.tables) == 2 and all(len(rows) == 1 for rows in result.tables.values())


def test_a_duplicate_seed_is_refused_and_resume_switches_are_not_hyperparameters(tmp_path):
    _two_runs(tmp_path, "a", {"trainer.resume_force": False})
    _two_runs(tmp_path, "b", {"trainer.resume_force": True}, seed=1)
    rows = collect(tmp_path).tables["all runs"]
    assert len(rows) == 1 and rows[0].seeds == [0, 1]
    _two_runs(tmp_path, "c", {}, seed=1)
    with pytest.raises(ValueError, match=r"same configuration with the same seed \(1\)"):
        collect(tmp_path)


def test_group_mean_is_a_selection_rule_and_single_seed_intervals_are_na(tmp_path):
    _two_runs(tmp_path, "a", {})
    metrics = json.loads((tmp_path / "a" / "metrics.json").read_text())
    (tmp_path / "a" / "metrics.json").write_text(json.dumps({**metrics, "val/acc_group_mean": 0.6}))
    result = collect(tmp_path, select="group_mean")
    assert result.select_key == "val/acc_group_mean"
    from robustml.report.collect import render_markdown
    assert re.search(r"\| n/a +\|", render_markdown(result))


def test_the_overlapping_groups_rule_chooses_on_their_validation_worst(tmp_path):
    """CivilComments' sweeps choose as WILDS does (val/overlap_acc_worst_group), never on test."""
    for job, (lr, overlap) in enumerate([(0.001, 0.7), (0.01, 0.4)]):
        _write_run(tmp_path / f"{job}", "ERMLoss", lr, 0, (0.3, 0.9, 0.5, 0.2, 0.91))
        metrics = json.loads((tmp_path / f"{job}" / "metrics.json").read_text())
        metrics.update({"val/overlap_acc_worst_group": overlap, "test/overlap_acc_worst_group": 1 - overlap})
        (tmp_path / f"{job}" / "metrics.json").write_text(json.dumps(metrics))
    result = collect(tmp_path, select="worst_overlap_group")
    assert result.select_key == "val/overlap_acc_worst_group"
    assert [row.chosen for row in result.tables["all runs"]] == [True, False]   # lr 0.001: 0.7 > 0.4
    assert collect(tmp_path, select="worst_overlap_group", oracle=True).select_key == \
        "test/overlap_acc_worst_group"
    (tmp_path / "1" / "metrics.json").write_text((tmp_path / "0" / "metrics.json").read_text().replace(
        '"val/overlap_acc_worst_group": 0.7, ', ""))
    with pytest.raises(ValueError, match="every finished run has"):
        collect(tmp_path, select="worst_overlap_group")
