"""Small model zoo. Every model maps ``(N, *input_shape)`` to logits ``(N, num_outputs)`` and exposes
``features(x)`` (penultimate representation) and ``head`` (the last linear layer); text models
(:class:`HFClassifier`, :class:`SentenceEncoder`; ``transformers`` imported when one is built)
read tokenized texts.
:mod:`robustml.models.forward` runs a model over data (device, precision, chunked outputs)."""

from robustml.models.backbones import TorchvisionClassifier
from robustml.models.cnn import SmallCNN
from robustml.models.hf import HFClassifier
from robustml.models.mlp import MLP
from robustml.models.sentence import SentenceEncoder

__all__ = ["HFClassifier", "MLP", "SentenceEncoder", "SmallCNN", "TorchvisionClassifier"]
