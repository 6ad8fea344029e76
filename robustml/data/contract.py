"""The grouped-data contract: samples are dicts, groups are ``y * num_attrs + attr``.

A sample is a dict with ``x``, ``y`` (int class), ``group`` (int in ``[0, num_groups)``), ``attr``
(spurious attribute), ``index`` (position in the dataset) and, where the dataset has environments,
``env``.

Two kinds of dataset share this contract (:class:`GroupedDataset`). Both keep the metadata arrays
(``y``, ``attr``, ``group``, ``env``, ``index``) in memory as int64 tensors, so group counts,
samplers, metrics, label cleaning's guard and reports never load an input:

- :class:`GroupedTensorDataset` (in memory): ``x`` is one tensor; the full-batch protocol and
  batch-level edits of all inputs (counterfactual augmentation datasets, the stress test) use it.
- :class:`~robustml.data.ondisk.OnDiskGroupedDataset`: ``x`` is loaded lazily by ``__getitem__``
  through a per-split transform, in the style of WILDS (a metadata array beside ``get_input``).
  Reading ``dataset.x`` raises :class:`InMemoryRequired`, which names the dataset and what to do.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import Dataset

from robustml.validation import check_ids, check_int

Batch = dict[str, torch.Tensor]

#: The per-example fields of every sample; ``extras`` must use other keys.
BUILTIN_FIELDS = frozenset({"x", "y", "group", "attr", "index", "env"})


class InMemoryRequired(TypeError):
    """Raised when a piece that needs every input in one tensor gets an on-disk dataset."""


class GroupedDataset(Dataset):
    """The metadata half of the contract, shared by in-memory and on-disk datasets.

    ``group`` and ``index`` are derived here, on the device of ``y``; subclasses supply the inputs.

    Args:
        y: Integer class labels, shape ``(N,)``, values in ``[0, num_classes)``.
        attr: Spurious attribute, shape ``(N,)``, values in ``[0, len(attr_names))``.
        num_classes: Number of classes.
        attr_names: Name of each spurious-attribute value, e.g. ``("red", "green")``.
        attr_key: Name of the spurious attribute, used in group names (``"y=1,color=red"``).
        env: Optional environment ids, shape ``(N,)``.
        env_names: Names of the environments, required with ``env``.
        class_names: Optional class names for reports (default: the class ids).
        counterfactual: Optional rule that says how the spurious attribute of a batch is changed
            (see :mod:`robustml.augment`); ``None`` when the dataset declares none.
        name: Short name for reports.
        extras: Optional per-example tensors, ``{key: tensor of shape (N, ...)}``, that every batch
            carries under ``key`` beside the metadata and that :meth:`subset`, ``to`` and
            ``replace`` keep aligned (e.g. ``x_cf``, a text's precomputed counterfactual, or
            ``identity``, membership in overlapping evaluation groups). A key must not be a
            built-in field (``x``, ``y``, ``group``, ``attr``, ``index``, ``env``).
        info: Optional dataset-level facts that are not per example (a tokenizer's name, the
            names of ``extras`` columns), kept by every derived dataset.
    """

    #: Whether every input is in memory as one tensor ``x`` (the full-batch protocol needs it).
    in_memory = False

    def __init__(self, y: torch.Tensor, attr: torch.Tensor, *, num_classes: int,
                 attr_names: Sequence[str], attr_key: str = "attr", env: torch.Tensor | None = None,
                 env_names: Sequence[str] | None = None, class_names: Sequence[str] | None = None,
                 counterfactual: Any = None, name: str = "",
                 extras: dict[str, torch.Tensor] | None = None, info: dict[str, Any] | None = None) -> None:
        check_ids("y", y, check_int("num_classes", num_classes, minimum=1))
        n = y.shape[0]
        extras = dict(extras or {})
        for key, value in extras.items():
            if key in BUILTIN_FIELDS:
                raise ValueError(f"extras must not use a built-in field name {sorted(BUILTIN_FIELDS)}, "
                                 f"got {key!r}")
            if not isinstance(value, torch.Tensor) or value.dim() == 0 or value.shape[0] != n:
                shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
                raise ValueError(f"extras[{key!r}] must be a tensor of shape ({n}, ...) to match y, "
                                 f"got {shape}")
        check_ids("attr", attr, len(attr_names), size=n, match="y")
        if env is not None:
            if env_names is None:
                raise ValueError("env_names is required when env is given")
            check_ids("env", env, len(env_names), size=n, match="y")
        self.y, self.attr, self.env = y, attr, env
        self.num_classes = int(num_classes)
        self.attr_names = tuple(attr_names)
        self.attr_key = attr_key
        self.env_names = tuple(env_names) if env_names is not None else None
        self.class_names = tuple(class_names) if class_names is not None else tuple(
            str(c) for c in range(num_classes))
        self.counterfactual = counterfactual
        self.name = name
        self.extras = extras
        self.info = dict(info or {})
        self.group = y * self.num_attrs + attr
        self.index = torch.arange(n, device=y.device)
        self._extra_partitions: dict[str, Any] = {}  # see with_partition

    # Metadata -------------------------------------------------------------------------------
    @property
    def num_attrs(self) -> int:
        return len(self.attr_names)

    @property
    def num_groups(self) -> int:
        return self.num_classes * self.num_attrs

    @property
    def num_envs(self) -> int:
        return 0 if self.env_names is None else len(self.env_names)

    @property
    def group_names(self) -> list[str]:
        return [f"y={c},{self.attr_key}={a}" for c in self.class_names for a in self.attr_names]

    @property
    def device(self) -> torch.device:
        """The device of the metadata tensors (and, in memory, of ``x``)."""
        return self.y.device

    def group_counts(self) -> torch.Tensor:
        """Return the number of examples in each group, shape ``(num_groups,)``, int64."""
        return torch.bincount(self.group, minlength=self.num_groups)

    def env_counts(self) -> torch.Tensor:
        """Return the number of examples in each environment, shape ``(num_envs,)``, int64."""
        if self.env is None:
            raise ValueError(f"dataset {self.name!r} has no environments (env is None)")
        return torch.bincount(self.env, minlength=self.num_envs)

    @property
    def partitions(self) -> dict[str, tuple[torch.Tensor, int]]:
        """Every partition of the split by name: ``{name: (ids (N,) int64, number of parts)}``.

        ``group`` (class x attribute), ``class`` (the labels), ``env`` when the dataset has
        environments, and each partition added by :meth:`with_partition` (``inferred``: groups
        inferred without group labels). A loss, a sampler or a selection rule names the one it reads.
        """
        parts = {"group": (self.group, self.num_groups), "class": (self.y, self.num_classes)}
        if self.env is not None:
            parts["env"] = (self.env, self.num_envs)
        parts.update({name: (part.ids, part.num_parts) for name, part in self._extra_partitions.items()})
        return parts

    def partition(self, name: str) -> tuple[torch.Tensor, int]:
        """Return the ids and the number of parts of the partition called ``name`` (see :attr:`partitions`)."""
        parts = self.partitions
        if name in parts:
            return parts[name]
        if name == "env":
            raise ValueError(f"partition 'env' requested but dataset {self.name!r} has no env")
        if name == "inferred":
            raise ValueError(f"partition 'inferred' requested but dataset {self.name!r} has no "
                             "inferred groups; choose a method with groups=error_split|eiil|clustering")
        raise ValueError(f"partition must be one of {sorted(parts)}, got {name!r}")

    def with_partition(self, name: str, partition: Any) -> GroupedDataset:
        """Return a shallow copy of the split with one more named partition (the split is unchanged).

        Args:
            name: Its name in :attr:`partitions` (not ``group``, ``class`` or ``env``).
            partition: An object with ``ids`` (shape ``(N,)``, int64, on the split's device),
                ``num_parts`` and ``names``, e.g. :class:`robustml.groups.InferredGroups`.
        """
        if name in ("group", "class", "env"):
            raise ValueError(f"name must not be a built-in partition (group, class, env), got {name!r}")
        check_ids(name, partition.ids, partition.num_parts, size=len(self))
        out = copy.copy(self)
        out._extra_partitions = {**self._extra_partitions, name: partition}
        return out

    def partition_names(self, name: str) -> list[str]:
        """Return the names of the parts of the partition called ``name``."""
        self.partition(name)  # an unknown name raises, listing the partitions
        builtin = {"group": self.group_names, "class": list(self.class_names),
                   "env": list(self.env_names or ())}
        return builtin[name] if name in builtin else list(self._extra_partitions[name].names)

    @property
    def inferred(self) -> Any:
        """The partition inferred without group labels (a :class:`robustml.groups.InferredGroups`), or ``None``."""
        return self._extra_partitions.get("inferred")

    def metadata(self) -> dict[str, torch.Tensor]:
        """Return the metadata arrays ``y, group, attr, index`` (and ``env``), shape ``(N,)`` each."""
        fields = {"y": self.y, "group": self.group, "attr": self.attr, "index": self.index}
        if self.env is not None:
            fields["env"] = self.env
        fields.update({name: part.ids for name, part in self._extra_partitions.items()})
        return fields

    def __len__(self) -> int:
        return self.y.shape[0]

    def _moved(self, device: torch.device, tensors: Sequence[str]) -> GroupedDataset:
        """Return a shallow copy with the named tensor attributes on ``device`` (values unchanged)."""
        moved = copy.copy(self)
        for key in ("y", "attr", "env", "group", "index", *tensors):
            value = getattr(self, key)
            if value is not None:
                setattr(moved, key, value.to(device))
        moved.extras = {key: value.to(device) for key, value in self.extras.items()}
        return moved


def in_memory_error(dataset: GroupedDataset, what: str) -> InMemoryRequired:
    """Return the :class:`InMemoryRequired` error for ``what`` on the on-disk ``dataset``."""
    return InMemoryRequired(
        f"{what} needs every input in memory as one tensor (a GroupedTensorDataset), but "
        f"dataset {dataset.name!r} is a {type(dataset).__name__} that loads its inputs from "
        "disk one example at a time. Train it on the mini-batch path (set batch_size), "
        "or extract features once (robustml.features.feature_dataset, or the robustml-features "
        "command) and use that in-memory dataset of features.")


def require_in_memory(dataset: GroupedDataset, what: str) -> None:
    """Raise :class:`InMemoryRequired` unless ``dataset`` holds every input as one tensor.

    Args:
        dataset: Any grouped dataset.
        what: The piece that needs all inputs in memory, for the message (``"the full-batch
            protocol (batch_size=None)"``).
    """
    if not dataset.in_memory:
        raise in_memory_error(dataset, what)

class GroupedTensorDataset(GroupedDataset):
    """An in-memory dataset that follows the grouped-data contract.

    Args:
        x: Inputs, shape ``(N, *input_shape)``.
        y: Integer class labels, shape ``(N,)``, values in ``[0, num_classes)``.
        attr: Spurious attribute, shape ``(N,)``, values in ``[0, len(attr_names))``.
        **metadata: The keyword arguments of :class:`GroupedDataset` (``num_classes``,
            ``attr_names``, ``attr_key``, ``env``, ``env_names``, ``class_names``,
            ``counterfactual``, ``name``, ``extras``, ``info``).
    """

    in_memory = True

    def __init__(self, x: torch.Tensor, y: torch.Tensor, attr: torch.Tensor, *, num_classes: int,
                 attr_names: Sequence[str], attr_key: str = "attr", env: torch.Tensor | None = None,
                 env_names: Sequence[str] | None = None, class_names: Sequence[str] | None = None,
                 counterfactual: Any = None, name: str = "",
                 extras: dict[str, torch.Tensor] | None = None, info: dict[str, Any] | None = None) -> None:
        if y.dim() != 1 or y.shape[0] != x.shape[0]:
            raise ValueError(f"y must have shape ({x.shape[0]},) to match x, got {tuple(y.shape)}")
        super().__init__(y, attr, num_classes=num_classes, attr_names=attr_names, attr_key=attr_key,
                         env=env, env_names=env_names, class_names=class_names,
                         counterfactual=counterfactual, name=name, extras=extras, info=info)
        self.x = x

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    # Access ---------------------------------------------------------------------------------
    def __getitem__(self, i: int) -> Batch:
        return {key: value[i] for key, value in self._fields().items()}

    def get_batch(self, idx: torch.Tensor) -> Batch:
        """Return the batch of examples at ``idx`` (shape ``(B,)``, on the dataset's device)."""
        return {key: value[idx] for key, value in self._fields().items()}

    def full_batch(self) -> Batch:
        """Return every example as one batch, without copying."""
        return dict(self._fields())

    def _fields(self) -> dict[str, torch.Tensor]:
        return {"x": self.x, **self.metadata(), **self.extras}

    # Derived datasets -------------------------------------------------------------------------
    def subset(self, idx: torch.Tensor) -> GroupedTensorDataset:
        """Return a dataset of the examples at ``idx``; ``index`` restarts at 0 in the subset."""
        return self.replace(x=self.x[idx], y=self.y[idx], attr=self.attr[idx],
                            env=None if self.env is None else self.env[idx],
                            extras={key: value[idx] for key, value in self.extras.items()})

    def to(self, device: torch.device | str) -> GroupedTensorDataset:
        """Return the dataset with every tensor (``x`` and metadata, ``index`` included) on ``device``.

        Returns ``self`` when already there. Attributes set on the dataset after construction
        (such as the ``noise`` record of :func:`~robustml.data.datasets.noisy.with_label_noise`)
        are carried over.
        """
        device = torch.device(device)
        if self.x.device == device:
            return self
        return self._moved(device, ("x",))

    def replace(self, **fields: Any) -> GroupedTensorDataset:
        """Return a copy with some constructor arguments replaced (e.g. ``y=`` new labels)."""
        kwargs = dict(x=self.x, y=self.y, attr=self.attr, num_classes=self.num_classes,
                      attr_names=self.attr_names, attr_key=self.attr_key, env=self.env,
                      env_names=self.env_names, class_names=self.class_names,
                      counterfactual=self.counterfactual, name=self.name, extras=self.extras,
                      info=self.info)
        kwargs.update(fields)
        return GroupedTensorDataset(**kwargs)


@dataclass
class DataSplits:
    """The explicit ``train``, ``val`` and ``test`` splits of one dataset, with the same metadata.

    The splits are :class:`GroupedDataset` s of one kind (all in memory or all on disk).
    """

    train: GroupedDataset
    val: GroupedDataset
    test: GroupedDataset
    description: str = ""

    def __post_init__(self) -> None:
        for split in ("val", "test"):
            other = getattr(self, split)
            if other.group_names != self.train.group_names or other.input_shape != self.train.input_shape:
                raise ValueError(f"split {split!r} must share train's groups and input shape")

    def items(self) -> list[tuple[str, GroupedDataset]]:
        return [("train", self.train), ("val", self.val), ("test", self.test)]

    @property
    def num_classes(self) -> int:
        return self.train.num_classes

    @property
    def num_groups(self) -> int:
        return self.train.num_groups

    @property
    def group_names(self) -> list[str]:
        return self.train.group_names

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.train.input_shape
