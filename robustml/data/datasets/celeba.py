"""CelebA (Liu et al., ICCV 2015) with a target and a spurious attribute chosen by name.

The official files, in ``torchvision.datasets.CelebA``'s folder ``<root>/celeba/``:
``img_align_celeba/`` (202,599 JPEGs, 178x218), ``list_attr_celeba.txt`` (line 1: the number of
images; line 2: the 40 attribute names; then ``<file> <40 values of -1 or 1>``) and
``list_eval_partition.txt`` (``<file> <0 train | 1 val | 2 test>``). The two text files are read
directly by :mod:`~robustml.data.datasets.celeba_files` (metadata only; no image is opened to
build the splits). Groups are target x spurious
attribute; the Group DRO paper's default is ``Blond_Hair`` x ``Male`` (Sagawa et al., ICLR 2020).
"""

from __future__ import annotations

from pathlib import Path

from robustml._torchvision import import_torchvision
from robustml.data.contract import DataSplits
from robustml.data.datasets.celeba_files import (ATTR_FILE, PARTITION_FILE, check_attribute,
                                                 read_attributes, read_partition)
from robustml.data.missing import missing_data_error
from robustml.data.ondisk import (check_files_exist, imagenet_transform, make_image_splits,
                                  transforms_v2)
from robustml.validation import check_bool, check_int

IMAGES = "img_align_celeba"
ORIG_MIN_SIDE = 178  # the aligned images are 178 wide, 218 high


def celeba_transforms(image_size: int = 224, *, augment: bool = False) -> tuple:
    """Return the Group DRO code's ``(train, eval)`` transforms for CelebA at ``image_size``.

    Eval (and train without ``augment``, the paper's setting): center crop 178x178 (the shorter
    side), resize to ``image_size``. With ``augment``: random resized crop (scale 0.7-1, ratio
    1-4/3) and horizontal flip. ImageNet normalization in both.
    """
    v2 = transforms_v2()
    eval_transform = imagenet_transform([v2.CenterCrop(ORIG_MIN_SIDE), v2.Resize(image_size)])
    if not augment:
        return eval_transform, eval_transform
    train = imagenet_transform([v2.RandomResizedCrop(image_size, scale=(0.7, 1.0), ratio=(1.0, 4 / 3)),
                                v2.RandomHorizontalFlip()])
    return train, eval_transform


def find_celeba(root: str | Path, *, images: bool = True) -> Path:
    """Return the folder with the official files: ``root/celeba`` (torchvision's layout) or ``root``."""
    root = Path(root)
    needed = [ATTR_FILE, PARTITION_FILE] + ([IMAGES] if images else [])
    for folder in (root / "celeba", root):
        if all((folder / name).exists() for name in needed):
            return folder
    raise missing_data_error(
        "celeba", root, [f"celeba/{name}" for name in needed],
        layout="The official CelebA files (torchvision.datasets.CelebA's folder): img_align_celeba/ with "
        "the 202,599 aligned JPEGs, list_attr_celeba.txt and list_eval_partition.txt.",
        download_hint="When online, pass download=True to download them with torchvision (checked "
                      "against its MD5 sums).")


def celeba_splits(root: str | Path, *, target: str = "Blond_Hair", spurious: str = "Male",
                  download: bool = False, image_size: int = 224, augment: bool = False) -> DataSplits:
    """Return CelebA's official train/val/test splits with groups ``target`` x ``spurious``.

    Args:
        root: Data root holding ``celeba/`` (torchvision's layout) or the files themselves.
        target: Attribute predicted (``y = 1`` where it is present).
        spurious: Attribute forming the groups (``attr = 1`` where present).
        download: Download the official files with torchvision first (needs internet).
        image_size: Side of the square input (224 in the paper).
        augment: Random crops and flips in training (the paper trains without).

    Raises:
        FileNotFoundError: The files, or images the attribute file lists, are missing.
        ValueError: An attribute name is unknown (the 40 valid ones are listed), or a file is
            malformed (the file, line and column are named).
    """
    image_size = check_int("image_size", image_size, minimum=1)
    augment = check_bool("augment", augment)
    if check_bool("download", download):
        import_torchvision().datasets.CelebA(str(root), split="all", download=True)
    folder = find_celeba(root)
    attributes = read_attributes(folder / ATTR_FILE)
    names = [str(c) for c in attributes.columns]
    check_attribute("target", target, names)
    check_attribute("spurious", spurious, names)
    if target == spurious:
        raise ValueError(f"spurious must differ from target, got spurious={spurious!r} and "
                         f"target={target!r}")
    split = read_partition(folder / PARTITION_FILE, attributes.index)
    filenames = attributes.index.to_numpy(dtype=object)
    check_files_exist(folder / IMAGES, filenames, folder / ATTR_FILE)
    train_transform, eval_transform = celeba_transforms(image_size, augment=augment)
    return make_image_splits(
        folder / IMAGES, filenames, attributes[target].to_numpy(), attributes[spurious].to_numpy(),
        split, input_shape=(3, image_size, image_size), train_transform=train_transform,
        eval_transform=eval_transform, split_source=str(folder / PARTITION_FILE),
        empty_split_hint="The official partition lists images of every split.",
        description=(f"CelebA from {folder}: target {target} (y=1 present) x spurious {spurious}, "
                     f"the official partition; {image_size}x{image_size} inputs, ImageNet "
                     f"normalization{', random crops and flips in training' if augment else ''}."),
        num_classes=2, class_names=(f"not_{target}", target), attr_names=(f"not_{spurious}", spurious),
        attr_key=spurious, name="celeba")
