"""``nasprune run --workers N``: N - 1 ``nasprune worker`` processes beside this one.

A worker process that dies (killed, out of memory) loses at most the trial it held, which
another worker retries: the search is judged by the store afterwards, not by its workers' exit
statuses (:func:`judged`)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING

from nasprune.errors import WorkersFailedError
from storage import Store, TrialState

if TYPE_CHECKING:
    from nasprune.search import SearchResult


@contextmanager
def local_workers(name: str, url: str, count: int) -> Iterator[list[str]]:
    """Start ``count`` worker processes on the search, run the body (this process works
    too), then wait for them. Yields a list that holds, after the body, one line for each
    worker process that failed (its last line of stderr). An interrupt reaches them through
    the terminal's process group; if the body fails, they are stopped."""
    command = [sys.executable, "-m", "nasprune", "worker", name, "--quiet"]
    env = {**os.environ, "NASPRUNE_STORAGE": url}  # the URL stays out of `ps`
    children = [
        subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _ in range(count)
    ]
    failed: list[str] = []
    try:
        yield failed
    except BaseException:
        for child in children:
            child.terminate()
        for child in children:
            child.wait()
        raise
    for child in children:
        _, stderr = child.communicate()
        if child.returncode != 0:
            lines = stderr.decode(errors="replace").strip().splitlines()
            failed.append(lines[-1] if lines else f"exit status {child.returncode}")


def judged(result: SearchResult, store: Store, failed: list[str], count: int) -> SearchResult:
    """``result`` once the worker processes are done: with a warning when some failed but the
    search reached its budget all the same (nothing was lost), a :class:`WorkersFailedError`
    when it did not."""
    if not failed:
        return result
    record = store.get_search(result.name)
    completed = store.count_trials(record.search_id, [TrialState.COMPLETE])
    what = f"{len(failed)} of {count} worker processes failed ({failed[0]})"
    if completed < record.budget_trials:
        raise WorkersFailedError(
            f"{what}; the search has {completed} of {record.budget_trials} trials: "
            f"`nasprune resume {result.name}` carries on"
        )
    return replace(
        result,
        status=record.status,
        completed=completed,
        warnings=[*result.warnings, f"{what}; the others finished the search's budget"],
    )
