"""How well an inferred partition matches the true groups, where those are known."""

from __future__ import annotations

import numpy as np


def partition_agreement(parts: np.ndarray, groups: np.ndarray, *, num_groups: int) -> dict[str, float]:
    """Return the adjusted Rand index and, per true group, the purity of its main inferred part.

    For true group ``g``, its main part is the inferred part holding most of ``g``'s examples;
    ``purity_group_g`` is the fraction of that part's examples that belong to ``g`` (1.0: the part
    holds ``g`` alone) and ``share_group_g`` the fraction of ``g`` inside it (1.0: ``g`` is not
    split). Empty true groups get NaN.

    Args:
        parts: Inferred part ids, shape ``(N,)``.
        groups: True group ids, shape ``(N,)``, values in ``[0, num_groups)``.
        num_groups: Number of true groups.

    Returns:
        ``{"adjusted_rand", "purity_group_<g>", "share_group_<g>"}`` (floats).
    """
    from sklearn.metrics import adjusted_rand_score
    parts, groups = np.asarray(parts), np.asarray(groups)
    if parts.shape != groups.shape or parts.ndim != 1:
        raise ValueError(f"parts and groups must have the same shape (N,), got "
                         f"{parts.shape} and {groups.shape}")
    out = {"adjusted_rand": float(adjusted_rand_score(groups, parts))}
    for g in range(num_groups):
        members = parts[groups == g]
        if members.size == 0:
            out[f"purity_group_{g}"] = out[f"share_group_{g}"] = float("nan")
            continue
        found, counts = np.unique(members, return_counts=True)
        main = found[np.argmax(counts)]
        out[f"purity_group_{g}"] = float(counts.max() / np.sum(parts == main))
        out[f"share_group_{g}"] = float(counts.max() / members.size)
    return out
