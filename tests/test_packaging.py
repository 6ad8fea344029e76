"""The package ships every module and the top-level configs/ (installed as robustml.configs); the
SLURM launcher is an extra that ``make`` installs."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib

import pytest

from support import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def _names(requirements: list[str]) -> set[str]:
    """Return the distribution names of ``requirements`` (without versions, extras or markers)."""
    return {re.match(r"[A-Za-z0-9._-]+", requirement).group() for requirement in requirements}


def test_every_package_under_robustml_is_listed_for_the_wheel():
    """An editable install imports an unlisted package; a wheel would silently leave it out."""
    on_disk = {str(p.parent.relative_to(REPO)).replace("/", ".")
               for p in (REPO / "robustml").rglob("__init__.py")}
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    assert listed == on_disk | {"robustml.configs"}


def test_configs_install_from_the_top_level_folder_with_their_yaml_files():
    setuptools = PYPROJECT["tool"]["setuptools"]
    assert setuptools["package-dir"] == {"robustml.configs": "configs"}
    assert (REPO / "configs" / "__init__.py").is_file() and (REPO / "configs" / "train.yaml").is_file()
    assert setuptools["package-data"]["robustml.configs"] == ["**/*.yaml"]
    assert not (REPO / "robustml" / "configs").exists()


def test_the_installed_config_package_is_the_top_level_folder():
    import robustml.configs
    assert robustml.configs.__file__ is not None
    assert str(REPO / "configs") in robustml.configs.__file__ or (
        not (REPO / ".venv").exists())  # a wheel install elsewhere carries its own copy


def test_the_slurm_launcher_is_an_extra_that_make_installs():
    """``pip install robustml`` leaves submitit out; ``make`` installs it for the sweep tests."""
    project = PYPROJECT["project"]
    slurm = _names(project["optional-dependencies"]["slurm"])
    assert slurm == {"hydra-submitit-launcher", "submitit"}
    assert not slurm & _names(project["dependencies"]), "the SLURM launcher is a base dependency"
    installed = re.search(r'pip install .*-e "\.\[([^\]]*)\]"', (REPO / "Makefile").read_text())
    assert installed and set(installed.group(1).split(",")) == {
        "dev", "slurm", "trackers", "optuna", "text", "text-offline"}, (
        "make setup must install the dev, slurm, trackers, optuna, text and text-offline extras")


def test_the_trackers_and_the_optuna_sweeper_are_extras():
    """``pip install robustml`` leaves tensorboard, mlflow and optuna out; ``make`` installs them."""
    project = PYPROJECT["project"]
    assert _names(project["optional-dependencies"]["trackers"]) == {"tensorboard", "mlflow-skinny"}
    assert _names(project["optional-dependencies"]["optuna"]) == {"hydra-optuna-sweeper"}
    base = _names(project["dependencies"])
    assert not base & {"tensorboard", "mlflow", "mlflow-skinny", "optuna", "hydra-optuna-sweeper"}


@pytest.mark.parametrize("name", ["audit", "clean", "collect", "features"])
def test_each_console_script_also_runs_as_python_dash_m(name):
    # `python -m robustml.cli.<name> --help` printed nothing and exited 0 without a __main__ block.
    out = subprocess.run([sys.executable, "-m", f"robustml.cli.{name}", "--help"], capture_output=True,
                         text=True, timeout=120)
    text = (out.stdout + out.stderr).lower()
    assert out.returncode == 0 and ("usage" in text or "powered by hydra" in text), out.stderr[-2000:]
