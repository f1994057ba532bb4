"""One run: bf16 peak; phase-2 `fast` images/s at batch 128 and 256, repeats interleaved.

    cd benchmarks && PYTHONPATH=..:. python results-2026-11-26/batch_128_256.py
"""
import os, json, statistics
import benchmark as b, tensorflow as tf
from cifar_helpers.data import make_dataset
images = int(os.environ.get("IMAGES", "7680"))
x, y = b.synthetic(images)
out = {"peak": b.matmul_peak(tf.bfloat16, 3)}
models = {}
for bs in (128, 256):
    m = b.fast_phase2_model("mixed_bfloat16", True)
    d = make_dataset(x, y, bs, shuffle=True, seed=0)
    m.fit(d, epochs=1, verbose=0)
    models[bs] = (m, d)
for rep in range(3):
    for name, (m, d) in models.items():
        b.median_time(lambda: m.fit(d, epochs=1, verbose=0), 1, str(name))
for name in models:
    secs = [r["seconds"][0] for r in b.RAW if r["what"] == str(name)]
    ips = images / statistics.median(secs)
    out[name] = {"ips": round(ips, 1), "share": round(ips * b.TRAIN_FLOPS / 1e9 / out["peak"], 3),
                 "each": [(r["seconds"][0], r["cpu_seconds_per_second"][0]) for r in b.RAW if r["what"] == str(name)]}
print(json.dumps(out))
