"""The package ships every module and the top-level configs/ (installed as robustml.configs)."""

from __future__ import annotations

import tomllib

from support import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


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
