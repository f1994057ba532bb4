"""A rejected idea, kept as it ran: 3x3 'same' convolutions on 4x4 and 8x8 maps as one matmul of
shifted windows (im2col) instead of oneDNN's convolution. Same sums (checked below against
tf.nn.conv2d, forward and both gradients); one training step of one layer (forward, input and
kernel gradients), batch 128, medians of 5 x 20 steps, ms per step.

    python im2col_vs_onednn.py                                  # bfloat16, the CPU's own ISA
    ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16 python im2col_vs_onednn.py   # bf16 without AMX
    DTYPE=float32 ONEDNN_MAX_CPU_ISA=AVX2 python im2col_vs_onednn.py # a laptop without bf16
"""
import os
import statistics
import time

import numpy as np
import tensorflow as tf


def shifted_windows(inputs, rows, cols):
    """(N, H, W, C) -> (N, H, W, rows * cols * C): each pixel's zero-padded neighbourhood."""
    height, width = inputs.shape[1:3]
    offsets = [(r, c) for r in range(rows) for c in range(cols)]

    @tf.custom_gradient
    def windows(inputs):
        padded = tf.pad(inputs, [[0, 0], [rows // 2] * 2, [cols // 2] * 2, [0, 0]])

        def gradient(upstream):
            chunks = tf.split(upstream, rows * cols, axis=-1)
            spread = [tf.pad(chunk, [[0, 0], [r, rows - 1 - r], [c, cols - 1 - c], [0, 0]])
                      for chunk, (r, c) in zip(chunks, offsets)]
            return tf.add_n(spread)[:, rows // 2:rows // 2 + height, cols // 2:cols // 2 + width]
        return tf.concat([padded[:, r:r + height, c:c + width] for r, c in offsets], -1), gradient
    return windows(inputs)


def im2col_conv(x, kernel):
    rows, cols, _, channels_out = kernel.shape
    windows = tf.reshape(shifted_windows(x, rows, cols), (-1, rows * cols * x.shape[-1]))
    outputs = tf.matmul(windows, tf.reshape(kernel, (-1, channels_out)))
    return tf.reshape(outputs, (-1, *x.shape[1:3], channels_out))


def onednn_conv(x, kernel):
    return tf.nn.conv2d(x, kernel, 1, "SAME")


def outputs_and_gradients(conv, x, kernel):
    with tf.GradientTape() as tape:
        tape.watch([x, kernel])
        y = conv(x, kernel)
        loss = tf.reduce_sum(tf.cast(y, tf.float32) ** 2)
    return [y, *tape.gradient(loss, [x, kernel])]


def check_same_sums():
    for size in (3, 4, 5, 8):
        x, kernel = tf.random.normal((3, size, size, 5)), tf.random.normal((3, 3, 5, 6))
        for a, b in zip(outputs_and_gradients(onednn_conv, x, kernel),
                        outputs_and_gradients(im2col_conv, x, kernel)):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-3)


def step_ms(conv, x, kernel):
    step = tf.function(lambda: [tf.reduce_sum(tf.cast(t, tf.float32))
                                for t in outputs_and_gradients(conv, x, kernel)])
    step()
    times = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(20):
            result = step()
        result[0].numpy()
        times.append((time.perf_counter() - start) / 20 * 1000)
    return statistics.median(times)


check_same_sums()
dtype = tf.as_dtype(os.environ.get("DTYPE", "bfloat16"))
print(f"{dtype.name}, ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA', '(none)')}")
for size, channels in ((4, 128), (8, 64), (2, 256)):  # ResNet50's 3x3 convolutions at 32x32
    x = tf.cast(tf.random.normal((128, size, size, channels)), dtype)
    kernel = tf.cast(tf.random.normal((3, 3, channels, channels)) * 0.05, dtype)
    onednn, im2col = step_ms(onednn_conv, x, kernel), step_ms(im2col_conv, x, kernel)
    gflop = 3 * 2 * 128 * size * size * 9 * channels * channels / 1e9
    print(f"{size}x{size}, {channels} channels: oneDNN {onednn:.2f} ms ({gflop / onednn * 1e3:.0f}"
          f" GFLOP/s), im2col {im2col:.2f} ms ({gflop / im2col * 1e3:.0f} GFLOP/s)", flush=True)
