"""Regenerate the demo output shown in README.md from what ``make demo`` prints now.

Run from the repository root: ``python scripts/readme_demo_output.py``. It runs ``make demo`` (seed 0,
the defaults, torch's AVX2 kernels: :data:`KERNELS`), and replaces the text between ``<!-- demo-output:start -->`` and
``<!-- demo-output:end -->`` with the printed summary. ``tests/test_readme.py`` runs the same
command and checks the README against it.
"""

from __future__ import annotations

import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

from robustml.report import write_text

REPO = Path(__file__).resolve().parents[1]
REPLACE_BETWEEN = runpy.run_path(str(REPO / "scripts" / "summarize_runs.py"))["replace_between"]
START, END = "<!-- demo-output:start -->", "<!-- demo-output:end -->"
DEMO = ["make", "--no-print-directory", "demo"]
# torch's AVX2 kernels on every x86 CPU: an AVX-512 CPU's kernels sum in another order, and a few
# of 359 test examples near the boundary (and the selected step) can change. Forced, the block is
# the same on both kinds of machine.
KERNELS = {"ATEN_CPU_CAPABILITY": "avx2"}


def demo_output() -> str:
    """Return what ``make demo`` prints on stdout (the console summary), without trailing blanks."""
    subprocess.run(["make", "--no-print-directory", "setup"], cwd=REPO, capture_output=True, check=True)
    out = subprocess.run(DEMO, cwd=REPO, capture_output=True, text=True, check=False,
                         env={**os.environ, **KERNELS})
    if out.returncode != 0:
        sys.exit(f"make demo failed ({out.returncode}):\n{out.stderr}")
    return out.stdout.rstrip()


def shown_output(readme: str) -> str:
    """Return the demo output shown in ``readme`` (the text block between the markers)."""
    match = re.search(re.escape(START) + r"\n```text\n(.*?)\n```\n" + re.escape(END), readme, re.S)
    if match is None:
        raise ValueError(f"README.md has no ```text block between {START} and {END}")
    return match.group(1)


def main() -> None:
    path = REPO / "README.md"
    readme = path.read_text()
    shown_output(readme)  # fails early if the markers are missing
    write_text(path, REPLACE_BETWEEN(readme, START, END, f"```text\n{demo_output()}\n```"))
    print(f"updated {path}")


if __name__ == "__main__":
    main()
