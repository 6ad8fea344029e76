"""Selection rules without group labels pick the right checkpoint on a constructed history."""

import pytest
import torch

from robustml.data.contract import GroupedTensorDataset
from robustml.losses import ERMLoss
from robustml.models import MLP
from robustml.train import Trainer, TrainSettings, load_checkpoint

# Validation metrics of steps 1..4: each rule has a different best step.
HISTORY = [
    {"val/acc_worst_group": 0.2, "val/acc_avg": 0.9, "val/acc_worst_class": 0.5, "val/acc_worst_inferred_group": 0.1},
    {"val/acc_worst_group": 0.6, "val/acc_avg": 0.7, "val/acc_worst_class": 0.4, "val/acc_worst_inferred_group": 0.2},
    {"val/acc_worst_group": 0.5, "val/acc_avg": 0.8, "val/acc_worst_class": 0.7, "val/acc_worst_inferred_group": 0.3},
    {"val/acc_worst_group": 0.4, "val/acc_avg": 0.6, "val/acc_worst_class": 0.6, "val/acc_worst_inferred_group": 0.9},
]


@pytest.mark.parametrize("select, best_step", [("worst_group", 2), ("avg", 1), ("worst_class", 3),
                                               ("worst_inferred_group", 4), ("last", 4)])
def test_each_rule_picks_its_best_step(select, best_step, tmp_path, monkeypatch):
    g = torch.Generator().manual_seed(0)
    data = GroupedTensorDataset(torch.randn(16, 3), torch.randint(0, 2, (16,), generator=g),
                                torch.randint(0, 2, (16,), generator=g), num_classes=2, attr_names=("a", "b"))
    model = MLP((3,), 1, hidden_dims=(4,))
    trainer = Trainer(model, ERMLoss(4), torch.optim.SGD(model.parameters(), lr=0.1), data, data,
                      TrainSettings(max_steps=4, eval_every=1, select=select, progress=False), run_dir=tmp_path)
    records = iter(HISTORY)
    monkeypatch.setattr(trainer, "_evaluate", lambda loss: {"step": trainer.step, "train/loss": loss, **next(records)})
    assert trainer.fit()["best_step"] == best_step
    assert load_checkpoint(trainer.best_path)["step"] == best_step


@pytest.mark.parametrize("select", ["worst_class", "avg"])
def test_rules_without_group_labels_ignore_the_validation_groups(select, tmp_path):
    """Scrambling the validation split's attributes (hence its groups) changes no choice."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(200, 3, generator=g), torch.randint(0, 2, (200,), generator=g)
    train = GroupedTensorDataset(x[:120], y[:120], torch.randint(0, 2, (120,), generator=g),
                                 num_classes=2, attr_names=("a", "b"))
    chosen = []
    for attr_seed in (1, 2):
        attr = torch.randint(0, 2, (80,), generator=torch.Generator().manual_seed(attr_seed))
        val = GroupedTensorDataset(x[120:], y[120:], attr, num_classes=2, attr_names=("a", "b"))
        torch.manual_seed(0)
        model = MLP((3,), 1, hidden_dims=(8,))
        trainer = Trainer(model, ERMLoss(4), torch.optim.SGD(model.parameters(), lr=0.5), train, val,
                          TrainSettings(max_steps=12, eval_every=1, select=select, progress=False),
                          run_dir=tmp_path / f"run{attr_seed}")
        result = trainer.fit()
        chosen.append((result["best_step"], [r[f"val/acc_{select}"] for r in result["history"]],
                       [r["val/acc_worst_group"] for r in result["history"]]))
    assert chosen[0][:2] == chosen[1][:2]
    assert chosen[0][2] != chosen[1][2]  # the scrambled groups did change the group metrics
