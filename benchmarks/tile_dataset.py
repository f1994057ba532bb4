"""Make a full-size (50,000 training images) CIFAR-10 folder by repeating a smaller real one.

    python benchmarks/tile_dataset.py ../shared/data/cifar-10-batches-py /tmp/cifar50k --copies 10

For timing the whole 10 + 10 recipe at full CIFAR-10 size where only a subset is at hand (offline):
the time per epoch depends on the number of images, not on which images they are. Accuracy
measured on repeated images means nothing; the test batch is copied once, unchanged.
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

import numpy as np

from cifar_helpers.data import TRAIN_BATCHES, load_batches_dir


def write_batch(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """One batch file in the canonical layout (rows of 3,072 bytes, channel-major)."""
    data = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    batch = {b"batch_label": path.name.encode(), b"labels": labels.tolist(), b"data": data,
             b"filenames": [f"tiled_{i}.png".encode() for i in range(len(images))]}
    path.write_bytes(pickle.dumps(batch, protocol=3))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="a cifar-10-batches-py folder")
    parser.add_argument("destination", help="folder to create; gets cifar-10-batches-py inside")
    parser.add_argument("--copies", type=int, default=10)
    args = parser.parse_args(argv)
    data = load_batches_dir(args.source)
    images = np.tile(data.x_train, (args.copies, 1, 1, 1))
    labels = np.tile(data.y_train, args.copies)
    folder = Path(args.destination) / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    per_batch = len(labels) // len(TRAIN_BATCHES)
    for i, name in enumerate(TRAIN_BATCHES):
        chunk = slice(i * per_batch, (i + 1) * per_batch)
        write_batch(folder / name, images[chunk], labels[chunk])
    write_batch(folder / "test_batch", np.tile(data.x_test, (args.copies, 1, 1, 1)),
                np.tile(data.y_test, args.copies))
    meta = pickle.loads((Path(args.source) / "batches.meta").read_bytes())
    meta[b"num_cases_per_batch"] = per_batch
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=3))
    print(f"{folder}: {len(labels)} training and {len(data.y_test) * args.copies} test images "
          f"({args.copies} copies of each)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
