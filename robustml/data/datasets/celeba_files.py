"""The parser of CelebA's two official text files, shared by the image and the attribute datasets.

``list_attr_celeba.txt``: line 1 the number of images, line 2 the 40 attribute names, then one
line ``<image> v1 ... v40`` per image with values -1 or 1 (CRLF line ends in the official file).
``list_eval_partition.txt``: one line ``<image> 0|1|2`` per image (train, val, test). Both are
read with pandas' C parser; a malformed file is then scanned line by line so that the error names
the file, the line and the column (Liu, Luo, Wang, Tang, ICCV 2015).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

ATTR_FILE = "list_attr_celeba.txt"
PARTITION_FILE = "list_eval_partition.txt"
NUM_ATTRIBUTES = 40
PARTITIONS = {"train": 0, "val": 1, "test": 2}


def _first_bad_line(path: Path, columns: Sequence[str], allowed: Sequence[str], *,
                    skip: int) -> str:
    """Return ``"<path>, line L, column C: ..."`` for the first malformed data line ("" if none)."""
    with path.open() as handle:
        for number, line in enumerate(handle, start=1):
            if number <= skip or not line.strip():
                continue
            fields = line.split()
            if len(fields) != len(columns) + 1:
                return (f"{path}, line {number}: expected {len(columns) + 1} fields ('<image>' and "
                        f"{len(columns)} value(s)), got {len(fields)}: {line.strip()[:80]!r}")
            for column, value in zip(columns, fields[1:]):
                if value not in allowed:
                    return (f"{path}, line {number} (image {fields[0]!r}), column {column!r}: "
                            f"expected one of {list(allowed)}, got {value!r}")
    return ""


def read_attributes(path: str | Path) -> pd.DataFrame:
    """Read ``list_attr_celeba.txt``: a frame indexed by image name, 40 int8 columns of 0/1.

    Handles LF and CRLF line ends. Values -1 become 0.

    Raises:
        ValueError: The count line, the header or a row is malformed, or a value is not -1/1;
            the message names the file and the line (and the column of a bad value).
    """
    path = Path(path)
    with path.open() as f:
        count_line, header_line = f.readline(), f.readline()
    try:
        count = int(count_line)
    except ValueError:
        raise ValueError(f"{path}, line 1: expected the number of images, got "
                         f"{count_line.strip()[:80]!r}") from None
    names = header_line.split()
    if len(names) != NUM_ATTRIBUTES or len(set(names)) != NUM_ATTRIBUTES:
        raise ValueError(f"{path}, line 2: expected {NUM_ATTRIBUTES} distinct attribute names, got "
                         f"{len(names)}: {header_line.strip()[:120]!r}")
    try:
        frame = pd.read_csv(path, sep=r"\s+", skiprows=2, header=None, names=["image", *names],
                            index_col="image", dtype={name: np.int8 for name in names})
        parsed = not frame.isna().any().any() and frame.isin((-1, 1)).all().all()
    except (ValueError, pd.errors.ParserError):
        parsed = False
    if not parsed:
        raise ValueError(_first_bad_line(path, names, ("-1", "1"), skip=2)
                         or f"{path}: rows must be '<image> v1 ... v{NUM_ATTRIBUTES}' with values -1/1")
    if len(frame) != count:
        raise ValueError(f"{path}: line 1 announces {count} images but {len(frame)} rows follow")
    return (frame == 1).astype(np.int8)


def read_partition(path: str | Path, images: pd.Index) -> np.ndarray:
    """Read ``list_eval_partition.txt``; return the partition (0/1/2) of each of ``images``.

    Raises:
        ValueError: A line is malformed or a value is not 0/1/2 (file, line and value named), or
            the file does not list exactly ``images``.
    """
    path = Path(path)
    try:
        frame = pd.read_csv(path, sep=r"\s+", header=None, names=["image", "partition"],
                            index_col="image", dtype={"partition": np.int64})
        parsed = frame["partition"].isin(PARTITIONS.values()).all()
    except (ValueError, pd.errors.ParserError):
        parsed = False
    if not parsed:
        raise ValueError(_first_bad_line(path, ["partition"], ("0", "1", "2"), skip=0)
                         or f"{path}: rows must be '<image> 0|1|2'")
    missing, extra = images.difference(frame.index), frame.index.difference(images)
    if len(missing) or len(extra):
        raise ValueError(f"{path} must list the images of {ATTR_FILE}: {len(missing)} missing "
                         f"(first {list(missing[:3])}), {len(extra)} extra (first {list(extra[:3])})")
    return frame["partition"].reindex(images).to_numpy()


def check_attribute(argument: str, name: str, valid: Sequence[str]) -> None:
    """Raise ``ValueError`` unless ``name`` is one of CelebA's attributes; list the valid ones."""
    if name not in valid:
        raise ValueError(f"{argument} must be one of CelebA's {len(valid)} attributes, got "
                         f"{name!r}; valid names: {', '.join(valid)}")
