"""One run: matmul peaks; phase-2 `fast` images/s with each part of `fast_ops` on and off, interleaved.

    cd benchmarks && PYTHONPATH=..:. python results-2026-11-29/compare_fast_parts.py
    (env: VARIANTS=all,no_matmul_conv,no_fused_bn,no_fused_adam,none, IMAGES, BS, REPEATS)

`all` is the code as committed (MatmulConv2D, FusedBatchNormalization, FusedAdam); each `no_*`
leaves one part to Keras/oneDNN; `none` is `fast_ops=off`. Same precision (`auto`) for all.
"""
import json
import os
import statistics

import benchmark as b
import keras
import tensorflow as tf

from cifar_helpers import fast_ops
from cifar_helpers.data import make_dataset
from cifar_helpers.speed import resolve_precision

precision = resolve_precision("auto")
images = int(os.environ.get("IMAGES", "3840"))
bs = int(os.environ.get("BS", "128"))
x, y = b.synthetic(images)
conv, bn = keras.layers.Conv2D, keras.layers.BatchNormalization
variants = {"all": ({conv: fast_ops.MatmulConv2D, bn: fast_ops.FusedBatchNormalization}, True),
            "no_matmul_conv": ({bn: fast_ops.FusedBatchNormalization}, True),
            "no_fused_bn": ({conv: fast_ops.MatmulConv2D}, True),
            "no_fused_adam": ({conv: fast_ops.MatmulConv2D, bn: fast_ops.FusedBatchNormalization},
                              False),
            "none": ({}, False)}
chosen = os.environ.get("VARIANTS", ",".join(variants)).split(",")
out = {"precision": precision, "peak_gflops": {
    "float32": round(b.matmul_peak(tf.float32, 3), 1),
    "bfloat16": round(b.matmul_peak(tf.bfloat16, 3), 1)}}
peak = out["peak_gflops"]["bfloat16" if "bfloat16" in precision else "float32"]
models = {}
for name in chosen:
    layers, fused_adam = variants[name]
    fast_ops.FAST_LAYERS.clear()
    fast_ops.FAST_LAYERS.update(layers)
    model = b.fast_phase2_model(precision, fused_adam=fused_adam)
    data = make_dataset(x, y, bs, shuffle=True, seed=0)
    model.fit(data, epochs=1, verbose=0)  # warm-up epoch: tracing
    models[name] = (model, data)
for _ in range(int(os.environ.get("REPEATS", "3"))):
    for name, (model, data) in models.items():
        b.median_time(lambda: model.fit(data, epochs=1, verbose=0), 1, name)
for name in models:
    runs = [r for r in b.RAW if r["what"] == name]
    rates = b.rates(images / statistics.median(r["seconds"][0] for r in runs), peak)
    out[name] = {"ips": rates["images_per_second"], "share": rates["share_of_peak"],
                 "each": [(r["seconds"][0], r["cpu_seconds_per_second"][0]) for r in runs]}
print(json.dumps(out))
