"""Where a phase-2 training step spends its time on a CPU: oneDNN primitives and TensorFlow ops.

    python benchmarks/profile_phase2.py                 # the fast profile's phase 2
    python benchmarks/profile_phase2.py --no-fast-ops   # the same without matmul convs / fused Adam

Runs a few training steps twice in child processes: once with ONEDNN_VERBOSE=profile_exec (time
of every convolution, matmul and reorder, by kind and by feature-map size) and once under the
TensorFlow profiler (time of every op, including the elementwise ones oneDNN does not run).
Timings under either tool are inflated by it; read them as shares. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import re
import subprocess
import sys
import tempfile
import time

from arguments import at_least

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
MARK = "@@measured-steps"


def child(args) -> None:
    """Build, warm up, then run `--steps` phase-2 steps (under the profiler when asked)."""
    import tensorflow as tf
    from benchmark import fast_phase2_model, synthetic  # this folder is on sys.path

    from cifar_helpers.data import make_dataset
    from cifar_helpers.speed import resolve_precision

    model = fast_phase2_model(resolve_precision("auto"), args.fast_ops)
    images, labels = synthetic(args.batch_size * args.steps)
    data = make_dataset(images, labels, args.batch_size).cache()
    model.fit(data, verbose=0)
    print(MARK, flush=True)
    if args.trace_dir:
        tf.profiler.experimental.start(args.trace_dir)
    start = time.perf_counter()
    model.fit(data, verbose=0)
    step_ms = 1000 * (time.perf_counter() - start) / args.steps
    print(f"{MARK} wall {step_ms:.1f} ms/step", flush=True)
    if args.trace_dir:
        tf.profiler.experimental.stop()


def run_child(args, extra_env: dict, trace_dir: str = "") -> str:
    """This script as a child process; returns what it printed."""
    command = [sys.executable, __file__, "--child", "--steps", str(args.steps),
               "--batch-size", str(args.batch_size),
               "--fast-ops" if args.fast_ops else "--no-fast-ops"]
    if trace_dir:
        command += ["--trace-dir", trace_dir]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **extra_env}
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"the profiled child process failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


def onednn_table(output: str, steps: int) -> str:
    """ms per step of each oneDNN primitive kind, and of convolutions by input size and kernel."""
    kinds, convs = collections.Counter(), collections.Counter()
    for line in output.split(MARK)[1].splitlines():
        fields = line.split(",")
        if "primitive,exec" not in line or len(fields) < 10:
            continue
        kind, implementation, direction = fields[5], fields[6].split(":")[0], fields[7]
        milliseconds = float(fields[-1]) / steps
        kinds[f"{kind} {direction} ({implementation})"] += milliseconds
        size = re.search(r"ih(\d+).*kh(\d+)", fields[-2])
        if kind == "convolution" and size:
            convs[f"convolution {direction} on {size[1]}x{size[1]} maps, {size[2]}x{size[2]} "
                  "kernel"] += milliseconds
    lines = [f"oneDNN total {sum(kinds.values()):.1f} ms/step"]
    lines += [f"{ms:9.1f}  {name}" for name, ms in kinds.most_common(12)]
    lines += [f"{ms:9.1f}  {name}" for name, ms in convs.most_common(8)]
    return "\n".join(lines)


def tensorflow_table(trace_dir: str, steps: int) -> str:
    """ms per step of each TensorFlow op type, from the profiler's trace."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    with open(glob.glob(f"{trace_dir}/**/*.xplane.pb", recursive=True)[0], "rb") as handle:
        space.ParseFromString(handle.read())
    ops = collections.Counter()
    for plane in (p for p in space.planes if "host" in p.name.lower()):
        for line in (li for li in plane.lines if li.name.startswith("tf_Compute")):
            for event in line.events:
                op_type = plane.event_metadata[event.metadata_id].name.split(":")[-1]
                ops[op_type] += event.duration_ps / 1e9 / steps
    return "\n".join(f"{ms:9.1f}  {name}" for name, ms in ops.most_common(16) if name != "Process")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=at_least(1), default=6)
    parser.add_argument("--batch-size", type=at_least(1), default=128)
    parser.add_argument("--fast-ops", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--trace-dir", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return 0
    plain = run_child(args, {})
    print(plain.splitlines()[-1].replace(MARK, "without tools:"))
    print(onednn_table(run_child(args, {"ONEDNN_VERBOSE": "profile_exec"}), args.steps))
    with tempfile.TemporaryDirectory() as trace_dir:
        run_child(args, {}, trace_dir)
        print("TensorFlow ops, ms/step\n" + tensorflow_table(trace_dir, args.steps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
