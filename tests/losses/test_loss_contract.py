"""Every loss config holds to one contract: built from its YAML the way the trainer builds it."""

import inspect
from pathlib import Path

import hydra
import pytest
import torch
from hydra.errors import InstantiationException
from omegaconf import OmegaConf

import robustml.configs
from robustml.losses import GroupLoss
from robustml.losses.functional import classification_loss, mean_irm_penalty, vrex_penalty

CONFIG_DIR = Path(robustml.configs.__file__).parent / "loss"
CONFIGS = ["erm", "group_dro", "irm", "vrex"]
NUM_GROUPS = 4
RUNTIME = {"num_groups": NUM_GROUPS, "group_counts": [30, 12, 5, 40]}


def runtime_kwargs(cfg, available):
    """The trainer's rule assumed here: pass the runtime values the target's signature names."""
    parameters = inspect.signature(hydra.utils.get_object(cfg._target_)).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return dict(available)
    return {key: value for key, value in available.items() if key in parameters}


def build(name):
    criterion_cfg = OmegaConf.load(CONFIG_DIR / f"{name}.yaml").criterion
    return hydra.utils.instantiate(criterion_cfg, **runtime_kwargs(criterion_cfg, RUNTIME))


def make_batch(num_classes, dtype, seed=0, n=16):
    generator = torch.Generator().manual_seed(seed)
    logits = 3 * torch.randn(n, num_classes, generator=generator, dtype=dtype)
    target = torch.randint(0, max(num_classes, 2), (n,), generator=generator)
    return logits, target, torch.arange(n) % NUM_GROUPS


def buffers(criterion):
    return {key: value.clone() for key, value in criterion.state_dict().items()}


def test_config_files_have_partition_and_criterion():
    expected_partition = {"erm": "group", "group_dro": "group", "irm": "env", "vrex": "env"}
    assert sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")) == sorted(CONFIGS)
    for name in CONFIGS:
        cfg = OmegaConf.load(CONFIG_DIR / f"{name}.yaml")
        assert set(cfg) == {"partition", "criterion"}
        assert cfg.partition == expected_partition[name]


def test_paper_values_in_configs():
    irm, dro = build("irm"), build("group_dro")
    assert irm.penalty_weights == {"irm": 91257.18613115903}
    assert irm.anneal_steps == {"irm": 190} and not irm.penalties["irm"].unbiased
    assert (dro.step_size, dro.adjustment, dro.normalize_loss) == (0.01, 0.0, False)


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("num_classes", [1, 3])
def test_contract(name, dtype, num_classes):
    criterion = build(name)
    assert isinstance(criterion, GroupLoss) and criterion.training
    criterion.to(dtype)
    logits, target, groups = make_batch(num_classes, dtype)
    logits.requires_grad_(True)
    loss = criterion(logits, target, groups)
    assert loss.shape == () and loss.dtype == dtype
    loss.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
    assert all(isinstance(v, float) for v in criterion.log_values().values())

    for seed in (1, 2):  # move the state away from its initial value
        criterion(*make_batch(num_classes, dtype, seed=seed))
    state = buffers(criterion)
    if name != "erm":
        initial = buffers(build(name))
        assert any(not torch.equal(state[k].to(initial[k].dtype), initial[k]) for k in state)

    restored = build(name).to(dtype)
    restored.load_state_dict(criterion.state_dict())
    assert buffers(restored).keys() == state.keys()
    for key, value in buffers(restored).items():
        torch.testing.assert_close(value, state[key], rtol=0, atol=0)
    next_batch = make_batch(num_classes, dtype, seed=3)
    torch.testing.assert_close(restored(*next_batch), criterion(*next_batch))

    criterion.eval()
    state = buffers(criterion)
    criterion(*make_batch(num_classes, dtype, seed=4))
    for key, value in buffers(criterion).items():
        assert torch.equal(value, state[key]), f"eval() forward changed {key}"


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("num_classes", [1, 3])
def test_weighted_contract(name, dtype, num_classes):
    logits, target, groups = make_batch(num_classes, dtype)
    unweighted, weighted = build(name).to(dtype), build(name).to(dtype)
    uniform = torch.full((len(target),), 2.5)  # float32 weights, cast to the loss dtype
    for seed in (1, 2):  # equal weights change nothing, state included
        batch = make_batch(num_classes, dtype, seed=seed)
        torch.testing.assert_close(weighted(*batch, weight=uniform), unweighted(*batch))
    for key, value in weighted.state_dict().items():
        torch.testing.assert_close(value, unweighted.state_dict()[key])

    weight = torch.rand(len(target), generator=torch.Generator().manual_seed(0), dtype=dtype)
    weight[::5] = 0.0
    logits.requires_grad_(True)
    loss = weighted(logits, target, groups, weight=weight)
    assert loss.shape == () and loss.dtype == dtype
    loss.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
    weighted.eval()
    state = buffers(weighted)
    weighted(logits, target, groups, weight=weight)
    for key, value in buffers(weighted).items():
        assert torch.equal(value, state[key]), f"eval() weighted forward changed {key}"
    with pytest.raises(ValueError, match=r"weight must be finite and >= 0, got weight\[1\]=-1.0"):
        weighted(logits, target, groups, weight=weight.index_fill(0, torch.tensor([1]), -1.0))
    with pytest.raises(ValueError, match=r"weight must have shape \(16,\) to match logits"):
        weighted(logits, target, groups, weight=weight[:-1])


@pytest.mark.parametrize("name", CONFIGS)
def test_bad_inputs(name):
    criterion = build(name)
    logits, target, groups = make_batch(3, torch.float32)
    with pytest.raises(ValueError, match=r"groups must lie in \[0, 4\), got values in \[2, 5\]"):
        criterion(logits, target, groups + 2)
    with pytest.raises(ValueError, match=r"target must lie in \[0, 3\)"):
        criterion(logits, target + 3, groups)
    bad = logits.clone()
    bad[3, 1] = float("nan")
    with pytest.raises(FloatingPointError, match="not finite"):
        criterion(bad, target, groups)


@pytest.mark.parametrize("name", ["irm", "vrex"])
def test_environment_losses_need_two_environments(name):
    logits, target, groups = make_batch(1, torch.float32)
    with pytest.raises(ValueError, match=r"at least 2 environments, found 1 \(\[2\]\)"):
        build(name)(logits, target, torch.full_like(groups, 2))


def test_nested_config_with_partial_children():
    cfg = OmegaConf.create("""
    _target_: robustml.losses.PenalizedLoss
    base: {_target_: robustml.losses.ERMLoss, _partial_: true}
    penalties:
      irm: {_target_: robustml.losses.IRMPenalty, _partial_: true, unbiased: true}
      vrex: {_target_: robustml.losses.VRExPenalty, _partial_: true}
    weights: {irm: 3.0, vrex: 2.0}
    anneal_steps: {irm: 1, vrex: 0}
    """)
    runtime = runtime_kwargs(cfg, RUNTIME)
    assert runtime == {"num_groups": NUM_GROUPS}
    criterion = hydra.utils.instantiate(cfg, **runtime)
    logits, target, groups = make_batch(3, torch.float64)
    criterion(logits, target, groups)
    expected = (classification_loss(logits, target).mean()
                + 3.0 * mean_irm_penalty(logits, target, groups, unbiased=True,  # second step's halves
                                         generator=torch.Generator().manual_seed(1))
                + 2.0 * vrex_penalty(logits, target, groups)) / 3.0
    torch.testing.assert_close(criterion(logits, target, groups), expected)


def test_group_counts_reach_group_dro_from_runtime():
    cfg = OmegaConf.load(CONFIG_DIR / "group_dro.yaml").criterion
    cfg.adjustment = 2.0
    criterion = hydra.utils.instantiate(cfg, **runtime_kwargs(cfg, RUNTIME))
    expected = 2.0 / torch.tensor(RUNTIME["group_counts"], dtype=torch.float64).sqrt()
    torch.testing.assert_close(criterion.adjustments, expected.float())
    with pytest.raises(InstantiationException, match=r"group\(s\) \[2\] have count 0"):
        hydra.utils.instantiate(cfg, num_groups=4, group_counts=[3, 3, 0, 3])


@pytest.mark.parametrize("name", CONFIGS)
def test_autocast_keeps_losses_in_float32(name):
    logits, target, groups = make_batch(3, torch.float32)
    logits = logits.bfloat16().float()  # exactly representable in bfloat16
    expected = build(name)(logits, target, groups)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = build(name)(logits.bfloat16(), target, groups)
    assert value.dtype == torch.float32
    torch.testing.assert_close(value, expected, rtol=1e-6, atol=1e-6)
