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
    monkeypatch.setattr(trainer, "_evaluate", lambda loss: {"step": trainer.step, **next(records)})
    assert trainer.fit()["best_step"] == best_step
    assert load_checkpoint(trainer.best_path)["step"] == best_step
