"""Synthetic label noise on a grouped dataset, recorded on the dataset for cleaning experiments.

The noise is :func:`robustml.data.noise.add_label_noise` (Northcutt et al., JAIR 2021, Sec. 2): each
label is changed with probability ``rate`` to a different class. Groups follow the contract
(``group = y * num_attrs + attr``), so they are computed from the *noisy* labels, like every group
a user without clean labels would see. The corruption is kept on the returned dataset as the
attribute ``noise`` (a :class:`~robustml.data.noise.NoisyLabels`, ``None`` for a clean dataset), so a
cleaning stage can report the precision and recall of the examples it flags.
"""

from __future__ import annotations

import torch

from robustml.data.contract import GroupedTensorDataset
from robustml.data.noise import NoisyLabels, add_label_noise


def with_label_noise(dataset: GroupedTensorDataset, rate: float, *, kind: str = "symmetric",
                     seed: int = 0) -> GroupedTensorDataset:
    """Return a copy of ``dataset`` whose labels are corrupted, with the corruption recorded.

    Args:
        dataset: The clean dataset (its ``y`` has shape ``(N,)``).
        rate: Probability that a label is changed, in ``[0, 1)``; 0 returns a clean copy.
        kind: ``"symmetric"`` (a changed label becomes any other class, uniformly) or
            ``"asymmetric"`` (class ``j`` becomes ``(j + 1) mod C``).
        seed: Seed of the noise draw (numpy generator, independent of torch's state).

    Returns:
        A dataset sharing ``x``, ``attr`` and ``env`` with ``dataset``, with new ``y`` (and hence
        ``group``) and the attribute ``noise``: the :class:`~robustml.data.noise.NoisyLabels` of the
        draw (``noise.corrupted`` indexes the changed rows, ``noise.noise_matrix[i, j] =
        P(noisy = i | true = j)``), or ``None`` when ``rate`` is 0.

    Raises:
        TypeError: If ``dataset`` is not a :class:`GroupedTensorDataset`.
        ValueError: If ``rate`` is outside ``[0, 1)`` or ``kind`` is unknown.
    """
    if not isinstance(dataset, GroupedTensorDataset):
        raise TypeError(f"dataset must be a GroupedTensorDataset, got {type(dataset).__name__}")
    noisy = add_label_noise(dataset.y.cpu().numpy(), num_classes=dataset.num_classes, rate=rate,
                            kind=kind, seed=seed)
    out = dataset.replace(y=torch.as_tensor(noisy.labels, device=dataset.y.device))
    out.noise = noisy if rate > 0 else None
    return out


def label_noise_of(dataset: GroupedTensorDataset) -> NoisyLabels | None:
    """Return the label noise recorded by :func:`with_label_noise`, or ``None`` if there is none."""
    return getattr(dataset, "noise", None)


def describe_label_noise(dataset: GroupedTensorDataset) -> str:
    """Return a sentence for reports on the synthetic noise of ``dataset`` ("" when clean)."""
    noise = label_noise_of(dataset)
    if noise is None:
        return ""
    return (f" Synthetic label noise on train only: {noise.kind}, rate {noise.rate:g} "
            f"({noise.corrupted.shape[0]:,} of {len(dataset):,} labels changed).")
