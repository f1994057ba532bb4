"""Seconds lost at each epoch start by tf.data's autotuning, and that `make_dataset` loses none.

    python benchmarks/epoch_start_stall.py                     # epochs of about 1.5 s
    python benchmarks/epoch_start_stall.py --step-seconds 0.4  # epochs of about 6 s

Keras `fit` reads each epoch through a new iterator and drops the last one. With autotuning on
(tf.data's default), dropping it waits until autotune's background thread wakes up; that thread
sleeps for a period that doubles while the epoch runs (1 ms, 2 ms, ... up to 60 s), so the wait
grows with the epoch's length. Here an "epoch" reads every batch of `make_dataset`'s pipeline and
sleeps `--step-seconds` per batch in place of training; the stall is the time from the end of one
epoch to the first batch of the next. No CPU is used while waiting. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from arguments import at_least  # noqa: E402
from benchmark import synthetic  # noqa: E402
from cifar_helpers.data import make_dataset  # noqa: E402


def stalls(ds, epochs: int, step_seconds: float) -> list[float]:
    """Seconds from the end of each epoch to the first batch of the next."""
    iterator, lost = iter(ds), []
    for _ in range(epochs):
        for _ in iterator:
            time.sleep(step_seconds)
        start = time.perf_counter()
        iterator = iter(ds)  # the old iterator is dropped here, as `fit` drops it
        next(iterator)
        lost.append(time.perf_counter() - start)
    return lost


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=at_least(1), default=1920)
    parser.add_argument("--batch-size", type=at_least(1), default=128)
    parser.add_argument("--epochs", type=at_least(1), default=8)
    parser.add_argument("--step-seconds", type=float, default=0.1)
    args = parser.parse_args(argv)
    x, y = synthetic(args.images)
    ours = make_dataset(x, y, args.batch_size, shuffle=True)
    options = tf.data.Options()
    options.autotune.enabled = True
    autotuned = ours.with_options(options)
    results = {}
    for name, ds in (("autotune on (tf.data's default)", autotuned), ("make_dataset", ours)):
        lost = stalls(ds, args.epochs, args.step_seconds)
        results[name] = {"median_s": round(statistics.median(lost), 3),
                         "max_s": round(max(lost), 3), "each_s": [round(s, 3) for s in lost]}
    epoch = -(-args.images // args.batch_size) * args.step_seconds  # the last batch may be short
    print(json.dumps({"epoch_seconds": round(epoch, 2), **results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
