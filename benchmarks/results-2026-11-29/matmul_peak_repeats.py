"""Is the bfloat16 matmul peak steady? n x n matmuls, `reps` per timing, three timings each.

    python matmul_peak_repeats.py
Prints GFLOP/s, the process's CPU-seconds per wall-second and the machine's steal jiffies
(/proc/stat) during each timing. Second session of 2026-11-29: what ran, with its names tidied
afterwards (same matrices, timings and prints). `benchmark.matmul_peak` is the same product,
timed without the steal count.
"""
import time

import tensorflow as tf


def steal_jiffies() -> int:
    return int(open("/proc/stat").readline().split()[8])


for n, reps in ((2048, 10), (4096, 10), (2048, 50)):
    a = tf.cast(tf.random.normal((n, n)), tf.bfloat16)
    b = tf.cast(tf.random.normal((n, n)), tf.bfloat16)
    product = tf.function(lambda: tf.reduce_sum(tf.cast(tf.matmul(a, b), tf.float32)))
    product().numpy()
    for _ in range(3):
        steal, cpu, start = steal_jiffies(), time.process_time(), time.perf_counter()
        for _ in range(reps):
            result = product()
        result.numpy()
        wall = time.perf_counter() - start
        print(n, reps, "bfloat16", round(2 * n**3 * reps / wall / 1e9, 1), "s", round(wall, 2),
              "cpu/wall", round((time.process_time() - cpu) / wall, 2),
              "steal", steal_jiffies() - steal, flush=True)
