"""The JTT, DFR, AFR and DPE experiment configs of Waterbirds and CelebA run end to end
(``debug=smoke``) on tiny generated files in the exact published layouts, and keep their papers'
protocols."""

import json

import pytest

from robustml.data.datasets.example_files import write_celeba, write_waterbirds
from robustml.pipeline.run import run
from support import compose_train

# Enough generated images that AFR's held-out fifth of the training split holds both classes.
WRITERS = {"waterbirds": lambda root: write_waterbirds(root, per_group=10, size=(40, 40)),
           "celeba": lambda root: write_celeba(root, num_images=96, size=(40, 48))}
EXPERIMENTS = [f"{data}_{method}" for data in WRITERS for method in ("jtt", "dfr", "afr", "dpe")]


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_head_and_jtt_image_experiments_run_on_generated_files(experiment, tmp_path):
    data, method = experiment.split("_")
    WRITERS[data](tmp_path / "data")
    published = compose_train([f"experiment={experiment}"])
    assert published.model.arch == "resnet50" and published.model.weights == "IMAGENET1K_V1"
    assert published.method._target_ == f"robustml.pipeline.{method}"
    cfg = compose_train([f"experiment={experiment}", "debug=smoke", f"data.root={tmp_path / 'data'}",
                         "data.image_size=32", "model.weights=null", "model.arch=resnet18",
                         "trainer.device=cpu", f"paths.output_root={tmp_path / 'runs'}"])
    final = run(cfg, run_dir=tmp_path / "run", summary="none")
    assert final["steps"] == 2
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert "test/acc_worst_group" in saved
    if method != "jtt":  # the head's metrics replace the base model's, kept under base/
        assert "base/test/acc_worst_group" in saved
        assert (tmp_path / "run" / "checkpoints" / f"{method}_head.pt").is_file()


def test_the_experiments_keep_the_papers_settings():
    jtt = compose_train(["experiment=waterbirds_jtt"])
    assert (jtt.optimizer.lr, jtt.optimizer.weight_decay, jtt.method.stage_one.epochs, jtt.method.lambda_up,
            jtt.trainer.epochs, jtt.trainer.batch_size) == (1e-5, 1.0, 60, 100, 300, 64)
    jtt = compose_train(["experiment=celeba_jtt"])
    assert (jtt.optimizer.weight_decay, jtt.method.stage_one.epochs, jtt.method.lambda_up,
            jtt.trainer.epochs) == (0.1, 1, 50, 50)
    dfr = compose_train(["experiment=waterbirds_dfr"])
    assert (dfr.optimizer.lr, dfr.optimizer.weight_decay, dfr.trainer.batch_size, dfr.trainer.epochs,
            dfr.data.augment, dfr.trainer.select) == (1e-3, 1e-3, 32, 100, True, "last")
    afr = compose_train(["experiment=celeba_afr"])
    assert (afr.method.lr, afr.method.num_epochs, len(afr.method.gammas), list(afr.method.regs),
            afr.method.holdout_fraction) == (0.02, 1000, 10, [0.001, 0.01, 0.1], 0.2)
    afr = compose_train(["experiment=waterbirds_afr"])
    assert (afr.method.lr, afr.method.num_epochs, len(afr.method.gammas),
            afr.trainer.epochs) == (0.01, 500, 33, 50)
    dpe = compose_train(["experiment=celeba_dpe"])
    assert (dpe.method.num_members, dpe.method.lr, dpe.method.cov_reg,
            dpe.method.balance) == (16, 5e-4, 5e5, "class")
