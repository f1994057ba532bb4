"""fast_ops: matmul convolutions and fused Adam compute what Conv2D and Keras' Adam compute."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from cifar_helpers.cli import build_parser
from cifar_helpers.config import load_config
from cifar_helpers.fast_ops import FusedAdam, MatmulConv2D
from cifar_helpers.model import build_model_for, load_trained_model, save_for_inference

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
    assert [layer.name for layer in plain.layers] == [layer.name for layer in fast.layers]
    assert fast.count_params() == plain.count_params() == 23_858_890
    for a, b in zip(plain.get_weights(), fast.get_weights()):
        np.testing.assert_array_equal(a, b)
    images = np.random.default_rng(1).integers(0, 256, (4, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(fast.predict(images, verbose=0), plain.predict(images, verbose=0),
                               rtol=1e-4, atol=1e-5)


def test_saved_fast_model_has_plain_convolutions(plain_and_fast_models, tmp_path):
    _, fast = plain_and_fast_models
    save_for_inference(fast, tmp_path / "model.keras")
    loaded = load_trained_model(tmp_path / "model.keras")
    assert not any(isinstance(layer, MatmulConv2D) for layer in loaded.layers)
    assert sum(type(layer) is keras.layers.Conv2D for layer in loaded.layers) == 53
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
