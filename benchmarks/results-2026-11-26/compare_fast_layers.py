"""One run: matmul peak; phase-2 `fast` images/s with the fused frozen BatchNorm, the padded
strided-slice gradient and the matmul gather gradient on and off (`before`: none), interleaved.

    cd benchmarks && PYTHONPATH=..:. python results-2026-11-26/compare_fast_layers.py
    (env: PRECISION=mixed_bfloat16|float32, VARIANTS=all,both,bn_only,pad_only,before, IMAGES,
    BS, REPEATS; the first runs, before `all` existed, had only the last four)
"""
import os, json, statistics
import benchmark as b, tensorflow as tf, keras
from cifar_helpers import fast_ops
from cifar_helpers.data import make_dataset
precision = os.environ.get("PRECISION", "mixed_bfloat16")
images = int(os.environ.get("IMAGES", "3840")); bs = int(os.environ.get("BS", "128"))
x, y = b.synthetic(images)
new_subsample, new_gather = fast_ops.every_nth_pixel, fast_ops.gather_rows
def old_subsample(inputs, r, c):
    return inputs[:, ::r, ::c, :]
def old_gather(matrix, rows):
    return keras.ops.take(matrix, rows, axis=0)
all_fast = dict(fast_ops.FAST_LAYERS)
convs_only = {keras.layers.Conv2D: fast_ops.MatmulConv2D}
variants = {"all": (new_subsample, new_gather, all_fast),  # the code as committed
            "both": (new_subsample, old_gather, all_fast),  # fused BatchNorm and padding only
            "bn_only": (old_subsample, old_gather, all_fast),
            "pad_only": (new_subsample, old_gather, convs_only),
            "before": (old_subsample, old_gather, convs_only)}  # the code before all three
chosen = os.environ.get("VARIANTS", ",".join(variants)).split(",")
out = {"peak": b.matmul_peak(tf.bfloat16 if "bfloat16" in precision else tf.float32, 3)}
models = {}
for name in chosen:
    fast_ops.every_nth_pixel, fast_ops.gather_rows, layers = variants[name]
    fast_ops.FAST_LAYERS.clear(); fast_ops.FAST_LAYERS.update(layers)
    m = b.fast_phase2_model(precision, True)
    d = make_dataset(x, y, bs, shuffle=True, seed=0)
    m.fit(d, epochs=1, verbose=0)
    models[name] = (m, d)
for rep in range(int(os.environ.get("REPEATS", "3"))):
    for name, (m, d) in models.items():
        b.median_time(lambda: m.fit(d, epochs=1, verbose=0), 1, name)
for name in models:
    secs = [r["seconds"][0] for r in b.RAW if r["what"] == name]
    ips = images / statistics.median(secs)
    out[name] = {"ips": round(ips, 1), "share": round(ips * b.TRAIN_FLOPS / 1e9 / out["peak"], 3),
                 "each": [(r["seconds"][0], r["cpu_seconds_per_second"][0]) for r in b.RAW if r["what"] == name]}
print(json.dumps(out))
