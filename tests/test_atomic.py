"""The one atomic writer: normal permissions, whole-or-absent files, used by every writer."""

from __future__ import annotations

import ast
import os
import signal
import stat
from pathlib import Path

import numpy as np
import pytest
import torch

from robustml.atomic import atomic_path, write_text
from robustml.cleaning.oof import cached_probs
from robustml.report import write_metrics_json, write_report_md
from robustml.report.plots import plot_history
from robustml.train.checkpoint import save_checkpoint

REPO = Path(__file__).resolve().parents[1]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _write_all(folder: Path) -> list[Path]:
    """Write one file through each of the package's writers; return their paths."""
    write_text(folder / "a.txt", "text\n")
    write_metrics_json(folder / "metrics.json", {"acc": 0.5})
    write_report_md(folder / "report.md", title="t", final={
        "val/acc_worst_group": 0.5, "val/worst_group": 0, "val/acc_avg": 0.5,
        "val/acc_group_0": 0.5, "val/count_group_0": 2}, group_names=["g0"], splits=("val",),
        group_label_use="none")
    plot_history(folder / "plot.png", [{"step": 1, "val/acc_avg": 0.5}], ["val/acc_avg"],
                 title="t", ylabel="acc")
    save_checkpoint(folder / "last.pt", {"w": torch.ones(2)})
    labels = np.array([0, 1, 0, 1])
    cached_probs(labels, lambda: np.full((4, 2), 0.5), cache_dir=folder / "cache", key="k")
    return [folder / name for name in ("a.txt", "metrics.json", "report.md", "plot.png", "last.pt")] \
        + list((folder / "cache").glob("*.npy"))


def test_every_writer_leaves_0644_files_and_no_temporary_file(tmp_path, umask_022):
    paths = _write_all(tmp_path)
    assert len(paths) == 6
    assert {path.name: oct(_mode(path)) for path in paths} == {path.name: "0o644" for path in paths}
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]


def test_permissions_follow_the_umask(tmp_path):
    old = os.umask(0o077)
    try:
        write_text(tmp_path / "private.txt", "x")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "private.txt") == 0o600


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary_one(tmp_path):
    target = tmp_path / "out.txt"
    write_text(target, "old\n")
    with pytest.raises(RuntimeError, match="disk on fire"):
        with atomic_path(target) as tmp:
            tmp.write_text("half of the new")
            raise RuntimeError("disk on fire")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_a_process_killed_mid_write_leaves_the_target_whole(tmp_path):
    target = tmp_path / "out.txt"
    write_text(target, "old\n")
    pid = os.fork()
    if pid == 0:  # the child writes half of the new content, then SIGKILLs itself
        try:
            with atomic_path(target) as tmp:
                with open(tmp, "w") as handle:
                    handle.write("half of the new")
                    handle.flush()
                    os.kill(os.getpid(), signal.SIGKILL)
        finally:
            os._exit(1)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == -signal.SIGKILL
    assert target.read_text() == "old\n"
    # Only a hidden temporary file can stay behind; the target is never partial.
    assert [p.name.startswith(".out.txt.") and p.name.endswith(".tmp")
            for p in tmp_path.iterdir() if p != target] == [True]


def test_no_other_module_writes_whole_files_itself():
    # One writer: temporary-file plumbing and direct text writes live in robustml/atomic.py only.
    offenders = []
    for path in (REPO / "robustml").rglob("*.py"):
        if path.name == "atomic.py" or path.name == "example_files.py":  # example data, not outputs
            continue
        text = path.read_text()
        for needle in ("mkstemp", "NamedTemporaryFile", "os.replace(", ".write_text(", ".write_bytes("):
            if needle in text:
                offenders.append(f"{path.relative_to(REPO)}: {needle}")
    assert offenders == []


# Writers that are not atomic on purpose, with the reason.
NON_ATOMIC = {("robustml/report/tables.py", "append_jsonl"): "one line per evaluation; a resume "
              "rewrites the file from the checkpoint's history",
              ("robustml/report/collect.py", "_plot"): "draws into the temporary path that "
              "write_outputs opened with atomic_path",
              ("robustml/trackers/process.py", "_encode"): "hands the selected model to the tracker "
              "process through a private tempfile.TemporaryDirectory, removed after; no run output"}


def _file_writes(tree: ast.AST):
    """Yield ``(function name, call, path expression)`` for every call that writes a file."""
    for function in [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]:
        for call in [n for n in ast.walk(function) if isinstance(n, ast.Call)]:
            name = ast.unparse(call.func)
            mode = call.args[1] if len(call.args) > 1 else next(
                (k.value for k in call.keywords if k.arg == "mode"), None)
            if name == "open" and isinstance(mode, ast.Constant) and set(str(mode.value)) & set("wax"):
                yield function.name, call, call.args[0]
            elif name in ("np.save", "np.savez", "numpy.save") or name.endswith(".savefig"):
                yield function.name, call, call.args[0]
            elif name == "torch.save":
                yield function.name, call, call.args[1]


def _atomic_names(tree: ast.AST) -> dict[ast.AST, set[str]]:
    """Map every node to the names bound by the ``with atomic_path(...)`` around it."""
    safe: dict[ast.AST, set[str]] = {}

    def visit(node: ast.AST, names: set[str]) -> None:
        if isinstance(node, ast.With) and any(
                isinstance(i.context_expr, ast.Call)
                and ast.unparse(i.context_expr.func).split(".")[-1] == "atomic_path"
                for i in node.items):
            names = names | {t.id for i in node.items if isinstance(t := i.optional_vars, ast.Name)}
        safe[node] = names
        for child in ast.iter_child_nodes(node):
            visit(child, names)

    visit(tree, set())
    return safe


def _root(expr: ast.AST) -> str | None:
    while isinstance(expr, ast.BinOp):  # tmp / "name"
        expr = expr.left
    return expr.id if isinstance(expr, ast.Name) else None


def test_every_file_write_goes_to_a_temporary_path_of_the_one_atomic_writer():
    # open(..., "w"), np.save, torch.save and savefig write only into a path (or a handle) bound
    # by `with atomic_path(...)`, but for the listed exceptions.
    offenders = []
    for path in (REPO / "robustml").rglob("*.py"):
        relative = str(path.relative_to(REPO))
        if path.name in ("atomic.py", "example_files.py"):
            continue
        tree = ast.parse(path.read_text())
        safe = _atomic_names(tree)
        for function, call, target in _file_writes(tree):
            if (relative, function) in NON_ATOMIC or _root(target) in safe[call]:
                continue
            offenders.append(f"{relative}:{call.lineno} {function}: {ast.unparse(call)[:80]}")
    assert offenders == []
