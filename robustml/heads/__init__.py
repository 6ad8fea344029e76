"""Last-layer methods on cached features: Deep Feature Reweighting (scikit-learn), Automatic
Feature Reweighting and Diverse Prototypical Ensembles (PyTorch), and SELF's choice of the rows
to retrain on."""

from robustml.heads.afr import GAMMA_GRID, REG_GRID, AFRResult, afr, afr_weights
from robustml.heads.classifier import HeadClassifier, LinearHead, head_from_state, head_state
from robustml.heads.dfr import C_GRID, DFRResult, balanced_subsample, dfr_on_train, dfr_on_validation
from robustml.heads.dpe import DPEResult, dpe
from robustml.heads.prototypes import PrototypeEnsembleHead
from robustml.heads.selection import selection_scores, self_rows

__all__ = ["C_GRID", "GAMMA_GRID", "REG_GRID", "AFRResult", "DFRResult", "DPEResult", "HeadClassifier",
           "LinearHead", "PrototypeEnsembleHead", "afr", "afr_weights", "balanced_subsample", "dfr_on_train",
           "dfr_on_validation", "dpe", "head_from_state", "head_state", "selection_scores", "self_rows"]
