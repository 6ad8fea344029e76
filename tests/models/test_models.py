import pytest
import torch

from robustml.models import MLP, SmallCNN


@pytest.mark.parametrize("model_cls,shape", [(MLP, (2, 14, 14)), (SmallCNN, (2, 8, 8))])
def test_models_map_inputs_to_logits_through_features_and_head(model_cls, shape):
    model = model_cls(shape, 3)
    x = torch.randn(5, *shape)
    logits = model(x)
    assert logits.shape == (5, 3)
    torch.testing.assert_close(model.head(model.features(x)), logits)


def test_mlp_is_the_irm_paper_architecture_with_xavier_init():
    model = MLP((2, 14, 14), 1, hidden_dims=(390, 390))
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(392, 390), (390, 390), (390, 1)]
    for m in linears:
        assert torch.count_nonzero(m.bias) == 0
        bound = (6 / (m.in_features + m.out_features)) ** 0.5
        assert m.weight.abs().max() <= bound


def test_bad_model_arguments_are_named():
    with pytest.raises(ValueError, match="dropout"):
        MLP((4,), 2, dropout=1.5)
    with pytest.raises(ValueError, match="input_shape"):
        SmallCNN((4,), 2)
