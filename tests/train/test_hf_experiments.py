"""The papers' BERT recipes for CivilComments and MultiNLI: their values, and a smoke run of each.

The values below are transcribed from the sources each config cites (WILDS' configs, the Group
DRO and JTT READMEs), independently of the config files. The smoke runs swap bert-base-uncased
for the tiny BERT and the data for small tokenized texts (no download): the optimizer,
schedule, loss, sampler and method of each recipe train together.
"""

from __future__ import annotations

import pytest

from hf_fixtures import TINY_OVERRIDES
from support import REPO, compose_train

TEXT_EXPERIMENTS = sorted(f"{data}_{method}" for data in ("civilcomments", "multinli")
                          for method in ("erm", "group_dro", "jtt", "dfr"))

# (lr, weight decay, batch size, epochs, max_length) of each data set's recipe.
WILDS_CIVILCOMMENTS = (1e-5, 0.01, 16, 5, 300)     # WILDS examples/configs/datasets.py
GROUP_DRO_MULTINLI = (2e-5, 0.0, 32, 3, 128)       # group_DRO README sample command, cached_*_128
RECIPES = {
    "civilcomments_erm": WILDS_CIVILCOMMENTS, "civilcomments_group_dro": WILDS_CIVILCOMMENTS,
    "civilcomments_dfr": WILDS_CIVILCOMMENTS, "civilcomments_jtt": (1e-5, 0.01, 16, 3, 300),
    "multinli_erm": GROUP_DRO_MULTINLI, "multinli_group_dro": GROUP_DRO_MULTINLI,
    "multinli_dfr": GROUP_DRO_MULTINLI, "multinli_jtt": (2e-5, 0.0, 32, 5, 128),
}
# (T epochs, lambda_up): the JTT README's --final_epoch 2, counted from 0 in its train.py (3 epochs).
JTT = {"civilcomments_jtt": (3, 6), "multinli_jtt": (3, 4)}


def test_every_text_method_has_an_experiment_config():
    found = sorted(p.stem for p in (REPO / "configs" / "experiment").glob("*.yaml")
                   if p.stem.startswith(("civilcomments_", "multinli_")))
    assert found == TEXT_EXPERIMENTS


@pytest.mark.parametrize("experiment", TEXT_EXPERIMENTS)
def test_experiment_config_holds_the_papers_bert_recipe(experiment):
    cfg = compose_train([f"experiment={experiment}"])
    lr, weight_decay, batch_size, epochs, max_length = RECIPES[experiment]
    assert cfg.model._target_ == "robustml.models.hf.HFClassifier" and cfg.model.pretrained
    assert cfg.model.name == "bert-base-uncased" == cfg.data.tokenizer
    assert cfg.data.max_length == max_length
    assert cfg.optimizer._target_ == "torch.optim.AdamW"
    assert (cfg.optimizer.lr, cfg.optimizer.weight_decay, cfg.optimizer.eps) == (lr, weight_decay, 1e-8)
    assert cfg.scheduler._target_ == "robustml.train.schedules.warmup_linear"
    assert cfg.scheduler.warmup_steps == 0
    assert (cfg.trainer.batch_size, cfg.trainer.epochs) == (batch_size, epochs)
    assert cfg.trainer.max_grad_norm == 1.0  # run_glue.py's max_grad_norm, WILDS' model config
    # CivilComments selects on WILDS' 16 overlapping identity x label groups (val_metric acc_wg).
    assert cfg.trainer.select == ("last" if experiment.endswith("_dfr") else "worst_overlap_group"
                                  if experiment.startswith("civilcomments") else "worst_group")
    if experiment == "civilcomments_jtt":
        assert cfg.data.attribute == "identity_any"   # JTT's confounder, the file's column
    robust = experiment.endswith("_group_dro")
    assert cfg.loss.criterion._target_.endswith("GroupDROLoss" if robust else "ERMLoss")
    assert cfg.sampler.name == ("group_balanced" if robust else "uniform")
    if robust:
        assert (cfg.loss.criterion.step_size, cfg.loss.criterion.adjustment) == (0.01, 0.0)
    if experiment in JTT:
        assert cfg.method._target_ == "robustml.pipeline.jtt"
        assert (cfg.method.stage_one.epochs, cfg.method.lambda_up) == JTT[experiment]
        assert cfg.method.stage_one.max_steps is None and cfg.method.upweight == "sample"
    if experiment.endswith("_dfr"):
        assert cfg.method._target_ == "robustml.pipeline.dfr" and cfg.method.fit_on == "val"


@pytest.mark.parametrize("experiment", TEXT_EXPERIMENTS)
def test_experiment_config_trains_a_tiny_bert_under_debug_smoke(experiment, tmp_path, monkeypatch):
    import robustml.pipeline.run as run_module
    from omegaconf import OmegaConf
    monkeypatch.setattr(run_module, "plot_history", lambda *args, **kwargs: None)
    monkeypatch.setattr(run_module, "plot_group_accuracy", lambda *args, **kwargs: None)
    # The stand-in data has no overlapping groups to select on (tests/train/test_overlap_runs.py
    # covers worst_overlap_group).
    select = [] if experiment.endswith("_dfr") else ["trainer.select=worst_group"]
    cfg = compose_train([f"experiment={experiment}", "debug=smoke", *TINY_OVERRIDES[1:], *select,
                         "trainer.device=cpu", f"paths.output_root={tmp_path / 'runs'}"])
    cfg.data = OmegaConf.create({"_target_": "hf_fixtures.text_splits", "seed": "${seed}",
                                 "n_eval": 64, "pairs": experiment.startswith("multinli")})
    final = run_module.run(cfg, run_dir=tmp_path / "run", summary="none")
    assert final["steps"] == 2
    if experiment.endswith("_jtt"):
        assert final["jtt/stage_one_steps"] == 2
    if experiment.endswith("_dfr"):
        assert "dfr/C" in final
