"""Label cleaning with confident learning: noise, out-of-sample probabilities, issues, actions.

On your own arrays: :func:`detect_label_issues` (inputs or features, labels, optional groups and
guard, any model) returns cleanlab's mask, label-quality scores and the per-group report.

The pieces: out-of-sample ``pred_probs`` (:func:`out_of_sample_probs`: the cross-fitted network
fast path :class:`CrossFitNetwork`, :class:`KFoldNetwork`, :class:`LinearHeads` on features, a
scikit-learn classifier, or your ``fit_predict`` through :func:`out_of_fold_probs`) ->
:func:`find_label_issues` -> optional :func:`apply_group_cap` to protect minority groups ->
:func:`apply_action`.
"""

from robustml.cleaning.actions import (
    ACTIONS,
    CSV_COLUMNS,
    CleaningResult,
    apply_action,
    issues_table,
    write_label_issues_csv,
)
from robustml.cleaning.api import GroupGuard, IssueReport, detect_label_issues
from robustml.cleaning.crossfit import CrossFitNetwork, cross_fit_probs
from robustml.cleaning.features import (
    LinearHeads,
    fit_softmax_regression,
    linear_head_fit_predict,
    linear_head_oof_probs,
)
from robustml.cleaning.issues import (
    FILTER_BY,
    QUALITY_METHODS,
    LabelIssues,
    apply_group_cap,
    find_label_issues,
    per_group_report,
    validate_labels,
    validate_pred_probs,
)
from robustml.cleaning.methods import KFoldNetwork, default_estimator, out_of_sample_probs
from robustml.cleaning.networks import FitSettings, default_network
from robustml.data.noise import NoisyLabels, add_label_noise, noise_matrix
from robustml.cleaning.oof import FitPredict, cached_probs, out_of_fold_probs, stratified_folds
from robustml.identity import hash_key

__all__ = [
    "ACTIONS",
    "CSV_COLUMNS",
    "FILTER_BY",
    "QUALITY_METHODS",
    "CleaningResult",
    "CrossFitNetwork",
    "FitPredict",
    "FitSettings",
    "GroupGuard",
    "IssueReport",
    "KFoldNetwork",
    "LabelIssues",
    "LinearHeads",
    "NoisyLabels",
    "add_label_noise",
    "apply_action",
    "apply_group_cap",
    "cached_probs",
    "cross_fit_probs",
    "default_estimator",
    "default_network",
    "detect_label_issues",
    "find_label_issues",
    "fit_softmax_regression",
    "hash_key",
    "issues_table",
    "linear_head_fit_predict",
    "linear_head_oof_probs",
    "noise_matrix",
    "out_of_fold_probs",
    "out_of_sample_probs",
    "per_group_report",
    "stratified_folds",
    "validate_labels",
    "validate_pred_probs",
    "write_label_issues_csv",
]
