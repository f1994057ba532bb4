import dataclasses
import re
import warnings
from pathlib import Path

import pytest

from cifar_helpers.config import (
    PROFILES,
    OTHER_VARIABLES,
    ConfigWarning,
    field_types,
    fingerprint,
    load_config,
    runs_root,
    settings_varying_images,
)
from cifar_helpers.errors import ConfigError


def test_seed_profile_is_faithful_to_the_seed_study():
    config = load_config("seed", environ={})
    assert (config.epochs_head, config.epochs_finetune, config.batch_size) == (10, 10, 32)
    assert (config.lr_head, config.lr_finetune) == (1e-3, 1e-5)
    assert config.train_limit == 0 and config.data == "auto" and config.weights == "auto"


def test_quick_profile_is_small_and_offline():
    config = load_config("quick", environ={})
    assert config.total_epochs == 2 and 0 < config.train_limit <= 500
    assert (config.data, config.weights) == ("sample", "none")


def test_environment_picks_profile_and_overrides_fields():
    config = load_config(environ={"CIFAR_PROFILE": "quick", "CIFAR_EPOCHS_HEAD": "3",
                                  "CIFAR_LR_FINETUNE": "2e-5"})
    assert (config.profile, config.epochs_head, config.lr_finetune) == ("quick", 3, 2e-5)
    assert config.epochs_finetune == PROFILES["quick"]["epochs_finetune"]


def test_explicit_overrides_beat_environment():
    config = load_config("quick", environ={"CIFAR_BATCH_SIZE": "64"}, batch_size=16)
    assert config.batch_size == 16


def test_full_is_an_alias_of_seed():
    assert load_config("full", environ={}).profile == "seed"


@pytest.mark.parametrize("environ, message", [
    ({"CIFAR_EPOCHS_HEAD": "ten"}, "CIFAR_EPOCHS_HEAD"),
    ({"CIFAR_PROFILE": "huge"}, "unknown profile"),
    ({"CIFAR_BATCH_SIZE": "-1"}, "batch_size must be at least 1"),
    ({"CIFAR_BATCH_SIZE": "0"}, "batch_size must be at least 1"),
    ({"CIFAR_EPOCHS_HEAD": "-1"}, "epochs_head .*must not be negative"),
    ({"CIFAR_EPOCHS_FINETUNE": "-2"}, "epochs_finetune .*must not be negative"),
    ({"CIFAR_IMAGE_SIZE": "16"}, "image_size must be at least 32"),
    ({"CIFAR_VAL_FRACTION": "1.5"}, "val_fraction"),
    ({"CIFAR_RECIPE": "scratch", "CIFAR_WEIGHTS": "imagenet"}, "scratch trains from random"),
    ({"CIFAR_LR_FINETUNE": "nan"}, "lr_finetune must be a finite number"),
    ({"CIFAR_LR_HEAD": "inf"}, "lr_head must be a finite number"),
    ({"CIFAR_DOWNLOAD_TIMEOUT": "0"}, "download_timeout must be more than 0"),
    ({"CIFAR_SEED": str(2**32)}, "seed must be below 2\\*\\*32"),
])
def test_bad_values_raise_config_error(environ, message):
    with pytest.raises(ConfigError, match=message):
        load_config(environ=environ)


@pytest.mark.parametrize("overrides", [{"train_limit": 0.1}, {"epochs_head": 2.5},
                                       {"batch_size": True}])
def test_a_fraction_is_not_silently_cut_to_a_whole_number(overrides):
    # train_limit=0.1 (meant as val_fraction) would otherwise become 0: all the training images
    with pytest.raises(ConfigError, match="expected a whole number"):
        load_config("quick", environ={}, **overrides)
    assert load_config("quick", environ={}, epochs_head=2.0).epochs_head == 2


@pytest.mark.parametrize("change, message", [
    ({"fine_tune_at": "conv6"}, "fine_tune_at must be one of"),
    ({"lr_schedule": "cosin"}, "lr_schedule must be one of"),
    ({"epochs_head": "3"}, "epochs_head must be int"),
    ({"augment": 1}, "augment must be bool"),
    ({"lr_head": float("nan")}, "lr_head must be a finite number"),
])
def test_a_config_copied_with_replace_is_checked_before_training(change, message):
    from cifar_helpers.pipeline import Pipeline

    with pytest.raises(ConfigError, match=message):
        Pipeline(dataclasses.replace(load_config("quick", environ={}), **change))


def test_a_misspelled_variable_is_warned_about_not_ignored_in_silence():
    with pytest.warns(ConfigWarning, match="CIFAR_EPOCH_HEAD .*did you mean CIFAR_EPOCHS_HEAD"):
        config = load_config(environ={"CIFAR_EPOCH_HEAD": "3"})
    assert config.epochs_head == 10
    with pytest.warns(ConfigWarning, match="did you mean CIFAR_TEST_LIMIT"):
        load_config(environ={"CIFAR_TEST_LIMT": "100"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # settings, the two other variables, the tests' own
        load_config(environ={"CIFAR_EPOCHS_HEAD": "3", "CIFAR_RUNS_DIR": "/tmp",
                             "CIFAR_LOGICAL_CPUS": "2", "CIFAR_TEST_RUNS_BASE": "/tmp"})


def test_every_cifar_variable_the_repo_uses_is_a_setting_or_known():
    """So no real variable is ever warned about (this file, spelling names wrong on purpose, aside)."""
    root = Path(__file__).resolve().parents[1]
    texts = [path.read_text() for folder in ("cifar_helpers", "tests", "benchmarks", "notebooks")
             for path in (root / folder).rglob("*.py") if path.name != "test_config.py"]
    used = set(re.findall(r"\bCIFAR_[A-Z][A-Z_]*[A-Z]\b", "\n".join(texts)))
    settings = {f"CIFAR_{name.upper()}" for name in field_types()}
    assert used - settings - set(OTHER_VARIABLES) == set()


def test_a_setting_of_a_type_flags_cannot_parse_is_named(monkeypatch):
    """A contributor's `float | None` setting: one clear error, not a KeyError at every import."""
    from types import SimpleNamespace

    from cifar_helpers import config as config_module

    fake = [SimpleNamespace(name="epochs_head", type="int"),
            SimpleNamespace(name="weight_decay", type="float | None")]
    monkeypatch.setattr(config_module, "fields", lambda cls: fake)
    with pytest.raises(TypeError, match=r"not weight_decay: float \| None"):
        config_module.field_types()


def test_boolean_settings_from_environment():
    assert load_config(environ={"CIFAR_DETERMINISTIC": "true"}).deterministic is True
    assert load_config(environ={"CIFAR_DETERMINISTIC": "0"}).deterministic is False
    with pytest.raises(ConfigError, match="true/false"):
        load_config(environ={"CIFAR_DETERMINISTIC": "maybe"})


@pytest.mark.parametrize("setting, value", [
    ("precision", "float64"), ("precision", "bfloat16"), ("lr_schedule", "linear"),
    ("fine_tune_at", "conv6"), ("recipe", "finetune"),
])
def test_bad_choices_raise_config_error_naming_the_setting(setting, value):
    with pytest.raises(ConfigError, match=f"{setting} must be one of .*{value}"):
        load_config(environ={}, **{setting: value})
    with pytest.raises(ConfigError, match=setting):
        load_config(environ={f"CIFAR_{setting.upper()}": value})


def test_out_defaults_to_the_profile_folder_of_the_run_store():
    config = load_config("quick", environ={})
    assert Path(config.out).is_absolute()
    assert Path(config.out) == runs_root(environ={}) / "quick"


def test_relative_out_resolves_against_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config("quick", environ={}, out="results/a")
    assert config.out == str((tmp_path / "results" / "a").resolve())


def test_data_and_weights_keywords_ignore_case_and_paths_become_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    config = load_config("seed", environ={"CIFAR_DATA": "Sample"}, weights="NONE")
    assert (config.data, config.weights) == ("sample", "none")
    config = load_config("seed", environ={}, data="~/cifar-10-batches-py", weights="w/resnet.h5")
    assert config.data == str(tmp_path / "home" / "cifar-10-batches-py")
    assert config.weights == str(tmp_path / "w" / "resnet.h5")
    with pytest.raises(ConfigError, match="data must be auto, keras, sample or a path"):
        load_config("seed", environ={}, data=" ")


def test_runs_dir_environment_moves_the_default_run_store(tmp_path):
    environ = {"CIFAR_RUNS_DIR": str(tmp_path)}
    assert runs_root(environ) == tmp_path.resolve()
    assert Path(load_config("fast", environ=environ).out) == tmp_path.resolve() / "fast"
    assert load_config("full", environ=environ).out == str(tmp_path.resolve() / "seed")


def test_fingerprint_keeps_only_the_settings_a_stage_depends_on():
    config = load_config("quick", environ={})
    training, finetune = fingerprint(config, "training"), fingerprint(config, "finetune")
    for name in ("epochs_finetune", "lr_finetune", "fine_tune_at", "test_limit", "out", "profile",
                 "download_timeout"):
        assert name not in training, name
    assert {"epochs_head", "lr_head", "batch_size", "seed", "augment", "recipe"} <= set(training)
    assert {"epochs_finetune", "lr_finetune"} <= set(finetune) and "test_limit" not in finetune
    assert set(training) < set(finetune) < set(fingerprint(config))
    assert "test_limit" in fingerprint(config) and "out" not in fingerprint(config)


def test_only_augmentation_varies_the_images():
    assert settings_varying_images() == ("augment",)
