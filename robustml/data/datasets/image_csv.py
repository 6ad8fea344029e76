"""Your own images, no code: a CSV ``path,label,<attribute columns>[,split]``.

Each row is one image: ``path`` relative to the CSV's folder, its class ``label`` and one or more
spurious-attribute columns. Groups are label x attribute values (several attribute columns are
combined into one attribute whose values are their combinations, e.g. ``outdoor+night``). The
split comes from the ``split`` column (``train``, ``val`` or ``test``) or, without one, from a
seeded split stratified by group.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from robustml.data.checks import read_csv_rows
from robustml.data.contract import DataSplits
from robustml.data.datasets.csv_rows import label_attr_split
from robustml.data.ondisk import (check_files_exist, image_sizes, imagenet_transform, make_image_splits,
                                  transforms_v2)
from robustml.validation import check_bool, check_int, check_real

SIZES_CHECKED = 100  # images whose size is read, spread over the CSV, to say when image_size resizes up


def resize_crop_transforms(image_size: int | None, *, augment: bool,
                           own_size: tuple[int, int] | None = None) -> tuple:
    """Return ``(train, eval)`` transforms in the Group DRO paper's style, scaled to ``image_size``.

    Evaluation (and training without ``augment``): resize the shorter side to
    ``image_size * 256 / 224``, center crop ``image_size``. With ``augment``: random resized crop
    (scale 0.7-1, ratio 3/4-4/3) and horizontal flip. ImageNet normalization in both.
    ``image_size=None`` keeps the images' ``own_size`` (width, height): no resize or crop in
    evaluation, and with ``augment`` the random resized crop returns to that size (ratios 3/4-4/3
    of the image's own).
    """
    v2 = transforms_v2()
    if image_size is None:
        if own_size is None:
            raise ValueError("image_size=None keeps the images' own size: pass own_size=(width, height)")
        width, height = own_size
        eval_transform = imagenet_transform([])
        crop = v2.RandomResizedCrop((height, width), scale=(0.7, 1.0),
                                    ratio=(0.75 * width / height, 4 / 3 * width / height))
    else:
        eval_transform = imagenet_transform([v2.Resize(int(image_size * 256 / 224)),
                                             v2.CenterCrop(image_size)])
        crop = v2.RandomResizedCrop(image_size, scale=(0.7, 1.0), ratio=(0.75, 4 / 3))
    if not augment:
        return eval_transform, eval_transform
    return imagenet_transform([crop, v2.RandomHorizontalFlip()]), eval_transform


def own_size(root: Path, paths: Sequence[str], csv: Path) -> tuple[int, int]:
    """Return the ``(width, height)`` every listed image has; raise naming two sizes when they differ.

    Every image's header is read (no pixel is decoded).
    """
    sizes = image_sizes(root, paths)
    if len(sizes) == 1:
        return next(iter(sizes))
    (a, (count_a, first_a)), (b, (count_b, first_b)) = sorted(sizes.items(), key=lambda kv: -kv[1][0])[:2]
    raise ValueError(f"image_size=null keeps the images' own size, but the images listed in {csv} have "
                     f"{len(sizes)} sizes, e.g. {a[0]}x{a[1]} ({count_a} images, first {first_a}) and "
                     f"{b[0]}x{b[1]} ({count_b}, first {first_b}); set image_size=<side> (224 for "
                     "ImageNet models) to resize and center-crop every image to one square size")


def warn_if_resized_up(root: Path, paths: Sequence[str], image_size: int) -> None:
    """Warn (once per message) when ``image_size`` resizes images up: the shorter side of an image
    among :data:`SIZES_CHECKED` spread over ``paths`` is below the resize side, ``image_size * 256 / 224``."""
    side = int(image_size * 256 / 224)
    checked = list(paths[::max(1, len(paths) // SIZES_CHECKED)][:SIZES_CHECKED])
    small = {size: seen for size, seen in image_sizes(root, checked).items() if min(size) < side}
    if not small:
        return
    (width, height), (_, example) = min(small.items(), key=lambda kv: min(kv[0]))
    count = sum(n for n, _ in small.values())
    warnings.warn(f"image_size={image_size} resizes the images up: {count} of the {len(checked)} checked "
                  f"have a shorter side below {side} px, the side they are resized to before the "
                  f"{image_size}x{image_size} center crop (e.g. {example}, {width}x{height}); upsampling "
                  "adds no detail and costs compute; image_size=null (data.image_size=null) keeps the "
                  "images' own size when they share one", stacklevel=3)


def image_csv_splits(csv: str | Path, *, label: str = "label", path: str = "path",
                     attributes: Sequence[str] | None = None, split: str = "split",
                     val_fraction: float = 0.15, test_fraction: float = 0.15, seed: int = 0,
                     image_size: int | None = None, augment: bool = False, name: str = "") -> DataSplits:
    """Return train/val/test splits of the images listed in ``csv``.

    Args:
        csv: The CSV file; its ``path`` column holds image paths relative to the CSV's folder.
        label: Column of class labels (any values; sorted, numerically when numbers).
        path: Column of image paths.
        attributes: Spurious-attribute columns (default: every column other than ``path``,
            ``label`` and ``split``).
        split: Column of split names (``train``, ``val``/``valid``/``validation``, ``test``); when
            the CSV has no such column the split is drawn (:func:`stratified_split`).
        val_fraction: Fraction of each group held out for validation (drawn split only).
        test_fraction: Fraction of each group held out for test (drawn split only).
        seed: Seed of the drawn split.
        image_size: Side of the square input (each image's shorter side resized to
            ``image_size * 256 / 224``, then center-cropped; a warning says when that resizes
            images up); ``None`` keeps the images' own size, which they must all share.
        augment: Random resized crops and flips on the training split.
        name: Name for reports (default: the CSV's file stem).

    Raises:
        FileNotFoundError: The CSV, or images it lists, are missing (the first few are named).
        ValueError: The CSV is empty or has no rows below its header, a named column is absent,
            a value is empty, a split name is unknown, a split is empty, the label column holds
            one class, ``image_size=None`` with images of several sizes (two are named), or an
            option is out of range (the argument, expected and received values are named).
        TypeError: An option has the wrong type.
    """
    if image_size is not None:
        image_size = check_int("image_size", image_size, minimum=1)
    augment = check_bool("augment", augment)
    seed = check_int("seed", seed)
    for argument, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        check_real(argument, value, minimum=0.0)
    for argument, value in (("label", label), ("path", path), ("split", split)):
        if not isinstance(value, str):
            raise TypeError(f"{argument} must be a column name (str), got {value!r} "
                            f"({type(value).__name__})")
    csv = Path(csv)
    if not csv.is_file():
        raise FileNotFoundError(f"csv={str(csv)!r}: no such file; csv must name a CSV file with "
                                "columns path,label,<attribute columns>[,split]")
    frame = read_csv_rows(csv, header="path,label,<attribute columns>[,split]", row="image", dtype=str,
                          keep_default_na=False, skipinitialspace=True)
    frame.columns = [c.strip() for c in frame.columns]
    rows = label_attr_split(frame, csv, content=(path,), label=label, attributes=attributes, split=split,
                            val_fraction=val_fraction, test_fraction=test_fraction, seed=seed,
                            more_rows="images")
    empty = np.flatnonzero(frame[path].str.strip() == "")
    if len(empty):
        raise ValueError(f"{csv} column {path!r} is empty in {len(empty)} row(s), first data "
                         f"row(s) {(empty[:5] + 1).tolist()}")
    paths = frame[path].str.strip().to_numpy(dtype=object)
    check_files_exist(csv.parent, paths, csv)
    if image_size is None:
        width, height = own_size(csv.parent, paths, csv)
        size_note = f"{width}x{height} inputs (the images' own size)"
    else:
        warn_if_resized_up(csv.parent, paths, image_size)
        width = height = image_size
        size_note = f"{image_size}x{image_size} inputs"
    train_transform, eval_transform = resize_crop_transforms(image_size, augment=augment,
                                                             own_size=(width, height))
    return make_image_splits(
        csv.parent, paths, rows.y, rows.attr, rows.split, input_shape=(3, height, width),
        train_transform=train_transform, eval_transform=eval_transform,
        split_source=rows.split_source, empty_split_hint=rows.split_hint,
        description=(f"Images listed in {csv.name} ({len(frame):,} rows, label {label!r}, "
                     f"attribute {rows.attr_key!r}), {rows.how}; {size_note}, ImageNet "
                     f"normalization{', random crops and flips in training' if augment else ''}."),
        num_classes=len(rows.class_names), attr_names=rows.attr_names, attr_key=rows.attr_key,
        class_names=rows.class_names, name=name or csv.stem)

