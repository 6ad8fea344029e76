from robustml._torchvision import import_torchvision


def test_import_torchvision_gives_working_models_and_datasets():
    tv = import_torchvision()
    model = tv.models.resnet18(weights=None, num_classes=3)
    assert model.fc.out_features == 3
    assert hasattr(tv.datasets, "MNIST")
    assert import_torchvision() is tv  # idempotent
