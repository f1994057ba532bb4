"""Helpers for the CIFAR-10 transfer-learning course (ResNet50, two-phase fine-tuning).

The core: `config`, `errors`, `network`, `data`, `model`, `training` (the two phases),
`pipeline` (the one way every caller trains) with `run_store`, `run_lock` and `resume`, `speed` and
`fast_ops`, `evaluation`, `plots`, `report`, `study`, `cli`, `files`. Helpers that exist only
for the lessons live in `cifar_helpers.lessons`: `course` (notebook plumbing), `batchnorm`,
`exploration`, `analysis`, `calibration`, `gradcam`, `predict_image`.
Common names are importable from the package itself; TensorFlow loads only when one is used.
"""

from importlib import import_module

from .config import Config, load_config
from .errors import (CifarHelpersError, ConfigError, DataError, OutputError, TrainingError,
                     WeightsError)

__version__ = "0.1.0"

_LAZY = {
    "data": ("CLASS_NAMES", "CifarData", "load_cifar10", "load_sample", "load_batches_dir",
             "read_batch", "stratified_subset", "train_val_split", "make_dataset", "prepare_data",
             "training_datasets"),
    "model": ("build_model", "freeze_base", "unfreeze_base", "base_layers", "head_layers",
              "trainable_count", "resolve_weights", "load_trained_model", "save_for_inference",
              "ResNet50Preprocess"),
    "training": ("train_head", "fine_tune", "compile_model", "standard_callbacks"),
    "evaluation": ("evaluate", "Evaluation", "most_confused_pairs", "predict_proba"),
    "plots": ("plot_history", "plot_confusion", "plot_image_grid", "save_figure"),
    "study": ("run_study",),
    "pipeline": ("Pipeline",),
    "run_store": ("RunStore",),
    "fast_ops": ("MatmulConv2D", "FusedBatchNormalization", "FusedAdam"),
    "lessons.course": ("environment_report", "show_source", "timed"),
    "lessons.calibration": ("fit_temperature", "apply_temperature", "expected_calibration_error",
                    "plot_reliability_diagram"),
    "lessons.gradcam": ("gradcam", "gradcam_layer", "plot_gradcam"),
    "lessons.predict_image": ("classify_image", "plot_image_prediction"),
}
_WHERE = {name: module for module, names in _LAZY.items() for name in names}

__all__ = ["Config", "load_config", "CifarHelpersError", "ConfigError", "DataError",
           "OutputError", "TrainingError", "WeightsError", *_WHERE]


def __getattr__(name: str):
    """Import the submodule that defines `name` on first use (keeps `--help` and config fast)."""
    if name in _WHERE:
        return getattr(import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
