"""Speed of the naive seed-style path versus this repo's path, measured in one run on this machine.

    python benchmarks/benchmark.py                 # full CIFAR-10 size: 50,000 synthetic images
    python benchmarks/benchmark.py --images 5000   # a shorter run
    ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/benchmark.py   # as on a CPU without bf16 (laptops)

Prints (and writes as JSON with --json) the machine's matmul peak in float32 (and in bfloat16
where the CPU has it natively), and for phase 1 and phase 2 the images/s and effective GFLOP/s of
(a) the naive Keras `fit` on NumPy arrays (float32, batch 32, as in the seed) and (b) the `fast`
profile's path, with their ratios. Effective FLOPs of a training image = 3 x forward FLOPs
(ResNet50 at 32x32: 78.7 M multiply-adds forward).
Each figure is the median of --repeats measurements. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from arguments import at_least  # noqa: E402
from cifar_helpers.config import load_config  # noqa: E402
from cifar_helpers.data import make_dataset  # noqa: E402
from cifar_helpers.model import build_model, build_model_for, freeze_base, unfreeze_base  # noqa: E402
from cifar_helpers.speed import dtype_policy, resolve_precision  # noqa: E402
from cifar_helpers.training import compile_model, train_head_on_cached_features  # noqa: E402

FORWARD_FLOPS = 2 * 78.7e6  # one multiply-add = 2 FLOPs
TRAIN_FLOPS = 3 * FORWARD_FLOPS


RAW: list[dict] = []  # every measurement, so a reader can see the machine's noise


def median_time(run, repeats: int, label: str = "") -> float:
    """Median wall time of `run()` over `repeats` calls (after the caller has warmed it up).

    Also records each call's wall time and its CPU time per wall second: on a shared 2-core VM a
    low figure (well under 2) means the process was kept waiting, not that the code got slower.
    """
    times, busy = [], []
    for _ in range(repeats):
        cpu, start = time.process_time(), time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
        busy.append((time.process_time() - cpu) / times[-1])
    RAW.append({"what": label, "seconds": [round(t, 2) for t in times],
                "cpu_seconds_per_second": [round(b, 2) for b in busy]})
    return statistics.median(times)


def matmul_peak(dtype, repeats: int, n: int = 2048, reps: int = 10) -> float:
    """GFLOP/s of large square matmuls in `dtype` (the machine's practical peak)."""
    a = tf.cast(tf.random.normal((n, n)), dtype)
    b = tf.cast(tf.random.normal((n, n)), dtype)
    step = tf.function(lambda: tf.reduce_sum(tf.cast(tf.matmul(a, b), tf.float32)))
    step().numpy()

    def run():
        for _ in range(reps):
            result = step()
        result.numpy()
    return 2 * n**3 * reps / median_time(run, repeats, f"matmul {dtype.name}") / 1e9


def synthetic(images: int, seed: int = 0):
    """CIFAR-shaped random images and labels."""
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (images, 32, 32, 3), dtype=np.uint8),
            rng.integers(0, 10, images))


def naive_epoch_seconds(model, x, y, repeats: int, label: str) -> float:
    """Seed style: `fit` on NumPy float32 arrays, batch 32, one epoch per measurement."""
    x32, onehot = x.astype("float32"), keras.utils.to_categorical(y, 10)
    model.fit(x32, onehot, batch_size=32, epochs=1, verbose=0)  # warm-up epoch: tracing
    return median_time(lambda: model.fit(x32, onehot, batch_size=32, epochs=1, verbose=0),
                       repeats, label)


def fast_phase2_model(precision: str, fast_ops: bool = True, fused_adam: bool | None = None):
    """Our phase-2 model: mixed precision where the hardware has it, matmul convolutions and
    fused Adam (`fast_ops`; `fused_adam`, when given, sets the optimizer alone), unfrozen but
    BatchNorm, compiled at the phase-2 learning rate."""
    config = fast_config(precision=precision, fast_ops="on" if fast_ops else "off")
    with dtype_policy(precision):
        model = build_model_for(config, None)
    unfreeze_base(model)
    fused_adam = fast_ops if fused_adam is None else fused_adam
    compile_model(model, config.lr_finetune, fused_adam=fused_adam)
    return model


def fast_phase2_epoch_seconds(x, y, batch_size: int, precision: str, repeats: int,
                              fast_ops: bool = True) -> float:
    """Our phase 2: `fast_phase2_model` fed by a tf.data pipeline of `batch_size` batches."""
    model = fast_phase2_model(precision, fast_ops)
    data = make_dataset(x, y, batch_size, shuffle=True, seed=0)
    model.fit(data, epochs=1, verbose=0)  # warm-up epoch: tracing, including the last short batch
    label = f"phase 2 ours, batch {batch_size}, {precision}, fast_ops={fast_ops}, one epoch"
    return median_time(lambda: model.fit(data, epochs=1, verbose=0), repeats, label)


def fast_phase1_seconds(x, y, precision: str, epochs: int, repeats: int) -> float:
    """Our phase 1 for `epochs` epochs: features computed once (fresh cache), then the head."""
    config = fast_config(epochs_head=epochs, precision=precision)
    split = len(y) * 9 // 10
    with dtype_policy(precision):
        model = build_model_for(config, None)

    def run():
        with tempfile.TemporaryDirectory() as cache:
            train_head_on_cached_features(model, (x[:split], y[:split]), (x[split:], y[split:]),
                                          config, verbose=0, cache_dir=cache)
    run()  # warm-up
    return median_time(run, repeats, f"phase 1 ours, {epochs} epochs")


def fast_config(**overrides):
    """The fast profile without pretrained weights (the benchmark measures speed, not accuracy)."""
    return load_config("fast", environ={}, weights="none", **overrides)


def naive_model(phase: str):
    """The seed's float32 model, frozen (phase 1) or unfrozen (phase 2), compiled."""
    model = build_model(weights=None)
    (freeze_base if phase == "head" else unfreeze_base)(model)
    compile_model(model, 1e-3 if phase == "head" else 1e-5)
    return model


def rates(images_per_second: float, peak: float) -> dict:
    """Images/s, effective GFLOP/s and its share of the matmul peak."""
    gflops = images_per_second * TRAIN_FLOPS / 1e9
    return {"images_per_second": round(images_per_second, 1), "effective_gflops": round(gflops, 1),
            "share_of_peak": round(gflops / peak, 3)}


def measure_phase2(x, y, args, precision: str, peaks: dict) -> dict:
    """Phase-2 images/s: naive, ours without fast_ops, ours; per-step cost does not depend on
    the dataset size, so this runs on the first --phase2-images images."""
    x, y = x[:args.phase2_images or None], y[:args.phase2_images or None]
    fast_peak = peaks["bfloat16" if "bfloat16" in precision else "float32"]
    naive = len(y) / naive_epoch_seconds(naive_model("finetune"), x, y, args.repeats,
                                           "phase 2 naive, one epoch")
    plain = len(y) / fast_phase2_epoch_seconds(x, y, args.batch_size, precision, args.repeats,
                                               fast_ops=False)
    fast = len(y) / fast_phase2_epoch_seconds(x, y, args.batch_size, precision, args.repeats)
    by_batch = {b: round(len(y) / fast_phase2_epoch_seconds(x, y, b, precision, args.repeats), 1)
                for b in args.try_batch_sizes}
    return {"images": len(y), "naive": rates(naive, peaks["float32"]),
            "fast_without_fast_ops": rates(plain, fast_peak),
            "fast": {**rates(fast, fast_peak), "batch_size": args.batch_size},
            "speedup": round(fast / naive, 2),
            "fast_images_per_second_by_batch_size": by_batch}


def measure(args) -> dict:
    """Every figure of the benchmark, in one run."""
    precision = resolve_precision("auto")
    peaks = {"float32": matmul_peak(tf.float32, args.repeats)}
    if "bfloat16" in precision:  # under an ISA cap without bf16, oneDNN aborts the process on it
        peaks["bfloat16"] = matmul_peak(tf.bfloat16, args.repeats)
    x, y = synthetic(args.images)
    naive1 = args.epochs * naive_epoch_seconds(naive_model("head"), x, y, args.repeats,
                                                 "phase 1 naive, one epoch")
    fast1 = fast_phase1_seconds(x, y, precision, args.epochs, args.repeats)
    return {
        "images": args.images, "repeats": args.repeats, "precision": precision,
        "matmul_peak_gflops": {k: round(v, 1) for k, v in peaks.items()},
        "phase1": {"epochs": args.epochs, "naive_seconds": round(naive1, 1),
                   "fast_seconds": round(fast1, 1), "speedup": round(naive1 / fast1, 2)},
        "phase2": measure_phase2(x, y, args, precision, peaks),
        "raw": RAW,
        "machine": {"cpus": os.cpu_count(), "tensorflow": tf.__version__,
                    "keras": keras.__version__,
                    "gpus": len(tf.config.list_physical_devices("GPU")),
                    "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA")},
    }


def print_and_save(results: dict, path: str | None) -> None:
    """Print the results as JSON, and write them to `path` when one is given."""
    text = json.dumps(results, indent=2)
    print(text)
    if path:
        with open(path, "w") as handle:
            handle.write(text + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=at_least(1), default=50_000)
    parser.add_argument("--epochs", type=at_least(1), default=10, help="phase-1 epochs compared")
    parser.add_argument("--phase2-images", type=at_least(0), default=5_000,
                        help="images per phase-2 epoch measured (0: all)")
    parser.add_argument("--repeats", type=at_least(1), default=3)
    parser.add_argument("--batch-size", type=at_least(1),
                        default=load_config("fast", environ={}).batch_size)
    parser.add_argument("--try-batch-sizes", type=lambda s: [int(v) for v in s.split(",") if v],
                        default=[], help="e.g. 64,128,256: phase-2 images/s of each batch size")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    results = measure(args)
    print_and_save(results, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
