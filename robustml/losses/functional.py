"""Pure loss functions shared by every robust objective: the math (input checks: ``checks.py``).

The binary convention: logits of shape ``(N, 1)`` are one logit per example and use binary
cross-entropy with logits (the IRM paper's Colored MNIST model); logits of shape ``(N, C)`` with
``C >= 2`` use cross-entropy.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from robustml.losses.checks import check_inputs, check_logits, check_weight


def classification_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Return per-example losses, shape ``(N,)``: BCE with logits for ``(N, 1)``, else CE.

    Computed in float32 (or float64 for float64 logits) so that mixed-precision training keeps
    losses and penalties in full precision.
    """
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    if logits.shape[1] == 1:
        return F.binary_cross_entropy_with_logits(logits[:, 0], target.to(logits.dtype),
                                                  reduction="none")
    return F.cross_entropy(logits, target, reduction="none")


def num_outputs_for(num_classes: int) -> int:
    """Return the number of logits a model needs for ``num_classes`` under the binary convention."""
    return 1 if num_classes == 2 else num_classes


def predict(logits: torch.Tensor) -> torch.Tensor:
    """Return predicted class ids, shape ``(N,)``, following the binary convention.

    ``logits`` of shape ``(N, 1)`` (one logit per example, a binary task) predict class 1 where the
    logit is positive; shape ``(N, C)`` with ``C >= 2`` predicts the argmax.
    """
    check_logits(logits)
    if logits.shape[1] == 1:
        return (logits[:, 0] > 0).long()
    return logits.argmax(dim=1)


def probabilities(logits: torch.Tensor) -> torch.Tensor:
    """Return class probabilities, shape ``(N, max(C, 2))``, following the binary convention."""
    check_logits(logits)
    logits = logits.float()
    if logits.shape[1] == 1:
        p1 = torch.sigmoid(logits[:, 0])
        return torch.stack([1 - p1, p1], dim=1)
    return logits.softmax(dim=1)


def weighted_mean(values: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Return ``values.mean()``, or ``sum_i w_i v_i / sum_i w_i`` when ``weight`` is given.

    Args:
        values: Shape ``(N,)``, floating point.
        weight: Optional shape ``(N,)`` weights (see :func:`~robustml.losses.checks.check_weight`), cast to the dtype of
            ``values``.
    """
    if weight is None:
        return values.mean()
    weight = weight.to(values.dtype)
    return (weight * values).sum() / weight.sum()


def group_sums(values: torch.Tensor, groups: torch.Tensor, *, num_groups: int,
               weight: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Return per-group sums of ``values`` and per-group counts, each shape ``(num_groups,)``.

    With ``weight``, return the weighted sums ``sum_{i in g} w_i v_i`` and the weight sums
    ``sum_{i in g} w_i`` instead (integer weights count each example ``w_i`` times). Uses a
    one-hot mask rather than ``index_add`` so the result is deterministic on every device and
    differentiable with respect to ``values`` (and ``weight``); no matmul, so autocast keeps the
    dtype.

    Args:
        values: Shape ``(N,)``, floating point.
        groups: Shape ``(N,)``, int64 ids in ``[0, num_groups)``.
        num_groups: Number of groups.
        weight: Optional per-example weights, shape ``(N,)``, cast to the dtype of ``values``.
    """
    membership = F.one_hot(groups, num_groups).to(values.dtype)  # (N, G)
    if weight is not None:
        membership = membership * weight.to(values.dtype)[:, None]
    return (membership * values[:, None]).sum(dim=0), membership.sum(dim=0)


def scale_gradients(logits: torch.Tensor, target: torch.Tensor, *,
                    validate_args: bool = True) -> torch.Tensor:
    """Return ``r_i = d/dw loss(w * z_i, y_i)`` at ``w = 1`` per example, in closed form.

    The terms of the IRMv1 gradient (Arjovsky et al. 2019), which the IRM penalties and EIIL's
    environment inference average: ``r_i = (sigmoid(z_i) - y_i) * z_i`` for one logit (BCE),
    ``r_i = sum_c (softmax(z_i)_c - onehot(y_i)_c) * z_ic`` for ``C >= 2`` logits (CE).

    Args:
        logits: Shape ``(N, C)``.
        target: Shape ``(N,)``, int64 class ids.
        validate_args: Check the inputs; ``False`` for inputs a caller has checked.

    Returns:
        ``r``, shape ``(N,)``, float32 (float64 for float64 logits).
    """
    if validate_args:
        check_inputs(logits, target)
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    if logits.shape[1] == 1:
        z = logits[:, 0]
        return (torch.sigmoid(z) - target.to(z.dtype)) * z
    onehot = F.one_hot(target, logits.shape[1]).to(logits.dtype)
    return ((logits.softmax(dim=1) - onehot) * logits).sum(dim=1)


def _halves(n: int, generator: torch.Generator | None,
            device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Return two disjoint halves of ``range(n)``: interleaved, or random from ``generator``."""
    if n < 2:
        raise ValueError(f"logits: the unbiased IRM penalty splits an environment's batch into two "
                         f"halves, so logits must have at least 2 examples, got {n}")
    if generator is None:
        order = torch.arange(n, device=device)
    else:
        order = torch.randperm(n, generator=generator, device=generator.device).to(device)
    return order[0::2], order[1::2]


def irm_penalty(logits: torch.Tensor, target: torch.Tensor, *, unbiased: bool = False,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Return the IRMv1 penalty of one environment in closed form (no second backward pass).

    Arjovsky et al. 2019, IRMv1: ``||d/dw R_e(w * f(x))|_{w=1}||^2``; :func:`mean_irm_penalty`
    averages it over environments. The derivative is ``g = mean_i r_i`` (``r`` from
    :func:`scale_gradients`); the biased estimate is ``g ** 2``, the paper's unbiased estimate
    ``g_1 * g_2`` over two disjoint halves of the batch: positions ``0, 2, 4, ...`` and
    ``1, 3, 5, ...`` (the loader already shuffles), or a random split drawn from ``generator``
    when one is given.

    Args:
        logits: Shape ``(N, C)``, the environment's examples only.
        target: Shape ``(N,)``, int64 class ids.
        unbiased: Use the two-halves estimator (needs ``N >= 2``).
        generator: Optional generator for a random split (unbiased only).

    Returns:
        Scalar penalty, float32 (float64 for float64 logits).
    """
    return _square_of_mean(scale_gradients(logits, target), unbiased=unbiased, generator=generator)


def _square_of_mean(values: torch.Tensor, *, unbiased: bool,
                    generator: torch.Generator | None) -> torch.Tensor:
    """Return ``values.mean() ** 2``, or the product of the means of two halves if ``unbiased``."""
    if not unbiased:
        return values.mean() ** 2
    first, second = _halves(values.shape[0], generator, values.device)
    return values[first].mean() * values[second].mean()


def irm_penalty_autograd(logits: torch.Tensor, target: torch.Tensor, *,
                         loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                         unbiased: bool = False,
                         generator: torch.Generator | None = None) -> torch.Tensor:
    """Return the IRMv1 penalty of one environment by differentiating through a dummy multiplier.

    Arjovsky et al. 2019, IRMv1 with ``create_graph=True``: works for any per-example loss, at the
    cost of a second backward pass. Halves for ``unbiased`` are chosen as in :func:`irm_penalty`.

    Args:
        logits: Shape ``(N, C)``, the environment's examples only.
        target: Shape ``(N,)``, int64 class ids.
        loss_fn: ``loss_fn(logits, target) -> (N,)`` per-example losses, e.g.
            :func:`classification_loss`.
        unbiased: Use the two-halves estimator (needs ``N >= 2``).
        generator: Optional generator for a random split (unbiased only).
    """
    check_inputs(logits, target)
    dtype = torch.float32 if logits.dtype in (torch.float16, torch.bfloat16) else logits.dtype
    with torch.enable_grad():
        scale = torch.ones((), dtype=dtype, device=logits.device, requires_grad=True)
        losses = loss_fn(logits * scale, target)
        if not unbiased:
            (grad,) = torch.autograd.grad(losses.mean(), scale, create_graph=True)
            return grad ** 2
        first, second = _halves(losses.shape[0], generator, losses.device)
        (grad_1,) = torch.autograd.grad(losses[first].mean(), scale, create_graph=True)
        (grad_2,) = torch.autograd.grad(losses[second].mean(), scale, create_graph=True)
        return grad_1 * grad_2


def _environments(groups: torch.Tensor, penalty: str,
                  weight: torch.Tensor | None = None) -> list[int]:
    """Return the sorted environment ids present in ``groups``; raise if fewer than 2.

    With ``weight``, an environment is present when its examples' weights sum to more than 0.
    """
    envs = torch.unique(groups).tolist()
    if weight is not None:
        envs = torch.unique(groups[weight.detach() > 0]).tolist()
    if len(envs) < 2:
        kind = "environments" if weight is None else "environments with positive total weight"
        raise ValueError(f"groups: the {penalty} compares environments, so groups must hold at "
                         f"least 2 {kind}, found {len(envs)} ({envs}); pass environment ids as "
                         "groups, and batches that hold every environment")
    return envs


def mean_irm_penalty(logits: torch.Tensor, target: torch.Tensor, groups: torch.Tensor, *,
                     num_groups: int | None = None, unbiased: bool = False,
                     closed_form: bool = True,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Return the IRMv1 penalty averaged over the environments present in the batch.

    The mean over environments of :func:`irm_penalty`, the penalty of one environment.

    Arjovsky et al. 2019, Eq. IRMv1; the reference Colored MNIST code averages the per-environment
    penalties over its training environments, as done here.

    Args:
        logits: Shape ``(N, C)``.
        target: Shape ``(N,)``, int64 class ids.
        groups: Shape ``(N,)``, int64 environment ids; at least 2 distinct ids.
        num_groups: Optional bound the ids must lie below.
        unbiased: Use the two-halves estimator in every environment.
        closed_form: Use :func:`irm_penalty`; otherwise :func:`irm_penalty_autograd` with
            :func:`classification_loss`.
        generator: Optional generator for random halves (unbiased only).
    """
    check_inputs(logits, target, groups, num_groups=num_groups)
    gradients = scale_gradients(logits, target, validate_args=False) if closed_form else None
    penalties = []
    for env in _environments(groups, "IRM penalty"):
        mask = groups == env
        if unbiased and int(mask.sum()) < 2:
            raise ValueError(f"groups: the unbiased IRM penalty splits each environment's batch "
                             f"into two halves, so groups must give every environment at least 2 "
                             f"examples, got 1 in environment {env}")
        if gradients is not None:
            penalties.append(_square_of_mean(gradients[mask], unbiased=unbiased,
                                             generator=generator))
        else:
            penalties.append(irm_penalty_autograd(logits[mask], target[mask],
                                                  loss_fn=classification_loss,
                                                  unbiased=unbiased, generator=generator))
    return torch.stack(penalties).mean()


def vrex_penalty(logits: torch.Tensor, target: torch.Tensor, groups: torch.Tensor, *,
                 num_groups: int | None = None,
                 weight: torch.Tensor | None = None) -> torch.Tensor:
    """Return the V-REx penalty over environments: the variance of the per-environment risks.

    Krueger et al., ICML 2021, the V-REx penalty ``Var_e(R_e)`` over the environments present in
    the batch, as a population variance (divide by the number of environments), as DomainBed's
    VREx computes it. The authors' Colored MNIST code uses ``(R_1 - R_2) ** 2`` for its two
    environments, 4 times this value: its weight ``w`` corresponds to ``4 * w`` here.

    With ``weight``, each risk is the weighted mean ``R_e = sum_{i in e} w_i l_i / sum_{i in e}
    w_i`` and an environment whose weights sum to 0 counts as absent, so an example of weight 0
    has no influence and integer weights equal repeating examples.

    Args:
        logits: Shape ``(N, C)``.
        target: Shape ``(N,)``, int64 class ids.
        groups: Shape ``(N,)``, int64 environment ids; at least 2 distinct ids (with positive
            total weight when ``weight`` is given).
        num_groups: Optional bound the ids must lie below.
        weight: Optional per-example weights, shape ``(N,)``, finite, ``>= 0``, not all zero.
    """
    check_inputs(logits, target, groups, num_groups=num_groups)
    check_weight(weight, logits.shape[0])
    _environments(groups, "V-REx penalty", weight)  # raises unless >= 2 environments are present
    sums, totals = group_sums(classification_loss(logits, target), groups,
                              num_groups=int(groups.max()) + 1, weight=weight)
    present = totals > 0
    return (sums[present] / totals[present]).var(correction=0)
