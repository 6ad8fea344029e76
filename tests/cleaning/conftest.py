"""Session fixtures for the cleaning tests."""

from __future__ import annotations

import numpy as np
import pytest
from cleaning_data import Blobs, logreg_fit_predict, make_blobs

from robustml.cleaning import out_of_fold_probs


@pytest.fixture(scope="session")
def blobs() -> Blobs:
    return make_blobs()


@pytest.fixture(scope="session")
def blob_probs(blobs: Blobs) -> np.ndarray:
    """Out-of-fold probabilities for the noisy blob labels (5 folds, logistic regression)."""
    labels = blobs.noisy.labels
    return out_of_fold_probs(labels, logreg_fit_predict(blobs.x, labels), progress=False)
