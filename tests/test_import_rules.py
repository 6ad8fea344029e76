"""The dependency rules of DESIGN.md, checked on what importing each package really loads.

Each lower package is imported with every one of its modules (``pkgutil.walk_packages``) in a fresh
interpreter, and ``sys.modules`` must hold none of the packages it may not depend on: the data
package imports nothing of ``augment`` or ``cleaning`` (a dataset declares its counterfactual rule
as data; the label-noise generator lives in ``robustml.data.noise``), and no library package
imports the training package (or Hydra).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

FORBIDDEN = {
    "robustml.data": ("robustml.augment", "robustml.cleaning", "robustml.train", "robustml.losses",
                      "robustml.metrics", "hydra"),
    "robustml.augment": ("robustml.cleaning", "robustml.train", "robustml.losses", "hydra"),
    "robustml.cleaning": ("robustml.augment", "robustml.train", "hydra"),
    "robustml.losses": ("robustml.data", "robustml.augment", "robustml.cleaning", "robustml.train",
                        "hydra"),
    "robustml.metrics": ("robustml.data", "robustml.augment", "robustml.cleaning",
                         "robustml.train", "robustml.losses", "hydra"),
}

PROBE = """
import importlib, json, pkgutil, sys
package = importlib.import_module(sys.argv[1])
modules = [info.name for info in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
for name in modules:
    importlib.import_module(name)
print(json.dumps({"imported": modules, "loaded": sorted(sys.modules)}))
"""


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_none_of_its_forbidden_packages(package):
    out = subprocess.run([sys.executable, "-c", PROBE, package], capture_output=True, text=True,
                         check=True)
    result = json.loads(out.stdout.splitlines()[-1])
    assert result["imported"], f"{package} has no modules to import"
    loaded = result["loaded"]
    bad = sorted(name for name in loaded for prefix in FORBIDDEN[package]
                 if name == prefix or name.startswith(prefix + "."))
    assert not bad, f"importing every module of {package} loads {bad}"
