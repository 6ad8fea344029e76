"""Cached-feature splits: source metadata kept, the cache reused across runs, a config route."""

import json
import logging

import numpy as np
import pytest
import torch

from robustml.data.datasets import image_csv_splits
from robustml.data.datasets.example_files import write_image_csv
from robustml.features import feature_splits
from robustml.models import MLP, SmallCNN
from robustml.pipeline.run import run
from support import compose_train

FEATURE_RUN = ["data=features", "model=linear", "model@data.backbone=cnn",
               "data.backbone.channels=[2,2,3]", "data.source.image_size=8",
               "trainer.max_steps=6", "trainer.eval_every=3", "trainer.progress=false"]


def test_feature_splits_keep_the_source_metadata_and_equal_a_direct_forward(tmp_path):
    csv = write_image_csv(tmp_path / "images", per_group=4, split_column=True)
    source = image_csv_splits(csv, image_size=8)
    backbone = SmallCNN((3, 8, 8), 1, channels=(2, 2, 3))
    splits = feature_splits(source, backbone, tmp_path / "cache", progress=False)
    for (name, feats), (_, split) in zip(splits.items(), source.items()):
        assert feats.in_memory and feats.input_shape == (3,)
        assert torch.equal(feats.y, split.y) and torch.equal(feats.group, split.group)
        assert feats.group_names == split.group_names
        evaluated = split.for_eval()
        with torch.no_grad():
            direct = backbone.features(torch.stack([evaluated[i]["x"] for i in range(len(split))]))
        np.testing.assert_allclose(feats.x.numpy(), direct.numpy(), rtol=1e-5, atol=1e-6)
    assert "train extracted into" in splits.description


def test_a_factory_backbone_is_seeded_so_a_second_call_reuses_the_cache(tmp_path, monkeypatch):
    csv = write_image_csv(tmp_path / "images", per_group=4, split_column=True)
    source = image_csv_splits(csv, image_size=8)

    def factory(input_shape, num_outputs):
        return SmallCNN(input_shape, num_outputs, channels=(2, 2, 3))

    first = feature_splits(source, factory, tmp_path / "cache", seed=3, progress=False)
    torch.manual_seed(123)  # the caller's RNG state does not change the backbone
    monkeypatch.setattr(SmallCNN, "features", lambda self, x: pytest.fail("cache not reused"))
    again = feature_splits(source, factory, tmp_path / "cache", seed=3, progress=False)
    assert torch.equal(first.train.x, again.train.x)
    assert again.description.count("reused from") == 3 and "seed 3" in again.description


def test_a_checkpoint_is_loaded_into_the_backbone_and_a_mismatch_names_the_keys(tmp_path):
    from robustml.data.datasets.colored_digits import colored_digits_splits

    source = colored_digits_splits(seed=0)
    trained = MLP(source.input_shape, 1, hidden_dims=(4,))
    torch.save({"model": trained.state_dict(), "step": 3}, tmp_path / "best.pt")
    factory = lambda input_shape, num_outputs: MLP(input_shape, num_outputs, hidden_dims=(4,))  # noqa: E731
    splits = feature_splits(source, factory, tmp_path / "cache", checkpoint=tmp_path / "best.pt",
                            progress=False)
    with torch.no_grad():
        np.testing.assert_allclose(splits.val.x.numpy(), trained.features(source.val.x).numpy(),
                                   rtol=1e-6)
    assert "checkpoint" in splits.description
    wrong = lambda input_shape, num_outputs: MLP(input_shape, num_outputs, hidden_dims=(5,))  # noqa: E731
    with pytest.raises(ValueError, match=r"mismatched keys \['body.1.bias'"):
        feature_splits(source, wrong, tmp_path / "cache", checkpoint=tmp_path / "best.pt")


def test_robustml_train_trains_a_linear_probe_on_cached_features_and_reuses_them(tmp_path, caplog):
    csv = write_image_csv(tmp_path / "images", per_group=6, split_column=True)
    overrides = [*FEATURE_RUN, f"data.source.csv={csv}", f"data.cache_dir={tmp_path / 'cache'}"]
    caplog.set_level(logging.INFO, logger="robustml.features")
    first = run(compose_train(overrides), run_dir=tmp_path / "run1")
    assert caplog.text.count("extracted") == 3 and "reusing" not in caplog.text
    second = run(compose_train(overrides), run_dir=tmp_path / "run2")
    assert caplog.text.count("reusing") == 3
    assert first["test/acc_worst_group"] == second["test/acc_worst_group"]
    report = (tmp_path / "run2" / "report.md").read_text()
    assert "train reused from" in report and "random initialization, seed 0" in report
    saved = json.loads((tmp_path / "run2" / "metrics.json").read_text())
    source = image_csv_splits(csv, image_size=8)
    for split in ("train", "test"):   # the source split's groups, from its metadata
        counts = getattr(source, split).group_counts().tolist()
        assert [saved[f"{split}/count_group_{g}"] for g in range(4)] == counts
