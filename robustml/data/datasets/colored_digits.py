"""Colored Digits: the IRM paper's Colored MNIST construction on scikit-learn's bundled digits.

The embedded default dataset: 1,797 8x8 digit images ship with scikit-learn, so it needs no
download and builds in milliseconds. The construction is the one of Arjovsky et al. (2019, section
5.2), see :mod:`robustml.data.datasets.colored`: in the training environments color agrees with
the label 85% of the time on average (``e`` = 0.2, 0.1) against 75% for the digit shape, so ERM
learns the color shortcut and fails in the test environment (``e`` = 0.9).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from robustml.data.contract import DataSplits, GroupedTensorDataset
from robustml.data.datasets.colored import (
    check_color_flips,
    check_flag,
    check_probability,
    environment_names,
    make_colored_split,
)
from robustml.validation import check_int


def _load_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """Return scikit-learn's digits: images float32 ``(1797, 8, 8)`` in [0, 1], digits int64."""
    from sklearn.datasets import load_digits  # imported here: sklearn.datasets is slow to import

    bunch = load_digits()
    images = torch.from_numpy(bunch.images).to(torch.float32) / 16.0
    return images, torch.from_numpy(bunch.target).to(torch.int64)


def _split_indices(num_examples: int, *, val_fraction: float, test_fraction: float,
                   generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Shuffle ``range(num_examples)`` and cut it into train, val and test indices (int64).

    Test takes the last ``round(test_fraction * num_examples)`` shuffled positions, val the
    ``round(val_fraction * num_examples)`` before them, train the rest.
    """
    num_test = round(test_fraction * num_examples)
    num_val = round(val_fraction * num_examples)
    num_train = num_examples - num_val - num_test
    order = torch.randperm(num_examples, generator=generator)
    return order[:num_train], order[num_train:num_train + num_val], order[num_train + num_val:]


def colored_digits_splits(
    *,
    seed: int = 0,
    grayscale: bool = False,
    label_noise: float = 0.25,
    train_color_flips: Sequence[float] = (0.2, 0.1),
    test_color_flip: float = 0.9,
    val_fraction: float = 0.15,
    test_fraction: float = 0.2,
) -> DataSplits:
    """Build Colored Digits: Colored MNIST's construction (Arjovsky et al. 2019) on sklearn digits.

    The 1,797 images of :func:`sklearn.datasets.load_digits` (8x8, values 0..16 scaled to
    [0, 1], no upsampling) are shuffled with ``seed`` and cut into three parts:

    - test (``test_fraction``): the test environment, color flip ``test_color_flip`` (0.9);
    - val (``val_fraction``): colored with the training environments' rules and env ids (half at
      ``e`` = 0.2 as env 0, half at 0.1 as env 1), so model selection never sees the test
      distribution;
    - train (the rest): split by position (even / odd) into the training environments.

    Inputs are float32 of shape ``(N, 2, 8, 8)`` (channel 0 red, channel 1 green), labels are
    binary (``digit >= 5``, flipped with probability ``label_noise``), ``attr`` is the color and
    every split carries the env names ``("train_e0.2", "train_e0.1", "test_e0.9")``.

    Args:
        seed: Seed of every random draw (shuffle, label noise, colors).
        grayscale: Give the uncolored image in one channel (grayscale oracle); colors are
            still drawn.
        label_noise: Probability that the binary label is flipped (the paper: 0.25).
        train_color_flips: Color flip of each training environment (the paper: 0.2, 0.1).
        test_color_flip: Color flip of the test environment (the paper: 0.9).
        val_fraction: Fraction of the images in the validation set, in (0, 1).
        test_fraction: Fraction of the images in the test environment, in (0, 1).

    Returns:
        The train, val and test splits, named ``"colored_digits"``, with a description.
    """
    seed = check_int("seed", seed)
    grayscale = check_flag("grayscale", grayscale)
    train_color_flips = check_color_flips("train_color_flips", train_color_flips)
    test_color_flip = check_probability("test_color_flip", test_color_flip)
    label_noise = check_probability("label_noise", label_noise)
    for name, fraction in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if check_probability(name, fraction) in (0.0, 1.0):
            raise ValueError(f"{name} must be in (0, 1), got {fraction!r}")
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(f"val_fraction + test_fraction must be < 1 to leave training images, got "
                         f"{val_fraction!r} + {test_fraction!r}")

    images, digits = _load_digits()
    generator = torch.Generator().manual_seed(seed)
    train_idx, val_idx, test_idx = _split_indices(
        images.shape[0], val_fraction=val_fraction, test_fraction=test_fraction,
        generator=generator)
    num_envs = len(train_color_flips)
    for name, idx in (("train", train_idx), ("val", val_idx)):
        if idx.numel() < num_envs:
            raise ValueError(f"the {name} split has {idx.numel()} images, fewer than the "
                             f"{num_envs} training environments; change val_fraction / "
                             f"test_fraction (got {val_fraction!r} / {test_fraction!r})")

    env_names = environment_names(train_color_flips, test_color_flip)
    train_env_ids = tuple(range(num_envs))
    common = dict(env_names=env_names, label_noise=label_noise, grayscale=grayscale,
                  generator=generator, name="colored_digits")
    train = make_colored_split(images[train_idx], digits[train_idx], color_flips=train_color_flips,
                               env_ids=train_env_ids, **common)
    val = make_colored_split(images[val_idx], digits[val_idx], color_flips=train_color_flips,
                             env_ids=train_env_ids, **common)
    test = make_colored_split(images[test_idx], digits[test_idx], color_flips=(test_color_flip,),
                              env_ids=(num_envs,), **common)
    return DataSplits(train, val, test, description=_describe(
        train, val, test, grayscale=grayscale, label_noise=label_noise,
        train_color_flips=train_color_flips, test_color_flip=test_color_flip))


def _describe(train: GroupedTensorDataset, val: GroupedTensorDataset, test: GroupedTensorDataset,
              *, grayscale: bool, label_noise: float, train_color_flips: tuple[float, ...],
              test_color_flip: float) -> str:
    """Return the one-paragraph description of the splits for reports."""
    flips = ", ".join(f"{flip:g}" for flip in train_color_flips)
    sizes = ", ".join(f"{int(n):,}" for n in train.env_counts()[:len(train_color_flips)])
    gray = (" Grayscale oracle: every image is uncolored, in one channel, so color carries no "
            "information." if grayscale else "")
    return (f"Colored Digits: the Colored MNIST construction of Arjovsky et al. (2019, IRM) on "
            f"scikit-learn's 1,797 8x8 digits; label digit>=5 flipped with probability "
            f"{label_noise:g}, color = label flipped with probability e. Train: {len(train):,} "
            f"images in {len(train_color_flips)} environments ({sizes} images, e={flips}). "
            f"Validation: {len(val):,} images colored with the training environments' rules "
            f"(e={flips}), so model selection sees only the training distribution. Test: "
            f"{len(test):,} images at e={test_color_flip:g}.{gray}")
