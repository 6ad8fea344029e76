"""The Colored MNIST construction of the IRM paper, shared by every colored dataset.

Arjovsky, Bottou, Gulrajani, Lopez-Paz, "Invariant Risk Minimization" (2019), section 5.2: a
binary label is derived from the digit (``digit >= 5``) and flipped with probability 0.25; the
color is the label flipped with an environment-specific probability ``e``; the image is drawn in
the channel of its color and the other channel is zeroed. Color predicts the label better than the
digit shape in the training environments (``e`` = 0.2, 0.1) and worse in the test environment
(``e`` = 0.9), so a model that learns the shortcut fails at test time.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch

from robustml.data.contract import GroupedTensorDataset

ATTR_NAMES = ("red", "green")  # channel 0 / channel 1
ATTR_KEY = "color"
CLASS_NAMES = ("digit<5", "digit>=5")
#: The counterfactual rule of every colored split, declared as data (robustml.augment builds it):
#: recolor by swapping channels. The content lies in the color's channel only by construction, so
#: the rule need not re-check it.
COUNTERFACTUAL = {"rule": "channel_color", "num_colors": len(ATTR_NAMES), "check": False}


def check_probability(name: str, value: float) -> float:
    """Return ``value`` as a float after checking that it lies in ``[0, 1]``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a float in [0, 1], got {type(value).__name__} {value!r}")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return float(value)


def check_flag(name: str, value: bool) -> bool:
    """Return ``value`` after checking that it is a bool."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")
    return value


def check_color_flips(name: str, flips: Sequence[float]) -> tuple[float, ...]:
    """Return the training environments' color flips after checking them (non-empty, distinct)."""
    if isinstance(flips, (str, bytes)) or not isinstance(flips, Sequence) or len(flips) == 0:
        raise ValueError(f"{name} must be a non-empty sequence of floats in [0, 1], got {flips!r}")
    checked = tuple(check_probability(f"{name}[{i}]", flip) for i, flip in enumerate(flips))
    if len(set(checked)) != len(checked):
        raise ValueError(f"{name} must hold distinct values (environments with the same color flip "
                         f"are one environment), got {flips!r}")
    return checked


def _bernoulli(p: float, n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """Draw ``n`` Bernoulli(p) bits as int64 from ``generator``, then move them to ``device``."""
    draws = torch.rand(n, generator=generator, device=generator.device)
    return (draws < p).to(device=device, dtype=torch.int64)


def make_colored_environment(
    images: torch.Tensor,
    digits: torch.Tensor,
    *,
    color_flip: float,
    label_noise: float = 0.25,
    generator: torch.Generator,
    grayscale: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Color one environment of digit images as in the IRM paper's Colored MNIST.

    The binary label is ``digit >= 5``, flipped with probability ``label_noise``; the color is
    ``label XOR Bernoulli(color_flip)`` (0 = red = channel 0, 1 = green = channel 1). The image is
    kept in the channel of its color and the other channel is zeroed (Arjovsky et al. 2019,
    section 5.2). With ``grayscale=True`` (the paper's grayscale oracle) the image is returned in
    one channel, which is what the reference code's grayscale model sees (it sums the two color
    channels), so color carries no information; the color is still drawn and returned so that the
    groups ``y * 2 + color`` stay the same. The label noise is drawn before the color, both
    from ``generator`` only.

    Args:
        images: Grayscale images in ``[0, 1]``, shape ``(N, H, W)``, floating point.
        digits: Digit labels in ``[0, 9]``, shape ``(N,)``, int64.
        color_flip: Probability ``e`` that the color disagrees with the (noisy) label.
        label_noise: Probability that the binary label is flipped (the paper: 0.25).
        generator: Source of all randomness (reproducible by its seed).
        grayscale: Return the uncolored image in one channel instead of coloring it.

    Returns:
        ``(x, y, color)``: ``x`` float32 of shape ``(N, 2, H, W)`` (``(N, 1, H, W)`` when
        ``grayscale``), ``y`` and ``color`` int64 of shape ``(N,)``, on the device of ``images``.
    """
    if not isinstance(images, torch.Tensor) or images.ndim != 3 or not images.is_floating_point():
        raise TypeError("images must be a floating-point tensor of shape (N, H, W), got "
                        f"{type(images).__name__} {getattr(images, 'dtype', '')} "
                        f"{tuple(getattr(images, 'shape', ()))}")
    if images.numel() and (float(images.min()) < 0.0 or float(images.max()) > 1.0):
        raise ValueError(f"images must lie in [0, 1], got values in "
                         f"[{float(images.min())}, {float(images.max())}]")
    n = images.shape[0]
    if not isinstance(digits, torch.Tensor) or digits.dtype != torch.int64 or digits.shape != (n,):
        raise TypeError(f"digits must be an int64 tensor of shape ({n},) to match images, got "
                        f"{getattr(digits, 'dtype', type(digits).__name__)} "
                        f"{tuple(getattr(digits, 'shape', ()))}")
    if n and (int(digits.min()) < 0 or int(digits.max()) > 9):
        raise ValueError(f"digits must lie in [0, 9], got values in "
                         f"[{int(digits.min())}, {int(digits.max())}]")
    color_flip = check_probability("color_flip", color_flip)
    label_noise = check_probability("label_noise", label_noise)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    grayscale = check_flag("grayscale", grayscale)

    label = (digits >= 5).to(torch.int64) ^ _bernoulli(label_noise, n, generator, images.device)
    color = label ^ _bernoulli(color_flip, n, generator, images.device)
    x = images.to(torch.float32).unsqueeze(1)
    if grayscale:
        return x.clone(), label, color   # a copy, never a view of the caller's images
    keep = torch.nn.functional.one_hot(color, num_classes=2).to(x.dtype)  # (N, 2)
    return x * keep[:, :, None, None], label, color


def make_colored_split(
    images: torch.Tensor,
    digits: torch.Tensor,
    *,
    color_flips: Sequence[float],
    env_ids: Sequence[int],
    env_names: Sequence[str],
    label_noise: float,
    generator: torch.Generator,
    grayscale: bool,
    name: str,
) -> GroupedTensorDataset:
    """Color a split made of one or more environments and wrap it in the grouped-data contract.

    Environment ``k`` takes the images at positions ``k, k + K, k + 2K, ...`` (``K`` =
    ``len(color_flips)``; for two environments the paper's even / odd positions), is colored with
    ``color_flips[k]`` and labelled ``env_ids[k]``. Environments are concatenated in order.

    Args:
        images: Grayscale images in ``[0, 1]``, shape ``(N, H, W)``.
        digits: Digit labels in ``[0, 9]``, shape ``(N,)``, int64.
        color_flips: The color flip of each environment of this split.
        env_ids: The environment id of each environment, indices into ``env_names``.
        env_names: Names of every environment of the dataset (shared by all its splits).
        label_noise: Probability that the binary label is flipped.
        generator: Source of all randomness.
        grayscale: Keep the image uncolored, in one channel (the grayscale oracle).
        name: Dataset name for reports.

    Returns:
        A dataset with ``x`` of shape ``(N, 2, H, W)``, binary ``y``, ``attr`` = color and ``env``.
    """
    if len(color_flips) != len(env_ids):
        raise ValueError(f"color_flips and env_ids must have the same length, got "
                         f"{len(color_flips)} and {len(env_ids)}")
    parts = [make_colored_environment(images[k::len(color_flips)], digits[k::len(color_flips)],
                                      color_flip=flip, label_noise=label_noise,
                                      generator=generator, grayscale=grayscale)
             for k, flip in enumerate(color_flips)]
    env = torch.cat([torch.full((part[1].shape[0],), env_id, dtype=torch.int64,
                                device=images.device)
                     for env_id, part in zip(env_ids, parts)])
    return GroupedTensorDataset(
        torch.cat([part[0] for part in parts]),
        torch.cat([part[1] for part in parts]),
        torch.cat([part[2] for part in parts]),
        num_classes=2, attr_names=ATTR_NAMES, attr_key=ATTR_KEY, env=env, env_names=env_names,
        class_names=CLASS_NAMES, name=name,
        counterfactual=None if grayscale else dict(COUNTERFACTUAL))


def environment_names(train_color_flips: Sequence[float],
                      test_color_flip: float) -> tuple[str, ...]:
    """Return the names of the training environments and the test environment, in id order."""
    return tuple(f"train_e{flip:g}" for flip in train_color_flips) + (f"test_e{test_color_flip:g}",)
