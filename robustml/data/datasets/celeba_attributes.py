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
import torch

from robustml.data.contract import DataSplits, GroupedTensorDataset
from robustml.data.datasets.celeba_files import (ATTR_FILE, PARTITION_FILE, PARTITIONS, check_attribute,
                                                 read_attributes, read_partition)
from robustml.data.datasets.colored import check_flag
from robustml.data.checks import as_names, empty_group_note, format_counts
from robustml.data.missing import missing_data_error



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
        raise missing_data_error(
            "CelebA attributes", folder, missing,
            layout=f"Expected layout (torchvision's CelebA folder, no images needed): "
                   f"<root>/celeba/{ATTR_FILE} (a count line, a header of the 40 attribute names, "
                   f"then '<image> v1 ... v40' with values -1/1) and <root>/celeba/{PARTITION_FILE} "
                   f"('<image> 0|1|2').",
            download_hint="When online, pass download=True to download them from the official "
                          "Google Drive.")
    return folder


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
        check_attribute(argument, name, valid)
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
    note = empty_group_note(datasets)
    splits = DataSplits(datasets["train"], datasets["val"], datasets["test"],
                        description=" ".join(part for part in (description, note) if part))
    splits.feature_names = inputs
    return splits
