"""Every random state a run draws from, as tensors (so checkpoints load with ``weights_only=True``).

A run draws from Python's ``random``, numpy's global generator, torch's CPU generator (dropout,
initialization), every CUDA device's generator, and the ``torch.Generator`` objects its pieces
own (counterfactual augmentation and its rule, a loss's random halves: the latter are saved by
the loss's own ``state_dict``). Data order needs no state: each epoch's order is a function of
``(seed, epoch)`` (:func:`robustml.data.samplers.epoch_order`), and the DataLoader path carries a
seed per example, so the position ``(epoch, batch)`` restores it.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch


def _python_state() -> dict[str, Any]:
    version, internal, gauss_next = random.getstate()
    return {"version": version, "internal": torch.tensor(internal, dtype=torch.int64),
            "gauss_next": gauss_next}


def _numpy_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    return {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)}


def capture_rng(generators: Iterable[torch.Generator] = ()) -> dict[str, Any]:
    """Return the global random states and those of ``generators``, as tensors and primitives.

    Args:
        generators: The ``torch.Generator`` objects a run's pieces own, in a fixed order.

    Returns:
        ``{"python", "numpy", "torch", "cuda", "generators"}``; ``cuda`` is a list with one
        state per visible device (empty without CUDA).
    """
    return {"python": _python_state(), "numpy": _numpy_state(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "generators": [g.get_state() for g in generators]}


def restore_rng(state: dict[str, Any], generators: Iterable[torch.Generator] = ()) -> None:
    """Set the states captured by :func:`capture_rng` (``generators`` in the same order).

    Raises:
        ValueError: If the number of generators or CUDA devices differs from the saved one.
    """
    generators = list(generators)
    if len(generators) != len(state["generators"]):
        raise ValueError(f"the checkpoint holds {len(state['generators'])} generator states, but "
                         f"this run has {len(generators)} generators; was it saved by another config?")
    python = state["python"]
    random.setstate((python["version"], tuple(int(v) for v in python["internal"].tolist()),
                     python["gauss_next"]))
    numpy = state["numpy"]
    np.random.set_state((numpy["kind"], numpy["keys"].numpy().astype(np.uint32), numpy["pos"],
                         numpy["has_gauss"], numpy["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if state["cuda"]:
        if not torch.cuda.is_available() or torch.cuda.device_count() != len(state["cuda"]):
            raise ValueError(f"the checkpoint holds the random states of {len(state['cuda'])} CUDA "
                             f"device(s), but {torch.cuda.device_count() if torch.cuda.is_available() else 0} "
                             "are visible; resume on the same devices")
        torch.cuda.set_rng_state_all(state["cuda"])
    for generator, saved in zip(generators, state["generators"]):
        generator.set_state(saved)


def unique_generators(*owners: Any) -> list[torch.Generator]:
    """Return the ``generator`` attributes of ``owners`` and of their ``rule`` (no duplicates).

    Counterfactual augmentation holds a generator, and its rule may hold another (donor draws).
    """
    found: list[torch.Generator] = []
    for owner in owners:
        for holder in (owner, getattr(owner, "rule", None)):
            generator = getattr(holder, "generator", None)
            if isinstance(generator, torch.Generator) and all(generator is not g for g in found):
                found.append(generator)
    return found


def seed_everything(seed: int, device: torch.device | str = "cpu") -> None:
    """Seed Python's ``random``, numpy's global generator and torch; on CUDA, also ask torch for
    deterministic algorithms.

    The one place robustml touches the process's global random state: a run's entry
    (:func:`robustml.pipeline.run.run`, an ERM stage, ``robustml-clean``) calls it, and a user's
    own loop may too. Library pieces (losses, samplers, datasets, cleaning, DFR) draw from their
    own generators and leave the global states as they found them.

    The CPU kernels robustml uses are deterministic for a given thread count (exact resume is
    tested on them); the switch matters for CUDA's atomics-based kernels. It is left off on the
    CPU because it imports torch's compiler stack (``torch._inductor``), about 2 s per run.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.device(device).type == "cuda":
        torch.use_deterministic_algorithms(True, warn_only=True)
