"""The whole seed study as one function: the pipeline's two phases, evaluation, results files."""

from __future__ import annotations

import dataclasses
import json
import platform
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from .config import Config, fingerprint, with_new_defaults
from .run_lock import run_lock
from .run_store import write_failures_as_output_errors

if TYPE_CHECKING:
    import keras

    from .evaluation import Evaluation
    from .pipeline import Pipeline


def library_versions() -> dict[str, str]:
    """Versions that decide what a run computes, for metrics.json."""
    import keras
    import matplotlib
    import sklearn
    import tensorflow as tf

    return {"python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "numpy": np.__version__,
            "scikit-learn": sklearn.__version__, "matplotlib": matplotlib.__version__,
            "platform": platform.platform(), "machine": platform.machine()}


def build_metrics(pipeline: Pipeline, evaluation: Evaluation, seconds: float) -> dict:
    """The content of metrics.json; the history comes from the CSV log, so it survives resumes."""
    from .training import uses_feature_cache

    config, inputs, store = pipeline.config, pipeline.inputs, pipeline.store
    history = pipeline.history()
    # the phases' own seconds (a phase loaded from an earlier run counts as it trained), plus
    # this call's time outside training: data, building, evaluation, results
    phase_seconds = sum(entry["record"]["seconds"] for entry in store.finished.values())
    phases = {name: {**entry["record"], "epochs": history["phase"].count(name),
                     "history": {k: [v for v, p in zip(history[k], history["phase"]) if p == name]
                                 for k in history if k not in ("epoch", "phase", "boundaries")}}
              for name, entry in store.finished.items()}
    return {
        "profile": config.profile,
        "test_accuracy": evaluation.accuracy,
        "per_class_accuracy": evaluation.per_class_accuracy,
        "most_confused": [list(pair) for pair in evaluation.most_confused],
        "data": {"requested": config.data, "used": inputs.source, **inputs.sizes},
        "weights": {"requested": config.weights, "used": inputs.weights_used},
        "precision": pipeline.precision,
        "fast_ops": {"requested": config.fast_ops, "used": pipeline.fast_ops},
        "feature_cache": {"requested": config.feature_cache,
                          "used": uses_feature_cache(config)},
        "devices": pipeline.devices,  # strategy, replicas, device names
        "warnings": inputs.notices,
        "resumed": pipeline.resumed,
        "phases": phases,
        "history": history,
        "total_seconds": round(phase_seconds + seconds - pipeline.training_seconds, 2),
        "config": dataclasses.asdict(config),
        "versions": library_versions(),
    }


def finished_with(metrics_file: Path, config: Config) -> bool:
    """Whether a run's results were computed with every setting of `config` that shapes them.

    Another test subset, say, keeps both (still valid) phases: the run is only evaluated again.
    """
    try:
        recorded = json.loads(metrics_file.read_text())["config"]
    except (OSError, ValueError, KeyError, TypeError):
        return False  # none, or unreadable: the phases decide what is trained
    settings = fingerprint(config)
    if not isinstance(recorded, dict):
        return False
    recorded = with_new_defaults(recorded, settings)
    return all(recorded[name] == value for name, value in settings.items())


def run_study(config: Config, log: Callable[[str], None] = print,
              verbose: int | str | None = None,
              callbacks: Sequence[keras.callbacks.Callback] = ()) -> dict:
    """Run (or resume) the two-phase study and write its results into the run folder.

    `callbacks` (Keras callbacks) join every `fit`, e.g. notebook 06's progress estimate.
    """
    from .evaluation import evaluate
    from .pipeline import Pipeline
    from .report import RESULT_MARKER, write_results

    started = time.perf_counter()
    pipeline = Pipeline(config, log, verbose, callbacks)
    folder = pipeline.store.folder
    try:
        with write_failures_as_output_errors(folder), run_lock(folder, log):
            finished = finished_with(folder / RESULT_MARKER, config)  # else resume or evaluate
            if finished:
                log(f"{folder} holds a finished run with these settings: training both phases "
                    "again, which replaces its models and results (use another --out to keep "
                    "them)")
            pipeline.run("finetune", restart_from="head" if finished else None)
            evaluation = evaluate(pipeline.model, *pipeline.inputs.test,
                                  pipeline.inputs.class_names)
            metrics = build_metrics(pipeline, evaluation, time.perf_counter() - started)
            write_results(folder, metrics, evaluation, pipeline.inputs.class_names)
    except (KeyboardInterrupt, SystemExit):
        log(f"\nInterrupted: run the same command again to resume from the last finished epoch "
            f"(state kept in {folder}).")
        raise
    log(f"\nTest accuracy: {metrics['test_accuracy']:.4f}. Results in {folder}/")
    return metrics
