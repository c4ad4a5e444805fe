"""Exports made in the background: a request asks for a trial's export and waits a bounded time
for it; the export itself (loading the supernet, cutting the subnet, evaluating it, writing the
file) runs in one thread of the service's own, never in the request, and survives a client that
gives up. A finished export is a file in the export directory, served again on the next ask."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Literal

from storage import Store

Format = Literal["state", "onnx"]
EXTENSIONS: dict[str, str] = {"state": "pt", "onnx": "onnx"}


class ExportsBusy(Exception):
    """As many exports as the service queues are waiting already: ask again later."""


class Exports:
    """The service's exports: one at a time (each loads a model), each made once.

    At most ``max_pending`` exports wait or run at once; asking for another raises
    :class:`ExportsBusy`. A failed export is kept for ``failure_s`` seconds, so whoever asks
    for it again meanwhile gets its error rather than starting it again.

    Example::

        exports = Exports(store)
        job = exports.request("s1", 3, "onnx", folder / "search1-trial3.onnx")
        job.result(timeout=60)  # the path, once written
    """

    def __init__(self, store: Store, *, max_pending: int = 8, failure_s: float = 60.0) -> None:
        self._store = store
        self._max_pending = max_pending
        self._failure_s = failure_s
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nasprune-export")
        self._jobs: dict[Path, Future[Path]] = {}
        self._failed_at: dict[Path, float] = {}
        self._lock = threading.RLock()  # a job done at once calls _forget in request's thread

    def request(self, name: str, trial: int, format: Format, path: Path) -> Future[Path]:
        """The job that writes trial ``trial`` of search ``name`` to ``path``: the one under
        way (or recently failed) for that path, or a new one."""
        with self._lock:
            job = self._jobs.get(path)
            if job is not None and job.done() and not self._recently_failed(path, job):
                job = None  # done: its file is there, or its failure is old enough to retry
            if job is None:
                if sum(not j.done() for j in self._jobs.values()) >= self._max_pending:
                    raise ExportsBusy(f"{self._max_pending} exports are waiting; ask again later")
                job = self._pool.submit(self._make, name, trial, format, path)
                self._jobs[path] = job
                job.add_done_callback(lambda done: self._forget(path, done))
            return job

    def _recently_failed(self, path: Path, job: Future[Path]) -> bool:
        failed_at = self._failed_at.get(path)
        return (
            job.exception() is not None
            and failed_at is not None
            and (time.monotonic() - failed_at < self._failure_s)
        )

    def _forget(self, path: Path, job: Future[Path]) -> None:
        """A written export leaves the table (its file is there); a failed one stays, to be
        reported, until it is asked for again after ``failure_s``."""
        with self._lock:
            if self._jobs.get(path) is job and job.exception() is None:
                del self._jobs[path]

    def _make(self, name: str, trial: int, format: Format, path: Path) -> Path:
        from nasprune.exporting.subnet import export, plan_path_for

        if path.exists():  # made by an earlier job (or another service process) meanwhile
            return path
        part = path.with_name(f".{path.stem}.{os.getpid()}.part.{EXTENSIONS[format]}")
        try:
            export(name, part, trial=trial, storage=self._store, format=format)
            os.replace(plan_path_for(part), plan_path_for(path))
            os.replace(part, path)
        except BaseException:
            for leftover in (part, plan_path_for(part)):
                leftover.unlink(missing_ok=True)
            with self._lock:
                self._failed_at[path] = time.monotonic()  # before the job is seen done
            raise
        with self._lock:
            self._failed_at.pop(path, None)
        return path

    def close(self) -> None:
        """Stops taking exports; the one under way finishes."""
        self._pool.shutdown(wait=False, cancel_futures=True)
