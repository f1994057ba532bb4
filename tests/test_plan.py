"""Notebook 06's plan: variants as one change each, sizes, costs and the time estimate."""

import dataclasses
import json

import pytest
from cifar_files import write_canonical_dir
from test_pipeline import recorded_weights, weights_unavailable

from cifar_helpers import model as model_module
from cifar_helpers.config import load_config, validate
from cifar_helpers.lessons.plan import (DEFAULT_PLAN, SESSION, VARIANTS, PlanProgress,
                                        describe_plan, finished_metrics, plan_base,
                                        relative_cost, variant_config)
from cifar_helpers.study import finished_with, run_study

SEED = load_config("seed", environ={})


def test_every_variant_changes_the_baseline_in_its_own_folder(tmp_path):
    base = plan_base(SEED, "session")
    for name in VARIANTS:
        config = variant_config(base, name, tmp_path)
        changed = {k for k, v in dataclasses.asdict(config).items()
                   if v != getattr(base, k) and k != "out"}
        assert changed == set(VARIANTS[name](base)), name
        assert config.out == str(tmp_path / name)
    assert variant_config(base, "longer_early_stop", tmp_path).epochs_finetune == 10


@pytest.mark.parametrize("weights", ["imagenet", "/shared/resnet50_notop.h5", "none"])
def test_every_variant_is_a_valid_configuration_whatever_the_weights(tmp_path, weights):
    # a room without internet sets CIFAR_WEIGHTS to a file: scratch must still be allowed to run
    base = plan_base(load_config("seed", environ={}, weights=weights), "session")
    for name in VARIANTS:
        validate(variant_config(base, name, tmp_path))
    assert variant_config(base, "scratch", tmp_path).weights == "none"


def test_session_plan_is_a_subset_with_fewer_epochs_and_no_heavy_variants():
    base = plan_base(SEED, "session")
    assert (base.train_limit, base.epochs_head, base.epochs_finetune) == (
        SESSION["train_limit"], SESSION["epochs_head"], SESSION["epochs_finetune"])
    assert plan_base(SEED, "full") == SEED
    assert plan_base(load_config("quick", environ={}), "session").train_limit == 300  # never more
    assert not {"size_64", "size_128", "longer_early_stop"} & set(DEFAULT_PLAN)
    with pytest.raises(ValueError, match="Received: size='huge'"):
        plan_base(SEED, "huge")


def test_relative_costs_count_pixels_epochs_and_full_training():
    base = plan_base(SEED, "session")
    cost = {name: relative_cost(variant_config(base, name, ""), base) for name in VARIANTS}
    assert cost["baseline"] == cost["augment"] == 1.0
    assert cost["size_64"] == 4.0 and cost["size_128"] == 16.0
    assert cost["scratch"] == pytest.approx((5 * 3 + 5 * 3) / (5 + 15))
    assert cost["longer_early_stop"] == pytest.approx((5 + 30) / 20)
    text = describe_plan(base, DEFAULT_PLAN)
    assert "opt-in size_128" in text and "runs   scratch" in text


def test_progress_estimates_the_plan_from_the_first_variants_epochs(tmp_path):
    base = plan_base(SEED, "session")
    plan = {name: variant_config(base, name, tmp_path) for name in ("baseline", "size_64")}
    lines = []
    progress = PlanProgress(plan, lines.append)
    progress.per_epoch = {"head": 10.0, "finetune": 30.0}
    assert progress.estimate() == pytest.approx((5 * 10 + 5 * 30) * (1 + 4))
    progress.per_epoch = {"finetune": 30.0}  # phase 1 was loaded (a reconnect), not timed
    assert progress.estimate() == pytest.approx((5 * 10 + 5 * 30) * (1 + 4))
    progress.per_epoch = {}
    for epoch in range(base.total_epochs):
        progress.on_epoch_begin(epoch)
        progress.on_epoch_end(epoch)
    assert len(lines) == 3 and "estimated time of all 2 variants" in lines[-1]


def test_finished_metrics_only_for_the_same_settings_and_inputs(tmp_path, monkeypatch):
    """Loaded only where run_study would keep the run: not after a seed change, nor once the data
    (or weights) resolve to something else than the run was made with (a fallback, say)."""
    config = load_config("quick", environ={}, train_limit=100, test_limit=20,
                         out=str(tmp_path / "run"))
    assert finished_metrics(config) is None
    trained = run_study(config, log=lambda text: None, verbose=0)
    assert finished_metrics(config)["test_accuracy"] == trained["test_accuracy"]
    assert finished_metrics(dataclasses.replace(config, seed=1)) is None
    # how long a download may take does not change what it computed
    assert finished_metrics(dataclasses.replace(config, download_timeout=20.0)) is not None
    # made with ImageNet weights, which 'auto' falls back from here: its real results are shown
    recorded_weights(tmp_path / "run", "imagenet")
    monkeypatch.setattr(model_module, "resolve_weights", weights_unavailable)
    lines = []
    shown = finished_metrics(dataclasses.replace(config, weights="auto"), lines.append)
    assert shown["test_accuracy"] == trained["test_accuracy"], lines
    assert any("showing its recorded results" in line for line in lines), lines
    monkeypatch.undo()
    real_data, _ = write_canonical_dir(tmp_path)
    lines = []
    assert finished_metrics(dataclasses.replace(config, data=str(real_data)), lines.append) is None
    assert any("trained again, because data" in line for line in lines), lines


def test_a_finished_run_recorded_before_a_setting_existed_counts_at_its_default(tmp_path):
    config = load_config("quick", environ={}, out=str(tmp_path))
    recorded = {k: v for k, v in dataclasses.asdict(config).items() if k != "label_smoothing"}
    (tmp_path / "metrics.json").write_text(json.dumps({"config": recorded}))
    assert finished_with(tmp_path / "metrics.json", config)
    assert not finished_with(tmp_path / "metrics.json",
                             dataclasses.replace(config, label_smoothing=0.1))
