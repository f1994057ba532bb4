"""One configuration object for notebooks, CLI and tests: named profiles plus overrides."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, fields
from typing import Any, Mapping

from .errors import ConfigError

ENV_PREFIX = "CIFAR_"


@dataclass(frozen=True)
class Config:
    """Every setting of a study run; build one with `load_config`."""

    profile: str = "seed"
    data: str = "auto"  # auto | keras | sample | path to a cifar-10-batches-py folder
    weights: str = "auto"  # auto | imagenet | none | path to a notop weights file
    epochs_head: int = 10
    epochs_finetune: int = 10
    batch_size: int = 32  # Keras' default, as in the seed
    lr_head: float = 1e-3  # Adam's default
    lr_finetune: float = 1e-5
    train_limit: int = 0  # images kept from the training set (stratified); 0 keeps all
    test_limit: int = 0  # images kept from the test set (stratified); 0 keeps all
    val_fraction: float = 0.1
    seed: int = 42
    early_stopping_patience: int = 0  # 0 disables early stopping
    deterministic: bool = False  # TensorFlow op determinism (slower; CPU runs repeat exactly anyway)
    precision: str = "float32"  # float32 | mixed_bfloat16 | mixed_float16 | auto (by hardware)
    feature_cache: bool = False  # phase 1 on cached base features (same result, much faster)
    fast_ops: bool = False  # 1x1 convolutions as matmuls, fused Adam (same result, faster)
    augment: bool = False  # random flip, translation (padding + crop) and small rotation
    image_size: int = 32  # ResNet50 input size; larger values upsample each batch inside the model
    lr_schedule: str = "constant"  # constant | cosine (with warm-up) | plateau (ReduceLROnPlateau)
    label_smoothing: float = 0.0
    download_timeout: float = 15.0  # seconds before a dead network counts as offline
    out: str = "runs/latest"

    @property
    def total_epochs(self) -> int:
        """Epochs of both phases together; phase 2 numbers its epochs after phase 1."""
        return self.epochs_head + self.epochs_finetune


PROFILES: dict[str, dict[str, Any]] = {
    # Faithful to the seed study: 10 + 10 epochs, all data, float32, batch size 32.
    "seed": {},
    # The seed recipe made fast: phase 1 on cached features, mixed precision where the hardware
    # has it, matmul convolutions and fused Adam, larger batches (measurements: README, Speed).
    "fast": {"precision": "auto", "feature_cache": True, "fast_ops": True, "batch_size": 128},
    # CI and smoke tests: a few hundred images of the shipped sample, 1 + 1 epochs, offline.
    "quick": {
        "data": "sample",
        "weights": "none",
        "epochs_head": 1,
        "epochs_finetune": 1,
        "train_limit": 300,
        "test_limit": 100,
        "out": "runs/quick",
    },
}
PROFILE_ALIASES = {"full": "seed"}
LR_SCHEDULES = ("constant", "cosine", "plateau")


def _convert(name: str, raw: Any, kind: type) -> Any:
    """Convert a raw override (often a string from the environment) to the field's type."""
    if kind is bool and isinstance(raw, str):
        if raw.strip().lower() not in ("1", "0", "true", "false", "yes", "no"):
            raise ConfigError(f"{name}: expected true/false or 1/0, got {raw!r}")
        return raw.strip().lower() in ("1", "true", "yes")
    try:
        value = kind(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: expected {kind.__name__}, got {raw!r}") from None
    if kind in (int, float) and value < 0:
        raise ConfigError(f"{name}: must not be negative, got {raw!r}")
    return value


def _field_types() -> dict[str, type]:
    hints = {"int": int, "float": float, "str": str, "bool": bool}
    return {f.name: hints[str(f.type)] for f in fields(Config)}


def env_overrides(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Read `CIFAR_<FIELD>` variables (e.g. CIFAR_EPOCHS_HEAD=2) into typed overrides."""
    environ = os.environ if environ is None else environ
    found = {}
    for name, kind in _field_types().items():
        key = ENV_PREFIX + name.upper()
        if environ.get(key, "") != "":
            found[name] = _convert(key, environ[key], kind)
    return found


def load_config(profile: str | None = None, environ: Mapping[str, str] | None = None,
                **overrides: Any) -> Config:
    """Build the run configuration: profile defaults < CIFAR_* environment < explicit overrides."""
    from_env = env_overrides(environ)
    name = profile or from_env.pop("profile", None) or "seed"
    from_env.pop("profile", None)
    name = PROFILE_ALIASES.get(name, name)
    if name not in PROFILES:
        raise ConfigError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    types = _field_types()
    explicit = {}
    for key, value in overrides.items():
        if key not in types:
            raise ConfigError(f"unknown setting {key!r}")
        if value is not None:
            explicit[key] = _convert(key, value, types[key])
    settings = {**PROFILES[name], **from_env, **explicit, "profile": name}
    config = Config(**settings)
    if not 0.0 < config.val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be between 0 and 1, got {config.val_fraction}")
    if config.batch_size < 1:
        raise ConfigError("batch_size must be at least 1")
    if config.lr_schedule not in LR_SCHEDULES:
        raise ConfigError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}")
    if config.image_size < 32 or not 0.0 <= config.label_smoothing < 1.0:
        raise ConfigError("image_size must be at least 32 and label_smoothing in [0, 1)")
    return config


def fingerprint(config: Config) -> dict:
    """The settings that decide what a run computes (everything but where and how it is shown)."""
    settings = dataclasses.asdict(config)
    for volatile in ("out", "download_timeout", "profile"):
        settings.pop(volatile)
    return settings


def describe(config: Config) -> str:
    """One line per setting, for the top of a notebook or the CLI's log."""
    return "\n".join(f"{k:>24}: {v}" for k, v in dataclasses.asdict(config).items())
