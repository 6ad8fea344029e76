"""Train the small networks whose probabilities or features confident learning uses.

A cleaning model is trained by :func:`train_classifier`, a short direct ERM loop (mean of
:func:`robustml.losses.classification_loss`, Adam, a fixed number of steps, no validation, no
checkpoints) rather than the run's :class:`~robustml.train.Trainer`: none of model selection,
checkpoints or evaluation is wanted for a model whose only output is probabilities, and the
array API (:func:`robustml.cleaning.detect_label_issues`) must work without a trainer.

The training budget (:class:`FitSettings`) is ``max(min_steps, epochs x batches per epoch)``:
counted in epochs alone, small data sets are under-trained (3 epochs of 1,797 digits at batch 128
are 45 steps); counted in steps alone, large ones are (500 steps of batch 128 cover 64,000 rows).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from robustml.data.samplers import epoch_order
from robustml.losses import classification_loss, probabilities
from robustml.models import MLP
from robustml.models.forward import iter_outputs
from robustml.validation import check_int

#: Hidden widths of the default cleaning network (``configs/cleaning/confident_learning.yaml``).
HIDDEN_DIMS = (512, 64)

ModelBuilder = Callable[[tuple[int, ...], int], nn.Module]


def default_network(input_shape: Sequence[int], num_outputs: int) -> nn.Module:
    """Return the default cleaning network: ``MLP(input_shape, num_outputs, hidden_dims=(512, 64))``."""
    return MLP(tuple(input_shape), num_outputs, hidden_dims=HIDDEN_DIMS)


@dataclass(frozen=True)
class FitSettings:
    """How a cleaning network is trained: Adam, ``num_steps(n)`` steps of ``batch_size`` rows.

    The defaults are those of ``configs/cleaning/confident_learning.yaml`` (a test compares them).

    Args:
        epochs: Passes over the training rows (when that is more than ``min_steps`` steps).
        min_steps: Least number of optimizer steps, whatever the data size.
        batch_size: Rows per step; ``None`` trains on every row at each step (full batch).
        lr: Adam's learning rate.
        seed: Seed of the model initialization and of the batch order.
    """

    epochs: int = 3
    min_steps: int = 500
    batch_size: int | None = 128
    lr: float = 0.002
    seed: int = 0

    def __post_init__(self) -> None:
        for name, minimum in (("epochs", 0), ("min_steps", 0), ("batch_size", 1), ("seed", None)):
            if name != "batch_size" or self.batch_size is not None:
                object.__setattr__(self, name, check_int(name, getattr(self, name), minimum=minimum))
        if self.epochs == 0 and self.min_steps == 0:
            raise ValueError("epochs=0 and min_steps=0: nothing would be trained; set either "
                             "to at least 1")
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)) or not self.lr > 0:
            raise ValueError(f"lr must be a number > 0, got {self.lr!r}")

    def num_steps(self, num_rows: int) -> int:
        """Return ``max(min_steps, epochs * ceil(num_rows / batch_size))``."""
        per_epoch = math.ceil(num_rows / min(self.batch_size or num_rows, num_rows))
        return max(self.min_steps, self.epochs * per_epoch)


def batch_indices(num_rows: int, *, batch_size: int | None, seed: int,
                  device: torch.device) -> Iterator[torch.Tensor | None]:
    """Yield row indices of each step forever: ``None`` for full batch, else shuffled batches.

    Every epoch is a new permutation, :func:`~robustml.data.samplers.epoch_order` (the trainer's
    rule); the last batch of an epoch may be smaller, as in :class:`~robustml.train.Trainer`.
    """
    if batch_size is None or batch_size >= num_rows:
        while True:
            yield None
    epoch = 0
    while True:
        order = epoch_order(epoch, seed=seed, num_examples=num_rows).to(device)
        yield from order.split(batch_size)
        epoch += 1


def fresh_model(build_model: Callable[[], nn.Module], *, seed: int,
                device: torch.device) -> nn.Module:
    """Build a model with its initialization seeded by ``seed``, leaving torch's RNG untouched."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        return build_model().to(device)


def train_classifier(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
                     settings: FitSettings) -> nn.Module:
    """Train ``model`` in place by ERM with Adam; return it in eval mode.

    Args:
        model: Maps ``(N, *input_shape)`` to logits ``(N, C)`` (or ``(N, 1)`` for two classes).
        x: Inputs, shape ``(N, *input_shape)``, on the model's device.
        y: Labels, shape ``(N,)``, int64, on the same device.
        settings: Budget, batch size, learning rate and seed.

    Returns:
        The trained ``model``.

    Raises:
        FloatingPointError: If the loss becomes NaN or infinite.
    """
    if x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise ValueError(f"x and y must have the same number N > 0 of rows, got {x.shape[0]} and "
                         f"{y.shape[0]}")
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    model.train()
    batches = batch_indices(x.shape[0], batch_size=settings.batch_size, seed=settings.seed,
                            device=x.device)
    for _ in range(settings.num_steps(x.shape[0])):
        idx = next(batches)
        xb, yb = (x, y) if idx is None else (x[idx], y[idx])
        loss = classification_loss(model(xb), yb).mean()
        if not bool(torch.isfinite(loss)):
            raise FloatingPointError(f"cleaning model loss is not finite ({loss.item()}); "
                                     f"lr={settings.lr} may be too high: lower it or check the "
                                     "inputs")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return model.eval()


def predict_probs(model: nn.Module, x: torch.Tensor, *, batch_size: int = 8192) -> np.ndarray:
    """Return class probabilities of ``model`` on ``x``: float64 numpy ``(N, max(C, 2))``."""
    model.eval()
    return torch.cat([probabilities(logits).double().cpu()
                      for logits in iter_outputs(model, x, batch_size=batch_size)]).numpy()


def check_has_features(model: nn.Module) -> None:
    """Raise ``TypeError`` unless ``model`` has a callable ``features(x)``."""
    if not callable(getattr(model, "features", None)):
        raise TypeError(f"model: the cross-fitted fast path needs a network with .features(x) "
                        f"(the input of its last layer); {type(model).__name__} has none. Give "
                        f"it one, or use KFoldNetwork, which needs only "
                        f"logits")


def extract_features(model: nn.Module, x: torch.Tensor, *, batch_size: int = 8192) -> torch.Tensor:
    """Return ``model.features(x)`` (the input of ``model.head``), shape ``(N, D)``, float32."""
    check_has_features(model)
    model.eval()
    return torch.cat(list(iter_outputs(model, x, batch_size=batch_size, features=True)))
