"""The README's code runs as written: a newcomer's first contact must not be broken."""

import re

from support import REPO


def test_readme_python_example_runs():
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README.md has no python example"
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    metrics = namespace["meter"].compute()
    assert 0.0 <= metrics["acc_worst_group"] <= metrics["acc_avg"] <= 1.0
