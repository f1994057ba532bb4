"""Notebook plumbing shared by every lesson: environment report, showing helper code, checkpoints.

The repository URL and branch live here (and in pyproject.toml's [project.urls]); a test checks
that every Colab badge and install cell in the notebooks and README uses exactly these.
"""

from __future__ import annotations

import inspect
import json
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from .config import Config, fingerprint

REPO_URL = "https://github.com/cifar10-transfer-course/resnet50-cifar10"
BRANCH = "main"
MIN_VERSIONS = {"tensorflow": (2, 16), "keras": (3, 0)}
NOT_AFFECTING_MODEL = ("test_limit",)  # evaluation only
PHASE2_ONLY = ("epochs_finetune", "lr_finetune")


def colab_url(notebook: str) -> str:
    """The Colab address that opens `notebook` (e.g. '03_head_training.ipynb') from GitHub."""
    path = REPO_URL.removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{path}/blob/{BRANCH}/notebooks/{notebook}"


def is_colab() -> bool:
    """True inside Google Colab."""
    return "google.colab" in sys.modules


def _major_minor(version: str) -> tuple[int, int]:
    major, minor = version.split(".")[:2]
    return int(major), int("".join(ch for ch in minor if ch.isdigit()) or 0)


def environment_report() -> dict:
    """Print and check library versions and the accelerator; tell CPU users what to expect."""
    import keras
    import tensorflow as tf

    versions = {"python": sys.version.split()[0], "tensorflow": tf.__version__,
                "keras": keras.__version__}
    for name, minimum in MIN_VERSIONS.items():
        assert _major_minor(versions[name]) >= minimum, f"{name} {versions[name]} is too old"
    gpus = [gpu.name for gpu in tf.config.list_physical_devices("GPU")]
    print(", ".join(f"{k} {v}" for k, v in versions.items()), "| Colab" if is_colab() else "")
    if gpus:
        print(f"GPU: {', '.join(gpus)}")
    else:
        print("No GPU found: everything runs on the CPU. The quick profile runs each notebook in "
              "under a minute on a 2-core CPU; the full seed profile takes about an hour of "
              "training there (see the README). In Colab: Runtime > Change runtime type > GPU.")
    return {**versions, "gpus": gpus}


def show_source(obj) -> object:
    """Display the source code of a `cifar_helpers` function, so the notebook shows the real code."""
    from IPython.display import Code

    return Code(inspect.getsource(obj), language="python")


def save_checkpoint(model, path: str | Path, config: Config, history: dict | None = None) -> Path:
    """Save a model for a later notebook, with its settings and training history beside it."""
    from .model import save_for_inference

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Temporary names, then renames: a reader (another notebook) never sees half a file.
    temporary = path.with_name(f".{path.stem}.{os.getpid()}.tmp.keras")
    save_for_inference(model, temporary)
    temporary.replace(path)
    record = {"settings": fingerprint(config), "history": history or {}}
    temporary_record = path.with_name(f".{path.stem}.{os.getpid()}.tmp.json")
    temporary_record.write_text(json.dumps(record, indent=2))
    temporary_record.replace(path.with_suffix(".json"))
    return path


def same_settings(saved: dict, config: Config, phase: str = "finetune") -> bool:
    """Whether a checkpoint saved with `saved` settings is what `config` would train up to `phase`."""
    ignored = set(NOT_AFFECTING_MODEL) | (set(PHASE2_ONLY) if phase == "head" else set())
    current = fingerprint(config)
    return ({k: v for k, v in saved.items() if k not in ignored}
            == {k: v for k, v in current.items() if k not in ignored})


def load_or_recreate(path: str | Path, config: Config, recreate: Callable[[], tuple[object, dict]],
                     phase: str = "finetune") -> tuple[object, dict]:
    """(model, history) saved by an earlier notebook with these settings, else recreated and saved."""
    from .model import load_trained_model

    path, record_file = Path(path), Path(path).with_suffix(".json")
    if path.exists() and record_file.exists():
        record = json.loads(record_file.read_text())
        if same_settings(record.get("settings", {}), config, phase):
            print(f"Loaded {path} (saved by an earlier notebook with the same settings).")
            return load_trained_model(path), record["history"]
        print(f"{path} was made with other settings; recreating it now.")
    else:
        print(f"{path} not found (its notebook has not run here); recreating it now.")
    model, history = recreate()
    save_checkpoint(model, path, config, history)
    return model, history


def phase1_model(config: Config, train_ds, val_ds) -> tuple[object, dict]:
    """The model after head training (notebook 03's result): loaded if saved, else trained now."""
    from .model import build_model_for, resolve_weights
    from .training import merge_histories, train_head

    def recreate():
        model = build_model_for(config, resolve_weights(config.weights, config.download_timeout)[0])
        history = train_head(model, train_ds, val_ds, config, verbose=2)
        return model, merge_histories({"head": history})

    return load_or_recreate(Path(config.out) / "phase1.keras", config, recreate, phase="head")


def phase2_model(config: Config, train_ds, val_ds) -> tuple[object, dict]:
    """The model after fine-tuning (notebook 04's result): loaded if saved, else trained now."""
    from .training import fine_tune, merge_histories

    def recreate():
        model, head_history = phase1_model(config, train_ds, val_ds)
        history = fine_tune(model, train_ds, val_ds, config, verbose=2)
        return model, merge_histories({"head": head_history, "finetune": history})

    return load_or_recreate(Path(config.out) / "phase2.keras", config, recreate)


@contextmanager
def timed(label: str) -> Iterator[None]:
    """Print how long the block took: students see the cost of each step on their machine."""
    start = time.perf_counter()
    yield
    print(f"{label}: {time.perf_counter() - start:.1f} s")
