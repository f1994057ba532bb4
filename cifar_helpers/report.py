"""The files a finished study leaves for people: figures, a Markdown report, metrics.json last."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from .files import atomic_path, write_text_atomic

if TYPE_CHECKING:
    from .evaluation import Evaluation

RESULT_MARKER = "metrics.json"  # written last: its presence means the study finished


def render_report(metrics: dict, evaluation: Evaluation) -> str:
    """A short Markdown report of one run."""
    rows = "\n".join(f"| {name} | {acc:.3f} |" for name, acc in evaluation.per_class_accuracy.items())
    pairs = "\n".join(f"- {t} → {p}: {n}" for t, p, n in evaluation.most_confused) or "- none"
    notes = "\n".join(f"> **Warning:** {w}" for w in metrics["warnings"])
    kind = ("scratch control (no transfer)" if metrics["config"].get("recipe") == "scratch"
            else "transfer-learning run")
    return (f"# CIFAR-10 {kind} ({metrics['profile']} profile)\n\n{notes}\n\n"
            f"- Settings changed from the profile: {changed_settings(metrics)}\n"
            f"- Data: {metrics['data']['used']} ({metrics['data']['train_images']} train, "
            f"{metrics['data']['val_images']} validation, {metrics['data']['test_images']} test)\n"
            f"- Weights: {metrics['weights']['used']}\n"
            f"- Test accuracy: **{metrics['test_accuracy']:.4f}**\n"
            f"- Time: {metrics['total_seconds']:.0f} s on {metrics['versions']['platform']}\n\n"
            f"## Per-class accuracy\n\n| class | accuracy |\n|---|---|\n{rows}\n\n"
            f"## Most-confused pairs (true → predicted: count)\n\n{pairs}\n\n"
            f"## Classification report\n\n```\n{evaluation.report}\n```\n\n"
            "![history](history.png)\n\n![confusion](confusion.png)\n")


def changed_settings(metrics: dict) -> str:
    """The settings that shape a run and differ from its profile's, e.g. 'image_size=64'."""
    from .config import PROFILE_ALIASES, PROFILES, fingerprint, load_config

    if metrics["profile"] not in {*PROFILES, *PROFILE_ALIASES}:  # a Config made by hand
        return f"not compared (no profile {metrics['profile']!r})"
    profile = fingerprint(load_config(metrics["profile"], environ={}))
    changed = [f"{name}={metrics['config'][name]}" for name, value in profile.items()
               if metrics["config"].get(name, value) != value]
    return ", ".join(changed) or "none"


def write_results(folder: Path, metrics: dict, evaluation: Evaluation,
                  class_names: Sequence[str]) -> None:
    """Figures, report and metrics.json (last), each written atomically into the run folder."""
    from .plots import plot_confusion, plot_history, save_figure

    for name, figure in (("history.png", plot_history(metrics["history"])),
                         ("confusion.png", plot_confusion(evaluation.confusion, class_names))):
        with atomic_path(folder / name) as temporary:
            save_figure(figure, temporary)
    write_text_atomic(folder / "report.md", render_report(metrics, evaluation))
    write_text_atomic(folder / RESULT_MARKER, json.dumps(metrics, indent=2))
