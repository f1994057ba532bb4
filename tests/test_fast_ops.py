"""fast_ops: matmul convolutions, fused BatchNorm and fused Adam compute what Keras computes."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from cifar_helpers.cli import build_parser
from cifar_helpers.config import load_config
from cifar_helpers.fast_ops import (FusedAdam, FusedBatchNormalization, MatmulConv2D,
                                    every_nth_pixel)
from cifar_helpers.model import build_model_for, load_trained_model, save_for_inference
from cifar_helpers.speed import dtype_policy

CASES = [  # (input height/width, kernel, strides, padding): ResNet50's cases, plus two others
    (4, 1, 1, "valid"), (4, 1, 2, "valid"), (5, 1, 2, "valid"), (4, 1, 2, "same"),
    (1, 3, 1, "same"), (1, 2, 1, "same"), (2, 3, 1, "same"), (5, 3, 2, "valid"),
    (2, 5, 1, "same"), (3, 5, 1, "same"), (3, 3, 1, "same"), (4, 3, 1, "valid"),
]


def outputs_and_gradients(layer, x):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
        loss = tf.reduce_sum(y * tf.cos(y))
    return [y, *tape.gradient(loss, [x, *layer.trainable_weights])]


@pytest.mark.parametrize("size, kernel, strides, padding", CASES)
def test_matmul_convolution_equals_conv2d_forward_and_backward(size, kernel, strides, padding):
    settings = {"filters": 6, "kernel_size": kernel, "strides": strides, "padding": padding}
    plain, fast = keras.layers.Conv2D(**settings), MatmulConv2D(**settings)
    x = tf.random.stateless_normal((3, size, size, 5), seed=(1, 2))
    plain.build(x.shape), fast.build(x.shape)
    kernel_values = np.random.default_rng(0).normal(size=plain.kernel.shape)
    for layer in (plain, fast):
        layer.kernel.assign(kernel_values)
        layer.bias.assign(np.arange(6.0))
    for expected, got in zip(outputs_and_gradients(plain, x), outputs_and_gradients(fast, x)):
        assert got.shape == expected.shape
        np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-4, atol=1e-4)


def convolution_ops(layer, size):
    """The TensorFlow op types of one training step of `layer` on a size x size map."""
    x_spec = tf.TensorSpec((2, size, size, 4), "float32")
    layer.build(x_spec.shape)
    step = tf.function(lambda x: tf.gradients(tf.reduce_sum(layer(x)), [x, layer.kernel]))
    return {op.type for op in step.get_concrete_function(x_spec).graph.get_operations()}


@pytest.mark.parametrize("size, kernel, matmul", [(2, 3, True), (1, 3, True), (4, 1, True),
                                                  (3, 3, False), (4, 3, False)])
def test_matmul_convolution_runs_matmuls_exactly_where_claimed(size, kernel, matmul):
    """3x3 'same' on 2x2 and 1x1 maps and every 1x1 kernel: no convolution kernel at all."""
    used = convolution_ops(MatmulConv2D(3, kernel, padding="same"), size)
    assert ("Conv2D" in used) is not matmul
    assert ("Conv2DBackpropFilter" in used) is not matmul
    assert ("BatchMatMulV2" in used or "MatMul" in used) is matmul


def test_strided_convolution_gradient_is_a_padding_not_a_strided_slice_gradient():
    used = convolution_ops(MatmulConv2D(3, 1, strides=2), 4)
    assert "StridedSliceGrad" not in used and "Pad" in used


def test_tap_matrix_gradient_is_a_matrix_product_not_a_segment_sum():
    used = convolution_ops(MatmulConv2D(3, 3, padding="same"), 2)
    assert "UnsortedSegmentSum" not in used and "OneHot" in used


@pytest.mark.parametrize("size, steps", [(4, (2, 2)), (5, (2, 3)), (1, (2, 2)), (6, (3, 1))])
def test_every_nth_pixel_slices_and_differentiates_like_a_strided_slice(size, steps):
    x = tf.random.stateless_normal((2, size, size, 3), seed=(3, 4))
    results = []
    for subsample in (lambda t: t[:, ::steps[0], ::steps[1], :],
                      lambda t: every_nth_pixel(t, *steps)):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = subsample(x)
            loss = tf.reduce_sum(y * tf.sin(y))
        results.append((y.numpy(), tape.gradient(loss, x).numpy()))
    (y_slice, grad_slice), (y_ours, grad_ours) = results
    np.testing.assert_array_equal(y_ours, y_slice)
    np.testing.assert_array_equal(grad_ours, grad_slice)
    assert np.count_nonzero(grad_ours) == y_ours.size  # only the kept pixels get a gradient


def frozen_outputs_and_gradients(layer, x, weights):
    layer.build(x.shape)
    layer.set_weights(weights)
    layer.trainable = False
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)  # frozen, so inference mode all the same
        loss = tf.reduce_sum(tf.cast(y, "float32") * tf.cos(tf.cast(y, "float32")))
    return y, tape.gradient(loss, x)


@pytest.mark.parametrize("policy, tolerance", [("float32", 1e-5), ("mixed_bfloat16", 1e-2)])
def test_fused_batch_normalization_equals_frozen_batch_normalization(policy, tolerance):
    rng = np.random.default_rng(4)
    weights = [rng.normal(size=5) + 1, rng.normal(size=5), rng.normal(size=5), rng.random(5) + 0.5]
    x = tf.constant(rng.normal(size=(3, 4, 4, 5)), "float32")
    with dtype_policy(policy):
        expected = frozen_outputs_and_gradients(keras.layers.BatchNormalization(), x, weights)
        got = frozen_outputs_and_gradients(FusedBatchNormalization(), x, weights)
    for a, b in zip(expected, got):
        assert a.dtype == b.dtype
        scale = np.abs(a.numpy().astype("float32")).max()  # bfloat16 keeps 8 significant bits
        np.testing.assert_allclose(b.numpy().astype("float32"), a.numpy().astype("float32"),
                                   atol=tolerance * scale, rtol=0)


def test_fused_batch_normalization_runs_one_kernel_when_frozen_and_keras_code_when_trainable():
    layer = FusedBatchNormalization()
    x_spec = tf.TensorSpec((2, 3, 3, 4), "float32")
    layer.build(x_spec.shape)
    step = tf.function(lambda x: tf.gradients(tf.reduce_sum(layer(x, training=True)), [x]))
    layer.trainable = False
    frozen = {op.type for op in step.get_concrete_function(x_spec).graph.get_operations()}
    assert "FusedBatchNormV3" in frozen and "Rsqrt" in frozen and "Mean" not in frozen
    layer.trainable = True
    x = tf.random.stateless_normal((8, 3, 3, 4), seed=(5, 6)) + 3.0
    layer(x, training=True)  # batch statistics, so the moving mean moves towards 3
    assert np.all(layer.moving_mean.numpy() > 0.02)


def test_tap_matrix_places_each_tap_where_it_joins_two_pixels():
    """Block (p, q) of a 3x3 kernel on a 2x2 map is tap (p - q + 1): all nine taps, no waste."""
    from cifar_helpers.fast_ops import tap_matrix

    kernel = np.arange(9.0).reshape(3, 3, 1, 1)  # tap (i, j) holds 3i + j
    matrix = tap_matrix(tf.constant(kernel), 2, 2).numpy()
    pixels = [(0, 0), (0, 1), (1, 0), (1, 1)]
    expected = [[3 * (pr - qr + 1) + (pc - qc + 1) for qr, qc in pixels] for pr, pc in pixels]
    np.testing.assert_array_equal(matrix, expected)
    assert sorted(set(matrix.ravel())) == list(range(9))


@pytest.fixture(scope="module")
def plain_and_fast_models():
    keras.utils.set_random_seed(0)
    plain = build_model_for(load_config("quick", environ={}), None)
    keras.utils.set_random_seed(0)
    fast = build_model_for(load_config("quick", environ={}, fast_ops="on"), None)
    return plain, fast


def test_fast_model_has_the_same_layers_weights_and_predictions(plain_and_fast_models):
    plain, fast = plain_and_fast_models
    kinds = [type(layer) for layer in fast.layers]
    assert kinds.count(MatmulConv2D) == 53 and keras.layers.Conv2D in map(type, plain.layers)
    assert kinds.count(FusedBatchNormalization) == 53
    assert [layer.name for layer in plain.layers] == [layer.name for layer in fast.layers]
    assert fast.count_params() == plain.count_params() == 23_858_890
    for a, b in zip(plain.get_weights(), fast.get_weights()):
        np.testing.assert_array_equal(a, b)
    images = np.random.default_rng(1).integers(0, 256, (4, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(fast.predict(images, verbose=0), plain.predict(images, verbose=0),
                               rtol=1e-4, atol=1e-5)


def test_saved_fast_model_has_plain_layers(plain_and_fast_models, tmp_path):
    _, fast = plain_and_fast_models
    save_for_inference(fast, tmp_path / "model.keras")
    loaded = load_trained_model(tmp_path / "model.keras")
    assert not any(isinstance(layer, (MatmulConv2D, FusedBatchNormalization))
                   for layer in loaded.layers)
    assert sum(type(layer) is keras.layers.Conv2D for layer in loaded.layers) == 53
    assert sum(type(layer) is keras.layers.BatchNormalization for layer in loaded.layers) == 53
    for a, b in zip(fast.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


def run_adam(optimizer_class, schedule):
    variables = [keras.Variable(np.linspace(-1, 1, 12).reshape(3, 4)), keras.Variable(np.ones(5))]
    optimizer = optimizer_class(learning_rate=schedule)
    rng = np.random.default_rng(3)
    for _ in range(6):
        gradients = [tf.constant(rng.normal(size=v.shape), dtype="float32") for v in variables]
        optimizer.apply_gradients(zip(gradients, variables))
    slots = [v for v in optimizer.variables if len(v.shape)]  # not iterations or learning rate
    return [v.numpy() for v in [*variables, *slots]]


@pytest.mark.parametrize("schedule", [1e-2, keras.optimizers.schedules.CosineDecay(0.05, 6)])
def test_fused_adam_makes_keras_adam_updates(schedule):
    expected = run_adam(keras.optimizers.Adam, schedule)
    got = run_adam(FusedAdam, schedule)
    assert len(got) == len(expected) == 6  # two weights, two momentums, two velocities
    for a, b in zip(expected, got):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)  # float32 rounding


def test_fused_adam_runs_the_one_pass_kernel():
    variable = keras.Variable(np.ones(4))
    optimizer = FusedAdam(learning_rate=0.1)
    optimizer.build([variable])
    step = tf.function(lambda g: optimizer.apply_gradients([(g, variable)]))
    graph = step.get_concrete_function(tf.TensorSpec((4,), "float32")).graph
    assert "ResourceApplyAdam" in {op.type for op in graph.get_operations()}


@pytest.mark.parametrize("fast_ops, optimizer", [("on", FusedAdam), ("off", keras.optimizers.Adam)])
def test_each_phase_compiles_the_optimizer_fast_ops_asks_for(fast_ops, optimizer):
    from cifar_helpers.training import fine_tune, train_head

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(10, activation="softmax")])
    config = load_config("quick", environ={}, fast_ops=fast_ops)
    data = tf.data.Dataset.from_tensor_slices((np.ones((8, 3)), np.eye(10)[:8])).batch(4)
    for phase in (train_head, fine_tune):
        phase(model, data, None, config, verbose=0)
        assert type(model.optimizer) is optimizer


def test_fast_profile_and_cli_switch_fast_ops():
    assert load_config("fast", environ={}).fast_ops == "auto"
    assert load_config("seed", environ={}).fast_ops == "off"
    parse = build_parser().parse_args
    assert parse(["train", "--fast-ops", "on"]).fast_ops == "on"
    assert parse(["train"]).fast_ops is None  # the profile decides
    assert load_config("fast", environ={"CIFAR_FAST_OPS": "off"}).fast_ops == "off"


def test_auto_uses_the_fast_ops_on_cpus_only(monkeypatch):
    """Measured to help on CPUs; not measured on GPUs, so 'auto' leaves GPUs alone."""
    import tensorflow as tf

    from cifar_helpers.fast_ops import resolve_fast_ops

    assert resolve_fast_ops("on") is True and resolve_fast_ops("off") is False
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])
    assert resolve_fast_ops("auto") is True
    monkeypatch.setattr(tf.config, "list_physical_devices",
                        lambda kind=None: ["GPU:0"] if kind == "GPU" else [])
    assert resolve_fast_ops("auto") is False
    config = load_config("fast", environ={})
    model = build_model_for(config, None)  # on the "GPU": plain Conv2D layers
    assert not any(isinstance(layer, MatmulConv2D) for layer in model.layers)
