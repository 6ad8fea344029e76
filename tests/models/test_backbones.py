"""torchvision backbones by name: head replaced, features(x), local and named weights, clear errors."""

from urllib.error import URLError

import pytest
import torch

from support import compose_train
from robustml.models import TorchvisionClassifier
from robustml.pipeline.instantiate import build_from


def test_resnet18_head_is_replaced_and_features_are_the_penultimate_layer():
    model = TorchvisionClassifier((3, 32, 32), 3, arch="resnet18").eval()
    x = torch.randn(2, 3, 32, 32)
    assert model.features(x).shape == (2, 512)
    torch.testing.assert_close(model.head(model.features(x)), model(x))
    assert model(x).shape == (2, 3) and isinstance(model.body.fc, torch.nn.Identity)


@pytest.mark.parametrize("name,width", [("resnet18", 512), ("resnet50", 2048)])
def test_model_configs_build_from_hydra(name, width):
    cfg = compose_train([f"model={name}"])
    model = build_from(cfg, "model", input_shape=(3, 32, 32), num_outputs=1).eval()
    assert model.arch == name and model.head.in_features == width
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 1)


def test_weights_from_a_local_file_are_loaded_except_the_head(tmp_path):
    from robustml._torchvision import import_torchvision
    import_torchvision()
    import torchvision.models as models

    reference = models.resnet18(weights=None)
    torch.save(reference.state_dict(), tmp_path / "resnet18.pth")
    model = TorchvisionClassifier((3, 32, 32), 2, weights=str(tmp_path / "resnet18.pth"))
    torch.testing.assert_close(model.body.conv1.weight, reference.conv1.weight)
    torch.testing.assert_close(model.body.layer4[1].bn2.running_var, reference.layer4[1].bn2.running_var)
    assert model.head.out_features == 2


def test_a_weights_file_of_another_architecture_names_the_mismatched_keys(tmp_path):
    from robustml._torchvision import import_torchvision
    import_torchvision()
    import torchvision.models as models

    torch.save(models.resnet50(weights=None).state_dict(), tmp_path / "resnet50.pth")
    with pytest.raises(ValueError, match=r"does not match resnet18: unexpected \d+: .*shape mismatch"):
        TorchvisionClassifier((3, 32, 32), 2, weights=str(tmp_path / "resnet50.pth"))


def test_named_weights_come_from_the_hub_cache_or_say_where_to_put_the_file(tmp_path, monkeypatch):
    from robustml._torchvision import import_torchvision
    import_torchvision()
    import torchvision.models as models

    def offline(*args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr(models._api, "load_state_dict_from_url", offline)
    previous = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    try:
        with pytest.raises(FileNotFoundError, match=r"resnet18-f37072fd.pth.*hub.*pass weights="):
            TorchvisionClassifier((3, 32, 32), 2, weights="IMAGENET1K_V1")
        reference = models.resnet18(weights=None)
        (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
        torch.save(reference.state_dict(), tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth")
        model = TorchvisionClassifier((3, 32, 32), 2, weights="IMAGENET1K_V1")
        torch.testing.assert_close(model.body.conv1.weight, reference.conv1.weight)
    finally:
        torch.hub.set_dir(previous)


def test_unknown_arch_and_weight_names_list_the_valid_ones(tmp_path):
    with pytest.raises(ValueError, match="arch='resnet19'.*resnet18"):
        TorchvisionClassifier((3, 32, 32), 2, arch="resnet19")
    with pytest.raises(ValueError, match="IMAGENET1K_V1"):
        TorchvisionClassifier((3, 32, 32), 2, weights="IMAGENET22K")
    with pytest.raises(FileNotFoundError, match="no_such.pth"):
        TorchvisionClassifier((3, 32, 32), 2, weights=str(tmp_path / "no_such.pth"))


def test_last_linear_is_the_output_layer_of_a_swin_transformer():
    # Swin's head is a top-level Linear declared after blocks that hold Linear layers of their own.
    from robustml.models.backbones import _models, last_linear
    with torch.device("meta"):
        net = _models().get_model("swin_t", weights=None)
    parent, name, layer = last_linear(net)
    assert parent is net and name == "head" and layer.out_features == 1000
