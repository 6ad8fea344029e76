"""Turn a sweep folder into tables: mean ± std over seeds, chosen on validation only.

A sweep folder holds one folder per run, each with the ``config.yaml`` (resolved config) and
``metrics.json`` that ``robustml-train`` writes. Runs are grouped into *settings* (the values of
the ``by`` keys, by default the classes that differ between runs: which data, model, loss) and,
within a setting, into *configurations* (the other config values that differ: the
hyperparameters); the runs of a configuration differ only by ``seed``.

Within each setting the configuration with the highest mean over seeds of the selection metric
(a validation metric: ``val/acc_<rule>``, or ``val/overlap_acc_worst_group``) is chosen; each
run's checkpoint was already chosen on validation by the run itself (``trainer.select``). The
test split is never used to choose, unless an *oracle* table is asked for, which says so in its
title and every output (DomainBed's ``collect_results``: a named selection rule per table).

Keys of the data (``data.*``: which validation split, its size, the data set) always define the
setting, never a hyperparameter: validation metrics of different validation splits are not
comparable, and choosing between them would choose the validation split. Runs that validate on
the test distribution (``data.val=oracle``) are refused unless an oracle table is asked for. Two
runs of one configuration with the same seed (a copied or rerun folder) are refused, naming both.

Spread over seeds: the sample standard deviation (``ddof=1``; 0 for one seed) and a percentile
bootstrap 95% interval of the mean test worst-group accuracy over seeds (seeds resampled with
replacement, not test examples: it leaves out a small test group's sampling error; 2 seeds give
the two values; one seed gives none, NaN shown as ``n/a``).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from robustml.identity import COLLECT_EXEMPT_KEYS, COLLECT_EXEMPT_PREFIXES, flatten
from robustml.selection import DEFAULT_RULE, RULES

RULE_PREFIX = "val/acc_"
PER_GROUP = re.compile(r"group_\d+")  # one group's accuracy: not a selection rule (group_mean is)
REPORTED = (("test/acc_worst_group", "test worst-group (%)"), ("test/acc_avg", "test average (%)"))


@dataclass
class Run:
    """One run folder: its flattened config and final metrics (``None`` when it did not finish)."""

    path: Path
    config: dict[str, Any]
    final: dict[str, Any] | None


@dataclass
class Row:
    """One configuration of a setting, over its seeds."""

    hparams: dict[str, Any]
    seeds: list[int]
    select: dict[str, float]
    metrics: dict[str, dict[str, float]]
    interval: tuple[float, float]
    checkpoint_rules: list[str]
    health: int = 0  # health findings over the configuration's runs (robustml.health)
    chosen: bool = False


@dataclass
class Collection:
    """The tables of a sweep: ``{setting: [Row, ...]}`` and how they were chosen."""

    rule: str
    select_key: str
    oracle: bool
    by: list[str]
    tables: dict[str, list[Row]] = field(default_factory=dict)
    unfinished: list[str] = field(default_factory=list)


def flat_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Return a config as :func:`robustml.identity.flatten` does, lists and mappings as JSON strings
    (so that every value can name a configuration)."""
    return {key: json.dumps(value) if isinstance(value, (list, dict)) else value
            for key, value in flatten(config).items()}


def load_runs(sweep_dir: str | Path) -> list[Run]:
    """Return every run under ``sweep_dir`` (a folder holding ``config.yaml``), in path order."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"SWEEP_DIR {sweep_dir} is not a folder: pass a sweep folder such as "
                                "runs/multirun/<date_time>")
    runs = []
    for config_path in sorted(sweep_dir.rglob("config.yaml")):
        if any(part.startswith(".") for part in config_path.relative_to(sweep_dir).parts):
            continue  # Hydra's .hydra/config.yaml (unresolved) and hidden folders
        metrics_path = config_path.parent / "metrics.json"
        final = json.loads(metrics_path.read_text()) if metrics_path.is_file() else None
        runs.append(Run(config_path.parent, flat_config(yaml.safe_load(config_path.read_text()) or {}),
                        final))
    if not runs:
        raise FileNotFoundError(f"no run folder (one with config.yaml) under {sweep_dir}")
    return runs


def valid_rules(runs: Sequence[Run]) -> list[str]:
    """Return the selection rules every finished run has a validation metric for (``val/acc_<rule>``)."""
    keys = [set(run.final) for run in runs if run.final is not None]
    common = set.intersection(*keys) if keys else set()
    return sorted(key[len(RULE_PREFIX):] for key in common
                  if key.startswith(RULE_PREFIX) and not PER_GROUP.fullmatch(key[len(RULE_PREFIX):]))


def varying_keys(runs: Sequence[Run]) -> list[str]:
    """Return the config keys whose value differs between runs, except seeds, names and paths.

    A key equal to the run's ``seed`` in every run (``data.seed: ${seed}``) counts as the seed.
    """
    keys = sorted(set().union(*(run.config for run in runs)))
    return [key for key in keys
            if key not in COLLECT_EXEMPT_KEYS and not key.startswith(COLLECT_EXEMPT_PREFIXES)
            and len({json.dumps(run.config.get(key), sort_keys=True, default=str) for run in runs}) > 1
            and not all(run.config.get(key) == run.config.get("seed") for run in runs)]


def _mean_std(values: Sequence[float]) -> dict[str, float]:
    array = np.asarray(values, dtype=float)
    return {"mean": float(array.mean()), "std": float(array.std(ddof=1)) if array.size > 1 else 0.0}


def bootstrap_interval(values: Sequence[float], *, num_resamples: int = 10_000,
                       seed: int = 0) -> tuple[float, float]:
    """Return the percentile bootstrap 95% interval of the mean of ``values`` (resampled with
    replacement); ``(nan, nan)`` for fewer than two values, which have no spread to resample."""
    array = np.asarray(values, dtype=float)
    if array.size < 2:
        return float("nan"), float("nan")
    draws = np.random.default_rng(seed).integers(0, array.size, size=(num_resamples, array.size))
    low, high = np.percentile(array[draws].mean(axis=1), [2.5, 97.5])
    return float(low), float(high)


def _select_key(rule: str, runs: Sequence[Run], oracle: bool) -> str:
    """Return the metric key that chooses configurations (a rule of ``robustml.selection.RULES`` its
    own metric, any other name ``val/acc_<name>``), refusing the test split unless oracle."""
    name = rule.split("/", 1)[1] if rule.startswith(("val/", "test/")) else rule
    name = name[len("acc_"):] if name.startswith("acc_") else name
    if rule.startswith("test") and not oracle:
        raise ValueError(f"--select {rule} chooses on the test split, which this table refuses: pass "
                         "a validation rule, or --oracle for an oracle table (labelled as such)")
    finals = [run.final for run in runs if run.final is not None]
    valid = valid_rules(runs) + [r.name for r in RULES.values() if r.metric and not r.metric.startswith(
        RULE_PREFIX) and all(r.metric in final for final in finals)]
    if name not in valid:
        raise ValueError(f"--select must be a rule whose validation metric every finished run has, "
                         f"one of {valid}; got {rule!r}")
    metric = RULES[name].metric if name in RULES and RULES[name].metric else RULE_PREFIX + name
    return ("test" if oracle else "val") + metric[len("val"):]


def collect(sweep_dir: str | Path, *, select: str = DEFAULT_RULE, oracle: bool = False,
            by: Sequence[str] | None = None, num_resamples: int = 10_000) -> Collection:
    """Group a sweep's runs into settings and configurations; choose one configuration per setting.

    Args:
        sweep_dir: The sweep folder (``runs/multirun/<date_time>``).
        select: Selection rule: ``worst_group``, ``avg`` or any ``<rule>`` whose ``val/acc_<rule>``
            every finished run has.
        oracle: Choose on the test split's metric of the same rule instead (an oracle table).
        by: Config keys that define a setting; default: the ``_target_`` keys that differ.
        num_resamples: Bootstrap resamples of the seeds.
    """
    runs = load_runs(sweep_dir)
    finished = [run for run in runs if run.final is not None]
    if not finished:
        raise ValueError(f"no run under {sweep_dir} has a metrics.json (all failed or are running)")
    select_key = _select_key(select, finished, oracle)
    varying = varying_keys(finished)
    if not oracle:
        tested = [str(run.path) for run in finished if run.config.get("data.val") == "oracle"]
        if tested:
            raise ValueError(f"{len(tested)} run(s) validate on the test distribution "
                             f"(data.val=oracle), e.g. {tested[0]}: choosing on their validation is "
                             "choosing on test; pass --oracle for an oracle table, or collect a sweep "
                             "without them")
    by = ([key for key in varying if key.endswith("._target_") or key.startswith("data.")]
          if by is None else list(by))
    unknown = [key for key in by if not any(key in run.config for run in finished)]
    if unknown:
        raise ValueError(f"--by keys {unknown} are not in the runs' config.yaml; keys that differ "
                         f"between runs: {varying}")
    hparam_keys = [key for key in varying if key not in by]
    groups: dict[str, dict[str, list[Run]]] = {}
    seen: dict[tuple[str, str, Any], Path] = {}
    for run in finished:
        setting = ", ".join(f"{key}={run.config.get(key)}" for key in by) or "all runs"
        config = json.dumps({key: run.config.get(key) for key in hparam_keys}, default=str)
        twin = seen.setdefault((setting, config, run.config.get("seed")), run.path)
        if twin != run.path:
            raise ValueError(f"{twin} and {run.path} are the same configuration with the same seed "
                             f"({run.config.get('seed')}): a copied or rerun folder would count twice; "
                             "remove one of them")
        groups.setdefault(setting, {}).setdefault(config, []).append(run)
    result = Collection(select, select_key, oracle, by,
                        unfinished=[str(run.path) for run in runs if run.final is None])
    for setting, configs in sorted(groups.items()):
        rows = [_row(json.loads(config), members, select_key, num_resamples)
                for config, members in configs.items()]
        best = max(range(len(rows)), key=lambda i: (rows[i].select["mean"], -i))
        rows[best].chosen = True
        result.tables[setting] = rows
    return result


def _row(hparams: dict[str, Any], runs: list[Run], select_key: str, num_resamples: int) -> Row:
    runs = sorted(runs, key=lambda run: run.config.get("seed", 0))
    values = {key: [_number(run, key) for run in runs] for key, _ in REPORTED}
    return Row(hparams=hparams, seeds=[run.config.get("seed") for run in runs],
               select=_mean_std([_number(run, select_key) for run in runs]),
               metrics={key: _mean_std(v) for key, v in values.items()},
               interval=bootstrap_interval(values["test/acc_worst_group"], num_resamples=num_resamples),
               checkpoint_rules=sorted({str(run.final.get("selection")) for run in runs}),
               health=sum(int(run.final.get("health/count", 0)) for run in runs))


def _number(run: Run, key: str) -> float:
    value = run.final.get(key)
    if value is None:
        raise ValueError(f"{run.path / 'metrics.json'} has no value for {key!r}")
    return float(value)


def _pct(stats: Mapping[str, float]) -> str:
    return f"{100 * stats['mean']:.1f} ± {100 * stats['std']:.1f}"


def title(collection: Collection) -> str:
    """Return the sentence that says how the tables were chosen (and whether they are an oracle)."""
    if collection.oracle:
        return (f"ORACLE TABLE: configurations chosen by the TEST split's `{collection.select_key}` "
                "(mean over seeds); not an estimate of out-of-sample performance. Checkpoints were "
                "chosen within each run on validation (`trainer.select`).")
    return (f"Configurations chosen by validation `{collection.select_key}` (mean over seeds, rule "
            f"`{collection.rule}`); checkpoints chosen within each run on validation "
            "(`trainer.select`); the test split chose nothing.")


def rows_as_records(collection: Collection) -> list[dict[str, Any]]:
    """Return one flat record per configuration (the CSV and JSON rows), accuracies in [0, 1]."""
    records = []
    for setting, rows in collection.tables.items():
        for row in rows:
            record = {"setting": setting, "chosen": row.chosen, "oracle": collection.oracle,
                      "select_key": collection.select_key, "seeds": len(row.seeds),
                      "hparams": json.dumps(row.hparams, default=str),
                      "checkpoint_rule": "|".join(row.checkpoint_rules),
                      "select_mean": row.select["mean"], "select_std": row.select["std"],
                      "health_findings": row.health}
            for key, _ in REPORTED:
                record[f"{key}_mean"], record[f"{key}_std"] = (row.metrics[key]["mean"],
                                                              row.metrics[key]["std"])
            record["test/acc_worst_group_ci_low"], record["test/acc_worst_group_ci_high"] = (
                (None, None) if np.isnan(row.interval[0]) else row.interval)  # JSON has no NaN
            records.append(record)
    return records


def render_markdown(collection: Collection) -> str:
    """Return one markdown table per setting; the chosen configuration is marked."""
    from robustml.report.tables import markdown_table

    select_title = f"{'TEST (oracle)' if collection.oracle else 'val'} {collection.select_key.split('/acc_')[1]} (%)"
    headers = ("chosen", "hyperparameters", "seeds", select_title,
               *(title for _, title in REPORTED), "test worst-group, bootstrap 95% over seeds (%)",
               "checkpoint rule", "health findings")
    parts = [title(collection)]
    for setting, rows in collection.tables.items():
        body = [["<- chosen" if row.chosen else "",
                 " ".join(f"{k}={v}" for k, v in row.hparams.items()) or "(none differ)",
                 ",".join(str(s) for s in row.seeds), _pct(row.select),
                 *(_pct(row.metrics[key]) for key, _ in REPORTED),
                 "n/a" if np.isnan(row.interval[0])
                 else f"[{100 * row.interval[0]:.1f}, {100 * row.interval[1]:.1f}]",
                 ", ".join(row.checkpoint_rules), row.health] for row in rows]
        parts.append(f"### {setting}\n\n{markdown_table(headers, body)}")
    if collection.unfinished:
        parts.append("Runs without metrics.json (failed or unfinished), left out: "
                     + ", ".join(collection.unfinished))
    return "\n\n".join(parts) + "\n"


def write_outputs(collection: Collection, out_dir: str | Path, *,
                  json_path: str | Path | None = None) -> list[Path]:
    """Write ``collect.md``, ``collect.csv`` and ``collect.png`` in ``out_dir`` (and the JSON if asked).

    Every file is written atomically; an oracle collection writes ``collect_oracle.*`` instead,
    so an oracle table never replaces (or passes for) the validation-chosen one.
    """
    from robustml.report.tables import atomic_path, write_text

    out_dir = Path(out_dir)
    stem = out_dir / ("collect_oracle" if collection.oracle else "collect")
    records = rows_as_records(collection)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(records[0]))
    writer.writeheader()
    writer.writerows(records)
    paths = [stem.with_suffix(".md"), stem.with_suffix(".csv"), stem.with_suffix(".png")]
    write_text(paths[0], f"# Sweep {out_dir}\n\n{render_markdown(collection)}")
    write_text(paths[1], buffer.getvalue())
    with atomic_path(paths[2]) as tmp:
        _plot(collection, tmp)
    if json_path is not None:
        payload = {"title": title(collection), "rule": collection.rule,
                   "select_key": collection.select_key, "oracle": collection.oracle,
                   "by": collection.by, "unfinished": collection.unfinished, "rows": records}
        write_text(json_path, json.dumps(payload, indent=2) + "\n")
        paths.append(Path(json_path))
    return paths


def _plot(collection: Collection, path: Path) -> None:
    """Plot the test worst-group mean and bootstrap 95% interval of every configuration."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    labels, means, errors, colors = [], [], [], []
    for setting, rows in collection.tables.items():
        for row in rows:
            hparams = " ".join(f"{k}={v}" for k, v in row.hparams.items())
            labels.append(f"{setting} {hparams}".strip())
            mean = 100 * row.metrics["test/acc_worst_group"]["mean"]
            means.append(mean)
            errors.append([0.0, 0.0] if np.isnan(row.interval[0])  # one seed: no interval
                          else [mean - 100 * row.interval[0], 100 * row.interval[1] - mean])
            colors.append("tab:red" if row.chosen else "tab:gray")
    fig = Figure(figsize=(8, 0.4 * len(labels) + 1.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.barh(range(len(labels)), means, xerr=np.asarray(errors).T, color=colors, capsize=3)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("test worst-group accuracy (%), mean and bootstrap 95% interval over seeds")
    ax.set_title(("ORACLE: chosen on test" if collection.oracle else "chosen on validation")
                 + f" ({collection.select_key}); red = chosen", fontsize=9)
    fig.savefig(path, format="png", dpi=120, bbox_inches="tight")
