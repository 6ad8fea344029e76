"""Running a model over data: its device, the precision context, and the forward over a dataset.

:func:`iter_outputs` is the one inference loop of the package: evaluation, JTT's error set,
inferred groups, the feature cache, cleaning and the audit all take a model's logits or
penultimate features from it, in eval mode, without gradients, chunk by chunk, in order.
:func:`forward_in_chunks` is its training counterpart (gradients kept, mode untouched).
:func:`autocast` is the precision context of both (``trainer.precision``).
"""

from __future__ import annotations

import functools
import importlib.util
import warnings
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from robustml.data.contract import Batch, GroupedDataset
from robustml.data.loading import LoaderSettings, eval_loader, iter_inputs

PRECISIONS = ("fp32", "bf16", "fp16", "auto")

#: The autocast dtype of each reduced precision.
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}

#: CPU flags (``/proc/cpuinfo``) of the instructions that run bf16 matrix products natively.
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


class SlowPrecisionWarning(UserWarning):
    """Warned once per process when bf16 or fp16 runs on a CPU where it is slower than fp32."""


def cpu_bf16_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> dict[str, bool] | None:
    """Return ``{flag: present}`` for :data:`BF16_CPU_FLAGS`, or ``None`` where it is unknown.

    Read from the first ``flags`` line of ``cpuinfo`` (Linux; every core lists the same flags).
    """
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return None
    line = next((line for line in text.splitlines() if line.startswith("flags")), None)
    if line is None:
        return None
    flags = set(line.split(":", 1)[1].split())
    return {flag: flag in flags for flag in BF16_CPU_FLAGS}


@functools.cache
def warn_if_slow_bf16() -> None:
    """Warn, once per process, that bf16 on this CPU is far slower than fp32, and why."""
    flags = cpu_bf16_flags()
    if flags is None or any(flags.values()):
        return
    warnings.warn(
        "precision='bf16' on a CPU without native bf16 instructions (neither avx512_bf16 "
        "nor amx_bf16 in /proc/cpuinfo): oneDNN emulates every bf16 matrix product, so a bf16 "
        "step is far slower than fp32 (about 10x on an AVX2 CPU, "
        "experiments/benchmarks/README.md). Use precision='fp32' on this machine; bf16 pays "
        "off on a GPU or a CPU with AVX512-BF16 or AMX.", SlowPrecisionWarning, stacklevel=3)


@functools.cache
def warn_slow_fp16() -> None:
    """Warn, once per process, that fp16 on a CPU is slower than fp32, and why."""
    warnings.warn(
        "precision='fp16' on a CPU: x86 CPUs have no fast float16 matrix products (oneDNN "
        "converts every operand), so an fp16 step is far slower than fp32 (7x on an AMD EPYC "
        "with AVX-512, one thread, experiments/benchmarks/README.md). fp16 with loss scaling is for GPUs "
        "without fast bf16 (V100, T4); on a CPU use precision='fp32', or precision='auto'.",
        SlowPrecisionWarning, stacklevel=3)


@functools.cache
def autocast_supported(device_type: str, precision: str) -> bool:
    """Return whether ``torch.autocast`` runs ``precision`` (``"bf16"``/``"fp16"``) on ``device_type``.

    PyTorch raises for a device type without autocast and, for a dtype a device's autocast does
    not cover, warns and disables itself; both count as unsupported here.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with torch.autocast(device_type=device_type, dtype=AUTOCAST_DTYPES[precision]):
                pass
        except RuntimeError:
            return False
    return not any("not supported" in str(w.message) for w in caught)


def resolve_precision(precision: str, device: torch.device) -> str:
    """Return the precision that runs on ``device``: ``"auto"`` resolved, the others checked.

    ``"auto"`` is ``"bf16"`` where the device has fast bf16 (a CUDA GPU of compute capability 8.0
    or newer, as ``torch.cuda.is_bf16_supported(including_emulation=False)`` says; a CPU with
    avx512_bf16 or amx_bf16), else ``"fp16"`` on CUDA (V100, T4: fp16 with loss scaling), else
    ``"fp32"``.

    Raises:
        ValueError: For a precision outside :data:`PRECISIONS`, or bf16/fp16 on a device whose
            autocast does not run it (naming the setting, the device and what to use instead).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp16"
        flags = cpu_bf16_flags() if device.type == "cpu" else None
        return "bf16" if flags is not None and any(flags.values()) else "fp32"
    if precision != "fp32" and not autocast_supported(device.type, precision):
        raise ValueError(f"precision={precision!r} needs torch.autocast with "
                         f"{AUTOCAST_DTYPES[precision]} on device {device.type!r}, which this "
                         f"PyTorch ({torch.__version__}) does not run there: expected 'fp32' or "
                         f"'auto' on this device, got {precision!r}")
    return precision


def autocast(device: torch.device, precision: str):
    """Return the autocast context for ``precision`` (see :func:`resolve_precision`).

    ``"fp32"``: none; ``"bf16"``/``"fp16"``: ``torch.autocast`` with bfloat16/float16. On a CPU,
    bf16 without bf16 instructions and fp16 warn once (:class:`SlowPrecisionWarning`).
    """
    precision = resolve_precision(precision, device)
    if precision == "fp32":
        return nullcontext()
    if device.type == "cpu":
        (warn_if_slow_bf16 if precision == "bf16" else warn_slow_fp16)()
    return torch.autocast(device_type=device.type, dtype=AUTOCAST_DTYPES[precision])


def model_device(model: nn.Module) -> torch.device:
    """Return the device of the model's first parameter (CPU for a model without parameters)."""
    return next((p.device for p in model.parameters()), torch.device("cpu"))


def missing_compiler(device: torch.device) -> str | None:
    """Return what ``torch.compile`` (TorchInductor) lacks to build kernels for ``device``, or ``None``.

    On a CPU Inductor compiles C++ (the compiler PyTorch's own search finds: ``$CXX``, ``g++``);
    on CUDA it writes Triton kernels (the ``triton`` package).
    """
    if device.type == "cuda":
        return None if importlib.util.find_spec("triton") else "the triton package (pip install triton)"
    if device.type != "cpu":
        return None
    from torch._inductor import cpp_builder  # lazily: loads TorchInductor
    try:
        cpp_builder.get_cpp_compiler()
    except Exception:  # InvalidCxxCompiler, or a search that failed otherwise
        return "a C++ compiler (g++ or $CXX; apt-get install g++)"
    return None


def compile_model(model: nn.Module) -> nn.Module:
    """Return ``torch.compile(model)``, after checking that the model's device has a compiler.

    The returned module shares ``model``'s parameters; save and load ``model`` itself (the
    compiled wrapper's ``state_dict`` keys carry an ``_orig_mod.`` prefix).

    Raises:
        RuntimeError: Naming ``compile=True`` and the missing toolchain.
    """
    device = model_device(model)
    missing = missing_compiler(device)
    if missing is not None:
        raise RuntimeError(f"compile=True needs {missing} to build kernels for the {device.type} "
                           f"device, and none was found: install it, or set compile=False "
                           f"(eager, same results)")
    return torch.compile(model)


def forward_in_chunks(model: nn.Module, x: torch.Tensor, chunk_size: int | None) -> torch.Tensor:
    """Return ``model(x)`` computed over row chunks of ``chunk_size`` (one call when ``None``).

    For models without batch-dependent layers the result and its gradient are those of a single
    call; smaller row blocks run at a higher matrix-multiply rate on CPU than one huge block.
    """
    if chunk_size is None or x.shape[0] <= chunk_size:
        return model(x)
    return torch.cat([model(chunk) for chunk in x.split(chunk_size)])


# Rows per forward block of in-memory prediction. On a CPU, blocks whose activations fit in the
# core's cache run the matrix products faster: predicting 60,000 Colored MNIST-shaped inputs with
# one thread took 0.66x the time in blocks of 512 rows as in blocks of 8,192 with the IRM paper's
# MLP (392-390-390-1) and 0.84x with colored_mnist_erm's (392-256-256-1): medians of 5 interleaved
# rounds, AMD EPYC, AVX2, no AVX-512.
PREDICT_ROWS = {"cpu": 512, "accelerator": 8192}


@torch.no_grad()
def iter_outputs(model: nn.Module, data: torch.Tensor | GroupedDataset, *,
                 batch_size: int | None = None, loader: Iterable[Batch] | None = None,
                 features: bool = False, precision: str = "fp32",
                 progress: str | None = None) -> Iterator[torch.Tensor]:
    """Yield ``model``'s outputs on every example of ``data``, one block of rows at a time, in order.

    The model runs in eval mode (its mode is restored once the blocks are exhausted), without
    gradients, on its own device (:func:`model_device`), under :func:`autocast` for ``precision``.

    Args:
        model: Maps ``(B, *input_shape)`` to logits; with ``features``, has ``features(x)``.
        data: An input tensor ``(N, ...)``, an in-memory dataset (its ``x``), or an on-disk one.
        batch_size: Rows per forward block of a tensor or in-memory dataset (default: the
            model's ``predict_rows`` attribute where it has one, a transformer's bound on its
            activations; else :data:`PREDICT_ROWS`, cache-sized blocks on a CPU, large ones on an
            accelerator).
        loader: The batches of an on-disk dataset, streamed in order (default
            :func:`~robustml.data.loading.eval_loader` with default settings: 256 examples a
            batch, evaluation transform); no more than one batch of inputs is in memory.
        features: Yield ``model.features(x)`` as float32 ``(B, D)`` rather than ``model(x)``.
        precision: A name of :data:`PRECISIONS` (see :func:`resolve_precision`).
        progress: Title of a progress bar over the examples; ``None`` shows none.
    """
    device = model_device(model)
    if isinstance(data, torch.Tensor) or data.in_memory:
        rows = batch_size or getattr(model, "predict_rows", None) or \
            PREDICT_ROWS["cpu" if device.type == "cpu" else "accelerator"]
        inputs = (x.to(device) for x in (data if isinstance(data, torch.Tensor) else data.x).split(rows))
    else:
        batches = iter_inputs(eval_loader(data, LoaderSettings()) if loader is None else loader, device)
        inputs = (batch["x"] for batch in batches)
    precision_context = autocast(device, precision)
    was_training = model.training
    model.eval()
    bar = tqdm(total=len(data), desc=progress, disable=progress is None, dynamic_ncols=True)
    try:
        for x in inputs:
            with precision_context:
                out = model.features(x).float().flatten(1) if features else model(x)
            bar.update(len(out))
            yield out
    finally:
        bar.close()
        model.train(was_training)
