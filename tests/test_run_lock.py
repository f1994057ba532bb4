"""One run at a time in a run folder: a live run's lock refuses a second run with what to do; the
lock of a run that has ended (killed, a disconnected Colab runtime) is taken over."""

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from cifar_helpers import run_lock as lock_module
from cifar_helpers.errors import OutputError, RunFolderBusyError
from cifar_helpers.run_lock import LOCK_FILE, run_lock
from test_pipeline import open_pipeline


def write_lock(folder, **holder):
    """A lock as another run leaves it (by default a fresh one from this machine)."""
    holder = {"host": socket.gethostname(), "pid": 1, "started": time.time() - 60,
              "command": "`python -m cifar_helpers train`", "alive_at": time.time(), **holder}
    (folder / LOCK_FILE).write_text(json.dumps(holder))
    return holder


def read_lock(folder):
    return json.loads((folder / LOCK_FILE).read_text())


@pytest.fixture
def sleeper():
    """A live process on this machine that is not this one."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield process
    process.kill()
    process.wait()


def test_the_lock_names_this_process_while_held_and_is_removed_after(tmp_path):
    with run_lock(tmp_path):
        holder = read_lock(tmp_path)
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        with run_lock(tmp_path):  # nested (run_study around Pipeline.run): the same lock
            assert read_lock(tmp_path) == holder
        assert read_lock(tmp_path) == holder  # the inner block does not release it
    assert not (tmp_path / LOCK_FILE).exists()


def test_a_lock_is_released_when_the_block_raises(tmp_path):
    with pytest.raises(KeyboardInterrupt), run_lock(tmp_path):
        raise KeyboardInterrupt
    assert not (tmp_path / LOCK_FILE).exists()


def test_a_live_run_on_this_machine_keeps_the_folder_until_it_has_ended(tmp_path, sleeper):
    other = write_lock(tmp_path, pid=sleeper.pid)
    with pytest.raises(RunFolderBusyError) as refused, run_lock(tmp_path):
        pass
    message = str(refused.value)
    assert f"another run is training there (process {sleeper.pid} on {other['host']}" in message
    assert "Wait until it has finished (or stop it)" in message and "--out" in message
    assert "Colab" not in message  # on this machine a lock ends with its process
    assert isinstance(refused.value, OutputError)  # the CLI prints it as one line
    assert read_lock(tmp_path) == other  # untouched

    sleeper.kill()
    sleeper.wait()
    lines = []
    with run_lock(tmp_path, lines.append):
        assert read_lock(tmp_path)["pid"] == os.getpid()
    assert lines == [f"{tmp_path}: taking over the lock of a run that has ended (process "
                     f"{sleeper.pid} on {other['host']}, `python -m cifar_helpers train`; last "
                     f"sign of life 0 s ago)"]


def test_another_machines_lock_counts_until_it_has_given_no_sign_of_life_for_a_while(tmp_path):
    """Colab runtimes sharing a run folder in Google Drive: their processes cannot be seen."""
    write_lock(tmp_path, host="colab-runtime-2", pid=os.getpid())  # a pid means nothing there
    with pytest.raises(RunFolderBusyError, match="its lock counts as ended 120 s after its last "
                       "sign of life: run again then"), run_lock(tmp_path):
        pass
    write_lock(tmp_path, host="colab-runtime-2", alive_at=time.time() - 121)
    with run_lock(tmp_path, lambda text: None):
        assert read_lock(tmp_path)["host"] == socket.gethostname()


def test_a_lock_left_by_this_process_is_taken_over(tmp_path):
    """E.g. a notebook kernel whose earlier run was stopped before it could remove its lock."""
    write_lock(tmp_path, pid=os.getpid())
    with run_lock(tmp_path, lambda text: None):
        assert read_lock(tmp_path)["started"] > time.time() - 10


def test_a_lock_cut_off_while_written_counts_as_alive_only_for_a_while(tmp_path):
    lock = tmp_path / LOCK_FILE
    lock.write_text("")
    with pytest.raises(RunFolderBusyError), run_lock(tmp_path):
        pass
    long_ago = time.time() - 600
    os.utime(lock, (long_ago, long_ago))
    with run_lock(tmp_path, lambda text: None):
        assert read_lock(tmp_path)["pid"] == os.getpid()


def test_the_heartbeat_refreshes_the_lock_and_leaves_one_taken_over_alone(tmp_path, monkeypatch):
    monkeypatch.setattr(lock_module, "HEARTBEAT_SECONDS", 0.02)
    with run_lock(tmp_path):
        first = read_lock(tmp_path)["alive_at"]
        time.sleep(0.3)
        assert read_lock(tmp_path)["alive_at"] > first
        other = write_lock(tmp_path, host="colab-runtime-2")  # this process was paused too long
        time.sleep(0.3)
        assert read_lock(tmp_path) == other  # neither refreshed...
    assert read_lock(tmp_path) == other  # ...nor removed


def test_a_pipeline_that_waited_loads_what_the_other_run_finished_meanwhile(tmp_path):
    """Notebook 04 opened while 03 trained: once 03 is done, running 04's cell again must load
    phase 1, not train it a second time from the folder as it was when 04 opened it."""
    lines = []
    waiting = open_pipeline(tmp_path / "run", lines, epochs_head=1)
    open_pipeline(tmp_path / "run", epochs_head=1).run("head")
    waiting.run("head")
    assert any("head on the frozen base: finished before, loaded from" in line
               for line in lines), lines
    assert not (tmp_path / "run" / LOCK_FILE).exists()


def test_a_second_cli_run_in_the_same_folder_is_refused_while_the_first_trains(tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "cifar_helpers", "train", "--profile", "quick",
               "--train-limit", "100", "--test-limit", "20", "--epochs-head", "1",
               "--epochs-finetune", "30", "--out", str(out)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while not (out / LOCK_FILE).exists() and first.poll() is None:
            assert time.time() < deadline
            time.sleep(0.5)
        second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        assert first.poll() is None, "the first run ended before the second one tried"
    finally:
        first.kill()
        first.wait()
    assert second.returncode != 0
    said = (f"{out} is in use: another run is training there (process {first.pid} on "
            f"{socket.gethostname()}, `python -m cifar_helpers train --profile quick")
    assert said in second.stderr, second.stderr[-2000:]
    assert "Traceback" not in second.stderr, second.stderr[-2000:]


def test_a_full_disk_when_the_lock_is_written_is_one_clear_error(tmp_path, monkeypatch):
    import errno

    pipeline = open_pipeline(tmp_path / "run")

    def disk_full(lock, me):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(lock_module, "create", disk_full)
    with pytest.raises(OutputError, match="No space left on device.* free some space") as raised:
        pipeline.run("head")
    assert raised.value.__suppress_context__  # no OSError traceback
