"""Cut the shipped sample from a cifar-10-batches-py folder: 1,000 train + 200 test images.

The shipped `cifar_helpers/sample_data/cifar10_sample.npz` was cut by this script from a balanced
CIFAR-10 subset of 5,000 training and 1,000 test images (1,000 per batch file), and this script
reproduces it byte for byte from that folder. The choice is seeded but depends on the source:
from the full CIFAR-10 it picks other images (the same counts per class).

Usage: python scripts/make_sample.py SOURCE_DIR [--out FILE]
"""

import argparse
from pathlib import Path

import numpy as np

from cifar_helpers.data import load_batches_dir, stratified_subset

# this checkout's copy, not the installed package's (which may be another checkout)
SHIPPED = (Path(__file__).resolve().parents[1] / "cifar_helpers" / "sample_data"
           / "cifar10_sample.npz")


def main(argv: list[str] | None = None) -> None:
    """Write a balanced, seeded sample (by default over this checkout's shipped one)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="a folder in the cifar-10-batches-py layout")
    parser.add_argument("--out", type=Path, default=SHIPPED, help=f"default: {SHIPPED}")
    args = parser.parse_args(argv)
    data = load_batches_dir(args.source)
    x_train, y_train = stratified_subset(data.x_train, data.y_train, 1000, seed=0)
    x_test, y_test = stratified_subset(data.x_test, data.y_test, 200, seed=0)
    np.savez_compressed(args.out, x_train=x_train, y_train=y_train.astype(np.uint8),
                        x_test=x_test, y_test=y_test.astype(np.uint8))
    print(f"{args.out}: train {np.bincount(y_train)}, test {np.bincount(y_test)}")


if __name__ == "__main__":
    main()
