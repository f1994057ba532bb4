"""Cut the shipped sample from a cifar-10-batches-py folder: 100 train + 20 test images per class.

Usage: python scripts/make_sample.py ../shared/data/cifar-10-batches-py
"""

import sys

import numpy as np

from cifar_helpers.data import SAMPLE_PATH, load_batches_dir, stratified_subset


def main(source: str) -> None:
    """Write a balanced, seeded sample to the package's sample_data folder."""
    data = load_batches_dir(source)
    x_train, y_train = stratified_subset(data.x_train, data.y_train, 1000, seed=0)
    x_test, y_test = stratified_subset(data.x_test, data.y_test, 200, seed=0)
    np.savez_compressed(SAMPLE_PATH, x_train=x_train, y_train=y_train.astype(np.uint8),
                        x_test=x_test, y_test=y_test.astype(np.uint8))
    print(f"{SAMPLE_PATH}: train {np.bincount(y_train)}, test {np.bincount(y_test)}")


if __name__ == "__main__":
    main(sys.argv[1])
