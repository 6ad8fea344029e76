"""Every adult_* and celeba_attributes_* experiment config composes and trains 2 steps on tiny files."""

from __future__ import annotations

import pytest

from robustml.pipeline.run import run
from support import REPO, compose_train
from tabular_fixtures import tiny_values, write_adult, write_celeba

EXPERIMENTS = sorted(p.stem for p in (REPO / "configs" / "experiment").glob("*.yaml")
                     if p.stem.startswith(("adult_", "celeba_attributes_")))


def test_every_tabular_method_has_an_experiment_config():
    methods = ("erm", "group_balanced", "reweight", "group_dro", "jtt", "dfr", "inferred_group_dro",
               "eiil_irm", "afr", "dpe", "dpe_group")
    assert EXPERIMENTS == sorted(f"{d}_{m}" for d in ("adult", "celeba_attributes") for m in methods)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_config_runs_two_steps_on_tiny_generated_data(experiment, tmp_path):
    write_adult(tmp_path / "data")
    write_celeba(tmp_path / "data", *tiny_values())
    # DFR on validation halves the 8 validation rows at random: too few for every group in both.
    small = ["method.fit_on=train"] if experiment.endswith("_dfr") else []
    # AFR holds out 20% of the 16 training rows: 3 rows, of one class on CelebA; hold out half.
    small += ["method.holdout_fraction=0.5"] if experiment.endswith("_afr") else []
    cfg = compose_train([f"experiment={experiment}", "debug=smoke",
                         f"paths.data_root={tmp_path / 'data'}", *small])
    assert cfg.trainer.batch_size == 256 and cfg.model._target_ == "robustml.models.MLP"
    final = run(cfg, run_dir=tmp_path / "run")
    assert final["steps"] == 2
    report = (tmp_path / "run" / "report.md").read_text()
    dataset = "UCI Adult" if experiment.startswith("adult") else "CelebA attributes"
    assert dataset in report and "test" in report
    if experiment.startswith("adult"):  # the '?' rule and whether the attribute is an input
        assert "3 of adult.data, 2 of adult.test" in report and "'sex' is not an input" in report
    uses_groups = not experiment.endswith("_erm")
    assert ("Training: none." not in report) == uses_groups
