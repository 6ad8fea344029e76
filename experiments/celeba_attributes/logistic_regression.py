"""Sanity check of the CelebA-attributes data: scikit-learn's LogisticRegression on the train split.

The issue that asked for this dataset measured average test accuracy 86.3% and worst-group
(blond men) accuracy 1.1% with ``LogisticRegression``; this script recomputes both from the loader
(default target Blond_Hair, spurious Male, excluded from the inputs) and prints the per-group
table. No group label is used for training or selection.

    OMP_NUM_THREADS=1 .venv/bin/python experiments/celeba_attributes/logistic_regression.py \
        --root ../shared/data
"""

from __future__ import annotations

import argparse

import torch
from sklearn.linear_model import LogisticRegression

from robustml.data.datasets.celeba_attributes import celeba_attributes_splits
from robustml.metrics import group_accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="../shared/data", help="folder holding celeba/")
    args = parser.parse_args()
    splits = celeba_attributes_splits(args.root)
    model = LogisticRegression(max_iter=1000).fit(splits.train.x.numpy(), splits.train.y.numpy())
    for name, split in (("val", splits.val), ("test", splits.test)):
        preds = torch.from_numpy(model.predict(split.x.numpy()))
        result = group_accuracy(preds, split.y, split.group, num_groups=splits.num_groups,
                                train_counts=splits.train.group_counts())
        print(f"{name}: average {100 * result['acc_avg']:.1f}%, train-prior-weighted average "
              f"{100 * result['acc_weighted_avg']:.1f}%, worst group {100 * result['acc_worst_group']:.1f}% "
              f"({splits.group_names[result['worst_group']]})")
        for g, group_name in enumerate(splits.group_names):
            print(f"  {group_name}: {100 * result[f'acc_group_{g}']:.1f}% of "
                  f"{int(result[f'count_group_{g}'])}")


if __name__ == "__main__":
    main()
