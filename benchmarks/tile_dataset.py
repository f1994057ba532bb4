"""Make a full-size (50,000 training images) CIFAR-10 folder by repeating a smaller real one.

    python benchmarks/tile_dataset.py ../shared/data/cifar-10-batches-py /tmp/cifar50k --copies 10

For timing the whole 10 + 10 recipe at full CIFAR-10 size where only a subset is at hand (offline):
the time per epoch depends on the number of images, not on which images they are. Accuracy
measured on repeated images means nothing; the test batch is tiled the same number of times.
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

import numpy as np

from arguments import at_least
from cifar_helpers.data import TRAIN_BATCHES, batch_dict, load_batches_dir, meta_dict


def write_pickle(path: Path, content: dict) -> None:
    """One file of the layout, pickled as the CIFAR-10 loaders expect."""
    path.write_bytes(pickle.dumps(content, protocol=3))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="a cifar-10-batches-py folder")
    parser.add_argument("destination", help="folder to create; gets cifar-10-batches-py inside")
    parser.add_argument("--copies", type=at_least(1), default=10)
    args = parser.parse_args(argv)
    data = load_batches_dir(args.source)
    images = np.tile(data.x_train, (args.copies, 1, 1, 1))
    labels = np.tile(data.y_train, args.copies)
    folder = Path(args.destination) / "cifar-10-batches-py"
    if folder.exists():
        parser.error(f"{folder} exists already: choose a new destination")
    folder.mkdir(parents=True)
    per_batch = len(labels) // len(TRAIN_BATCHES)
    for i, name in enumerate(TRAIN_BATCHES):
        chunk = slice(i * per_batch, (i + 1) * per_batch)
        write_pickle(folder / name, batch_dict(images[chunk], labels[chunk], name))
    write_pickle(folder / "test_batch", batch_dict(np.tile(data.x_test, (args.copies, 1, 1, 1)),
                                                   np.tile(data.y_test, args.copies), "test"))
    write_pickle(folder / "batches.meta", meta_dict(data.class_names, per_batch))
    print(f"{folder}: {len(labels)} training and {len(data.y_test) * args.copies} test images "
          f"({args.copies} copies of each)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
