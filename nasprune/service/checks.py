"""The checks of a posted config that need the deep-learning stack (its space builds from its
params, its latency backend is known) run in a child process of the service's own: started on
the first ``POST /searches``, reused by the next ones (one at a time), ended with the server.
The server process itself never loads torch, nor a user's model.

The child is ``python -m nasprune.service.checks``: one JSON config a line on its stdin, one
JSON answer a line on its stdout (``{"error": null}`` or the one-line error).
"""

from __future__ import annotations

import atexit
import json
import os
import selectors
import subprocess
import sys
import threading
from typing import Any

from nasprune.errors import ConfigError, NasPruneError, first_line

CHECK_TIMEOUT_S = 300.0  # a derived space traces the user's model: it can take a while

_lock = threading.Lock()
_child: subprocess.Popen[str] | None = None


def check_names(body: dict[str, Any], timeout_s: float = CHECK_TIMEOUT_S) -> None:
    """Raise :class:`ConfigError` naming the field when the posted config's space does not
    build from its params or its latency backend is unknown (checked in the child)."""
    with _lock:
        child = _started()
        assert child.stdin is not None and child.stdout is not None
        try:
            child.stdin.write(json.dumps(body) + "\n")
            child.stdin.flush()
            answer = _line(child, timeout_s)
        except (OSError, TimeoutError) as exc:
            _stop()
            why = "took too long" if isinstance(exc, TimeoutError) else "stopped"
            raise ConfigError(f"config: space.params: the check of the space {why}") from None
    error = json.loads(answer)["error"]
    if error is not None:
        raise ConfigError(error)


def _started() -> subprocess.Popen[str]:
    global _child
    if _child is None or _child.poll() is not None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        _child = subprocess.Popen(
            [sys.executable, "-m", "nasprune.service.checks"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
    return _child


def _line(child: subprocess.Popen[str], timeout_s: float) -> str:
    assert child.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(child.stdout, selectors.EVENT_READ)
        if not selector.select(timeout_s):
            raise TimeoutError
    line = child.stdout.readline()
    if not line:
        raise OSError("the checking process ended")
    return line


def _stop() -> None:
    global _child
    if _child is not None and _child.poll() is None:
        _child.kill()
        _child.wait()
    _child = None


def shutdown() -> None:
    """End the checking process (the server stops)."""
    with _lock:
        _stop()


atexit.register(shutdown)


def _check(body: dict[str, Any]) -> None:
    """In the child: the cheap half of :func:`nasprune.search.prepare`."""
    from nasprune.config import parse_config
    from nasprune.latency import create_backend
    from search_spaces import SpaceError, create_space

    cfg = parse_config(body, source="config", check_strategy=False)
    try:
        create_space(cfg.space.name, **cfg.space.params)
    except SpaceError as exc:
        raise ConfigError(f"config: space.params: {first_line(exc)}") from None
    try:
        create_backend(cfg.latency)
    except ConfigError as exc:
        raise ConfigError(f"config: latency.backend: {first_line(exc)}") from None


def _serve() -> None:
    for line in sys.stdin:
        try:
            _check(json.loads(line))
            error = None
        except NasPruneError as exc:
            error = first_line(exc)
        except Exception as exc:  # a model that fails to build is the config's problem
            error = f"config: space.params: {type(exc).__name__}: {first_line(exc)}"
        print(json.dumps({"error": error}), flush=True)


if __name__ == "__main__":
    _serve()
