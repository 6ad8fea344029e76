"""DPE against a transcription of the authors' training step, hand-computed distances and penalties,
the ensemble head module, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import support
from robustml.heads import PrototypeEnsembleHead, dpe
from robustml.heads.dpe import balanced_parts
from robustml.heads.prototypes import (cov_reg_schedule, isomax_loss, prototype_logits, prototype_penalty,
                                       standardize_rows)


def planted(n: int, minority: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, y, groups = support.planted(n, minority, seed, noise=4)
    return x.astype(np.float32), y, groups


# --- The authors' code, transcribed from minhto2802/DPE -------------------------------------------
# src/dpe/isomaxplus.py: IsoMaxPlusLossFirstPart.forward and IsoMaxPlusLossSecondPart.forward;
# src/dpe/core.py: the loss of _train_prototypes (isomax branch), cov_reg_scheduler_inv, the
# member loop of _train_ensemble and the averaging of _evaluate_ensemble / _predict.

def ref_first_part(features, prototypes, distance_scale):
    distances = torch.abs(distance_scale) * torch.cdist(F.normalize(features), F.normalize(prototypes),
                                                        p=2.0, compute_mode="donot_use_mm_for_euclid_dist")
    return -distances


def ref_second_part(logits, targets, entropic_scale):
    distances = -logits
    probabilities_for_training = nn.Softmax(dim=1)(-entropic_scale * distances)
    probabilities_at_targets = probabilities_for_training[range(distances.size(0)), targets]
    return (-torch.log(probabilities_at_targets)).mean()


def ref_loss(prototypes, distance_scale, feats, labels, prototype_ensemble, cov_reg, wd_weight, entropic):
    clf_loss = ref_second_part(ref_first_part(feats, prototypes, distance_scale), labels, entropic)
    wd = torch.einsum('ijk,ilk->ijl', [prototypes[:, None], prototypes[:, None]]) * wd_weight
    loss = clf_loss + wd.squeeze().mean()
    if len(prototype_ensemble) and (cov_reg > 0):
        _prototypes = torch.cat([prototypes[:, None], prototype_ensemble], dim=1)
        n_pro, n_dim = _prototypes.shape[1:]
        cov = torch.einsum('ijk,ilk->ijl', [_prototypes, _prototypes]) / (n_dim - 1)
        loss += torch.abs(cov[:, 0, 1:].sum(1).div(n_pro).mean()) * cov_reg
    return loss


def ref_cov_reg_scheduler_inv(cov_reg, num_stages, alpha):
    scheduler = [cov_reg / (1 + alpha * _) for _ in range(num_stages)]
    scheduler = [cov_reg] + scheduler
    return lambda stage: scheduler[max(stage, 1) - 1]


def ref_ensemble(x, y, parts, num_parts, val_x, val_y, val_g, *, seed, num_stages, epochs, lr, batch_size,
                 cov_reg, alpha, entropic, wd_weight):
    """The authors' loop, fed robustml's draws: the same subsets (numpy) and, from one torch
    generator, each member's N(0, 0.01) prototypes then each epoch's order (their DataLoader's)."""
    rng, generator = np.random.default_rng(seed), torch.Generator().manual_seed(seed)
    schedule = ref_cov_reg_scheduler_inv(cov_reg, num_stages, alpha)
    ensemble = []
    for stage in range(1, num_stages + 1):
        idx = torch.from_numpy(balanced_parts(parts, num_parts, rng))
        xs, ys = x[idx], y[idx]
        prototypes = nn.Parameter(torch.empty(2, x.shape[1]).normal_(0, 1e-2, generator=generator))
        distance_scale = nn.Parameter(torch.ones(1))
        optimizer = torch.optim.SGD([prototypes, distance_scale], lr=lr, momentum=0.9, weight_decay=0.0)
        previous = torch.concat([p[0] for p in ensemble], dim=1).detach() if ensemble else []
        best_val_wga, best = 0.0, None
        for _ in range(epochs):
            order = torch.randperm(len(ys), generator=generator)
            for start in range(0, len(ys) - batch_size + 1, batch_size):  # drop_last=True
                batch = order[start:start + batch_size]
                optimizer.zero_grad()
                loss = ref_loss(prototypes, distance_scale, xs[batch], ys[batch], previous,
                                schedule(stage), wd_weight, entropic)
                loss.backward()
                optimizer.step()
            with torch.no_grad():
                preds = ref_first_part(val_x, prototypes, distance_scale).softmax(1).argmax(1)
            val_wga = min((preds == val_y)[val_g == g].float().mean().item() for g in val_g.unique())
            if val_wga >= best_val_wga:
                best_val_wga = val_wga
                best = [prototypes[:, None].detach().clone(), distance_scale.detach().clone()]
        ensemble.append(best)
    return ensemble


def ref_predict(ensemble, feats):
    return torch.stack([ref_first_part(feats, p[:, 0], s).softmax(1) for p, s in ensemble]).mean(0)
# ------------------------------------------------------------------------------------------------


def test_isomax_logits_and_loss_by_hand():
    x = torch.tensor([[3.0, 4.0]])
    prototypes = torch.tensor([[2.0, 0.0], [0.0, 5.0]])
    logits = prototype_logits(x, prototypes, torch.tensor([-2.0]))  # |scale| = 2
    # x / |x| = (0.6, 0.8): distances sqrt(0.16 + 0.64) and sqrt(0.36 + 0.04).
    torch.testing.assert_close(logits, torch.tensor([[-2 * math.sqrt(0.8), -2 * math.sqrt(0.4)]]))
    e = 3.0 * logits[0]
    expected = -(e[1] - torch.logsumexp(e, 0))
    torch.testing.assert_close(isomax_loss(logits, torch.tensor([1]), 3.0), expected)


def test_penalties_and_schedule_by_hand():
    prototypes = torch.tensor([[1.0, 2.0, 0.0], [0.0, 1.0, 1.0]])
    # wd: mean of squared norms (5, 2) = 3.5, times 10.
    assert prototype_penalty(prototypes, None, wd_weight=10.0, cov_reg=1e3).item() == pytest.approx(35.0)
    previous = torch.tensor([[[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]], [[2.0, 0.0, 0.0], [0.0, 0.0, -3.0]]])
    # class 0: dots 1 and 2; class 1: dots 0 and -3; over (D - 1) = 2 and M + 1 = 3 members:
    # (3 / 6 + (-3) / 6) / 2 = 0 -> only wd; shift class 1's second prototype to -1 instead.
    assert prototype_penalty(prototypes, previous, wd_weight=0.0, cov_reg=1.0).item() == pytest.approx(0.0)
    previous[1, 1, 2] = -1.0
    # class 1 now sums to -1: (3 / 6 + (-1) / 6) / 2 = 1 / 6.
    assert prototype_penalty(prototypes, previous, wd_weight=0.0, cov_reg=6.0).item() == pytest.approx(1.0)
    ref = ref_cov_reg_scheduler_inv(100.0, 6, 0.05)
    mine = [cov_reg_schedule(100.0, s, 0.05) for s in range(1, 7)]
    assert mine == pytest.approx([ref(s) for s in range(1, 7)])


def test_loss_and_gradients_equal_the_authors_step():
    gen = torch.Generator().manual_seed(0)
    feats, labels = torch.randn(16, 6, generator=gen), torch.randint(0, 2, (16,), generator=gen)
    previous = torch.randn(2, 3, 6, generator=gen) * 0.1
    init = torch.randn(2, 6, generator=gen) * 0.1
    mine_p, ref_p = init.clone().requires_grad_(True), init.clone().requires_grad_(True)
    mine_s, ref_s = torch.tensor([1.3], requires_grad=True), torch.tensor([1.3], requires_grad=True)
    mine = (isomax_loss(prototype_logits(feats, mine_p, mine_s), labels, 30.0)
            + prototype_penalty(mine_p, previous, wd_weight=10.0, cov_reg=5e2))
    ref = ref_loss(ref_p, ref_s, feats, labels, previous, 5e2, 10.0, 30.0)
    mine.backward()
    ref.backward()
    torch.testing.assert_close(mine, ref, rtol=0, atol=0)
    torch.testing.assert_close(mine_p.grad, ref_p.grad, rtol=0, atol=0)
    torch.testing.assert_close(mine_s.grad, ref_s.grad, rtol=0, atol=0)
    args = (feats.double(), init.double().requires_grad_(True), torch.tensor([1.3], dtype=torch.float64))
    assert torch.autograd.gradcheck(prototype_logits, args)


@pytest.mark.parametrize("balance", ["class", "group"])
def test_dpe_matches_the_authors_loop_with_the_same_draws(balance):
    x, y, g = planted(240, 0.2, 0)
    tx, ty, tg = planted(400, 0.5, 1)
    options = dict(num_members=3, epochs=4, lr=1e-2, batch_size=32, cov_reg=50.0, alpha=0.05,
                   entropic=30.0, wd_weight=10.0)
    result = dpe(x, y, g, x, y, g, num_classes=2, num_groups=4, balance=balance, seed=5, **options)
    xs = torch.from_numpy(standardize_rows(x).astype(np.float32))  # the authors' norm_emb
    y_t, g_t = torch.from_numpy(y), torch.from_numpy(g)
    parts, num_parts = (y, 2) if balance == "class" else (g, 4)
    ensemble = ref_ensemble(xs, y_t, parts, num_parts, xs, y_t, g_t, seed=5,
                            num_stages=options.pop("num_members"), **options)
    # Equal to the last bit: the penalty is summed in the authors' order (another order parts the
    # members after a few steps at the authors' cov_reg, see prototype_penalty).
    torch.testing.assert_close(result.prototypes, torch.stack([p[:, 0] for p, _ in ensemble]),
                               rtol=0, atol=0)
    torch.testing.assert_close(result.scales, torch.stack([s.reshape(()) for _, s in ensemble]),
                               rtol=0, atol=0)
    txs = torch.from_numpy(standardize_rows(tx).astype(np.float32))
    expected = ref_predict(ensemble, txs)
    torch.testing.assert_close(result.probabilities(tx), expected, rtol=0, atol=1e-5)
    preds = result.predict(tx)
    np.testing.assert_array_equal(preds, expected.argmax(1).numpy())
    assert (preds == ty).mean() > 0.5
    assert not torch.equal(result.prototypes[0], result.prototypes[1])  # members differ
    # The module form gives the same classes in robustml's one-logit convention.
    logit = PrototypeEnsembleHead(result.prototypes, result.scales)(torch.from_numpy(tx))
    assert (np.asarray(logit[:, 0] > 0, dtype=int) == preds).mean() > 0.99


def test_dpe_bad_input_names_the_setting():
    x, y, g = planted(120, 0.2, 0)
    bad = x.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="DPE's held-out features hold 1 NaN or infinite values"):
        dpe(bad, y, g, x, y, g, num_classes=2, num_groups=4, batch_size=8)
    with pytest.raises(ValueError, match=r"fewer than batch_size=256.*method.batch_size"):
        dpe(x, y, g, x, y, g, num_classes=2, num_groups=4)
    with pytest.raises(ValueError, match="needs the held-out rows' group labels"):
        dpe(x, y, None, x, y, g, num_classes=2, num_groups=4, balance="group", batch_size=8)
    keep = g != 3
    with pytest.raises(ValueError,
                       match=r"DPE's held-out rows per group need at least 1 each, got 3 \(b\): 0"):
        dpe(x[keep], y[keep], g[keep], x, y, g, num_classes=2, num_groups=4, balance="group", batch_size=8,
            group_names=["a", "c", "d", "b"])
    with pytest.raises(ValueError, match="balance must be one of"):
        dpe(x, y, g, x, y, g, num_classes=2, num_groups=4, balance="groups")


def test_each_members_subset_is_balanced_without_replacement_as_the_authors_subsample_draws():
    # The authors' `subsample` (src/dpe/datasets.py): every part (class or group) keeps exactly the
    # smallest part's count, no row twice, each row from its own part.
    from robustml.heads.dpe import balanced_parts
    data_rng = np.random.default_rng(0)
    for trial in range(50):
        num_parts = int(data_rng.integers(2, 6))
        parts = data_rng.integers(0, num_parts, size=int(data_rng.integers(num_parts * 3, 200)))
        parts[:num_parts] = np.arange(num_parts)  # every part present
        rows = balanced_parts(parts, num_parts, np.random.default_rng(trial))
        smallest = np.bincount(parts, minlength=num_parts).min()
        assert np.array_equal(np.bincount(parts[rows], minlength=num_parts), np.full(num_parts, smallest))
        assert len(np.unique(rows)) == len(rows)
