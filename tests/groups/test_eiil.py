"""EIIL's EI objective is the IRMv1 penalty of robustml.losses, weighted by environment mass."""

import pytest
import torch

from robustml.groups import eiil_environments
from robustml.groups.eiil import eiil_penalty
from robustml.losses.functional import irm_penalty, scale_gradients


@pytest.mark.parametrize("num_logits", [1, 3])
def test_hard_ei_objective_is_the_mass_weighted_irm_penalty_of_each_environment(num_logits):
    generator = torch.Generator().manual_seed(num_logits)
    logits = 2 * torch.randn(40, num_logits, generator=generator, dtype=torch.float64)
    target = torch.randint(0, max(num_logits, 2), (40,), generator=generator)
    env = torch.randint(0, 2, (40,), generator=generator)
    objective = eiil_penalty(scale_gradients(logits, target), (env == 0).to(logits.dtype))
    expected = sum((int((env == e).sum()) / 40) ** 2 * irm_penalty(logits[env == e], target[env == e])
                   for e in (0, 1))
    torch.testing.assert_close(objective, expected, rtol=1e-12, atol=0)


def test_eiil_reports_the_objective_of_its_hard_environments_in_float32():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(30, 3, generator=generator, dtype=torch.float64)
    target = torch.randint(0, 3, (30,), generator=generator)
    result = eiil_environments(logits, target, num_steps=5)
    r = scale_gradients(logits.float(), target)
    assert result.penalty == float(eiil_penalty(r, (result.env == 0).float()))


def test_eiil_names_malformed_targets():
    with pytest.raises(ValueError, match="target"):
        eiil_environments(torch.zeros(4, 2), torch.zeros(3, dtype=torch.long), num_steps=1)
