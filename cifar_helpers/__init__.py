"""Helpers for the CIFAR-10 transfer-learning course (ResNet50, two-phase fine-tuning).

Submodules: `config`, `data`, `model`, `training`, `evaluation`, `plots`, `study`, `cli`,
`resume`, `speed`, `fast_ops`, and for the notebooks `course`, `batchnorm`, `exploration`,
`analysis`, `calibration`, `gradcam`, `predict_image`.
Common names are importable from the package itself; TensorFlow loads only when one is used.
"""

from importlib import import_module

from .config import Config, load_config
from .errors import (CifarHelpersError, ConfigError, DataError, OutputError, TrainingError,
                     WeightsError)

__version__ = "0.1.0"

_LAZY = {
    "data": ("CLASS_NAMES", "CifarData", "load_cifar10", "load_sample", "load_batches_dir",
             "read_batch", "stratified_subset", "train_val_split", "make_dataset"),
    "model": ("build_model", "freeze_base", "unfreeze_base", "base_layers", "head_layers",
              "trainable_count", "resolve_weights", "load_trained_model", "save_for_inference",
              "ResNet50Preprocess"),
    "training": ("train_head", "fine_tune", "compile_model", "standard_callbacks",
                 "merge_histories"),
    "evaluation": ("evaluate", "Evaluation", "most_confused_pairs", "predict_proba"),
    "plots": ("plot_history", "plot_confusion", "plot_image_grid", "save_figure"),
    "study": ("run_study", "prepare_data"),
    "fast_ops": ("MatmulConv2D", "FusedAdam"),
    "course": ("environment_report", "show_source", "save_checkpoint", "phase1_model",
               "phase2_model", "timed"),
    "calibration": ("fit_temperature", "apply_temperature", "expected_calibration_error",
                    "plot_reliability_diagram"),
    "gradcam": ("gradcam", "gradcam_layer", "plot_gradcam"),
    "predict_image": ("classify_image", "plot_image_prediction"),
}
_WHERE = {name: module for module, names in _LAZY.items() for name in names}

__all__ = ["Config", "load_config", "CifarHelpersError", "ConfigError", "DataError",
           "OutputError", "TrainingError", "WeightsError", *_WHERE]


def __getattr__(name: str):
    """Import the submodule that defines `name` on first use (keeps `--help` and config fast)."""
    if name in _WHERE:
        return getattr(import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
