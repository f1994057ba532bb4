"""The command line, end to end in the quick profile, and its failure modes."""

import argparse
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from types import SimpleNamespace
from pathlib import Path

import pytest
from cifar_files import write_canonical_dir

from cifar_helpers import cli
from cifar_helpers import model as model_module
from cifar_helpers.config import PROFILE_ALIASES, Config, field_types, load_config
from cifar_helpers.errors import DownloadUnavailableError
from cifar_helpers.model import load_trained_model
from cifar_helpers.study import run_study


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("quick") / "results"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, "-m", "cifar_helpers", "train", "--profile", "quick",
                           "--train-limit", "200", "--test-limit", "50", "--out", str(out)],
                          check=False, capture_output=True, text=True, env=env, timeout=600)
    return done, out


def test_quick_profile_writes_every_result_file(quick_run):
    done, out = quick_run
    assert done.returncode == 0, done.stderr[-2000:]
    for name in ("metrics.json", "model.keras", "phase1.keras", "history.png",
                 "confusion.png", "report.md", "training_log.csv", "run.json"):
        assert (out / name).stat().st_size > 0, name
    assert not list(out.glob("backup_*")) and not list(out.glob(".*tmp*"))
    assert max(p.stat().st_size for p in out.iterdir()) < 100_000_000  # no optimizer state
    assert "Phase 2" in done.stdout and "Test accuracy" in done.stdout


def test_quick_metrics_are_complete_and_sane(quick_run):
    metrics = json.loads((quick_run[1] / "metrics.json").read_text())
    assert 0.0 <= metrics["test_accuracy"] <= 1.0 and len(metrics["per_class_accuracy"]) == 10
    assert metrics["data"] == {"requested": "sample", "used": "sample", "train_images": 180,
                               "val_images": 20, "test_images": 50}
    assert metrics["weights"]["used"] == "none (random initialisation)"
    assert metrics["precision"] == "float32" and metrics["resumed"] is False
    assert metrics["feature_cache"] == {"requested": False, "used": False}
    head, finetune = metrics["phases"]["head"], metrics["phases"]["finetune"]
    assert (head["trainable_params"], finetune["trainable_params"]) == (271_178, 23_752_650)
    assert head["epochs"] == finetune["epochs"] == 1 and head["images_per_second"] > 0
    assert metrics["history"]["epoch"] == [1, 2] and metrics["history"]["boundaries"] == [1]
    assert {"tensorflow", "keras", "numpy"} <= set(metrics["versions"])


def test_the_report_names_a_scratch_control_and_the_settings_it_changed(quick_run):
    from cifar_helpers.report import render_report

    metrics = json.loads((quick_run[1] / "metrics.json").read_text())
    evaluation = SimpleNamespace(per_class_accuracy={}, most_confused=[], report="")
    first_lines = render_report(metrics, evaluation).splitlines()
    assert first_lines[0] == "# CIFAR-10 transfer-learning run (quick profile)"
    assert "- Settings changed from the profile: train_limit=200, test_limit=50" in first_lines
    metrics["config"].update(recipe="scratch", image_size=64)
    first_lines = render_report(metrics, evaluation).splitlines()
    assert first_lines[0] == "# CIFAR-10 scratch control (no transfer) (quick profile)"
    assert ("- Settings changed from the profile: recipe=scratch, train_limit=200, test_limit=50, "
            "image_size=64") in first_lines  # in Config's order
    metrics["profile"] = "mine"  # a Config made by hand: the report is still written
    assert "- Settings changed from the profile: not compared (no profile 'mine')" in (
        render_report(metrics, evaluation).splitlines())


def study_again_without_training(out, test_limit=50):
    """Run the quick study again in `out`; assert both phases were loaded, not trained."""
    models = {name: (out / name).stat().st_mtime_ns for name in ("phase1.keras", "model.keras")}
    lines = []
    metrics = run_study(load_config("quick", environ={}, train_limit=200, test_limit=test_limit,
                                    out=str(out)), log=lines.append, verbose=0)
    assert {name: (out / name).stat().st_mtime_ns for name in models} == models
    assert sum("finished before" in line for line in lines) == 2
    assert not any("holds a finished" in line for line in lines)
    return metrics


def test_a_run_stopped_after_phase_2_only_evaluates_when_run_again(quick_run, tmp_path):
    """Interrupted between saving phase 2 and writing the results: nothing is trained again."""
    out = shutil.copytree(quick_run[1], tmp_path / "results")
    for name in ("metrics.json", "report.md", "history.png", "confusion.png"):
        (out / name).unlink()
    metrics = study_again_without_training(out)
    assert metrics == json.loads((out / "metrics.json").read_text()) and metrics["resumed"]
    first = json.loads((quick_run[1] / "metrics.json").read_text())
    assert metrics["test_accuracy"] == first["test_accuracy"]


def test_a_finished_run_asked_for_another_test_subset_is_only_evaluated_again(quick_run,
                                                                              tmp_path,
                                                                              monkeypatch):
    from cifar_helpers import study

    out = shutil.copytree(quick_run[1], tmp_path / "results")
    clock = iter([1000.0, 1012.5])  # run_study's start, then its time at build_metrics
    monkeypatch.setattr(study, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    metrics = study_again_without_training(out, test_limit=100)
    assert metrics["data"]["test_images"] == 100
    trained = sum(phase["seconds"] for phase in metrics["phases"].values())
    first = json.loads((quick_run[1] / "metrics.json").read_text())["phases"]
    assert trained == sum(phase["seconds"] for phase in first.values()) > 0  # loaded, as recorded
    # The phases' recorded seconds plus this call's 12.5 s; nothing was trained in this call.
    assert metrics["total_seconds"] == round(trained + 12.5, 2)


def test_a_finished_run_with_the_same_settings_says_it_is_trained_again(quick_run, tmp_path,
                                                                        monkeypatch):
    out = shutil.copytree(quick_run[1], tmp_path / "results")
    from cifar_helpers.pipeline import Pipeline

    asked = []

    def stop(self, upto="finetune", restart_from=None):
        asked.append((upto, restart_from))
        raise KeyboardInterrupt  # enough to see what it was about to do
    monkeypatch.setattr(Pipeline, "run", stop)
    lines = []
    with pytest.raises(KeyboardInterrupt):
        run_study(load_config("quick", environ={}, train_limit=200, test_limit=50, out=str(out)),
                  log=lines.append, verbose=0)
    assert any("holds a finished run with these settings: training both phases again" in line
               for line in lines)
    assert asked == [("finetune", "head")]  # both phases again, as it says


def test_same_seed_and_profile_give_identical_figures(quick_run, tmp_path):
    """Reproducible on a CPU: a second run (in this process) repeats every accuracy and loss."""
    again = run_study(load_config("quick", environ={}, train_limit=200, test_limit=50,
                                  out=str(tmp_path / "again")), log=lambda text: None, verbose=0)
    first = json.loads((quick_run[1] / "metrics.json").read_text())
    assert again["test_accuracy"] == first["test_accuracy"]
    assert again["per_class_accuracy"] == first["per_class_accuracy"]
    for figure in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert again["history"][figure] == first["history"][figure], figure


def test_quick_model_file_loads_in_safe_mode(quick_run):
    assert load_trained_model(quick_run[1] / "model.keras").count_params() == 23_858_890


def run_cli(args, capsys):
    code = cli.main(args)
    captured = capsys.readouterr()
    return code, captured.err.strip()


def test_ctrl_c_during_a_run_exits_130_and_says_how_to_resume(tmp_path, capsys, monkeypatch):
    from cifar_helpers import study

    started = []

    def interrupted(config, log):
        started.append(config)
        raise KeyboardInterrupt
    monkeypatch.setattr(study, "run_study", interrupted)
    try:
        code, err = run_cli(["train", "--profile", "quick", "--out", str(tmp_path / "out")],
                            capsys)
    except KeyboardInterrupt:  # escaping, it would stop the whole test session
        pytest.fail("Ctrl-C escaped cli.main instead of ending it with exit status 130")
    assert [(config.profile, config.out) for config in started] == [("quick",
                                                                     str(tmp_path / "out"))]
    assert code == 130
    assert err == "error: interrupted; run the same command again to resume"  # no traceback


def test_bad_argument_is_one_line_without_traceback(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "--epochs-head", "ten"])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and len(err.splitlines()) == 1 and "--epochs-head" in err


def train_parser():
    commands = next(action for action in cli.build_parser()._actions
                    if isinstance(action, argparse._SubParsersAction))
    return commands.choices["train"]


def test_train_flags_are_exactly_the_config_fields():
    flags = {option: action for action in train_parser()._actions
             for option in action.option_strings}
    expected = {"--" + item.name.replace("_", "-") for item in dataclasses.fields(Config)}
    negated = {"--no-" + name.replace("_", "-") for name, kind in field_types().items()
               if kind is bool}
    assert set(flags) == expected | negated | {"-h", "--help"}
    for item in dataclasses.fields(Config):
        action = flags["--" + item.name.replace("_", "-")]
        assert action.dest == item.name and action.default is None, item.name
        if item.metadata["choices"]:
            assert tuple(action.choices) == tuple(item.metadata["choices"]), item.name


def test_readme_usage_lists_every_train_flag_with_its_choices():
    """The README's usage block is written by hand: a new setting's flag must be added there."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    usage = " ".join(readme.split("python -m cifar_helpers train [", 1)[1]
                     .split("```", 1)[0].split())
    flags = {option: action for action in train_parser()._actions
             for option in action.option_strings if option not in ("-h", "--help")}
    assert set(re.findall(r"--[a-z][a-z-]*", usage)) == set(flags)
    for option, action in flags.items():
        if action.choices:  # aliases such as --profile full are not advertised
            listed = re.search(rf"{option} ([\w|]+)", usage).group(1).split("|")
            assert set(listed) == set(action.choices) - set(PROFILE_ALIASES), option


def test_train_flags_parse_to_typed_values_and_none_when_absent():
    args = vars(cli.build_parser().parse_args(["train", "--augment", "--fast-ops", "off",
                                               "--image-size", "64", "--lr-head", "2e-4"]))
    assert args.pop("command") == "train"
    given = {"augment": True, "fast_ops": "off", "image_size": 64, "lr_head": 2e-4}
    assert {name: args[name] for name in given} == given
    assert type(args["image_size"]) is int and type(args["lr_head"]) is float
    assert set(args) == set(field_types())
    assert all(args[name] is None for name in set(args) - set(given))
    config = load_config(environ={}, **args)  # as main() does: None leaves the profile's value
    assert (config.profile, config.augment, config.image_size) == ("seed", True, 64)


def test_bad_choice_is_refused_by_the_parser_in_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "--precision", "float64"])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and len(err.splitlines()) == 1
    assert "--precision" in err and "float64" in err and "Traceback" not in err


def test_missing_data_folder_fails_cleanly(tmp_path, capsys):
    code, err = run_cli(["train", "--profile", "quick", "--data", str(tmp_path / "nope"),
                         "--out", str(tmp_path / "out")], capsys)
    assert code == 1 and err.startswith("error:") and "not a directory" in err
    assert "Traceback" not in err and not (tmp_path / "out" / "metrics.json").exists()


def test_malformed_data_names_the_file(tmp_path, capsys):
    folder, _ = write_canonical_dir(tmp_path)
    (folder / "data_batch_4").write_bytes(b"\x80\x04garbage")
    code, err = run_cli(["train", "--profile", "quick", "--data", str(folder),
                         "--out", str(tmp_path / "out")], capsys)
    assert code == 1 and "data_batch_4" in err and len(err.splitlines()) == 1


def test_unwritable_output_folder_fails_before_training(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    code, err = run_cli(["train", "--profile", "quick", "--out", str(blocker / "out")], capsys)
    assert code == 1 and "cannot write to the run folder" in err


def test_imagenet_weights_unavailable_exits_with_instructions(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(model_module, "imagenet_weights_cache_path", lambda: tmp_path / "w.h5")

    def unreachable(url, timeout):
        raise DownloadUnavailableError(f"cannot reach {url} (test: offline)")
    monkeypatch.setattr(model_module, "check_reachable", unreachable)
    code, err = run_cli(["train", "--profile", "quick", "--weights", "imagenet",
                         "--out", str(tmp_path / "out")], capsys)
    assert code == 1 and "ImageNet weights unavailable" in err and "--weights none" in err
    assert not (tmp_path / "out" / "metrics.json").exists()


def finished_run_folder(folder, accuracy, seconds, **settings):
    """A run folder as a finished study leaves it, reduced to what `compare` reads."""
    folder.mkdir(parents=True)
    config = dataclasses.asdict(load_config("quick", environ={}, out=str(folder), **settings))
    history = {"epoch": [0, 1], "val_accuracy": [0.2, accuracy + 0.01]}
    phases = {"head": {"epochs_trained_here": 1, "seconds": seconds},
              "finetune": {"epochs_trained_here": 1, "seconds": 2 * seconds}}
    (folder / "metrics.json").write_text(json.dumps({
        "test_accuracy": accuracy, "history": history, "phases": phases,
        "total_seconds": 3 * seconds + 1, "config": config}))
    return folder


def test_compare_lists_accuracy_time_and_only_the_settings_that_differ(tmp_path, capsys):
    first = finished_run_folder(tmp_path / "a", 0.5, 10.0)
    second = finished_run_folder(tmp_path / "b", 0.75, 20.0, fine_tune_at="conv5", augment=True)
    code = cli.main(["compare", str(first), str(second)])
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    header, row_a, row_b = out.strip().splitlines()
    assert header.split() == ["run", "test", "accuracy", "best", "val", "accuracy", "epochs",
                              "phase", "1", "s/epoch", "phase", "2", "s/epoch", "total", "s",
                              "fine_tune_at", "augment"]  # in Config's order
    assert row_a.split() == ["a", "0.500", "0.510", "2", "10", "20", "31", "all", "False"]
    assert row_b.split() == ["b", "0.750", "0.760", "2", "20", "40", "61", "conv5", "True"]


def test_compare_tells_small_rates_fallbacks_and_same_named_folders_apart(tmp_path, capsys):
    first = finished_run_folder(tmp_path / "x" / "a" / "run", 0.5, 10.0, lr_finetune=1e-5)
    second = finished_run_folder(tmp_path / "y" / "a" / "run", 0.5, 10.0, lr_finetune=1e-4)
    metrics = json.loads((second / "metrics.json").read_text())
    metrics["data"] = {"used": "sample (fallback: download unavailable)"}
    (second / "metrics.json").write_text(json.dumps(metrics))
    code = cli.main(["compare", str(first), str(second)])
    out, _ = capsys.readouterr()
    header, row_first, row_second = out.strip().splitlines()
    assert code == 0 and header.endswith("lr_finetune  data used")  # the same weights: no column
    assert row_first.split()[0] == str(first) and row_second.split()[0] == str(second)
    assert "1e-05" in row_first and "0.0001" in row_second
    assert "None" in row_first and "fallback" in row_second


def test_compare_reads_a_setting_an_older_run_lacks_as_its_default(tmp_path, capsys):
    old = finished_run_folder(tmp_path / "old", 0.5, 10.0)
    metrics = json.loads((old / "metrics.json").read_text())
    del metrics["config"]["label_smoothing"]  # recorded before the setting existed
    (old / "metrics.json").write_text(json.dumps(metrics))
    same = finished_run_folder(tmp_path / "same", 0.5, 10.0)
    smoothed = finished_run_folder(tmp_path / "smoothed", 0.5, 10.0, label_smoothing=0.1)
    for runs in ([old, same], [old, smoothed], [smoothed, old]):
        assert cli.main(["compare", *map(str, runs)]) == 0
        header = capsys.readouterr().out.splitlines()[0]
        assert header.endswith("label_smoothing") == (smoothed in runs), header


def test_compare_shows_the_precision_and_devices_a_run_used_not_its_download_timeout(tmp_path,
                                                                                    capsys):
    cpu = finished_run_folder(tmp_path / "cpu", 0.5, 10.0)
    gpu = finished_run_folder(tmp_path / "gpu", 0.5, 2.0, download_timeout=60.0)
    metrics = json.loads((gpu / "metrics.json").read_text())
    metrics.update(precision="mixed_float16", devices={
        "strategy": "mirrored", "replicas": 2,
        "devices": ["/job:localhost/replica:0/task:0/device:GPU:0",
                    "/job:localhost/replica:0/task:0/device:GPU:1"]})
    (gpu / "metrics.json").write_text(json.dumps(metrics))
    assert cli.main(["compare", str(cpu), str(gpu)]) == 0
    header, _, gpu_row = capsys.readouterr().out.strip().splitlines()
    assert header.endswith("precision used  devices used") and "download_timeout" not in header
    assert gpu_row.endswith("mixed_float16   GPU:0, GPU:1"), gpu_row
    metrics["phases"]["head"]["precision"] = "mixed_float16"
    metrics["phases"]["finetune"]["precision"] = "float32"  # phase 2 trained on a CPU later
    (gpu / "metrics.json").write_text(json.dumps(metrics))
    assert cli.main(["compare", str(cpu), str(gpu)]) == 0
    assert "mixed_float16 + float32" in capsys.readouterr().out.strip().splitlines()[-1]


def test_compare_of_an_unfinished_run_says_how_to_finish_it(tmp_path, capsys):
    folder = tmp_path / "my runs" / "seed"
    folder.mkdir(parents=True)
    code, err = run_cli(["compare", str(folder)], capsys)
    assert code == 1 and "no finished run here" in err and "same --profile" in err
    assert f"--out '{folder}'" in err  # pastes as one argument
    assert "Traceback" not in err


def test_compare_refuses_a_missing_folder_and_a_foreign_metrics_file_in_one_line(tmp_path,
                                                                                 capsys):
    code, err = run_cli(["compare", str(tmp_path / "nowhere")], capsys)
    assert code == 1 and "no such folder" in err and "--out" not in err
    run = finished_run_folder(tmp_path / "run", 0.5, 10.0)
    code, err = run_cli(["compare", str(run / "metrics.json")], capsys)
    assert code == 1 and "a file; pass the run folder" in err
    for content in ('{"accuracy": 0.9}', "[1]"):
        (tmp_path / "metrics.json").write_text(content)
        code, err = run_cli(["compare", str(tmp_path)], capsys)
        assert code == 1 and "not the metrics of a run of this course" in err
        assert "Traceback" not in err


def test_compare_shows_a_run_without_epochs_and_each_folder_once(tmp_path, capsys):
    # --epochs-head 0 --epochs-finetune 0 is a finished run with an empty history
    folder = finished_run_folder(tmp_path / "none", 0.1, 1.0)
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics["history"] = {}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    other = finished_run_folder(tmp_path / "other", 0.5, 10.0)
    code = cli.main(["compare", str(folder), str(other), str(other)])
    out, _ = capsys.readouterr()
    header, row_none, row_other = out.strip().splitlines()
    assert code == 0 and row_none.split()[:4] == ["none", "0.100", "nan", "0"]
    assert row_other.split()[0] == "other"
