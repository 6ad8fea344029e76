"""The statistics of the data audit: input hashes, per-column trees, associations, drift tests.

Each function takes numpy arrays of one or two splits and returns numbers; the findings built from
them are :mod:`robustml.audit.data_audit`'s job. The tests come from scipy and scikit-learn.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, ks_2samp
from scipy.stats.contingency import association
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import cross_val_predict
from sklearn.tree import DecisionTreeClassifier

from robustml.data.contract import GroupedDataset


def row_hashes(x: np.ndarray) -> np.ndarray:
    """Return a content hash (hex string) of each row of ``x``, shape ``(N,)``; equal rows, equal hashes."""
    rows = np.ascontiguousarray(x).reshape(len(x), -1)
    return np.array([hashlib.blake2b(row.tobytes(), digest_size=16).hexdigest() for row in rows], dtype=object)


def file_hashes(root: str | Path, paths: Sequence[str]) -> np.ndarray:
    """Return a hash of the content of each file ``root / path``, shape ``(N,)``."""
    root = Path(root)
    return np.array([hashlib.blake2b((root / p).read_bytes(), digest_size=16).hexdigest() for p in paths],
                    dtype=object)


def input_hashes(dataset: GroupedDataset) -> np.ndarray:
    """Return one hash per example: of the input tensor in memory, of the file content on disk."""
    if dataset.in_memory:
        return row_hashes(dataset.x.detach().cpu().numpy())
    return file_hashes(dataset.root, dataset.paths)


def shared_rows(reference: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(other_ids, reference_ids)``: rows of ``other`` whose hash is in ``reference``, and first matches."""
    first = {}
    for i, h in enumerate(reference):
        first.setdefault(h, i)
    pairs = [(j, first[h]) for j, h in enumerate(other) if h in first]
    ids = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    return ids[:, 0], ids[:, 1]


def single_column_accuracy(train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray,
                           *, max_depth: int) -> float:
    """Balanced accuracy on val of a depth-``max_depth`` tree fitted on one train column (NaN rows left out)."""
    keep_tr, keep_va = np.isfinite(train_x), np.isfinite(val_x)
    if keep_tr.sum() < 2 or keep_va.sum() < 1 or len(np.unique(train_y[keep_tr])) < 2:
        return float("nan")
    tree = DecisionTreeClassifier(max_depth=max_depth, random_state=0)
    tree.fit(train_x[keep_tr, None], train_y[keep_tr])
    return float(balanced_accuracy_score(val_y[keep_va], tree.predict(val_x[keep_va, None])))


def contingency(a: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Return the counts table of ``a`` (rows) by ``y`` (columns), rows and columns that are all zero left out."""
    _, a_ids = np.unique(a, return_inverse=True)
    _, y_ids = np.unique(y, return_inverse=True)
    table = np.zeros((a_ids.max(initial=-1) + 1, y_ids.max(initial=-1) + 1), dtype=np.int64)
    np.add.at(table, (a_ids, y_ids), 1)
    return table


def cramers_v(a: np.ndarray, y: np.ndarray) -> float:
    """Cramér's V of ``a`` and ``y`` (0 none, 1 one determines the other); NaN with fewer than two values of either."""
    table = contingency(a, y)
    if min(table.shape) < 2:
        return float("nan")
    return float(association(table, method="cramer"))


def attribute_rule(a: np.ndarray, y: np.ndarray, num_classes: int) -> dict[float, int]:
    """Map each value of ``a`` to the class it is most over-represented in (counts divided by class sizes)."""
    sizes = np.maximum(np.bincount(y, minlength=num_classes), 1)
    return {float(v): int(np.argmax(np.bincount(y[a == v], minlength=num_classes) / sizes)) for v in np.unique(a)}


def rule_agreement(rule: dict[float, int], a: np.ndarray, y: np.ndarray) -> float:
    """Chance-corrected balanced accuracy of ``rule`` (attribute value -> class) on ``(a, y)``.

    1 when the rule holds exactly, 0 at chance, negative when the split reverses it; values of
    ``a`` the rule has not seen are left out. NaN when fewer than two classes remain.
    """
    known = np.array([float(v) in rule for v in a], dtype=bool)
    if len(np.unique(y[known])) < 2:
        return float("nan")
    pred = np.array([rule[float(v)] for v in a[known]], dtype=np.int64)
    return float(balanced_accuracy_score(y[known], pred, adjusted=True))


def shared_bins(reference: np.ndarray, current: np.ndarray, *, categorical: bool,
                bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the counts of both samples over one set of bins: the values seen, or reference quantiles."""
    if categorical:
        values = np.union1d(reference, current)
        return (np.array([(reference == v).sum() for v in values]), np.array([(current == v).sum() for v in values]))
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)))
    edges[0], edges[-1] = -np.inf, np.inf
    if len(edges) < 3:  # a constant reference: one bin on each side of its value
        edges = np.array([-np.inf, float(reference[0]), np.inf])
    return np.histogram(reference, edges)[0], np.histogram(current, edges)[0]


def drift_tests(reference: np.ndarray, current: np.ndarray, *, categorical: bool, bins: int = 10,
                floor: float = 1e-4) -> dict[str, float]:
    """Compare one column between two splits (NaN left out): a test's p-value, PSI and Jensen-Shannon distance.

    KS (``scipy.stats.ks_2samp``) for continuous columns, chi-square (``chi2_contingency``) on the
    2 x values counts table for categorical ones; PSI and JS over the same shared bins.
    """
    reference, current = reference[np.isfinite(reference)], current[np.isfinite(current)]
    if len(reference) < 2 or len(current) < 2:
        return {"test": "none", "p_value": float("nan"), "psi": float("nan"), "js": float("nan")}
    ref_counts, cur_counts = shared_bins(reference, current, categorical=categorical, bins=bins)
    if categorical:
        table = np.stack([ref_counts, cur_counts])
        table = table[:, table.sum(0) > 0]
        test, p = "chi2", (float(chi2_contingency(table)[1]) if table.shape[1] > 1 else 1.0)
    else:
        test, p = "ks", float(ks_2samp(reference, current).pvalue)
    p_ref = np.maximum(ref_counts / ref_counts.sum(), floor)
    p_cur = np.maximum(cur_counts / cur_counts.sum(), floor)
    # PSI has no scipy or scikit-learn function; it is sum((q - p) * ln(q / p)) over the binned
    # proportions, and it must use the same shared bins (and zero floor) as the JS distance.
    psi = float(np.sum((p_cur - p_ref) * np.log(p_cur / p_ref)))
    return {"test": test, "p_value": p, "psi": psi, "js": float(jensenshannon(p_ref, p_cur, base=2))}


def image_statistics(dataset: GroupedDataset, rows: np.ndarray) -> np.ndarray:
    """Return ``(len(rows), 2)``: each image's mean brightness and contrast (the std of its values)."""
    if dataset.in_memory:
        x = dataset.x[torch.as_tensor(rows, dtype=torch.int64)].detach().cpu().float().reshape(len(rows), -1)
        return torch.stack([x.mean(1), x.std(1, correction=0)], 1).numpy()
    out = np.zeros((len(rows), 2))
    for k, i in enumerate(rows):
        x = dataset.get_input(int(i)).float()
        out[k] = (float(x.mean()), float(x.std(correction=0)))
    return out


def image_sizes(dataset: GroupedDataset, rows: np.ndarray) -> np.ndarray:
    """Return ``(len(rows), 2)`` int: each image file's width and height, from its header.

    ``PIL.Image.open`` reads the header only (the pixels load on first access, which never
    comes), so this costs a file open per image. For on-disk datasets (``root``, ``paths``).
    """
    from PIL import Image  # Pillow comes with torchvision; only on-disk images need it

    out = np.zeros((len(rows), 2), dtype=np.int64)
    for k, i in enumerate(rows):
        with Image.open(Path(dataset.root) / dataset.paths[int(i)]) as image:
            out[k] = image.size
    return out


def predicts_label(features: np.ndarray, y: np.ndarray, *, max_depth: int, folds: int = 3) -> float:
    """Chance-corrected balanced accuracy of a shallow tree ``features -> y``, cross-validated (NaN if too few rows)."""
    counts = np.bincount(y)
    if (counts > 0).sum() < 2 or counts[counts > 0].min() < folds:
        return float("nan")
    pred = cross_val_predict(DecisionTreeClassifier(max_depth=max_depth, random_state=0), features, y, cv=folds)
    return float(balanced_accuracy_score(y, pred, adjusted=True))
