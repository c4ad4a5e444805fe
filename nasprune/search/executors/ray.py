"""``executor: ray``: the search's workers run as Ray tasks, for teams that already run a cluster.

Each task is one worker (:func:`nasprune.search.join`) on the search: it loads the supernet once
(the checkpoint the first worker recorded in the store) and then evaluates candidate after
candidate, each claimed in the store under a lease, so the store stays the single record and
the lease rules are those of any worker. A task that is lost (its node died) leaves its trial
to expire and be retried by another task, and Ray runs the lost task again, up to the
config's ``execution.max_attempts``. A task asks for ``execution.gpus_per_trial`` GPUs.

Ray is an optional extra: ``pip install 'nasprune[ray]'``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from nasprune.errors import SearchError
from plumbing import require


def require_ray() -> Any:
    """The ray module, or SearchError with the install hint (checked before a row is written)."""
    return require("ray", "the Ray executor needs Ray", "'nasprune[ray]'", SearchError)


def _work(name: str, url: str) -> dict[str, Any]:
    """One Ray task: a worker on the search until its budget is spent."""
    from nasprune.search import join

    result = join(name, storage=url)
    return {"new_trials": result.new_trials, "stopped_because": result.stopped_because}


def run_on_ray(
    name: str,
    url: str,
    tasks: int,
    *,
    address: str | None = None,
    gpus: float = 0.0,
    retries: int = 3,
    progress: Callable[[], None] | None = None,
) -> int:
    """Run ``tasks`` worker tasks on the Ray cluster at ``address`` (None: a local one) and
    wait for them, calling ``progress`` now and then; returns the trials they evaluated."""
    ray = require_ray()
    started_here = not ray.is_initialized()
    if started_here:
        try:
            ray.init(
                address=address,
                include_dashboard=False,
                log_to_driver=False,
                runtime_env={"env_vars": _env()},
            )
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = address or "a local Ray"
            raise SearchError(f"cannot start or reach {where}: {exc}") from exc
    remote = ray.remote(num_gpus=gpus, max_retries=retries, num_cpus=1)(_work)
    try:
        pending = [remote.remote(name, url) for _ in range(tasks)]
        evaluated = 0
        while pending:
            done, pending = ray.wait(pending, timeout=1.0)
            for ref in done:
                try:
                    evaluated += ray.get(ref)["new_trials"]
                except ray.exceptions.RayError as exc:
                    raise SearchError(f"a Ray worker task failed: {_last_line(exc)}") from exc
            if progress is not None:
                progress()
        return evaluated
    finally:
        if started_here:
            ray.shutdown()


def _env() -> dict[str, str]:
    """What the tasks need of this process's environment: where nasprune's code is (the
    store's URL is passed to each task)."""
    return {"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else {}


def _last_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__
