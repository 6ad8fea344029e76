"""SELF's choice of retraining rows against a transcription of the authors' scoring step and by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from robustml.heads import selection_scores, self_rows


def ref_scores(orig_logits, logits, targets, finetune_type, k):
    """tmlabonte/last-layer-retraining, milkshake/datamodules/disagreement.py,
    Disagreement.disagreement: the scores after the forward passes, and the top-k."""
    all_orig_probs, all_probs = F.softmax(orig_logits, dim=1), F.softmax(logits, dim=1)
    kldiv = F.kl_div(torch.log(all_probs), all_orig_probs, reduction="none")
    kldiv = torch.mean(kldiv, dim=1).squeeze()
    loss = F.cross_entropy(orig_logits, targets, reduction="none").squeeze()
    if "misclassification" in finetune_type:
        return loss, torch.topk(loss, k=k)[1].numpy()
    return kldiv, torch.topk(kldiv, k=k)[1].numpy()


def test_scores_and_rows_equal_the_authors_step():
    gen = torch.Generator().manual_seed(0)
    final = torch.randn(50, 3, generator=gen, dtype=torch.float64)
    early = torch.randn(50, 3, generator=gen, dtype=torch.float64)
    target = torch.randint(0, 3, (50,), generator=gen)
    loss, top = ref_scores(final, final, target, "misclassification", 7)
    np.testing.assert_allclose(selection_scores(target.numpy(), final), loss.numpy(), rtol=1e-12)
    np.testing.assert_array_equal(self_rows(target.numpy(), final, 7), top)
    kl, top = ref_scores(early, final, target, "early-stop disagreement", 7)
    mine = selection_scores(target.numpy(), final, rule="disagreement", early_logits=early)
    np.testing.assert_allclose(mine, kl.numpy(), rtol=1e-12)
    rows = self_rows(target.numpy(), final, 7, rule="disagreement", early_logits=early)
    np.testing.assert_array_equal(rows, top)


def test_one_binary_logit_by_hand_and_bad_input():
    # logit z = log 3: p(1) = 3/4; the loss of class 0 is -log(1/4), of class 1 -log(3/4).
    scores = selection_scores(np.array([0, 1]), np.array([[math.log(3.0)], [math.log(3.0)]]))
    assert scores.tolist() == pytest.approx([math.log(4.0), math.log(4.0 / 3.0)])
    with pytest.raises(ValueError, match="needs early_logits"):
        selection_scores(np.array([0]), np.zeros((1, 1)), rule="disagreement")
    with pytest.raises(ValueError, match="num_rows=3 is more than the 2 held-out rows"):
        self_rows(np.array([0, 1]), np.zeros((2, 1)), 3)
    with pytest.raises(ValueError, match="rule must be one of"):
        selection_scores(np.array([0]), np.zeros((1, 1)), rule="jtt")
