"""One training run at a time in a run folder: a lock file that says who is training there.

Two runs training into one folder (notebook 04 opened in a second tab while 03 still trains, or
a notebook and the CLI) would resume the same phase twice and overwrite each other's backups
and models. While `Pipeline.run` works, the folder holds `.lock`: the machine, the process and a
sign of life that a background thread refreshes every `HEARTBEAT_SECONDS`. Another run is
refused with what to do. A lock whose process has ended on this machine is taken over at once;
one from another machine (Colab with Google Drive) once it has given no sign of life for
`STALE_SECONDS`, which is how a disconnected Colab runtime's lock ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

from .errors import RunFolderBusyError
from .files import write_text_atomic

LOCK_FILE = ".lock"
HEARTBEAT_SECONDS = 20.0
STALE_SECONDS = 120.0  # six missed heartbeats; Google Drive can take a while to show a write

_held: set[Path] = set()  # folders whose lock this process holds


@contextlib.contextmanager
def run_lock(folder: str | os.PathLike, log: Callable[[str], None] = print) -> Iterator[None]:
    """Hold the run folder's lock while the block runs (a nested call in one process shares it)."""
    folder, key = Path(folder), Path(folder).resolve()
    if key in _held:
        yield
        return
    me = acquire(folder, log)
    stop = threading.Event()
    beat = threading.Thread(target=keep_alive, args=(folder / LOCK_FILE, me, stop), daemon=True)
    _held.add(key)
    beat.start()
    try:
        yield
    finally:
        _held.discard(key)
        stop.set()
        beat.join()
        release(folder / LOCK_FILE, me)


def acquire(folder: Path, log: Callable[[str], None]) -> dict:
    """Create the lock file, taking over one whose run has ended; refuse a live one."""
    lock = folder / LOCK_FILE
    me = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time(),
          "command": this_command()}
    for _ in range(3):  # another run may take a stale lock between our look and our create
        if create(lock, me):
            return me
        holder = read_holder(lock)
        if holder_alive(holder):
            raise RunFolderBusyError(busy_message(folder, holder))
        log(f"{folder}: taking over the lock of a run that has ended ({describe(holder)})")
        lock.unlink(missing_ok=True)
    raise RunFolderBusyError(f"{folder}: another run keeps taking its lock; run again later")


def this_command() -> str:
    """What this process is, for the message another run shows."""
    if "ipykernel" in " ".join(sys.argv):
        return "a Jupyter notebook's kernel"
    program = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path("python")
    name = f"python -m {program.parent.name}" if program.name == "__main__.py" else program.name
    return f"`{' '.join([name, *sys.argv[1:]])[:200]}`"


def create(lock: Path, me: dict) -> bool:
    """Write a new lock naming this run; False when a lock is there already."""
    try:
        handle = open(lock, "x", encoding="utf-8")
    except FileExistsError:
        return False
    try:
        with handle:
            handle.write(json.dumps({**me, "alive_at": time.time()}))
    except BaseException:  # a full disk, say: leave no empty lock that would look alive
        lock.unlink(missing_ok=True)
        raise
    return True


def read_holder(lock: Path) -> dict:
    """What a lock file says about its run; one cut off while written counts as alive a while."""
    try:
        text, modified = lock.read_text(encoding="utf-8"), lock.stat().st_mtime
    except OSError:
        return {"alive_at": 0.0}  # gone (released) or unreadable: not worth waiting for
    try:
        holder = json.loads(text)
    except ValueError:
        return {"alive_at": modified}
    return holder if isinstance(holder, dict) else {}


def holder_alive(holder: dict) -> bool:
    """Whether the run named by a lock may still be working."""
    if seconds_quiet(holder) > STALE_SECONDS:
        return False
    if not process_visible(holder):
        return True
    pid = holder.get("pid")
    return pid != os.getpid() and process_exists(pid)  # our own pid: left by this process


def process_visible(holder: dict) -> bool:
    """Whether this machine can tell if a lock's process still runs: its own, and POSIX (on
    Windows os.kill would end the process), so elsewhere only the heartbeat counts."""
    return holder.get("host") == socket.gethostname() and os.name == "posix"


def seconds_quiet(holder: dict) -> float:
    """Seconds since a lock's run last gave a sign of life (a damaged entry: forever)."""
    try:
        return max(time.time() - float(holder.get("alive_at")), 0.0)
    except (TypeError, ValueError):
        return float("inf")


def process_exists(pid: object) -> bool:
    """Whether a process with this id runs on this machine (POSIX)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    return True


def keep_alive(lock: Path, me: dict, stop: threading.Event) -> None:
    """Refresh the lock's sign of life until `stop`, while the lock is still ours."""
    while not stop.wait(HEARTBEAT_SECONDS):
        if not is_ours(read_holder(lock), me):
            return  # taken over (this process was paused longer than STALE_SECONDS)
        with contextlib.suppress(OSError):  # a failed write is retried at the next beat
            write_text_atomic(lock, json.dumps({**me, "alive_at": time.time()}))


def release(lock: Path, me: dict) -> None:
    """Remove the lock if it is still ours."""
    if is_ours(read_holder(lock), me):
        lock.unlink(missing_ok=True)


def is_ours(holder: dict, me: dict) -> bool:
    """Whether a lock names this run (machine, process and start time)."""
    return all(holder.get(key) == me[key] for key in ("host", "pid", "started"))


def describe(holder: dict) -> str:
    """Who holds a lock, for people: process, machine, command, last sign of life."""
    command = f", {holder['command']}" if holder.get("command") else ""
    quiet = seconds_quiet(holder)
    return (f"process {holder.get('pid', '?')} on {holder.get('host', '?')}{command}; last sign "
            f"of life {f'{quiet:.0f} s ago' if quiet < float('inf') else 'unknown'}")


def busy_message(folder: Path, holder: dict) -> str:
    """Why a run is refused a folder, and what to do."""
    text = (f"{folder} is in use: another run is training there ({describe(holder)}). Two runs "
            "in one folder would overwrite each other's backups and models. Wait until it has "
            "finished (or stop it) and run again, or train into another folder (--out, or out= "
            "in load_config).")
    if not process_visible(holder):
        text += (f" If that run is gone (a Colab runtime that disconnected), its lock counts as "
                 f"ended {STALE_SECONDS:.0f} s after its last sign of life: run again then.")
    return text
