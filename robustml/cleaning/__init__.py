"""Label cleaning with confident learning: noise, out-of-fold probabilities, issues, actions.

Pipeline: out-of-sample ``pred_probs`` (:func:`out_of_fold_probs` with the trainer's
``fit_predict``, or :func:`linear_head_oof_probs` on frozen features) -> :func:`find_label_issues`
-> optional :func:`apply_group_cap` to protect minority groups -> :func:`apply_action`.
"""

from robustml.cleaning.actions import (
    ACTIONS,
    CSV_COLUMNS,
    CleaningResult,
    apply_action,
    issues_table,
    write_label_issues_csv,
)
from robustml.cleaning.features import (
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
from robustml.cleaning.noise import NoisyLabels, add_label_noise, noise_matrix
from robustml.cleaning.oof import (
    FitPredict,
    cached_out_of_fold_probs,
    hash_key,
    out_of_fold_probs,
    stratified_folds,
)

__all__ = [
    "ACTIONS",
    "CSV_COLUMNS",
    "FILTER_BY",
    "QUALITY_METHODS",
    "CleaningResult",
    "FitPredict",
    "LabelIssues",
    "NoisyLabels",
    "add_label_noise",
    "apply_action",
    "apply_group_cap",
    "cached_out_of_fold_probs",
    "find_label_issues",
    "fit_softmax_regression",
    "hash_key",
    "issues_table",
    "linear_head_fit_predict",
    "linear_head_oof_probs",
    "noise_matrix",
    "out_of_fold_probs",
    "per_group_report",
    "stratified_folds",
    "validate_labels",
    "validate_pred_probs",
    "write_label_issues_csv",
]
