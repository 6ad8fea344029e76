"""Per-group accuracy, worst-group accuracy and averages (plain and train-prior weighted)."""

from robustml.metrics.accumulator import GroupAccuracy
from robustml.metrics.functional import (OVERLAP_EXTRA, OVERLAP_NAMES, declared_overlap_metrics, group_accuracy,
                                         overlap_group_accuracy, per_group_counts, prediction_shares)

__all__ = ["GroupAccuracy", "OVERLAP_EXTRA", "OVERLAP_NAMES", "declared_overlap_metrics", "group_accuracy", "overlap_group_accuracy",
           "per_group_counts", "prediction_shares"]
