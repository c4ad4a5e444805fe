"""SIGKILL a `nasprune run` at a moment its store shows: the crash tests' one way to do it."""

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
    proc = subprocess.Popen(
        [sys.executable, "-m", "nasprune", "run", str(config_path), "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "NASPRUNE_STORAGE": url},
    )
    deadline = time.monotonic() + limit_s
    try:
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"the run ended before the kill: {proc.stderr.read()}"
            if Path(url.removeprefix("sqlite:///")).exists():
                store = get_store(url)
                try:
                    if ready(store):
                        return
                finally:
                    store.close()
            time.sleep(0.02)
        raise AssertionError(f"{what} never happened")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
