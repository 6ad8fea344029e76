"""Accuracy on overlapping groups (attribute x class, worst over them): a hand-computed case, the
evaluation of a split that declares them, and the report's table."""

from __future__ import annotations

import math

import pytest
import torch

from robustml.data.contract import GroupedTensorDataset
from robustml.metrics import OVERLAP_EXTRA, OVERLAP_NAMES, overlap_group_accuracy
from robustml.report.console import render_console_summary
from robustml.report.tables import render_report_md
from robustml.train.evaluate import metrics_of_predictions

# Six examples, attributes male and muslim (example 4 has both, example 5 neither).
TARGET = torch.tensor([0, 0, 1, 1, 1, 0])
PREDS = torch.tensor([0, 1, 1, 0, 1, 0])
MEMBERS = torch.tensor([[1, 0], [1, 0], [1, 0], [0, 1], [1, 1], [0, 0]], dtype=torch.bool)


def test_hand_computed_accuracies_counts_and_worst():
    result = overlap_group_accuracy(PREDS, TARGET, MEMBERS, names=("male", "muslim"), num_classes=2)
    # male, y=0: examples 0 (right), 1 (wrong) -> 1/2; male, y=1: examples 2, 4 (both right) -> 1;
    # muslim, y=0: none -> NaN; muslim, y=1: examples 3 (wrong), 4 (right) -> 1/2.
    assert result["overlap_acc_male_y0"] == 0.5 and result["overlap_count_male_y0"] == 2
    assert result["overlap_acc_male_y1"] == 1.0 and result["overlap_count_male_y1"] == 2
    assert math.isnan(result["overlap_acc_muslim_y0"]) and result["overlap_count_muslim_y0"] == 0
    assert result["overlap_acc_muslim_y1"] == 0.5 and result["overlap_count_muslim_y1"] == 2
    assert result["overlap_acc_worst_group"] == 0.5 and result["overlap_worst_group"] == 0  # ties: first


def test_bad_members_and_names_are_refused():
    with pytest.raises(ValueError, match=r"members must be a bool tensor of shape \(6, 2\)"):
        overlap_group_accuracy(PREDS, TARGET, MEMBERS.long(), names=("male", "muslim"), num_classes=2)
    with pytest.raises(ValueError, match="names must be made of letters.*'a b'"):
        overlap_group_accuracy(PREDS, TARGET, MEMBERS, names=("male", "a b"), num_classes=2)


def dataset(**extras_info):
    return GroupedTensorDataset(torch.zeros(6, 1), TARGET, MEMBERS[:, 0].long(), num_classes=2,
                                attr_names=("no", "yes"), attr_key="male", name="toy", **extras_info)


def test_evaluation_adds_them_for_a_split_that_declares_them_only():
    declared = dataset(extras={OVERLAP_EXTRA: MEMBERS}, info={OVERLAP_NAMES: ("male", "muslim")})
    metrics = metrics_of_predictions(PREDS, declared, prefix="test")
    assert metrics["test/overlap_acc_muslim_y1"] == 0.5 and metrics["test/overlap_acc_worst_group"] == 0.5
    assert not any("overlap" in key for key in metrics_of_predictions(PREDS, dataset(), prefix="test"))
    with pytest.raises(ValueError, match="info\\['overlap_attr_names'\\] does not name them"):
        metrics_of_predictions(PREDS, dataset(extras={OVERLAP_EXTRA: MEMBERS}), prefix="test")
    subset = declared.subset(torch.tensor([3, 4]))  # the membership stays aligned
    assert metrics_of_predictions(PREDS[3:5], subset, prefix="val")["val/overlap_count_muslim_y1"] == 2


def test_report_and_console_show_the_overlapping_groups():
    declared = dataset(extras={OVERLAP_EXTRA: MEMBERS}, info={OVERLAP_NAMES: ("male", "muslim")})
    final = {**metrics_of_predictions(PREDS, declared, prefix="val"),
             **metrics_of_predictions(PREDS, declared, prefix="test")}
    text = render_report_md(title="t", final=final, group_names=declared.group_names,
                            group_label_use="none")
    assert "## Overlapping groups: test" in text and "Worst over them: 50.0%" in text
    assert "| muslim    | 0     | 0     | n/a" in text
    assert text.count("<- worst") >= 2  # the group table's worst and the tied overlapping groups
    console = render_console_summary(final, title="t", group_names=declared.group_names,
                                     group_label_use={"training": "none", "selection": "none"},
                                     report_path="r.md")
    assert "worst overlap group     50.0%" in console
