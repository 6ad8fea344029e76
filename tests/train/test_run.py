"""End-to-end: configs compose, runs write their outputs, the console script works, errors are clear."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from support import REPO, SHARED_DATA, compose_train, mnist_available
from omegaconf import OmegaConf

from robustml.pipeline.run import SMOKE_STAGES, run

EXPERIMENTS = sorted(p.stem for p in (REPO / "configs" / "experiment").glob("*.yaml"))
SCRIPT = Path(sys.executable).parent / "robustml-train"


def test_default_run_writes_every_output(tmp_path):
    cfg = compose_train(["trainer.max_steps=4", "trainer.eval_every=2", "trainer.progress=false"])
    final = run(cfg, run_dir=tmp_path)
    for name in ("config.yaml", "metrics.jsonl", "metrics.json", "report.md",
                 "plots/group_accuracy.png", "plots/worst_group_accuracy.png",
                 "checkpoints/last.pt", "checkpoints/best.pt"):
        assert (tmp_path / name).is_file(), name
    saved = json.loads((tmp_path / "metrics.json").read_text())
    for split in ("val", "test"):
        for key in ("acc_worst_group", "acc_avg", "acc_weighted_avg", "acc_group_0", "count_group_3"):
            assert f"{split}/{key}" in saved
    assert saved["test/acc_worst_group"] == pytest.approx(final["test/acc_worst_group"])
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 2
    assert "What group labels were used for" in (tmp_path / "report.md").read_text()


def test_eval_train_last_changes_only_the_intermediate_records(tmp_path):
    outputs = {}
    for mode in ("every", "last"):
        cfg = compose_train(["trainer.max_steps=5", "trainer.eval_every=2", "trainer.batch_size=64",
                             "model.dropout=0.2", "trainer.progress=false", f"trainer.eval_train={mode}"])
        run(cfg, run_dir=tmp_path / mode)
        final = json.loads((tmp_path / mode / "metrics.json").read_text())
        lines = [json.loads(line) for line in (tmp_path / mode / "metrics.jsonl").read_text().splitlines()]
        outputs[mode] = {k: v for k, v in final.items() if k != "train_seconds"}, lines
    assert outputs["last"][0] == outputs["every"][0]
    assert [any(k.startswith("train/acc") for k in r) for r in outputs["last"][1]] == [False, False, True]
    assert all(any(k.startswith("train/acc") for k in r) for r in outputs["every"][1])


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_config_runs_under_debug_smoke(experiment, tmp_path):
    # debug=smoke shortens every stage (JTT's stage one, EIIL's search too); caches go to tmp_path.
    if experiment.startswith(("civilcomments_", "multinli_")):
        pytest.skip("BERT on CivilComments / MultiNLI needs their files and bert-base-uncased: "
                    "tests/train/test_hf_experiments.py runs these configs on a tiny BERT")
    cfg = compose_train([f"experiment={experiment}", "debug=smoke", f"paths.data_root={SHARED_DATA}",
                         f"paths.output_root={tmp_path / 'runs'}"])
    if "mnist" in cfg.data._target_ and not mnist_available():
        pytest.skip(f"MNIST not found under {SHARED_DATA}; this experiment needs it")
    needs = {"adult_splits": SHARED_DATA / "adult" / "adult.data",
             "celeba_attributes_splits": SHARED_DATA / "celeba" / "list_attr_celeba.txt"}
    target = cfg.data._target_.rsplit(".", 1)[-1]
    if target in needs and not needs[target].is_file():
        pytest.skip(f"{needs[target]} not found; this experiment needs it (it also runs on generated "
                    "files in tests/train/test_tabular_experiments.py)")
    if cfg.data._target_.rsplit(".", 1)[-1] in ("waterbirds_splits", "celeba_splits"):
        pytest.skip("image data on disk (and pretrained weights): run on generated files in "
                    "tests/train/test_dataloader_experiments.py")
    if experiment.startswith("own_images_"):
        pytest.skip("needs the generated image folder: tests/data/test_own_images_example.py generates "
                    "a small one and runs these configs under debug=smoke")
    if experiment.startswith("text_offline_"):
        pytest.skip("needs the generated review CSV: tests/data/test_text_offline_data.py writes a "
                    "small one and runs these configs under debug=smoke")
    final = run(cfg, run_dir=tmp_path)
    assert final["steps"] == 2
    for key, value in SMOKE_STAGES.items():
        assert OmegaConf.select(cfg, key, default=value) == value
    if experiment.endswith("_jtt"):
        assert final["jtt/stage_one_steps"] == 2


def test_console_script_trains_and_reports(tmp_path):
    out = subprocess.run([str(SCRIPT), "trainer.max_steps=3", "trainer.progress=false",
                          f"hydra.run.dir={tmp_path}"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "acc_worst_group" in json.dumps(json.loads((tmp_path / "metrics.json").read_text()))
    assert "worst" in out.stdout.lower()


def test_missing_mnist_root_names_the_path(tmp_path):
    cfg = compose_train(["experiment=colored_mnist_erm", "debug=smoke",
                         f"paths.data_root={tmp_path / 'nowhere'}"])
    with pytest.raises(FileNotFoundError, match="nowhere"):
        run(cfg, run_dir=tmp_path / "run")


@pytest.mark.parametrize("overrides", [
    ["sampler=group_balanced"],
    ["sampler=reweight", "sampler.partition=class"],
    ["augment=counterfactual", "augment.mode=paired", "augment.consistency_weight=1.0"],
])
def test_samplers_and_augmentation_train_from_config(overrides, tmp_path):
    cfg = compose_train(["trainer.max_steps=3", "trainer.eval_every=3", "trainer.progress=false",
                         *overrides])
    final = run(cfg, run_dir=tmp_path)
    assert final["steps"] == 3
    report = (tmp_path / "report.md").read_text()
    assert "Training: none." not in report  # group or attribute labels were used and it says so


def test_stress_test_runs_after_training_when_the_dataset_declares_a_rule(tmp_path):
    cfg = compose_train(["trainer.max_steps=2", "trainer.progress=false"])
    final = run(cfg, run_dir=tmp_path)
    for key in ("test/cf_flip_rate", "test/cf_acc_worst_group", "val/cf_flip_rate"):
        assert 0.0 <= final[key] <= 1.0
    assert "Counterfactual stress test: test" in (tmp_path / "report.md").read_text()


def test_consistency_penalty_without_pairs_is_refused(tmp_path):
    cfg = compose_train(["augment=counterfactual", "augment.mode=replace",
                         "augment.consistency_weight=1.0", "trainer.progress=false"])
    with pytest.raises(ValueError, match="augment.mode=paired"):
        run(cfg, run_dir=tmp_path)


def test_cleaning_then_training_with_group_dro_from_config(tmp_path):
    cfg = compose_train(["cleaning=confident_learning", "cleaning.action=reweight", "loss=group_dro",
                         "cleaning.guard.max_fraction=0.3", "trainer.max_steps=3",
                         "trainer.progress=false"])
    final = run(cfg, run_dir=tmp_path)
    assert final["cleaning/flagged"] > 0
    assert (tmp_path / "label_issues.csv").is_file()
    report = (tmp_path / "report.md").read_text()
    assert "Label cleaning" in report and "cleaning guard used training group labels" in report

