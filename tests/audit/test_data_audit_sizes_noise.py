"""The data audit's image sizes (from the files' headers), its label-noise estimate (against a
direct cleanlab computation and injected noise) and its answers to data it cannot read."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from robustml.audit import audit_data, render_data_audit_md
from robustml.audit.data_noise import noise_estimate
from robustml.cleaning import add_label_noise, out_of_sample_probs
from robustml.cli.audit import audit
from robustml.data.contract import DataSplits, GroupedTensorDataset
from robustml.data.datasets.colored_digits import colored_digits_splits
from robustml.data.datasets.example_files import write_image_csv
from robustml.pipeline.audit import compose_audit_data
from robustml.pipeline.build import build_splits
from support import compose_train


def _found(result, check):
    return [f for f in result.findings if f.check == check]


def _image_splits(tmp_path, dog_size=None):
    """The tiny cat/dog image CSV (32x32 files); with ``dog_size``, every dog image resaved at that size."""
    csv = write_image_csv(tmp_path, per_group=12, split_column=True)
    if dog_size is not None:
        for path in (tmp_path / "img").glob("dog_*"):
            Image.open(path).resize(dog_size).save(path)
    return compose_audit_data(None, ["data=image_csv", f"data.csv={csv}", "data.image_size=16"])


def test_an_image_size_that_predicts_the_label_is_a_shortcut_candidate(tmp_path):
    result = audit_data(_image_splits(tmp_path, dog_size=(40, 24)))
    sizes = _found(result, "image_size_shortcut")
    assert len(sizes) == 1 and "the image size alone predicts the label in train (1.00" in sizes[0].message
    assert "y=dog,background=indoor 40x24 (100%)" in sizes[0].message
    assert result.image_sizes["splits"]["train"] == {"32x32": 12, "40x24": 12}  # from the files, not 16x16
    assert result.image_sizes["uniform"] is False
    assert {d["column"] for d in result.drift} >= {"image width", "image height"}
    assert "| split train | 32x32 (12), 40x24 (12) |" in re.sub(" +", " ", render_data_audit_md(result))


def test_uniform_image_sizes_are_quiet_and_said_to_be_uniform(tmp_path):
    result = audit_data(_image_splits(tmp_path))
    assert _found(result, "image_size_shortcut") == [] and result.image_sizes["uniform"] is True
    assert not any(d["alert"] for d in result.drift if d["column"] in ("image width", "image height"))
    assert "every one has the same size" in render_data_audit_md(result)
    in_memory = audit_data(colored_digits_splits(seed=0))
    assert in_memory.image_sizes == {"source": "in memory", "shape": [2, 8, 8], "uniform": True}
    assert "every one 2 x 8 x 8 (channels x height x width): the size is uniform" in render_data_audit_md(in_memory)


def _digits_splits(rate, seed=0):
    """scikit-learn's digits as a table, train labels with ``rate`` symmetric noise; val and test clean."""
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(y))
    x, y = x[order] / 16, y[order]
    noisy = add_label_noise(y[:1200], num_classes=10, rate=rate, seed=seed)
    parts = [(x[:1200], noisy.labels), (x[1200:1500], y[1200:1500]), (x[1500:], y[1500:])]
    datasets = [GroupedTensorDataset(torch.as_tensor(a, dtype=torch.float32), torch.as_tensor(b),
                                     torch.zeros(len(b), dtype=torch.int64), num_classes=10, attr_names=("all",))
                for a, b in parts]
    return DataSplits(*datasets), noisy


def _logreg():
    return LogisticRegression(max_iter=300)


def test_label_noise_equals_a_direct_cleanlab_computation_on_the_same_probabilities():
    from cleanlab.count import compute_confident_joint, estimate_latent
    splits, _ = _digits_splits(0.2)
    result = audit_data(splits, label_noise=True, noise_model=_logreg(), seed=3)
    labels = splits.train.y.numpy()
    probs = out_of_sample_probs(splits.train.x, labels, model=_logreg(), num_classes=10, num_folds=5, seed=3)
    joint = compute_confident_joint(labels, probs, calibrate=True)  # rows: given label, columns: true
    _, noise_matrix, _ = estimate_latent(joint, labels)  # T[i, j] = P(label i | true j)
    wrong = joint.sum(1) - np.diag(joint)
    noise = result.label_noise
    assert noise["confident_joint"] == joint.tolist()
    assert [c["estimated_wrong"] for c in noise["classes"]] == wrong.tolist()
    assert [c["labeled"] for c in noise["classes"]] == np.bincount(labels).tolist()
    assert [c["flip_rate"] for c in noise["classes"]] == pytest.approx(1 - np.diag(noise_matrix))
    assert noise["estimated_wrong"] == wrong.sum() and noise["noise_rate"] == pytest.approx(wrong.sum() / 1200)
    finding = _found(result, "label_noise")[0]
    assert finding.count == wrong.sum() and f"an estimated {wrong.sum()} of 1200 training labels" in finding.message
    assert noise_estimate(labels, probs, [str(c) for c in range(10)])["confident_joint"] == joint.tolist()


def test_injected_label_noise_is_estimated_near_its_rate_and_clean_labels_near_zero():
    noisy_splits, noisy = _digits_splits(0.2)
    realized = len(noisy.corrupted) / 1200
    estimate = audit_data(noisy_splits, label_noise=True, noise_model=_logreg()).label_noise
    assert abs(estimate["noise_rate"] - realized) < 0.04
    assert all(abs(c["noise_rate"] - 0.2) < 0.1 for c in estimate["classes"])
    clean = audit_data(_digits_splits(0.0)[0], label_noise=True, noise_model=_logreg())
    assert clean.label_noise["noise_rate"] < 0.05 and _found(clean, "label_noise")[0].severity == "low"
    noisy_finding = _found(audit_data(noisy_splits, label_noise=True, noise_model=_logreg()), "label_noise")[0]
    assert noisy_finding.severity == "medium"


@pytest.mark.slow
def test_mnist_with_injected_noise_is_estimated_near_the_rate_by_the_default_model(mnist_root):
    full = compose_audit_data(None, ["data=mnist", f"data.root={mnist_root}", "data.label_noise_rate=0.2"])
    keep = torch.arange(10_000)  # the default cross-fitted network on a fifth of the training split
    realized = float(np.isin(keep.numpy(), full.train.noise.corrupted).mean())
    splits = DataSplits(full.train.subset(keep), full.val, full.test)
    estimate = audit_data(splits, label_noise=True, max_images=200).label_noise
    assert abs(estimate["noise_rate"] - realized) < 0.05


def test_label_noise_leaves_nan_rows_out_and_says_why_when_it_cannot_estimate(tmp_path):
    splits, _ = _digits_splits(0.2)
    splits.train.x[:7, 3] = float("nan")
    result = audit_data(splits, label_noise=True, noise_model=_logreg())
    assert result.label_noise["left_out_rows"] == 7 and result.label_noise["examples"] == 1193
    assert "7 rows with NaN inputs left out" in _found(result, "label_noise")[0].message
    assert _found(result, "missing_values")[0].count == 7
    on_disk = audit_data(_image_splits(tmp_path), label_noise=True)
    assert on_disk.label_noise["estimated"] is False and "on disk" in _found(on_disk, "label_noise")[0].message
    assert "Not estimated: the training images are on disk" in render_data_audit_md(on_disk)
    few = DataSplits(splits.train.subset(torch.arange(30, 60)), splits.val, splits.test)  # 30 rows, 10 classes
    assert "too small for 5-fold probabilities" in audit_data(few, label_noise=True).label_noise["reason"]


def test_data_audit_command_with_label_noise_writes_the_section(tmp_path, capsys):
    out = audit(["--data", "--label-noise", "--out", str(tmp_path / "a")])
    record = json.loads((out / "data_audit.json").read_text())
    assert record["label_noise"]["estimated"] is True and len(record["label_noise"]["classes"]) == 2
    assert "## Label noise (training split)" in (out / "data_audit.md").read_text()
    assert "training labels" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        audit(["--label-noise", "data=adult"])  # --label-noise belongs to --data


def _training_error(overrides, tmp_path):
    with pytest.raises(Exception) as training:
        build_splits(compose_train(overrides), tmp_path / "run")
    return training.value


@pytest.mark.parametrize("content", ["", "a,b,label,site\n", "a,b,label,site\n1,,yes,x\n2,3,no,y\n"])
def test_a_table_the_audit_cannot_read_fails_as_training_does(tmp_path, content):
    path = tmp_path / "table.csv"
    path.write_text(content)
    overrides = ["data=tabular_file", f"data.path={path}", "data.label=label", "data.attributes=[site]"]
    expected = _training_error(overrides, tmp_path)
    with pytest.raises(type(expected)) as audited:
        audit(["--data", *overrides, "--out", str(tmp_path / "out")])
    assert str(audited.value) == str(expected)


def test_an_image_csv_the_audit_cannot_read_fails_as_training_does(tmp_path):
    csv = write_image_csv(tmp_path, per_group=4)
    (tmp_path / "img" / "dog_indoor_0.png").unlink()
    for overrides in (["data=image_csv", f"data.csv={tmp_path / 'absent.csv'}"],
                      ["data=image_csv", f"data.csv={csv}", "data.image_size=16"]):
        expected = _training_error(overrides, tmp_path)
        with pytest.raises(type(expected)) as audited:
            audit(["--data", *overrides, "--out", str(tmp_path / "out")])
        assert str(audited.value) == str(expected)


def test_one_row_per_split_from_a_file_says_the_statistics_need_more_rows(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text("a,label,site,split\n1,yes,x,train\n2,no,y,train\n3,yes,x,val\n4,no,y,test\n")
    with pytest.warns(UserWarning, match="has no examples in group"):  # training warns the same
        splits = compose_audit_data(None, ["data=tabular_file", f"data.path={path}", "data.label=label",
                                           "data.attributes=[site]", "data.split_column=split"])
    result = audit_data(splits)
    assert {f.message.split(":")[0] for f in _found(result, "too_few_rows")} == {
        "split train has 2 row(s)", "split val has 1 row(s)", "split test has 1 row(s)"}
