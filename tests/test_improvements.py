"""Options beyond the seed: augmentation, input upsampling, learning-rate rules, label smoothing."""

import keras
import numpy as np
import pytest

from cifar_helpers.config import load_config
from cifar_helpers.data import make_dataset
from cifar_helpers.errors import ConfigError
from cifar_helpers.model import base_layers, build_model, build_model_for
from cifar_helpers.training import learning_rate_for, train_head, uses_feature_cache


@pytest.fixture(scope="module")
def upsampled_augmented():
    config = load_config("quick", environ={}, image_size=64, augment=True)
    return build_model_for(config, None)


def test_upsampling_and_augmentation_live_inside_the_model(upsampled_augmented):
    model = upsampled_augmented
    assert model.count_params() == 23_858_890  # no weights added
    assert model.input.shape[1:] == (32, 32, 3)  # the dataset stays 32x32 in memory
    assert model.get_layer("upsample").output.shape[1:] == (64, 64, 3)
    assert model.get_layer("conv5_block3_out").output.shape[1:3] == (2, 2)  # 1x1 at 32x32
    assert {"augment", "upsample"}.isdisjoint(l.name for l in base_layers(model))


def test_augmentation_only_changes_images_while_training(upsampled_augmented):
    x = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3)).astype("float32")
    augment = upsampled_augmented.get_layer("augment")
    np.testing.assert_array_equal(np.asarray(augment(x, training=False)), x)
    assert not np.array_equal(np.asarray(augment(x, training=True)), x)
    first, second = (upsampled_augmented.predict(x, verbose=0) for _ in range(2))
    np.testing.assert_array_equal(first, second)


def test_cosine_schedule_warms_up_then_decays_to_zero():
    config = load_config("quick", environ={}, lr_schedule="cosine")
    schedule, callbacks = learning_rate_for(config, 1e-3, epochs=10, steps_per_epoch=20)
    assert callbacks == []
    assert float(schedule(0)) == 0.0
    assert float(schedule(20)) == pytest.approx(1e-3)  # end of the one-epoch warm-up
    assert float(schedule(110)) < 1e-3 and float(schedule(200)) == pytest.approx(0.0, abs=1e-9)


def test_plateau_rule_adds_reduce_lr_on_plateau_and_constant_stays_the_seed():
    plateau = load_config("quick", environ={}, lr_schedule="plateau")
    rate, callbacks = learning_rate_for(plateau, 1e-5, 10, 20)
    assert rate == 1e-5 and isinstance(callbacks[0], keras.callbacks.ReduceLROnPlateau)
    assert learning_rate_for(load_config("quick", environ={}), 1e-5, 10, 20) == (1e-5, [])


def test_label_smoothing_reaches_the_loss_and_training_runs():
    config = load_config("quick", environ={}, label_smoothing=0.1, lr_schedule="cosine",
                         epochs_head=1, batch_size=8)
    model = build_model(weights=None)
    x = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    data = make_dataset(x, np.arange(16) % 10, 8)
    history = train_head(model, data, data, config, verbose=0)
    assert model.loss.get_config()["label_smoothing"] == pytest.approx(0.1)
    assert np.isfinite(history.history["loss"]).all()


def test_feature_cache_is_not_used_with_augmentation_and_bad_options_are_refused():
    assert uses_feature_cache(load_config("fast", environ={}))
    assert not uses_feature_cache(load_config("fast", environ={}, augment=True))
    with pytest.raises(ConfigError, match="lr_schedule"):
        load_config(environ={"CIFAR_LR_SCHEDULE": "linear"})
    with pytest.raises(ConfigError, match="image_size"):
        load_config(environ={"CIFAR_IMAGE_SIZE": "16"})


def shifted(image, dy, dx):
    """`image` moved by whole pixels (dy down, dx right), the uncovered border zero."""
    out = np.zeros_like(image)
    rows, cols = image.shape[:2]
    out[max(dy, 0):rows + min(dy, 0), max(dx, 0):cols + min(dx, 0)] = \
        image[max(-dy, 0):rows - max(dy, 0), max(-dx, 0):cols - max(dx, 0)]
    return out


def test_augmentation_shifts_by_whole_pixels_and_never_blurs():
    """Every augmented image is the image (or its mirror) moved by at most 4 whole pixels."""
    from cifar_helpers.model import augmentation

    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).integers(1, 256, (32, 32, 32, 3)).astype("float32")
    augmented = np.asarray(augmentation()(x, training=True))
    every_move = [(flip, dy, dx) for flip in (False, True)
                  for dy in range(-4, 5) for dx in range(-4, 5)]
    matches = [[(flip, dy, dx) for flip, dy, dx in every_move
                if np.array_equal(out, shifted(image[:, ::-1] if flip else image, dy, dx))]
               for image, out in zip(x, augmented)]
    assert all(len(found) == 1 for found in matches)  # exactly one whole-pixel move: no blur
    moves = [found[0] for found in matches]
    assert {flip for flip, _, _ in moves} == {False, True}  # some mirrored, some not
    assert any(dy for _, dy, _ in moves) and any(dx for _, _, dx in moves)  # shifted both ways
