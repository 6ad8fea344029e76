"""On-disk grouped datasets: metadata arrays in memory, images loaded lazily through a transform.

The design follows WILDS (Koh et al., ICML 2021): a dataset is a metadata array (one row per
example) beside a lazy ``get_input(i)``. Everything that needs only labels and groups (counts,
samplers, metrics, cleaning's guard, reports) reads the metadata tensors and never opens a file.

A sample key is an index ``i`` or a pair ``(i, seed)``; with a seed, the random parts of the
transform draw from a generator seeded with it, so augmented inputs are a function of the key
alone (the same for any number of workers and after a resume). The trainer's DataLoader path
passes such keys (:class:`~robustml.data.samplers.EpochBatchSampler`).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robustml._torchvision import import_torchvision
from robustml.data.checks import check_split_sizes, empty_group_note
from robustml.data.contract import Batch, DataSplits, GroupedDataset, in_memory_error

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def load_rgb(path: str | Path) -> Any:
    """Open an image file with PIL and return it as an RGB ``PIL.Image``."""
    from PIL import Image

    with Image.open(path) as image:
        return image.convert("RGB")


def transforms_v2() -> Any:
    """Return ``torchvision.transforms.v2`` (imported through the CPU-build shim)."""
    import_torchvision()
    return importlib.import_module("torchvision.transforms.v2")


def imagenet_transform(steps: Sequence[Any]) -> Any:
    """Return ``v2.Compose([ToImage, *steps, ToDtype(float32, scale), Normalize(ImageNet)])``.

    Args:
        steps: torchvision ``transforms.v2`` geometric steps (resize, crops, flips) applied to the
            uint8 image tensor.
    """
    v2 = transforms_v2()
    return v2.Compose([v2.ToImage(), *steps, v2.ToDtype(torch.float32, scale=True),
                       v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


class OnDiskGroupedDataset(GroupedDataset):
    """A grouped dataset whose inputs are image files read by ``__getitem__``.

    Args:
        root: Folder the ``paths`` are relative to.
        paths: Relative path of each example's file, length ``N``.
        y: Integer class labels, shape ``(N,)``.
        attr: Spurious attribute, shape ``(N,)``.
        input_shape: Shape of one transformed input, e.g. ``(3, 224, 224)`` (declared, so that
            building a model never opens a file).
        transform: Maps a loaded image to a tensor of ``input_shape`` (training transform of a
            training split).
        eval_transform: Transform used for evaluation and feature extraction (default:
            ``transform``); :meth:`for_eval` switches to it.
        loader: Maps a file path to an image (default: PIL, RGB).
        **metadata: The keyword arguments of :class:`~robustml.data.contract.GroupedDataset`.
    """

    def __init__(self, root: str | Path, paths: Sequence[str], y: torch.Tensor, attr: torch.Tensor,
                 *, input_shape: Sequence[int], transform: Callable[[Any], torch.Tensor],
                 eval_transform: Callable[[Any], torch.Tensor] | None = None,
                 loader: Callable[[str | Path], Any] = load_rgb, **metadata: Any) -> None:
        super().__init__(y, attr, **metadata)
        self.paths = np.asarray(paths, dtype=object)
        if self.paths.shape != (len(self),):
            raise ValueError(f"paths must hold {len(self)} entries to match y, got {self.paths.shape[0]}")
        self.root = Path(root)
        self._input_shape = tuple(int(s) for s in input_shape)
        self.transform = transform
        self.eval_transform = transform if eval_transform is None else eval_transform
        self.loader = loader

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self._input_shape

    @property
    def x(self) -> torch.Tensor:
        """Not available on disk: raises :class:`~robustml.data.contract.InMemoryRequired`."""
        raise in_memory_error(self, "reading dataset.x (all inputs as one tensor)")

    # Access ---------------------------------------------------------------------------------
    def get_input(self, i: int) -> torch.Tensor:
        """Load example ``i``'s file and return it transformed, shape ``input_shape``."""
        return self.transform(self.loader(self.root / self.paths[int(i)]))

    def __getitem__(self, key: int | tuple[int, int]) -> Batch:
        i, seed = (key, None) if not isinstance(key, (tuple, list)) else (int(key[0]), int(key[1]))
        if seed is None:
            x = self.get_input(i)
        else:
            with torch.random.fork_rng(devices=[]):
                # The CPU generator only (what the transforms draw from): torch.manual_seed would
                # also queue a seeding of every accelerator backend, about 5% of an epoch.
                torch.default_generator.manual_seed(seed)
                x = self.get_input(i)
        sample = {name: value[i] for name, value in {**self.metadata(), **self.extras}.items()}
        sample["x"] = x
        return sample

    # Derived datasets -------------------------------------------------------------------------
    def for_eval(self) -> OnDiskGroupedDataset:
        """Return this dataset with ``eval_transform`` as its transform (evaluation, features)."""
        return self.replace(transform=self.eval_transform)

    def subset(self, idx: torch.Tensor) -> OnDiskGroupedDataset:
        """Return a dataset of the examples at ``idx``; ``index`` restarts at 0 in the subset."""
        idx = torch.as_tensor(idx, dtype=torch.int64, device="cpu")
        return self.replace(paths=self.paths[idx.numpy()], y=self.y[idx], attr=self.attr[idx],
                            env=None if self.env is None else self.env[idx],
                            extras={key: value[idx] for key, value in self.extras.items()})

    def to(self, device: torch.device | str) -> OnDiskGroupedDataset:
        """Return ``self``: metadata stays on the CPU beside the DataLoader; batches move instead."""
        return self

    def replace(self, **fields: Any) -> OnDiskGroupedDataset:
        """Return a copy with some constructor arguments replaced (e.g. ``y=`` new labels)."""
        kwargs = dict(root=self.root, paths=self.paths, y=self.y, attr=self.attr,
                      input_shape=self.input_shape, transform=self.transform,
                      eval_transform=self.eval_transform, loader=self.loader,
                      num_classes=self.num_classes, attr_names=self.attr_names,
                      attr_key=self.attr_key, env=self.env, env_names=self.env_names,
                      class_names=self.class_names, counterfactual=self.counterfactual,
                      name=self.name, extras=self.extras, info=self.info)
        kwargs.update(fields)
        return OnDiskGroupedDataset(**kwargs)


# Checks of on-disk loaders -------------------------------------------------------------------
def check_files_exist(root: Path, paths: Sequence[str], listed_in: Path) -> None:
    """Raise ``FileNotFoundError`` naming the first few listed files that are absent, and how many.

    One directory listing per folder (no file is opened), so 200,000 paths take well under a
    second.
    """
    present: dict[str, set[str]] = {}
    missing = []
    for path in paths:
        folder, name = os.path.split(str(path))
        if folder not in present:
            directory = root / folder
            present[folder] = set(os.listdir(directory)) if directory.is_dir() else set()
        if name not in present[folder]:
            missing.append(str(path))
    if missing:
        raise FileNotFoundError(
            f"{len(missing):,} of {len(paths):,} files listed in {listed_in} are missing under "
            f"{root}; first: {', '.join(missing[:5])}")


def image_sizes(root: Path, paths: Sequence[str]) -> dict[tuple[int, int], tuple[int, str]]:
    """Return each ``(width, height)`` of the images at ``paths`` under ``root``, with how many
    images have it and the first of them. PIL reads each file's header only (no pixel is decoded).
    """
    from PIL import Image

    sizes: dict[tuple[int, int], tuple[int, str]] = {}
    for path in paths:
        with Image.open(root / path) as image:
            count, first = sizes.get(image.size, (0, str(path)))
            sizes[image.size] = (count + 1, first)
    return sizes


SPLIT_IDS = {"train": 0, "val": 1, "test": 2}


def make_image_splits(root: Path, paths: np.ndarray, y: np.ndarray, attr: np.ndarray,
                      split: np.ndarray, *, input_shape: Sequence[int], train_transform: Any,
                      eval_transform: Any, description: str, split_source: str,
                      empty_split_hint: str = "", **metadata: Any) -> DataSplits:
    """Return train/val/test :class:`OnDiskGroupedDataset` s from per-example metadata arrays.

    Args:
        root: Folder the ``paths`` are relative to.
        paths: Relative file path per example, shape ``(N,)``.
        y: Class ids, shape ``(N,)``.
        attr: Spurious-attribute ids, shape ``(N,)``.
        split: Split id per example (``SPLIT_IDS``: 0 train, 1 val, 2 test), shape ``(N,)``.
        input_shape: Shape of one transformed input.
        train_transform: The training split's transform (random augmentation allowed).
        eval_transform: The evaluation transform (val and test, and evaluation of train).
        description: Report sentence on the data; per-split sizes and empty groups are appended.
        split_source: Where ``split`` came from (file and column), named when a split is empty.
        empty_split_hint: What to change when a split is empty, for the message.
        **metadata: ``num_classes``, ``attr_names``, ``attr_key``, ``class_names``, ``name``.

    Raises:
        ValueError: A split has no example (``split_source`` and every split's size are named).
    """
    check_split_sizes({name: int((split == code).sum()) for name, code in SPLIT_IDS.items()},
                      source=split_source, how=empty_split_hint)
    splits = {}
    for split_name, split_id in SPLIT_IDS.items():
        rows = np.flatnonzero(split == split_id)
        transform = train_transform if split_name == "train" else eval_transform
        splits[split_name] = OnDiskGroupedDataset(
            root, paths[rows], torch.as_tensor(y[rows], dtype=torch.int64),
            torch.as_tensor(attr[rows], dtype=torch.int64), input_shape=input_shape,
            transform=transform, eval_transform=eval_transform, **metadata)
    sizes = ", ".join(f"{name} {len(ds):,}" for name, ds in splits.items())
    note = empty_group_note(splits)
    return DataSplits(**splits, description=" ".join(
        part for part in (description, f"Splits: {sizes}.", note) if part))
