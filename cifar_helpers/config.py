"""One configuration object for notebooks, CLI and tests: named profiles plus overrides.

Every setting is declared once, as a field of `Config` with its metadata: the help text and
allowed values the CLI shows, which part of a run it shapes (`scope`), and whether it changes
the images reaching ResNet50 from one epoch to the next (then cached features cannot stand in
for them). The CLI's flags and all validation are derived from these declarations.
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Iterable, Mapping

from .errors import ConfigError
from .versions import hosted_runtime

ENV_PREFIX = "CIFAR_"
RUNS_DIR_ENV = "CIFAR_RUNS_DIR"
LOGICAL_CPUS_ENV = "CIFAR_LOGICAL_CPUS"  # read by devices.split_cpu
# CIFAR_* variables that are not settings: the run store's root, the CPU split, and the test
# suite's own. Any other CIFAR_* name is a typo, and is warned about.
OTHER_VARIABLES = (RUNS_DIR_ENV, LOGICAL_CPUS_ENV, "CIFAR_TEST_RUNS_BASE", "CIFAR_TEST_KILL_AFTER",
                   "CIFAR_TEST_FUZZ_EXAMPLES")
# What a setting shapes: both phases (and so every later state), phase 2 only, the test-set
# evaluation only, or nothing a run folder records as a setting ("place": where and how results
# are shown, and where data and weights are found, which the run store records by content).
SCOPES = ("training", "finetune", "evaluation", "place")


def setting(default: Any, help: str, *, choices: tuple = (), scope: str = "training",
            varies_images: bool = False, minimum: float | None = 0) -> Any:
    """A Config field with its declaration: CLI help, allowed values, scope, effect on images."""
    return dataclasses.field(default=default, metadata={
        "help": help, "choices": choices, "scope": scope, "varies_images": varies_images,
        "minimum": minimum})


@dataclass(frozen=True)
class Config:
    """Every setting of a study run; build one with `load_config`."""

    profile: str = setting("seed", "settings preset", scope="place")
    data: str = setting("auto", "auto | keras | sample | DIR in the cifar-10-batches-py layout",
                        scope="place")
    weights: str = setting("auto", "auto | imagenet | none | PATH to a ResNet50 notop .h5",
                           scope="place")
    epochs_head: int = setting(10, "phase-1 epochs")
    epochs_finetune: int = setting(10, "phase-2 epochs", scope="finetune")
    batch_size: int = setting(32, "batch size (Keras' default, as in the seed)", minimum=1)
    lr_head: float = setting(1e-3, "phase-1 learning rate (Adam's default)")
    lr_finetune: float = setting(1e-5, "phase-2 learning rate", scope="finetune")
    fine_tune_at: str = setting("all", "first ResNet50 stage that trains in phase 2 "
                                "(all: every stage, as the seed; conv5: the last stage only)",
                                choices=("all", "conv2", "conv3", "conv4", "conv5"),
                                scope="finetune")
    recipe: str = setting("transfer", "transfer: the two-phase recipe; scratch: the control, "
                          "random weights and every layer trained from epoch 1 at lr_head",
                          choices=("transfer", "scratch"))
    train_limit: int = setting(0, "keep this many training images, stratified (0: all)")
    test_limit: int = setting(0, "keep this many test images, stratified (0: all)",
                              scope="evaluation")
    val_fraction: float = setting(0.1, "share of the training images kept for validation")
    seed: int = setting(42, "random seed")
    early_stopping_patience: int = setting(0, "epochs without val_loss improvement (0: off)")
    deterministic: bool = setting(False, "TensorFlow op determinism (slower)")
    precision: str = setting("float32", "compute precision; auto picks by hardware",
                             choices=("auto", "float32", "mixed_bfloat16", "mixed_float16"))
    feature_cache: bool = setting(False, "phase 1 on cached base features (same result, faster)")
    fast_ops: str = setting("off", "matmul convolutions, fused frozen BatchNorm, fused Adam "
                            "(same result); auto: on CPUs, off on GPUs (not measured there yet)",
                            choices=("auto", "on", "off"))
    augment: bool = setting(False, "random flip and shift by up to 4 whole pixels while training",
                            varies_images=True)
    image_size: int = setting(32, "ResNet50 input size: upsample each batch inside the model",
                              minimum=32)
    lr_schedule: str = setting("constant", "learning-rate rule in both phases",
                               choices=("constant", "cosine", "plateau"))
    label_smoothing: float = setting(0.0, "label smoothing of the loss, e.g. 0.1")
    distribute: str = setting("auto", "devices: auto mirrors over all GPUs when there are 2 or "
                              "more; off: one device; mirrored: always (GPUs, else the "
                              "CIFAR_LOGICAL_CPUS devices)", choices=("auto", "off", "mirrored"),
                              scope="place")
    download_timeout: float = setting(15.0, "seconds before a dead network counts as offline",
                                      scope="place")
    out: str = setting("", "run folder: models, log, metrics, figures "
                           "(default: runs/PROFILE, see the README's run folder)", scope="place")

    @property
    def total_epochs(self) -> int:
        """Epochs of both phases together; phase 2 numbers its epochs after phase 1."""
        return self.epochs_head + self.epochs_finetune


PROFILES: dict[str, dict[str, Any]] = {
    # Faithful to the seed study: 10 + 10 epochs, all data, float32, batch size 32.
    "seed": {},
    # The seed recipe made fast: phase 1 on cached features, mixed precision where the hardware
    # has it, matmul convolutions and fused Adam where they were measured to help (CPUs), larger
    # batches (measurements: README, Speed).
    "fast": {"precision": "auto", "feature_cache": True, "fast_ops": "auto", "batch_size": 128},
    # CI and smoke tests: a few hundred images of the shipped sample, 1 + 1 epochs, offline.
    "quick": {
        "data": "sample",
        "weights": "none",
        "epochs_head": 1,
        "epochs_finetune": 1,
        "train_limit": 300,
        "test_limit": 100,
    },
}
PROFILE_ALIASES = {"full": "seed"}


def field_types() -> dict[str, type]:
    """Each setting's Python type (int, float, str or bool)."""
    hints = {"int": int, "float": float, "str": str, "bool": bool}
    unparsed = [f"{f.name}: {f.type}" for f in fields(Config) if str(f.type) not in hints]
    if unparsed:  # a contributor's new setting: flags and CIFAR_* variables parse only these
        raise TypeError(f"settings must be int, float, str or bool, not {', '.join(unparsed)} "
                        "(use a str with choices, e.g. 'none', for an optional value)")
    return {f.name: hints[str(f.type)] for f in fields(Config)}


def settings_varying_images() -> tuple[str, ...]:
    """Settings that change the images reaching the base from epoch to epoch (augmentation)."""
    return tuple(f.name for f in fields(Config) if f.metadata["varies_images"])


class ConfigWarning(UserWarning):
    """A CIFAR_* variable that is no setting (a typo): it changes nothing."""


def _convert(name: str, raw: Any, kind: type) -> Any:
    """Convert a raw override (often a string from the environment) to the field's type."""
    if kind is bool and isinstance(raw, str):
        if raw.strip().lower() not in ("1", "0", "true", "false", "yes", "no"):
            raise ConfigError(f"{name}: expected true/false or 1/0, got {raw!r}")
        return raw.strip().lower() in ("1", "true", "yes")
    if kind is int and (isinstance(raw, bool) or isinstance(raw, float) and not raw.is_integer()):
        raise ConfigError(f"{name}: expected a whole number, got {raw!r}")
    try:
        return kind(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: expected {kind.__name__}, got {raw!r}") from None


def env_overrides(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Read `CIFAR_<FIELD>` variables (e.g. CIFAR_EPOCHS_HEAD=2) into typed overrides."""
    environ = os.environ if environ is None else environ
    found = {}
    for name, kind in field_types().items():
        key = ENV_PREFIX + name.upper()
        if environ.get(key, "") != "":
            found[name] = _convert(key, environ[key], kind)
    _warn_unknown_variables(environ)
    return found


def _warn_unknown_variables(environ: Mapping[str, str]) -> None:
    """Warn about a misspelled setting variable, which would otherwise be ignored in silence."""
    import difflib

    known = [ENV_PREFIX + name.upper() for name in field_types()] + list(OTHER_VARIABLES)
    for key in sorted(environ):
        if key.startswith(ENV_PREFIX) and key not in known:
            close = difflib.get_close_matches(key.removeprefix(ENV_PREFIX),
                                              [name.removeprefix(ENV_PREFIX) for name in known], 1)
            hint = f"did you mean {ENV_PREFIX}{close[0]}? " if close else ""
            warnings.warn(f"{key} is not a setting and is ignored ({hint}the settings: "
                          "README, The study as one command)", ConfigWarning, stacklevel=4)


def _check_type(name: str, value: Any, kind: type) -> None:
    """A value of the field's type (an int where a float is expected is fine), and finite."""
    accepted = (int, float) if kind is float else kind
    if isinstance(value, bool) is not (kind is bool) or not isinstance(value, accepted):
        raise ConfigError(f"{name} must be {kind.__name__}, got {value!r}")
    if kind is float and not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")


def validate(config: Config) -> None:
    """The one place where settings are checked against their declarations and each other."""
    types = field_types()
    for item in fields(Config):
        value, rules = getattr(config, item.name), item.metadata
        _check_type(item.name, value, types[item.name])
        if rules["choices"] and value not in rules["choices"]:
            raise ConfigError(f"{item.name} must be one of {', '.join(rules['choices'])}, "
                              f"got {value!r}")
        if isinstance(value, (int, float)) and not isinstance(value, bool) \
                and rules["minimum"] is not None and value < rules["minimum"]:
            raise ConfigError(f"{item.name} must be at least {rules['minimum']}, got {value!r}"
                              + (" (must not be negative)" if rules["minimum"] == 0 else ""))
    if config.download_timeout <= 0:
        raise ConfigError(f"download_timeout must be more than 0 seconds, got "
                          f"{config.download_timeout}")
    if config.seed >= 2**32:
        raise ConfigError(f"seed must be below 2**32 (4294967296), got {config.seed}")
    if not 0.0 < config.val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be between 0 and 1, got {config.val_fraction}")
    if config.recipe == "scratch" and config.weights.lower() not in ("auto", "none"):
        raise ConfigError("recipe scratch trains from random weights; weights must be none or "
                          f"auto, got {config.weights!r}")
    if not 0.0 <= config.label_smoothing < 1.0:
        raise ConfigError(f"label_smoothing must be in [0, 1), got {config.label_smoothing}")


def runs_root(environ: Mapping[str, str] | None = None) -> Path:
    """Where runs live unless `out` says otherwise: one place for the CLI and every notebook.

    $CIFAR_RUNS_DIR if set; else `runs/` of the source checkout this package was imported from
    (the README's editable install); else `/content/runs` in Colab, `/kaggle/working/runs` in
    Kaggle (the only folder Kaggle keeps, as the notebook's output) and `~/cifar10-course/runs`.
    """
    environ = os.environ if environ is None else environ
    if environ.get(RUNS_DIR_ENV):
        return Path(environ[RUNS_DIR_ENV]).expanduser().resolve()
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "pyproject.toml").exists() and (checkout / "notebooks").is_dir():
        return checkout / "runs"
    hosted = {"kaggle": Path("/kaggle/working/runs"), "colab": Path("/content/runs")}
    return hosted.get(hosted_runtime(environ), Path.home() / "cifar10-course" / "runs")


PLACE_KEYWORDS = {"data": ("auto", "keras", "sample"), "weights": ("auto", "imagenet", "none")}


def _keyword_or_path(name: str, value: str, keywords: tuple[str, ...]) -> str:
    """A keyword in lower case, or a path made absolute (`~` expanded) so any folder finds it."""
    if value.strip().lower() in keywords:
        return value.strip().lower()
    if not value.strip():
        raise ConfigError(f"{name} must be {', '.join(keywords)} or a path, got an empty string")
    return str(Path(value).expanduser().resolve())


def load_config(profile: str | None = None, environ: Mapping[str, str] | None = None,
                **overrides: Any) -> Config:
    """Build the run configuration: profile defaults < CIFAR_* environment < explicit overrides.

    `out` is resolved once here to an absolute folder (default: runs_root()/PROFILE), so the CLI
    and the notebooks find the same run store whatever their working directory; so are `data`
    and `weights` when they name a path (keywords are matched in any case).
    """
    from_env = env_overrides(environ)
    name = profile or from_env.pop("profile", None) or "seed"
    from_env.pop("profile", None)
    name = PROFILE_ALIASES.get(name, name)
    if name not in PROFILES:
        raise ConfigError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    types = field_types()
    explicit = {}
    for key, value in overrides.items():
        if key not in types:
            raise ConfigError(f"unknown setting {key!r}")
        if value is not None:
            explicit[key] = _convert(key, value, types[key])
    settings = {**PROFILES[name], **from_env, **explicit, "profile": name}
    out = settings.get("out") or runs_root(environ) / name
    settings["out"] = str(Path(out).expanduser().resolve())
    for key, keywords in PLACE_KEYWORDS.items():
        settings[key] = _keyword_or_path(key, settings.get(key, getattr(Config, key)), keywords)
    config = Config(**settings)
    validate(config)
    return config


def fingerprint(config: Config, upto: str = "evaluation") -> dict:
    """The settings that decide what a run computes up to `upto` (a scope): phase 1 is decided by
    the 'training' settings, the final model adds 'finetune', the test results add 'evaluation'."""
    kept = SCOPES[:SCOPES.index(upto) + 1]
    return {f.name: getattr(config, f.name) for f in fields(Config)
            if f.metadata["scope"] in kept and f.metadata["scope"] != "place"}


def with_new_defaults(recorded: Mapping[str, Any], names: Iterable[str]) -> dict:
    """Settings a run recorded, plus each of `names` added to Config since, at its default (a new
    setting's default keeps what runs computed before: CONTRIBUTING), so old runs stay valid."""
    defaults = {f.name: f.default for f in fields(Config)}
    return {**{name: defaults[name] for name in names if name not in recorded}, **recorded}


def describe(config: Config, names: tuple[str, ...] | None = None) -> str:
    """One line per setting (or per named setting), for the top of a notebook or the CLI's log."""
    settings = dataclasses.asdict(config)
    return "\n".join(f"{k:>24}: {v}" for k, v in settings.items() if names is None or k in names)
