"""The fast path: phase 1 on cached features gives the naive path's head; mixed precision."""

import keras
import numpy as np
import pytest

from cifar_helpers import speed
from cifar_helpers.config import load_config
from cifar_helpers.data import make_dataset
from cifar_helpers.errors import ConfigError
from cifar_helpers.model import base_layers, build_model, head_layers
from cifar_helpers.training import train_head, train_head_on_cached_features

CONFIG = load_config("quick", environ={}, epochs_head=2, batch_size=16)


def weights_of(layers):
    return [v.numpy().copy() for layer in layers for v in layer.weights]


def tiny_split(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (48, 32, 32, 3), dtype=np.uint8)
    return (x[:32], np.arange(32) % 10), (x[32:], np.arange(16) % 10)


def fresh_model():
    keras.utils.set_random_seed(0)
    return build_model(weights=None)


class CountingExtractor:
    """The real feature extractor of `model`, counting how many times it runs over images."""

    def __init__(self, model):
        self.extractor, self.predict_calls = speed.feature_extractor(model), 0

    def predict(self, *args, **kwargs):
        self.predict_calls += 1
        return self.extractor.predict(*args, **kwargs)


def features_and_extractions(model, x, cache_dir, capsys):
    """Cached features of `x`, and how often the base ran for them (counted and as logged)."""
    counting = CountingExtractor(model)
    features = speed.cached_features(model, x, cache_dir, extractor=counting)
    logged = capsys.readouterr().out.count("Computing the base features")
    assert logged == counting.predict_calls  # the log line tells the truth
    return features, counting.predict_calls


def test_cached_features_train_the_same_head_as_the_naive_path(tmp_path):
    train, val = tiny_split()
    naive, cached = fresh_model(), fresh_model()
    for a, b in zip(weights_of(naive.layers), weights_of(cached.layers)):
        np.testing.assert_array_equal(a, b)
    base_before = weights_of(base_layers(naive))

    keras.utils.set_random_seed(1)
    train_head(naive, make_dataset(*train, 16, shuffle=True, seed=CONFIG.seed),
               make_dataset(*val, 16), CONFIG, verbose=0)
    keras.utils.set_random_seed(1)
    history = train_head_on_cached_features(cached, train, val, CONFIG, verbose=0,
                                            cache_dir=tmp_path)
    assert history.epoch == [0, 1] and np.isfinite(history.history["val_loss"]).all()
    for a, b in zip(weights_of(head_layers(naive)), weights_of(head_layers(cached))):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    for before, after in zip(base_before, weights_of(base_layers(cached))):
        np.testing.assert_array_equal(before, after)
    assert not np.allclose(weights_of(head_layers(cached))[0],
                           weights_of(head_layers(fresh_model()))[0])


def test_feature_cache_is_reused_only_for_the_same_data_weights_and_policy(tmp_path, capsys):
    model = fresh_model()
    x = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    first, extractions = features_and_extractions(model, x, tmp_path, capsys)
    assert extractions == 1 and first.shape == (8, 2048)
    assert len(list(tmp_path.glob("*.npy"))) == 1
    again, extractions = features_and_extractions(model, x, tmp_path, capsys)
    assert extractions == 0  # read from the cache: the base did not run
    np.testing.assert_array_equal(again, first)
    assert len(list(tmp_path.glob("*.npy"))) == 1
    keys = {speed.cache_key(model, x), speed.cache_key(model, x[::-1])}
    model.get_layer("conv1_conv").bias.assign(np.ones(64, dtype="float32"))
    keys.add(speed.cache_key(model, x))
    with speed.dtype_policy("mixed_bfloat16"):
        keras.utils.set_random_seed(0)
        keys.add(speed.cache_key(build_model(weights=None), x))
    assert len(keys) == 4


def test_a_damaged_feature_cache_is_computed_again(tmp_path, capsys):
    model = fresh_model()
    x = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    first, extractions = features_and_extractions(model, x, tmp_path, capsys)
    assert extractions == 1
    (path,) = tmp_path.glob("*.npy")
    path.write_bytes(path.read_bytes()[:1000])  # cut off, as a half-copied run folder leaves it
    again, extractions = features_and_extractions(model, x, tmp_path, capsys)
    assert extractions == 1  # computed again, not read
    np.testing.assert_array_equal(again, first)
    np.save(path, first[:4])  # readable, but for other images
    again, extractions = features_and_extractions(model, x, tmp_path, capsys)
    assert extractions == 1
    np.testing.assert_array_equal(again, first)
    np.testing.assert_array_equal(np.load(path), first)  # and stored again
    assert features_and_extractions(model, x, tmp_path, capsys)[1] == 0  # now read from it


def test_precision_is_chosen_by_hardware(monkeypatch):
    assert speed.resolve_precision("float32") == "float32"
    with pytest.raises(ConfigError, match="precision"):
        load_config(precision="float8")
    import tensorflow as tf

    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])  # no GPU
    monkeypatch.setattr(speed, "cpu_has_native_bf16", lambda: True)
    assert speed.resolve_precision("auto") == "mixed_bfloat16"
    monkeypatch.setattr(speed, "cpu_has_native_bf16", lambda: False)
    assert speed.resolve_precision("auto") == "float32"
    monkeypatch.setattr(tf.config, "list_physical_devices",
                        lambda kind=None: ["GPU:0"] if kind == "GPU" else [])
    assert speed.resolve_precision("auto") == "mixed_float16"


def test_an_isa_cap_below_bf16_counts_as_a_cpu_without_bf16(monkeypatch):
    """`ONEDNN_MAX_CPU_ISA=AVX2` makes oneDNN run as on a laptop CPU; precision=auto follows it."""
    monkeypatch.setattr(speed.Path, "read_text", lambda self: "flags : avx2 avx512_bf16")
    assert speed.cpu_has_native_bf16(environ={}) is True
    assert speed.cpu_has_native_bf16(environ={"ONEDNN_MAX_CPU_ISA": "avx2"}) is False
    assert speed.cpu_has_native_bf16(environ={"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}) is False
    assert speed.cpu_has_native_bf16(environ={"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_AMX"}) is True


def test_mixed_bfloat16_model_keeps_preprocessing_and_output_in_float32():
    with speed.dtype_policy("mixed_bfloat16"):
        model = build_model(weights=None)
    assert keras.config.dtype_policy().name == "float32"  # global policy restored
    assert model.get_layer("conv1_conv").compute_dtype == "bfloat16"
    assert model.get_layer("preprocess").compute_dtype == "float32"
    assert model.get_layer("predictions").compute_dtype == "float32"
    probabilities = model.predict(np.zeros((2, 32, 32, 3), "float32"), verbose=0)
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_fast_profile_settings():
    fast = load_config("fast", environ={})
    assert (fast.precision, fast.feature_cache, fast.fast_ops, fast.batch_size) == (
        "auto", True, "auto", 128)
    assert (fast.epochs_head, fast.epochs_finetune, fast.lr_finetune) == (10, 10, 1e-5)
