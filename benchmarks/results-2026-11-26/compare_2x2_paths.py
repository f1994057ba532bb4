"""One run: bf16 peak; phase-2 fast images/s with the tap matmul vs without (old 2x2 path)."""
import sys, os, json
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import benchmark as b, tensorflow as tf, keras
from cifar_helpers import fast_ops
from cifar_helpers.data import make_dataset
precision = os.environ.get("PRECISION", "mixed_bfloat16")
images = int(os.environ.get("IMAGES", "3840")); bs = int(os.environ.get("BS", "128"))
x, y = b.synthetic(images)
new_op = fast_ops.MatmulConv2D.convolution_op
def old_op(self, inputs, kernel):
    if tuple(inputs.shape[1:3]) == (2, 2) and self.kernel_size == (3, 3):
        return keras.layers.Conv2D.convolution_op(self, inputs, kernel)
    return new_op(self, inputs, kernel)
out = {"peak": b.matmul_peak(tf.bfloat16 if "bfloat16" in precision else tf.float32, 3)}
models = {}
for name, op in (("tap", new_op), ("old", old_op)):
    fast_ops.MatmulConv2D.convolution_op = op
    m = b.fast_phase2_model(precision, True)
    d = make_dataset(x, y, bs, shuffle=True, seed=0)
    m.fit(d, epochs=1, verbose=0)
    models[name] = (m, d)
for rep in range(3):
    for name, (m, d) in models.items():
        b.median_time(lambda: m.fit(d, epochs=1, verbose=0), 1, name)
import statistics
for name in models:
    secs = [r["seconds"][0] for r in b.RAW if r["what"] == name]
    ips = images / statistics.median(secs)
    out[name] = {"ips": round(ips, 1), "share": round(ips * b.TRAIN_FLOPS / 1e9 / out["peak"], 3),
                 "each": [(r["seconds"][0], r["cpu_seconds_per_second"][0]) for r in b.RAW if r["what"] == name]}
print(json.dumps(out))
