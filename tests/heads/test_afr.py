"""AFR against a transcription of the authors' notebook step, hand-computed weights, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import support
from robustml.heads import afr, afr_weights
from robustml.heads.afr import two_logit_head


def planted(n: int, minority: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, y, groups = support.planted(n, minority, seed, noise=3)
    return x.astype(np.float32), y, groups


# An ERM head that follows the spurious feature most and the core feature a little.
W0 = torch.tensor([[0.3, -1.0, 0.0, 0.0, 0.0], [0.9, 1.0, 0.0, 0.0, 0.0]])
B0 = torch.tensor([0.5, -2.0])


# --- The authors' step, transcribed from AndPotap/afr notebooks/wb_celeba.ipynb --------------------
# ``compute_afr_weights``, ``train`` (early_stop="wga", opt="sgd", plot=False) and the grid loop of
# ``sweep`` (random=False: lr, gamma, reg_coeff, balance_classes nested in that order; the best
# val_wga with a strict >), on CPU tensors instead of .cuda(), with ``get_accs`` as written there.

def ref_get_accs(preds, y, groups):
    return [(preds == y)[groups == g].float().mean().item() for g in range(groups.max() + 1)]


def ref_compute_afr_weights(erm_logits, class_label, gamma, balance_classes):
    with torch.no_grad():
        p = erm_logits.softmax(-1)
        y_onehot = torch.zeros_like(erm_logits).scatter_(-1, class_label.unsqueeze(-1), 1)
        p_true = (p * y_onehot).sum(-1)
        weights = (-gamma * p_true).exp()
        n_classes = torch.unique(class_label).numel()
        if balance_classes:
            class_count = []
            for y in range(n_classes):
                class_count.append((class_label == y).sum())
            for y in range(1, n_classes):
                weights[class_label == y] *= class_count[0] / class_count[y]
        weights /= weights.sum()
    return weights


def ref_train(emb, num_epochs, gamma, reg_coeff, lr):
    e, y = emb["e"], emb["y"]
    w0, b0 = emb["w0"], emb["b0"]

    class Model(torch.nn.Module):
        def __init__(self, w0, b0):
            super().__init__()
            self.w0, self.b0 = w0, b0
            self.linear = torch.nn.Linear(w0.shape[1], w0.shape[0], bias=True)

        def forward(self, x):
            return x @ self.w0.t() + self.b0 + self.linear(x)

    model = Model(w0, b0)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, weight_decay=0., momentum=0.)
    weights = ref_compute_afr_weights(e @ w0.t() + b0, y, gamma, True)
    val_wgas, test_wgas, states = [], [], []
    for _ in range(num_epochs):
        optimizer.zero_grad()
        logits = model(e)
        loss = (weights * torch.nn.functional.cross_entropy(logits, y, reduction="none")).sum()
        loss += reg_coeff * (model.linear.weight.pow(2).sum() + model.linear.bias.pow(2).sum())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.)
        optimizer.step()
        with torch.no_grad():
            val_wgas.append(min(ref_get_accs(torch.argmax(model(emb["val_e"]), -1), emb["val_y"],
                                             emb["val_g"])))
            test_wgas.append(min(ref_get_accs(torch.argmax(model(emb["test_e"]), -1), emb["test_y"],
                                              emb["test_g"])))
            states.append((model.linear.weight.clone(), model.linear.bias.clone()))
    epoch = int(np.argmax(val_wgas))
    return np.max(val_wgas), test_wgas[epoch], epoch, states[epoch]


def ref_sweep(emb, gammas, regs, lr, num_epochs, seed):
    torch.manual_seed(seed)
    best_vwga, best, scores = 0, None, {}
    for gamma in gammas:
        for reg in regs:
            val_wga, test_wga, epoch, state = ref_train(emb, num_epochs, gamma, reg, lr)
            scores[(gamma, reg)] = val_wga
            if val_wga > best_vwga:
                best_vwga, best = val_wga, (gamma, reg, epoch, test_wga, state)
    return best, scores
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data():
    x, y, _ = planted(300, 0.1, 0)
    vx, vy, vg = planted(200, 0.3, 1)
    tx, ty, tg = planted(400, 0.5, 2)
    return x, y, vx, vy, vg, tx, ty, tg


def _emb(data, w0, b0):
    x, y, vx, vy, vg, tx, ty, tg = data
    t = torch.from_numpy
    return dict(e=t(x), y=t(y), val_e=t(vx), val_y=t(vy), val_g=t(vg), test_e=t(tx), test_y=t(ty),
                test_g=t(tg), w0=w0, b0=b0)


@pytest.mark.parametrize("one_logit", [False, True], ids=["two_logits", "one_logit"])
def test_afr_matches_the_authors_sweep_with_the_same_seed(data, one_logit):
    gammas, regs, lr, epochs, seed = [0.0, 2.0, 6.0], [0.0, 0.1], 0.05, 40, 3
    x, y, vx, vy, vg, tx, ty, tg = data
    # One binary logit z is the two-logit head [0, z]: the authors' code runs on that head.
    w0, b0 = (W0[1:] - W0[:1], B0[1:] - B0[:1]) if one_logit else (W0, B0)
    (gamma, reg, epoch, test_wga, state), scores = ref_sweep(_emb(data, *two_logit_head(w0, b0)),
                                                               gammas, regs, lr, epochs, seed)
    result = afr(x, y, w0, b0, vx, vy, vg, num_groups=4, gammas=gammas, regs=regs, lr=lr,
                 num_epochs=epochs, seed=seed)
    assert (result.gamma, result.reg, result.epoch) == (gamma, reg, epoch + 1)
    assert result.tuning == pytest.approx(scores, abs=1e-6)  # the authors average in float32
    assert len(set(scores.values())) > 2  # the grid's scores differ: the choice is not a tie
    base_w, base_b = two_logit_head(w0, b0)
    torch.testing.assert_close(result.weight, base_w + state[0], rtol=0, atol=1e-6)
    torch.testing.assert_close(result.bias, base_b + state[1], rtol=0, atol=1e-6)
    preds = result.predict(tx)
    assert min((preds == ty)[tg == g].mean() for g in range(4)) == pytest.approx(test_wga, abs=1e-6)
    weight, bias = result.linear()  # robustml's convention: one logit for two classes
    assert weight.shape == (1, 5)
    logit = torch.from_numpy(tx) @ weight.T + bias
    np.testing.assert_array_equal((logit[:, 0] > 0).numpy().astype(int), preds)


def test_afr_weights_by_hand():
    logits = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0], [0.0, math.log(4.0)]])
    target = torch.tensor([0, 0, 1])
    # p_true = 1/2, 3/4, 4/5; gamma = 2: exp(-1), exp(-1.5), exp(-1.6); class 1 times n0/n1 = 2.
    raw = torch.tensor([math.exp(-1.0), math.exp(-1.5), 2 * math.exp(-1.6)])
    torch.testing.assert_close(afr_weights(logits, target, 2.0), raw / raw.sum())
    plain = torch.tensor([math.exp(-1.0), math.exp(-1.5), math.exp(-1.6)])
    torch.testing.assert_close(afr_weights(logits, target, 2.0, balance_classes=False), plain / plain.sum())
    assert afr_weights(logits, target, 0.0, balance_classes=False).tolist() == pytest.approx([1 / 3] * 3)


def test_afr_bad_input_names_the_argument(data):
    x, y, vx, vy, vg, *_ = data
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="AFR's held-out features hold 1 NaN or infinite values"):
        afr(bad, y, W0, B0, vx, vy, vg, num_groups=4)
    with pytest.raises(ValueError, match=r"AFR's held-out rows per class need at least 1 each, got 1: 0"):
        afr(x[y == 0], y[y == 0], W0, B0, vx, vy, vg, num_groups=4)
    with pytest.raises(ValueError, match=r"erm_weight must have shape \(C, 5\)"):
        afr(x, y, W0[:, :3], B0, vx, vy, vg, num_groups=4)
    with pytest.raises(ValueError,
                       match=r"gammas must be a non-empty list of finite numbers >= 0, got \[-1.0\]"):
        afr(x, y, W0, B0, vx, vy, vg, num_groups=4, gammas=[-1])
    with pytest.raises(ValueError, match="num_epochs"):
        afr(x, y, W0, B0, vx, vy, vg, num_groups=4, num_epochs=0)
