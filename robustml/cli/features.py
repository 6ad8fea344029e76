"""``robustml-features``: extract and cache a model's features for every split of a dataset.

Composes the same configs as ``robustml-train`` (Hydra's compose API), builds the data and model,
and fills or reuses the cache::

    robustml-features data=waterbirds data.root=~/data model=resnet50 model.weights=IMAGENET1K_V1
    robustml-features --cache-dir features/ data=image_csv data.csv=my/images.csv model=resnet18
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

import torch
from hydra import compose, initialize_config_module

from robustml.cli.errors import report_errors
from robustml.features.cache import cached_split_features
from robustml.losses import num_outputs_for
from robustml.pipeline.instantiate import build_from


def extract(argv: Sequence[str] | None = None) -> dict[str, tuple[int, int]]:
    """Parse ``argv`` (the command line), fill or reuse the cache; return ``{split: (N, D)}``."""
    parser = argparse.ArgumentParser(prog="robustml-features", description=__doc__.split("\n")[0])
    parser.add_argument("overrides", nargs="*", help="config overrides, as for robustml-train")
    parser.add_argument("--cache-dir", default="features", help="cache folder (default: features/)")
    parser.add_argument("--batch-size", type=int, default=256, help="images per forward pass")
    parser.add_argument("--num-workers", type=int, default=0, help="DataLoader workers")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with initialize_config_module(config_module="robustml.configs", version_base="1.3"):
        cfg = compose(config_name="train", overrides=list(args.overrides))
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else "cpu" if args.device == "auto" else args.device)
    torch.manual_seed(cfg.seed)
    splits = build_from(cfg, "data")
    model = build_from(cfg, "model", input_shape=splits.input_shape,
                       num_outputs=num_outputs_for(splits.num_classes)).to(device)
    features = cached_split_features(model, splits, args.cache_dir, batch_size=args.batch_size,
                                     num_workers=args.num_workers)
    shapes = {name: tuple(array.shape) for name, array in features.items()}
    for name, shape in shapes.items():
        print(f"{name}: {shape[0]:,} x {shape[1]} features")
    return shapes


def main() -> None:
    """Console entry point ``robustml-features`` (exit status 0 on success).

    Errors print once, as ``robustml-train``'s do (``ROBUSTML_DEBUG=1`` shows the traceback).
    """
    report_errors(extract)


if __name__ == "__main__":
    main()
