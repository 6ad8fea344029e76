"""Hostile input to :func:`robustml.cleaning.detect_label_issues`.

The model is a ``fit_predict(train_idx, eval_idx)`` callable returning rows of a fixed
probability matrix, so each example costs no training and the checks of the call itself are what
is exercised; well-formed input must give a report whose masks, scores and per-group rows have
one entry per example (and per group), written to ``csv_path`` as one complete file, while a
failed call leaves no file behind.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hostile import FAST, outcome
from robustml.cleaning import GroupGuard, detect_label_issues

CORRUPTIONS = {
    "labels": ["float", "negative", "two_dim", "strings", "empty"],
    "groups": ["float", "negative", "length", "two_dim"],
    "x": ["nan", "inf", "one_dim", "rows", "strings"],
    "num_folds": [1, "2", 2.5, True],
    "max_fraction": [1.5, -0.5],
    "fit_predict": ["shape"],
}


def corrupt(args: dict, bad: str, how) -> dict:
    """Return ``args`` with argument ``bad`` made malformed in the way ``how`` names."""
    out = dict(args)
    if bad in ("num_folds", "max_fraction"):
        out[bad] = how
        return out
    if bad == "fit_predict":
        probs = args["probs"]
        out["model"] = lambda train_idx, eval_idx: probs[eval_idx, :1]
        return out
    value = np.asarray(args[bad])
    out[bad] = {"float": lambda: value.astype(float) + 0.5, "negative": lambda: value - 10,
                "two_dim": lambda: value[:, None], "strings": lambda: value.astype(str),
                "empty": lambda: value[:0], "length": lambda: np.concatenate([value, value[:1]]),
                "nan": lambda: np.where(np.arange(value.shape[0])[:, None] == 1, np.nan, value),
                "inf": lambda: np.where(np.arange(value.shape[0])[:, None] == 0, np.inf, value),
                "one_dim": lambda: value[:, 0], "rows": lambda: value[1:]}[how]()
    return out


@st.composite
def cleaning_args(draw: st.DrawFn) -> tuple[dict, str | None]:
    """Draw well-formed arguments (every class in every fold) and at most one corruption."""
    num_classes, per_class = draw(st.integers(2, 3)), draw(st.integers(2, 5))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    labels = rng.permutation(np.repeat(np.arange(num_classes), per_class))
    n = labels.shape[0]
    logits = rng.normal(size=(n, num_classes)) * draw(st.sampled_from([1.0, 30.0]))
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    args = {"x": rng.normal(size=(n, draw(st.integers(1, 3)))).astype(np.float32),
            "labels": labels, "probs": probs, "num_folds": 2, "max_fraction": 0.5,
            "groups": rng.integers(0, draw(st.integers(1, 3)), size=n).astype(
                draw(st.sampled_from([np.int64, np.int32]))),
            "model": lambda train_idx, eval_idx: probs[eval_idx]}
    bad = draw(st.sampled_from([None, *CORRUPTIONS]))
    if bad is not None:
        args = corrupt(args, bad, draw(st.sampled_from(CORRUPTIONS[bad])))
    return args, bad


@settings(FAST, max_examples=20)   # each example runs cleanlab: fewer of them
@given(drawn=cleaning_args(), tensors=st.booleans())
def test_detect_label_issues_takes_any_layout_or_names_the_bad_argument(drawn, tensors):
    args, bad = drawn
    x, labels = args["x"], args["labels"]
    if tensors and bad not in ("x", "labels"):   # tensors where the API accepts them
        x, labels = torch.as_tensor(x), torch.as_tensor(labels)
    guard = outcome(GroupGuard, max_fraction=args["max_fraction"],
                    bad="max_fraction" if bad == "max_fraction" else None)
    if guard is None:
        return
    with tempfile.TemporaryDirectory() as folder:
        csv_path = Path(folder) / "out" / "label_issues.csv"
        report = outcome(detect_label_issues, x, labels, model=args["model"],
                         groups=args["groups"], guard=guard, num_folds=args["num_folds"],
                         csv_path=csv_path, bad=None if bad == "max_fraction" else bad)
        written = sorted(p.name for p in Path(folder).rglob("*") if p.is_file())
        if report is None:
            assert written == [], f"a failed call left files behind: {written}"
            return
        assert written == ["label_issues.csv"]   # the one output, no temporary file left
        assert len(csv_path.read_text().splitlines()) == 1 + int(report.is_issue_before_guard.sum())
    n = args["labels"].shape[0]
    assert report.is_issue.shape == report.quality.shape == report.suggested.shape == (n,)
    assert not (report.is_issue & ~report.is_issue_before_guard).any()  # the guard only removes
    np.testing.assert_allclose(report.pred_probs, args["probs"])
    num_groups = int(args["groups"].max()) + 1
    assert [row["count"] for row in report.per_group] == np.bincount(
        args["groups"], minlength=num_groups).tolist()
