"""``robustml-train method=afr|dpe`` end to end on the embedded colored digits: the shared
last-layer step (base model, feature cache, metrics, saved head, audit, ledger) and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from robustml.data.datasets.colored_digits import colored_digits_splits
from robustml.features import cached_split_features
from robustml.heads import afr, dpe, self_rows
from robustml.models import MLP
from robustml.pipeline import afr as afr_step
from robustml.pipeline import dpe as dpe_step
from robustml.pipeline.audit import audit_run
from robustml.pipeline.labels import describe_group_label_use
from robustml.pipeline.run import run
from robustml.health import Thresholds
from support import compose_train

FAST = ["trainer.max_steps=20", "trainer.eval_every=10", "trainer.progress=false"]
AFR = ["experiment=colored_digits_afr", "method.gammas=[0.0,4.0]", "method.regs=[0.0,0.1]",
       "method.num_epochs=15", "method.lr=0.05"]
DPE = ["experiment=colored_digits_dpe", "method.num_members=2", "method.epochs=3", "method.batch_size=32",
       "method.cov_reg=100.0"]


def _base_model(cfg, run_dir, features_dir):
    splits = colored_digits_splits(seed=0)
    model = MLP(splits.input_shape, 1, hidden_dims=tuple(cfg.model.hidden_dims))
    model.load_state_dict(torch.load(run_dir / "checkpoints" / "best.pt", weights_only=False)["model"])
    return splits, model, cached_split_features(model, splits, features_dir, progress=False)


def _worst(preds, split):
    y, g = split.y.numpy(), split.group.numpy()
    return min((preds == y)[g == k].mean() for k in np.unique(g))


def test_afr_run_equals_a_direct_fit_on_the_held_out_rows_and_is_audited(tmp_path):
    cfg = compose_train([*AFR, *FAST, f"method.cache_dir={tmp_path / 'features'}"])
    final = run(cfg, run_dir=tmp_path / "run", summary="none")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert {"test/acc_worst_group", "base/test/acc_worst_group", "afr/gamma", "afr/reg",
            "afr/epoch"} <= set(metrics)
    splits, model, features = _base_model(cfg, tmp_path / "run", tmp_path / "features")
    base_rows, held = afr_step.split_rows(cfg, len(splits.train))
    assert len(held) == int(0.2 * len(splits.train)) and not set(base_rows) & set(held)
    assert final["afr/heldout_rows"] == len(held)
    direct = afr(features["train"][held], splits.train.y.numpy()[held], model.head.weight.detach(),
                 model.head.bias.detach(), features["val"], splits.val.y.numpy(), splits.val.group.numpy(),
                 num_groups=4, gammas=[0.0, 4.0], regs=[0.0, 0.1], num_epochs=15, lr=0.05, seed=0)
    assert (final["afr/gamma"], final["afr/reg"]) == (direct.gamma, direct.reg)
    assert final["test/acc_worst_group"] == pytest.approx(
        _worst(direct.predict(features["test"]), splits.test))
    uses = describe_group_label_use(cfg)
    assert "AFR's last layer: class labels only" in uses["training"] and "80%" in uses["training"]
    assert "AFR's gamma, reg and step: validation group labels" in uses["selection"]
    assert "## AFR" in (tmp_path / "run" / "report.md").read_text()
    audit = json.loads((audit_run(tmp_path / "run", out_dir=tmp_path / "audit") / "audit.json").read_text())
    assert "AFR last layer" in audit["source"]
    assert audit["per_group"]["test/acc_worst_group"] == pytest.approx(final["test/acc_worst_group"],
                                                                       abs=1e-6)

    # The finished AFR run as the base: no training, the same result; a run whose base model saw
    # the held-out rows (other rows held out) is refused by name.
    again = run(compose_train([*AFR, *FAST, f"method.base_run={tmp_path / 'run'}",
                               f"method.cache_dir={tmp_path / 'features'}"]), run_dir=tmp_path / "again",
                summary="none")
    assert again["test/acc_worst_group"] == final["test/acc_worst_group"]
    with pytest.raises(ValueError, match=r"method.split_seed: this run has 3, the base run has 21"):
        run(compose_train([*AFR, *FAST, "method.split_seed=3", f"method.base_run={tmp_path / 'run'}"]),
            run_dir=tmp_path / "bad", summary="none")


@pytest.mark.parametrize("balance", ["class", "group"])
def test_dpe_run_equals_a_direct_fit_on_validation_and_is_audited(tmp_path, balance):
    cfg = compose_train([*DPE, *FAST, f"method.balance={balance}",
                         f"method.cache_dir={tmp_path / 'features'}"])
    final = run(cfg, run_dir=tmp_path / "run", summary="none")
    splits, _, features = _base_model(cfg, tmp_path / "run", tmp_path / "features")
    val = splits.val
    direct = dpe(features["val"], val.y.numpy(), val.group.numpy() if balance == "group" else None,
                 features["val"], val.y.numpy(), val.group.numpy(), num_classes=2, num_groups=4,
                 balance=balance, num_members=2, epochs=3, batch_size=32, cov_reg=100.0, seed=0)
    assert final["test/acc_worst_group"] == pytest.approx(
        _worst(direct.predict(features["test"]), splits.test))
    assert final["dpe/member_1_val_worst_group"] == pytest.approx(direct.member_scores[1])
    uses = describe_group_label_use(cfg)
    expected = "class labels only" if balance == "class" else "validation group labels (group-balanced"
    assert f"DPE's prototype ensemble: {expected}" in uses["training"]
    audit = json.loads((audit_run(tmp_path / "run", out_dir=tmp_path / "audit") / "audit.json").read_text())
    assert "DPE last layer" in audit["source"]
    assert audit["per_group"]["test/acc_worst_group"] == pytest.approx(final["test/acc_worst_group"],
                                                                       abs=1e-6)


def test_head_health_checks_fire_at_a_grid_edge_and_on_a_one_class_member():
    cfg, splits, limits = compose_train(AFR), colored_digits_splits(seed=0), Thresholds()

    def afr_health(gamma, reg):
        return afr_step.health(cfg, {"afr/gamma": gamma, "afr/reg": reg}, splits, thresholds=limits)
    assert [f.check for f in afr_health(4.0, 0.0)] == ["afr_at_grid_edge"]
    assert "extend method.gammas past 4" in afr_health(4.0, 0.0)[0].message
    assert afr_health(2.0, 0.0) == []  # reg=0, no pull: not an edge to extend
    assert "largest value of method.regs" in afr_health(2.0, 0.1)[0].message
    final = {"dpe/member_0_class_share": 0.6, "dpe/member_1_class_share": 1.0}
    found = dpe_step.health(cfg, final, splits, thresholds=limits)
    assert [f.check for f in found] == ["dpe_member_one_class"] and "member(s) [1] of 2" in found[0].message
    assert dpe_step.health(cfg, final, splits, thresholds=Thresholds(dpe_member_class_share=1.01)) == []
    # The ensemble's own predictions: one class for every test row fires the shared one-class check.
    one_class = {**final, "test/pred_share_0": 1.0, "test/pred_share_1": 0.0}
    assert "one_class_predictor" in [f.check for f in dpe_step.health(cfg, one_class, splits,
                                                                      thresholds=limits)]


def test_head_runs_refuse_bad_settings_by_name(tmp_path):
    with pytest.raises(ValueError, match=r"method.holdout_fraction=1.0 holds out"):
        run(compose_train([*AFR, *FAST, "method.holdout_fraction=1.0"]), run_dir=tmp_path / "a",
            summary="none")
    with pytest.raises(ValueError, match=r"fewer than batch_size=4096.*method.batch_size"):
        run(compose_train([*DPE, *FAST, "method.batch_size=4096", f"method.cache_dir={tmp_path / 'f'}"]),
            run_dir=tmp_path / "b", summary="none")
    run(compose_train([*FAST, "trainer.max_steps=2", "data.label_noise=0.1"]), run_dir=tmp_path / "other",
        summary="none")
    with pytest.raises(ValueError, match=r"data.label_noise: this run has 0.25, the base run has 0.1"):
        run(compose_train([*DPE, *FAST, f"method.base_run={tmp_path / 'other'}"]), run_dir=tmp_path / "c",
            summary="none")


def test_dpe_on_the_rows_the_base_model_gets_most_wrong(tmp_path):
    cfg = compose_train([*DPE, *FAST, "method.retrain_rows=misclassified", "method.num_rows=120",
                         f"method.cache_dir={tmp_path / 'features'}"])
    final = run(cfg, run_dir=tmp_path / "run", summary="none")
    splits, model, features = _base_model(cfg, tmp_path / "run", tmp_path / "features")
    val = splits.val
    logits = features["val"] @ model.head.weight.detach().numpy().T + model.head.bias.detach().numpy()
    rows = np.sort(self_rows(val.y.numpy(), logits, 120))
    direct = dpe(features["val"][rows], val.y.numpy()[rows], None, features["val"], val.y.numpy(),
                 val.group.numpy(), num_classes=2, num_groups=4, num_members=2, epochs=3, batch_size=32,
                 cov_reg=100.0, seed=0)
    assert final["dpe/retrain_rows"] == 120
    assert final["test/acc_worst_group"] == pytest.approx(
        _worst(direct.predict(features["test"]), splits.test))
    training = describe_group_label_use(cfg)["training"]
    assert "the 120 validation rows the base model gets most wrong (SELF)" in training
    with pytest.raises(ValueError, match="needs method.num_rows"):
        run(compose_train([*DPE, *FAST, "method.retrain_rows=misclassified",
                           f"method.cache_dir={tmp_path / 'features'}"]), run_dir=tmp_path / "bad",
            summary="none")
