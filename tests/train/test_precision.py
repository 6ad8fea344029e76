"""trainer.precision=fp16 (GradScaler, skipped steps, exact resume), precision=auto, and compile."""

from __future__ import annotations

import logging
import warnings

import pytest
import torch

from support import toy_env_dataset
from robustml.losses import ERMLoss
from robustml.models import MLP, forward
from robustml.models.forward import (SlowPrecisionWarning, autocast, cpu_bf16_flags,
                                     resolve_precision)
from robustml.pipeline.instantiate import config_keys
from robustml.train import Trainer, TrainSettings, load_checkpoint

CPU = torch.device("cpu")


def _trainer(tmp_path, init_scale=None, **settings):
    torch.manual_seed(0)
    model = MLP((2, 3, 3), 1, hidden_dims=(8,))
    defaults = dict(max_steps=6, eval_every=3, progress=False, batch_size=16)
    defaults.update(settings)
    trainer = Trainer(model, ERMLoss(4), torch.optim.Adam(model.parameters(), lr=0.01),
                      toy_env_dataset(64), toy_env_dataset(32, seed=1), TrainSettings(**defaults),
                      run_dir=tmp_path)
    if init_scale is not None:  # a scale that overflows float16 gradients: the first steps skip
        trainer._step.scaler = torch.amp.GradScaler("cpu", init_scale=init_scale)
    return trainer


def _cpuinfo(tmp_path, flags):
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nflags\t\t: fpu sse2 avx2 {flags}\n")
    return path


@pytest.mark.parametrize("flags,expected", [("avx512_bf16", "bf16"), ("amx_bf16", "bf16"),
                                            ("", "fp32"), (None, "fp32")])
def test_auto_on_a_cpu_is_bf16_with_bf16_instructions_else_fp32(monkeypatch, tmp_path, flags, expected):
    path = tmp_path / "missing" if flags is None else _cpuinfo(tmp_path, flags)
    monkeypatch.setattr(forward, "cpu_bf16_flags", lambda: cpu_bf16_flags(path))
    assert resolve_precision("auto", CPU) == expected


@pytest.mark.parametrize("fast_bf16,expected", [(True, "bf16"), (False, "fp16")])
def test_auto_on_cuda_is_bf16_from_compute_capability_8_else_fp16(monkeypatch, fast_bf16, expected):
    calls = []
    monkeypatch.setattr(torch.cuda, "is_bf16_supported",
                        lambda including_emulation=True: calls.append(including_emulation) or fast_bf16)
    assert resolve_precision("auto", torch.device("cuda")) == expected
    assert calls == [False]  # emulated bf16 (a V100's) does not count as fast


def test_fp16_on_a_device_without_float16_autocast_is_refused_naming_the_setting(monkeypatch):
    with pytest.raises(ValueError, match=r"precision='fp16' needs torch.autocast.*'meta'.*"
                                         r"expected 'fp32' or 'auto' on this device, got 'fp16'"):
        resolve_precision("fp16", torch.device("meta"))

    class WarningAutocast:  # what torch.autocast does for a dtype its device does not cover
        def __init__(self, **kwargs):
            warnings.warn("In CPU autocast, but the target dtype is not supported. Disabling autocast.")

        def __enter__(self):
            return self

        def __exit__(self, *args):
            return False

    forward.autocast_supported.cache_clear()
    monkeypatch.setattr(torch, "autocast", WarningAutocast)
    try:
        with pytest.raises(ValueError, match=r"trainer\.precision='fp16' needs torch.autocast"):
            with config_keys():
                resolve_precision("fp16", CPU)
    finally:
        forward.autocast_supported.cache_clear()


def test_fp16_on_a_cpu_warns_once_why_it_is_slow():
    forward.warn_slow_fp16.cache_clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            with autocast(CPU, "fp16"):
                assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float16
    slow = [w for w in caught if issubclass(w.category, SlowPrecisionWarning)]
    assert len(slow) == 1 and "precision='fp16' on a CPU" in str(slow[0].message)


def test_fp16_training_keeps_float32_weights_and_stays_close_to_fp32(tmp_path):
    fp32 = _trainer(tmp_path / "fp32")
    fp16 = _trainer(tmp_path / "fp16", precision="fp16")
    result32, result16 = fp32.fit(), fp16.fit()
    assert all(p.dtype == torch.float32 for p in fp16.model.parameters())
    for a, b in zip(result32["history"], result16["history"]):
        assert b["train/loss"] == pytest.approx(a["train/loss"], abs=5e-3)
        assert b["train/skipped_steps"] == 0 and "train/skipped_steps" not in a
    assert result16["skipped_steps"] == 0 and "skipped_steps" not in result32
    assert load_checkpoint(fp16.last_path)["step_state"]["scaler"]["scale"] == 65536.0


def test_fp16_skipped_steps_are_the_steps_that_left_the_weights_unchanged(tmp_path, caplog):
    trainer = _trainer(tmp_path, init_scale=2.0 ** 40, precision="fp16", max_steps=30, eval_every=10)
    unchanged = 0
    for _ in range(30):
        before = [p.detach().clone() for p in trainer.model.parameters()]
        trainer._train_step(next(trainer.batches))
        unchanged += all(torch.equal(a, b) for a, b in zip(before, trainer.model.parameters()))
    assert 0 < unchanged < 30
    assert trainer._step.skipped_steps == unchanged
    assert trainer._step.scaler.get_scale() == 2.0 ** (40 - unchanged)
    # In a run: the count lands in metrics.jsonl and in the log.
    run = _trainer(tmp_path / "run", init_scale=2.0 ** 40, precision="fp16", max_steps=30, eval_every=10)
    with caplog.at_level(logging.INFO, logger="robustml.train.loop"):
        result = run.fit()
    assert result["skipped_steps"] == unchanged == result["history"][-1]["train/skipped_steps"]
    assert any("skipped by the loss scaler" in r.getMessage() for r in caplog.records)


def test_fp16_resume_restores_the_loss_scale_and_ends_as_an_uninterrupted_run(tmp_path):
    straight = _trainer(tmp_path / "a", init_scale=2.0 ** 40, precision="fp16", max_steps=30,
                        eval_every=10)
    straight.fit()
    first = _trainer(tmp_path / "b", init_scale=2.0 ** 40, precision="fp16", max_steps=10, eval_every=10)
    first.fit()
    assert load_checkpoint(first.last_path)["step_state"]["scaler"]["scale"] < 2.0 ** 40
    resumed = _trainer(tmp_path / "b", init_scale=2.0 ** 40, precision="fp16", max_steps=30,
                       eval_every=10, resume=True)
    history = resumed.fit()["history"]
    assert [{k: v for k, v in r.items() if k != "elapsed_s"} for r in history] == \
        [{k: v for k, v in r.items() if k != "elapsed_s"} for r in straight.history]
    for a, b in zip(straight.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)
    assert resumed._step.skipped_steps == straight._step.skipped_steps
    assert resumed._step.scaler.get_scale() == straight._step.scaler.get_scale()


def test_compile_without_a_compiler_is_refused_naming_the_setting(tmp_path):
    from torch._inductor import config as inductor_config
    from torch._inductor import cpp_builder

    try:
        with inductor_config.patch({"cpp.cxx": ("no-such-compiler-h7",)}):
            with pytest.raises(RuntimeError, match=r"trainer\.compile=true needs a C\+\+ compiler"
                                                   r".*set trainer\.compile=false"):
                with config_keys():
                    _trainer(tmp_path, compile=True)
    finally:
        cpp_builder.cpp_compiler_search.cache_clear()


@pytest.mark.slow  # TorchInductor builds C++ kernels for the forward and backward: about a minute here
def test_compiled_training_equals_eager_within_float_tolerance(tmp_path):
    eager, compiled = _trainer(tmp_path / "eager"), _trainer(tmp_path / "compiled", compile=True)
    eager.fit(), compiled.fit()
    for a, b in zip(eager.model.parameters(), compiled.model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    for a, b in zip(eager.history, compiled.history):
        assert b["train/loss"] == pytest.approx(a["train/loss"], rel=1e-5)
