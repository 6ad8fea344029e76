"""A base loss plus weighted, scheduled penalties (the IRM / V-REx objective shape).

``PenalizedLoss`` computes ``base + sum_k w_k(t) * penalty_k`` where ``w_k(t)`` is
``warmup_weight`` before step ``anneal_steps[k]`` and ``weights[k]`` from then on (Arjovsky et
al. 2019, reference Colored MNIST code: weight 1.0 until ``penalty_anneal_iters``, then
``lambda``; the whole loss is divided by ``lambda`` when ``lambda > 1``).

Configs. A trainer builds losses with
``hydra.utils.instantiate(cfg.loss.criterion, **runtime)``, where ``runtime`` (``num_groups``,
``group_counts``) is filtered to the arguments the top-level ``_target_`` accepts. Nested
``_target_`` nodes get none of it, so the parts of a ``PenalizedLoss`` are written as
``_partial_: true`` nodes, and ``PenalizedLoss`` completes each with ``num_groups``::

    criterion:
      _target_: robustml.losses.PenalizedLoss
      base: {_target_: robustml.losses.ERMLoss, _partial_: true}
      penalties:
        vrex: {_target_: robustml.losses.VRExPenalty, _partial_: true}
      weights: {vrex: 100.0}
      anneal_steps: 190

Only ``num_groups`` is completed; a part that needs ``group_counts`` (a Group DRO base with
``adjustment > 0``) must be built in code. The usual objectives have flat configs through
:class:`~robustml.losses.IRMLoss` and :class:`~robustml.losses.VRExLoss`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from numbers import Integral

import torch
from torch import nn

from robustml.losses.base import GroupLoss, environments_argument
from robustml.losses.checks import check_finite, check_inputs, check_nonnegative, check_weight

class PenalizedLoss(GroupLoss):
    """Return ``scale * (base + sum_k w_k(t) * penalty_k)`` with scheduled penalty weights.

    Step ``t`` counts the calls that update the state (a registered buffer, so a resumed run
    continues the schedule): by default every training-mode call; ``update=`` says it
    explicitly. Other calls use the current weights and change nothing.

    Gradient accumulation and logging calls: the schedule must advance once per optimizer step,
    so a loop that calls the loss several times per step passes ``update=False`` to all calls
    of the step but one (e.g. ``update=step_is_done`` on the last micro-batch); every call of
    the step then uses the same weights. Parts whose ``forward`` takes ``update`` (the random
    halves of :class:`~robustml.losses.IRMPenalty`, a nested penalized loss, Group DRO as a
    base) get the same value. The penalties themselves are nonlinear in the batch (a variance,
    a squared mean gradient), so micro-batches of an environment penalize their own risks,
    as DDP processes do. A Group DRO base is not exact under micro-batching this way: its ``q``
    would be updated from the one micro-batch that passes ``update=True``, and the micro-batches
    of a step would use different ``q``, and ``forward`` passes no ``batch_counts`` to its base.
    To micro-batch a Group DRO base exactly, use it as a loss of its own, with the recipe that
    :class:`~robustml.losses.GroupDROLoss` documents (and tests), beside a penalized loss.

    Per-example weights: a given ``weight`` goes to the base loss (whose risk becomes weighted,
    see its docs) and to every penalty, which decides what it weights:
    :class:`~robustml.losses.VRExPenalty` weights its environment risks,
    :class:`~robustml.losses.IRMPenalty` and
    :class:`~robustml.losses.CounterfactualConsistencyPenalty` ignore it. With ``weight=None``
    the parts get the three-argument call, so a penalty without a ``weight`` keyword still works
    unweighted.

    Args:
        num_groups: Number of groups (or environments); ids lie in ``[0, num_groups)``.
        base: The base loss, a :class:`GroupLoss`, or a callable ``base(num_groups=...)``
            returning one (a Hydra ``_partial_`` node).
        penalties: Name -> penalty module with ``forward(logits, target, groups) -> scalar``
            (and a keyword ``weight`` to be used with weights), or a callable
            ``penalty(num_groups=...)`` returning one. Names become log keys.
        weights: Name -> weight ``lambda_k >= 0`` used from the anneal step on.
        anneal_steps: Step at which each penalty switches from ``warmup_weight`` to its weight
            (one int for all, or name -> int). 0 uses ``weights`` from the start.
        warmup_weight: Weight of every penalty before its anneal step (1.0 in the IRM paper).
        rescale: Divide the total by the largest current weight when it exceeds 1, and set
            ``loss_scale`` to that factor (a trainer multiplies an external L2 term by it).

    Attributes:
        step: Number of training-mode calls so far, int64 scalar buffer.
        anneal_reached_now: True after an updating call whose step equals a positive anneal
            step, i.e. the first step with the full weight. A trainer may reset its optimizer
            then, as DomainBed does for IRM and VREx (its Adam moments were sized to the small
            warm-up loss); False after every other updating call. A trainer reads it, with
            every wrapped loss's (an IRM loss inside a consistency penalty too), through
            :meth:`~robustml.losses.GroupLoss.step_signals`.

    Log keys: ``loss_base``, ``penalty_<name>`` and ``weight_<name>``, then the base loss's own
    keys; a base key that would overwrite one of these gets the prefix ``base_`` (IRM wrapped
    by a consistency penalty logs the IRM objective as ``loss_base`` and its mean loss as
    ``base_loss_base``).
    """

    def __init__(self, num_groups: int, base: GroupLoss | Callable[..., GroupLoss],
                 penalties: Mapping[str, nn.Module | Callable[..., nn.Module]], *,
                 weights: Mapping[str, float],
                 anneal_steps: Mapping[str, int] | int = 0, warmup_weight: float = 1.0,
                 rescale: bool = True) -> None:
        super().__init__(num_groups)
        self.base = _complete(base, "base", self.num_groups)
        if not isinstance(self.base, GroupLoss):
            raise TypeError(f"base must be a robustml GroupLoss, got {type(self.base).__name__}")
        if not penalties:
            raise ValueError("penalties must name at least one penalty module, got none")
        self.penalties = nn.ModuleDict({str(name): _complete(part, f"penalties[{name!r}]",
                                                             self.num_groups)
                                        for name, part in penalties.items()})
        names = list(self.penalties)
        self.penalty_weights = {name: check_nonnegative(f"weights[{name!r}]", value)
                                for name, value in _per_penalty("weights", weights, names).items()}
        if not isinstance(anneal_steps, Mapping):
            anneal_steps = dict.fromkeys(names, anneal_steps)
        self.anneal_steps = {name: _nonnegative_int(f"anneal_steps[{name!r}]", value)
                             for name, value in _per_penalty("anneal_steps", anneal_steps,
                                                             names).items()}
        self.warmup_weight = check_nonnegative("warmup_weight", warmup_weight)
        self.rescale = bool(rescale)
        self._takes_update = {name: _takes_update(part) for name, part in
                              [("base", self.base), *self.penalties.items()]}
        self.register_buffer("step", torch.zeros((), dtype=torch.int64))
        self.anneal_reached_now = False
        self._last_values: dict[str, torch.Tensor] = {}
        self._last_weights: dict[str, float] = {}

    def current_weights(self) -> dict[str, float]:
        """Return each penalty's weight at the current step."""
        step = int(self.step)
        return {name: weight if step >= self.anneal_steps[name] else self.warmup_weight
                for name, weight in self.penalty_weights.items()}

    def forward(self, logits: torch.Tensor, target: torch.Tensor, groups: torch.Tensor, *,
                weight: torch.Tensor | None = None, update: bool | None = None) -> torch.Tensor:
        """Return the (rescaled) penalized loss; when updating, advance the schedule.

        Args:
            logits: Shape ``(N, C)``.
            target: Shape ``(N,)``, int64 class ids.
            groups: Shape ``(N,)``, int64 ids in ``[0, num_groups)``.
            weight: Optional per-example weights, shape ``(N,)``, finite, ``>= 0``, not all zero;
                passed to the base loss and every penalty.
            update: Advance the step counter (and the parts' state); ``None``: in training mode.
        """
        check_inputs(logits, target, groups, num_groups=self.num_groups)
        check_weight(weight, logits.shape[0])
        update = self.training if update is None else bool(update)
        weights = self.current_weights()
        extra = {} if weight is None else {"weight": weight}  # None: the three-argument call

        def call(name: str, part: nn.Module) -> torch.Tensor:
            return part(logits, target, groups, **extra,
                        **({"update": update} if self._takes_update[name] else {}))

        base_loss = call("base", self.base)
        values = {name: call(name, penalty) for name, penalty in self.penalties.items()}
        total = base_loss + sum(weights[name] * value for name, value in values.items())
        largest = max(weights.values())
        scale = 1.0 / largest if self.rescale and largest > 1.0 else 1.0
        loss = check_finite(total * scale, "penalized loss")
        if update:
            step = int(self.step)
            self.anneal_reached_now = any(step == at > 0 for at in self.anneal_steps.values())
            self.step += 1
            self.loss_scale = scale
            self._last_values = {"loss_base": base_loss.detach(),
                                 **{f"penalty_{name}": v.detach() for name, v in values.items()}}
            self._last_weights = weights
        return loss

    def log_values(self) -> dict[str, float]:
        """Return the last training step's base loss, each ``penalty_<name>`` and ``weight_<name>``.

        Also includes the base loss's own log values (e.g. Group DRO's ``q_<g>``); a base key
        equal to one of this loss's keys gets the prefix ``base_``.
        """
        values = {key: float(value) for key, value in self._last_values.items()}
        weights = self._last_weights or self.current_weights()
        values.update({f"weight_{name}": weight for name, weight in weights.items()})
        for key, value in self.base.log_values().items():
            while key in values:
                key = f"base_{key}"
            values[key] = value
        return values


def _takes_update(part: nn.Module) -> bool:
    """Return whether ``part.forward`` accepts the keyword ``update`` (a stateful part)."""
    return "update" in inspect.signature(part.forward).parameters


def _complete(part: nn.Module | Callable[..., nn.Module], name: str, num_groups: int) -> nn.Module:
    """Return ``part`` if a module (checking its ``num_groups``), else ``part(num_groups=...)``."""
    if not isinstance(part, nn.Module):
        if not callable(part):
            raise TypeError(f"{name} must be an nn.Module or a callable returning one, "
                            f"got {type(part).__name__}")
        part = part(num_groups=num_groups)
        if not isinstance(part, nn.Module):
            raise TypeError(f"{name}(num_groups=...) must return an nn.Module, "
                            f"got {type(part).__name__}")
    own = getattr(part, "num_groups", num_groups)
    if own != num_groups:
        raise ValueError(f"{name} was built with num_groups={own}, but the penalized loss has "
                         f"num_groups={num_groups}")
    return part


def _per_penalty(argument: str, mapping: Mapping, names: list[str]) -> dict:
    """Return ``mapping`` as a dict; raise ``ValueError`` unless its keys are the penalty names."""
    given = {str(key): value for key, value in mapping.items()}
    if sorted(given) != sorted(names):
        raise ValueError(f"{argument} must have one entry per penalty, keys {sorted(names)}, "
                         f"got keys {sorted(given)}")
    return given


def _nonnegative_int(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


class EnvironmentPenalizedLoss(PenalizedLoss):
    """A :class:`PenalizedLoss` over environments (IRM, V-REx): ``envs=`` aliases ``groups``."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor, groups: torch.Tensor | None = None,
                *, weight: torch.Tensor | None = None, envs: torch.Tensor | None = None,
                update: bool | None = None) -> torch.Tensor:
        """Return the (rescaled) penalized loss; environment ids as ``groups`` or ``envs``.

        ``update`` advances the schedule (default: in training mode; see :class:`PenalizedLoss`).
        """
        return super().forward(logits, target, environments_argument(groups, envs), weight=weight,
                               update=update)
