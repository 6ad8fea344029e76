"""Colored MNIST exactly as in the IRM paper, plus a validation set the paper does not have.

Arjovsky, Bottou, Gulrajani, Lopez-Paz, "Invariant Risk Minimization" (2019), section 5.2: the
first 50,000 images of MNIST's training split, shuffled, form two training environments of 25,000
(even / odd positions, color flip ``e`` = 0.2 and 0.1); the last 10,000 training images form the
test environment (``e`` = 0.9). Images are downsampled to 14x14 by taking every other pixel.

The paper selects nothing on a validation set. Here validation uses the 10,000 images of MNIST's
*test* split, which the paper's construction never touches, so the training environments stay
exactly the paper's.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from robustml._torchvision import import_torchvision
from robustml.data.contract import DataSplits, GroupedTensorDataset
from robustml.data.datasets.colored import (
    check_color_flips,
    check_flag,
    check_probability,
    environment_names,
    make_colored_split,
)
from robustml.validation import check_int
from robustml.data.datasets.noisy import describe_label_noise, with_label_noise
from robustml.data.missing import missing_data_error

MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
VAL_CHOICES = ("train_envs", "oracle")
NUM_TRAIN_ENV_IMAGES = 50_000  # the rest of MNIST's training split (10,000) is the test environment


def _load_mnist(root: str | Path, download: bool) -> tuple[torch.Tensor, ...]:
    """Load MNIST with torchvision from ``<root>/MNIST/raw``.

    Returns:
        ``(train_images, train_digits, test_images, test_digits)``: images uint8 of shape
        ``(60000, 28, 28)`` and ``(10000, 28, 28)``, digits int64 of shape ``(60000,)`` and
        ``(10000,)``.

    Raises:
        FileNotFoundError: The raw files are missing and ``download`` is False.
    """
    root = Path(root).expanduser().resolve()
    raw = root / "MNIST" / "raw"
    missing = [name for name in MNIST_FILES if not (raw / name).is_file()]
    if missing and not download:
        raise missing_data_error("MNIST", root, [f"MNIST/raw/{name}" for name in missing],
                                 layout="Expected layout: MNIST/raw/ with the four uncompressed "
                                        "idx files (torchvision's MNIST layout).",
                                 download_hint="When online, pass download=True to download it.")
    datasets = import_torchvision().datasets
    train = datasets.MNIST(str(root), train=True, download=download)
    test = datasets.MNIST(str(root), train=False, download=download)
    return train.data, train.targets, test.data, test.targets


def _downsample(images: torch.Tensor) -> torch.Tensor:
    """Take every other pixel: uint8 ``(N, 28, 28)`` -> float32 ``(N, 14, 14)`` in [0, 1]."""
    return images[:, ::2, ::2].to(torch.float32) / 255.0


def colored_mnist_splits(
    root: str | Path,
    *,
    seed: int = 0,
    download: bool = False,
    val: str = "train_envs",
    grayscale: bool = False,
    label_noise: float = 0.25,
    train_color_flips: Sequence[float] = (0.2, 0.1),
    test_color_flip: float = 0.9,
    label_noise_rate: float = 0.0,
    label_noise_kind: str = "symmetric",
) -> DataSplits:
    """Build the IRM paper's Colored MNIST (Arjovsky et al. 2019, section 5.2) as train/val/test.

    Environments: the first 50,000 MNIST training images, shuffled with ``seed``, are split by
    position into ``len(train_color_flips)`` training environments (the paper: even / odd
    positions, 25,000 each, ``e`` = 0.2 and 0.1, env ids 0 and 1); the last 10,000 MNIST training
    images form the test environment (``e`` = 0.9, the last env id). Every split carries all the
    env names, e.g. ``("train_e0.2", "train_e0.1", "test_e0.9")``.

    Validation (the paper has none) comes from the 10,000 images of MNIST's test split, shuffled:

    - ``val="train_envs"`` (default): colored with the training environments' rules and env ids
      (5,000 at ``e`` = 0.2, 5,000 at ``e`` = 0.1), i.e. drawn from the training distribution.
    - ``val="oracle"``: colored like the test environment (``e`` = 0.9, its env id). **This is an
      oracle**: model selection then sees the test distribution, which a real user cannot do.
      The paper's published hyperparameters were chosen with such test-environment information.

    Inputs are float32 of shape ``(N, 2, 14, 14)`` (channel 0 red, channel 1 green), labels are
    binary (``digit >= 5``, flipped with probability ``label_noise``), ``attr`` is the color.

    Args:
        root: Folder that holds (or will hold) ``MNIST/raw`` in torchvision's layout.
        seed: Seed of every random draw (shuffles, label noise, colors).
        download: Let torchvision download MNIST when it is missing.
        val: How the validation set is colored: ``"train_envs"`` or ``"oracle"``.
        grayscale: Give the uncolored image in one channel (the paper's grayscale oracle);
            colors are still drawn, so groups stay defined.
        label_noise: Probability that the binary label is flipped (the paper: 0.25).
        train_color_flips: Color flip of each training environment (the paper: 0.2, 0.1).
        test_color_flip: Color flip of the test environment (the paper: 0.9).
        label_noise_rate: Extra synthetic noise on the *training* labels only, applied after the
            colors are drawn (:func:`~robustml.data.datasets.noisy.with_label_noise`, recorded as
            ``splits.train.noise``); 0 (default) adds none. Not the paper's ``label_noise``.
        label_noise_kind: ``"symmetric"`` or ``"asymmetric"``; for two classes both flip.

    Returns:
        The train, val and test splits, named ``"colored_mnist"``, with a description for reports.

    Raises:
        FileNotFoundError: MNIST is missing under ``root`` and ``download`` is False.
        ValueError: ``val`` or a probability is invalid.
    """
    if val not in VAL_CHOICES:
        raise ValueError(f"val must be one of {VAL_CHOICES}, got {val!r}")
    seed = check_int("seed", seed)
    download = check_flag("download", download)
    grayscale = check_flag("grayscale", grayscale)
    train_color_flips = check_color_flips("train_color_flips", train_color_flips)
    test_color_flip = check_probability("test_color_flip", test_color_flip)
    label_noise = check_probability("label_noise", label_noise)
    train_images, train_digits, test_images, test_digits = _load_mnist(root, download)

    env_names = environment_names(train_color_flips, test_color_flip)
    train_env_ids = tuple(range(len(train_color_flips)))
    test_env_id = len(train_color_flips)
    common = dict(env_names=env_names, label_noise=label_noise, grayscale=grayscale,
                  name="colored_mnist")
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(NUM_TRAIN_ENV_IMAGES, generator=generator)
    train = make_colored_split(
        _downsample(train_images[:NUM_TRAIN_ENV_IMAGES][order]),
        train_digits[:NUM_TRAIN_ENV_IMAGES][order],
        color_flips=train_color_flips, env_ids=train_env_ids, generator=generator, **common)
    train = with_label_noise(train, label_noise_rate, kind=label_noise_kind, seed=seed)
    test = make_colored_split(
        _downsample(train_images[NUM_TRAIN_ENV_IMAGES:]), train_digits[NUM_TRAIN_ENV_IMAGES:],
        color_flips=(test_color_flip,), env_ids=(test_env_id,), generator=generator, **common)
    # Drawn last, so train and test do not depend on the choice of validation set.
    val_order = torch.randperm(test_images.shape[0], generator=generator)
    val_flips, val_env_ids = ((train_color_flips, train_env_ids) if val == "train_envs"
                              else ((test_color_flip,), (test_env_id,)))
    validation = make_colored_split(
        _downsample(test_images[val_order]), test_digits[val_order],
        color_flips=val_flips, env_ids=val_env_ids, generator=generator, **common)
    return DataSplits(train, validation, test, description=_describe(
        train, validation, test, val=val, grayscale=grayscale, label_noise=label_noise,
        train_color_flips=train_color_flips, test_color_flip=test_color_flip)
        + describe_label_noise(train))


def _describe(train: GroupedTensorDataset, validation: GroupedTensorDataset,
              test: GroupedTensorDataset, *, val: str, grayscale: bool, label_noise: float,
              train_color_flips: tuple[float, ...], test_color_flip: float) -> str:
    """Return the one-paragraph description of the splits for reports."""
    sizes = ", ".join(f"{int(n):,} at e={flip:g}"
                      for n, flip in zip(train.env_counts()[:len(train_color_flips)],
                                         train_color_flips))
    if val == "train_envs":
        val_text = (f"{len(validation):,} images of MNIST's test split colored with the training "
                    f"environments' rules (e={', '.join(f'{f:g}' for f in train_color_flips)}), "
                    f"so model selection sees only the training distribution")
    else:
        val_text = (f"ORACLE: {len(validation):,} images of MNIST's test split colored like the "
                    f"test environment (e={test_color_flip:g}), so model selection sees the test "
                    f"distribution")
    gray = (" Grayscale oracle: every image is uncolored, in one channel, so color carries no "
            "information." if grayscale else "")
    return (f"Colored MNIST (Arjovsky et al. 2019, IRM): 14x14 MNIST digits in two color channels; "
            f"label digit>=5 flipped with probability {label_noise:g}, color = label flipped with "
            f"probability e. Train: the first 50,000 MNIST training images, shuffled, in "
            f"{len(train_color_flips)} environments ({sizes}). Test: the last {len(test):,} MNIST "
            f"training images at e={test_color_flip:g}. Validation: {val_text}.{gray}")
