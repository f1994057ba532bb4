"""benchmarks/gpu_check.py, the one command that measures a GPU runtime, runs (tiny, on the CPU)."""

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def expected_environment():
    """What the check should find here, as TensorFlow reports it: the GPUs, whether fast ops
    run under 'auto' (CPUs only) and the replicas of `distribute=auto` (every GPU when 2+)."""
    import tensorflow as tf

    from cifar_helpers.devices import keras_scales_replica_losses

    gpus = tf.config.list_physical_devices("GPU")
    mirrored = len(gpus) > 1 and keras_scales_replica_losses()
    return {"gpus": len(gpus), "fast_ops_auto": not gpus, "replicas": len(gpus) if mirrored else 1}


def test_gpu_check_writes_every_figure_and_a_table_to_paste(tmp_path):
    expected = expected_environment()
    out = tmp_path / "gpu_check.json"
    done = subprocess.run([sys.executable, str(SCRIPT), "--tiny", "--json", str(out)],
                          capture_output=True, text=True, timeout=900, cwd=tmp_path,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(out.read_text())
    assert set(results["phase2"]) == {"seed @ 32px", "fast, fast ops on @ 32px",
                                      "fast, fast ops off @ 32px"}
    for rate in [*results["phase2"].values(), results["feature_extraction"]]:
        assert rate["images_per_second"] > 0 and len(rate["cpu_seconds_per_second"]) == 1
    assert results["phase2"]["seed @ 32px"]["precision"] == "float32"
    assert results["phase2"]["seed @ 32px"]["batch_size"] == 32
    assert all(rate["first_epoch_seconds"] > 0 for rate in results["phase2"].values())
    if not expected["gpus"]:  # Keras never compiles with XLA on a CPU; on a GPU it depends on
        # the layers and op determinism (keras' model_supports_jit), so no fixed answer there
        assert all(rate["xla"] is False for rate in results["phase2"].values())
    assert results["quick_study"]["devices"]["replicas"] == expected["replicas"]
    assert results["total_seconds"] > 0
    assert len(results["environment"]["gpus"]) == expected["gpus"]
    assert results["environment"]["fast_ops_auto"] is expected["fast_ops_auto"]
    assert 0 <= results["quick_study"]["test_accuracy"] <= 1
    assert "| phase 2, fast, fast ops on @ 32px |" in done.stdout
    assert "Quick study end to end" in done.stdout and "The whole check took" in done.stdout
