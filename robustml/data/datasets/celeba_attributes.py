"""CelebA's attribute annotations as a tabular grouped dataset: predict one attribute from the others.

Liu, Luo, Wang, Tang, "Deep Learning Face Attributes in the Wild", ICCV 2015. The two official text
files (``list_attr_celeba.txt``: 40 binary attributes of 202,599 faces, values -1/1;
``list_eval_partition.txt``: 0 = train, 1 = val, 2 = test) are read directly, without images.
The target attribute (default ``Blond_Hair``) is predicted from the other attributes; the spurious
attribute (default ``Male``, the groups of Sagawa et al., ICLR 2020) defines the groups with the
target and is excluded from the inputs. Other attributes still correlate with it (``No_Beard``,
``Heavy_Makeup``, ...), which is the shortcut: scikit-learn's ``LogisticRegression`` reaches 86%
average test accuracy and about 1% on blond men.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from robustml.data.contract import DataSplits, GroupedTensorDataset
from robustml.data.datasets.colored import check_flag
from robustml.data.datasets.tabular import as_names, empty_group_warnings, format_counts

ATTR_FILE = "list_attr_celeba.txt"
PARTITION_FILE = "list_eval_partition.txt"
NUM_ATTRIBUTES = 40
PARTITIONS = {"train": 0, "val": 1, "test": 2}


def _download(folder: Path) -> None:
    """Download the two text files with torchvision's CelebA file ids and md5 checksums."""
    from robustml._torchvision import import_torchvision

    datasets = import_torchvision().datasets
    for file_id, md5, filename in datasets.CelebA.file_list:
        if filename in (ATTR_FILE, PARTITION_FILE) and not (folder / filename).is_file():
            datasets.utils.download_file_from_google_drive(file_id, str(folder), filename, md5)


def find_celeba(root: str | Path, download: bool = False) -> Path:
    """Return ``<root>/celeba``, the folder that holds the two text files (torchvision's layout).

    Raises:
        FileNotFoundError: A file is missing and ``download`` is False; the message names the
            expected files and layout and how to point robustml at them.
    """
    folder = Path(root).expanduser().resolve() / "celeba"
    missing = [f for f in (ATTR_FILE, PARTITION_FILE) if not (folder / f).is_file()]
    if missing and download:
        _download(folder)
        missing = []
    if missing:
        raise FileNotFoundError(
            f"CelebA attributes not found: {folder} lacks {', '.join(missing)}. Expected layout "
            f"(torchvision's CelebA folder, no images needed): <root>/celeba/{ATTR_FILE} (a count "
            f"line, a header of the 40 attribute names, then '<image> v1 ... v40' with values "
            f"-1/1) and <root>/celeba/{PARTITION_FILE} ('<image> 0|1|2'). Point robustml at <root> "
            f"with data.root=<root> or the ROBUSTML_DATA variable, or set data.download=true to "
            f"download them from the official Google Drive (needs internet).")
    return folder


def read_attributes(path: str | Path) -> pd.DataFrame:
    """Read ``list_attr_celeba.txt``: a frame indexed by image name, 40 int8 columns of 0/1.

    Handles LF and CRLF line ends. Values -1 become 0.

    Raises:
        ValueError: The count line, the header or a row is malformed, or a value is not -1/1;
            the message names the file and the line or column.
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
    except (ValueError, pd.errors.ParserError) as error:
        raise ValueError(f"{path}: rows must be '<image> v1 ... v{NUM_ATTRIBUTES}' with integer "
                         f"values -1/1 ({error})") from error
    if frame.isna().any().any():
        column = frame.columns[frame.isna().any()][0]
        raise ValueError(f"{path}, column {column!r}: some rows have fewer than "
                         f"{NUM_ATTRIBUTES} values")
    bad = ~frame.isin((-1, 1))
    if bad.any().any():
        column = frame.columns[bad.any()][0]
        row = frame.index[bad[column].to_numpy()][0]
        raise ValueError(f"{path}, image {row!r}, column {column!r}: expected -1 or 1, got "
                         f"{frame.at[row, column]}")
    if len(frame) != count:
        raise ValueError(f"{path}: line 1 announces {count} images but {len(frame)} rows follow")
    return (frame == 1).astype(np.int8)


def read_partition(path: str | Path, images: pd.Index) -> np.ndarray:
    """Read ``list_eval_partition.txt``; return the partition (0/1/2) of each of ``images``.

    Raises:
        ValueError: A value is not 0/1/2, or the file does not list exactly ``images``.
    """
    path = Path(path)
    try:
        frame = pd.read_csv(path, sep=r"\s+", header=None, names=["image", "partition"],
                            index_col="image", dtype={"partition": np.int64})
    except (ValueError, pd.errors.ParserError) as error:
        raise ValueError(f"{path}: rows must be '<image> 0|1|2' ({error})") from error
    bad = ~frame["partition"].isin(PARTITIONS.values())
    if bad.any():
        raise ValueError(f"{path}, image {frame.index[bad.to_numpy()][0]!r}: partition must be "
                         f"0, 1 or 2, got {frame['partition'][bad].iloc[0]}")
    missing, extra = images.difference(frame.index), frame.index.difference(images)
    if len(missing) or len(extra):
        raise ValueError(f"{path} must list the images of {ATTR_FILE}: {len(missing)} missing "
                         f"(first {list(missing[:3])}), {len(extra)} extra (first {list(extra[:3])})")
    return frame["partition"].reindex(images).to_numpy()


def _check_attribute(argument: str, name: str, valid: Sequence[str]) -> None:
    if name not in valid:
        raise ValueError(f"{argument} must be one of CelebA's {len(valid)} attributes, got "
                         f"{name!r}; valid names: {', '.join(valid)}")


def celeba_attributes_splits(
    root: str | Path,
    *,
    target: str = "Blond_Hair",
    spurious: str = "Male",
    exclude: str | Sequence[str] = (),
    download: bool = False,
) -> DataSplits:
    """Build CelebA attributes: predict ``target`` from the other attributes, groups target x spurious.

    Splits are CelebA's official partition (162,770 / 19,867 / 19,962 images). Inputs are the
    attributes other than ``target``, ``spurious`` and ``exclude``, as 0/1 floats in the file's
    column order (38 with the defaults). Labels and attribute: 1 where the file says 1.

    Args:
        root: Folder that holds ``celeba/list_attr_celeba.txt`` and ``celeba/list_eval_partition.txt``.
        target: Attribute to predict (the label).
        spurious: Attribute that forms the groups with the label; never an input.
        exclude: More attributes left out of the inputs.
        download: Download the two files from the official Google Drive (torchvision's file ids
            and md5 checksums) when they are missing.

    Returns:
        Splits named ``"celeba_attributes"``: ``x`` float32 ``(N, F)``, ``y`` and ``attr`` int64
        ``(N,)``; group names like ``"y=Blond_Hair,Male=yes"``. The description names the target,
        the excluded attributes, the partition sizes and every split's group counts.

    Raises:
        FileNotFoundError: The files are missing and ``download`` is False.
        ValueError: An attribute name is unknown (the 40 valid names are listed), or a file is
            malformed (file and line or column named).
    """
    download = check_flag("download", download)
    exclude = as_names("exclude", exclude)
    folder = find_celeba(root, download=download)
    attributes = read_attributes(folder / ATTR_FILE)
    valid = [str(c) for c in attributes.columns]
    for argument, name in (("target", target), ("spurious", spurious),
                           *(("exclude", name) for name in exclude)):
        _check_attribute(argument, name, valid)
    if target == spurious:
        raise ValueError(f"target and spurious must differ, got {target!r} for both")
    partition = read_partition(folder / PARTITION_FILE, attributes.index)
    dropped = {target, spurious, *exclude}
    inputs = [name for name in valid if name not in dropped]
    if not inputs:
        raise ValueError(f"no input attributes are left after excluding {sorted(dropped)}")
    x = torch.from_numpy(attributes[inputs].to_numpy(dtype=np.float32))
    y = torch.from_numpy(attributes[target].to_numpy(dtype=np.int64))
    attr = torch.from_numpy(attributes[spurious].to_numpy(dtype=np.int64))
    datasets = {}
    for split, code in PARTITIONS.items():
        idx = torch.from_numpy(np.flatnonzero(partition == code))
        datasets[split] = GroupedTensorDataset(
            x[idx], y[idx], attr[idx], num_classes=2, attr_names=("no", "yes"), attr_key=spurious,
            class_names=(f"not_{target}", target), name="celeba_attributes")
    counts = " ".join(f"{s.capitalize()} group counts: {format_counts(d)}." for s, d in datasets.items())
    others = f" and {', '.join(exclude)}" if exclude else ""
    description = (
        f"CelebA attributes (Liu et al. 2015; {ATTR_FILE} and {PARTITION_FILE}, no images): "
        f"predict {target} from the other {len(inputs)} binary attributes; the spurious "
        f"attribute {spurious}{others} is not an input. Official partition: train "
        f"{len(datasets['train']):,}, val {len(datasets['val']):,}, test "
        f"{len(datasets['test']):,} images; no rows removed. {counts}")
    warnings = empty_group_warnings(datasets)
    splits = DataSplits(datasets["train"], datasets["val"], datasets["test"],
                        description=" ".join([description, *warnings]))
    splits.feature_names = inputs
    return splits
