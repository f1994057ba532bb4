"""The seed model: ResNet50 (ImageNet) base + small dense head, and the freezing rules of each phase."""

from __future__ import annotations

import functools
import hashlib
import os
import re
import warnings
from pathlib import Path

import keras

from .config import Config
from .data import IMAGE_SHAPE, NUM_CLASSES
from .network import check_reachable, keras_home, socket_timeout
from .errors import DownloadUnavailableError, WeightsError

HEAD_LAYER_NAMES = ("head_pool", "head_dense_128", "head_dense_64", "predictions")
# Every layer keras.applications.ResNet50 makes is named conv1_* .. conv5_* or pool1_*
# (tests/test_model.py checks this against a standalone ResNet50).
RESNET50_LAYER_NAME = re.compile(r"(conv[1-5]|pool1)_")
IMAGENET_NOTOP_FILE = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
IMAGENET_NOTOP_URL = ("https://storage.googleapis.com/tensorflow/keras-applications/resnet/"
                      + IMAGENET_NOTOP_FILE)
IMAGENET_NOTOP_MD5 = "4d473c1dd8becc155b73f8504c6f6626"  # as keras.applications checks that file


class WeightsFallbackWarning(UserWarning):
    """Shown when `weights='auto'` cannot get ImageNet weights and starts from random ones."""


@keras.saving.register_keras_serializable(package="cifar_helpers")
class ResNet50Preprocess(keras.layers.Layer):
    """`resnet50.preprocess_input` as a saveable layer (RGB->BGR, minus ImageNet means, no scaling).

    A registered layer rather than `Lambda`, because Keras safe mode refuses to load `Lambda`.
    """

    def call(self, inputs):
        return keras.applications.resnet50.preprocess_input(keras.ops.cast(inputs, "float32"))


def imagenet_weights_cache_path() -> Path:
    """Where the installed Keras looks for (and saves) the ResNet50 no-top ImageNet weights."""
    return keras_home() / "models" / IMAGENET_NOTOP_FILE


def resolve_weights(spec: str, timeout: float = 15.0) -> tuple[str | None, str]:
    """Turn 'auto' | 'imagenet' | 'none' | PATH into (argument for ResNet50, what was used)."""
    spec = "none" if spec is None else str(spec)
    if spec.lower() == "none":
        return None, "none (random initialisation)"
    if spec.lower() == "imagenet":
        cached = imagenet_weights_cache_path()
        md5 = file_md5(cached) if cached.exists() else None
        if md5 != IMAGENET_NOTOP_MD5:  # Keras downloads it (again); offline it cannot
            try:
                check_reachable(IMAGENET_NOTOP_URL, timeout)
            except DownloadUnavailableError as exc:
                found = (f"{cached} is not the right file (MD5 {md5}, expected "
                         f"{IMAGENET_NOTOP_MD5}: a cut-off copy?) and " if md5 else "")
                raise WeightsError(f"ImageNet weights unavailable: {found}{exc}. "
                                   f"{imagenet_weights_remedy()}") from None
            return "imagenet", "imagenet"  # online: Keras downloads it again
        return str(cached), "imagenet"  # checked: Keras itself skips a read-only ~/.keras
    if spec.lower() == "auto":
        try:
            return resolve_weights("imagenet", timeout)
        except WeightsError as exc:
            warnings.warn(f"{exc}. Continuing WITHOUT pretrained weights: this is not transfer "
                          "learning and accuracy will be far lower.", WeightsFallbackWarning,
                          stacklevel=2)
            return None, "none (fallback: ImageNet weights unavailable)"
    if os.path.isdir(spec):  # an attached Kaggle dataset or model is a folder
        files = sorted(path.name for path in Path(spec).glob("*.h5"))
        raise WeightsError(f"{spec} is a folder; pass the weights file in it"
                           + (f": one of {', '.join(files)}" if files else " (it holds no .h5)"))
    if not os.path.isfile(spec):
        raise WeightsError(f"weights file not found: {spec}")
    return spec, f"file:{spec}"


def imagenet_weights_remedy() -> str:
    """What to do when Keras cannot download the ImageNet weights, on the CLI and in notebooks."""
    return (f"Download {IMAGENET_NOTOP_URL} elsewhere and place it at "
            f"{imagenet_weights_cache_path()}, or pass --weights PATH (weights=PATH in "
            "load_config), or --weights none (weights=\"none\") to train from random "
            "initialisation")


def file_md5(path: str | os.PathLike) -> str:
    """A file's MD5 (as Keras checks downloads), read once per version of the file."""
    stat = os.stat(path)
    return _md5_of(os.path.abspath(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _md5_of(path: str, size: int, modified_ns: int) -> str:
    """MD5 of the file at `path`; size and modification time only key the cache."""
    return hashlib.md5(Path(path).read_bytes(), usedforsecurity=False).hexdigest()


def weights_identity(weights: str | None) -> str:
    """What a run starts from, not where the file lies: 'imagenet' (Keras' file anywhere), 'none',
    or another file's MD5."""
    if weights is None or weights == "imagenet":
        return weights or "none"
    md5 = file_md5(weights)
    return "imagenet" if md5 == IMAGENET_NOTOP_MD5 else f"file with MD5 {md5}"


def augmentation() -> keras.Sequential:
    """Random horizontal flip and a shift by up to 4 whole pixels with zero fill.

    Close to the CIFAR recipe since the ResNet paper (pad by 4, crop at random; here the extreme
    4-pixel shifts are rarer, as the shift is drawn continuously and rounded). Nearest sampling
    copies pixels instead of interpolating between them, so a 32x32 image is never blurred. Keras
    preprocessing layers: active in `fit` only, so evaluation sees the images unchanged.
    """
    return keras.Sequential([
        keras.layers.RandomFlip("horizontal"),
        keras.layers.RandomTranslation(0.125, 0.125, fill_mode="constant",
                                       interpolation="nearest"),
    ], name="augment")


def build_model(weights: str | None = "imagenet", input_shape: tuple[int, int, int] = IMAGE_SHAPE,
                num_classes: int = NUM_CLASSES, timeout: float = 15.0, *,
                image_size: int | None = None, augment: bool = False) -> keras.Model:
    """The seed architecture; ResNet50 layers sit directly in the model, reachable for Grad-CAM.

    `image_size` upsamples each batch inside the model (never the whole dataset in memory);
    `augment` adds random flips and whole-pixel shifts before it.
    """
    weights_arg, _ = resolve_weights(weights, timeout)
    x = inputs = keras.Input(shape=input_shape, name="image")
    if augment:
        x = augmentation()(x)
    if image_size and image_size != input_shape[0]:
        x = keras.layers.Resizing(image_size, image_size, name="upsample", dtype="float32")(x)
    preprocessed = ResNet50Preprocess(name="preprocess", dtype="float32")(x)
    try:
        with socket_timeout(timeout):
            base = keras.applications.ResNet50(include_top=False, weights=weights_arg,
                                               input_tensor=preprocessed)
    except Exception as exc:  # download failures surface as bare Exception, bad files as ValueError
        remedy = f". {imagenet_weights_remedy()}" if weights_arg == "imagenet" else ""
        raise WeightsError(f"could not load ResNet50 weights {weights!r}: {exc}{remedy}") from None
    x = keras.layers.GlobalAveragePooling2D(name="head_pool")(base.output)
    x = keras.layers.Dense(128, activation="relu", name="head_dense_128")(x)
    x = keras.layers.Dense(64, activation="relu", name="head_dense_64")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="predictions",
                                 dtype="float32")(x)
    return keras.Model(inputs, outputs, name="resnet50_cifar10")


def build_model_for(config: Config, weights: str | None) -> keras.Model:
    """`build_model` with the input size, augmentation and fast operations a configuration asks for."""
    model = build_model(weights, timeout=config.download_timeout, image_size=config.image_size,
                        augment=config.augment)
    from .fast_ops import resolve_fast_ops, with_fast_layers

    if resolve_fast_ops(config.fast_ops):
        model = with_fast_layers(model)
    return model


def base_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The layers of a model made by `build_model` that came from ResNet50, by their names."""
    return [layer for layer in model.layers if RESNET50_LAYER_NAME.match(layer.name)]


def head_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The dense head trained in phase 1."""
    return [model.get_layer(name) for name in HEAD_LAYER_NAMES]


def freeze_base(model: keras.Model) -> None:
    """Phase 1: nothing in ResNet50 trains; only the head's 271,178 weights do."""
    for layer in base_layers(model):
        layer.trainable = False


def stage_of(layer: keras.layers.Layer) -> int:
    """ResNet50 stage of a base layer: 1 for the stem (conv1_*, pool1_*), 2-5 for conv2_*..conv5_*."""
    return 1 if layer.name.startswith("pool1") else int(layer.name[4])


def unfreeze_base(model: keras.Model, fine_tune_at: str = "all") -> None:
    """Phase 2: ResNet50 trains from stage `fine_tune_at` on, except BatchNorm, which stays frozen.

    "all" trains every stage (the seed); "conv5" only the last stage, keeping the early, generic
    filters as they are (TensorFlow's tutorial, `fine_tune_at`, and handson-ml3 keep the first
    two thirds and the first 40 % of their networks' layers frozen).
    A frozen BatchNormalization layer runs in inference mode in Keras 3: it normalises with its
    ImageNet moving statistics and never updates them. Calling the base with `training=False`
    is not enough here: during `fit` the moving statistics still change (checked on Keras 3.15).
    """
    first = 1 if fine_tune_at == "all" else int(fine_tune_at.removeprefix("conv"))
    for layer in base_layers(model):
        layer.trainable = (stage_of(layer) >= first
                           and not isinstance(layer, keras.layers.BatchNormalization))


def train_everything(model: keras.Model) -> None:
    """The from-scratch control: every layer trains, BatchNorm included (batch statistics)."""
    for layer in model.layers:
        layer.trainable = True


def set_trainable_for(model: keras.Model, phase: str, config: Config) -> None:
    """Set `trainable` as the configured recipe trains `phase` ('head' or 'finetune')."""
    if config.recipe == "scratch":
        train_everything(model)
    elif phase == "head":
        freeze_base(model)
    else:
        unfreeze_base(model, config.fine_tune_at)


def count_params(weights: list) -> int:
    """Number of scalars in a list of variables."""
    return int(sum(int(keras.ops.size(w)) for w in weights))


def trainable_count(model: keras.Model) -> int:
    """How many parameters the optimizer would update."""
    return count_params(model.trainable_weights)


def save_for_inference(model: keras.Model, path: str | os.PathLike) -> None:
    """Save architecture and weights without the optimizer state (a third of the size).

    `clone_model` would copy the compiled optimizer too (Keras 3.15), so rebuild from the config.
    Saved with plain Keras layers (Conv2D, BatchNormalization), however the model was trained.
    """
    from .fast_ops import has_fast_layers, with_standard_layers

    bare = type(model).from_config(model.get_config())
    bare.set_weights(model.get_weights())
    if has_fast_layers(bare):
        bare = with_standard_layers(bare)  # a second copy only when there is one to undo
    bare.save(path)


def load_trained_model(path: str | os.PathLike) -> keras.Model:
    """Load a `.keras` file in safe mode; a foreign or tampered file raises WeightsError."""
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as exc:  # Keras raises many types for bad archives
        lines = str(exc).strip().splitlines() or [""]  # Keras repeats whole configs in it
        reason = " ... ".join(dict.fromkeys(line[:200] for line in (lines[0], lines[-1])))
        raise WeightsError(f"{path}: cannot load model safely ({type(exc).__name__}: "
                           f"{reason})") from None
