import keras
import numpy as np
import pytest

from cifar_helpers import model as model_module
from cifar_helpers.errors import DownloadUnavailableError, WeightsError
from cifar_helpers.model import (ResNet50Preprocess, WeightsFallbackWarning, base_layers,
                                 build_model, freeze_base, head_layers, load_trained_model,
                                 resolve_weights, save_for_inference, stage_of,
                                 train_everything, trainable_count, unfreeze_base,
                                 weights_identity)


@pytest.fixture(scope="module")
def model():
    return build_model(weights=None)


def test_parameter_counts_of_seed_architecture(model):
    assert model.count_params() == 23_858_890
    freeze_base(model)
    assert trainable_count(model) == 271_178
    unfreeze_base(model)
    assert trainable_count(model) == 23_752_650
    batch_norms = [l for l in base_layers(model) if isinstance(l, keras.layers.BatchNormalization)]
    assert batch_norms and not any(l.trainable for l in batch_norms)


@pytest.mark.parametrize("fine_tune_at, first_stage, trainable", [
    ("all", 1, 23_752_650), ("conv4", 4, 22_312_778), ("conv5", 5, 15_224_650)])
def test_fine_tune_at_trains_that_stage_and_later_ones_but_no_batchnorm(
        model, fine_tune_at, first_stage, trainable):
    unfreeze_base(model, fine_tune_at)
    for layer in base_layers(model):
        is_batch_norm = isinstance(layer, keras.layers.BatchNormalization)
        assert layer.trainable == (stage_of(layer) >= first_stage and not is_batch_norm), layer.name
    assert {stage_of(l) for l in base_layers(model)} == {1, 2, 3, 4, 5}
    assert all(layer.trainable for layer in head_layers(model))
    assert trainable_count(model) == trainable


def test_train_everything_leaves_no_layer_frozen(model):
    freeze_base(model)
    train_everything(model)
    assert all(layer.trainable for layer in model.layers)
    assert trainable_count(model) == 23_805_770  # all but BatchNorm's moving statistics


def test_base_layers_are_exactly_the_layers_resnet50_makes(model):
    """Identified by name, positively: the same names a standalone ResNet50 has (but its input)."""
    standalone = keras.applications.ResNet50(include_top=False, weights=None,
                                             input_shape=(32, 32, 3))
    expected = [layer.name for layer in standalone.layers
                if not isinstance(layer, keras.layers.InputLayer)]
    assert [layer.name for layer in base_layers(model)] == expected
    assert not {"image", "preprocess", "head_pool", "predictions"} & set(expected)


def test_head_is_the_seed_head(model):
    units = [l.units for l in head_layers(model) if isinstance(l, keras.layers.Dense)]
    assert units == [128, 64, 10]
    assert isinstance(head_layers(model)[0], keras.layers.GlobalAveragePooling2D)
    assert model.output.shape == (None, 10)  # float32 under mixed precision: test_speed.py


def test_inner_resnet_layers_are_reachable_from_the_model_input(model):
    features = keras.Model(model.input, model.get_layer("conv4_block6_out").output)
    out = features(np.zeros((2, 32, 32, 3), dtype="float32"))
    assert tuple(out.shape) == (2, 2, 2, 1024)


def test_preprocess_layer_matches_keras_preprocess_input():
    pixels = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3)).astype("float32")
    expected = keras.applications.resnet50.preprocess_input(pixels.copy())
    np.testing.assert_allclose(np.asarray(ResNet50Preprocess()(pixels)), expected, atol=1e-5)


def test_saved_model_reloads_in_safe_mode_with_same_predictions(model, tmp_path):
    path = tmp_path / "model.keras"
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    model.optimizer.build(model.trainable_variables)
    save_for_inference(model, path)
    assert path.stat().st_size < 110_000_000  # weights only: no optimizer slots
    restored = load_trained_model(path)
    x = np.random.default_rng(1).integers(0, 256, (4, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-5)


def test_foreign_model_file_gives_a_clear_error(tmp_path):
    bogus = tmp_path / "model.keras"
    bogus.write_bytes(b"not a zip archive at all")
    with pytest.raises(WeightsError, match="cannot load model safely"):
        load_trained_model(bogus)


def test_a_model_keras_cannot_read_gives_a_short_error(tmp_path, monkeypatch):
    """Keras 3.4 reading a 3.15 file repeats the whole model config (150,000 characters)."""
    def fails(path, safe_mode):
        raise TypeError("Functional could not be deserialized.\n\nconfig=" + "{...}" * 30000
                        + "\n\nException encountered: unexpected keyword argument 'input_axes'")
    monkeypatch.setattr(keras.saving, "load_model", fails)
    with pytest.raises(WeightsError) as error:
        load_trained_model(tmp_path / "model.keras")
    message = str(error.value)
    assert len(message) < 600, len(message)
    assert "could not be deserialized" in message and "'input_axes'" in message


def test_weights_from_a_local_notop_file(tmp_path):
    base = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(32, 32, 3))
    path = tmp_path / "resnet50_notop.weights.h5"
    base.save_weights(path)
    loaded = build_model(weights=str(path))
    np.testing.assert_array_equal(loaded.get_layer("conv1_conv").kernel.numpy(),
                                  base.get_layer("conv1_conv").kernel.numpy())


@pytest.fixture
def no_imagenet(monkeypatch, tmp_path):
    monkeypatch.setattr(model_module, "imagenet_weights_cache_path", lambda: tmp_path / "none.h5")

    def unreachable(url, timeout):
        raise DownloadUnavailableError(f"cannot reach {url} (test: offline)")
    monkeypatch.setattr(model_module, "check_reachable", unreachable)


def test_imagenet_unavailable_says_where_to_put_the_file(no_imagenet, tmp_path):
    with pytest.raises(WeightsError, match=f"place it at {tmp_path / 'none.h5'}") as error:
        resolve_weights("imagenet")
    # The remedy in both places students train: the command line and a notebook's load_config
    assert "--weights PATH (weights=PATH in load_config)" in str(error.value)
    assert '--weights none (weights="none")' in str(error.value)


def test_a_download_cut_off_after_the_reachability_check_names_the_remedy(tmp_path,
                                                                          monkeypatch):
    monkeypatch.setattr(model_module, "imagenet_weights_cache_path", lambda: tmp_path / "none.h5")
    monkeypatch.setattr(model_module, "check_reachable", lambda url, timeout: None)

    def cut_off(*args, **kwargs):  # as keras.utils.get_file reports a failed download
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- "
                        "Connection reset by peer")
    monkeypatch.setattr(keras.applications, "ResNet50", cut_off)
    with pytest.raises(WeightsError) as error:
        build_model(weights="imagenet")
    message = str(error.value)
    assert message.startswith("could not load ResNet50 weights 'imagenet': URL fetch failure")
    assert f"place it at {tmp_path / 'none.h5'}" in message and "weights=PATH" in message


def test_a_damaged_imagenet_file_offline_is_named_and_auto_falls_back(no_imagenet, tmp_path):
    # Keras would see the wrong checksum, try to download again, fail offline and delete the file
    (tmp_path / "none.h5").write_bytes(b"half a copy")
    with pytest.raises(WeightsError, match=f"none.h5 is not the right file .*place it at"):
        resolve_weights("imagenet")
    with pytest.warns(WeightsFallbackWarning, match="not the right file"):
        assert resolve_weights("auto")[0] is None
    assert (tmp_path / "none.h5").read_bytes() == b"half a copy"


def test_a_damaged_imagenet_file_online_is_left_to_keras_to_download_again(monkeypatch, tmp_path):
    (tmp_path / "w.h5").write_bytes(b"half a copy")
    monkeypatch.setattr(model_module, "imagenet_weights_cache_path", lambda: tmp_path / "w.h5")
    checked = []
    monkeypatch.setattr(model_module, "check_reachable", lambda url, timeout: checked.append(url))
    assert resolve_weights("imagenet") == ("imagenet", "imagenet") and len(checked) == 1


def test_the_checked_imagenet_file_is_passed_by_path(monkeypatch, tmp_path):
    """Keras' get_file ignores a read-only ~/.keras (a lab copy made with sudo) and looks in
    /tmp/.keras; the file whose MD5 was just checked is the one ResNet50 loads."""
    import hashlib

    cached = tmp_path / "w.h5"
    cached.write_bytes(b"the weights")
    monkeypatch.setattr(model_module, "imagenet_weights_cache_path", lambda: cached)
    monkeypatch.setattr(model_module, "IMAGENET_NOTOP_MD5",
                        hashlib.md5(b"the weights").hexdigest())
    assert resolve_weights("imagenet") == (str(cached), "imagenet")
    assert weights_identity(resolve_weights("auto")[0]) == "imagenet"


def test_auto_weights_fall_back_loudly(no_imagenet):
    with pytest.warns(WeightsFallbackWarning, match="WITHOUT pretrained weights"):
        assert resolve_weights("auto") == (None, "none (fallback: ImageNet weights unavailable)")


def test_weights_spec_variants(tmp_path):
    assert resolve_weights("none") == (None, "none (random initialisation)")
    with pytest.raises(WeightsError, match="not found"):
        resolve_weights(str(tmp_path / "missing.h5"))
    (tmp_path / "resnet50_notop.h5").write_bytes(b"")  # an attached Kaggle dataset is a folder
    with pytest.raises(WeightsError, match="is a folder; pass the weights file in it: one of "
                                           "resnet50_notop.h5"):
        resolve_weights(str(tmp_path))


def test_model_with_code_in_it_is_refused_by_safe_mode(tmp_path):
    """A .keras file carrying a Lambda layer (arbitrary Python) is refused, not executed."""
    inputs = keras.Input((4,))
    tampered = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs))
    path = tmp_path / "tampered.keras"
    tampered.save(path)
    with pytest.raises(WeightsError, match="cannot load model safely.*(safe_mode|Lambda)"):
        load_trained_model(path)


def test_weights_are_identified_by_content_not_by_path(tmp_path, monkeypatch):
    import hashlib

    first, second = tmp_path / "a.h5", tmp_path / "b.h5"
    first.write_bytes(b"some weights")
    second.write_bytes(b"some weights")
    assert weights_identity(str(first)) == weights_identity(str(second)) != weights_identity(None)
    assert weights_identity(None) == "none" and weights_identity("imagenet") == "imagenet"
    monkeypatch.setattr(model_module, "IMAGENET_NOTOP_MD5",
                        hashlib.md5(b"some weights").hexdigest())
    assert weights_identity(str(second)) == "imagenet"  # Keras' own file, passed as a path
