"""The fast path for networks: cross-fitted features, then K-fold linear heads.

Confident learning needs probabilities from parameters that never saw the example's label
(Northcutt et al., JAIR 2021, Sec. 4). K-fold cross-validation of a network costs ``K``
trainings. The cross-fitted fast path costs one (with the default ``num_parts=2``):

1. Split the rows into ``M`` disjoint stratified parts ``P_1 .. P_M``.
2. For each part ``P_m``, train a fresh network on the rows outside ``P_m`` (with ``M = 2``, on the
   other half) and extract its features ``model.features(x)`` for the rows of ``P_m``: those
   features come from a model that never saw them (the cross-fitting of double machine learning,
   Chernozhukov et al., Econometrics Journal 2018, Definition 3.1).
3. Within ``P_m``, fit ``K`` stratified-fold softmax-regression heads on those features
   (:func:`robustml.cleaning.linear_head_oof_probs`): the head that scores row ``i`` is fitted on
   other rows of ``P_m``.

So the probability of row ``i`` depends on the labels of the rows outside ``P_m`` (through the
network) and of the other folds of ``P_m`` (through the head), never on label ``i``, however long
the network trains: memorizing its own training rows cannot hide an error in a row it never saw.
Features are comparable only within one network, hence one set of heads per part.

Measured against the alternative of scoring each part with the output layer of the network
trained on the other part (2-fold cross-validation, ``KFoldNetwork`` with ``num_folds=2``, the
same networks), on the 60,000 MNIST training images, one seed (``scripts/benchmark_cleaning.py``,
``ablation_network_2fold``, run at commit 00c5e7f with ``filter_by="prune_by_noise_rate"``):
precision / recall 0.950 / 0.964 against 0.904 / 0.922 with 30% class-conditional noise,
0.951 / 0.962 against 0.940 / 0.957 with 20% symmetric noise. Refitting
the last layer on 4/5 of the scored part's labels adds what those labels say to features learned
from the other part.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from robustml.cleaning.features import LinearHeads, linear_head_oof_probs
from robustml.cleaning.issues import validate_labels
from robustml.cleaning.networks import (FitSettings, ModelBuilder, check_has_features,
                                        default_network, extract_features, fresh_model,
                                        train_classifier)
from robustml.cleaning.oof import stratified_folds
from robustml.losses import num_outputs_for
from robustml.validation import check_int


@dataclass(frozen=True)
class CrossFitNetwork:
    """The cross-fitted fast path (the default for image-like inputs): see the module docstring.

    The defaults are those of ``configs/cleaning/confident_learning.yaml`` (a test compares them).

    Args:
        build_model: ``(input_shape, num_outputs) -> nn.Module`` with ``features(x)``; the default
            is :func:`robustml.cleaning.networks.default_network` (MLP 512-64).
        fit: How each network is trained.
        num_parts: Number of disjoint parts ``M >= 2``; ``M - 1`` networks' worth of training.
        head: The per-part K-fold linear heads.
    """

    build_model: ModelBuilder = default_network
    fit: FitSettings = field(default_factory=FitSettings)
    num_parts: int = 2
    head: LinearHeads = field(default_factory=LinearHeads)

    def __post_init__(self) -> None:
        object.__setattr__(self, "num_parts", check_int("num_parts", self.num_parts, minimum=2))


def cross_fit_probs(
    x: torch.Tensor,
    labels,
    *,
    num_classes: int,
    method: CrossFitNetwork,
    num_folds: int = 5,
    seed: int = 0,
    progress: bool = False,
) -> np.ndarray:
    """Compute out-of-sample probabilities with cross-fitted networks and per-part linear heads.

    Args:
        x: Inputs, shape ``(N, *input_shape)``, floating, on the device to train on.
        labels: Shape ``(N,)`` integer labels in ``[0, num_classes)``.
        num_classes: Number of classes ``C``.
        method: The networks, their training and the heads.
        num_folds: Folds ``K`` of the heads within each part.
        seed: Seed of the part split and the fold split (network seeds: ``method.fit.seed + m``).
        progress: Show a tqdm bar over parts.

    Returns:
        Array of shape ``(N, C)``, float64.

    Raises:
        TypeError: If ``method.build_model`` returns a network without ``features(x)``.
        ValueError: If a class has fewer than ``num_parts * num_folds`` examples.
    """
    labels = validate_labels(labels, num_classes=num_classes)
    counts = np.bincount(labels, minlength=num_classes)
    need = method.num_parts * num_folds
    small = [(c, int(n)) for c, n in enumerate(counts) if 0 < n < need]
    if small:
        raise ValueError(f"labels: the cross-fitted fast path needs at least num_parts x num_folds "
                         f"= {method.num_parts} x {num_folds} = {need} examples of every class "
                         f"present, got (class, count) {small}; lower num_folds or num_parts, or "
                         f"drop those classes")
    y = torch.as_tensor(labels, device=x.device)
    input_shape, num_outputs = tuple(x.shape[1:]), num_outputs_for(num_classes)
    probs = np.empty((labels.shape[0], num_classes), dtype=np.float64)
    parts = stratified_folds(labels, num_folds=method.num_parts, seed=seed)
    for m, (outside, part) in enumerate(tqdm(parts, desc="cross-fit", unit="part",
                                             disable=not progress)):
        settings = replace(method.fit, seed=method.fit.seed + m)
        model = _build(method.build_model, input_shape, num_outputs, settings.seed, x.device)
        outside_t = torch.as_tensor(outside, device=x.device)
        train_classifier(model, x[outside_t], y[outside_t], settings=settings)
        features = extract_features(model, x[torch.as_tensor(part, device=x.device)])
        probs[part] = linear_head_oof_probs(
            features, labels[part], num_folds=num_folds, num_classes=num_classes, seed=seed,
            C=method.head.C, max_iter=method.head.max_iter, progress=False)
    return probs


def _build(build_model: Callable, input_shape: tuple[int, ...], num_outputs: int, seed: int,
           device: torch.device) -> nn.Module:
    model = fresh_model(lambda: build_model(input_shape, num_outputs), seed=seed, device=device)
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: build_model must return an nn.Module, got "
                        f"{type(model).__name__}")
    check_has_features(model)
    return model
