"""Out-of-sample predicted probabilities by stratified K-fold cross-validation, with a disk cache.

Confident learning needs ``pred_probs`` from models that did not see the example they score
(Northcutt et al., JAIR 2021, Sec. 4). Training is not done here: the caller passes a callable
``fit_predict(train_idx, eval_idx) -> probs`` that fits a fresh model on ``train_idx`` and returns
its probabilities for ``eval_idx`` (shape ``(len(eval_idx), num_classes)``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedKFold
from tqdm.auto import tqdm

from robustml.atomic import atomic_path
from robustml.cleaning.issues import validate_labels, validate_pred_probs
from robustml.identity import hash_key
from robustml.validation import check_int

FitPredict = Callable[[np.ndarray, np.ndarray], np.ndarray]


def stratified_folds(
    labels, *, num_folds: int = 5, num_classes: int | None = None, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Split example indices into shuffled, stratified folds.

    Args:
        labels: Shape ``(N,)`` integer labels.
        num_folds: Number of folds ``K >= 2``.
        num_classes: Number of classes; ``None`` means ``labels.max() + 1``.
        seed: Seed of the shuffle.

    Returns:
        ``K`` pairs ``(train_idx, eval_idx)`` of sorted int64 arrays; the ``eval_idx`` partition
        ``range(N)``.

    Raises:
        ValueError: If ``num_folds < 2`` or a class has fewer examples than ``num_folds``.
        TypeError: If ``num_folds`` is not an integer.
    """
    labels = validate_labels(labels, num_classes=num_classes)
    if labels.size == 0:
        raise ValueError("labels must hold at least one example per fold, got an empty array")
    num_folds = check_int("num_folds", num_folds, minimum=2)
    counts = np.bincount(labels)
    for cls, count in enumerate(counts):
        if 0 < count < num_folds:
            raise ValueError(
                f"class {cls} has {count} examples, fewer than num_folds={num_folds}, so some "
                f"fold would not contain it; lower num_folds to at most {count} or drop class "
                f"{cls} from the data"
            )
    splitter = StratifiedKFold(n_splits=num_folds, shuffle=True, random_state=seed)
    placeholder = np.zeros((labels.shape[0], 1))
    return [
        (np.sort(train).astype(np.int64), np.sort(held).astype(np.int64))
        for train, held in splitter.split(placeholder, labels)
    ]


def out_of_fold_probs(
    labels,
    fit_predict: FitPredict,
    *,
    num_folds: int = 5,
    num_classes: int | None = None,
    seed: int = 0,
    progress: bool = True,
) -> np.ndarray:
    """Collect out-of-fold predicted probabilities for every example.

    For each of the ``K`` stratified folds, ``fit_predict(train_idx, eval_idx)`` fits on the
    other ``K - 1`` folds and predicts the held-out one, so every row comes from a model that
    did not see that example.

    Args:
        labels: Shape ``(N,)`` integer labels in ``[0, num_classes)``.
        fit_predict: ``(train_idx, eval_idx) -> probs`` with ``probs`` of shape
            ``(len(eval_idx), num_classes)`` (numpy array or tensor), rows summing to 1.
        num_folds: Number of folds ``K >= 2``.
        num_classes: Number of classes; ``None`` means ``labels.max() + 1``.
        seed: Seed of the fold shuffle.
        progress: Show a tqdm bar over folds.

    Returns:
        Array of shape ``(N, num_classes)``, float64.

    Raises:
        ValueError: For a class with fewer than ``num_folds`` examples, or when ``fit_predict``
            returns the wrong shape or values that are not probabilities.
    """
    labels = validate_labels(labels, num_classes=num_classes)
    folds = stratified_folds(labels, num_folds=num_folds, num_classes=num_classes, seed=seed)
    num_classes = int(labels.max()) + 1 if num_classes is None else int(num_classes)
    probs = np.empty((labels.shape[0], num_classes), dtype=np.float64)
    for k, (train_idx, eval_idx) in enumerate(
        tqdm(folds, desc="out-of-fold", unit="fold", disable=not progress)
    ):
        out = fit_predict(train_idx, eval_idx)
        out = _to_numpy(out.detach().double() if hasattr(out, "detach") else out)
        expected = (eval_idx.shape[0], num_classes)
        if out.shape != expected:
            raise ValueError(
                f"fit_predict must return probabilities of shape (len(eval_idx), num_classes) = "
                f"{expected} for fold {k}, got shape {out.shape}"
            )
        try:
            _, probs[eval_idx] = validate_pred_probs(labels[eval_idx], out)
        except ValueError as err:
            raise ValueError(
                f"fit_predict returned invalid probabilities for fold {k}: {err}"
            ) from err
    return probs


def cached_probs(labels, compute: Callable[[], np.ndarray], *, cache_dir: str | os.PathLike,
                 key: str) -> np.ndarray:
    """Return ``compute()``'s probabilities, reading and writing a ``.npy`` cache.

    The file name hashes ``key`` together with the labels, so a cached result is never returned
    for different labels. ``key`` must cover everything else that changes the probabilities
    (method, its settings, folds, seeds, a fingerprint of the inputs; build it with
    :func:`robustml.identity.hash_key`). The file is written atomically.

    Args:
        labels: Shape ``(N,)`` integer labels.
        compute: Returns the ``(N, C)`` probabilities when the cache has none.
        cache_dir: Folder for the cache files (created if missing).
        key: Caller's hash of the config and data.

    Returns:
        Array of shape ``(N, C)``, float64.
    """
    if not isinstance(key, str) or not key:
        raise TypeError(f"key must be a non-empty str, got {key!r}")
    labels = validate_labels(labels)
    path = Path(cache_dir) / f"oof_{hash_key(key, labels)}.npy"
    if path.exists():
        probs = np.load(path)
        try:
            validate_pred_probs(labels, probs)
        except ValueError as err:
            raise ValueError(
                f"cached probabilities in {path} are invalid ({err}); delete the file"
            ) from err
        return probs
    probs = compute()
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, probs)
    return probs


def _to_numpy(value) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)
