"""The one id check of the package, robustml.validation.check_ids, against hand-written cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robustml.validation import check_ids


def test_valid_ids_are_returned_unchanged():
    ids = torch.tensor([0, 2, 1])
    assert check_ids("groups", ids, 3, size=3) is ids
    assert check_ids("groups", torch.zeros(0, dtype=torch.long), 1) is not None  # empty is fine
    meta = torch.empty(4, dtype=torch.long, device="meta")
    assert check_ids("groups", meta, 2) is meta                 # shapes only: no values to check
    np.testing.assert_array_equal(check_ids("labels", [0, 1], 2, any_int=True, array_like=True),
                                  [0, 1])
    assert check_ids("groups", ids.int(), 3, any_int=True).dtype == torch.int32


@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda: check_ids("groups", [0, 1]), TypeError,
     r"groups must be an int64 tensor of shape \(N,\), got list; convert it with "
     r"torch.as_tensor\(groups\)"),
    (lambda: check_ids("groups", torch.tensor([0.0])), TypeError,
     r"groups must be int64, got dtype torch.float32 \(convert it with .long\(\)\)"),
    (lambda: check_ids("groups", torch.tensor([0]).int()), TypeError,
     r"groups must be int64, got dtype torch.int32"),
    (lambda: check_ids("groups", torch.tensor([True]), any_int=True), TypeError,
     r"groups must have an integer dtype, got dtype torch.bool"),
    (lambda: check_ids("labels", np.array([0.5]), any_int=True, array_like=True), TypeError,
     r"labels must have an integer dtype, got dtype float64"),
    (lambda: check_ids("labels", "01", array_like=True), TypeError,
     r"labels must be an int64 tensor of shape \(N,\), got str"),
    (lambda: check_ids("target", torch.zeros(2, 2, dtype=torch.long)), ValueError,
     r"target must have shape \(N,\), got \(2, 2\)"),
    (lambda: check_ids("target", torch.zeros(2, dtype=torch.long), size=3, match="logits"),
     ValueError, r"target must have shape \(3,\) to match logits, got \(2,\)"),
    (lambda: check_ids("groups", torch.zeros(0, dtype=torch.long), nonempty=True), ValueError,
     r"groups must hold at least one id, got none"),
    (lambda: check_ids("groups", torch.tensor([0, 4]), 4), ValueError,
     r"groups must lie in \[0, 4\), got values in \[0, 4\]"),
    (lambda: check_ids("env", torch.tensor([-1, 1])), ValueError,
     r"env must lie in \[0, inf\), got values in \[-1, 1\]"),
])
def test_malformed_ids_raise_naming_the_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_ragged_and_empty_float_id_arrays_are_named():
    with pytest.raises(ValueError, match="labels must be a flat sequence of shape"):
        check_ids("labels", [[0, 1], [2]], array_like=True)
    with pytest.raises(TypeError, match="labels must be int64, got dtype float64"):
        check_ids("labels", np.zeros(0), array_like=True)
    assert check_ids("labels", [], array_like=True).shape == (0,)
