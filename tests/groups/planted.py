"""A synthetic data set with a known spurious feature, shared by the group-inference tests."""

from __future__ import annotations

import numpy as np
import torch


def planted(n: int = 2000, *, agree: float = 0.9, seed: int = 0) -> dict[str, np.ndarray]:
    """Return labels, a spurious attribute that agrees with them at rate ``agree``, and features.

    ``features[:, 0]`` is a weak core signal (mean +-0.5, unit noise); ``features[:, 1]`` the
    spurious one (mean +-2, noise 0.2). ``group = 2 * y + spurious``; ``minority`` marks the
    examples whose spurious value disagrees with the label. The reference logits are a logistic
    regression fitted on both features: it leans on the spurious one, as ERM does.
    """
    from sklearn.linear_model import LogisticRegression
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    spurious = np.where(rng.random(n) < agree, y, 1 - y)
    core = 0.5 * (2 * y - 1) + rng.normal(0, 1, n)
    spur = 2 * (2 * spurious - 1) + rng.normal(0, 0.2, n)
    features = np.stack([core, spur], 1)
    reference = LogisticRegression().fit(features, y)
    logits = reference.decision_function(features)[:, None]
    return {"y": y, "spurious": spurious, "group": 2 * y + spurious, "minority": (spurious != y).astype(int),
            "features": features, "logits": torch.tensor(logits, dtype=torch.float32),
            "preds": torch.tensor((logits[:, 0] > 0).astype(np.int64))}
