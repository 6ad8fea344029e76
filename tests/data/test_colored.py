"""Tests of the Colored MNIST construction (Arjovsky et al. 2019) and its two datasets."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

from robustml.data import DataSplits, colored_digits_splits, colored_mnist_splits
from robustml.data import make_colored_environment
from robustml.data.datasets.colored_digits import _load_digits, _split_indices
from robustml.data.datasets.colored_mnist import _load_mnist
from support import SHARED_DATA, mnist_available

ENV_NAMES = ("train_e0.2", "train_e0.1", "test_e0.9")


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _random_inputs(n: int, seed: int, size: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    g = _generator(seed)
    return torch.rand(n, size, size, generator=g), torch.randint(0, 10, (n,), generator=g)


def _agreement(dataset, env: int | None = None) -> float:
    mask = torch.ones_like(dataset.y, dtype=torch.bool) if env is None else dataset.env == env
    return (dataset.y[mask] == dataset.attr[mask]).double().mean().item()


def _tolerance(p: float, n: int) -> float:
    """Four standard deviations of a Bernoulli(p) mean over n draws."""
    return 4 * math.sqrt(p * (1 - p) / n)


# make_colored_environment ------------------------------------------------------------------------
def test_environment_matches_the_papers_rule_drawn_from_the_generator():
    images, digits = _random_inputs(300, seed=1, size=3)
    x, y, color = make_colored_environment(images, digits, color_flip=0.2, label_noise=0.25,
                                           generator=_generator(7))
    # Independent re-derivation with numpy: noise bits first, then color bits, same generator.
    g = _generator(7)
    noise = (torch.rand(300, generator=g) < 0.25).numpy()
    flip = (torch.rand(300, generator=g) < 0.2).numpy()
    ref_y = (digits.numpy() >= 5).astype(np.int64) ^ noise
    ref_color = ref_y ^ flip
    ref_x = np.zeros((300, 2, 3, 3), dtype=np.float32)
    for i in range(300):
        ref_x[i, ref_color[i]] = images[i].numpy()
    np.testing.assert_array_equal(y.numpy(), ref_y)
    np.testing.assert_array_equal(color.numpy(), ref_color)
    np.testing.assert_array_equal(x.numpy(), ref_x)
    assert x.dtype == torch.float32 and y.dtype == color.dtype == torch.int64


@pytest.mark.parametrize("color_flip", [0.2, 0.1, 0.9])
def test_environment_rates_and_channels(color_flip):
    n = 20_000
    images, digits = _random_inputs(n, seed=2)
    x, y, color = make_colored_environment(images, digits, color_flip=color_flip,
                                           generator=_generator(3))
    noise_rate = (y != (digits >= 5).long()).double().mean().item()
    assert abs(noise_rate - 0.25) < 0.015
    assert abs((y == color).double().mean().item() - (1 - color_flip)) < 0.015
    rows = torch.arange(n)
    assert torch.equal(x[rows, 1 - color], torch.zeros_like(images))   # other color: exactly 0
    assert torch.equal(x[rows, color], images)                          # own color: the image


def test_grayscale_is_the_uncolored_image_in_one_channel_with_the_same_labels_and_colors():
    images, digits = _random_inputs(500, seed=4)
    x, y, color = make_colored_environment(images, digits, color_flip=0.1, generator=_generator(5))
    gx, gy, gcolor = make_colored_environment(images, digits, color_flip=0.1,
                                              generator=_generator(5), grayscale=True)
    # The reference code's grayscale model sums the color channels: that is the uncolored image.
    assert gx.shape == (500, 1, *images.shape[1:]) and torch.equal(gx[:, 0], x.sum(1))
    assert torch.equal(gx[:, 0], images)
    assert torch.equal(gy, y) and torch.equal(gcolor, color)
    assert 0 < color.sum() < 500  # colors are still drawn, both values occur


def test_environment_is_reproducible_by_seed_and_casts_to_float32():
    images, digits = _random_inputs(200, seed=6)
    first = make_colored_environment(images.double(), digits, color_flip=0.2,
                                     generator=_generator(1))
    again = make_colored_environment(images, digits, color_flip=0.2, generator=_generator(1))
    other = make_colored_environment(images, digits, color_flip=0.2, generator=_generator(2))
    assert first[0].dtype == torch.float32
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first[2], other[2])


@pytest.mark.parametrize("change, error, words", [
    (dict(images=torch.zeros(4, 3, 3, dtype=torch.uint8)), TypeError, "images"),
    (dict(images=torch.zeros(4, 9)), TypeError, "(N, H, W)"),
    (dict(images=torch.full((4, 3, 3), 2.0)), ValueError, "[0, 1]"),
    (dict(digits=torch.zeros(5, dtype=torch.int64)), TypeError, "digits"),
    (dict(digits=torch.zeros(4, dtype=torch.int32)), TypeError, "int64"),
    (dict(digits=torch.full((4,), 10)), ValueError, "[0, 9]"),
    (dict(color_flip=1.5), ValueError, "color_flip"),
    (dict(label_noise=-0.1), ValueError, "label_noise"),
    (dict(color_flip="0.2"), TypeError, "color_flip"),
    (dict(generator=None), TypeError, "generator"),
    (dict(grayscale=1), TypeError, "grayscale"),
])
def test_environment_rejects_bad_input(change, error, words):
    kwargs = dict(images=torch.zeros(4, 3, 3), digits=torch.zeros(4, dtype=torch.int64),
                  color_flip=0.2, label_noise=0.25, generator=_generator(0), grayscale=False)
    kwargs.update(change)
    images, digits = kwargs.pop("images"), kwargs.pop("digits")
    with pytest.raises(error, match=re.escape(words)):
        make_colored_environment(images, digits, **kwargs)


# colored_digits ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digits_splits() -> DataSplits:
    return colored_digits_splits(seed=0)


def test_digits_shapes_sizes_and_metadata(digits_splits):
    sizes = {"train": 1168, "val": 270, "test": 359}  # 1,797 = rest + round(.15 N) + round(.2 N)
    envs = {"train": [584, 584, 0], "val": [135, 135, 0], "test": [0, 0, 359]}
    for split, data in digits_splits.items():
        assert data.x.shape == (sizes[split], 2, 8, 8) and data.x.dtype == torch.float32
        for field in (data.y, data.attr, data.env, data.group):
            assert field.shape == (sizes[split],) and field.dtype == torch.int64
        assert data.env_counts().tolist() == envs[split]
        assert data.env_names == ENV_NAMES and data.name == "colored_digits"
        assert data.class_names == ("digit<5", "digit>=5") and data.attr_names == ("red", "green")
        assert float(data.x.min()) >= 0.0 and float(data.x.max()) <= 1.0
    assert digits_splits.num_groups == 4 and digits_splits.input_shape == (2, 8, 8)
    assert "1,168" in digits_splits.description and "e=0.9" in digits_splits.description


def test_digits_groups_follow_y_times_two_plus_color(digits_splits):
    for _, data in digits_splits.items():
        assert torch.equal(data.group, data.y * 2 + data.attr)
        manual = [int(((data.y == c) & (data.attr == a)).sum()) for c in (0, 1) for a in (0, 1)]
        assert data.group_counts().tolist() == manual
        names = [f"y={data.class_names[c]},color={data.attr_names[a]}"
                 for c in (0, 1) for a in (0, 1)]
        assert data.group_names == names
        # attr names the channel that holds the image: red = channel 0, green = channel 1.
        rows = torch.arange(len(data))
        assert torch.all(data.x[rows, 1 - data.attr].flatten(1).amax(1) == 0)
        assert torch.all(data.x[rows, data.attr].flatten(1).amax(1) > 0)


def test_digits_splits_are_disjoint_and_drawn_from_the_stated_images(digits_splits):
    images, digits = _load_digits()
    assert images.shape == (1797, 8, 8) and float(images.max()) == 1.0
    train_idx, val_idx, test_idx = _split_indices(1797, val_fraction=0.15, test_fraction=0.2,
                                                  generator=_generator(0))
    assert torch.equal(torch.cat([train_idx, val_idx, test_idx]).sort().values, torch.arange(1797))
    expected = {"train": torch.cat([train_idx[0::2], train_idx[1::2]]),  # env 0 = even positions
                "val": torch.cat([val_idx[0::2], val_idx[1::2]]), "test": test_idx}
    flipped = 0
    for split, data in digits_splits.items():
        assert torch.equal(data.x.sum(1), images[expected[split]])
        flipped += int((data.y != (digits[expected[split]] >= 5).long()).sum())
    assert abs(flipped / 1797 - 0.25) < _tolerance(0.25, 1797)


def test_digits_color_agreement_per_environment(digits_splits):
    for split, env, flip in [("train", 0, 0.2), ("train", 1, 0.1), ("val", 0, 0.2), ("val", 1, 0.1),
                             ("test", 2, 0.9)]:
        data = dict(digits_splits.items())[split]
        n = int((data.env == env).sum())
        assert abs(_agreement(data, env) - (1 - flip)) < _tolerance(flip, n)


def test_digits_are_reproducible_by_seed_and_differ_across_seeds(digits_splits):
    again, other = colored_digits_splits(seed=0), colored_digits_splits(seed=1)
    for (_, a), (_, b), (_, c) in zip(digits_splits.items(), again.items(), other.items()):
        for field in ("x", "y", "attr", "env"):
            assert torch.equal(getattr(a, field), getattr(b, field))
        assert not torch.equal(a.x, c.x)


def test_digits_grayscale_keeps_labels_and_colors_in_one_channel(digits_splits):
    gray = colored_digits_splits(seed=0, grayscale=True)
    for (_, data), (_, g) in zip(digits_splits.items(), gray.items()):
        assert g.x.shape[1] == 1 and torch.equal(g.x[:, 0], data.x.sum(1))
        assert torch.equal(g.y, data.y) and torch.equal(g.attr, data.attr)
    assert "Grayscale oracle" in gray.description


def _train_erm(splits: DataSplits, seed: int) -> dict[str, torch.Tensor]:
    """Train a small MLP with full-batch Adam; return per-split, per-example correctness."""
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(splits.train.x[0].numel(), 32),
                                torch.nn.ReLU(),
                                torch.nn.Linear(32, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(100):
        logits = model(splits.train.x).squeeze(1)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, splits.train.y.float())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return {split: (model(data.x).squeeze(1) > 0).long() == data.y
                for split, data in splits.items()}


def test_erm_learns_the_color_shortcut_and_the_grayscale_oracle_does_not(digits_splits):
    correct = _train_erm(digits_splits, seed=0)
    test = digits_splits.test
    assert correct["train"].float().mean() > 0.8   # above the 75% the digit shape allows
    assert correct["test"].float().mean() < 0.4
    for group in (0, 3):   # color agrees with the label: the shortcut helps here
        assert correct["test"][test.group == group].float().mean() > 0.7
    for group in (1, 2):   # color disagrees: the shortcut fails here
        assert correct["test"][test.group == group].float().mean() < 0.35
    gray = _train_erm(colored_digits_splits(seed=0, grayscale=True), seed=0)
    assert gray["test"].float().mean() > 0.55


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(val_fraction=0.0), ValueError, "val_fraction"),
    (dict(test_fraction=1.0), ValueError, "test_fraction"),
    (dict(val_fraction=0.5, test_fraction=0.5), ValueError, "val_fraction + test_fraction"),
    (dict(val_fraction=0.0005), ValueError, "val split"),
    (dict(train_color_flips=(0.2, 0.2)), ValueError, "distinct"),
    (dict(train_color_flips=()), ValueError, "train_color_flips"),
    (dict(train_color_flips=(0.2, 1.1)), ValueError, "train_color_flips[1]"),
    (dict(test_color_flip=-1.0), ValueError, "test_color_flip"),
    (dict(label_noise=2), ValueError, "label_noise"),
    (dict(seed="0"), TypeError, "seed"),
    (dict(grayscale="yes"), TypeError, "grayscale"),
])
def test_digits_reject_bad_arguments(kwargs, error, words):
    with pytest.raises(error, match=re.escape(words)):
        colored_digits_splits(**kwargs)


# colored_mnist -----------------------------------------------------------------------------------
def _keys(images: torch.Tensor) -> list[bytes]:
    """Return a hashable key per image (N, H, W) in [0, 1], exact for images made from uint8."""
    return [row.tobytes() for row in (images * 255).round().to(torch.uint8).flatten(1).numpy()]


@pytest.fixture(scope="module")
def mnist():
    if not mnist_available():
        pytest.skip(f"MNIST not found under {SHARED_DATA}; place torchvision's MNIST/raw files "
                    "there to run this test")
    raw = _load_mnist(SHARED_DATA, download=False)
    return raw, colored_mnist_splits(SHARED_DATA, seed=0), colored_mnist_splits(
        SHARED_DATA, seed=0, val="oracle")


def test_mnist_sizes_environments_and_shapes(mnist):
    _, splits, _ = mnist
    envs = {"train": [25_000, 25_000, 0], "val": [5_000, 5_000, 0], "test": [0, 0, 10_000]}
    for split, data in splits.items():
        assert data.env_counts().tolist() == envs[split]
        assert data.input_shape == (2, 14, 14) and data.x.dtype == torch.float32
        assert data.env_names == ENV_NAMES and data.name == "colored_mnist"
        assert float(data.x.min()) == 0.0 and float(data.x.max()) == 1.0
    assert torch.equal(splits.train.env[:25_000], torch.zeros(25_000, dtype=torch.int64))
    assert "ORACLE" not in splits.description and "25,000" in splits.description


def test_mnist_color_agreement_per_environment(mnist):
    _, splits, _ = mnist
    for data, env, flip in [(splits.train, 0, 0.2), (splits.train, 1, 0.1), (splits.test, 2, 0.9)]:
        assert abs(_agreement(data, env) - (1 - flip)) < 0.01
    for env, flip in [(0, 0.2), (1, 0.1)]:  # 5,000 validation images each
        assert abs(_agreement(splits.val, env) - (1 - flip)) < _tolerance(flip, 5_000)


def test_mnist_images_come_from_the_papers_sources_with_label_noise(mnist):
    (train_images, train_digits, test_images, _), splits, _ = mnist
    small = train_images[:, ::2, ::2].float() / 255
    # Test environment: the last 10,000 MNIST training images, in order, downsampled.
    assert torch.equal(splits.test.x.sum(1), small[50_000:])
    test_noise = (splits.test.y != (train_digits[50_000:] >= 5).long()).double().mean().item()
    assert abs(test_noise - 0.25) < 0.015
    # Training environments: exactly the first 50,000 training images, shuffled (matched by pixels).
    digit_of = {}
    for key, digit in zip(_keys(small[:50_000]), train_digits[:50_000].tolist()):
        digit_of.setdefault(key, set()).add(digit)
    train_keys = _keys(splits.train.x.sum(1))
    assert sorted(train_keys) == sorted(_keys(small[:50_000]))
    unambiguous = [(key, y) for key, y in zip(train_keys, splits.train.y.tolist())
                   if len(digit_of[key]) == 1]
    assert len(unambiguous) > 49_900
    noise = np.mean([y != int(next(iter(digit_of[key])) >= 5) for key, y in unambiguous])
    assert abs(noise - 0.25) < 0.015
    assert not torch.equal(splits.train.x.sum(1)[:100], small[:100])  # shuffled
    # Validation: the 10,000 MNIST test-split images.
    val_sources = test_images[:, ::2, ::2].float() / 255
    assert sorted(_keys(splits.val.x.sum(1))) == sorted(_keys(val_sources))


def test_mnist_oracle_validation_is_colored_like_the_test_environment(mnist):
    _, splits, oracle = mnist
    assert oracle.val.env_counts().tolist() == [0, 0, 10_000]
    assert abs(_agreement(oracle.val) - 0.1) < _tolerance(0.9, 10_000)
    assert "ORACLE" in oracle.description
    for field in ("x", "y", "attr", "env"):  # val is drawn last: train and test are unchanged
        assert torch.equal(getattr(oracle.train, field), getattr(splits.train, field))
        assert torch.equal(getattr(oracle.test, field), getattr(splits.test, field))


def test_mnist_missing_root_names_the_path_and_what_to_type(tmp_path):
    with pytest.raises(FileNotFoundError, match="pass download=True") as info:
        colored_mnist_splits(tmp_path / "nowhere")
    message = str(info.value)
    assert f"not found under {tmp_path / 'nowhere'}" in message
    assert "MNIST/raw/train-images-idx3-ubyte" in message
    assert "root=<dir>" in message and "ROBUSTML_DATA=<dir>" in message


def test_mnist_rejects_an_unknown_validation_choice(tmp_path):
    with pytest.raises(ValueError, match="train_envs.*oracle.*'test'"):
        colored_mnist_splits(tmp_path, val="test")
