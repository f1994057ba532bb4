"""Faster implementations that compute the same function and the same updates (the `fast` profile).

At 32x32 inputs ResNet50's last stages see 2x2 and 1x1 feature maps. There the CPU's convolution
kernels, the weight gradients above all, reach a fraction of the machine's matmul speed, and
Keras' Adam makes about ten passes over 23.5 M weights per step. Measured with
`ONEDNN_VERBOSE=profile_exec` and the TensorFlow profiler; figures in the README's Speed section.
"""

from __future__ import annotations

import keras
from keras import ops


def resolve_fast_ops(setting: str) -> bool:
    """Whether the fast operations run: 'on', 'off', or 'auto' = on CPUs only.

    They were measured to help on CPUs (README, Speed); on GPUs they have not been measured yet,
    so 'auto' leaves GPUs to TensorFlow's own kernels until a measurement says otherwise.
    """
    if setting != "auto":
        return setting == "on"
    import tensorflow as tf

    return not tf.config.list_physical_devices("GPU")


@keras.saving.register_keras_serializable(package="cifar_helpers")
class MatmulConv2D(keras.layers.Conv2D):
    """Conv2D that runs its matmul-shaped cases as one matrix multiply: same weights, same sums.

    A 1x1 convolution (strided: on every s-th pixel) is a matmul over channels. A 'same'
    stride-1 convolution over a map so small that every output pixel meets every input pixel
    (a 3x3 kernel on a 2x2 or 1x1 map) is a matmul of all the map's channels with a block matrix
    of kernel taps (`tap_matrix`). Anything else is left to the ordinary convolution.
    """

    def convolution_op(self, inputs, kernel):
        rows, cols = self.kernel_size
        height, width = inputs.shape[1:3]
        plain = (self.groups == 1 and self.dilation_rate == (1, 1)
                 and self.data_format == "channels_last")
        if plain and (rows, cols) == (1, 1):
            if self.strides != (1, 1):
                inputs = inputs[:, ::self.strides[0], ::self.strides[1], :]
            return ops.matmul(inputs, ops.reshape(kernel, kernel.shape[2:]))
        if (plain and self.padding == "same" and self.strides == (1, 1)
                and rows % 2 and cols % 2 and height is not None and width is not None
                and height <= rows // 2 + 1 and width <= cols // 2 + 1):
            pixels = ops.reshape(inputs, (-1, height * width * kernel.shape[2]))
            outputs = ops.matmul(pixels, tap_matrix(kernel, height, width))
            return ops.reshape(outputs, (-1, height, width, kernel.shape[3]))
        return super().convolution_op(inputs, kernel)


def tap_matrix(kernel, height: int, width: int):
    """The (pixels x in, pixels x out) matrix of a 'same' convolution on a height x width map.

    Block (p, q) is the tap that joins input pixel p to output pixel q: tap (p - q + centre).
    Gathered, so its gradient sums each tap's blocks back into that tap.
    """
    rows, cols, channels_in, channels_out = kernel.shape
    pixels = [(r, c) for r in range(height) for c in range(width)]
    taps = [(pr - qr + rows // 2) * cols + (pc - qc + cols // 2)
            for pr, pc in pixels for qr, qc in pixels]
    blocks = ops.take(ops.reshape(kernel, (rows * cols, channels_in, channels_out)), taps, axis=0)
    blocks = ops.reshape(blocks, (len(pixels), len(pixels), channels_in, channels_out))
    return ops.reshape(ops.transpose(blocks, (0, 2, 1, 3)),
                       (len(pixels) * channels_in, len(pixels) * channels_out))


def _swap_convolutions(model: keras.Model, old: type, new: type) -> keras.Model:
    """A copy of `model` (same names and weights) whose layers of exactly type `old` are `new`."""
    def clone(layer):
        kind = new if type(layer) is old else type(layer)
        return kind.from_config(layer.get_config())
    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


def with_matmul_convolutions(model: keras.Model) -> keras.Model:
    """The same model with every Conv2D as a MatmulConv2D (for training speed)."""
    return _swap_convolutions(model, keras.layers.Conv2D, MatmulConv2D)


def with_standard_convolutions(model: keras.Model) -> keras.Model:
    """The same model with plain Conv2D layers again (what gets saved and shared)."""
    return _swap_convolutions(model, MatmulConv2D, keras.layers.Conv2D)


def _handle(variable):
    """The resource handle of a Keras or TensorFlow variable."""
    return variable.value.handle if isinstance(variable, keras.Variable) else variable.handle


@keras.saving.register_keras_serializable(package="cifar_helpers")
class FusedAdam(keras.optimizers.Adam):
    """Keras' Adam formula in TensorFlow's one-pass kernel (`ResourceApplyAdam`).

    m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2); w -= lr_t m / (sqrt(v) + eps), with
    lr_t = lr sqrt(1 - b2^t) / (1 - b1^t): the update Keras' Adam writes, read and written once.
    """

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad or keras.backend.backend() != "tensorflow":
            return super().update_step(gradient, variable, learning_rate)
        import tensorflow as tf

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
