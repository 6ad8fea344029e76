"""``robustml-clean``: find label issues only and write the cleaning report (no training)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from robustml.cli.errors import console, reported
from robustml.train.rng import seed_everything


@hydra.main(version_base="1.3", config_path="pkg://robustml.configs", config_name="clean")
@reported
def _clean_task(cfg: DictConfig) -> None:
    from robustml.pipeline.clean import main_clean  # cleanlab and scikit-learn: only when asked
    from robustml.pipeline.instantiate import build_from
    seed_everything(cfg.seed)
    main_clean(cfg, build_from(cfg, "data"), Path(HydraConfig.get().runtime.output_dir))


def main() -> Any:
    """Console entry point ``robustml-clean``."""
    return console(_clean_task, "clean")


if __name__ == "__main__":
    main()
