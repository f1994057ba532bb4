"""Write CIFAR-10 files in the canonical layout, valid or deliberately broken, for the tests."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from cifar_helpers.data import CLASS_NAMES, TRAIN_BATCHES, batch_dict, meta_dict

__all__ = ["RunsCode", "batch_dict", "write_batches", "write_canonical_dir", "write_pickle"]


def write_pickle(path: Path, obj, protocol: int = 3) -> Path:
    """Protocol 3, like the shared subset (the original release is a Python 2 pickle)."""
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


def write_batches(folder: Path, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                  y_test: np.ndarray) -> Path:
    """A cifar-10-batches-py folder holding these arrays, the training set split over 5 batches."""
    folder.mkdir(parents=True)
    parts = np.array_split(np.arange(len(y_train)), len(TRAIN_BATCHES))
    for name, part in zip(TRAIN_BATCHES, parts):
        write_pickle(folder / name, batch_dict(x_train[part], y_train[part], name))
    write_pickle(folder / "test_batch", batch_dict(x_test, y_test, "test_batch"))
    write_pickle(folder / "batches.meta", meta_dict(CLASS_NAMES, len(parts[0])))
    return folder


def write_canonical_dir(root: Path, per_batch: int = 20, seed: int = 0) -> tuple[Path, dict]:
    """A complete cifar-10-batches-py folder with random images; returns it and the arrays."""
    rng = np.random.default_rng(seed)
    arrays = {name: (rng.integers(0, 256, size=(per_batch, 32, 32, 3), dtype=np.uint8),
                     rng.integers(0, 10, size=per_batch))
              for name in TRAIN_BATCHES + ("test_batch",)}
    train = [arrays[name] for name in TRAIN_BATCHES]
    folder = write_batches(root / "cifar-10-batches-py", np.concatenate([x for x, _ in train]),
                           np.concatenate([y for _, y in train]), *arrays["test_batch"])
    return folder, arrays


class RunsCode:
    """Pickles to a call of os.system: what a malicious 'dataset' would contain."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        import os
        return (os.system, (f"touch {self.marker}",))
