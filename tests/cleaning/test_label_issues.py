"""Finding label issues on data with known noise, input checks, per-group reports and the guard."""

from __future__ import annotations

from unittest.mock import patch

import numpy as np
import pytest
from cleanlab.filter import find_label_issues as cleanlab_find_label_issues
from cleanlab.rank import get_label_quality_scores
from cleaning_data import NUM_CLASSES, precision_recall

from robustml.cleaning import (
    FILTER_BY,
    apply_group_cap,
    find_label_issues,
    per_group_report,
    validate_pred_probs,
)
from robustml.cleaning.issues import CLEANLAB_FILTERS
from robustml.cleaning.ranking import label_posterior


def test_flags_the_corrupted_labels(blobs, blob_probs):
    issues = find_label_issues(blobs.noisy.labels, blob_probs)
    precision, recall = precision_recall(issues.is_issue, blobs.corrupted_mask)
    assert precision >= 0.95 and recall >= 0.95, (precision, recall)


def test_random_probabilities_do_not_pass_the_same_bar(blobs):
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(NUM_CLASSES), size=blobs.true.shape[0])
    issues = find_label_issues(blobs.noisy.labels, probs)
    precision, _ = precision_recall(issues.is_issue, blobs.corrupted_mask)
    assert precision < 0.5  # the thresholds above can fail


@pytest.mark.parametrize("filter_by", CLEANLAB_FILTERS)
def test_matches_cleanlab_and_scores_are_self_confidence(blobs, blob_probs, filter_by):
    labels = blobs.noisy.labels
    issues = find_label_issues(labels, blob_probs, filter_by=filter_by)
    expected = cleanlab_find_label_issues(labels, blob_probs, filter_by=filter_by, n_jobs=1)
    np.testing.assert_array_equal(issues.is_issue, expected)
    np.testing.assert_allclose(issues.quality, blob_probs[np.arange(labels.size), labels])
    np.testing.assert_array_equal(issues.suggested, blob_probs.argmax(axis=1))
    assert issues.is_issue.dtype == np.bool_ and issues.per_group is None


@pytest.mark.parametrize("quality_method", ["self_confidence", "normalized_margin"])
def test_lowest_quality_is_prune_by_noise_rates_count_of_the_lowest_scores(blobs, blob_probs,
                                                                           quality_method):
    """Independent reference: cleanlab's own count and scores, ranked with numpy."""
    labels = blobs.noisy.labels
    issues = find_label_issues(labels, blob_probs, filter_by="lowest_quality",
                               quality_method=quality_method)
    count = int(cleanlab_find_label_issues(labels, blob_probs, n_jobs=1).sum())
    scores = get_label_quality_scores(labels, blob_probs, method=quality_method)
    expected = np.zeros(labels.size, dtype=bool)
    expected[np.argsort(scores, kind="stable")[:count]] = True
    np.testing.assert_array_equal(issues.is_issue, expected)
    assert "lowest_quality" in FILTER_BY and "lowest_quality" not in CLEANLAB_FILTERS


def test_lowest_quality_beats_per_class_pruning_on_imbalanced_symmetric_noise():
    """Binary, 1-D, true posterior known: p(y=1|x) = sigmoid(3x - 2), 20% symmetric noise, and
    the exact noisy posterior 0.2 + 0.6 p(y|x) as pred_probs. One ranking across classes is the
    Bayes-optimal order (Sec. 3.2's per-class counts are not), so with the same count it finds
    more of the errors."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=20_000)
    clean_p1 = 1 / (1 + np.exp(-(3 * x - 2)))
    true = (rng.random(x.size) < clean_p1).astype(np.int64)
    corrupted = rng.random(x.size) < 0.2
    labels = np.where(corrupted, 1 - true, true)
    noisy_p1 = 0.2 + 0.6 * clean_p1
    probs = np.stack([1 - noisy_p1, noisy_p1], axis=1)
    ranked = find_label_issues(labels, probs, filter_by="lowest_quality").is_issue
    per_class = find_label_issues(labels, probs, filter_by="prune_by_noise_rate").is_issue
    assert ranked.sum() == per_class.sum()
    precision, recall = precision_recall(ranked, corrupted)
    base_precision, base_recall = precision_recall(per_class, corrupted)
    assert precision > base_precision + 0.005 and recall > base_recall + 0.005, \
        (precision, recall, base_precision, base_recall)


def test_quality_method_is_passed_on():
    labels = np.array([0, 0, 1, 1])
    probs = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.7, 0.3]])
    margin = find_label_issues(labels, probs, quality_method="normalized_margin").quality
    # cleanlab maps the margin P[y] - max_{k != y} P[k] from [-1, 1] to [0, 1].
    np.testing.assert_allclose(margin, (np.array([0.8, -0.2, 0.6, -0.4]) + 1) / 2)
    with pytest.raises(ValueError, match="quality_method must be one of"):
        find_label_issues(labels, probs, quality_method="entropy")


def test_unknown_filter_lists_the_options(blobs, blob_probs):
    match = r"filter_by must be one of \('prune_by_noise_rate'.*got 'fast'"
    with pytest.raises(ValueError, match=match):
        find_label_issues(blobs.noisy.labels, blob_probs, filter_by="fast")


def test_single_class_raises():
    with pytest.raises(ValueError, match="at least 2 distinct classes"):
        find_label_issues(np.zeros(4, dtype=int), np.full((4, 2), 0.5))


@pytest.mark.parametrize(
    ("labels", "probs", "error", "match"),
    [
        ([0, 1], np.array([0.5, 0.5]), ValueError, r"shape \(N, C\) with C >= 2.*got shape \(2,\)"),
        ([0, 1], np.ones((2, 1)), ValueError, "C >= 2"),
        ([0, 1, 1], np.full((2, 2), 0.5), ValueError, "expected 3 rows, got 2"),
        ([0, 1], np.array([[0.5, 0.6], [0.5, 0.5]]), ValueError, "row 0 sums to 1.1.*softmax"),
        ([0, 1], np.array([[np.nan, 0.5], [0.5, 0.5]]), ValueError, "finite, row 0"),
        ([0, 1], np.array([[2.0, -1.0], [0.5, 0.5]]), ValueError, r"\[0, 1\].*logits.*softmax"),
        ([0, 2], np.full((2, 2), 0.5), ValueError, r"labels must lie in \[0, 2\), got .*\[0, 2\]"),
        ([0, -1], np.full((2, 2), 0.5), ValueError, "labels must lie"),
        ([0.0, 1.0], np.full((2, 2), 0.5), TypeError, "labels must have an integer dtype, got .*float64"),
        ([[0, 1]], np.full((2, 2), 0.5), ValueError, r"labels must have shape \(N,\), got \(1, 2\)"),
    ],
)
def test_bad_inputs_raise(labels, probs, error, match):
    with pytest.raises(error, match=match):
        validate_pred_probs(np.asarray(labels), probs)
    with pytest.raises(error, match=match):
        find_label_issues(np.asarray(labels), probs)


def test_validate_accepts_rounding_within_tolerance():
    labels, probs = validate_pred_probs([0, 1], np.array([[0.50004, 0.5], [0.3, 0.7]]))
    assert labels.dtype == np.int64 and probs.dtype == np.float64


def test_per_group_report_counts_by_hand():
    is_issue = np.array([True, False, True, True, False, False])
    groups = np.array([0, 0, 1, 1, 1, 3])
    before = np.array([True, True, True, True, False, False])
    rows = per_group_report(is_issue, groups, num_groups=4, before=before)
    assert rows == [
        {"group": 0, "count": 2, "flagged": 1, "flagged_rate": 0.5, "flagged_before": 2},
        {"group": 1, "count": 3, "flagged": 2, "flagged_rate": 2 / 3, "flagged_before": 2},
        {"group": 2, "count": 0, "flagged": 0, "flagged_rate": 0.0, "flagged_before": 0},
        {"group": 3, "count": 1, "flagged": 0, "flagged_rate": 0.0, "flagged_before": 0},
    ]


def test_find_label_issues_reports_groups(blobs, blob_probs):
    groups = blobs.true % 2
    issues = find_label_issues(blobs.noisy.labels, blob_probs, groups=groups, num_groups=2)
    for row in issues.per_group:
        in_group = groups == row["group"]
        assert row["count"] == in_group.sum()
        assert row["flagged"] == (issues.is_issue & in_group).sum()
    with pytest.raises(ValueError, match="num_groups is required"):
        find_label_issues(blobs.noisy.labels, blob_probs, groups=groups)
    with pytest.raises(ValueError, match=r"groups must have shape \(3000,\)"):
        find_label_issues(blobs.noisy.labels, blob_probs, groups=groups[:10], num_groups=2)


def test_group_cap_keeps_the_lowest_quality_by_hand():
    is_issue = np.array([True, True, True, True, True, False, True, True, False, False])
    quality = np.array([0.5, 0.1, 0.3, 0.3, 0.9, 0.0, 0.2, 0.4, 0.1, 0.1])
    groups = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1])
    # Group 0: 6 examples, cap floor(0.5 * 6) = 3 -> keep qualities 0.1, 0.3 (index 2) and
    # 0.3 (index 3).
    # Group 1: 4 examples, cap 2 -> both flagged ones stay.
    out = apply_group_cap(is_issue, quality, groups, num_groups=2, max_fraction=0.5)
    expected = [False, True, True, True, False, False, True, True, False, False]
    np.testing.assert_array_equal(out, expected)
    protected = apply_group_cap(is_issue, quality, groups, num_groups=2, max_fraction=0.5,
                                protect_groups=[1])
    np.testing.assert_array_equal(protected[6:], False)
    np.testing.assert_array_equal(protected[:6], out[:6])


def test_group_cap_properties_on_random_inputs():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(1, 60))
        num_groups = int(rng.integers(1, 5))
        groups = rng.integers(0, num_groups, n)
        is_issue = rng.random(n) < rng.random()
        quality = rng.choice([0.1, 0.2, 0.5, 0.7], size=n)  # many ties
        max_fraction = float(rng.choice([0.0, 0.1, 0.33, 0.5, 1.0]))
        protect = [g for g in range(num_groups) if rng.random() < 0.3]
        out = apply_group_cap(is_issue, quality, groups, num_groups=num_groups,
                              max_fraction=max_fraction, protect_groups=protect)
        assert out.dtype == np.bool_ and not (out & ~is_issue).any()  # only unflags
        for g in range(num_groups):
            members = groups == g
            cap = 0 if g in protect else int(np.floor(max_fraction * members.sum()))
            before, after = is_issue & members, out & members
            # Never above the cap, and never unflags more than needed.
            assert after.sum() == min(before.sum(), cap)
            dropped = before & ~after
            if after.any() and dropped.any():
                assert quality[after].max() <= quality[dropped].min()


def test_group_cap_bad_arguments():
    args = (np.array([True, False]), np.array([0.1, 0.2]), np.array([0, 1]))
    # floor(0.29 * 100) is 29 although 0.29 * 100 == 28.999999999999996 in floating point.
    many = np.ones(100, dtype=bool)
    capped = apply_group_cap(many, np.linspace(0, 1, 100), np.zeros(100, int), num_groups=1,
                             max_fraction=0.29)
    assert capped.sum() == 29
    with pytest.raises(ValueError, match=r"max_fraction must lie in \[0, 1\], got 1.5"):
        apply_group_cap(*args, num_groups=2, max_fraction=1.5)
    with pytest.raises(ValueError, match=r"protect_groups must hold ids in \[0, 2\), got \[2\]"):
        apply_group_cap(*args, num_groups=2, protect_groups=[2])
    with pytest.raises(ValueError, match="quality must be finite"):
        apply_group_cap(args[0], np.array([np.nan, 0.2]), args[2], num_groups=2)
    with pytest.raises(TypeError, match="is_issue must be a bool mask"):
        apply_group_cap(np.array([1, 0]), *args[1:], num_groups=2)
    with pytest.raises(ValueError, match=r"groups must lie in \[0, 1\)"):
        apply_group_cap(*args, num_groups=1)


def test_guard_protects_minority_groups_from_a_shortcut_model():
    # The model saw only the spurious attribute (a shortcut), which agrees with y in 90% of rows:
    # every minority-group example (attr != y) then looks like a label error.
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    attr = np.where(rng.random(2000) < 0.9, y, 1 - y)
    groups = y * 2 + attr  # minority groups: 1 (y=0, attr=1) and 2 (y=1, attr=0)
    probs = np.where(attr[:, None] == np.arange(2), 0.85, 0.15)
    issues = find_label_issues(y, probs, groups=groups, num_groups=4)
    minority = (groups == 1) | (groups == 2)
    assert issues.is_issue[minority].mean() > 0.9 and not issues.is_issue[~minority].any()
    guarded = apply_group_cap(issues.is_issue, issues.quality, groups, num_groups=4,
                              max_fraction=0.1, protect_groups=[1, 2])
    assert not guarded.any()
    report = per_group_report(guarded, groups, num_groups=4, before=issues.is_issue)
    assert [row["flagged"] for row in report] == [0, 0, 0, 0]
    assert report[1]["flagged_before"] == issues.is_issue[groups == 1].sum() > 0


def test_label_posterior_by_hand():
    """Two classes, noise matrix T = [[0.8, 0.3], [0.2, 0.7]] (T[i, j] = P(given i | true j)):
    P(y* = y~ | x, y~) = T[y~, y~] p(y~) / (T[y~, 0] p(0) + T[y~, 1] p(1))."""
    labels = np.array([0, 1])
    probs = np.array([[0.4, 0.6], [0.5, 0.5]])
    noise = np.array([[0.8, 0.3], [0.2, 0.7]])
    expected = [0.8 * 0.4 / (0.8 * 0.4 + 0.3 * 0.6), 0.7 * 0.5 / (0.2 * 0.5 + 0.7 * 0.5)]
    with patch("robustml.cleaning.ranking.estimate_py_and_noise_matrices_from_probabilities",
               return_value=(None, noise, None, None)):
        np.testing.assert_allclose(label_posterior(labels, probs), expected)


def test_label_posterior_finds_class_conditional_noise_the_self_confidence_ranking_misses():
    """Noise from class c into c + 1 only (rate 0.3) on the 4 blobs, exact noisy posteriors as
    pred_probs, one blob twice as spread (its clean labels have low self-confidence): the
    posterior under cleanlab's noise matrix ignores mass on classes that cannot produce the
    given label; the self-confidence ranking flags the spread blob's clean labels."""
    rng = np.random.default_rng(0)
    n, rate = 8000, 0.3
    true = rng.integers(0, NUM_CLASSES, n)
    angles = 2 * np.pi * np.arange(NUM_CLASSES) / NUM_CLASSES
    means = 3.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    scale = np.where(np.arange(NUM_CLASSES) == 0, 2.0, 1.0)
    x = means[true] + rng.normal(size=(n, 2)) * scale[true, None]
    density = np.exp(-((x[:, None, :] - means) ** 2).sum(-1) / (2 * scale ** 2)) / scale ** 2
    clean_post = density / density.sum(1, keepdims=True)
    flip = rng.random(n) < rate
    labels = np.where(flip, (true + 1) % NUM_CLASSES, true)
    transition = (1 - rate) * np.eye(NUM_CLASSES) + rate * np.roll(np.eye(NUM_CLASSES), 1, axis=1)
    probs = clean_post @ transition  # p(given = k | x) = sum_j p(j | x) P(given k | true j)
    posterior = find_label_issues(labels, probs, filter_by="lowest_label_posterior").is_issue
    quality = find_label_issues(labels, probs, filter_by="lowest_quality").is_issue
    precision, recall = precision_recall(posterior, flip)
    base_precision, base_recall = precision_recall(quality, flip)
    assert precision > base_precision + 0.02 and recall > base_recall + 0.02, \
        (precision, recall, base_precision, base_recall)
