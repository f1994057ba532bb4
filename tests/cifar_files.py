"""Write CIFAR-10 files in the canonical layout, valid or deliberately broken, for the tests."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from cifar_helpers.data import CLASS_NAMES, TRAIN_BATCHES, batch_dict, meta_dict

__all__ = ["RunsCode", "batch_dict", "write_canonical_dir", "write_pickle"]


def write_pickle(path: Path, obj, protocol: int = 3) -> Path:
    """Protocol 3, like the shared subset (the original release is a Python 2 pickle)."""
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


def write_canonical_dir(root: Path, per_batch: int = 20, seed: int = 0) -> tuple[Path, dict]:
    """A complete cifar-10-batches-py folder with random images; returns it and the arrays."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    arrays = {}
    for name in TRAIN_BATCHES + ("test_batch",):
        images = rng.integers(0, 256, size=(per_batch, 32, 32, 3), dtype=np.uint8)
        labels = rng.integers(0, 10, size=per_batch)
        write_pickle(folder / name, batch_dict(images, labels, name))
        arrays[name] = (images, labels)
    write_pickle(folder / "batches.meta", meta_dict(CLASS_NAMES, per_batch))
    return folder, arrays


class RunsCode:
    """Pickles to a call of os.system: what a malicious 'dataset' would contain."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        import os
        return (os.system, (f"touch {self.marker}",))
