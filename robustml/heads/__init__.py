"""Last-layer methods on cached features (scikit-learn): Deep Feature Reweighting."""

from robustml.heads.dfr import (C_GRID, DFRClassifier, DFRResult, balanced_subsample, dfr_on_train,
                                dfr_on_validation)

__all__ = ["C_GRID", "DFRClassifier", "DFRResult", "balanced_subsample", "dfr_on_train", "dfr_on_validation"]
