"""Audit a data set before training: leakage, shortcuts, drift and groups, as ranked findings.

:func:`audit_data` reads the three splits of any :class:`~robustml.data.contract.DataSplits`
(tables: in-memory 2-D ``x``; images: in memory or on disk) and returns a
:class:`DataAuditResult` whose findings are ranked, most severe first, each with a count and
example ids. The statistics are :mod:`robustml.audit.data_stats`; the images' statistics and
sizes :mod:`robustml.audit.data_images`; the optional label-noise estimate
:mod:`robustml.audit.data_noise`; the result's types :mod:`robustml.audit.data_findings`; the
files :mod:`robustml.audit.data_write`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from robustml.audit import data_stats as st
from robustml.audit.data_findings import SEVERITIES, DataAuditResult, Finding
from robustml.audit.data_images import audit_images
from robustml.audit.data_noise import AUTO, audit_label_noise
from robustml.data.contract import DataSplits, GroupedDataset

SHARES_SHORTCUT = "your validation set shares the training shortcut: worst-group selection will not catch it"


def audit_data(splits: DataSplits, *, feature_names: Sequence[str] | None = None, max_examples: int = 5,
               predictor_accuracy: float = 0.95, tree_depth: int = 3, max_categories: int = 10,
               min_association: float = 0.3, share_ratio: float = 0.75, weaker_ratio: float = 0.5,
               alpha: float = 0.01, psi_threshold: float = 0.2, js_threshold: float = 0.1,
               min_group_size: int = 20, min_class_share: float = 0.1, min_rows: int = 10,
               max_images: int = 2000, image_threshold: float = 0.5, label_noise: bool = False,
               noise_model: Any = AUTO, noise_alert: float = 0.1, seed: int = 0) -> DataAuditResult:
    """Audit the train, val and test splits of ``splits`` before training.

    Args:
        splits: The data (tables: in-memory ``x`` of shape ``(N, F)``; anything else is images).
        feature_names: Names of a table's columns (default ``splits.feature_names``, else ``x<j>``).
        max_examples: Example ids kept per finding.
        predictor_accuracy: Val balanced accuracy at which one column alone is a predictor (0.95).
        tree_depth: Depth of the per-column trees and of the image-statistics tree (3).
        max_categories: A table column with at most this many values is categorical: an attribute
            candidate and chi-square-tested for drift (10).
        min_association: Train Cramér's V from which an attribute counts as a shortcut (0.3).
        share_ratio: Val shares the shortcut when its association, in train's direction, is at
            least this fraction of train's (0.75).
        weaker_ratio: Test lacks the shortcut when its association, in train's direction, is
            below this fraction of train's (0.5).
        alpha: p-value under which a drift test rejects (0.01).
        psi_threshold: PSI from which a column drifted (0.2, the usual "significant shift").
        js_threshold: Jensen-Shannon distance (base 2) from which a column drifted (0.1).
            A column drifts when at least two of the three agree.
        min_group_size: Groups with fewer examples are tiny (20).
        min_class_share: A class below this share of a split is reported (0.1).
        min_rows: A split with fewer rows gets no statistics (10).
        max_images: Images per split whose brightness, contrast and (files) size are read (a
            seeded sample).
        image_threshold: Chance-corrected balanced accuracy from which brightness and contrast, or
            the size, predicting the label in train is a shortcut candidate (0.5).
        label_noise: Also estimate the training labels' noise per class
            (:mod:`robustml.audit.data_noise`: the cleaning path's out-of-sample probabilities,
            then cleanlab's confident joint); this trains ``noise_model`` 5 times.
        noise_model: The model of the out-of-sample probabilities, any ``model`` of
            :func:`robustml.cleaning.detect_label_issues` (default: the cleaning default).
        noise_alert: A class's estimated noise rate from which the label-noise finding is medium.
        seed: Seed of the image sample and of the label-noise folds.
    """
    named = dict(splits.items())
    findings: list[Finding] = []
    enough = {name: len(d) >= min_rows for name, d in named.items()}
    for name, d in named.items():
        if not enough[name]:
            findings.append(Finding("too_few_rows", "high", f"split {name} has {len(d)} row(s): the statistics "
                                    f"need at least {min_rows} rows per split (min_rows); this split gets none",
                                    len(d), score=1.0))
    findings += _leakage(named, max_examples)
    train, tables = named["train"], named["train"].in_memory and named["train"].x.dim() == 2
    attributes = {f"{train.attr_key} (declared attribute)": {n: d.attr.cpu().numpy() for n, d in named.items()}}
    drift: list[dict[str, Any]] = []
    image_sizes: dict[str, Any] = {}
    if tables:
        names = list(feature_names if feature_names is not None else getattr(splits, "feature_names", None)
                     or [f"x{j}" for j in range(train.x.shape[1])])
        if len(names) != train.x.shape[1]:
            raise ValueError(f"feature_names must name the {train.x.shape[1]} columns of x, got {len(names)}")
        x = {n: d.x.detach().cpu().double().numpy() for n, d in named.items()}
        y = {n: d.y.cpu().numpy() for n, d in named.items()}
        findings += _missing(x, names, max_examples)
        if enough["train"] and enough["val"]:
            for j, col in enumerate(names):
                acc = st.single_column_accuracy(x["train"][:, j], y["train"], x["val"][:, j], y["val"],
                                                max_depth=tree_depth)
                if acc >= predictor_accuracy:
                    findings.append(Finding(
                        "single_column_predictor", "high", f"column {col!r} alone predicts the label with "
                        f"{acc:.1%} balanced accuracy on val (a depth-{tree_depth} tree fitted on train): the "
                        "answer may be embedded in the features; would it be known at prediction time?",
                        score=acc))
        for j, col in enumerate(names):
            values = np.unique(x["train"][:, j][np.isfinite(x["train"][:, j])])
            categorical = len(values) <= max_categories
            if len(values) == 1:
                findings.append(Finding("one_valued", "low", f"column {col!r} takes one value in train "
                                        f"({values[0]:g}): it carries no information"))
            elif categorical:
                attributes[col] = {n: v[:, j] for n, v in x.items()}
            for other in ("val", "test"):
                if enough["train"] and enough[other]:
                    drift.append({"column": col, "splits": f"train-{other}",
                                  **st.drift_tests(x["train"][:, j], x[other][:, j], categorical=categorical)})
    elif all(enough.values()):
        drift, image_findings, image_sizes = audit_images(named, max_images=max_images, tree_depth=tree_depth,
                                                          threshold=image_threshold, seed=seed)
        findings += image_findings
    noise = None
    if label_noise:
        noise, noise_findings = audit_label_noise(train, model=noise_model, seed=seed, alert_rate=noise_alert)
        findings += noise_findings
    for row in drift:
        row["alert"] = bool((row["p_value"] < alpha) + (row["psi"] >= psi_threshold) + (row["js"] >= js_threshold) >= 2)
        if row["alert"]:
            findings.append(Finding("drift", "medium", f"{row['column']} drifts between {row['splits']}: "
                                    f"{row['test']} p={row['p_value']:.2g}, PSI {row['psi']:.2f}, "
                                    f"JS distance {row['js']:.2f} (at least two of the three agree)",
                                    score=row["js"]))
    associations = [_association(name, values, named, train.num_classes) for name, values in attributes.items()]
    findings += _shortcuts(associations, enough, min_association, share_ratio, weaker_ratio)
    findings += _groups(named, max_examples, min_group_size, min_class_share)
    findings.sort(key=lambda f: (SEVERITIES.index(f.severity), -f.score))
    summary = {n: {"rows": len(d), "class_counts": np.bincount(d.y.cpu().numpy(), minlength=d.num_classes).tolist(),
                   "group_counts": d.group_counts().cpu().tolist()} for n, d in named.items()}
    return DataAuditResult(findings, summary, associations, drift, getattr(splits, "description", ""),
                           image_sizes, noise)


def _leakage(named: dict[str, GroupedDataset], max_examples: int) -> list[Finding]:
    hashes = {n: st.input_hashes(d) for n, d in named.items()}
    found = []
    for other in ("val", "test"):
        ids, train_ids = st.shared_rows(hashes["train"], hashes[other])
        if len(ids):
            share = len(ids) / len(named[other])
            found.append(Finding("leakage", "high", f"{len(ids)} {other} examples ({share:.1%}) have an input "
                                 f"identical to a training example: {other} scores are inflated by memorised "
                                 f"copies (examples: [{other} id, train id])", len(ids),
                                 [[int(a), int(b)] for a, b in zip(ids[:max_examples], train_ids[:max_examples])],
                                 score=1.0 + share))
    return found


def _missing(x: dict[str, np.ndarray], names: list[str], max_examples: int) -> list[Finding]:
    found = []
    for j, col in enumerate(names):
        bad = {n: np.flatnonzero(~np.isfinite(v[:, j])) for n, v in x.items()}
        total = sum(len(b) for b in bad.values())
        if total:
            where = ", ".join(f"{len(b)} in {n}" for n, b in bad.items() if len(b))
            examples = [[n, int(i)] for n, b in bad.items() for i in b][:max_examples]
            found.append(Finding("missing_values", "medium", f"column {col!r} has {total} missing (NaN or "
                                 f"infinite) values ({where}); the statistics leave them out", total, examples,
                                 score=float(total)))
    return found


def _association(name: str, values: dict[str, np.ndarray], named: dict[str, GroupedDataset],
                 num_classes: int) -> dict[str, Any]:
    """Cramér's V of ``values`` and the label per split, and the agreement with train's attribute -> label rule."""
    y = {n: d.y.cpu().numpy() for n, d in named.items()}
    keep = {n: np.isfinite(v.astype(float)) for n, v in values.items()}
    rule = st.attribute_rule(values["train"][keep["train"]], y["train"][keep["train"]], num_classes)
    row: dict[str, Any] = {"attribute": name}
    for n in named:
        v, yy = values[n][keep[n]], y[n][keep[n]]
        row[f"{n}/cramers_v"] = st.cramers_v(v, yy) if len(v) > 1 else float("nan")
        row[f"{n}/rule_agreement"] = st.rule_agreement(rule, v, yy) if len(v) > 1 else float("nan")
        # Cramér's V has no direction: signed by whether train's rule holds (negative: reversed).
        row[f"{n}/directed"] = float(row[f"{n}/cramers_v"] * np.sign(row[f"{n}/rule_agreement"]))
    return row


def _shortcuts(associations: list[dict[str, Any]], enough: dict[str, bool], min_association: float,
               share_ratio: float, weaker_ratio: float) -> list[Finding]:
    found = []
    for row in associations:
        strength, declared = row["train/cramers_v"], row["attribute"].endswith("(declared attribute)")
        if not enough["train"] or not strength >= min_association:
            continue
        if enough["val"] and row["val/directed"] >= share_ratio * strength:
            found.append(Finding("shortcut_in_val", "high" if declared else "medium",
                                 f"{row['attribute']}: {SHARES_SHORTCUT} (its association with the label, "
                                 f"Cramér's V, is {row['val/directed']:.2f} in val and {strength:.2f} in train, "
                                 "in the same direction)", score=strength))
        if enough["test"] and row["test/directed"] < weaker_ratio * strength:
            found.append(Finding("shortcut_not_in_test", "medium" if declared else "low",
                                 f"{row['attribute']}: much more associated with the label in train than in "
                                 f"test, a model that follows it fails on test (Cramér's V {strength:.2f} in "
                                 f"train, {row['test/directed']:.2f} in test, negative when reversed)",
                                 score=strength))
    return found


def _groups(named: dict[str, GroupedDataset], max_examples: int, min_group_size: int,
            min_class_share: float) -> list[Finding]:
    found = []
    train = named["train"]
    present = np.unique(train.attr.cpu().numpy())
    if len(present) < 2:
        found.append(Finding("one_valued", "high", f"attribute {train.attr_key!r} takes one value in train "
                             f"({train.attr_names[int(present[0])] if len(present) else 'none'}): the groups are "
                             "just the classes; name an attribute with at least two values", score=1.0))
    for n, d in named.items():
        counts, names = d.group_counts().cpu().numpy(), d.group_names
        empty = [names[g] for g in np.flatnonzero(counts == 0)]
        tiny = [f"{names[g]} ({counts[g]})" for g in np.flatnonzero((counts > 0) & (counts < min_group_size))]
        if empty:
            found.append(Finding("empty_groups", "high", f"{len(empty)} groups are empty in {n}: {', '.join(empty)}; "
                                 "their accuracy cannot be measured", len(empty), empty[:max_examples],
                                 score=len(empty)))
        if tiny:
            found.append(Finding("tiny_groups", "medium", f"{len(tiny)} groups have fewer than {min_group_size} "
                                 f"examples in {n}: {', '.join(tiny)}; their accuracy is noise", len(tiny),
                                 tiny[:max_examples], score=len(tiny)))
        shares = np.bincount(d.y.cpu().numpy(), minlength=d.num_classes) / max(len(d), 1)
        rare = [f"{d.class_names[c]} ({shares[c]:.1%})" for c in np.flatnonzero(shares < min_class_share)]
        if rare and len(d):
            found.append(Finding("label_balance", "low", f"classes below {min_class_share:.0%} of {n}: "
                                 f"{', '.join(rare)}", len(rare), score=float(1 - shares.min())))
    return found

