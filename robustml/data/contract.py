"""The grouped-data contract: samples are dicts, groups are ``y * num_attrs + attr``.

A sample is a dict with ``x``, ``y`` (int class), ``group`` (int in ``[0, num_groups)``), ``attr``
(spurious attribute), ``index`` (position in the dataset) and, where the dataset has environments,
``env``. Group counts come from metadata, never by loading every example.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import Dataset

Batch = dict[str, torch.Tensor]


def _check_ids(name: str, values: torch.Tensor, upper: int) -> None:
    if values.dtype != torch.int64:
        raise TypeError(f"{name} must be an int64 tensor, got dtype {values.dtype}")
    if values.numel() and (int(values.min()) < 0 or int(values.max()) >= upper):
        raise ValueError(
            f"{name} must lie in [0, {upper}), got values in "
            f"[{int(values.min())}, {int(values.max())}]"
        )


class GroupedTensorDataset(Dataset):
    """An in-memory dataset that follows the grouped-data contract.

    Args:
        x: Inputs, shape ``(N, *input_shape)``.
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
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        attr: torch.Tensor,
        *,
        num_classes: int,
        attr_names: Sequence[str],
        attr_key: str = "attr",
        env: torch.Tensor | None = None,
        env_names: Sequence[str] | None = None,
        class_names: Sequence[str] | None = None,
        counterfactual: Any = None,
        name: str = "",
    ) -> None:
        n = x.shape[0]
        for arg, value in (("y", y), ("attr", attr), ("env", env)):
            if value is not None and value.shape != (n,):
                raise ValueError(f"{arg} must have shape ({n},) to match x, got {tuple(value.shape)}")
        _check_ids("y", y, num_classes)
        _check_ids("attr", attr, len(attr_names))
        if env is not None:
            if env_names is None:
                raise ValueError("env_names is required when env is given")
            _check_ids("env", env, len(env_names))
        self.x, self.y, self.attr, self.env = x, y, attr, env
        self.num_classes = int(num_classes)
        self.attr_names = tuple(attr_names)
        self.attr_key = attr_key
        self.env_names = tuple(env_names) if env_names is not None else None
        self.class_names = tuple(class_names) if class_names is not None else tuple(
            str(c) for c in range(num_classes))
        self.counterfactual = counterfactual
        self.name = name
        self.group = y * self.num_attrs + attr
        self.index = torch.arange(n)

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
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    @property
    def group_names(self) -> list[str]:
        return [f"y={c},{self.attr_key}={a}" for c in self.class_names for a in self.attr_names]

    def group_counts(self) -> torch.Tensor:
        """Return the number of examples in each group, shape ``(num_groups,)``, int64."""
        return torch.bincount(self.group, minlength=self.num_groups)

    def env_counts(self) -> torch.Tensor:
        """Return the number of examples in each environment, shape ``(num_envs,)``, int64."""
        if self.env is None:
            raise ValueError(f"dataset {self.name!r} has no environments (env is None)")
        return torch.bincount(self.env, minlength=self.num_envs)

    def partition(self, name: str) -> tuple[torch.Tensor, int]:
        """Return the ids and the number of parts of a partition: ``"group"`` or ``"env"``."""
        if name == "group":
            return self.group, self.num_groups
        if name == "env":
            if self.env is None:
                raise ValueError(f"partition 'env' requested but dataset {self.name!r} has no env")
            return self.env, self.num_envs
        raise ValueError(f"partition must be 'group' or 'env', got {name!r}")

    # Access ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, i: int) -> Batch:
        return {key: value[i] for key, value in self._fields().items()}

    def get_batch(self, idx: torch.Tensor) -> Batch:
        """Return the batch of examples at ``idx`` (shape ``(B,)``) as a dict of stacked tensors."""
        return {key: value[idx] for key, value in self._fields().items()}

    def full_batch(self) -> Batch:
        """Return every example as one batch, without copying."""
        return dict(self._fields())

    def _fields(self) -> dict[str, torch.Tensor]:
        fields = {"x": self.x, "y": self.y, "group": self.group, "attr": self.attr,
                  "index": self.index}
        if self.env is not None:
            fields["env"] = self.env
        return fields

    # Derived datasets -------------------------------------------------------------------------
    def subset(self, idx: torch.Tensor) -> GroupedTensorDataset:
        """Return a dataset of the examples at ``idx``; ``index`` restarts at 0 in the subset."""
        return self.replace(x=self.x[idx], y=self.y[idx], attr=self.attr[idx],
                            env=None if self.env is None else self.env[idx])

    def to(self, device: torch.device | str) -> GroupedTensorDataset:
        """Return the dataset with its tensors on ``device`` (``self`` when already there).

        Attributes set on the dataset after construction (such as the ``noise`` record of
        :func:`~robustml.data.datasets.noisy.with_label_noise`) are carried over.
        """
        device = torch.device(device)
        if self.x.device == device:
            return self
        moved = self.replace(x=self.x.to(device), y=self.y.to(device), attr=self.attr.to(device),
                             env=None if self.env is None else self.env.to(device))
        for key, value in vars(self).items():
            if key not in vars(moved):
                setattr(moved, key, value)
        return moved

    def replace(self, **fields: Any) -> GroupedTensorDataset:
        """Return a copy with some constructor arguments replaced (e.g. ``y=`` new labels)."""
        kwargs = dict(x=self.x, y=self.y, attr=self.attr, num_classes=self.num_classes,
                      attr_names=self.attr_names, attr_key=self.attr_key, env=self.env,
                      env_names=self.env_names, class_names=self.class_names,
                      counterfactual=self.counterfactual, name=self.name)
        kwargs.update(fields)
        return GroupedTensorDataset(**kwargs)


@dataclass
class DataSplits:
    """The explicit ``train``, ``val`` and ``test`` splits of one dataset, with the same metadata."""

    train: GroupedTensorDataset
    val: GroupedTensorDataset
    test: GroupedTensorDataset
    description: str = ""

    def __post_init__(self) -> None:
        for split in ("val", "test"):
            other = getattr(self, split)
            if other.group_names != self.train.group_names or other.input_shape != self.train.input_shape:
                raise ValueError(f"split {split!r} must share train's groups and input shape")

    def items(self) -> list[tuple[str, GroupedTensorDataset]]:
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
