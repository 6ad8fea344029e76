"""A run's outputs: metrics.json, metrics.jsonl, report.md, plots and the console summary; and a
sweep's tables (``robustml-collect``, :mod:`robustml.report.collect`)."""

from robustml.report.console import render_console_summary
from robustml.report.plots import plot_group_accuracy, plot_history
from robustml.report.tables import (append_jsonl, markdown_table, render_report_md, write_jsonl,
                                    write_metrics_json, write_report_md, write_text)

__all__ = ["append_jsonl", "markdown_table", "plot_group_accuracy", "plot_history",
           "render_console_summary", "render_report_md", "write_jsonl", "write_metrics_json",
           "write_report_md", "write_text"]
