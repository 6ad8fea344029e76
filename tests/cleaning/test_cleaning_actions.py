"""Cleaning actions (prune, relabel, reweight) and the label-issues table/CSV."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from cleaning_data import NUM_CLASSES

from robustml.cleaning import (
    CSV_COLUMNS,
    apply_action,
    find_label_issues,
    issues_table,
    write_label_issues_csv,
)

LABELS = np.array([0, 1, 2, 1, 0])
IS_ISSUE = np.array([False, True, False, True, True])
SUGGESTED = np.array([0, 2, 2, 0, 0])
QUALITY = np.array([0.9, 0.2, 0.8, 0.1, 0.4])


def act(action, **kwargs):
    return apply_action(action, labels=LABELS, is_issue=IS_ISSUE, suggested=SUGGESTED,
                        quality=QUALITY, **kwargs)


def test_prune_drops_exactly_the_flagged_rows():
    out = act("prune")
    np.testing.assert_array_equal(out.keep_idx, [0, 2])
    np.testing.assert_array_equal(out.labels, [0, 2])
    np.testing.assert_array_equal(out.weights, [1.0, 1.0])
    np.testing.assert_array_equal(out.action, ["keep", "prune", "keep", "prune", "prune"])


def test_relabel_sets_the_suggested_label():
    out = act("relabel")
    np.testing.assert_array_equal(out.keep_idx, np.arange(5))
    np.testing.assert_array_equal(out.labels, [0, 2, 2, 0, 0])  # row 4: suggested == given
    np.testing.assert_array_equal(out.weights, np.ones(5))
    np.testing.assert_array_equal(out.action, ["keep", "relabel", "keep", "relabel", "relabel"])


def test_reweight_uses_quality_of_flagged_rows():
    out = act("reweight")
    np.testing.assert_array_equal(out.keep_idx, np.arange(5))
    np.testing.assert_array_equal(out.labels, LABELS)
    np.testing.assert_allclose(out.weights, [1.0, 0.2, 1.0, 0.1, 0.4])
    normalized = act("reweight", normalize_weights=True)
    np.testing.assert_allclose(normalized.weights, np.array([1.0, 0.2, 1.0, 0.1, 0.4]) * 5 / 2.7)
    assert normalized.weights.mean() == pytest.approx(1.0)


def test_pruning_the_blobs_leaves_almost_clean_labels(blobs, blob_probs):
    labels = blobs.noisy.labels
    issues = find_label_issues(labels, blob_probs)
    pruned = apply_action("prune", labels=labels, is_issue=issues.is_issue,
                          suggested=issues.suggested, quality=issues.quality)
    assert np.mean(pruned.labels != blobs.true[pruned.keep_idx]) < 0.01  # was 0.2
    relabeled = apply_action("relabel", labels=labels, is_issue=issues.is_issue,
                             suggested=issues.suggested, quality=issues.quality)
    assert np.mean(relabeled.labels != blobs.true) < 0.01
    assert relabeled.labels.max() < NUM_CLASSES


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"action": "drop"}, ValueError, r"action must be one of \('prune', 'relabel'"),
        ({"is_issue": IS_ISSUE[:3]}, ValueError, r"is_issue must have shape \(5,\)"),
        ({"is_issue": IS_ISSUE.astype(int)}, TypeError, "bool mask"),
        ({"suggested": SUGGESTED[:4]}, ValueError, "suggested must have shape"),
        ({"quality": QUALITY * 2}, ValueError, r"quality must be finite and lie in \[0, 1\]"),
        ({"labels": LABELS.astype(float)}, TypeError, "labels must have an integer dtype"),
    ],
)
def test_bad_arguments_raise(kwargs, error, match):
    args = {"action": "prune", "labels": LABELS, "is_issue": IS_ISSUE, "suggested": SUGGESTED,
            "quality": QUALITY, **kwargs}
    with pytest.raises(error, match=match):
        apply_action(args.pop("action"), **args)


def test_normalizing_all_zero_weights_raises():
    with pytest.raises(ValueError, match="every kept weight is 0"):
        apply_action("reweight", labels=LABELS, is_issue=np.ones(5, bool), suggested=SUGGESTED,
                     quality=np.zeros(5), normalize_weights=True)


def test_issues_table_lists_flagged_rows_lowest_quality_first():
    out = act("relabel")
    rows = issues_table(given=LABELS, suggested=SUGGESTED, quality=QUALITY, action=out.action,
                        groups=np.array([0, 1, 1, 0, 1]), index=np.array([10, 11, 12, 13, 14]))
    assert rows == [
        {"index": 13, "given_label": 1, "suggested_label": 0, "quality": 0.1, "group": 0,
         "action": "relabel"},
        {"index": 11, "given_label": 1, "suggested_label": 2, "quality": 0.2, "group": 1,
         "action": "relabel"},
        {"index": 14, "given_label": 0, "suggested_label": 0, "quality": 0.4, "group": 1,
         "action": "relabel"},
    ]
    with pytest.raises(ValueError, match=r"index must have shape \(5,\)"):
        issues_table(given=LABELS, suggested=SUGGESTED, quality=QUALITY, action=out.action,
                     index=np.arange(3))


def test_write_csv_round_trips(tmp_path):
    out = act("prune")
    path = tmp_path / "label_issues.csv"
    written = write_label_issues_csv(path, given=LABELS, suggested=SUGGESTED, quality=QUALITY,
                                     action=out.action)
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert tuple(reader.fieldnames) == CSV_COLUMNS and written == len(rows) == 3
    assert [row["index"] for row in rows] == ["3", "1", "4"]
    assert rows[0] == {"index": "3", "given_label": "1", "suggested_label": "0", "quality": "0.1",
                       "group": "", "action": "prune"}
