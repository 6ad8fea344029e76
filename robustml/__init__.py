"""robustml: train PyTorch models that do not learn shortcuts."""
__version__ = "0.1.0"
