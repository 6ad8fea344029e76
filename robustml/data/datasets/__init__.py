"""Datasets that follow the grouped-data contract, each built as explicit train/val/test splits."""

from robustml.data.datasets.colored import make_colored_environment
from robustml.data.datasets.colored_digits import colored_digits_splits
from robustml.data.datasets.colored_mnist import colored_mnist_splits

__all__ = ["colored_digits_splits", "colored_mnist_splits", "make_colored_environment"]
