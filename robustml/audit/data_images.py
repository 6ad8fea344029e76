"""The data audit's image statistics: per-image brightness, contrast and size, compared between
splits (drift) and between groups (does a statistic alone predict the label: a shortcut candidate).

Brightness and contrast come from the inputs as the model sees them; width and height from the
files' headers (on-disk images), since the transform resizes them; in-memory images have one
tensor shape, so their size is uniform and is reported as such.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from robustml.audit import data_stats as st
from robustml.audit.data_findings import Finding
from robustml.data.contract import GroupedDataset


def audit_images(named: dict[str, GroupedDataset], *, max_images: int, tree_depth: int, threshold: float,
                 seed: int) -> tuple[list[dict[str, Any]], list[Finding], dict[str, Any]]:
    """Return the drift rows, the findings and the size table of the images of ``named``'s splits.

    Args:
        named: ``{"train": ..., "val": ..., "test": ...}``.
        max_images: Images per split that are read (a seeded sample).
        tree_depth: Depth of the tree that predicts the label from a statistic.
        threshold: Chance-corrected balanced accuracy (3-fold) from which a statistic predicting
            the label in train is a shortcut candidate.
        seed: Seed of the sample.
    """
    rng = np.random.default_rng(seed)
    rows = {n: np.sort(rng.permutation(len(d))[:max_images]) for n, d in named.items()}
    stats = {n: st.image_statistics(d, rows[n]) for n, d in named.items()}
    columns = {"image brightness": {n: s[:, 0] for n, s in stats.items()},
               "image contrast": {n: s[:, 1] for n, s in stats.items()}}
    train = named["train"]
    y, groups = train.y.cpu().numpy()[rows["train"]], train.group.cpu().numpy()[rows["train"]]
    found = []
    score = st.predicts_label(stats["train"], y, max_depth=tree_depth)
    if score >= threshold:
        means = ", ".join(f"{train.group_names[g]} {stats['train'][groups == g, 0].mean():.3f}"
                          for g in np.unique(groups))
        found.append(Finding("image_shortcut", "medium", f"mean brightness and contrast alone predict the label "
                             f"in train ({score:.2f} chance-corrected balanced accuracy, 3-fold depth-{tree_depth} "
                             f"tree): a shortcut candidate; mean brightness per group: {means}", score=score))
    if train.in_memory:
        sizes = {"source": "in memory", "shape": list(train.input_shape), "uniform": True}
    else:
        size = {n: st.image_sizes(d, rows[n]) for n, d in named.items()}
        columns.update({"image width": {n: s[:, 0] for n, s in size.items()},
                        "image height": {n: s[:, 1] for n, s in size.items()}})
        sizes = _size_table(size, groups, train.group_names, max_images)
        score = st.predicts_label(size["train"].astype(float), y, max_depth=tree_depth)
        if score >= threshold:
            per_group = ", ".join(f"{name} {_common(size['train'][groups == g])}"
                                  for g, name in enumerate(train.group_names) if (groups == g).any())
            found.append(Finding("image_size_shortcut", "medium", f"the image size alone predicts the label in "
                                 f"train ({score:.2f} chance-corrected balanced accuracy, 3-fold depth-{tree_depth} "
                                 f"tree): a shortcut candidate, since the stretching and blur of resizing to one size "
                                 f"can still show it; most common size per group: {per_group}", score=score))
    drift = [{"column": column, "splits": f"train-{other}",
              **st.drift_tests(values["train"].astype(float), values[other].astype(float), categorical=False)}
             for column, values in columns.items() for other in ("val", "test")]
    return drift, found, sizes


def _labels(sizes: np.ndarray) -> list[str]:
    return [f"{w}x{h}" for w, h in sizes]


def _common(sizes: np.ndarray) -> str:
    """The most common ``WxH`` of ``sizes`` and its share."""
    size, count = Counter(_labels(sizes)).most_common(1)[0]
    return f"{size} ({count / len(sizes):.0%})"


def _size_table(size: dict[str, np.ndarray], groups: np.ndarray, group_names: list[str],
                max_images: int) -> dict[str, Any]:
    """Counts of each ``WxH`` per split and per training group; ``uniform`` when there is one size."""
    per_split = {n: dict(Counter(_labels(s)).most_common()) for n, s in size.items()}
    per_group = {name: dict(Counter(_labels(size["train"][groups == g])).most_common())
                 for g, name in enumerate(group_names) if (groups == g).any()}
    distinct = {k for counts in per_split.values() for k in counts}
    return {"source": "files", "sampled_per_split": max_images, "uniform": len(distinct) == 1,
            "splits": per_split, "train_groups": per_group}
