"""The data audit's label-noise estimate (``audit_data(splits, label_noise=True)``): how many
training labels of each class are wrong, by confident learning on the cleaning path's
out-of-sample probabilities.

The probabilities are :func:`robustml.cleaning.out_of_sample_probs` with the cleaning defaults
(5 folds; gradient boosting for tables, the cross-fitted network for in-memory images); cleanlab's
``estimate_py_and_noise_matrices_from_probabilities`` turns them into the calibrated confident
joint ``C[i, j]`` (examples labeled ``i`` whose true class is estimated to be ``j``; each row sums
to the class's labeled count) and the noise matrix ``T[i, j] = P(label = i | true = j)``
(Northcutt, Jiang, Chuang, JAIR 2021, Sec. 3.1-3.2).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from robustml.audit.data_findings import Finding
from robustml.data.contract import GroupedDataset

AUTO = "auto"  # robustml.cleaning's default model (imported lazily with cleaning)


def noise_estimate(labels: np.ndarray, pred_probs: np.ndarray, class_names: Sequence[str]) -> dict[str, Any]:
    """Return the estimated label noise of ``labels`` from out-of-sample ``pred_probs``.

    Returns:
        ``{"examples", "estimated_wrong", "noise_rate", "classes", "confident_joint",
        "noise_matrix"}``; ``classes`` holds per class its ``labeled`` count, the
        ``estimated_wrong`` labels among them (the confident joint's row minus its diagonal),
        their share ``noise_rate``, the class most of them truly belong to (``most_from``) and
        ``flip_rate = 1 - T[c, c]``, the estimated share of the class's true members labeled
        otherwise.
    """
    from cleanlab.count import estimate_py_and_noise_matrices_from_probabilities

    _, noise_matrix, _, joint = estimate_py_and_noise_matrices_from_probabilities(labels, pred_probs)
    joint = np.asarray(joint, dtype=np.int64)
    classes = []
    for c, name in enumerate(class_names):
        labeled = int(joint[c].sum())
        others = joint[c].copy()
        others[c] = 0
        wrong = int(others.sum())
        classes.append({"class": str(name), "labeled": labeled, "estimated_wrong": wrong,
                        "noise_rate": wrong / labeled if labeled else float("nan"),
                        "most_from": str(class_names[int(np.argmax(others))]) if wrong else "",
                        "flip_rate": float(1 - noise_matrix[c, c])})
    wrong = sum(row["estimated_wrong"] for row in classes)
    return {"examples": int(joint.sum()), "estimated_wrong": wrong, "noise_rate": wrong / max(int(joint.sum()), 1),
            "classes": classes, "confident_joint": joint.tolist(),
            "noise_matrix": np.asarray(noise_matrix).tolist()}


def audit_label_noise(train: GroupedDataset, *, model: Any = AUTO, num_folds: int = 5, seed: int = 0,
                      alert_rate: float = 0.1) -> tuple[dict[str, Any], list[Finding]]:
    """Estimate the training split's label noise; return the estimate and its finding.

    Rows with a NaN or infinite input are left out (and counted). The finding is ``medium`` when
    a class's estimated noise rate reaches ``alert_rate``, ``low`` otherwise; when the noise
    cannot be estimated (images on disk, a class with fewer than ``num_folds`` examples) the
    estimate says why and the finding is ``low``.
    """
    from robustml.cleaning import out_of_sample_probs  # scikit-learn, cleanlab: only with label_noise
    from robustml.cleaning.api import as_inputs, check_class_counts

    if not train.in_memory:
        return _not_estimated("the training images are on disk and the audit trains no feature extractor; "
                              "robustml-clean with the same data config estimates the noise on a model's features")
    x = train.x.detach().cpu().float()
    keep = torch.isfinite(x.flatten(1)).all(dim=1).numpy()
    labels = train.y.cpu().numpy()[keep]
    if len(np.unique(labels)) < 2:
        return _not_estimated(f"the training split has {len(np.unique(labels))} class(es) with finite inputs")
    try:
        check_class_counts(labels, num_folds)
    except ValueError as error:
        return _not_estimated(f"the training split is too small for {num_folds}-fold probabilities ({error})")
    probs = out_of_sample_probs(as_inputs(x[keep], len(labels)), labels, model=model,
                                num_classes=train.num_classes, num_folds=num_folds, seed=seed)
    estimate = {"estimated": True, "left_out_rows": int((~keep).sum()), "num_folds": num_folds,
                **noise_estimate(labels, probs, train.class_names)}
    worst = sorted((row for row in estimate["classes"] if row["labeled"]), key=lambda row: -row["noise_rate"])
    per_class = ", ".join(f"{row['class']}: {row['estimated_wrong']} of {row['labeled']} "
                          f"({row['noise_rate']:.1%})" for row in worst[:3])
    left_out = f"; {estimate['left_out_rows']} rows with NaN inputs left out" if estimate["left_out_rows"] else ""
    return estimate, [Finding(
        "label_noise", "medium" if worst[0]["noise_rate"] >= alert_rate else "low",
        f"an estimated {estimate['estimated_wrong']} of {estimate['examples']} training labels "
        f"({estimate['noise_rate']:.1%}) are wrong (confident learning on {num_folds}-fold out-of-sample "
        f"probabilities); most per class: {per_class}{left_out}; robustml-clean lists them, "
        "robustml-train cleaning=confident_learning prunes them before training",
        estimate["estimated_wrong"], score=estimate["noise_rate"])]


def _not_estimated(reason: str) -> tuple[dict[str, Any], list[Finding]]:
    return ({"estimated": False, "reason": reason},
            [Finding("label_noise", "low", f"label noise not estimated: {reason}")])
