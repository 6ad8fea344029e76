"""EIIL: environments that make a frozen reference model as non-invariant as possible.

Creager, Jacobsen, Zemel, "Environment Inference for Invariant Learning", ICML 2021, Sec. 3,
Eq. 4 (the EI step): with the reference model ``f`` fixed, learn a soft assignment
``q_i = sigmoid(w_i)`` of every example to environment 1 (``1 - q_i`` to environment 2) that
maximizes the IRMv1 penalty

    P(q) = sum_e || d/ds  (1/N) sum_i q_i^e * loss(s * f(x_i), y_i) |_{s=1} ||^2 ,

then threshold ``q_i > 0.5``. As in the authors' Colored MNIST code, the weighted risks are means
over all ``N`` examples (not normalized by each environment's mass), ``w`` starts from a standard
normal draw and Adam (lr 0.001) runs 10,000 full-batch steps. The gradient with respect to the
dummy scale ``s`` is ``mean(q r)`` with ``r`` the closed form of IRMv1's per-example terms
(:func:`robustml.losses.functional.scale_gradients`, the one IRM penalties use), so
``P = mean(q r)^2 + mean((1 - q) r)^2`` needs no second backward pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from robustml.losses.functional import scale_gradients
from robustml.validation import check_int, check_real


@dataclass
class EIILResult:
    """Output of :func:`eiil_environments`.

    Attributes:
        env: Hard environment ids, shape ``(N,)``, int64 in ``{0, 1}`` (``q > 0.5`` is 0).
        q: Soft assignment to environment 0, shape ``(N,)``.
        penalty: The IRMv1 penalty of the reference model on the hard environments (the EI
            objective, evaluated after thresholding).
    """

    env: torch.Tensor
    q: torch.Tensor
    penalty: float


def eiil_penalty(r: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Return ``mean(q r)^2 + mean((1 - q) r)^2``, the EI objective of Creager et al. (Eq. 4).

    ``r`` comes from :func:`~robustml.losses.functional.scale_gradients`. With a hard assignment
    (``q`` in ``{0, 1}``) of ``n_1`` and ``n_2`` of the ``N`` examples, it is
    ``(n_1 / N)^2 P_1 + (n_2 / N)^2 P_2`` with ``P_e`` the
    :func:`~robustml.losses.functional.irm_penalty` of environment ``e``.
    """
    return (q * r).mean().pow(2) + ((1 - q) * r).mean().pow(2)


def eiil_environments(logits: torch.Tensor, target: torch.Tensor, *, num_steps: int = 10000,
                      lr: float = 0.001, seed: int = 0) -> EIILResult:
    """Infer two environments that maximize the reference model's IRMv1 penalty (EIIL's EI step).

    Args:
        logits: Frozen reference-model logits, shape ``(N, 1)`` or ``(N, C)``.
        target: Class ids, shape ``(N,)``, int64.
        num_steps: Adam steps on the per-example assignment logits (the authors use 10,000).
        lr: Adam's learning rate (the authors use 0.001).
        seed: Seed of the standard-normal initial assignment logits.

    Returns:
        :class:`EIILResult` with hard ids (``env = 0`` where ``sigmoid(w) > 0.5``).
    """
    num_steps = check_int("num_steps", num_steps, minimum=1)
    lr = check_real("lr", lr, minimum=0.0)
    r = scale_gradients(logits.detach().float(), target)  # float32 whatever the logits dtype
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    w = torch.randn(r.shape[0], generator=generator).to(r.device).requires_grad_()
    optimizer = torch.optim.Adam([w], lr=lr)
    for _ in range(num_steps):
        loss = -eiil_penalty(r, torch.sigmoid(w))  # the authors average the two terms: same argmax
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    q = torch.sigmoid(w.detach())
    env = (q <= 0.5).long()
    return EIILResult(env=env, q=q, penalty=float(eiil_penalty(r, (env == 0).float())))
