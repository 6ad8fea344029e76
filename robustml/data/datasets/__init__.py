"""Datasets that follow the grouped-data contract, each built as explicit train/val/test splits."""

from robustml.data.datasets.celeba import celeba_splits
from robustml.data.datasets.colored import make_colored_environment
from robustml.data.datasets.colored_digits import colored_digits_splits
from robustml.data.datasets.colored_mnist import colored_mnist_splits
from robustml.data.datasets.image_csv import image_csv_splits
from robustml.data.datasets.mnist import mnist_splits
from robustml.data.datasets.noisy import label_noise_of, with_label_noise
from robustml.data.datasets.waterbirds import waterbirds_splits

__all__ = ["celeba_splits", "colored_digits_splits", "colored_mnist_splits", "image_csv_splits",
           "label_noise_of", "make_colored_environment", "mnist_splits", "waterbirds_splits",
           "with_label_noise"]
