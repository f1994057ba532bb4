"""Pipeline: the model it builds reflects every setting that shapes the model or its training, and
every checkpoint in the run store describes the model inside it."""

import dataclasses
import json
import shutil
from types import SimpleNamespace

import keras
import numpy as np
import pytest

from cifar_helpers import model as model_module
from cifar_helpers import training
from cifar_helpers.config import fingerprint, load_config
from cifar_helpers.errors import OutputError, TrainingError, WeightsError
from cifar_helpers.data import load_sample
from cifar_helpers.fast_ops import FusedAdam, MatmulConv2D
from cifar_helpers.model import base_layers
from cifar_helpers.pipeline import Pipeline
from cifar_helpers.run_store import RunStore, keras_can_load, log_rows
from cifar_helpers.speed import resolve_precision
from cifar_helpers.training import learning_rate_for, uses_feature_cache
from cifar_files import write_batches

HEAD_PARAMS, FINETUNE_PARAMS = 271_178, 23_752_650  # trainable in phase 1 / phase 2
FINETUNE_SETTINGS = {"epochs_finetune", "lr_finetune"}
# The two trained runs (1 + 1 epochs each). feature_cache=True in the first one is overridden by
# augment=True: phase 1 must train through the whole model there.
UPSAMPLED = {"image_size": 64, "augment": True, "lr_schedule": "cosine", "label_smoothing": 0.1,
             "feature_cache": True}
FAST = {"fast_ops": "on", "feature_cache": True, "precision": "mixed_bfloat16"}


def quick(out, **setting):
    """The quick profile on 90 + 10 training images and 20 test images, nothing from the
    environment (100 is about the least that leaves a validation image for every class)."""
    return load_config("quick", environ={}, out=str(out),
                       **{"train_limit": 100, "test_limit": 20, **setting})


def open_pipeline(out, lines=None, **setting):
    return Pipeline(quick(out, **setting), log=lambda text: None if lines is None
                    else lines.append(text), verbose=0)


def build(tmp_path, **setting):
    """A new (untrained) model of the pipeline of these settings."""
    pipeline = open_pipeline(tmp_path / "run", **setting)
    return pipeline, pipeline.build_model()


def weights_by_layer(model):
    return {layer.name: [np.array(w) for w in layer.get_weights()]
            for layer in model.layers if layer.weights}


def assert_same_weights(got, expected):
    assert got.keys() == expected.keys()
    for name in expected:
        assert len(got[name]) == len(expected[name]), name
        for a, b in zip(got[name], expected[name]):
            np.testing.assert_array_equal(a, b, err_msg=name)


def base_convolutions(model):
    return [layer for layer in base_layers(model) if isinstance(layer, keras.layers.Conv2D)]


def trained(out, **setting):
    """Both phases of one configuration, with what the model was like at the end of phase 1."""
    lines = []
    pipeline = open_pipeline(out, lines, **setting)
    model = pipeline.run("head")
    after_head = SimpleNamespace(optimizer=getattr(model, "optimizer", None),
                                 loss=getattr(model, "loss", None),
                                 weights=weights_by_layer(model))
    pipeline.run("finetune")
    return SimpleNamespace(pipeline=pipeline, lines=lines, after_head=after_head)


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """The seed's model: 32x32, no augmentation, float32, plain operations."""
    return build(tmp_path_factory.mktemp("plain"))


@pytest.fixture(scope="module")
def upsampled_run(tmp_path_factory):
    return trained(tmp_path_factory.mktemp("upsampled") / "run", **UPSAMPLED)


@pytest.fixture(scope="module")
def fast_run(tmp_path_factory):
    return trained(tmp_path_factory.mktemp("fast") / "run", **FAST)


@pytest.fixture
def fast_copy(fast_run, tmp_path):
    """A copy of the fast run's folder (modification times kept), for tests that change it."""
    return shutil.copytree(fast_run.pipeline.store.folder, tmp_path / "run")


# ---- the model the pipeline builds ----------------------------------------------------------

def test_image_size_upsamples_inside_the_model(tmp_path, plain):
    _, model = build(tmp_path, image_size=64)
    assert model.input.shape[1:] == (32, 32, 3)  # the data stays 32x32
    assert model.get_layer("upsample").output.shape[1:] == (64, 64, 3)
    assert model.get_layer("preprocess").output.shape[1:] == (64, 64, 3)  # the base's input
    assert model.get_layer("conv5_block3_out").output.shape[1:3] == (2, 2)
    _, seed_model = plain
    assert "upsample" not in {layer.name for layer in seed_model.layers}
    assert seed_model.get_layer("preprocess").output.shape[1:] == (32, 32, 3)
    assert seed_model.get_layer("conv5_block3_out").output.shape[1:3] == (1, 1)


def test_augment_adds_the_augment_layer_before_the_base(tmp_path, plain):
    _, model = build(tmp_path, augment=True)
    names = [layer.name for layer in model.layers]
    assert names.index("augment") < names.index("preprocess")
    assert "augment" not in {layer.name for layer in base_layers(model)}
    _, seed_model = plain
    assert "augment" not in {layer.name for layer in seed_model.layers}


def test_precision_sets_the_dtype_policy_of_the_layers(tmp_path, plain):
    pipeline, model = build(tmp_path, precision="mixed_bfloat16")
    assert pipeline.precision == "mixed_bfloat16"
    assert {layer.dtype_policy.name for layer in base_convolutions(model)} == {"mixed_bfloat16"}
    assert model.get_layer("predictions").dtype_policy.name == "float32"  # softmax in float32
    assert model.get_layer("preprocess").dtype_policy.name == "float32"
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored
    seed_pipeline, seed_model = plain
    assert seed_pipeline.precision == "float32"
    assert {layer.dtype_policy.name for layer in seed_model.layers} == {"float32"}


def test_pipeline_records_the_resolved_precision(tmp_path):
    lines = []
    pipeline = open_pipeline(tmp_path / "run", lines, precision="auto")
    assert pipeline.precision == resolve_precision("auto") != "auto"
    assert f"precision: {pipeline.precision}" in lines[0]


def test_fast_ops_builds_matmul_convolutions(tmp_path, plain):
    _, model = build(tmp_path, fast_ops="on")
    convolutions = base_convolutions(model)
    assert len(convolutions) == 53 and all(type(c) is MatmulConv2D for c in convolutions)
    _, seed_model = plain
    convolutions = base_convolutions(seed_model)
    assert len(convolutions) == 53 and all(type(c) is keras.layers.Conv2D for c in convolutions)


def test_fast_ops_trains_with_fused_adam(fast_run, upsampled_run):
    model = fast_run.pipeline.model
    assert type(model.optimizer) is FusedAdam
    assert all(type(c) is MatmulConv2D for c in base_convolutions(model))  # trained as built
    assert type(upsampled_run.pipeline.model.optimizer) is keras.optimizers.Adam


def test_feature_cache_writes_base_features_unless_images_vary(fast_run, upsampled_run):
    fast, upsampled = fast_run.pipeline, upsampled_run.pipeline
    assert uses_feature_cache(fast.config)
    assert len(list(fast.store.features_dir.glob("*.npy"))) == 2  # training and validation
    assert upsampled.config.feature_cache and not uses_feature_cache(upsampled.config)
    assert not list(upsampled.store.features_dir.glob("*.npy"))
    assert "(feature cache not used: augmentation changes the images every epoch)" \
        in upsampled_run.lines and not any("feature cache" in line for line in fast_run.lines)
    assert upsampled_run.after_head.optimizer is not None  # phase 1 compiled the whole model


def test_cosine_schedule_drives_both_phases(upsampled_run, fast_run):
    config = upsampled_run.pipeline.config
    for optimizer, peak in ((upsampled_run.after_head.optimizer, config.lr_head),
                            (upsampled_run.pipeline.model.optimizer, config.lr_finetune)):
        schedule = optimizer._learning_rate  # `learning_rate` is its value at the current step
        assert isinstance(schedule, keras.optimizers.schedules.CosineDecay)
        settings = schedule.get_config()
        assert max(settings["initial_learning_rate"], settings["warmup_target"] or 0.0) \
            == pytest.approx(peak)
    constant = fast_run.pipeline.model.optimizer._learning_rate
    assert not isinstance(constant, keras.optimizers.schedules.LearningRateSchedule)
    assert float(constant.numpy()) == pytest.approx(fast_run.pipeline.config.lr_finetune)


def test_plateau_schedule_adds_reduce_lr_on_plateau(tmp_path):
    config = quick(tmp_path / "run", lr_schedule="plateau")
    rate, callbacks = learning_rate_for(config, 1e-5, epochs=10, steps_per_epoch=3)
    assert rate == 1e-5 and len(callbacks) == 1
    assert isinstance(callbacks[0], keras.callbacks.ReduceLROnPlateau)
    assert callbacks[0].monitor == "val_loss" and callbacks[0].min_lr == pytest.approx(1e-7)


def test_label_smoothing_reaches_the_loss_of_both_phases(upsampled_run, fast_run):
    for loss in (upsampled_run.after_head.loss, upsampled_run.pipeline.model.loss):
        assert loss.get_config()["label_smoothing"] == pytest.approx(0.1)
    assert fast_run.pipeline.model.loss.get_config()["label_smoothing"] == 0.0


# ---- the run store's checkpoints --------------------------------------------------------------

@pytest.mark.parametrize("phase", ["head", "finetune"])
@pytest.mark.parametrize("run", ["upsampled_run", "fast_run"])
def test_each_checkpoint_describes_the_model_inside_it(run, phase, request):
    trained_run = request.getfixturevalue(run)
    config, store = trained_run.pipeline.config, trained_run.pipeline.store
    entry = store.finished[phase]
    assert json.loads((store.folder / "run.json").read_text())["finished"][phase] == entry
    settings, record = entry["settings"], entry["record"]
    assert settings == fingerprint(config, "training" if phase == "head" else "finetune")
    if phase == "head":
        assert FINETUNE_SETTINGS.isdisjoint(settings)
    else:
        assert {k: settings[k] for k in FINETUNE_SETTINGS} == {
            "epochs_finetune": config.epochs_finetune, "lr_finetune": config.lr_finetune}

    loaded = store.load_model(phase)
    names = {layer.name for layer in loaded.layers}
    size = settings["image_size"]
    assert loaded.get_layer("preprocess").output.shape[1:3] == (size, size)
    assert ("upsample" in names) == (size != 32)
    assert ("augment" in names) == settings["augment"]
    assert record["precision"] == resolve_precision(settings["precision"])
    convolutions = base_convolutions(loaded)
    assert {c.dtype_policy.name for c in convolutions} == {record["precision"]}
    assert len(convolutions) == 53 and all(type(c) is keras.layers.Conv2D for c in convolutions)
    assert record["trainable_params"] == (HEAD_PARAMS if phase == "head" else FINETUNE_PARAMS)
    assert record["epochs_trained_here"] == (config.epochs_head if phase == "head"
                                             else config.epochs_finetune)
    # The file holds the model as that phase left it.
    expected = (trained_run.after_head.weights if phase == "head"
                else weights_by_layer(trained_run.pipeline.model))
    assert_same_weights(weights_by_layer(loaded), expected)


@pytest.mark.parametrize("run", ["upsampled_run", "fast_run"])
def test_phase_two_checkpoint_has_a_trained_base_and_frozen_batchnorm(run, request):
    store = request.getfixturevalue(run).pipeline.store
    head, final = store.load_model("head"), store.load_model("finetune")
    for name in ("conv1_conv", "conv3_block1_1_conv", "conv5_block3_3_conv"):
        assert not np.array_equal(head.get_layer(name).kernel.numpy(),
                                  final.get_layer(name).kernel.numpy()), name
    for layer in base_layers(head):
        if isinstance(layer, keras.layers.BatchNormalization):
            for a, b in zip(layer.get_weights(), final.get_layer(layer.name).get_weights()):
                np.testing.assert_array_equal(a, b, err_msg=layer.name)


# ---- reuse of finished phases -------------------------------------------------------------------

def test_same_settings_reuse_both_phases(fast_run, fast_copy):
    mtimes = {p: (fast_copy / f).stat().st_mtime_ns for p, f in
              (("head", "phase1.keras"), ("finetune", "model.keras"))}
    rows = log_rows(fast_copy / "training_log.csv")
    lines = []
    pipeline = open_pipeline(fast_copy, lines, **FAST)
    assert pipeline.store.finished == fast_run.pipeline.store.finished
    model = pipeline.run()
    assert sum("finished before" in line for line in lines) == 2
    assert not [line for line in lines
                if line.startswith("\n== ") and "finished before" not in line]
    assert log_rows(pipeline.store.log_file) == rows and len(rows) == 2
    assert {p: pipeline.store.model_file(p).stat().st_mtime_ns for p in mtimes} == mtimes
    assert_same_weights(weights_by_layer(model), weights_by_layer(fast_run.pipeline.model))
    assert pipeline.history()["epoch"] == [1, 2]


class InterruptOnce(keras.callbacks.Callback):
    """Ctrl-C after the first training step, once: a notebook cell interrupted mid-epoch."""

    def __init__(self):
        super().__init__()
        self.interrupted = False

    def on_train_batch_end(self, batch, logs=None):
        if not self.interrupted:
            self.interrupted = True
            raise KeyboardInterrupt


def test_a_phase_interrupted_in_this_process_restarts_from_clean_weights(fast_run, tmp_path,
                                                                         monkeypatch):
    """Run again in the same process (as a notebook cell is), an interrupted phase does not go on
    from the weights the interruption left: phase 1 ends as an uninterrupted run's does. And its
    CSV log is closed (Keras closes it only when fit ends; Windows cannot replace an open file)."""
    made, standard = [], training.standard_callbacks
    monkeypatch.setattr(training, "standard_callbacks",
                        lambda *args, **kwargs: made.extend(standard(*args, **kwargs)) or made)
    pipeline = Pipeline(quick(tmp_path / "run", **FAST), log=lambda text: None, verbose=0,
                        callbacks=[InterruptOnce()])
    with pytest.raises(KeyboardInterrupt):
        pipeline.run("head")
    logs = [c for c in made if isinstance(c, keras.callbacks.CSVLogger)]
    assert len(logs) == 1 and logs[0].csv_file.closed
    assert_same_weights(weights_by_layer(pipeline.run("head")), fast_run.after_head.weights)


def test_an_evaluation_setting_keeps_both_phases(fast_copy):
    pipeline = open_pipeline(fast_copy, test_limit=30, **FAST)
    assert set(pipeline.store.finished) == {"head", "finetune"}


def test_the_same_images_from_another_place_keep_both_phases(fast_copy, tmp_path):
    """A run folder is reused wherever its data is found: download, Keras cache, copied folder."""
    sample = load_sample()
    folder = write_batches(tmp_path / "same" / "cifar-10-batches-py", *sample.train, *sample.test)
    pipeline = open_pipeline(fast_copy, data=str(folder), **FAST)
    assert pipeline.inputs.source == f"dir:{folder}"
    assert set(pipeline.store.finished) == {"head", "finetune"}
    other = write_batches(tmp_path / "other" / "cifar-10-batches-py", *sample.train,
                          sample.x_test[::-1], sample.y_test[::-1])
    assert open_pipeline(fast_copy, data=str(other), **FAST).store.finished == {}


def test_changed_finetune_setting_keeps_phase_one_and_retrains_phase_two(fast_run, fast_copy):
    phase1 = fast_copy / "phase1.keras"
    mtime, rows = phase1.stat().st_mtime_ns, log_rows(fast_copy / "training_log.csv")
    lines = []
    pipeline = open_pipeline(fast_copy, lines, **{**FAST, "lr_finetune": 1e-4})
    assert set(pipeline.store.finished) == {"head"}
    assert (fast_copy / "model.keras").exists()  # opening deletes nothing
    assert log_rows(pipeline.store.log_file) == rows
    model = pipeline.run("head")
    assert_same_weights(weights_by_layer(model), fast_run.after_head.weights)
    pipeline.run()
    assert lines[-1].endswith("Phase 2: fine-tuning everything but BatchNorm at a low "
                              "learning rate ==")  # trained, not loaded
    assert phase1.stat().st_mtime_ns == mtime
    finished = pipeline.store.finished
    assert finished["head"] == fast_run.pipeline.store.finished["head"]
    assert finished["finetune"]["settings"]["lr_finetune"] == 1e-4
    new_rows = log_rows(pipeline.store.log_file)
    assert len(new_rows) == 2 and new_rows[0] == rows[0] and new_rows[1] != rows[1]
    retrained = pipeline.store.load_model("finetune").get_layer("conv1_conv").kernel.numpy()
    assert not np.array_equal(retrained, fast_run.pipeline.model.get_layer("conv1_conv")
                              .kernel.numpy())


def test_changed_training_setting_discards_both_phases_when_phase_one_trains(fast_copy):
    (fast_copy / "metrics.json").write_text("{}")  # results of the run about to be discarded
    pipeline = open_pipeline(fast_copy, **{**FAST, "epochs_head": 2})
    assert pipeline.store.finished == {} and pipeline.store.in_progress is None
    assert (fast_copy / "model.keras").exists()  # opening deletes nothing
    pipeline.store.start("head")
    assert not (fast_copy / "metrics.json").exists()  # no "finished" run without its model
    assert not (fast_copy / "phase1.keras").exists() and not (fast_copy / "model.keras").exists()
    assert not (fast_copy / "training_log.csv").exists()
    assert json.loads((fast_copy / "run.json").read_text())["finished"] == {}


def test_restarting_phase_one_starts_again_from_the_initial_weights(fast_run, fast_copy):
    lines = []
    pipeline = open_pipeline(fast_copy, lines, **FAST)
    pipeline.run()  # the model now holds the fine-tuned weights
    pipeline.run("head", restart_from="head")
    assert any("finished 'head' phase with these settings: training it again" in line
               for line in lines), lines
    restarted = pipeline.store.load_model("head").get_layer("conv1_conv").kernel.numpy()
    # Phase 1 freezes the base: its checkpoint's base is the initial one, as in the first run.
    np.testing.assert_array_equal(restarted, fast_run.after_head.weights["conv1_conv"][0])


def test_phase_trained_on_fallback_weights_is_not_reused_with_imagenet(tmp_path, monkeypatch):
    real = model_module.resolve_weights

    def offline(spec, timeout=15.0):
        if spec == "auto":
            return None, "none (fallback: ImageNet weights unavailable)"
        return real(spec, timeout)
    monkeypatch.setattr(model_module, "resolve_weights", offline)
    setting = {"weights": "auto", "feature_cache": True}
    open_pipeline(tmp_path / "run", **setting).run("head")

    monkeypatch.setattr(model_module, "resolve_weights", lambda spec, timeout=15.0: (
        ("imagenet", "imagenet") if spec == "auto" else real(spec, timeout)))
    pipeline = open_pipeline(tmp_path / "run", **setting)  # opening only: nothing downloads
    assert pipeline.inputs.weights_used == "imagenet"
    assert "head" not in pipeline.store.finished


def test_scratch_control_trains_every_layer_and_batchnorm_from_the_first_epoch(tmp_path):
    lines = []
    pipeline = open_pipeline(tmp_path / "run", lines, recipe="scratch", weights="auto",
                             feature_cache=True)
    before = weights_by_layer(pipeline.build_model())
    model = pipeline.run("head")  # the first epoch of the control
    after = weights_by_layer(model)
    assert pipeline.inputs.weights is None and pipeline.inputs.notices == []  # no download tried
    assert not uses_feature_cache(pipeline.config)  # the base trains: no cached features
    untouched = [name for name in before
                 if all(np.array_equal(a, b) for a, b in zip(before[name], after[name]))]
    assert untouched == []  # every layer with weights changed, ResNet50's stem included
    batch_norms = [l for l in base_layers(model) if isinstance(l, keras.layers.BatchNormalization)]
    for layer in batch_norms:  # normalised with batch statistics, which update the moving ones
        assert not np.array_equal(before[layer.name][2], after[layer.name][2]), layer.name
    assert pipeline.store.finished["head"]["record"]["trainable_params"] == 23_805_770
    assert any("Scratch control" in line for line in lines)


def test_scratch_control_continues_at_the_phase_one_rate(monkeypatch):
    from cifar_helpers.training import train_from_scratch

    config = quick("unused", recipe="scratch", epochs_head=2, epochs_finetune=3)
    model = model_module.build_model(None)
    calls = []
    monkeypatch.setattr(model, "fit", lambda *args, **kwargs: calls.append(kwargs)
                        or SimpleNamespace(epoch=[0], history={"loss": [1.0]}), raising=False)
    train_ds = SimpleNamespace(cardinality=lambda: 3)
    train_from_scratch(model, train_ds, None, config, "finetune")
    assert (calls[0]["initial_epoch"], calls[0]["epochs"]) == (2, 5)
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(
        config.lr_head)
    assert all(layer.trainable for layer in model.layers)


def recorded_keras(folder, version):
    """Make run.json say its phases were saved by another Keras version."""
    manifest = json.loads((folder / "run.json").read_text())
    for entry in manifest["finished"].values():
        entry["resolved"]["keras"] = version
    (folder / "run.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("saved_by, kept", [("3.0.0", True), ("3.99.0", False),
                                             ("4.0.0", False)])
def test_a_keras_update_within_3_keeps_the_phases_an_older_keras_does_not(fast_copy, saved_by,
                                                                          kept):
    """Colab updates Keras during a course: a run folder on Drive must survive 3.x -> 3.y. An
    older Keras cannot load newer files (3.4 fails on 3.15's), so it trains them again."""
    recorded_keras(fast_copy, saved_by)
    lines = []
    finished = open_pipeline(fast_copy, lines, **FAST).store.finished
    assert set(finished) == ({"head", "finetune"} if kept else set())
    assert any(f"keras '{saved_by}' -> '3." in line for line in lines) is not kept, lines


@pytest.mark.parametrize("saved_by, loading, loads", [
    ("3.4.1", "3.15.1", True), ("3.10.0", "3.10.0", True), ("3.15.0", "3.10.0", False),
    ("3.15.0", "4.0.0", False), ("3.9.0", "3.10.0rc1", True), (None, "3.10.0", False)])
def test_which_keras_loads_which_saved_models(saved_by, loading, loads):
    assert keras_can_load(saved_by, loading) is loads


@pytest.mark.parametrize("manifest", [None, "{truncated"])
def test_a_folder_with_run_files_but_no_readable_run_json_is_refused_not_emptied(fast_copy,
                                                                                 manifest):
    """`--out .` in a project folder, or a run.json cut off in a copy: nothing is deleted."""
    if manifest is None:
        (fast_copy / "run.json").unlink()
    else:
        (fast_copy / "run.json").write_text(manifest)
    before = sorted(path.name for path in fast_copy.iterdir())
    with pytest.raises(OutputError, match="would delete them.*model.keras|model.keras.*would "
                       "delete them"):
        open_pipeline(fast_copy, **FAST)
    assert sorted(path.name for path in fast_copy.iterdir()) == before


def recorded_weights(folder, identity):
    """Make run.json say its phases were trained from these weights."""
    manifest = json.loads((folder / "run.json").read_text())
    for entry in manifest["finished"].values():
        entry["resolved"]["weights"] = identity
    (folder / "run.json").write_text(json.dumps(manifest))


def weights_unavailable(spec, timeout=15.0):
    """resolve_weights offline without the ImageNet file: 'auto' falls back to none."""
    if spec != "auto":
        return None, "none (random initialisation)"
    import warnings
    warnings.warn("ImageNet weights unavailable (test)", model_module.WeightsFallbackWarning)
    return None, "none (fallback: ImageNet weights unavailable)"


def test_a_fallback_does_not_replace_phases_made_with_the_real_weights(fast_copy, monkeypatch):
    """A participant's laptop without the weights file must not delete the teacher's run: the
    folder is refused with what to do; asking for no weights explicitly replaces it."""
    recorded_weights(fast_copy, "imagenet")
    monkeypatch.setattr(model_module, "resolve_weights", weights_unavailable)
    before = sorted(path.name for path in fast_copy.iterdir())
    with pytest.raises(OutputError, match="'head' phase made with weights 'imagenet', but here "
                       "'auto' fell back: weights to 'none'.*set weights to none"):
        open_pipeline(fast_copy, weights="auto", **FAST)
    assert sorted(path.name for path in fast_copy.iterdir()) == before
    lines = []
    assert open_pipeline(fast_copy, lines, weights="none", **FAST).store.finished == {}
    assert any("weights 'imagenet' -> 'none'" in line for line in lines), lines


def record_finished(folder, config, resolved, phases=("head",), settings=None):
    """A run store in `folder` recording `phases` as finished with `settings` (else this config's)
    and `resolved` inputs; the model files are stand-ins."""
    store = RunStore.open(folder, config, resolved)
    for phase in phases:
        store.finished[phase] = {"settings": settings or store.settings(phase),
                                 "resolved": resolved, "record": {}}
        store.model_file(phase).write_bytes(b"a saved model")
    store.save()
    return store


def test_a_refusal_names_every_input_that_fell_back(tmp_path):
    """A laptop with neither CIFAR-10 nor the ImageNet file: one message says both."""
    config = load_config("quick", environ={}, out=str(tmp_path))
    real = {"data": "50000+10000 images, blake2b 1", "weights": "imagenet"}
    store = record_finished(tmp_path, config, real)
    fallback = {"data": "1000+200 images, blake2b 2", "weights": "none"}
    with pytest.raises(OutputError, match="set data to sample and weights to none"):
        RunStore.open(tmp_path, config, fallback, fell_back=("data", "weights"))
    assert store.model_file("head").exists()
    assert RunStore.open(tmp_path, config, fallback).finished == {}  # asked for explicitly


def test_a_setting_added_since_a_phase_was_recorded_counts_as_its_default(tmp_path):
    """A new setting (its default keeps the old behaviour) must not retrain every existing run,
    e.g. a Colab student's runs on Drive after the set-up cell installs a newer course."""
    config = load_config("quick", environ={}, out=str(tmp_path))
    recorded = {k: v for k, v in RunStore(tmp_path, config).settings("head").items()
                if k != "label_smoothing"}
    record_finished(tmp_path, config, {"data": "sample"}, settings=recorded)
    assert set(RunStore.open(tmp_path, config, {"data": "sample"}).finished) == {"head"}
    smoothed = dataclasses.replace(config, label_smoothing=0.1)
    reopened = RunStore.open(tmp_path, smoothed, {"data": "sample"})
    assert reopened.finished == {} and "label_smoothing 0.0 -> 0.1" in reopened.notes[0]
    recorded["old_setting"] = 1  # a setting removed since: not kept, and said why
    record_finished(tmp_path, config, {"data": "sample"}, settings=recorded)
    reopened = RunStore.open(tmp_path, config, {"data": "sample"})
    assert reopened.finished == {} and "old_setting 1 -> None" in reopened.notes[0]


def finished_run(folder, config, resolved):
    """A finished run in `folder`: both phases recorded (`record_finished`) and its results."""
    store = record_finished(folder, config, resolved, phases=("head", "finetune"))
    (folder / "metrics.json").write_text("{}")
    return store


def test_opening_a_run_with_other_settings_deletes_nothing_until_a_phase_trains(tmp_path):
    """E.g. notebook 06 checking a variant, or a student who set batch_size in 04 only: the
    models stay until something trains, and the old settings find them again."""
    config = load_config("quick", environ={}, out=str(tmp_path))
    finished_run(tmp_path, config, {"data": "sample"})
    before = sorted(path.name for path in tmp_path.iterdir())
    other = RunStore.open(tmp_path, dataclasses.replace(config, batch_size=16), {"data": "sample"})
    assert other.finished == {} and "batch_size 32 -> 16" in other.notes[0]
    assert "another folder" in other.notes[0]
    assert sorted(path.name for path in tmp_path.iterdir()) == before
    assert set(RunStore.open(tmp_path, config, {"data": "sample"}).finished) == {"head",
                                                                                 "finetune"}
    other.start("head")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["run.json"]
    assert RunStore.open(tmp_path, config, {"data": "sample"}).finished == {}


def test_finished_phases_trained_on_another_machine_are_loaded_as_they_are(tmp_path):
    """A `fast` run trained on a Colab GPU (float16, no fast ops), opened on a CPU runtime when
    the GPU quota ran out: the trained models are used, not deleted and trained again."""
    config = load_config("quick", environ={}, out=str(tmp_path))
    gpu = {"data": "sample", "precision": "mixed_float16", "fast_ops": False}
    cpu = {"data": "sample", "precision": "mixed_bfloat16", "fast_ops": True}
    finished_run(tmp_path, config, gpu)
    store = RunStore.open(tmp_path, config, cpu)
    assert set(store.finished) == {"head", "finetune"} and len(store.notes) == 2
    assert "precision 'mixed_float16' (here 'mixed_bfloat16')" in store.notes[0]
    assert "fast_ops False (here True): it is loaded as it is" in store.notes[0]
    assert not RunStore.open(tmp_path, config, {**cpu, "data": "other"}).finished  # not data
    store.restart_from("finetune")
    store.start("finetune")  # interrupted on the CPU, resumed on the GPU: starts again
    assert RunStore.open(tmp_path, config, cpu).in_progress["phase"] == "finetune"
    on_gpu = RunStore.open(tmp_path, config, gpu)
    assert on_gpu.in_progress is None and "precision 'mixed_bfloat16' -> 'mixed_float16'" in (
        on_gpu.notes[-1])


def test_a_fallback_keeps_the_phases_it_made_itself(fast_copy, monkeypatch):
    recorded_weights(fast_copy, "none")  # trained offline before: the same fallback again
    monkeypatch.setattr(model_module, "resolve_weights", weights_unavailable)
    pipeline = open_pipeline(fast_copy, weights="auto", **FAST)
    assert pipeline.inputs.fell_back == ("weights",)
    assert set(pipeline.store.finished) == {"head", "finetune"}


def test_a_missing_phase_one_model_is_said_before_both_phases_train_again(fast_copy):
    (fast_copy / "phase1.keras").unlink()
    lines = []
    assert open_pipeline(fast_copy, lines, **FAST).store.finished == {}
    assert any("phase1.keras is missing" in line for line in lines), lines


def test_a_damaged_saved_model_names_the_remedy(fast_copy):
    (fast_copy / "model.keras").write_bytes(b"cut off")
    pipeline = open_pipeline(fast_copy, **FAST)
    with pytest.raises(WeightsError, match="model.keras.*Delete that file to train the "
                       "'finetune' phase"):
        pipeline.run()


def test_a_cut_off_log_line_is_skipped(tmp_path):
    log = tmp_path / "training_log.csv"
    log.write_text("epoch,accuracy,loss\n0,0.5,1.2\n1,0.6\n")  # killed while writing epoch 1
    assert log_rows(log) == [{"epoch": 0, "accuracy": 0.5, "loss": 1.2}]


class PoisonHead(keras.callbacks.Callback):
    """Makes the loss NaN from the first step: a learning rate far too high."""

    def on_train_batch_begin(self, batch, logs=None):
        kernel = self.model.get_layer("predictions").kernel
        kernel.assign(np.full(kernel.shape, np.nan, dtype="float32"))


def test_a_nan_phase_is_not_resumed_from_its_backup(tmp_path):
    """BackupAndRestore saves the NaN epoch; resuming it would fail again at once."""
    with pytest.raises(TrainingError, match="NaN"):
        Pipeline(quick(tmp_path / "run"), log=lambda text: None, verbose=0,
                 callbacks=[PoisonHead()]).run("head")
    assert not (tmp_path / "run" / "backup_head").exists()
    assert not (tmp_path / "run" / "training_log.csv").exists()
    lines = []
    pipeline = open_pipeline(tmp_path / "run", lines)
    assert pipeline.store.in_progress is None
    pipeline.run("head")
    assert not any("resuming" in line for line in lines), lines


class CtrlCAtFirstBatch(keras.callbacks.Callback):
    def on_train_batch_begin(self, batch, logs=None):
        raise KeyboardInterrupt


@pytest.mark.parametrize("feature_cache, said", [
    (False, "head on the frozen base: starting again, interrupted before its first backup =="),
    (True, "head on the frozen base: resuming (the cached features are kept, the head trains")])
def test_a_phase_stopped_before_its_first_backup_says_it_starts_again(tmp_path, feature_cache,
                                                                       said):
    """Ctrl-C inside the first epoch leaves no backup to resume; phase 1 on cached features
    never has one, but keeps its features."""
    with pytest.raises(KeyboardInterrupt):
        Pipeline(quick(tmp_path / "run", feature_cache=feature_cache), log=lambda text: None,
                 verbose=0, callbacks=[CtrlCAtFirstBatch()]).run("head")
    lines = []
    pipeline = open_pipeline(tmp_path / "run", lines, feature_cache=feature_cache)
    assert pipeline.store.in_progress["phase"] == "head"
    pipeline.run("head")
    assert [line for line in lines if said in line], lines


def test_other_training_errors_keep_the_phases_backup(tmp_path, monkeypatch):
    """Only a NaN loss makes the backup worthless; 'use another Keras version' must not lose it."""
    pipeline = open_pipeline(tmp_path / "run")

    def refuses(phase):
        pipeline.store.backup_dir(phase).mkdir()  # an epoch was backed up, then it stopped
        raise TrainingError("this Keras version no longer keeps model._initial_epoch")
    monkeypatch.setattr(pipeline, "_fit_phase", refuses)
    with pytest.raises(TrainingError):
        pipeline.run("head")
    assert (tmp_path / "run" / "backup_head").is_dir()
    assert open_pipeline(tmp_path / "run").store.in_progress["phase"] == "head"


def test_out_of_memory_says_what_to_lower_and_keeps_the_phases_backup(tmp_path, monkeypatch):
    """A big --image-size, or a big batch on a small GPU: one sentence, not a long traceback."""
    import tensorflow as tf

    pipeline = open_pipeline(tmp_path / "run")

    def runs_out(phase):
        pipeline.store.backup_dir(phase).mkdir()
        raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor")
    monkeypatch.setattr(pipeline, "_fit_phase", runs_out)
    with pytest.raises(TrainingError, match="out of memory .* lower --batch-size or --image-size"
                       ".* both phases train again"):
        pipeline.run("head")
    assert (tmp_path / "run" / "backup_head").is_dir() and pipeline.model is None


def test_a_run_store_opens_a_folder_that_does_not_exist_yet(tmp_path):
    store = RunStore.open(tmp_path / "new" / "run", quick(tmp_path / "new" / "run"))
    assert (tmp_path / "new" / "run" / "run.json").exists() and store.finished == {}


def test_resuming_mends_a_log_line_cut_off_by_a_kill(tmp_path):
    """Keras appends to the log: the next row would land on the cut line and be lost with it."""
    config = quick(tmp_path / "run")
    RunStore.open(tmp_path / "run", config).start("head")
    log = tmp_path / "run" / "training_log.csv"
    log.write_text("epoch,accuracy,loss\n0,0.5,1.2\n1,0.6")  # killed while writing epoch 1
    RunStore.open(tmp_path / "run", config).start("head")  # resumes
    with open(log, "a") as handle:
        handle.write("1,0.7,1.0\n")  # what CSVLogger(append=True) writes next
    assert [row["epoch"] for row in log_rows(log)] == [0, 1]


def test_a_full_disk_while_a_notebook_trains_says_what_to_do_without_a_traceback(tmp_path,
                                                                               monkeypatch):
    import errno

    def disk_full(model, path):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(model_module, "save_for_inference", disk_full)
    pipeline = open_pipeline(tmp_path / "run", epochs_head=1)
    with pytest.raises(OutputError) as raised:
        pipeline.run("head")  # as notebook 03 calls it
    message = str(raised.value)
    assert message.startswith(f"could not write to {tmp_path / 'run'}: No space left on device")
    assert "free some space (in Google Drive, also empty its trash)" in message
    assert raised.value.__suppress_context__  # the OSError's traceback is not shown
    assert "head" not in pipeline.store.finished and (tmp_path / "run" / "backup_head").is_dir()
