"""What every console script does when something goes wrong (one home for all entry points).

- an unknown config key lists the valid keys beside it (Hydra alone does not);
- an error raised inside a run is printed once, as ``Error: <type>: <message>``, without Hydra's
  traceback; ``ROBUSTML_DEBUG=1`` (or Hydra's own ``HYDRA_FULL_ERROR=1``) shows the full one;
- Ctrl-C ends with one line that gives the exact command resuming the run from its last
  checkpoint;
"""

from __future__ import annotations

import functools
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_module
from hydra.core.hydra_config import HydraConfig
from hydra.errors import ConfigCompositionException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError

from robustml.train.checkpoint import load_checkpoint
from robustml.pipeline.naming import register_run_name_resolver

register_run_name_resolver()


def unknown_key_hint(overrides: list[str], config_name: str = "train") -> str | None:
    """Return a message listing the valid keys when an override names a key the config lacks.

    Hydra alone reports ``Key 'x' is not in struct``; this names the valid keys beside it. Returns
    ``None`` when the overrides compose (or fail for another reason, which Hydra then reports).
    """
    with initialize_config_module(config_module="robustml.configs", version_base="1.3"):
        try:
            compose(config_name=config_name, overrides=overrides)
            return None
        except ConfigCompositionException as error:
            cause = error.__cause__
            if not isinstance(cause, ConfigAttributeError) or not cause.full_key:
                return None
        parent = cause.full_key.rpartition(".")[0]
        others = [o for o in overrides if o.lstrip("+~").split("=", 1)[0] != cause.full_key]
        try:
            root = compose(config_name=config_name, overrides=others)
        except Exception:  # the other overrides fail too: let Hydra report them
            return None
    node = OmegaConf.select(root, parent) if parent else root
    valid = ", ".join(sorted(str(k) for k in node.keys())) if isinstance(node, DictConfig) else ""
    return f"unknown config key '{cause.full_key}'; valid keys under '{parent or '<root>'}': {valid}"


def check_run_dir_override(argv: list[str]) -> str | None:
    """Create the folder of a ``hydra.run.dir=`` override; return a message if it cannot be made."""
    for arg in argv:
        if arg.startswith("hydra.run.dir="):
            path = arg.split("=", 1)[1]
            try:
                Path(path).mkdir(parents=True, exist_ok=True)
            except OSError as error:
                return (f"hydra.run.dir={path} cannot be created ({error.strerror or error}); "
                        "choose a folder you can write to")
    return None


def _program() -> str:
    """Return the command as the user typed it (``.venv/bin/robustml-train``), for messages."""
    return sys.argv[0] if sys.argv and sys.argv[0] else "robustml-train"


def _show_traceback() -> bool:
    return os.environ.get("ROBUSTML_DEBUG", "") not in ("", "0")


def _error_exit(error: BaseException) -> SystemExit:
    """Return the exit that prints ``error`` once, as ``Error: <type>: <message>`` (code 1)."""
    return SystemExit(f"Error: {type(error).__name__}: {error}\n"
                      "(ROBUSTML_DEBUG=1 shows the full traceback)")


def report_errors(entry: Callable[[], Any]) -> Any:
    """Call a console entry point; an error prints once as ``Error: <type>: <message>`` (code 1)."""
    try:
        return entry()
    except Exception as error:
        if _show_traceback():
            raise
        raise _error_exit(error) from None


def reported(task: Callable[[DictConfig], Any]) -> Callable[[DictConfig], Any]:
    """Wrap a Hydra task: errors print once (Hydra adds no lines of its own), Ctrl-C says how to resume.

    The exit is raised inside the task, where Hydra lets ``SystemExit`` through untouched.
    """
    @functools.wraps(task)
    def wrapped(cfg: DictConfig) -> Any:
        try:
            return report_errors(lambda: task(cfg))
        except KeyboardInterrupt:
            raise _interrupted() from None
    return wrapped


def resume_command(program: str) -> str:
    """Return the shell command that resumes the current Hydra run from its last checkpoint."""
    hydra_cfg = HydraConfig.get()
    kept = [o for o in hydra_cfg.overrides.task
            if not o.startswith(("hydra.run.dir=", "trainer.resume="))]
    args = [program, *kept, f"hydra.run.dir={hydra_cfg.runtime.output_dir}", "trainer.resume=true"]
    return " ".join(shlex.quote(a) for a in args)


def _interrupted() -> SystemExit:
    """Print the one-line resume message of a Ctrl-C and return the exit to raise (code 130)."""
    last = Path(HydraConfig.get().runtime.output_dir) / "checkpoints" / "last.pt"
    if last.is_file():
        step = load_checkpoint(last).get("step", "?")
        print(f"\nInterrupted. Resume from the last checkpoint (step {step}) with: "
              f"{resume_command(_program())}", file=sys.stderr)
    else:
        print("\nInterrupted before the first checkpoint; nothing to resume: run the same "
              "command again to start over.", file=sys.stderr)
    return SystemExit(130)


def console(task: Callable[[], Any], config_name: str) -> Any:
    """Run a Hydra entry point with robustml's error reporting (see the module docstring)."""
    if os.environ.get("HYDRA_FULL_ERROR", "") not in ("", "0"):
        os.environ["ROBUSTML_DEBUG"] = "1"  # Hydra's switch for full tracebacks means the same here
    overrides = [a for a in sys.argv[1:] if "=" in a and not a.startswith(("-", "hydra.", "hydra/"))]
    hint = unknown_key_hint(overrides, config_name) or check_run_dir_override(sys.argv[1:])
    if hint is not None:
        sys.exit(f"Error: {hint}")
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra re-raises instead of printing its own traceback
    return report_errors(task)  # Hydra's own errors (composition, overrides, the run folder)
