"""Compare finished runs: `python -m cifar_helpers compare RUN_DIR...` and notebook 06's table.

Reads each run folder's metrics.json (written last, so only finished studies count) and lists
accuracy, time, and only the settings in which the runs differ.
"""

from __future__ import annotations

import json
import math
import shlex
from dataclasses import fields
from pathlib import Path
from typing import Sequence

from .config import Config, with_new_defaults
from .errors import OutputError
from .report import RESULT_MARKER

# where a run was written, and how long a download might take, say nothing about what it computed
IGNORED_SETTINGS = ("out", "download_timeout")


REQUIRED_KEYS = ("config", "test_accuracy", "history", "phases", "total_seconds")


def load_finished_run(folder: str | Path) -> dict:
    """The metrics.json of a finished run, or an OutputError that says what to do."""
    path = Path(folder) / RESULT_MARKER
    if Path(folder).is_file():
        raise OutputError(f"{folder}: a file; pass the run folder that holds {RESULT_MARKER}")
    if not Path(folder).is_dir():
        raise OutputError(f"{folder}: no such folder")
    if not path.is_file():
        raise OutputError(f"{folder}: no finished run here ({RESULT_MARKER} is missing); finish it "
                          "by running the command that started it again (the same --profile "
                          f"and settings, with --out {shlex.quote(str(folder))})")
    try:
        metrics = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise OutputError(f"{path}: cannot read it ({exc})") from None
    missing = [key for key in REQUIRED_KEYS if not isinstance(metrics, dict) or key not in metrics]
    if missing:
        raise OutputError(f"{path}: not the metrics of a run of this course "
                          f"(no {', '.join(missing)})")
    return metrics


def differing_settings(configs: Sequence[dict]) -> list[str]:
    """The names of the settings whose values are not the same in every run."""
    names = [name for name in dict.fromkeys(n for c in configs for n in c)
             if name not in IGNORED_SETTINGS]
    return [name for name in names if len({repr(c.get(name)) for c in configs}) > 1]


def seconds_per_epoch(phase: dict | None) -> float:
    """Wall-clock seconds per epoch trained in a phase (NaN when it was loaded, not trained)."""
    epochs = (phase or {}).get("epochs_trained_here", 0)
    return phase["seconds"] / epochs if epochs else math.nan


def trained_precisions(metrics: dict) -> list[str]:
    """The precisions the phases trained in (a phase may have been trained on another machine),
    else the run's."""
    recorded = [phase.get("precision") for phase in metrics.get("phases", {}).values()]
    return list(dict.fromkeys(p for p in recorded if p)) or [str(metrics.get("precision"))]


def compared_settings(metrics: dict) -> dict:
    """A run's settings, plus what its 'auto' settings became: data and weights (a fallback can
    change them), precision, fast ops and devices (which explain its time)."""
    settings = with_new_defaults(metrics["config"], (f.name for f in fields(Config)))
    return {**settings, "data used": metrics.get("data", {}).get("used"),
            "weights used": metrics.get("weights", {}).get("used"),
            "precision used": " + ".join(trained_precisions(metrics)),
            "fast ops used": metrics.get("fast_ops", {}).get("used"),
            "devices used": ", ".join(name.rsplit("device:", 1)[-1]  # 'GPU:0, GPU:1'
                                      for name in metrics.get("devices", {}).get("devices", []))}


def setting_text(value: object) -> str:
    """A setting as the table shows it: floats in full (1e-05 and 0.0001 must not both be 0.000)."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def comparison_rows(runs: dict[str, dict]) -> list[dict]:
    """One row per run (name -> metrics): accuracy, time, and the settings that differ."""
    settings = {name: compared_settings(metrics) for name, metrics in runs.items()}
    differing = differing_settings(list(settings.values()))
    return [{
        "run": name,
        "test accuracy": metrics["test_accuracy"],
        "best val accuracy": max(metrics["history"].get("val_accuracy") or [math.nan]),
        "epochs": len(metrics["history"].get("epoch", [])),
        "phase 1 s/epoch": seconds_per_epoch(metrics["phases"].get("head")),
        "phase 2 s/epoch": seconds_per_epoch(metrics["phases"].get("finetune")),
        "total s": metrics["total_seconds"],
        **{setting: setting_text(settings[name].get(setting)) for setting in differing},
    } for name, metrics in runs.items()]


def format_table(rows: list[dict]) -> str:
    """A plain-text table, numbers rounded for reading."""
    def cell(value) -> str:
        return f"{value:.3f}" if isinstance(value, float) and abs(value) < 10 else (
            f"{value:.0f}" if isinstance(value, float) else str(value))

    columns = list(rows[0])
    cells = [[cell(row.get(column, "")) for column in columns] for row in rows]
    widths = [max(len(column), *(len(line[i]) for line in cells))
              for i, column in enumerate(columns)]
    lines = [columns, *cells]
    return "\n".join("  ".join(text.ljust(width) for text, width in zip(line, widths)).rstrip()
                     for line in lines)


def compare_folders(folders: Sequence[str | Path]) -> str:
    """The comparison table of finished run folders, named by folder (parent/name, or the whole
    path, when names repeat)."""
    paths = list(dict.fromkeys(Path(folder).resolve() for folder in folders))  # each run once
    names = [path.name for path in paths]
    if len(set(names)) < len(names):
        names = [f"{path.parent.name}/{path.name}" for path in paths]
    if len(set(names)) < len(names):
        names = [str(path) for path in paths]
    return format_table(comparison_rows({name: load_finished_run(path)
                                         for name, path in zip(names, paths)}))
