"""The README is true line by line: its commands run as written and its shown output is what they print.

Every bash block is run line by line, in order, exactly as written, from a copy of the checkout in
a temporary folder (links to the repository's files, and ``../shared`` beside it as in the
checkout), so that what the commands write (``runs/``, example files) never lands in the
repository. A fenced block whose info string names a file (```` ```csv file=loans.csv ````) is
written there first, as the README asks the reader to. A line whose comment starts with ``-> `` is
a documented mistake: it must fail and print the text after the arrow. ``make test`` is not run
(it is the command that runs this file), ``make demo`` runs in the test of the shown output, lines
that read ``../shared/data`` need MNIST there, and full-size MNIST runs are ``slow``.
"""

from __future__ import annotations

import os
import re
import runpy
import subprocess
from pathlib import Path

import pytest

from support import REPO, mnist_available

DEMO_SCRIPT = runpy.run_path(str(REPO / "scripts" / "readme_demo_output.py"))
DEMO, KERNELS, shown_output = DEMO_SCRIPT["DEMO"], DEMO_SCRIPT["KERNELS"], DEMO_SCRIPT["shown_output"]

README = (REPO / "README.md").read_text()


def _bash_blocks() -> list[list[tuple[str, str | None]]]:
    """Return each bash block's ``(command, expected_error)`` lines, continued lines joined."""
    blocks = []
    for block in re.findall(r"```bash\n(.*?)```", README, flags=re.S):
        lines = []
        for line in block.replace("\\\n", " ").splitlines():
            command, _, comment = line.partition("  #")
            if not command.strip():
                continue
            comment = comment.strip().lstrip("#").strip()
            expected = comment[3:].strip() if comment.startswith("-> ") else None
            lines.append((command.strip(), expected))
        blocks.append(lines)
    return blocks


def _is_slow(command: str) -> bool:
    """Lines that train several or large models are ``slow``: full-size runs on MNIST (Colored
    MNIST, cleaning 60,000 images), sweeps (``robustml-train -m``, and ``robustml-collect`` over
    them), two-stage JTT runs, ResNets on images and the lines that read such a run's checkpoint.
    Each mechanism they use has a fast test of its own in the default suite."""
    full_mnist = "experiment=colored_mnist" in command or "data=mnist" in command
    sweep = "robustml-train -m " in command or "robustml-collect " in command  # collect reads a sweep
    several = sweep or "_jtt" in command
    large = "model=resnet" in command or "data.checkpoint=runs/" in command
    return (full_mnist and "debug=smoke" not in command) or several or large


def _checkout_copy(tmp_path: Path) -> Path:
    """Return a folder that looks like the checkout (links to its files) with the README's files."""
    root = tmp_path / "work" / REPO.name
    root.mkdir(parents=True)
    for entry in REPO.iterdir():
        if entry.name not in (".git", "runs"):
            (root / entry.name).symlink_to(entry)
    shared = REPO.parent / "shared"
    if shared.is_dir():
        (root.parent / "shared").symlink_to(shared)
    for name, text in re.findall(r"```\w+ file=(\S+)\n(.*?)```", README, flags=re.S):
        (root / name).write_text(text)
    return root


def _run(command: str, cwd: Path, **extra_env: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("ROBUSTML_DEBUG", "ROBUSTML_OUTPUT")}
    env.update(extra_env)
    return subprocess.run(command, shell=True, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=1800)


def _check(command: str, expected: str | None, cwd: Path) -> None:
    out = _run(command, cwd)
    if expected is None:
        assert out.returncode == 0, f"{command!r} failed:\n{out.stderr[-3000:]}"
    else:
        assert out.returncode != 0, f"{command!r} should fail"
        assert expected in out.stderr, out.stderr[-3000:]
        assert "Traceback" not in out.stderr  # the message once, no traceback


def test_readme_has_the_two_commands():
    assert [("make demo", None), ("make test", None)] in _bash_blocks()


@pytest.mark.parametrize("block", [pytest.param(b, id=b[0][0]) for b in _bash_blocks()])
def test_readme_block_runs_as_written(block, tmp_path):
    """Run a block's lines in order (a later line may use an earlier one's files)."""
    cwd = _checkout_copy(tmp_path)
    skipped = []
    for command, expected in block:
        if command == "make test":
            skipped.append("`make test` is the command that runs this suite (CI runs it)")
        elif command == "make demo":
            skipped.append("`make demo` runs in test_readme_demo_output_is_what_make_demo_prints")
        elif _is_slow(command):
            skipped.append(f"{command!r} is slow: test_readme_blocks_with_slow_lines_run_as_written runs it")
        elif "../shared/data" in command and not mnist_available():
            skipped.append(f"{command!r} needs MNIST under ../shared/data, which is absent")
        else:
            _check(command, expected, cwd)
    if len(skipped) == len(block):
        pytest.skip("; ".join(skipped))


def test_readme_mnist_lines_skip_with_a_reason():
    if not mnist_available():
        pytest.skip("MNIST is not under ../shared/data; the README lines that read it did not run")


@pytest.mark.slow
@pytest.mark.parametrize("block", [pytest.param(b, id=b[0][0]) for b in _bash_blocks()
                                   if any(_is_slow(c) for c, _ in b)])
def test_readme_blocks_with_slow_lines_run_as_written(block, tmp_path):
    """Run every line of a block that has a slow line, in order (a slow line may read the files
    of the lines before it: a sweep folder, a run's checkpoint)."""
    if any("../shared/data" in c for c, _ in block) and not mnist_available():
        pytest.skip("MNIST is not under ../shared/data; this README block needs it")
    cwd = _checkout_copy(tmp_path)
    for command, expected in block:
        if command not in ("make test", "make demo"):
            _check(command, expected, cwd)


def _parse_summary(text: str) -> dict:
    """Return the group rows ``{g: (name, count, acc)}`` and the headline accuracies of a summary."""
    groups = {int(m[0]): (m[1].strip(), int(m[2]), float(m[3]))
              for m in re.findall(r"^\| (\d+)\s+\| (\S+)\s+\| (\d+)\s+\| ([\d.]+)\s+\|", text, re.M)}
    lines = {m[0]: float(m[1]) for m in re.findall(r"^([a-z-]+(?: [a-z-]+)*)\s+([\d.]+)%", text, re.M)}
    return {"groups": groups, "lines": lines,
            "text": re.sub(r"\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}", "<date_time>", text)}


def test_readme_demo_output_is_what_make_demo_prints(tmp_path):
    """The README's summary is what seed 0 prints with torch's AVX2 kernels, as the block was made.

    Group names, counts and every line of text are exact. Accuracies are compared within 3 points
    (another CPU model may still sum in another order). Without the forced kernels an AVX-512 CPU
    selects step 150 instead of 125. Regenerate the block with ``python scripts/readme_demo_output.py``.
    """
    if subprocess.run(["make", "-q", "setup"], cwd=REPO).returncode != 0:
        pytest.fail(".venv is older than pyproject.toml or constraints.txt: run `make setup` first "
                    "(make demo would reinstall the package from the test's copy of the checkout)")
    out = _run(" ".join(DEMO), _checkout_copy(tmp_path), **KERNELS)  # as the block was made
    assert out.returncode == 0, out.stderr[-3000:]
    printed_text = out.stdout.rstrip()
    shown, printed = _parse_summary(shown_output(README)), _parse_summary(printed_text)
    assert shown["groups"] and shown["lines"], "the README shows no summary table"
    assert [(n, c) for n, c, _ in shown["groups"].values()] == \
        [(n, c) for n, c, _ in printed["groups"].values()]
    for g, (_, _, acc) in shown["groups"].items():
        assert printed["groups"][g][2] == pytest.approx(acc, abs=3.0), f"group {g}"
    assert shown["lines"].keys() == printed["lines"].keys()
    for key, value in shown["lines"].items():
        assert printed["lines"][key] == pytest.approx(value, abs=3.0), key
    numbers = r"\d+(\.\d+)?%?|<- worst|group \d+, \S+|step \d+ of"
    assert re.sub(numbers, "#", shown["text"]).split() == re.sub(numbers, "#", printed["text"]).split()


def test_readme_python_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    assert blocks, "README.md has no python example"
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    metrics = namespace["meter"].compute()
    assert 0.0 <= metrics["acc_worst_group"] <= metrics["acc_avg"] <= 1.0
