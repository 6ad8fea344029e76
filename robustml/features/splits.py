"""Cached-feature splits: every split of a dataset as an in-memory dataset of a backbone's features.

``feature_splits(source, backbone, cache_dir)`` extracts ``backbone.features(x)`` of every example
of ``source``'s train, val and test splits once (:func:`~robustml.features.cache.cached_features`)
and returns :class:`~robustml.data.contract.DataSplits` of
:class:`~robustml.data.contract.GroupedTensorDataset` whose ``x`` is the ``(N, D)`` features and
whose metadata (``y``, ``attr``, ``env``, names) is the source split's. Anything that trains on an
in-memory dataset then trains on the features: a linear probe or last-layer head from configs
(``robustml-train data=features ...``), label cleaning, DFR's last-layer retraining, an audit. A
later call with the same backbone weights, data and transform reuses the cache and says so in the
log and in the splits' description. Inputs kept beside ``x`` (``info["input_extras"]``: a text's
counterfactual tokens ``x_cf``) become features of the same backbone, cached the same way, so
counterfactual augmentation and the stress test run on features too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn

from robustml.data.contract import DataSplits, GroupedDataset, GroupedTensorDataset
from robustml.features.cache import cache_path, cached_features
from robustml.losses import num_outputs_for
from robustml.validation import check_int

BackboneFactory = Callable[..., nn.Module]


def as_feature_dataset(dataset: GroupedDataset, features: np.ndarray, *,
                       input_features: Mapping[str, np.ndarray] | None = None) -> GroupedTensorDataset:
    """Return an in-memory dataset with ``x = features`` (``(N, D)``) and ``dataset``'s metadata.

    Labels, attributes, environments, names, ``info`` and the ``extras`` that describe examples
    rather than inputs are the source's. Extras named in ``info["input_extras"]`` (such as a
    text's counterfactual tokens, ``x_cf``) are inputs: those given in ``input_features`` (their
    features, ``(N, D)`` each) are kept under the same key, the others are dropped, and
    ``info["input_extras"]`` lists the kept ones. The counterfactual rule is kept only where it is
    ``{"rule": "precomputed", "key": k}`` with ``k`` kept (it then reads the features of the
    counterfactual inputs, so augmentation and the stress test work on features); otherwise it
    is absent. The name gains `` features``.
    """
    input_features = dict(input_features or {})
    declared = tuple(dataset.info.get("input_extras", ()))
    for key, value in {"features": features, **input_features}.items():
        if value.shape[0] != len(dataset):
            raise ValueError(f"{key} must have one row per example of {dataset.name!r} "
                             f"({len(dataset)}), got shape {tuple(value.shape)}")
    unknown = sorted(set(input_features) - set(declared))
    if unknown:
        raise ValueError(f"input_features must be features of the input extras of {dataset.name!r} "
                         f"(info['input_extras'] = {declared}), got {unknown}")
    extras = {key: value.cpu() for key, value in dataset.extras.items() if key not in declared}
    extras.update({key: _float_tensor(value) for key, value in input_features.items()})
    info = dict(dataset.info)
    if declared:
        info["input_extras"] = tuple(key for key in declared if key in input_features)
    rule = dataset.counterfactual
    keep_rule = (isinstance(rule, Mapping) and rule.get("rule") == "precomputed"
                 and rule.get("key") in input_features)
    return GroupedTensorDataset(
        _float_tensor(features), dataset.y.cpu(), dataset.attr.cpu(),
        num_classes=dataset.num_classes, attr_names=dataset.attr_names, attr_key=dataset.attr_key,
        env=None if dataset.env is None else dataset.env.cpu(), env_names=dataset.env_names,
        class_names=dataset.class_names, name=f"{dataset.name} features", info=info,
        extras=extras, counterfactual=dict(rule) if keep_rule else None)


def _float_tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(array, dtype=np.float32))


def input_extra_dataset(dataset: GroupedDataset, key: str) -> GroupedTensorDataset:
    """Return the in-memory dataset whose ``x`` is ``dataset.extras[key]`` (an input extra).

    Its metadata and ``info`` are ``dataset``'s, its name ``"<name> <key>"``: the feature cache
    extracts and keys it like any split.
    """
    return GroupedTensorDataset(dataset.extras[key], dataset.y.cpu(), dataset.attr.cpu(),
                                num_classes=dataset.num_classes, attr_names=dataset.attr_names,
                                attr_key=dataset.attr_key, name=f"{dataset.name} {key}",
                                info=dataset.info)


def feature_dataset(model: nn.Module, dataset: GroupedDataset, cache_dir: str | Path,
                    **options) -> GroupedTensorDataset:
    """Return an in-memory dataset whose ``x`` is the cached features ``(N, D)`` of ``dataset``.

    The metadata is ``dataset``'s (:func:`as_feature_dataset`), so the result works with
    everything that needs inputs in one tensor (full-batch training of a linear or MLP head,
    label cleaning's folds) at the cost of ``N * D`` floats. Its input extras
    (``info["input_extras"]``) are mapped through ``model`` and cached too. ``options`` go to
    :func:`~robustml.features.cache.cached_features`.
    """
    return extract_split(model, dataset, cache_dir, **options)[0]


def extract_split(model: nn.Module, dataset: GroupedDataset, cache_dir: str | Path,
                  **options) -> tuple[GroupedTensorDataset, list[str]]:
    """Return :func:`feature_dataset`'s dataset and, per input, whether it was extracted or reused.

    The inputs are ``dataset`` itself and each input extra it holds (:func:`input_extra_dataset`);
    each status reads ``"[<key> ]extracted into <entry>"`` or ``"[<key> ]reused from <entry>"``.
    """
    inputs = {"": dataset, **{key: input_extra_dataset(dataset, key)
                              for key in dataset.info.get("input_extras", ()) if key in dataset.extras}}
    features, status = {}, []
    for key, split in inputs.items():
        path = cache_path(model, split, cache_dir)
        reused = path.is_file()
        features[key] = cached_features(model, split, cache_dir, path=path, **options)
        status.append(f"{f'{key} ' if key else ''}{'reused from' if reused else 'extracted into'} {path}")
    return as_feature_dataset(dataset, features.pop(""), input_features=features), status


def load_model_checkpoint(model: nn.Module, path: str | Path) -> None:
    """Load a robustml checkpoint (``checkpoints/best.pt``) or a state-dict file into ``model``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: The file's keys or shapes do not match ``model`` (the mismatched keys are named).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint={str(path)!r}: no such file (a run's "
                                "checkpoints/best.pt, or a state-dict file of the backbone)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    own = model.state_dict()
    mismatched = sorted(set(own) ^ set(state)) + sorted(
        k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if mismatched:
        raise ValueError(f"checkpoint={str(path)!r} does not match the backbone "
                         f"{type(model).__name__}: mismatched keys {mismatched[:8]}"
                         f"{' ...' if len(mismatched) > 8 else ''}; the backbone config must "
                         "build the model that was trained")
    model.load_state_dict(state)


def build_backbone(backbone: nn.Module | BackboneFactory, source: DataSplits, *, seed: int,
                   checkpoint: str | Path | None = None) -> tuple[nn.Module, str]:
    """Return ``(model, where its weights come from)``: ``backbone``, or what a factory builds.

    A factory (a class or ``functools.partial``, as Hydra's ``_partial_: true`` gives) is called
    as ``factory(input_shape=..., num_outputs=...)`` under ``torch.manual_seed(seed)`` in a forked
    RNG state, so a randomly initialized backbone has the same weights (and the same cache entry)
    in every run with that seed, and the caller's RNG stream is untouched. ``checkpoint`` is
    loaded last (:func:`load_model_checkpoint`).
    """
    if isinstance(backbone, nn.Module):
        model, origin = backbone, "the given model's weights"
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = backbone(input_shape=source.input_shape,
                             num_outputs=num_outputs_for(source.num_classes))
        weights = getattr(model, "weights_name", None)
        origin = f"weights {weights}" if weights else f"random initialization, seed {seed}"
    if checkpoint is not None:
        load_model_checkpoint(model, checkpoint)
        origin = f"weights of checkpoint {checkpoint}"
    return model, origin


def feature_splits(source: DataSplits, backbone: nn.Module | BackboneFactory,
                   cache_dir: str | Path, *, checkpoint: str | Path | None = None,
                   seed: int = 0, device: str = "cpu", batch_size: int = 256,
                   num_workers: int = 0, progress: bool = True) -> DataSplits:
    """Return ``source``'s splits as in-memory datasets of the backbone's cached features.

    Args:
        source: The splits whose inputs are replaced by features (in memory or on disk; on
            disk, the evaluation transform is used for every split).
        backbone: A model with ``features(x) -> (B, D)``, or a factory that builds one from
            ``input_shape`` and ``num_outputs`` (e.g. ``TorchvisionClassifier`` with
            ``weights=`` a torchvision weight name or a file; ``data.backbone`` in configs).
        cache_dir: Folder of the feature cache; relative paths are relative to the working
            directory, so runs in different run folders share it.
        checkpoint: Optional robustml checkpoint or state-dict file loaded into the backbone
            (e.g. an ERM run's ``checkpoints/best.pt``, for last-layer retraining).
        seed: Seed of a factory-built backbone's initialization.
        device: ``cpu``, ``cuda`` or ``auto`` (CUDA when available) for the extraction.
        batch_size: Examples per forward pass.
        num_workers: DataLoader workers for on-disk data.
        progress: Show a progress bar while extracting.

    Returns:
        :class:`~robustml.data.contract.DataSplits` of ``(N, D)`` float32 features with the
        source splits' metadata. A split's input extras (``info["input_extras"]``, e.g. ``x_cf``,
        a text's counterfactual tokens) go through the backbone and the cache too and are kept
        as features under the same key, with a precomputed counterfactual rule
        (:func:`as_feature_dataset`). Its description is the source's plus where the features came
        from and whether each split's were extracted or reused.
    """
    seed = check_int("seed", seed)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    num_workers = check_int("num_workers", num_workers, minimum=0)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model, origin = build_backbone(backbone, source, seed=seed, checkpoint=checkpoint)
    model = model.to(device)
    options = dict(batch_size=batch_size, num_workers=num_workers, progress=progress)
    datasets, status = {}, []
    for name, split in source.items():
        datasets[name], done = extract_split(model, split, cache_dir, **options)
        status.extend(f"{name} {line}" for line in done)
    dim = datasets["train"].input_shape[0]
    description = (f"{source.description} Inputs: the {dim}-d penultimate features "
                   f"(features(x)) of a {type(model).__name__} backbone ({origin}), in the "
                   f"feature cache: {'; '.join(status)}.")
    return DataSplits(datasets["train"], datasets["val"], datasets["test"], description=description)
