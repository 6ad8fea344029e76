"""Waterbirds (Sagawa, Koh, Hashimoto, Liang, ICLR 2020): birds pasted on land or water scenes.

The published folder ``waterbird_complete95_forest2water2/`` holds ``metadata.csv`` (columns
``img_id, img_filename, y, split, place, place_filename``; ``y``: 0 landbird, 1 waterbird;
``place``: 0 land, 1 water; ``split``: 0 train, 1 val, 2 test) beside the bird folders that
``img_filename`` points into (``001.Black_footed_Albatross/Black_Footed_Albatross_0046_18.jpg``).
Groups are bird x place (``group = 2 * y + place``); 95% of training waterbirds are on water and
95% of landbirds on land, while val and test are balanced within each class (paper, Appendix C.1).
"""

from __future__ import annotations

import re
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd

from robustml._torchvision import import_torchvision
from robustml.data.contract import DataSplits
from robustml.data.checks import check_columns
from robustml.data.ondisk import check_files_exist, imagenet_transform, make_image_splits, transforms_v2
from robustml.data.missing import missing_data_error
from robustml.validation import check_bool, check_int

FOLDER = "waterbird_complete95_forest2water2"
URL = f"https://nlp.stanford.edu/data/dro/{FOLDER}.tar.gz"
COLUMNS = ("img_id", "img_filename", "y", "split", "place", "place_filename")
NUM_IMAGES = 11_788  # 4,795 train, 1,199 val, 5,794 test
# No checksum of the archive is pinned: no public source publishes one. The Group DRO repository
# (kohpangwei/group_DRO) gives only the URL above; WILDS' WaterbirdsDataset downloads a different
# archive (a CodaLab bundle) and lists no checksum for it either (``compressed_size: None``); and
# the archive cannot be fetched from the offline machines this project is built on to compute one.
# A download is checked against ``md5`` when the user gives one, and always by its content:
# metadata.csv must list NUM_IMAGES images, every one present.
MD5_PATTERN = re.compile(r"[0-9a-fA-F]{32}")


def waterbirds_transforms(image_size: int = 224, *, augment: bool = False) -> tuple:
    """Return the Group DRO code's ``(train, eval)`` transforms for CUB, scaled to ``image_size``.

    Eval (and train without ``augment``, the paper's setting): resize to a square of side
    ``image_size * 256 / 224``, center crop ``image_size``. With ``augment``: random resized crop
    (scale 0.7-1, ratio 3/4-4/3) and horizontal flip. ImageNet normalization in both.
    """
    v2 = transforms_v2()
    side = int(image_size * 256 / 224)
    eval_transform = imagenet_transform([v2.Resize((side, side)), v2.CenterCrop(image_size)])
    if not augment:
        return eval_transform, eval_transform
    train = imagenet_transform([v2.RandomResizedCrop(image_size, scale=(0.7, 1.0), ratio=(0.75, 4 / 3)),
                                v2.RandomHorizontalFlip()])
    return train, eval_transform


def find_waterbirds(root: str | Path) -> Path:
    """Return the folder holding ``metadata.csv``: ``root`` itself or ``root/<FOLDER>``."""
    root = Path(root)
    for folder in (root / FOLDER, root / "waterbirds" / FOLDER, root):
        if (folder / "metadata.csv").is_file():
            return folder
    raise missing_data_error(
        "waterbirds", root, [f"{FOLDER}/metadata.csv", f"{FOLDER}/<bird folders>/*.jpg"],
        layout=f"The published archive {URL} unpacks to {FOLDER}/ (metadata.csv beside 200 bird "
        "folders); put that folder (or its contents) under the data root.",
        download_hint="When online, pass download=True to download and unpack it.")


def download_waterbirds(root: str | Path, *, md5: str | None = None) -> Path:
    """Download and unpack the published archive into ``root``; return the data folder.

    The archive is checked against ``md5`` when given (torchvision's download utility); no public
    source publishes its checksum, so none is pinned. After unpacking, ``metadata.csv`` must list
    11,788 images, all present.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    utils = import_torchvision().datasets.utils
    archive = root / f"{FOLDER}.tar.gz"
    utils.download_url(URL, str(root), filename=archive.name, md5=md5)
    with tarfile.open(archive) as handle:
        handle.extractall(root, filter="data")
    folder = find_waterbirds(root)
    rows = len(pd.read_csv(folder / "metadata.csv"))
    if rows != NUM_IMAGES:
        raise ValueError(f"{folder / 'metadata.csv'} lists {rows} images after download, expected "
                         f"{NUM_IMAGES}; delete {archive} and download again")
    return folder


def waterbirds_splits(root: str | Path, *, download: bool = False, md5: str | None = None,
                      image_size: int = 224, augment: bool = False) -> DataSplits:
    """Return the published train/val/test splits of Waterbirds (on disk, lazily loaded).

    Args:
        root: Data root holding ``waterbird_complete95_forest2water2/`` (or that folder itself).
        download: Download the archive first when it is absent (needs internet).
        md5: Optional MD5 (32 hex digits) of the archive for ``download``; none is pinned because
            no public source publishes one.
        image_size: Side of the square input (224 in the paper).
        augment: Random crops and flips in training (the paper trains without).

    Raises:
        FileNotFoundError: The folder, or images ``metadata.csv`` lists, are missing.
        ValueError: ``metadata.csv`` lacks a column or holds values outside the published codes,
            a split is empty, or an option is out of range (argument, expected and received named).
        TypeError: An option has the wrong type.
    """
    image_size = check_int("image_size", image_size, minimum=1)
    augment = check_bool("augment", augment)
    download = check_bool("download", download)
    if md5 is not None and not (isinstance(md5, str) and MD5_PATTERN.fullmatch(md5)):
        raise ValueError(f"md5 must be None or 32 hexadecimal digits, got {md5!r}")
    try:
        folder = find_waterbirds(root)
    except FileNotFoundError:
        if not download:
            raise
        folder = download_waterbirds(root, md5=md5)
    csv = folder / "metadata.csv"
    frame = pd.read_csv(csv)
    check_columns(list(frame.columns), COLUMNS, source=str(csv))
    for column, allowed in (("y", {0, 1}), ("place", {0, 1}), ("split", {0, 1, 2})):
        bad = sorted(set(frame[column].tolist()) - allowed)
        if bad:
            raise ValueError(f"{csv} column {column!r} must hold values in {sorted(allowed)}, got "
                             f"{bad[:5]}")
    paths = frame["img_filename"].to_numpy(dtype=object)
    check_files_exist(folder, paths, csv)
    train_transform, eval_transform = waterbirds_transforms(image_size, augment=augment)
    return make_image_splits(
        folder, paths, frame["y"].to_numpy(np.int64), frame["place"].to_numpy(np.int64),
        frame["split"].to_numpy(np.int64), input_shape=(3, image_size, image_size),
        train_transform=train_transform, eval_transform=eval_transform,
        split_source=f"{csv}, column 'split'",
        empty_split_hint="The published metadata.csv has rows of every split (0, 1 and 2).",
        description=(f"Waterbirds (Sagawa et al. 2020) from {folder}: groups bird x place, the "
                     f"published splits; {image_size}x{image_size} inputs, ImageNet normalization"
                     f"{', random crops and flips in training' if augment else ''}."),
        num_classes=2, class_names=("landbird", "waterbird"), attr_names=("land", "water"),
        attr_key="place", name="waterbirds")
