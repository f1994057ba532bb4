"""One command to measure this course's speed on a GPU runtime (Colab or Kaggle T4), or any machine.

    python benchmarks/gpu_check.py --json gpu_check.json       # meant for ~10 min on a T4; untimed
    python benchmarks/gpu_check.py --tiny                       # checks that it runs: minutes on 2 cores

In Colab or Kaggle, after the set-up cell of any notebook:
    !git clone -q --branch main https://github.com/cifar10-transfer-course/resnet50-cifar10 course && \
        python course/benchmarks/gpu_check.py --json gpu_check.json

Measures, in one run: the environment (versions, devices, what `precision=auto` and
`fast_ops=auto` resolve to); phase-2 images/s of the `seed` recipe (float32, batch 32) and of the
`fast` profile with its fast operations on and off, at 32, 64 and 128 px; the feature-extraction
rate of phase 1's cache; and a quick study end to end. Each rate is the median of --repeats
timed epochs after a warm-up epoch (its seconds, graph building and any XLA compilation
included, are kept too), with CPU-seconds per wall-second beside it, and whether Keras compiled
the step with XLA (it does by default on a GPU without a distribution strategy; the study
mirrors over two or more GPUs, and then does not). Prints a Markdown table to paste into an
issue, the devices the quick study used and the check's own total time, and writes everything as
JSON with --json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from arguments import at_least  # noqa: E402  (this folder is on sys.path)
from benchmark import RAW, median_time, synthetic  # noqa: E402

from cifar_helpers.config import load_config  # noqa: E402
from cifar_helpers.data import make_dataset  # noqa: E402
from cifar_helpers.fast_ops import resolve_fast_ops  # noqa: E402
from cifar_helpers.model import build_model_for, unfreeze_base  # noqa: E402
from cifar_helpers.speed import dtype_policy, feature_extractor, resolve_precision  # noqa: E402
from cifar_helpers.training import compile_model  # noqa: E402

RECIPES = {  # name -> settings over the seed profile
    "seed": {},
    "fast, fast ops on": {"precision": "auto", "batch_size": 128, "fast_ops": "on"},
    "fast, fast ops off": {"precision": "auto", "batch_size": 128, "fast_ops": "off"},
}


def environment() -> dict:
    """Versions, devices, and what the 'auto' settings resolve to here."""
    gpus = tf.config.list_physical_devices("GPU")
    names = [tf.config.experimental.get_device_details(g).get("device_name", g.name) for g in gpus]
    return {"python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "platform": platform.platform(), "cpus": os.cpu_count(),
            "gpus": names, "precision_auto": resolve_precision("auto"),
            "fast_ops_auto": resolve_fast_ops("auto")}


def timed(run, repeats: int, label: str) -> dict:
    """Median wall seconds of `run()` and the CPU-seconds per wall-second of each call
    (benchmark.median_time, which keeps every call's figures in RAW)."""
    seconds = median_time(run, repeats, label)
    return {"seconds": seconds, "cpu_seconds_per_second": RAW[-1]["cpu_seconds_per_second"]}


def phase2_rate(settings: dict, size: int, images: int, repeats: int) -> dict:
    """Phase-2 images/s of one recipe at one input size (random weights: speed only)."""
    config = load_config("seed", environ={}, weights="none", image_size=size, **settings)
    precision = resolve_precision(config.precision)
    keras.backend.clear_session()
    with dtype_policy(precision):
        model = build_model_for(config, None)
    unfreeze_base(model)
    compile_model(model, config.lr_finetune, fused_adam=resolve_fast_ops(config.fast_ops))
    data = make_dataset(*synthetic(images), config.batch_size, shuffle=True, seed=0)
    start = time.perf_counter()
    model.fit(data, epochs=1, verbose=0, shuffle=False)  # warm-up: builds the training graph
    warm_up = time.perf_counter() - start
    result = timed(lambda: model.fit(data, epochs=1, verbose=0, shuffle=False), repeats,
                   f"phase 2 {settings} @ {size}px")
    return {"images_per_second": round(images / result["seconds"], 1), "precision": precision,
            "batch_size": config.batch_size, "xla": bool(model.jit_compile),
            "first_epoch_seconds": round(warm_up, 2), **result}


def feature_rate(images: int, repeats: int) -> dict:
    """Images/s of phase 1's feature extraction (the `fast` profile's cache), 32 px."""
    config = load_config("fast", environ={}, weights="none")
    precision = resolve_precision(config.precision)
    keras.backend.clear_session()
    with dtype_policy(precision):
        extractor = feature_extractor(build_model_for(config, None))
    data = make_dataset(synthetic(images)[0], None, 256)
    extractor.predict(data, verbose=0)
    result = timed(lambda: extractor.predict(data, verbose=0), repeats, "feature extraction")
    return {"images_per_second": round(images / result["seconds"], 1), "precision": precision,
            **result}


def quick_study(train_limit: int) -> dict:
    """The quick profile end to end (shipped sample, random weights): seconds and accuracy."""
    from cifar_helpers.study import run_study

    with tempfile.TemporaryDirectory() as out:
        config = load_config("quick", environ={}, out=out, train_limit=train_limit)
        start = time.perf_counter()
        metrics = run_study(config, log=lambda text: None, verbose=0)
    return {"seconds": round(time.perf_counter() - start, 1),
            "test_accuracy": metrics["test_accuracy"], "precision": metrics["precision"],
            "devices": metrics["devices"]}


def measure(args) -> dict:
    """Every figure, in one run, and how long the check took."""
    start = time.perf_counter()
    phase2 = {f"{recipe} @ {size}px": phase2_rate(settings, size, args.images, args.repeats)
              for size in args.sizes for recipe, settings in RECIPES.items()}
    results = {"environment": environment(), "images": args.images, "repeats": args.repeats,
               "phase2": phase2, "feature_extraction": feature_rate(args.images, args.repeats),
               "quick_study": quick_study(args.quick_train_limit)}
    return {**results, "total_seconds": round(time.perf_counter() - start, 1)}


def table(results: dict) -> str:
    """The figures as a Markdown table, with the environment on top."""
    env = results["environment"]
    lines = [f"GPUs: {', '.join(env['gpus']) or 'none'}; TensorFlow {env['tensorflow']}, Keras "
             f"{env['keras']}; precision auto: {env['precision_auto']}; fast ops auto: "
             f"{'on' if env['fast_ops_auto'] else 'off'}", "",
             "| measurement | images/s | precision | batch | XLA | first epoch s | CPU-s per s |",
             "|---|---|---|---|---|---|---|"]
    rows = {**{f"phase 2, {name}": r for name, r in results["phase2"].items()},
            "phase-1 feature extraction, fast @ 32px": results["feature_extraction"]}
    for name, r in rows.items():
        busy = ", ".join(map(str, r["cpu_seconds_per_second"]))
        lines.append(f"| {name} | {r['images_per_second']} | {r['precision']} | "
                     f"{r.get('batch_size', 256)} | {r.get('xla', '')} | "
                     f"{r.get('first_epoch_seconds', '')} | {busy} |")
    quick, devices = results["quick_study"], results["quick_study"]["devices"]
    lines.append(f"\nQuick study end to end: {quick['seconds']} s ({quick['precision']}; "
                 f"{devices['strategy']}, {devices['replicas']} replica(s)).")
    lines.append(f"The whole check took {results['total_seconds']} s.")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=at_least(1), default=2048, help="images per timed epoch")
    parser.add_argument("--sizes", type=lambda s: [at_least(32)(v) for v in s.split(",")],
                        default=[32, 64, 128], help="input sizes in pixels, e.g. 32,64,128")
    parser.add_argument("--repeats", type=at_least(1), default=3)
    parser.add_argument("--quick-train-limit", type=at_least(1), default=300)
    parser.add_argument("--tiny", action="store_true",
                        help="the smallest run that checks the script works (tests); "
                        "minutes on 2 CPU cores")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    if args.tiny:
        args.images, args.sizes, args.repeats, args.quick_train_limit = 32, [32], 1, 100
    results = measure(args)
    print(table(results))
    if args.json:
        with open(args.json, "w") as handle:
            handle.write(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
