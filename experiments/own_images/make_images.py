"""Write an image folder with a background shortcut, in robustml's image-CSV format.

MNIST digits on two backgrounds, ``land`` (a green-brown mottled texture) and ``water`` (blue
with horizontal waves). The label is ``digit<5`` or ``digit>=5``. In training the background
agrees with the label (``land`` for ``digit<5``, ``water`` for ``digit>=5``) in a fraction
``--correlation`` of each class; in val and test each class is split evenly between the two
backgrounds, as in Waterbirds, so a model that reads the background fails on the two minority
groups (``digit<5`` on water, ``digit>=5`` on land).

Writes ``OUT/images/<split>/<n>.png`` and ``OUT/images.csv`` with the columns
``path,label,background,split`` (paths relative to the CSV). Train and val digits come from
MNIST's training images (train from the first 50,000, val from the last 10,000, as
``robustml.data.datasets.mnist`` splits them), test digits from MNIST's test images; each digit
is used once. Usage::

    python experiments/own_images/make_images.py --data-root ../shared/data --out data/own_images
    robustml-train experiment=own_images_erm data.csv=data/own_images/images.csv
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np

LABELS = ("digit<5", "digit>=5")
BACKGROUNDS = ("land", "water")   # background b agrees with label b
LAND = np.array([118, 128, 62], dtype=np.float32)
WATER = np.array([48, 98, 178], dtype=np.float32)


def group_counts(split: str, *, per_class: int, correlation: float) -> dict[tuple[int, int], int]:
    """Return ``{(label, background): count}`` for one split.

    Training: ``round(per_class * correlation)`` of each class on its agreeing background, the
    rest on the other. Val and test: ``per_class // 2`` on each background.
    """
    if split == "train":
        agree = round(per_class * correlation)
        return {(y, b): agree if y == b else per_class - agree for y in (0, 1) for b in (0, 1)}
    return {(y, b): per_class // 2 for y in (0, 1) for b in (0, 1)}


def background(kind: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Return a float ``(size, size, 3)`` background: 0 land (mottled), 1 water (waves)."""
    if kind == 0:
        coarse = rng.normal(0.0, 1.0, (size // 4 + 1, size // 4 + 1))
        mottle = np.kron(coarse, np.ones((4, 4)))[:size, :size]
        image = LAND + 22.0 * mottle[..., None] * np.array([1.0, 0.8, 0.4])
    else:
        rows = np.arange(size, dtype=np.float32)[:, None]
        phase, period = rng.uniform(0, 2 * np.pi), rng.uniform(5.0, 8.0)
        waves = np.sin(2 * np.pi * rows / period + phase) * np.ones((1, size))
        image = WATER + 24.0 * waves[..., None] * np.array([0.5, 0.7, 1.0])
    return image + rng.normal(0.0, 8.0, (size, size, 3))


def compose(digit: np.ndarray, kind: int, rng: np.random.Generator) -> np.ndarray:
    """Return a uint8 RGB image: the digit (float ``(H, W)`` in [0, 1]) in white on a background."""
    alpha = digit[..., None]
    image = (1.0 - alpha) * background(kind, digit.shape[0], rng) + alpha * 245.0
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def load_digits(data_root: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Return MNIST as ``{split: (images float (N, 28, 28) in [0, 1], digits (N,))}``.

    Read by :func:`robustml.data.datasets.mnist.mnist_splits` (train: the first 50,000 training
    images, val: the last 10,000, test: the test images).
    """
    from robustml.data.datasets.mnist import mnist_splits

    splits = mnist_splits(data_root)
    return {name: (ds.x[:, 0].numpy(), ds.y.numpy())
            for name, ds in (("train", splits.train), ("val", splits.val), ("test", splits.test))}


def make_images(out: str | Path, digits: dict[str, tuple[np.ndarray, np.ndarray]], *,
                train_per_class: int = 2000, val_per_class: int = 200, test_per_class: int = 500,
                correlation: float = 0.95, seed: int = 0) -> Path:
    """Write the folder and return the CSV's path.

    Args:
        out: Output folder (created; existing files of the same names are overwritten).
        digits: ``{split: (images, digits)}`` as :func:`load_digits` returns.
        train_per_class: Training images per class.
        val_per_class: Validation images per class (even, half on each background).
        test_per_class: Test images per class (even, half on each background).
        correlation: Fraction of each training class on its agreeing background, in (0.5, 1].
        seed: Seed of the digit draw, the background assignment and the textures.

    Raises:
        ValueError: An option is out of range or MNIST holds too few digits for a split (the
            option, the expected and the received values are named).
    """
    if not 0.5 < correlation <= 1.0:
        raise ValueError(f"correlation must lie in (0.5, 1], got {correlation}")
    sizes = {"train": train_per_class, "val": val_per_class, "test": test_per_class}
    for split, n in sizes.items():
        if not isinstance(n, int) or n < 2 or (split != "train" and n % 2):
            raise ValueError(f"{split}_per_class must be an integer >= 2 (even for val and test: "
                             f"half on each background), got {n!r}")
    rng = np.random.default_rng(seed)
    out = Path(out)
    rows = ["path,label,background,split"]
    for split, per_class in sizes.items():
        images, labels = digits[split]
        label = (labels >= 5).astype(np.int64)
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        counts = group_counts(split, per_class=per_class, correlation=correlation)
        for y in (0, 1):
            pool = np.flatnonzero(label == y)
            if len(pool) < per_class:
                raise ValueError(f"{split}_per_class must be at most {len(pool)} (MNIST's "
                                 f"{LABELS[y]} images in {split}), got {per_class}")
            chosen = rng.choice(pool, size=per_class, replace=False)
            kinds = np.repeat([0, 1], [counts[(y, 0)], counts[(y, 1)]])
            for index, kind in zip(chosen, rng.permutation(kinds)):
                name = f"images/{split}/{index:05d}.png"
                _save(out / name, compose(images[index], int(kind), rng))
                rows.append(f"{name},{LABELS[y]},{BACKGROUNDS[kind]},{split}")
    csv = out / "images.csv"
    csv.write_text("\n".join(rows) + "\n")
    return csv


def _save(path: Path, pixels: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(pixels).save(path)


def main(argv: Sequence[str] | None = None) -> Path:
    """Parse the command line, write the folder and print the CSV's path and group counts."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-root", default="../shared/data",
                        help="folder holding MNIST/raw (default: ../shared/data)")
    parser.add_argument("--out", default="data/own_images", help="output folder (default: data/own_images)")
    parser.add_argument("--train-per-class", type=int, default=2000)
    parser.add_argument("--val-per-class", type=int, default=200)
    parser.add_argument("--test-per-class", type=int, default=500)
    parser.add_argument("--correlation", type=float, default=0.95,
                        help="fraction of each training class on its agreeing background (default 0.95)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    csv = make_images(args.out, load_digits(args.data_root), train_per_class=args.train_per_class,
                      val_per_class=args.val_per_class, test_per_class=args.test_per_class,
                      correlation=args.correlation, seed=args.seed)
    print(f"wrote {csv}")
    for split, n in (("train", args.train_per_class), ("val", args.val_per_class),
                     ("test", args.test_per_class)):
        counts = group_counts(split, per_class=n, correlation=args.correlation)
        print(f"  {split}: " + ", ".join(f"{LABELS[y]} on {BACKGROUNDS[b]} {c}"
                                         for (y, b), c in counts.items()))
    return csv


if __name__ == "__main__":
    main()
