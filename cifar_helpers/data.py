"""CIFAR-10 loading from Keras, a local folder or the shipped sample; safe parsing; splits; tf.data."""

from __future__ import annotations

import hashlib
import os
import pickle
import shlex
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Sequence

import numpy as np

from .errors import ConfigError, DataError, DownloadUnavailableError
from .network import check_reachable, is_network_failure, keras_home, socket_timeout

if TYPE_CHECKING:
    import tensorflow as tf

    from .config import Config

CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer",
               "dog", "frog", "horse", "ship", "truck")
NUM_CLASSES = len(CLASS_NAMES)
IMAGE_SHAPE = (32, 32, 3)
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
SAMPLE_PATH = Path(__file__).parent / "sample_data" / "cifar10_sample.npz"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
MAX_BATCH_BYTES = 256 * 2**20  # a real batch is ~30 MB; refuse absurd files before reading
# Exactly what a pickled uint8 NumPy array needs (numpy<2 and numpy>=2 spellings), as Keras does.
ALLOWED_PICKLE_GLOBALS = frozenset({
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
})


class FallbackWarning(UserWarning):
    """Shown when the requested source is unavailable and the shipped sample is used instead."""


class CifarData(NamedTuple):
    """Images as uint8 (N, 32, 32, 3), integer labels (N,), class names and where they came from."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    source: str

    @property
    def train(self) -> tuple[np.ndarray, np.ndarray]:
        """(x_train, y_train) as one pair, to unpack into a call."""
        return self.x_train, self.y_train

    @property
    def test(self) -> tuple[np.ndarray, np.ndarray]:
        """(x_test, y_test) as one pair, to unpack into a call."""
        return self.x_test, self.y_test

    @property
    def identity(self) -> str:
        """What the images and labels are, not where they came from: the same for a download, the
        Keras cache and a copied folder, so a run folder is reused wherever its data is found."""
        digest = hashlib.blake2b(digest_size=12)
        for array in (self.x_train, self.y_train, self.x_test, self.y_test):
            digest.update(np.ascontiguousarray(array))
        return f"{len(self.y_train)}+{len(self.y_test)} images, blake2b {digest.hexdigest()}"


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that refuses every global except those needed to rebuild a NumPy array."""

    def find_class(self, module: str, name: str) -> object:
        """The global if it is on the allow-list; anything else is refused."""
        if (module, name) in ALLOWED_PICKLE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")


def _unpickle(path: Path) -> dict:
    """Read one pickle file safely into a dict with str keys; any failure is a DataError."""
    try:
        if path.stat().st_size > MAX_BATCH_BYTES:
            raise DataError(f"{path}: file is larger than any CIFAR-10 batch")
        with open(path, "rb") as handle:
            content = _RestrictedUnpickler(handle, encoding="bytes").load()
    except DataError:
        raise
    except OSError as exc:
        raise DataError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    except Exception as exc:  # pickle can raise nearly any type on corrupt input
        raise DataError(f"{path}: not a valid CIFAR-10 pickle ({type(exc).__name__}: {exc})") from None
    if not isinstance(content, dict):
        raise DataError(f"{path}: expected a dict, found {type(content).__name__}")
    try:
        return {k.decode("utf-8") if isinstance(k, bytes) else k: v for k, v in content.items()}
    except (UnicodeDecodeError, AttributeError):
        raise DataError(f"{path}: dictionary keys are not text") from None


def _as_labels(raw: object, path: Path) -> np.ndarray:
    """Validate labels: a flat sequence of integers in [0, 9]."""
    if isinstance(raw, np.ndarray):
        labels = raw
    elif isinstance(raw, (list, tuple)) and all(type(v) is int for v in raw):
        labels = np.array(raw, dtype=np.int64)
    else:
        raise DataError(f"{path}: 'labels' must be a list of integers")
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{path}: 'labels' must be a flat integer array, got {labels.dtype} {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise DataError(f"{path}: labels out of range 0..{NUM_CLASSES - 1} "
                        f"(found {labels.min()}..{labels.max()})")
    return labels.astype(np.int64)


def read_batch(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Parse one canonical batch file into uint8 images (N, 32, 32, 3) and labels (N,)."""
    path = Path(path)
    content = _unpickle(path)
    for key in ("data", "labels"):
        if key not in content:
            raise DataError(f"{path}: missing key {key!r}")
    data = content["data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8:
        raise DataError(f"{path}: 'data' must be a uint8 array")
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or data.shape[0] == 0:
        raise DataError(f"{path}: 'data' must have shape (N, 3072) with N > 0, got {data.shape}")
    labels = _as_labels(content["labels"], path)
    if len(labels) != len(data):
        raise DataError(f"{path}: {len(data)} images but {len(labels)} labels")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def read_meta(path: str | os.PathLike) -> tuple[tuple[str, ...], int | None]:
    """Parse `batches.meta`: the ten class names and the declared images per batch."""
    path = Path(path)
    content = _unpickle(path)
    names = content.get("label_names")
    if not isinstance(names, list) or len(names) != NUM_CLASSES:
        raise DataError(f"{path}: 'label_names' must list {NUM_CLASSES} class names")
    try:
        names = tuple(n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names)
    except UnicodeDecodeError:
        raise DataError(f"{path}: class names are not UTF-8 text") from None
    per_batch = content.get("num_cases_per_batch")
    if per_batch is not None and (type(per_batch) is not int or per_batch <= 0):
        raise DataError(f"{path}: 'num_cases_per_batch' must be a positive integer")
    return names, per_batch


def batch_dict(images: np.ndarray, labels: Sequence[int] | np.ndarray, name: str = "batch") -> dict:
    """What a canonical batch file holds, from uint8 images (N, 32, 32, 3): `read_batch` reversed."""
    data = np.asarray(images, dtype=np.uint8).transpose(0, 3, 1, 2).reshape(len(images), -1)
    return {b"batch_label": name.encode(), b"labels": [int(label) for label in labels],
            b"data": data, b"filenames": [f"img_{i}.png".encode() for i in range(len(images))]}


def meta_dict(class_names: Sequence[str], per_batch: int) -> dict:
    """What `batches.meta` holds: `read_meta` reversed."""
    return {b"num_cases_per_batch": per_batch, b"num_vis": 3 * 32 * 32,
            b"label_names": [name.encode() for name in class_names]}


ARCHIVE_ENDINGS = (".tar.gz", ".tgz")


def _check_layout(directory: Path) -> None:
    """Refuse, with what to do instead, an archive or a folder that only contains the batches."""
    if directory.is_file() and directory.name.endswith(ARCHIVE_ENDINGS):
        raise DataError(f"{directory}: an archive; {extract_advice(directory)}")
    if not directory.is_dir():
        raise DataError(f"{directory}: not a directory (expected the cifar-10-batches-py layout)")
    inner = directory / "cifar-10-batches-py"
    if not (directory / "batches.meta").exists() and inner.is_dir():
        raise DataError(f"{directory} holds no batches.meta; did you mean {inner}?")
    archives = sorted(path for path in directory.iterdir() if path.name.endswith(ARCHIVE_ENDINGS))
    if not (directory / "batches.meta").exists() and archives:
        raise DataError(f"{directory} holds no batches.meta but the archive {archives[0].name}; "
                        f"{extract_advice(archives[0])}")


def extract_advice(archive: Path) -> str:
    """How to extract an archive where `--data auto` finds it (not beside it: a Kaggle input is
    read-only)."""
    target = keras_cifar10_dirs()[0].parent
    target, archive = shlex.quote(str(target)), shlex.quote(str(archive.resolve()))
    return (f"extract it into Keras' cache first (mkdir -p {target} && tar xzf {archive} -C "
            f"{target}), then --data auto or keras reads it")


def load_batches_dir(directory: str | os.PathLike, source: str | None = None) -> CifarData:
    """Load a folder in the canonical `cifar-10-batches-py` layout, validating every file."""
    directory = Path(directory)
    _check_layout(directory)
    names, per_batch = read_meta(directory / "batches.meta")
    parts = [read_batch(directory / name) for name in TRAIN_BATCHES + ("test_batch",)]
    for name, (images, _) in zip(TRAIN_BATCHES + ("test_batch",), parts):
        if per_batch is not None and len(images) != per_batch:
            raise DataError(f"{directory / name}: {len(images)} images, "
                            f"but batches.meta declares {per_batch} per batch")
    x_train = np.concatenate([p[0] for p in parts[:-1]])
    y_train = np.concatenate([p[1] for p in parts[:-1]])
    x_test, y_test = parts[-1]
    return CifarData(x_train, y_train, x_test, y_test, names, source or f"dir:{directory}")


def _validate_arrays(x: np.ndarray, y: np.ndarray, origin: str) -> tuple[np.ndarray, np.ndarray]:
    """Check images/labels that did not come through `read_batch` (sample file, Keras)."""
    y = np.asarray(y).reshape(-1)
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != IMAGE_SHAPE:
        raise DataError(f"{origin}: images must be uint8 (N, 32, 32, 3), got {x.dtype} {x.shape}")
    if len(y) != len(x):
        raise DataError(f"{origin}: {len(x)} images but {len(y)} labels")
    return x, _as_labels(y, Path(origin))


def load_sample(path: str | os.PathLike = SAMPLE_PATH) -> CifarData:
    """Load the small balanced real CIFAR-10 sample shipped with the package (no pickle allowed)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(f"{path}: cannot read the CIFAR-10 sample ({exc})") from None
    x_train, y_train = _validate_arrays(arrays["x_train"], arrays["y_train"], str(path))
    x_test, y_test = _validate_arrays(arrays["x_test"], arrays["y_test"], str(path))
    return CifarData(x_train, y_train, x_test, y_test, CLASS_NAMES, "sample")


def keras_cifar10_dirs() -> tuple[Path, ...]:
    """Where `keras.datasets.cifar10.load_data()` leaves the batches: Keras 3.6+, then 3.4-3.5."""
    datasets = keras_home() / "datasets"
    return (datasets / "cifar-10-batches-py-target" / "cifar-10-batches-py",
            datasets / "cifar-10-batches-py")


def load_from_keras(timeout: float = 15.0) -> CifarData:
    """Use the Keras cache if present, else download with `keras.datasets.cifar10.load_data()`."""
    for cached in keras_cifar10_dirs():
        if (cached / "test_batch").exists():
            try:
                return load_batches_dir(cached, source=f"keras-cache:{cached}")
            except DataError as exc:
                raise DataError(f"{exc}; Keras' CIFAR-10 cache is damaged: delete "
                                f"{keras_home() / 'datasets'}/cifar-10* and run again") from None
    check_reachable(CIFAR10_URL, timeout)
    import keras

    try:
        with socket_timeout(timeout):
            (x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
    except Exception as exc:
        if is_network_failure(exc):
            raise DownloadUnavailableError(f"downloading CIFAR-10 failed ({exc})") from None
        raise DataError(f"keras.datasets.cifar10.load_data() failed ({type(exc).__name__}: {exc}); "
                        f"if a download was cut off, delete {keras_home() / 'datasets'}/"
                        "cifar-10* and run again") from None
    x_train, y_train = _validate_arrays(x_train, y_train, "keras.datasets.cifar10")
    x_test, y_test = _validate_arrays(x_test, y_test, "keras.datasets.cifar10")
    return CifarData(x_train, y_train, x_test, y_test, CLASS_NAMES, "keras")


def load_cifar10(source: str = "auto", timeout: float = 15.0) -> CifarData:
    """Load CIFAR-10 from 'keras', 'sample', a folder path, or 'auto' (Keras, else the sample)."""
    if source == "sample":
        return load_sample()
    if source == "keras":
        try:
            return load_from_keras(timeout)
        except DownloadUnavailableError as exc:
            folder = keras_cifar10_dirs()[0]
            raise DownloadUnavailableError(
                f"{exc}. Offline? Use --data sample (data=\"sample\" in load_config, "
                f"CIFAR_DATA=sample), or put the extracted cifar-10-batches-py folder at "
                f"{folder} or pass its path") from None
    if source == "auto":
        try:
            return load_from_keras(timeout)
        except DownloadUnavailableError as exc:
            warnings.warn(f"CIFAR-10 download unavailable ({exc}); using the small shipped sample "
                          "instead. Results on it are NOT comparable to full CIFAR-10.",
                          FallbackWarning, stacklevel=2)
            sample = load_sample()
            return sample._replace(source="sample (fallback: download unavailable)")
    return load_batches_dir(source)


def _require_one_per_class(n: int, y: np.ndarray, what: str, remedy: str) -> None:
    """A stratified sample needs at least one image of every class present."""
    classes = len(np.unique(y))
    if n < classes:
        raise ConfigError(f"the {what} would hold {n} images, fewer than the {classes} classes; "
                          f"{remedy}")


def stratified_subset(x: np.ndarray, y: np.ndarray, n: int, seed: int = 0,
                      what: str = "subset") -> tuple[np.ndarray, np.ndarray]:
    """Keep `n` images with the class balance of `y` (all of them when n is 0 or too large)."""
    if n <= 0 or n >= len(y):
        return x, y
    _require_one_per_class(n, y, what, "keep more images (or 0 for all)")
    if len(y) - n < len(np.unique(y)):  # too few dropped to stratify them: drop them at random
        keep = np.random.default_rng(seed).permutation(len(y))[:n]
        return x[keep], y[keep]
    from sklearn.model_selection import train_test_split

    x_keep, _, y_keep, _ = train_test_split(x, y, train_size=n, stratify=y, random_state=seed)
    return x_keep, y_keep


def train_val_split(x: np.ndarray, y: np.ndarray, val_fraction: float = 0.1, seed: int = 0
                    ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Stratified, seeded split into (x_train, y_train), (x_val, y_val)."""
    n_val = int(np.ceil(val_fraction * len(y)))
    _require_one_per_class(n_val, y, "validation split",
                           "use more training images or a larger validation fraction")
    _require_one_per_class(len(y) - n_val, y, "training split",
                           "use more training images or a smaller validation fraction")
    from sklearn.model_selection import train_test_split

    x_tr, x_val, y_tr, y_val = train_test_split(
        x, y, test_size=val_fraction, stratify=y, random_state=seed)
    return (x_tr, y_tr), (x_val, y_val)


PREFETCH_BATCHES = 2  # making a batch takes well under a millisecond; training it, far longer


def make_dataset(x: np.ndarray, y: np.ndarray | None, batch_size: int, *, shuffle: bool = False,
                 seed: int = 0, num_classes: int = NUM_CLASSES) -> tf.data.Dataset:
    """tf.data pipeline: uint8 images -> float32 batches (+ one-hot labels when given), prefetched."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices(x if y is None else (x, y))
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if y is None:
        ds = ds.map(lambda images: tf.cast(images, tf.float32))
    else:
        ds = ds.map(lambda images, labels: (tf.cast(images, tf.float32),
                                            tf.one_hot(labels, num_classes)))
    return without_autotune(ds.prefetch(PREFETCH_BATCHES))


def without_autotune(ds: tf.data.Dataset) -> tf.data.Dataset:
    """`ds` with tf.data's autotuning off: it stalls each new epoch, and this pipeline is too
    cheap to need it.

    `fit` drops each epoch's iterator and makes a new one; dropping it waits for autotune's
    background thread to wake, which sleeps up to a minute (its period doubles while an epoch
    runs). `benchmarks/epoch_start_stall.py` measures it: seconds lost at every epoch start.
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options)


def prepare_data(config: Config) -> tuple[CifarData, tuple, tuple, tuple]:
    """Load, subset and split the data as a Config says: (data, train, validation, test)."""
    data = load_cifar10(config.data, timeout=config.download_timeout)
    x, y = stratified_subset(data.x_train, data.y_train, config.train_limit, config.seed,
                             what="training subset (train_limit)")
    x_test, y_test = stratified_subset(data.x_test, data.y_test, config.test_limit, config.seed,
                                       what="test subset (test_limit)")
    train, val = train_val_split(x, y, config.val_fraction, config.seed)
    return data, train, val, (x_test, y_test)


def training_datasets(config: Config, train: tuple[np.ndarray, np.ndarray],
                      val: tuple[np.ndarray, np.ndarray]
                      ) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    """The tf.data pipelines both phases train on: shuffled (seeded) training, ordered validation."""
    return (make_dataset(*train, config.batch_size, shuffle=True, seed=config.seed),
            make_dataset(*val, config.batch_size))
