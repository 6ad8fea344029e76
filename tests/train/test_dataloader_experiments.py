"""The Waterbirds and CelebA experiment configs run end to end (2 steps) on generated files.

The files are written in the exact published layouts (``write_waterbirds``, ``write_celeba``);
only the pretrained weights (``model.weights=null``: offline) and the input size change, and the
fast runs swap ResNet-50 for ResNet-18 (the ResNet-50 runs carry the ``slow`` marker).
"""

import json

import pytest

from support import compose_train
from robustml.data.datasets.example_files import write_celeba, write_waterbirds
from robustml.pipeline.run import run

WRITERS = {"waterbirds": write_waterbirds, "celeba": write_celeba}


EXPERIMENTS = ["waterbirds_erm", "waterbirds_group_dro", "celeba_erm", "celeba_group_dro"]


@pytest.mark.parametrize("arch", ["resnet18", pytest.param("resnet50", marks=pytest.mark.slow)])
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_published_image_experiments_run_on_generated_files(experiment, arch, tmp_path):
    WRITERS[experiment.split("_")[0]](tmp_path / "data")
    overrides = [f"experiment={experiment}", "debug=smoke", f"data.root={tmp_path / 'data'}",
                 "data.image_size=32", "model.weights=null", "trainer.device=cpu"]
    published = compose_train([f"experiment={experiment}"])
    assert published.model.arch == "resnet50" and published.model.weights == "IMAGENET1K_V1"
    assert published.trainer.batch_size == 128 and published.optimizer.momentum == 0.9
    assert published.optimizer.weight_decay == 0.0001 and published.trainer.l2_weight == 0.0
    assert published.optimizer.lr == (0.001 if experiment.startswith("waterbirds") else 0.0001)
    cfg = compose_train([*overrides, f"model.arch={arch}"])
    final = run(cfg, run_dir=tmp_path / "run")
    assert final["steps"] == 2
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["test/count_group_0"] > 0 and "test/acc_worst_group" in saved
    if experiment.endswith("group_dro"):
        assert "balanced sampling used group labels" in (tmp_path / "run" / "report.md").read_text()
