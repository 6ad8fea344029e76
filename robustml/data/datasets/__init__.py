"""Datasets that follow the grouped-data contract, each built as explicit train/val/test splits."""

from robustml.data.datasets.colored import make_colored_environment
from robustml.data.datasets.colored_digits import colored_digits_splits
from robustml.data.datasets.colored_mnist import colored_mnist_splits
from robustml.data.datasets.mnist import mnist_splits
from robustml.data.datasets.noisy import label_noise_of, with_label_noise

__all__ = ["colored_digits_splits", "colored_mnist_splits", "label_noise_of",
           "make_colored_environment", "mnist_splits", "with_label_noise"]
