"""Speed without changing the recipe: mixed precision where the hardware has it, and phase 1 on
cached features (the frozen base runs once over the data instead of once per epoch)."""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Mapping

import keras
import numpy as np

from .config import Config
from .data import make_dataset
from .model import HEAD_LAYER_NAMES, base_layers

if TYPE_CHECKING:
    import tensorflow as tf

CACHE_FORMAT = "features-v1"


ISAS_WITHOUT_BF16 = {"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE",
                     "AVX512_CORE_VNNI"}  # oneDNN's names for instruction sets below AVX512_BF16


def cpu_has_native_bf16(environ: Mapping[str, str] = os.environ) -> bool:
    """True when the CPU computes bfloat16 natively (AVX512_BF16 or AMX), where bf16 pays off.

    `ONEDNN_MAX_CPU_ISA` below AVX512_BF16 (which emulates a laptop CPU) counts as no bf16.
    """
    if environ.get("ONEDNN_MAX_CPU_ISA", "").upper() in ISAS_WITHOUT_BF16:
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(requested: str) -> str:
    """'auto' -> mixed_float16 on a GPU, mixed_bfloat16 on a bf16 CPU, else float32."""
    if requested != "auto":
        return requested
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return "mixed_float16"
    return "mixed_bfloat16" if cpu_has_native_bf16() else "float32"


@contextlib.contextmanager
def dtype_policy(name: str) -> Iterator[None]:
    """Build layers under a dtype policy, then restore the previous global policy."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def feature_extractor(model: keras.Model) -> keras.Model:
    """The frozen part of the model: image -> pooled 2048-d ResNet50 features."""
    return keras.Model(model.input, model.get_layer(HEAD_LAYER_NAMES[0]).output)


def head_on_features(model: keras.Model) -> keras.Model:
    """The head as a model of its own that SHARES its Dense layers (and weights) with `model`."""
    width = model.get_layer(HEAD_LAYER_NAMES[0]).output.shape[-1]
    x = inputs = keras.Input(shape=(width,), name="features")
    for name in HEAD_LAYER_NAMES[1:]:
        x = model.get_layer(name)(x)
    return keras.Model(inputs, x, name="head_on_features")


def cache_key(model: keras.Model, x: np.ndarray) -> str:
    """Identify features by data, base weights, input size, precision and layer types, nothing less."""
    digest = hashlib.sha256(CACHE_FORMAT.encode())
    digest.update(np.ascontiguousarray(x).tobytes())
    for variable in (v for layer in base_layers(model) for v in layer.weights):
        digest.update(np.ascontiguousarray(variable.numpy()).tobytes())
    base_input = model.get_layer("preprocess").output.shape  # after any upsampling
    kinds = sorted({type(layer).__name__ for layer in base_layers(model)})  # conv implementation
    digest.update(repr((tuple(base_input), model.dtype_policy.name, kinds)).encode())
    return digest.hexdigest()[:32]


def cached_features(model: keras.Model, x: np.ndarray, cache_dir: str | Path,
                    batch_size: int = 256, extractor: keras.Model | None = None) -> np.ndarray:
    """Pooled base features of `x`, computed once and stored under their cache key."""
    path = Path(cache_dir) / f"{cache_key(model, x)}.npy"
    if path.exists():
        try:
            features = np.load(path, allow_pickle=False)
            if features.ndim == 2 and len(features) == len(x):
                return features
        except (OSError, ValueError):  # a cut-off copy of a run folder, say
            pass
        print(f"{path} is damaged: computing the features again", flush=True)
    from .files import atomic_path
    from .training import predict_verbosity

    extractor = extractor or feature_extractor(model)
    print(f"Computing the base features of {len(x):,} images once (cached in {path.parent})",
          flush=True)
    features = extractor.predict(make_dataset(x, None, batch_size), verbose=predict_verbosity())
    features = np.asarray(features, dtype=np.float32)  # bf16 -> f32 is exact
    with atomic_path(path) as temporary:
        np.save(temporary, features)
    return features


def feature_datasets(model: keras.Model, train: tuple[np.ndarray, np.ndarray],
                     val: tuple[np.ndarray, np.ndarray], config: Config, cache_dir: str | Path
                     ) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    """Training and validation pipelines over cached features, shuffled exactly as the image ones."""
    extractor = feature_extractor(model)  # one predict function for both arrays
    f_train = cached_features(model, train[0], cache_dir, extractor=extractor)
    f_val = cached_features(model, val[0], cache_dir, extractor=extractor)
    return (make_dataset(f_train, train[1], config.batch_size, shuffle=True, seed=config.seed),
            make_dataset(f_val, val[1], config.batch_size))
