"""SIGKILL a `nasprune` command at a moment its store shows: the crash tests' one way to do it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from storage import Store, get_store


def kill_run_when(
    config_path: Path, url: str, ready: Callable[[Store], bool], what: str, limit_s: float = 240
) -> None:
    """Start `nasprune run CONFIG --quiet` on the store at ``url``, poll the store until
    ``ready(store)`` holds, then SIGKILL the process. Fails if the run ends first or ``what``
    never happens within ``limit_s`` seconds."""

    def store_ready() -> bool:
        if not Path(url.removeprefix("sqlite:///")).exists():
            return False
        store = get_store(url)
        try:
            return ready(store)
        finally:
            store.close()

    kill_command_when(["run", str(config_path)], url, store_ready, what, limit_s)


def kill_command_when(
    args: list[str], url: str, ready: Callable[[], bool], what: str, limit_s: float = 240
) -> None:
    """Start `nasprune ARGS --quiet` on the store at ``url``, poll until ``ready()`` holds,
    then SIGKILL the process. Fails if it ends first or ``what`` never happens within
    ``limit_s`` seconds."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "nasprune", *args, "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "NASPRUNE_STORAGE": url},
    )
    deadline = time.monotonic() + limit_s
    try:
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"{args[0]} ended before the kill: {proc.stderr.read()}"
            if ready():
                return
            time.sleep(0.02)
        raise AssertionError(f"{what} never happened")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
