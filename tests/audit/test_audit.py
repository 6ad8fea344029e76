"""robustml-audit: finds a planted failing slice, writes its files, refuses a mismatched checkpoint."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from support import compose_train
from robustml.audit import audit_model, audit_predictions, write_audit
from robustml.cli.audit import audit
from robustml.data.contract import GroupedTensorDataset
from robustml.pipeline.run import run

COLUMNS = ["core", "region_north", "noise"]


class Planted(nn.Module):
    """Predicts ``core > 0`` except where ``region_north`` is set: wrong on (y=1, north) only."""

    def features(self, x):
        return x * torch.tensor([1.0, 4.0, 0.2])

    def forward(self, x):
        h = self.features(x)
        return (5 * h[:, :1] - 2.5 * h[:, 1:2])


def _planted(n=600, seed=0):
    g = torch.Generator().manual_seed(seed)
    core = torch.randn(n, generator=g)
    north = (torch.rand(n, generator=g) < 0.3).long()
    x = torch.stack([core, north.float(), torch.randn(n, generator=g)], 1)
    return GroupedTensorDataset(x, (core > 0).long(), north, num_classes=2, attr_names=("south", "north"),
                                attr_key="region", name="planted")


def test_audit_finds_the_planted_failing_slice_and_names_its_column(tmp_path):
    dataset = _planted()
    result = audit_model(Planted(), dataset, feature_names=COLUMNS)
    worst = result.slices[0]
    assert worst.label == 1 and worst.accuracy < 0.2
    assert result.slice_groups[0][0] == 3 and result.slice_groups[0][1] > 0.9   # y=1, region=north
    assert worst.description[0].startswith("region_north: 100% vs 0%")
    assert all(s.accuracy > 0.9 for s in result.slices[1:])
    assert result.metrics["test/acc_worst_group"] == pytest.approx(worst.accuracy, abs=0.05)
    write_audit(result, tmp_path, source="planted")
    record = json.loads((tmp_path / "audit.json").read_text())
    assert record["slices"][0]["main_group_name"] == "y=1,region=north"
    assert "region_north: 100% vs 0%" in (tmp_path / "audit.md").read_text()
    assert (tmp_path / "plots" / "slice_accuracy.png").is_file()
    assert (tmp_path / "plots" / "group_accuracy.png").is_file()


def test_saved_predictions_and_features_give_the_same_slices():
    dataset, model = _planted(), Planted()
    with torch.no_grad():
        preds, feats = (model(dataset.x)[:, 0] > 0).long().numpy(), model.features(dataset.x).numpy()
    saved = audit_predictions(dataset, preds, feats)
    direct = audit_model(model, dataset)
    assert [(s.label, s.size, s.accuracy) for s in saved.slices] == [(s.label, s.size, s.accuracy) for s in direct.slices]
    with pytest.raises(ValueError, match=r"preds must have shape \(600,\)"):
        audit_predictions(dataset, preds[:10], feats)


def test_audit_command_on_a_trained_run_and_a_mismatched_dataset(tmp_path):
    run(compose_train(["trainer.max_steps=4", "trainer.eval_every=2", "trainer.progress=false"]),
        run_dir=tmp_path / "run", summary="none")
    out = audit([str(tmp_path / "run"), "--split", "val", "--out", str(tmp_path / "audit")])
    text = (out / "audit.md").read_text()
    assert "## Slices where the model fails most" in text and "## Counterfactual stress test" in text
    assert json.loads((out / "audit.json").read_text())["split"] == "val"
    fixed = audit([str(tmp_path / "run"), "--split", "val", "--num-clusters", "3", "--out", str(tmp_path / "k3")])
    slices = json.loads((fixed / "audit.json").read_text())["slices"]
    assert sorted({(s["label"], s["cluster"]) for s in slices}) == [(c, k) for c in (0, 1) for k in range(3)]
    np.save(tmp_path / "p.npy", np.zeros(10, dtype=np.int64))
    with pytest.raises(ValueError, match=r"does not fit a MLP built for this dataset \(input shape \(1, 8, 8\).*"
                                         r"use it with the data it was trained on"):
        audit([str(tmp_path / "run"), "data.grayscale=true", "--out", str(tmp_path / "bad")])
    assert not (tmp_path / "bad").exists()
    with pytest.raises(ValueError, match="data overrides only"):
        audit([str(tmp_path / "run"), "loss=group_dro"])
