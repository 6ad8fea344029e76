"""The data audit finds planted leakage, label-copy columns, shortcuts, drift and NaN, and writes its files."""

import json

import numpy as np
import pytest
import torch

from robustml.audit import audit_data
from robustml.cli.audit import audit
from robustml.data.contract import DataSplits, GroupedTensorDataset
from robustml.data.datasets.colored_digits import colored_digits_splits
from robustml.pipeline.audit import compose_audit_data


def _table(x, y, seed=0):
    attr = torch.as_tensor(np.random.default_rng(seed).integers(0, 2, len(y)))
    return GroupedTensorDataset(torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.int64),
                                attr, num_classes=2, attr_names=("a", "b"), attr_key="site", name="table")


def _splits(sizes=(400, 200, 200), seed=0, edit=None):
    """Three tables of two continuous columns and a random label; ``edit(name, x, y)`` changes one in place."""
    rng = np.random.default_rng(seed)
    parts = {}
    for name, n in zip(("train", "val", "test"), sizes):
        x, y = rng.normal(size=(n, 2)), rng.integers(0, 2, n)
        if edit is not None:
            x = edit(name, x, y)
        parts[name] = _table(x, y, seed)
    return DataSplits(parts["train"], parts["val"], parts["test"])


def _found(result, check):
    return [f for f in result.findings if f.check == check]


def test_duplicates_across_splits_are_found_exactly_with_their_ids():
    splits = _splits()
    splits.val.x[[0, 5, 9]] = splits.train.x[[3, 7, 11]]
    splits.test.x[2] = splits.train.x[20]
    leaks = {f.message.split()[1]: f for f in _found(audit_data(splits), "leakage")}
    assert leaks["val"].count == 3 and leaks["val"].examples == [[0, 3], [5, 7], [9, 11]]
    assert leaks["test"].count == 1 and leaks["test"].examples == [[2, 20]]
    assert all(f.check != "leakage" for f in audit_data(_splits()).findings)


def test_a_label_copy_column_is_a_single_column_predictor():
    splits = _splits(edit=lambda name, x, y: np.column_stack([x, y + 0.01 * x[:, 0]]))
    result = audit_data(splits, feature_names=["age", "income", "label_copy"])
    predictors = _found(result, "single_column_predictor")
    assert len(predictors) == 1 and "'label_copy'" in predictors[0].message
    assert result.findings[0].severity == "high"


def test_colored_digits_color_is_much_stronger_in_train_than_in_test():
    result = audit_data(colored_digits_splits(seed=0))
    color = result.associations[0]
    assert color["attribute"].startswith("color")
    assert color["train/directed"] > 0.5 and color["test/directed"] < 0 < color["val/directed"]
    assert [f.check for f in result.findings[:2]] == ["shortcut_in_val", "shortcut_not_in_test"]


def test_colored_mnist_val_shares_the_shortcut_unless_val_is_oracle(mnist_root):
    checks = {}
    for val in ("train_envs", "oracle"):
        splits = compose_audit_data(None, ["data=colored_mnist", f"data.root={mnist_root}", f"data.val={val}"])
        checks[val] = {f.check for f in audit_data(splits, max_images=500).findings}
    assert "shortcut_in_val" in checks["train_envs"] and "shortcut_in_val" not in checks["oracle"]


def test_drift_is_found_on_a_shifted_column_and_not_on_a_steady_one():
    def shift(name, x, y):
        if name == "test":
            x[:, 0] += 1.5
        return x

    result = audit_data(_splits(sizes=(2000, 1000, 1000), edit=shift), feature_names=["shifted", "steady"])
    alerts = {(d["column"], d["splits"]) for d in result.drift if d["alert"]}
    assert alerts == {("shifted", "train-test")}
    assert any(f.check == "drift" and f.message.startswith("shifted drifts between train-test")
               for f in result.findings)


def test_a_nan_column_is_reported_and_one_row_splits_need_more_rows():
    def holes(name, x, y):
        x[:3, 1] = np.nan
        return x

    result = audit_data(_splits(edit=holes), feature_names=["full", "holes"])
    missing = _found(result, "missing_values")
    assert len(missing) == 1 and "'holes'" in missing[0].message and missing[0].count == 9
    tiny = audit_data(_splits(sizes=(1, 1, 1)))
    assert {f.message.split(":")[0] for f in _found(tiny, "too_few_rows")} == {
        f"split {n} has 1 row(s)" for n in ("train", "val", "test")}
    assert all("need at least 10 rows" in f.message for f in _found(tiny, "too_few_rows"))


def test_data_audit_command_on_colored_digits_writes_its_files(tmp_path, capsys):
    out = audit(["--data", "--out", str(tmp_path / "data_audit")])
    record = json.loads((out / "data_audit.json").read_text())
    assert record["findings"][0]["check"] == "shortcut_in_val" and record["findings"][0]["rank"] == 1
    assert "shares the training shortcut" in (out / "data_audit.md").read_text()
    assert "Data audit: 2 findings" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        audit(["--data", str(tmp_path)])


def test_image_files_with_the_same_content_leak_across_splits(tmp_path):
    from robustml.data.datasets.example_files import write_image_csv

    csv = write_image_csv(tmp_path, per_group=12, split_column=True)
    splits = compose_audit_data(None, ["data=image_csv", f"data.csv={csv}", "data.image_size=16"])
    first_val = splits.val.paths[0]
    (tmp_path / first_val).write_bytes((tmp_path / splits.train.paths[4]).read_bytes())
    leaks = _found(audit_data(splits, min_rows=2), "leakage")
    assert [(f.count, f.examples) for f in leaks] == [(1, [[0, 4]])]
