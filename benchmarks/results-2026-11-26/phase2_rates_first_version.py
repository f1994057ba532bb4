"""One run under the ISA cap: f32 peak; naive phase-2; fast float32 phase-2 by batch size, fast_ops on/off."""
import sys, os, json
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import benchmark as b, tensorflow as tf
images = int(os.environ.get("IMAGES", "2560"))
x, y = b.synthetic(images)
out = {"isa_cap": os.environ.get("ONEDNN_MAX_CPU_ISA"), "peak_f32": b.matmul_peak(tf.float32, 3)}
out["naive_ips"] = images / b.naive_epoch_seconds(b.naive_model("finetune"), x, y, 3, "naive")
for bs in (64, 128, 256):
    out[f"fast_{bs}"] = images / b.fast_phase2_epoch_seconds(x, y, bs, "float32", 3)
out["fast_128_no_fast_ops"] = images / b.fast_phase2_epoch_seconds(x, y, 128, "float32", 3, fast_ops=False)
out["fast_32"] = images / b.fast_phase2_epoch_seconds(x, y, 32, "float32", 3)
for k in list(out):
    if k.startswith(("naive", "fast")):
        out[k] = round(out[k], 1); out[k.replace("ips", "") + "_share"] = round(out[k] * b.TRAIN_FLOPS / 1e9 / out["peak_f32"], 3)
out["raw"] = b.RAW
print(json.dumps(out))
