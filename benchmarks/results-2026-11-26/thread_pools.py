"""Ad-hoc: `fast` phase-2 epochs (bf16, batch 128) with given TensorFlow thread pools.

    cd benchmarks && PYTHONPATH=..:. python results-2026-11-26/thread_pools.py INTER INTRA
    # 0 = TensorFlow's default
"""
import json
import sys

import tensorflow as tf

inter, intra = map(int, sys.argv[1:3])
tf.config.threading.set_inter_op_parallelism_threads(inter)
tf.config.threading.set_intra_op_parallelism_threads(intra)

from benchmark import RAW, fast_phase2_epoch_seconds, synthetic  # noqa: E402
from cifar_helpers.speed import resolve_precision  # noqa: E402

IMAGES = 3840
images, labels = synthetic(IMAGES)
seconds = fast_phase2_epoch_seconds(images, labels, 128, resolve_precision("auto"), repeats=3)
print(json.dumps({"inter_op": inter, "intra_op": intra, "images_per_second": round(IMAGES / seconds, 1),
                  "raw": RAW}))
