"""Phase-2 images/s in one run: naive seed style versus `fast` at several batch sizes.

    python benchmarks/phase2_rates.py                          # this CPU as it is
    ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/phase2_rates.py  # as a CPU without bf16 (laptops)

Shorter than `benchmark.py` (no phase 1): the float32 matmul peak (and the bfloat16 one where
`precision=auto` picks it), then one-epoch medians of --repeats for the naive `fit` (float32,
batch 32), `fast` at batch 64, 128 and 256, `fast` at 128 without the fast operations, and `fast`
at 32; each with its share of the peak. `raw` keeps every measurement with its CPU-seconds per
wall-second. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import sys

import tensorflow as tf

from arguments import at_least
from benchmark import (RAW, TRAIN_FLOPS, fast_phase2_epoch_seconds, matmul_peak,
                       naive_epoch_seconds, naive_model, print_and_save, synthetic)
from cifar_helpers.speed import resolve_precision


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=at_least(1), default=2560, help="images per measured epoch")
    parser.add_argument("--repeats", type=at_least(1), default=3)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    precision = resolve_precision("auto")
    x, y = synthetic(args.images)
    peaks = {"float32": matmul_peak(tf.float32, args.repeats)}
    if "bfloat16" in precision:
        peaks["bfloat16"] = matmul_peak(tf.bfloat16, args.repeats)
    fast_peak = peaks["bfloat16" if "bfloat16" in precision else "float32"]
    rates = {"naive": args.images / naive_epoch_seconds(naive_model("finetune"), x, y,
                                                        args.repeats, "naive")}
    for batch_size, fast_ops in ((64, True), (128, True), (256, True), (128, False), (32, True)):
        seconds = fast_phase2_epoch_seconds(x, y, batch_size, precision, args.repeats, fast_ops)
        rates[f"fast_{batch_size}" + ("" if fast_ops else "_without_fast_ops")] = (
            args.images / seconds)
    results = {"onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA"), "precision": precision,
               "matmul_peak_gflops": {k: round(v, 1) for k, v in peaks.items()},
               "images_per_second": {k: round(v, 1) for k, v in rates.items()},
               "share_of_peak": {  # the naive path is float32: its share is of that peak
                   k: round(v * TRAIN_FLOPS / 1e9 / (fast_peak if k != "naive" else
                                                     peaks["float32"]), 3)
                   for k, v in rates.items()},
               "raw": RAW}
    print_and_save(results, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
