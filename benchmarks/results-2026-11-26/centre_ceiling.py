"""The most that skipping the dead taps could gain: the 3x3 convolutions on 1x1 maps
(conv5_block*_2_conv) built as 1x1 convolutions (only the centre tap's weights exist, so Adam, the
casts and the gradient never touch the other eight), against the code as committed; `fast`
bfloat16 phase-2 epochs of 3,840 synthetic images, batch 128, interleaved (random weights: speed only).

    cd benchmarks && PYTHONPATH=..:. python results-2026-11-26/centre_ceiling.py
"""
import os, json, statistics
import benchmark as b, tensorflow as tf, keras
from cifar_helpers import fast_ops
from cifar_helpers.data import make_dataset
images = int(os.environ.get("IMAGES", "3840")); bs = 128
x, y = b.synthetic(images)
orig_swap = fast_ops._swap_layers
def centre_swap(model, swaps):
    def clone(layer):
        kind = swaps.get(type(layer), type(layer))
        cfg = layer.get_config()
        if layer.name.startswith("conv5_block") and layer.name.endswith("_2_conv"):
            cfg["kernel_size"] = (1, 1)
        return kind.from_config(cfg)
    return keras.models.clone_model(model, clone_function=clone)
out = {"peak": b.matmul_peak(tf.bfloat16, 3)}
models = {}
for name, swap in (("all", orig_swap), ("centre", centre_swap)):
    fast_ops._swap_layers = swap
    m = b.fast_phase2_model("mixed_bfloat16", True)
    print(name, "trainable weights", sum(int(tf.size(v)) for v in m.trainable_variables))
    d = make_dataset(x, y, bs, shuffle=True, seed=0)
    m.fit(d, epochs=1, verbose=0)
    models[name] = (m, d)
for rep in range(int(os.environ.get("REPEATS", "4"))):
    for name, (m, d) in models.items():
        b.median_time(lambda: m.fit(d, epochs=1, verbose=0), 1, name)
for name in models:
    secs = [r["seconds"][0] for r in b.RAW if r["what"] == name]
    ips = images / statistics.median(secs)
    out[name] = {"ips": round(ips, 1), "share": round(ips * b.TRAIN_FLOPS / 1e9 / out["peak"], 3),
                 "each": [(r["seconds"][0], r["cpu_seconds_per_second"][0]) for r in b.RAW if r["what"] == name]}
print(json.dumps(out))
