"""Any torchvision classification model by name, with its head replaced for the task.

``TorchvisionClassifier((3, 224, 224), 1, arch="resnet50", weights="IMAGENET1K_V1")`` builds
torchvision's ResNet-50, loads ImageNet weights (from torch's hub cache, downloading them when
online) and swaps the 1000-way last linear layer for a new ``head``. ``weights`` may instead be a
local file (a state dict in torchvision's layout, e.g. the downloaded ``resnet50-0676ba61.pth``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from urllib.error import URLError

import torch
from torch import nn

from robustml._torchvision import import_torchvision


def _models():
    import_torchvision()
    import torchvision.models as models

    return models


def last_linear(net: nn.Module) -> tuple[nn.Module, str, nn.Linear]:
    """Return ``(parent, attribute name, layer)`` of the last ``nn.Linear`` of ``net`` in the order
    of ``named_modules()`` (the layer that computes the outputs, in torchvision's and
    transformers' classifiers alike)."""
    found = None
    for qualname, module in net.named_modules():
        if isinstance(module, nn.Linear):
            found = qualname, module
    if found is None:
        raise ValueError(f"{type(net).__name__} has no nn.Linear layer to replace with a new head")
    parent_name, _, name = found[0].rpartition(".")
    return net.get_submodule(parent_name), name, found[1]


def _cache_path(url: str) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def _read_state_dict(arch: str, weights: str) -> dict[str, torch.Tensor]:
    """Return the state dict named by ``weights``: a local file, or a torchvision weight enum name."""
    models = _models()
    looks_like_path = os.sep in weights or weights.endswith((".pt", ".pth", ".bin")) or Path(weights).exists()
    if looks_like_path:
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(f"weights={weights!r}: no such file")
        state = torch.load(path, map_location="cpu", weights_only=True)
        for key in ("state_dict", "model"):
            if isinstance(state, dict) and isinstance(state.get(key), dict):
                state = state[key]
        return state
    enum = models.get_model_weights(arch)
    name = weights.rsplit(".", 1)[-1]
    if name not in enum.__members__:
        raise ValueError(f"weights={weights!r} is neither a file nor a weight of {arch}; valid "
                         f"names: {', '.join(enum.__members__)}, or a path to a state-dict file")
    entry = enum[name]
    cached = _cache_path(entry.url)
    if cached.is_file():
        return torch.load(cached, map_location="cpu", weights_only=True)
    try:
        return entry.get_state_dict(progress=True, check_hash=True)
    except (URLError, OSError) as error:
        raise FileNotFoundError(
            f"weights={weights!r}: could not download {entry.url} ({error}). Offline, download "
            f"that file elsewhere and either put it at {cached} (torch's hub cache, TORCH_HOME) or "
            "pass weights='/path/to/file.pth'") from error


class TorchvisionClassifier(nn.Module):
    """A torchvision classification model with a new last linear layer of ``num_outputs`` logits.

    Args:
        input_shape: ``(channels, height, width)`` of one example (three channels).
        num_outputs: Number of logits.
        arch: A name from ``torchvision.models.list_models()`` (``"resnet18"``, ``"resnet50"``,
            ``"convnext_tiny"``, ...).
        weights: ``None`` (random initialization), a torchvision weight name (``"DEFAULT"``,
            ``"IMAGENET1K_V1"``), or the path of a state-dict file in torchvision's layout. The
            file's head, if any, is ignored: the head is always new.

    Raises:
        ValueError: Unknown ``arch`` or weight name (the valid ones are listed), or a weights file
            whose keys or shapes do not match the architecture (the mismatched keys are named).
        FileNotFoundError: A weights file is missing, or named weights cannot be downloaded (the
            message says where to put the file).
    """

    def __init__(self, input_shape: Sequence[int], num_outputs: int, *, arch: str = "resnet18",
                 weights: str | None = None) -> None:
        super().__init__()
        models = _models()
        valid = models.list_models(module=models)
        if arch not in valid:
            raise ValueError(f"arch={arch!r} is not a torchvision classification model; valid: "
                             f"{', '.join(valid)}")
        if len(input_shape) != 3 or input_shape[0] != 3:
            raise ValueError(f"input_shape must be (3, height, width) for {arch}, got {tuple(input_shape)}")
        extra = {"aux_logits": False, "init_weights": True} if arch in ("googlenet", "inception_v3") else {}
        net = models.get_model(arch, weights=None, **extra)
        parent, name, last = last_linear(net)
        head_prefix = next(key for key, module in net.named_modules() if module is last)
        setattr(parent, name, nn.Identity())
        if weights is not None:
            state = {k: v for k, v in _read_state_dict(arch, str(weights)).items()
                     if not k.startswith(head_prefix + ".")}
            _load_matching(net, state, arch, str(weights))
        self.arch = arch
        self.weights_name = None if weights is None else str(weights)
        self.body = net
        self.head = nn.Linear(last.in_features, num_outputs)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Return the penultimate representation (the old head's input), shape ``(N, D)``."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return logits, shape ``(N, num_outputs)``."""
        return self.head(self.body(x))


def _load_matching(net: nn.Module, state: dict[str, torch.Tensor], arch: str, source: str) -> None:
    """Load ``state`` into ``net`` strictly; raise ``ValueError`` naming every mismatched key."""
    own = net.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(f"{k} (file {tuple(state[k].shape)}, model {tuple(own[k].shape)})"
                    for k in set(own) & set(state) if state[k].shape != own[k].shape)
    if missing or unexpected or shapes:
        parts = [f"{label} {len(keys)}: {', '.join(keys[:8])}{' ...' if len(keys) > 8 else ''}"
                 for label, keys in (("missing", missing), ("unexpected", unexpected),
                                     ("shape mismatch", shapes)) if keys]
        raise ValueError(f"weights={source!r} does not match {arch}: " + "; ".join(parts))
    net.load_state_dict(state)
