"""Exports made in the background: a request asks for a trial's export and waits a bounded time
for it; the export itself (loading the supernet, cutting the subnet, evaluating it, writing the
file) runs in one thread of the service's own, never in the request, and survives a client that
gives up. A finished export is a file in the export directory, served again on the next ask."""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Literal

from storage import Store

Format = Literal["state", "onnx"]
EXTENSIONS: dict[str, str] = {"state": "pt", "onnx": "onnx"}


class Exports:
    """The service's exports: one at a time (each loads a model), each made once.

    Example::

        exports = Exports(store)
        job = exports.request("s1", 3, "onnx", folder / "search1-trial3.onnx")
        job.result(timeout=60)  # the path, once written
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nasprune-export")
        self._jobs: dict[Path, Future[Path]] = {}
        self._lock = threading.RLock()  # a job done at once calls _forget in request's thread

    def request(self, name: str, trial: int, format: Format, path: Path) -> Future[Path]:
        """The job that writes trial ``trial`` of search ``name`` to ``path``: the one already
        under way for that path, or a new one."""
        with self._lock:
            job = self._jobs.get(path)
            if job is None:
                job = self._pool.submit(self._make, name, trial, format, path)
                self._jobs[path] = job
                job.add_done_callback(lambda done: self._forget(path, done))
            return job

    def _forget(self, path: Path, job: Future[Path]) -> None:
        """A finished job leaves the table: its file is there, or a later ask tries again."""
        with self._lock:
            if self._jobs.get(path) is job:
                del self._jobs[path]

    def _make(self, name: str, trial: int, format: Format, path: Path) -> Path:
        from nasprune.exporter import export, plan_path_for

        if path.exists():  # made by an earlier job (or another service process) meanwhile
            return path
        part = path.with_name(f".{path.stem}.{os.getpid()}.part.{EXTENSIONS[format]}")
        export(name, part, trial=trial, storage=self._store, format=format)
        os.replace(plan_path_for(part), plan_path_for(path))
        os.replace(part, path)
        return path

    def close(self) -> None:
        """Stops taking exports; the one under way finishes."""
        self._pool.shutdown(wait=False, cancel_futures=True)
