"""The train side of label cleaning: ``fit_predict(train_idx, eval_idx) -> probs`` callables.

:mod:`robustml.cleaning` never trains; it takes a callable that fits on ``train_idx`` and returns
probabilities for ``eval_idx`` (see :func:`robustml.cleaning.out_of_fold_probs`). Two are made here
from a model builder and an optimizer builder:

- :func:`kfold_fit_predict`: a fresh model per fold, trained on that fold's training rows only, so
  every probability is out-of-sample (the K-fold cross-validation of Northcutt et al., JAIR 2021,
  Sec. 4).
- :class:`FrozenFeatureHeads` (the fast path): one model trained on every row, then linear heads on
  its frozen ``model.features(x)`` with :func:`robustml.cleaning.linear_head_fit_predict`; only the
  heads are out-of-fold (see :mod:`robustml.cleaning.features` for what that does not hold out).

The cleaning models are trained by :func:`train_classifier`, a short direct loop (ERM: the mean of
:func:`robustml.losses.functional.classification_loss`, fixed number of steps, no validation, no
checkpoints) rather than :class:`~robustml.train.Trainer`, which needs a validation split, selects
checkpoints on it and writes them to disk once per evaluation: none of that is wanted K times for
a model whose only output is probabilities.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from robustml.cleaning import FitPredict, linear_head_fit_predict
from robustml.losses.functional import check_finite, classification_loss, probabilities

ModelBuilder = Callable[[], nn.Module]
OptimizerBuilder = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]


@dataclass(frozen=True)
class FitSettings:
    """How a cleaning model is trained (``cfg.cleaning`` in the configs).

    Args:
        steps: Optimizer steps; ignored when ``epochs`` is set.
        epochs: Passes over the training rows; the step count then scales with their number.
        batch_size: Rows per step; ``None`` trains on every row at each step (full batch).
        seed: Seed of the model initialization and of the batch order.
    """

    steps: int = 300
    epochs: int | None = None
    batch_size: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("steps", "epochs", "batch_size"):
            value = getattr(self, name)
            if value is None and name != "steps":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"cleaning.{name} must be a positive int"
                                 f"{'' if name == 'steps' else ' or null'}, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise TypeError(f"cleaning.seed must be an int, got {type(self.seed).__name__}")

    def num_steps(self, num_rows: int) -> int:
        """Return the number of optimizer steps for a training set of ``num_rows`` rows."""
        if self.epochs is None:
            return self.steps
        return self.epochs * math.ceil(num_rows / min(self.batch_size or num_rows, num_rows))


def batch_indices(num_rows: int, *, batch_size: int | None, seed: int,
                  device: torch.device) -> Iterator[torch.Tensor | None]:
    """Yield row indices of each step forever: ``None`` for full batch, else shuffled batches.

    Every epoch is a new permutation drawn from a generator seeded by ``(seed, epoch)``; the last
    batch of an epoch may be smaller, as in :class:`~robustml.train.Trainer`.
    """
    if batch_size is None or batch_size >= num_rows:
        while True:
            yield None
    epoch = 0
    while True:
        generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        order = torch.randperm(num_rows, generator=generator).to(device)
        yield from order.split(batch_size)
        epoch += 1


def fresh_model(build_model: ModelBuilder, *, seed: int, device: torch.device) -> nn.Module:
    """Build a model with its initialization seeded by ``seed``, leaving torch's RNG untouched."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        return build_model().to(device)


def train_classifier(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor,
                     y: torch.Tensor, *, settings: FitSettings) -> nn.Module:
    """Train ``model`` in place by ERM for ``settings.num_steps(len(x))`` steps; return it in eval mode.

    Args:
        model: Maps ``(N, *input_shape)`` to logits ``(N, C)`` (or ``(N, 1)`` for two classes).
        optimizer: Built over ``model.parameters()``.
        x: Inputs, shape ``(N, *input_shape)``, on the model's device.
        y: Labels, shape ``(N,)``, int64, on the same device.
        settings: Steps, batch size and seed.

    Returns:
        The trained ``model``.

    Raises:
        FloatingPointError: If the loss becomes NaN or infinite.
    """
    if x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise ValueError(f"x and y must have the same number N > 0 of rows, got {x.shape[0]} and "
                         f"{y.shape[0]}")
    model.train()
    batches = batch_indices(x.shape[0], batch_size=settings.batch_size, seed=settings.seed,
                            device=x.device)
    for _ in range(settings.num_steps(x.shape[0])):
        idx = next(batches)
        xb, yb = (x, y) if idx is None else (x[idx], y[idx])
        loss = check_finite(classification_loss(model(xb), yb).mean(), "cleaning model loss")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return model.eval()


@torch.no_grad()
def predict_probs(model: nn.Module, x: torch.Tensor, *, batch_size: int = 8192) -> np.ndarray:
    """Return class probabilities of ``model`` on ``x``: float64 numpy ``(N, max(C, 2))``."""
    model.eval()
    return torch.cat([probabilities(model(chunk)).double().cpu()
                      for chunk in x.split(batch_size)]).numpy()


@torch.no_grad()
def extract_features(model: nn.Module, x: torch.Tensor, *, batch_size: int = 8192) -> torch.Tensor:
    """Return ``model.features(x)`` (the input of ``model.head``), shape ``(N, D)``, float32."""
    if not callable(getattr(model, "features", None)):
        raise TypeError(f"the linear_heads method needs a model with .features(x); "
                        f"{type(model).__name__} has none (use cleaning.method=kfold)")
    model.eval()
    return torch.cat([model.features(chunk).float() for chunk in x.split(batch_size)])


def kfold_fit_predict(x: torch.Tensor, y: torch.Tensor, *, build_model: ModelBuilder,
                      build_optimizer: OptimizerBuilder, settings: FitSettings) -> FitPredict:
    """Make a ``fit_predict`` that trains a fresh model on ``train_idx`` and predicts ``eval_idx``.

    Every fold's model starts from the same seeded initialization; it sees ``x[train_idx]`` only.

    Args:
        x: All inputs, shape ``(N, *input_shape)``.
        y: All labels, shape ``(N,)``, int64, on the device of ``x``.
        build_model: Returns a new, untrained model.
        build_optimizer: Maps parameters to an optimizer.
        settings: How each fold's model is trained.

    Returns:
        ``fit_predict(train_idx, eval_idx) -> probs``, float64 numpy of shape
        ``(len(eval_idx), max(C, 2))``.
    """

    def fit_predict(train_idx: np.ndarray, eval_idx: np.ndarray) -> np.ndarray:
        train = torch.as_tensor(train_idx, device=x.device)
        model = fresh_model(build_model, seed=settings.seed, device=x.device)
        train_classifier(model, build_optimizer(model.parameters()), x[train], y[train],
                         settings=settings)
        return predict_probs(model, x[torch.as_tensor(eval_idx, device=x.device)])

    return fit_predict


class FrozenFeatureHeads:
    """A ``fit_predict`` for the fast path: one model on every row, then K linear heads.

    At the first call it trains a fresh model on all of ``(x, y)`` (noisy labels included; keep
    the training short so the model does not memorize the noise), extracts ``model.features(x)``
    and from then on fits a multinomial logistic-regression head on ``train_idx`` and predicts
    ``eval_idx`` (:func:`robustml.cleaning.linear_head_fit_predict`, standardized features). A
    cache hit in :func:`robustml.cleaning.cached_out_of_fold_probs` never calls it, so nothing is
    trained.

    Args:
        x: All inputs, shape ``(N, *input_shape)``.
        y: All labels, shape ``(N,)``, int64, on the device of ``x``.
        build_model: Returns a new, untrained model with ``features(x)``.
        build_optimizer: Maps parameters to an optimizer.
        settings: How the feature model is trained.
        num_classes: Number of classes ``C``.
        C: Inverse L2 strength of the heads (scikit-learn's convention).
        max_iter: L-BFGS iterations per head.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, *, build_model: ModelBuilder,
                 build_optimizer: OptimizerBuilder, settings: FitSettings, num_classes: int,
                 C: float = 1.0, max_iter: int = 100) -> None:
        self.x, self.y, self.settings = x, y, settings
        self.build_model, self.build_optimizer = build_model, build_optimizer
        self.num_classes, self.C, self.max_iter = num_classes, C, max_iter
        self.features: torch.Tensor | None = None
        self._heads: FitPredict | None = None

    def __call__(self, train_idx: np.ndarray, eval_idx: np.ndarray) -> np.ndarray:
        if self._heads is None:
            model = fresh_model(self.build_model, seed=self.settings.seed, device=self.x.device)
            train_classifier(model, self.build_optimizer(model.parameters()), self.x, self.y,
                             settings=self.settings)
            self.features = extract_features(model, self.x)
            self._heads = linear_head_fit_predict(self.features, self.y.cpu().numpy(),
                                                  num_classes=self.num_classes, C=self.C,
                                                  max_iter=self.max_iter)
        return self._heads(train_idx, eval_idx)
