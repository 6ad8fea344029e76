"""Just Train Twice: upweight the training examples a first ERM model gets wrong.

Liu, Haghgoo, Chen, Raghunathan, Koh, Sagawa, Liang, Finn, "Just Train Twice: Improving Group
Robustness without Training Group Information" (ICML 2021), Algorithm 1. Stage one trains ERM for
``T`` steps; the error set ``E`` holds the training examples it misclassifies (Eq. 1); stage two
trains a new model from scratch on the training set with every example of ``E`` counted
``1 + lambda_up`` times (Eq. 2). As in the authors' code (anniesch/jtt), the upweighting is by
duplication: one epoch of stage two is the training set followed by ``E`` repeated ``lambda_up``
times, shuffled (:class:`UpsampledOrder`); :func:`upweight_loss_weights` gives the loss-weight
variant. For a full-batch step the two are the same objective. With mini-batches they differ: an
epoch of the loss variant holds ``N`` examples instead of ``N + lambda_up * |E|`` (fewer steps per
epoch), and the weighted loss is normalized by each batch's weight sum, a ratio estimator of the
duplicated objective rather than an unbiased one.

Only labels and predictions are needed: no group labels.
"""

from __future__ import annotations

import torch

from robustml.validation import check_int


def check_lambda_up(lambda_up: int) -> int:
    """Return ``lambda_up`` if it is an integer ``>= 0``; raise naming ``method.lambda_up`` otherwise."""
    return check_int("method.lambda_up", lambda_up, minimum=0)


def error_set(preds: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Return the indices of the misclassified examples, ``E = {i : preds_i != y_i}`` (sorted).

    Args:
        preds: Stage one's predicted class ids, shape ``(N,)`` int.
        y: Training labels, shape ``(N,)`` int.

    Returns:
        Indices into the training split, shape ``(|E|,)`` int64 on the CPU, increasing.
    """
    if preds.shape != y.shape or preds.dim() != 1:
        raise ValueError(f"preds and y must have the same shape (N,), got {tuple(preds.shape)} and "
                         f"{tuple(y.shape)}")
    return torch.nonzero(preds.cpu() != y.cpu()).flatten().to(torch.int64)


def _check_errors(num_examples: int, errors: torch.Tensor) -> None:
    if errors.dtype != torch.int64 or errors.dim() != 1:
        raise ValueError(f"errors must be an int64 tensor of shape (|E|,), got dtype {errors.dtype} "
                         f"and shape {tuple(errors.shape)}")
    if errors.numel() and (int(errors.min()) < 0 or int(errors.max()) >= num_examples):
        raise ValueError(f"errors must index the {num_examples} training examples, got values in "
                         f"[{int(errors.min())}, {int(errors.max())}]")


def upsampled_indices(num_examples: int, errors: torch.Tensor, lambda_up: int) -> torch.Tensor:
    """Return one epoch of stage two: ``0..N-1`` followed by ``errors`` repeated ``lambda_up`` times.

    Args:
        num_examples: ``N``, the size of the training split.
        errors: The error set, shape ``(|E|,)`` int64.
        lambda_up: Extra copies of each error example (the authors' ``up_weight``).

    Returns:
        Indices, shape ``(N + lambda_up * |E|,)`` int64: index ``i`` occurs ``1 + lambda_up``
        times when ``i`` is in ``errors`` and once otherwise.
    """
    _check_errors(num_examples, errors)
    return torch.cat([torch.arange(num_examples), errors.cpu().repeat(check_lambda_up(lambda_up))])


class UpsampledOrder:
    """Draw one shuffled epoch of :func:`upsampled_indices` per call: ``order(generator) -> indices``.

    The trainer's ``sampler=`` contract; an epoch has :attr:`epoch_size` indices.
    """

    def __init__(self, num_examples: int, errors: torch.Tensor, lambda_up: int) -> None:
        self.indices = upsampled_indices(num_examples, errors, lambda_up)

    @property
    def epoch_size(self) -> int:
        return int(self.indices.numel())

    def __call__(self, generator: torch.Generator) -> torch.Tensor:
        return self.indices[torch.randperm(self.epoch_size, generator=generator)]


def upweight_loss_weights(num_examples: int, errors: torch.Tensor, lambda_up: int) -> torch.Tensor:
    """Return per-example loss weights ``1 + lambda_up * [i in E]``, shape ``(N,)`` float32."""
    _check_errors(num_examples, errors)
    weights = torch.ones(num_examples)
    weights[errors.cpu()] += check_lambda_up(lambda_up)
    return weights
