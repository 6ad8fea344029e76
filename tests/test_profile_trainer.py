"""scripts/profile_trainer.py on a tiny synthetic run: every phase and chunk size is printed."""

import runpy
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "profile_trainer.py"


def test_tiny_profile_prints_the_phases_and_chunk_sizes(capsys):
    runpy.run_path(str(SCRIPT))["main"](["--synthetic", "--size", "60", "--steps", "3", "--repeats", "1",
                                         "--chunk-sizes", "16", "32"])
    out = capsys.readouterr().out
    for line in ("evaluates at the end: steps", "like for like: steps", "chunk_size 16:", "chunk_size 32:"):
        assert line in out
    like = next(line for line in out.splitlines() if line.startswith("like for like"))
    fields = dict(part.strip().rsplit(" ", 2)[:2] for part in like.split(":", 1)[1].split(","))
    assert float(fields["steps"]) + float(fields["evaluations"]) <= float(fields["fit"])
