"""The notebooks' training path keeps the CLI's promises: a phase killed mid-way resumes losing
at most one epoch, and a finished CLI run spares notebook 04 its phase 1."""

import json
import signal

from cifar_helpers.resume import KILL_SWITCH_ENV
from notebook_scripts import cli_train, run_notebook

SMALL = {"CIFAR_TRAIN_LIMIT": "100", "CIFAR_TEST_LIMIT": "20"}


def test_notebook_03_killed_mid_phase_resumes_from_its_last_epoch(tmp_path):
    settings = {**SMALL, "CIFAR_EPOCHS_HEAD": "2"}
    killed = run_notebook("03_head_training", tmp_path, **settings, **{KILL_SWITCH_ENV: "head:1"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    store = tmp_path / "quick"
    assert json.loads((store / "run.json").read_text())["in_progress"]["phase"] == "head"

    again = run_notebook("03_head_training", tmp_path, **settings)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Phase 1: training the head on the frozen base: resuming" in again.stdout
    record = json.loads((store / "run.json").read_text())["finished"]["head"]["record"]
    assert record["epochs_trained_here"] == 1  # epoch 1 survived the kill; only epoch 2 ran
    rows = (store / "training_log.csv").read_text().splitlines()[1:]
    assert [row.split(",")[0] for row in rows] == ["0", "1"]


def test_cli_run_then_notebook_04_trains_no_phase_1_epoch(tmp_path):
    trained = cli_train(tmp_path, "--train-limit", SMALL["CIFAR_TRAIN_LIMIT"],
                        "--test-limit", SMALL["CIFAR_TEST_LIMIT"])
    assert trained.returncode == 0, trained.stderr[-3000:]
    store = tmp_path / "quick"  # the CLI's default run folder is the notebooks' one
    phase1, log = store / "phase1.keras", store / "training_log.csv"
    before = (phase1.stat().st_mtime_ns, json.loads((store / "run.json").read_text()),
              log.read_text().splitlines()[:2])

    notebook = run_notebook("04_fine_tuning", tmp_path, **SMALL)
    assert notebook.returncode == 0, notebook.stderr[-3000:]
    assert "Phase 1: training the head on the frozen base: finished before" in notebook.stdout
    after = json.loads((store / "run.json").read_text())
    assert phase1.stat().st_mtime_ns == before[0]
    assert after["finished"]["head"] == before[1]["finished"]["head"]
    assert log.read_text().splitlines()[:2] == before[2]  # phase 1's epoch, logged once, by the CLI
    assert after["finished"]["finetune"]["record"]["epochs_trained_here"] == 1  # 04's lesson
