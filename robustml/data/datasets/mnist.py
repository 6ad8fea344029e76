"""Plain 10-class MNIST in the grouped-data contract, optionally with synthetic label noise.

MNIST has no spurious attribute: ``attr`` is one dummy value (``"all"``), so the groups are the ten
classes and worst-group accuracy is worst-class accuracy. It is the dataset of the label-cleaning
experiments (Northcutt et al., JAIR 2021, clean MNIST labels corrupted with a known noise matrix).
"""

from __future__ import annotations

from pathlib import Path

import torch

from robustml.data.contract import DataSplits, GroupedTensorDataset
from robustml.data.datasets.colored import check_flag
from robustml.data.datasets.colored_mnist import _load_mnist
from robustml.data.datasets.noisy import describe_label_noise, with_label_noise
from robustml.validation import check_int

NUM_TRAIN = 50_000  # the first 50,000 training images; the last 10,000 are validation
ATTR_NAMES = ("all",)


def _to_dataset(images: torch.Tensor, digits: torch.Tensor) -> GroupedTensorDataset:
    """Wrap uint8 ``(N, 28, 28)`` images and int64 digits as float32 ``(N, 1, 28, 28)`` in [0, 1]."""
    x = images.to(torch.float32).div_(255.0).unsqueeze(1)
    return GroupedTensorDataset(x, digits.to(torch.int64), torch.zeros_like(digits, dtype=torch.int64),
                                num_classes=10, attr_names=ATTR_NAMES, name="mnist")


def mnist_splits(
    root: str | Path,
    *,
    download: bool = False,
    seed: int = 0,
    label_noise_rate: float = 0.0,
    label_noise_kind: str = "symmetric",
) -> DataSplits:
    """Build MNIST as train (first 50,000 training images), val (last 10,000) and test splits.

    Inputs are float32 of shape ``(N, 1, 28, 28)`` scaled to [0, 1]; labels are the digits; the
    single dummy attribute makes the 10 groups the 10 classes. With ``label_noise_rate > 0`` the
    *training* labels only are corrupted by :func:`~robustml.data.datasets.noisy.with_label_noise`
    and the corruption is recorded as ``splits.train.noise``; val and test stay clean.

    Args:
        root: Folder that holds (or will hold) ``MNIST/raw`` in torchvision's layout.
        download: Let torchvision download MNIST when it is missing.
        seed: Seed of the label-noise draw (nothing else here is random).
        label_noise_rate: Probability that a training label is changed, in ``[0, 1)``.
        label_noise_kind: ``"symmetric"`` or ``"asymmetric"`` (see
            :func:`robustml.cleaning.noise_matrix`).

    Returns:
        The train, val and test splits, named ``"mnist"``, with a description for reports.

    Raises:
        FileNotFoundError: MNIST is missing under ``root`` and ``download`` is False.
        ValueError: ``label_noise_rate`` or ``label_noise_kind`` is invalid.
    """
    seed = check_int("seed", seed)
    download = check_flag("download", download)
    train_images, train_digits, test_images, test_digits = _load_mnist(root, download)
    train = _to_dataset(train_images[:NUM_TRAIN], train_digits[:NUM_TRAIN])
    train = with_label_noise(train, label_noise_rate, kind=label_noise_kind, seed=seed)
    val = _to_dataset(train_images[NUM_TRAIN:], train_digits[NUM_TRAIN:])
    test = _to_dataset(test_images, test_digits)
    description = (f"MNIST, 10 classes (groups = classes): train = the first {len(train):,} "
                   f"training images, val = the last {len(val):,}, test = the {len(test):,} test "
                   f"images; 28x28 grayscale scaled to [0, 1].{describe_label_noise(train)}")
    return DataSplits(train, val, test, description=description)
