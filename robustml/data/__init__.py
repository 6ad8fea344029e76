"""The grouped-data contract and the datasets built on it."""

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
