"""The grouped-data contract (splits with named partitions: group, class, env, inferred), the
datasets built on it, and the order training reads them in: samplers (group-balanced, reweighting,
JTT's upsampling), DataLoader settings and the resumable training batch stream."""

from robustml.data.contract import (Batch, DataSplits, GroupedDataset, GroupedTensorDataset,
                                    InMemoryRequired)
from robustml.data.ondisk import OnDiskGroupedDataset
from robustml.data.datasets import (
    colored_digits_splits,
    colored_mnist_splits,
    make_colored_environment,
)

__all__ = [
    "Batch",
    "DataSplits",
    "GroupedDataset",
    "GroupedTensorDataset",
    "InMemoryRequired",
    "OnDiskGroupedDataset",
    "colored_digits_splits",
    "colored_mnist_splits",
    "make_colored_environment",
]
