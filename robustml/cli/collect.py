"""``robustml-collect``: one table per setting of a sweep, chosen on validation only.

::

    robustml-collect runs/multirun/2026-12-01_10-00-00                       # val worst-group
    robustml-collect runs/multirun/2026-12-01_10-00-00 --select avg --json results.json
    robustml-collect runs/multirun/2026-12-01_10-00-00 --oracle              # labelled oracle table

Prints the markdown tables and writes ``collect.md``, ``collect.csv`` and ``collect.png`` in the
sweep folder (``--out`` elsewhere; ``collect_oracle.*`` for an oracle table). The logic is
:mod:`robustml.report.collect`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from robustml.cli.errors import report_errors
from robustml.report.collect import Collection, collect, render_markdown, write_outputs
from robustml.selection import DEFAULT_RULE


def collect_sweep(argv: Sequence[str] | None = None) -> Collection:
    """Parse ``argv`` (the command line), collect the sweep, print and write its tables."""
    parser = argparse.ArgumentParser(prog="robustml-collect", description=__doc__.split("\n")[0])
    parser.add_argument("sweep_dir", metavar="SWEEP_DIR", help="a sweep folder (runs/multirun/<date_time>)")
    parser.add_argument("--select", default=DEFAULT_RULE, metavar="RULE",
                        help=f"selection rule on validation: {DEFAULT_RULE} (default), avg, "
                             "worst_overlap_group (val/overlap_acc_worst_group, CivilComments-WILDS), "
                             "or any <rule> whose val/acc_<rule> every run has")
    parser.add_argument("--oracle", action="store_true",
                        help="choose on the test split instead (an oracle table, labelled as such)")
    parser.add_argument("--by", default=None, metavar="KEYS",
                        help="comma-separated config keys that define a setting (default: the "
                             "_target_ keys that differ between runs)")
    parser.add_argument("--json", default=None, metavar="FILE", help="also write the rows as JSON")
    parser.add_argument("--out", default=None, metavar="DIR", help="output folder (default: SWEEP_DIR)")
    args = parser.parse_args(argv)
    by = None if args.by is None else [key for key in args.by.split(",") if key]
    collection = collect(args.sweep_dir, select=args.select, oracle=args.oracle, by=by)
    print(render_markdown(collection))
    for path in write_outputs(collection, args.out or args.sweep_dir, json_path=args.json):
        print(f"wrote {path}")
    return collection


def main() -> None:
    """Console entry point ``robustml-collect``; errors print once (``ROBUSTML_DEBUG=1``: traceback)."""
    report_errors(collect_sweep)


if __name__ == "__main__":
    main()
