"""The training engine: the loop, evaluation, checkpoints, model selection, distributed helpers,
random states and memory settings. It knows no config system: every piece takes Python objects
(the config layer, :mod:`robustml.pipeline`, builds them), so a user's own script can drive it.
"""

from robustml.train.checkpoint import load_checkpoint, save_checkpoint
from robustml.train.evaluate import evaluate, predict_dataset
from robustml.train.loop import Trainer
from robustml.train.memory import keep_freed_memory
from robustml.train.rng import seed_everything
from robustml.train.settings import TrainSettings

__all__ = ["Trainer", "TrainSettings", "evaluate", "keep_freed_memory", "load_checkpoint",
           "predict_dataset", "save_checkpoint", "seed_everything"]
