"""build_from: errors of a config's target surface named by key, chained to the original."""

from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

from robustml.pipeline.instantiate import build_from


def test_a_json_decode_error_surfaces_as_value_error_chained_to_the_original():
    cfg = OmegaConf.create({"data": {"_target_": "json.loads", "s": "{not json"}})
    with pytest.raises(ValueError, match=r"^data: Expecting property name") as raised:
        build_from(cfg, "data")
    # The original keeps its own type and attributes; it is not re-created from its type (a
    # JSONDecodeError needs (msg, doc, pos): re-creating it raised a TypeError).
    assert isinstance(raised.value.__cause__, json.JSONDecodeError)
    assert raised.value.__cause__.pos == 1
    assert type(raised.value) is ValueError


@pytest.mark.parametrize("node,kind", [
    ({"_target_": "builtins.open", "file": "/no/such/file"}, FileNotFoundError),
    ({"_target_": "builtins.int", "_args_": ["x"]}, ValueError),
])
def test_each_surfaced_kind_keeps_its_builtin_type_and_its_cause(node, kind):
    cfg = OmegaConf.create({"part": node})
    with pytest.raises(kind, match=r"^part: ") as raised:
        build_from(cfg, "part")
    assert isinstance(raised.value.__cause__, kind)
