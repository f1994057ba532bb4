import pytest

from cifar_helpers.config import PROFILES, load_config
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
    ({"CIFAR_BATCH_SIZE": "-1"}, "negative"),
    ({"CIFAR_VAL_FRACTION": "1.5"}, "val_fraction"),
])
def test_bad_values_raise_config_error(environ, message):
    with pytest.raises(ConfigError, match=message):
        load_config(environ=environ)


def test_boolean_settings_from_environment():
    assert load_config(environ={"CIFAR_DETERMINISTIC": "true"}).deterministic is True
    assert load_config(environ={"CIFAR_DETERMINISTIC": "0"}).deterministic is False
    with pytest.raises(ConfigError, match="true/false"):
        load_config(environ={"CIFAR_DETERMINISTIC": "maybe"})
