"""Training: the loop, checkpoints, model selection and ``run(cfg)``."""

from robustml.train.checkpoint import load_checkpoint, save_checkpoint
from robustml.train.evaluate import evaluate, predict_dataset
from robustml.train.loop import Trainer, TrainSettings
from robustml.train.memory import keep_freed_memory

__all__ = ["Trainer", "TrainSettings", "evaluate", "keep_freed_memory",
           "load_checkpoint", "predict_dataset", "save_checkpoint"]
