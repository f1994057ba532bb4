"""Which devices train: one, or every GPU of the machine through tf.distribute.MirroredStrategy.

`distribute='auto'` mirrors over the GPUs when there is more than one (Kaggle's 2×T4, lab
workstations), otherwise it keeps TensorFlow's default strategy. To try mirroring without GPUs,
`CIFAR_LOGICAL_CPUS=N` splits the CPU into N logical devices; that must happen before TensorFlow
initialises its devices (`split_cpu`: the CLI calls it at start-up, a notebook in its first cell).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Callable, Mapping

from .config import LOGICAL_CPUS_ENV
from .errors import ConfigError

if TYPE_CHECKING:
    import tensorflow as tf


def requested_logical_cpus(environ: Mapping[str, str] | None = None) -> int:
    """The number of logical CPU devices asked for in CIFAR_LOGICAL_CPUS (1 when unset)."""
    raw = (os.environ if environ is None else environ).get(LOGICAL_CPUS_ENV, "").strip()
    if not raw:
        return 1
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"{LOGICAL_CPUS_ENV} must be a whole number of at least 1, got {raw!r}")
    return int(raw)


def split_cpu(environ: Mapping[str, str] | None = None) -> int:
    """Split the CPU into CIFAR_LOGICAL_CPUS logical devices; returns how many there are.

    TensorFlow fixes its devices when it first uses them; after that a split is refused with a
    ConfigError that says what to do instead.
    """
    count = requested_logical_cpus(environ)
    if count == 1:
        return 1
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)])
    except RuntimeError:
        present = len(tf.config.list_logical_devices("CPU"))
        if present == count:
            return count  # split already, e.g. by an earlier call in the same process
        raise ConfigError(
            f"{LOGICAL_CPUS_ENV}={count} came too late: TensorFlow already runs on {present} "
            "CPU device(s). Set it before TensorFlow starts: in a notebook, restart the kernel and "
            "set it in the first cell; on the command line, in the environment of "
            "`python -m cifar_helpers`.") from None
    return count


def training_devices() -> list[str]:
    """The devices a mirrored strategy would use: every GPU, else every logical CPU."""
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    return [device.name for device in (gpus or tf.config.list_logical_devices("CPU"))]


def keras_scales_replica_losses() -> bool:
    """Whether this Keras divides each replica's loss by the number of replicas (Keras 3.8 on,
    keras-team/keras#20609); before, `fit` under MirroredStrategy sums unscaled gradients."""
    import importlib

    return hasattr(importlib.import_module("keras.src.losses.loss"), "scale_loss_for_distribution")


def resolve_strategy(requested: str, log: Callable[[str], None] = print
                     ) -> tf.distribute.Strategy:
    """The tf.distribute strategy for `distribute` = 'auto' | 'off' | 'mirrored'.

    'auto' mirrors when more than one GPU is visible; 'mirrored' always does, over every GPU or,
    without GPUs, over the logical CPU devices (CIFAR_LOGICAL_CPUS). Never on a Keras that would
    train wrongly under the strategy: 'mirrored' is refused there and 'auto' uses one device.
    """
    import tensorflow as tf

    several_gpus = len(tf.config.list_logical_devices("GPU")) > 1
    if requested == "off" or (requested == "auto" and not several_gpus):
        return tf.distribute.get_strategy()
    if not keras_scales_replica_losses():
        import keras

        reason = (f"Keras {keras.__version__} sums the replicas' gradients without scaling them "
                  "(fixed in Keras 3.8)")
        if requested == "mirrored":
            raise ConfigError(f"distribute=mirrored needs Keras 3.8 or later: {reason}")
        log(f"Training on one device although {len(training_devices())} GPUs are visible: "
            f"{reason}. Upgrade Keras to use them all.")
        return tf.distribute.get_strategy()
    return tf.distribute.MirroredStrategy(devices=training_devices())


def describe_strategy(strategy: tf.distribute.Strategy) -> dict:
    """What a run records about its devices: strategy, replica count, device names."""
    import tensorflow as tf

    mirrored = isinstance(strategy, tf.distribute.MirroredStrategy)
    devices = (list(strategy.extended.worker_devices) if mirrored
               else training_devices()[:1])  # TensorFlow's default placement: GPU 0, else CPU
    return {"strategy": "mirrored" if mirrored else "default",
            "replicas": strategy.num_replicas_in_sync, "devices": devices}
