"""Hostile input to counterfactual augmentation: batches of any size, layout, dtype and device."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from hostile import DEVICES, FAST, id_lists, outcome, seeded_normal
from robustml.augment import ChannelColorRule, CounterfactualAugment

BATCH_CORRUPTIONS = {
    "batch['attr']": ["too_large", "negative", "int32", "float", "length"],
    "batch['y']": ["float", "int32", "length"],
    "batch['x']": ["list", "scalar"],
    "batch['index']": ["length", "list"],
}
OPTION_CORRUPTIONS = {"num_attrs": [1, "2", 2.5, True], "p": [1.5, -0.1, float("nan"), "0.5"],
                      "mode": ["double"]}


def colored_batch(attr: list[int], y: list[int], num_attrs: int, seed: int, device: str) -> dict:
    """Return a batch whose content lies in channel ``attr[i]`` only, as ChannelColorRule needs."""
    attr_t, y_t = torch.tensor(attr, device=device), torch.tensor(y, device=device)
    content = seeded_normal(seed, (len(attr), 1, 3, 3), device=device).abs() + 0.1
    x = torch.zeros(len(attr), num_attrs, 3, 3, device=device)
    x[torch.arange(len(attr)), attr_t] = content[:, 0]
    return {"x": x, "y": y_t, "attr": attr_t, "group": y_t * num_attrs + attr_t,
            "index": torch.arange(len(attr), device=device)}


def corrupt(batch: dict, key: str, how: str, num_attrs: int) -> dict:
    """Return ``batch`` with ``batch[key]`` made malformed in the way ``how`` names."""
    name = key[len("batch['"):-2]
    value = batch[name]
    batch = dict(batch)
    batch[name] = {"too_large": lambda: torch.full_like(value, num_attrs),
                   "negative": lambda: value - num_attrs, "int32": lambda: value.int(),
                   "float": lambda: value.float(), "list": lambda: value.tolist(),
                   "length": lambda: torch.cat([value, value[:1]]),
                   "scalar": lambda: value.sum()}[how]()
    return batch


@pytest.mark.parametrize("device", DEVICES)
@FAST
@given(data=st.data(), size=st.integers(1, 6), num_attrs=st.integers(2, 4),
       mode=st.sampled_from(["replace", "paired"]), p=st.sampled_from([0.0, 0.5, 1.0]))
def test_augment_keeps_labels_or_names_the_bad_argument(device, data, size, num_attrs, mode, p):
    attr = data.draw(id_lists(size, num_attrs))
    batch = colored_batch(attr, data.draw(id_lists(size, 2)), num_attrs,
                          data.draw(st.integers(0, 999)), device)
    options = {"num_attrs": num_attrs, "mode": mode, "p": p}
    bad = data.draw(st.sampled_from([None, *BATCH_CORRUPTIONS, *OPTION_CORRUPTIONS]))
    if bad in OPTION_CORRUPTIONS:
        options[bad] = data.draw(st.sampled_from(OPTION_CORRUPTIONS[bad]))
    elif bad is not None:
        batch = corrupt(batch, bad, data.draw(st.sampled_from(BATCH_CORRUPTIONS[bad])), num_attrs)
    generator = torch.Generator(device=device).manual_seed(0)
    augment = outcome(CounterfactualAugment, ChannelColorRule(num_attrs), generator=generator,
                      bad=bad if bad in OPTION_CORRUPTIONS else None, **options)
    if augment is None:
        return
    out = outcome(augment, batch, bad=bad)
    if out is None:
        return
    copies = 2 if mode == "paired" else 1
    assert out["x"].shape == (copies * size, *batch["x"].shape[1:])
    assert torch.equal(out["y"], batch["y"].repeat(copies))            # labels are kept
    assert torch.equal(out["group"], out["y"] * num_attrs + out["attr"])
    assert torch.equal(out["attr"] != batch["attr"].repeat(copies), out["is_cf"])
    # The content moved to the new attribute's channel, unchanged, other channels zero.
    rows = torch.arange(copies * size, device=device)
    torch.testing.assert_close(out["x"][rows, out["attr"]],
                               batch["x"].repeat(copies, 1, 1, 1)[rows, batch["attr"].repeat(copies)])
    assert float(out["x"].abs().sum()) == pytest.approx(copies * float(batch["x"].abs().sum()),
                                                        rel=1e-5)
