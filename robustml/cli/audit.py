"""``robustml-audit``: where does a trained model fail? Per-group accuracy, slices, stress test.

    robustml-audit runs/colored_digits_erm/<date_time>                # its own data, test split
    robustml-audit runs/adult_erm/<date_time> data.root=../shared/data --split val
    robustml-audit --predictions preds.npy --features feats.npy data=adult data.root=../shared/data
    robustml-audit --data data=adult data.root=../shared/data          # the data alone, before training
    robustml-audit --data --label-noise data=mnist data.root=../shared/data   # and its label noise

Writes ``audit.md``, ``audit.json`` and ``plots/`` into ``<run>/audit/`` (or ``--out``); with
``--data``, ``data_audit.md`` and ``data_audit.json`` into ``data_audit/`` (or ``--out``) and the
findings on the console.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from robustml.cli.errors import report_errors


def audit(argv: Sequence[str] | None = None) -> Path:
    """Parse ``argv`` (the command line), audit, print where the outputs are; return that folder."""
    parser = argparse.ArgumentParser(prog="robustml-audit", description=__doc__.split("\n")[0])
    parser.add_argument("run", nargs="?", help="a run folder (config.yaml + checkpoints/best.pt)")
    parser.add_argument("overrides", nargs="*", help="data overrides: data=<name>, data.<key>=<value>")
    parser.add_argument("--data", action="store_true",
                        help="audit the data alone (leakage, shortcuts, drift, groups), no run folder")
    parser.add_argument("--label-noise", action="store_true",
                        help="with --data: also estimate the training labels' noise per class (confident "
                             "learning on the cleaning path's out-of-sample probabilities; trains 5 models)")
    parser.add_argument("--split", default="test", choices=("train", "val", "test"))
    parser.add_argument("--out", default=None, help="output folder (default: <run>/audit; data_audit with --data)")
    parser.add_argument("--predictions", default=None, help=".npy of predicted classes (N,)")
    parser.add_argument("--features", default=None, help=".npy of features (N, D)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the clustering and stress test (with --data: of the image sample)")
    parser.add_argument("--num-clusters", type=int, nargs="+", default=None, metavar="K",
                        help="candidate clusters per class (the silhouette picks one); one value "
                             "fixes it (default: DEFAULT_NUM_CLUSTERS of robustml.groups.clustering, "
                             "2 3 4 5)")
    args = parser.parse_args(argv)
    run, overrides = args.run, list(args.overrides)
    if run is not None and "=" in run:  # no run folder: the first positional is an override
        run, overrides = None, [run, *overrides]
    if args.label_noise and not args.data:
        parser.error("--label-noise is part of the data audit: add --data (robustml-audit --data --label-noise "
                     "data=<name> ...)")
    if args.data:
        if run is not None:
            parser.error(f"--data takes data overrides only (data=<name>, data.<key>=<value>), not a run "
                         f"folder; got {run!r}")
        from robustml.audit import render_data_summary
        from robustml.pipeline.audit import data_audit_run  # torch, scikit-learn: after argument parsing
        out, result = data_audit_run(overrides, out_dir=args.out or "data_audit", seed=args.seed,
                                     label_noise=args.label_noise)
        print(render_data_summary(result))
        print(f"Data audit written to {out}/data_audit.md (data_audit.json)")
        return out
    from robustml.pipeline.audit import audit_run  # torch, scikit-learn: after argument parsing
    out = audit_run(run, overrides, split=args.split, out_dir=args.out, predictions=args.predictions,
                    features=args.features, seed=args.seed,
                    **({} if args.num_clusters is None else {"num_clusters": args.num_clusters}))
    print(f"Audit written to {out}/audit.md (audit.json, plots/)")
    return out


def main() -> None:
    """Console entry point ``robustml-audit`` (errors print once, as for the other scripts)."""
    report_errors(audit)
