"""``nasprune run --workers N``: N - 1 ``nasprune worker`` processes beside this one."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from nasprune.errors import SearchError


@contextmanager
def local_workers(name: str, url: str, count: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Start ``count`` worker processes on the search, run the body (this process works
    too), then wait for them. An interrupt reaches them through the terminal's process group;
    if the body fails, they are stopped."""
    command = [sys.executable, "-m", "nasprune", "worker", name, "--quiet"]
    env = {**os.environ, "NASPRUNE_STORAGE": url}  # the URL stays out of `ps`
    children = [
        subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _ in range(count)
    ]
    try:
        yield children
    except BaseException:
        for child in children:
            child.terminate()
        for child in children:
            child.wait()
        raise
    failed = []
    for child in children:
        _, stderr = child.communicate()
        if child.returncode != 0:
            lines = stderr.decode(errors="replace").strip().splitlines()
            failed.append(lines[-1] if lines else f"exit status {child.returncode}")
    if failed:
        raise SearchError(f"{len(failed)} of {count} worker processes failed: {failed[0]}")
