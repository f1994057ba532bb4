"""Faster implementations that compute the same function and the same updates (the `fast` profile).

At 32x32 inputs ResNet50's last stages see 2x2 and 1x1 feature maps. There the CPU's convolution
kernels, the weight gradients above all, reach a fraction of the machine's matmul speed, and
Keras' Adam makes about ten passes over 23.5 M weights per step. A frozen BatchNormalization
makes several passes over every activation (in float32 under mixed precision) where one fused
kernel does. Measured with `ONEDNN_VERBOSE=profile_exec` and the TensorFlow profiler; figures in
the README's Speed section.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops


def resolve_fast_ops(setting: str) -> bool:
    """Whether the fast operations run: 'on', 'off', or 'auto' = on CPUs only.

    They were measured to help on CPUs (README, Speed); on GPUs they have not been measured yet,
    so 'auto' leaves GPUs to TensorFlow's own kernels until a measurement says otherwise.
    """
    if setting != "auto":
        return setting == "on"
    return not tf.config.list_physical_devices("GPU")


@keras.saving.register_keras_serializable(package="cifar_helpers")
class MatmulConv2D(keras.layers.Conv2D):
    """Conv2D that runs its matmul-shaped cases as one matrix multiply: same weights, same sums.

    A 1x1 convolution (strided: on every s-th pixel) is a matmul over channels. A 'same'
    stride-1 convolution over a map so small that every output pixel meets every input pixel
    (a 3x3 kernel on a 2x2 or 1x1 map) is a matmul of all the map's channels with a block matrix
    of kernel taps (`tap_matrix`). Anything else is left to the ordinary convolution.
    """

    def convolution_op(self, inputs: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
        """A matrix product where one computes the same convolution; else Keras' convolution."""
        rows, cols = self.kernel_size
        height, width = inputs.shape[1:3]
        plain = (self.groups == 1 and self.dilation_rate == (1, 1)
                 and self.data_format == "channels_last")
        if plain and (rows, cols) == (1, 1):
            if self.strides != (1, 1):
                inputs = every_nth_pixel(inputs, *self.strides)
            return ops.matmul(inputs, ops.reshape(kernel, kernel.shape[2:]))
        if (plain and self.padding == "same" and self.strides == (1, 1)
                and rows % 2 and cols % 2 and height is not None and width is not None
                and height <= rows // 2 + 1 and width <= cols // 2 + 1):
            pixels = ops.reshape(inputs, (-1, height * width * kernel.shape[2]))
            outputs = ops.matmul(pixels, tap_matrix(kernel, height, width))
            return ops.reshape(outputs, (-1, height, width, kernel.shape[3]))
        return super().convolution_op(inputs, kernel)


def every_nth_pixel(inputs: tf.Tensor, row_step: int, col_step: int) -> tf.Tensor:
    """inputs[:, ::row_step, ::col_step], with its gradient written as one padding of zeros.

    TensorFlow's own gradient of a strided slice (`StridedSliceGrad`) took 3-4x longer (measured
    on ResNet50's strided 1x1 convolutions); this one computes the same values.
    """
    height, width = inputs.shape[1:3]

    @tf.custom_gradient
    def subsample(inputs):
        def gradient(upstream):
            rows, cols, channels = upstream.shape[1:]
            spread = tf.reshape(upstream, (-1, rows, 1, cols, 1, channels))
            spread = tf.pad(spread, [[0, 0], [0, 0], [0, row_step - 1], [0, 0],
                                     [0, col_step - 1], [0, 0]])
            spread = tf.reshape(spread, (-1, rows * row_step, cols * col_step, channels))
            return spread[:, :height, :width, :]
        return inputs[:, ::row_step, ::col_step, :], gradient

    return subsample(inputs)


def gather_rows(matrix: tf.Tensor, rows: list[int]) -> tf.Tensor:
    """matrix[rows], with its gradient (each row's copies summed) as one matrix product.

    TensorFlow's own gradient of a gather (`UnsortedSegmentSum`) is slower on bfloat16 weights.
    """
    @tf.custom_gradient
    def gather(matrix):
        def gradient(upstream):
            copies = tf.one_hot(rows, matrix.shape[0], dtype=upstream.dtype)  # (copies, rows)
            return tf.matmul(copies, upstream, transpose_a=True)
        return tf.gather(matrix, rows), gradient

    return gather(matrix)


def tap_matrix(kernel: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """The (pixels x in, pixels x out) matrix of a 'same' convolution on a height x width map.

    Block (p, q) is the tap that joins input pixel p to output pixel q: tap (p - q + centre).
    Gathered, so its gradient sums each tap's blocks back into that tap.
    """
    rows, cols, channels_in, channels_out = kernel.shape
    pixels = [(r, c) for r in range(height) for c in range(width)]
    taps = [(pr - qr + rows // 2) * cols + (pc - qc + cols // 2)
            for pr, pc in pixels for qr, qc in pixels]
    blocks = gather_rows(ops.reshape(kernel, (rows * cols, channels_in * channels_out)), taps)
    blocks = ops.reshape(blocks, (len(pixels), len(pixels), channels_in, channels_out))
    return ops.reshape(ops.transpose(blocks, (0, 2, 1, 3)),
                       (len(pixels) * channels_in, len(pixels) * channels_out))


@keras.saving.register_keras_serializable(package="cifar_helpers")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """BatchNormalization that runs frozen as TensorFlow's one fused kernel: same weights, outputs.

    Frozen (not trainable), Keras' layer casts bfloat16 activations to float32, scales and shifts
    them in separate passes and casts back, and its gradient does the same again. Here the
    forward pass is one `FusedBatchNormV3` in inference mode (float32 arithmetic inside) and the
    gradient one multiply by gamma / sqrt(variance + epsilon). A trainable layer runs Keras' code.
    """

    def call(self, inputs: tf.Tensor, training: bool | None = None,
             mask: tf.Tensor | None = None) -> tf.Tensor:
        """Frozen: the fused inference kernel with a one-multiply gradient; else Keras' layer."""
        if (self.trainable or mask is not None or len(inputs.shape) != 4
                or self.axis not in (3, -1) or not (self.scale and self.center)):
            return super().call(inputs, training=training, mask=mask)
        weights = (self.gamma, self.beta, self.moving_mean, self.moving_variance)
        gamma, beta, mean, variance = (tf.identity(weight.value) for weight in weights)  # values
        factor = gamma * tf.math.rsqrt(variance + self.epsilon)

        @tf.custom_gradient
        def normalize(inputs):
            outputs = tf.raw_ops.FusedBatchNormV3(
                x=inputs, scale=gamma, offset=beta, mean=mean, variance=variance,
                epsilon=self.epsilon, is_training=False)[0]
            return outputs, lambda upstream: upstream * tf.cast(factor, upstream.dtype)

        return normalize(ops.cast(inputs, self.compute_dtype))


FAST_LAYERS = {keras.layers.Conv2D: MatmulConv2D,
               keras.layers.BatchNormalization: FusedBatchNormalization}


def _swap_layers(model: keras.Model, swaps: dict[type, type]) -> keras.Model:
    """A copy of `model` (same names and weights) where layers of exactly a type in `swaps` change."""
    def clone(layer):
        kind = swaps.get(type(layer), type(layer))
        return kind.from_config(layer.get_config())
    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


def with_fast_layers(model: keras.Model) -> keras.Model:
    """The same model with MatmulConv2D and FusedBatchNormalization layers (for training speed)."""
    return _swap_layers(model, FAST_LAYERS)


def has_fast_layers(model: keras.Model) -> bool:
    """Whether `model` holds any layer that `with_fast_layers` put in."""
    return any(type(layer) in FAST_LAYERS.values() for layer in model.layers)


def with_standard_layers(model: keras.Model) -> keras.Model:
    """The same model with plain Keras layers again (what gets saved and shared)."""
    return _swap_layers(model, {fast: plain for plain, fast in FAST_LAYERS.items()})


def _handle(variable):
    """The resource handle of a Keras or TensorFlow variable."""
    return variable.value.handle if isinstance(variable, keras.Variable) else variable.handle


@keras.saving.register_keras_serializable(package="cifar_helpers")
class FusedAdam(keras.optimizers.Adam):
    """Keras' Adam formula in TensorFlow's one-pass kernel (`ResourceApplyAdam`).

    m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2); w -= lr_t m / (sqrt(v) + eps), with
    lr_t = lr sqrt(1 - b2^t) / (1 - b1^t): the update Keras' Adam writes, read and written once.
    """

    def update_step(self, gradient: tf.Tensor, variable: keras.Variable,
                    learning_rate: float | tf.Tensor) -> None:
        """One `ResourceApplyAdam` (TensorFlow backend, no amsgrad); else Keras' own update."""
        if self.amsgrad or keras.backend.backend() != "tensorflow":
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        step = ops.cast(self.iterations + 1, dtype)
        index = self._get_variable_index(variable)
        tf.raw_ops.ResourceApplyAdam(
            var=_handle(variable), m=_handle(self._momentums[index]),
            v=_handle(self._velocities[index]),
            beta1_power=ops.power(ops.cast(self.beta_1, dtype), step),
            beta2_power=ops.power(ops.cast(self.beta_2, dtype), step),
            lr=ops.cast(learning_rate, dtype), beta1=ops.cast(self.beta_1, dtype),
            beta2=ops.cast(self.beta_2, dtype), epsilon=ops.cast(self.epsilon, dtype),
            grad=ops.cast(gradient, dtype), use_locking=False)
