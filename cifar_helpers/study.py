"""The whole seed study as one function: data, model, two phases, evaluation, files in `out`."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import platform
import shutil
import sys
import time
import warnings
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from .config import Config
from .errors import OutputError

ARTIFACTS = ("model.keras", "best.weights.h5", "training_log.csv", "history.png", "confusion.png",
             "report.md")
RESULT_MARKER = "metrics.json"  # written last: its presence means the run finished


def prepare_output(out: str | Path) -> Path:
    """Create `out` and its staging folder, failing early if either is not writable."""
    out = Path(out)
    staging = out / ".partial"
    try:
        staging.mkdir(parents=True, exist_ok=True)
        probe = staging / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise OutputError(f"cannot write to output folder {out}: {exc.strerror or exc}") from None
    return staging


def publish(staging: Path, out: Path) -> None:
    """Move finished files from staging into `out`, the result marker last, each by atomic rename."""
    (out / RESULT_MARKER).unlink(missing_ok=True)
    for name in ARTIFACTS + (RESULT_MARKER,):
        if (staging / name).exists():
            (staging / name).replace(out / name)
    shutil.rmtree(staging, ignore_errors=True)


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


def prepare_data(config: Config):
    """Load, subset and split the data as the configuration says."""
    from .data import load_cifar10, stratified_subset, train_val_split

    data = load_cifar10(config.data, timeout=config.download_timeout)
    x, y = stratified_subset(data.x_train, data.y_train, config.train_limit, config.seed)
    x_test, y_test = stratified_subset(data.x_test, data.y_test, config.test_limit, config.seed)
    train, val = train_val_split(x, y, config.val_fraction, config.seed)
    return data, train, val, (x_test, y_test)


def training_datasets(config: Config, train, val):
    """The tf.data pipelines both phases train on: shuffled (seeded) training, ordered validation."""
    from .data import make_dataset

    return (make_dataset(*train, config.batch_size, shuffle=True, seed=config.seed),
            make_dataset(*val, config.batch_size))


def _recorded_warnings(caught: list) -> list[str]:
    """Print captured warnings loudly on stderr and return their texts for metrics.json."""
    texts = [str(w.message) for w in caught]
    for text in texts:
        print(f"\nWARNING: {text}\n", file=sys.stderr, flush=True)
    return texts


def _phase_record(history, seconds: float, train_images: int, trainable: int) -> dict:
    """Timing of the epochs this process trained in one phase (after a resume: only those)."""
    epochs = len(history.epoch)
    return {"epochs_trained_here": epochs, "seconds": round(seconds, 2),
            "images_per_second": round(train_images * epochs / seconds, 1) if epochs else None,
            "trainable_params": trainable}


def _load_inputs(config: Config):
    """Data and weights, with fallback warnings shown loudly and kept for metrics.json."""
    from .data import FallbackWarning
    from .model import WeightsFallbackWarning, resolve_weights

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FallbackWarning)
        warnings.simplefilter("always", WeightsFallbackWarning)
        data, train, val, test = prepare_data(config)
        weights_arg, weights_used = resolve_weights(config.weights, config.download_timeout)
    ours = [w for w in caught if issubclass(w.category, (FallbackWarning, WeightsFallbackWarning))]
    for other in caught:
        if other not in ours:
            warnings.showwarning(other.message, other.category, other.filename, other.lineno)
    return data, train, val, test, weights_arg, weights_used, _recorded_warnings(ours)


PHASES = (("head", "training the head on the frozen base"),
          ("finetune", "fine-tuning everything but BatchNorm at a low learning rate"))


def _train_both_phases(model, train, val, config: Config, state, log, verbose) -> None:
    """Phase 1 then phase 2, skipping finished phases and resuming an interrupted one."""
    from .model import trainable_count
    from .resume import LOG_FILE, backup_callback, best_logged, kill_switch
    from .training import (fine_tune, standard_callbacks, train_head,
                           train_head_on_cached_features, uses_feature_cache)

    train_ds, val_ds = training_datasets(config, train, val)
    callbacks = standard_callbacks(state.staging, config.early_stopping_patience,
                                   best_logged(state.staging / LOG_FILE))
    runners = {"head": (train_head, 0), "finetune": (fine_tune, config.epochs_head)}
    for number, (name, what) in enumerate(PHASES, start=1):
        if name in state.phases:
            log(f"\n== Phase {number}: {what}: finished before the interruption ==")
            continue
        log(f"\n== Phase {number}: {what} ==")
        runner, first_epoch = runners[name]
        extra = [backup_callback(state.staging, name), *kill_switch(name, first_epoch)]
        start = time.perf_counter()
        if name == "head" and uses_feature_cache(config):
            history = train_head_on_cached_features(model, train, val, config, callbacks, verbose,
                                                    cache_dir=state.staging / "features")
        else:
            history = runner(model, train_ds, val_ds, config, [*callbacks, *extra], verbose=verbose)
        record = _phase_record(history, time.perf_counter() - start, len(train[1]),
                               trainable_count(model))
        state.finish_phase(name, model, record)


def build_metrics(config: Config, data, sizes: dict, weights_used: str, notices: list[str],
                  state, evaluation, seconds: float, precision: str) -> dict:
    """The content of metrics.json; the history comes from the CSV log, so it survives resumes."""
    from .resume import LOG_FILE, history_from_log

    history = history_from_log(state.staging / LOG_FILE, config.epochs_head)
    phases = {name: {**record, "epochs": history["phase"].count(name),
                     "history": {k: [v for v, p in zip(history[k], history["phase"]) if p == name]
                                 for k in history if k not in ("epoch", "phase", "boundaries")}}
              for name, record in state.phases.items()}
    return {
        "profile": config.profile,
        "test_accuracy": evaluation.accuracy,
        "per_class_accuracy": evaluation.per_class_accuracy,
        "most_confused": [list(pair) for pair in evaluation.most_confused],
        "data": {"requested": config.data, "used": data.source, **sizes},
        "weights": {"requested": config.weights, "used": weights_used},
        "precision": precision,
        "warnings": notices,
        "resumed": state.resumed,
        "phases": phases,
        "history": history,
        "total_seconds": round(seconds, 2),
        "config": dataclasses.asdict(config),
        "versions": library_versions(),
    }


def render_report(metrics: dict, evaluation) -> str:
    """A short Markdown report of one run."""
    rows = "\n".join(f"| {name} | {acc:.3f} |" for name, acc in evaluation.per_class_accuracy.items())
    pairs = "\n".join(f"- {t} → {p}: {n}" for t, p, n in evaluation.most_confused) or "- none"
    notes = "\n".join(f"> **Warning:** {w}" for w in metrics["warnings"])
    return (f"# CIFAR-10 transfer-learning run ({metrics['profile']} profile)\n\n{notes}\n\n"
            f"- Data: {metrics['data']['used']} ({metrics['data']['train_images']} train, "
            f"{metrics['data']['val_images']} validation, {metrics['data']['test_images']} test)\n"
            f"- Weights: {metrics['weights']['used']}\n"
            f"- Test accuracy: **{metrics['test_accuracy']:.4f}**\n"
            f"- Time: {metrics['total_seconds']:.0f} s on {metrics['versions']['platform']}\n\n"
            f"## Per-class accuracy\n\n| class | accuracy |\n|---|---|\n{rows}\n\n"
            f"## Most-confused pairs (true → predicted: count)\n\n{pairs}\n\n"
            f"## Classification report\n\n```\n{evaluation.report}\n```\n\n"
            "![history](history.png)\n\n![confusion](confusion.png)\n")


def write_artifacts(staging: Path, model, metrics: dict, evaluation, class_names) -> None:
    """Save model, figures, report and metrics.json (last) into the staging folder."""
    from .model import save_for_inference
    from .plots import plot_confusion, plot_history, save_figure

    save_for_inference(model, staging / "model.keras")
    save_figure(plot_history(metrics["history"]), staging / "history.png")
    save_figure(plot_confusion(evaluation.confusion, class_names), staging / "confusion.png")
    (staging / "report.md").write_text(render_report(metrics, evaluation), encoding="utf-8")
    (staging / RESULT_MARKER).write_text(json.dumps(metrics, indent=2), encoding="utf-8")


def _train_and_evaluate(config: Config, staging: Path, log, verbose) -> tuple[dict, object]:
    """Everything between an empty (or interrupted) staging folder and the files to publish."""
    import keras

    from .evaluation import evaluate
    from .model import build_model_for
    from .resume import RunState
    from .speed import dtype_policy, resolve_precision

    started = time.perf_counter()
    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        import tensorflow as tf
        tf.config.experimental.enable_op_determinism()
    data, train, val, test, weights_arg, weights_used, notices = _load_inputs(config)
    sizes = {"train_images": len(train[1]), "val_images": len(val[1]), "test_images": len(test[1])}
    log(f"Data: {data.source} {sizes}; weights: {weights_used}")
    state = RunState.open(staging, config)
    precision = resolve_precision(config.precision)
    with dtype_policy(precision):
        model = build_model_for(config, weights_arg if not state.phases else None)
    if state.resumed:
        log(f"Resuming the interrupted run in {staging} "
            f"(finished phases: {', '.join(state.phases) or 'none'}).")
        state.restore_finished(model)
    _train_both_phases(model, train, val, config, state, log, verbose)
    evaluation = evaluate(model, *test, data.class_names)
    metrics = build_metrics(config, data, sizes, weights_used, notices, state, evaluation,
                            time.perf_counter() - started, precision)
    write_artifacts(staging, model, metrics, evaluation, data.class_names)
    return metrics, evaluation


@contextlib.contextmanager
def _write_failures_as_output_errors(staging: Path) -> Iterator[None]:
    """A failed write while training or saving (a full disk, say) becomes one clear OutputError.

    Data and model files are read earlier and raise their own errors, so an OSError here is about
    writing checkpoints or results; the training state in `staging` is kept for a resume.
    """
    try:
        yield
    except OSError as exc:
        raise OutputError(f"could not write to {staging.parent}: {exc.strerror or exc}; the "
                          f"training state is kept in {staging}: free some space and run the "
                          "same command again") from None


def run_study(config: Config, log: Callable[[str], None] = print, verbose="auto") -> dict:
    """Run (or resume) the two-phase study and write its results to `config.out`."""
    from .errors import CifarHelpersError

    out = Path(config.out)
    staging = prepare_output(out)
    try:
        with _write_failures_as_output_errors(staging):
            metrics, _ = _train_and_evaluate(config, staging, log, verbose)
    except CifarHelpersError as error:
        if not isinstance(error, OutputError):  # bad data or settings: a rerun fails the same way
            shutil.rmtree(staging, ignore_errors=True)
        raise
    except BaseException:
        log(f"\nInterrupted: run the same command again to resume from the last finished epoch "
            f"(state kept in {staging}).")
        raise
    publish(staging, out)
    log(f"\nTest accuracy: {metrics['test_accuracy']:.4f}. Results in {out}/")
    return metrics
