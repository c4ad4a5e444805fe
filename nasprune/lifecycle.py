"""A search's life in the store, without the deep-learning stack: its row written with the
versions it ran under, its budget rule, and the status it takes when a worker stops.

The service's ``POST /searches`` writes rows through here, so the server never loads torch to
create a search; workers (``nasprune.search``) take it from there.
"""

from __future__ import annotations

from importlib import metadata
from typing import TYPE_CHECKING, Literal

from nasprune.config import SearchConfig
from nasprune.errors import SearchError, StateError
from plumbing import first_line
from storage import SearchRecord, SearchStatus, TrialState

if TYPE_CHECKING:
    from storage import Store


def versions() -> dict[str, str]:
    """The versions of nasprune and the libraries a search depends on, as stored with it."""
    found = {}
    for package in ("nasprune", "torch", "optuna", "nni", "sqlalchemy"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "absent"
    return found


def record_search(store: Store, cfg: SearchConfig) -> SearchRecord:
    """Write a new search's row (DuplicateSearchError if the name is taken); nothing runs
    until a worker joins it (``run`` does, or ``nasprune worker NAME``)."""
    return store.create_search(
        cfg.name,
        cfg.model_dump(mode="json"),
        cfg.config_hash(),
        cfg.space.name,
        cfg.strategy.name,
        cfg.budget.trials,
        versions(),
    )


StoppedBecause = Literal["budget", "time", "exhausted", "max-trials", "cancelled"]
# Who may move a search to a status by hand (cancel, resume), from which statuses.
_MOVES = {
    SearchStatus.CANCELLED: {SearchStatus.CREATED, SearchStatus.RUNNING, SearchStatus.PAUSED},
    SearchStatus.RUNNING: {SearchStatus.CANCELLED, SearchStatus.PAUSED, SearchStatus.FAILED},
}


def move(store: Store, name: str, to: SearchStatus) -> SearchRecord:
    """Cancel (``to`` CANCELLED: each worker finishes the trial in hand, then stops; workers
    that join later are refused) or reopen (``to`` RUNNING: workers may join again) a search;
    a :class:`StateError` when its status does not allow it."""
    record = store.get_search(name)
    allowed = _MOVES[to]
    if record.status not in allowed:
        raise StateError(
            f"search {name!r} is {record.status.value}; only a search that is "
            f"{' or '.join(sorted(s.value for s in allowed))} can become {to.value}"
        )
    store.set_search_status(record.search_id, to)
    return store.get_search(name)


def set_budget(store: Store, record: SearchRecord, trials: int) -> SearchRecord:
    """Set the search's total budget: the complete trials it ends with in all. At least one
    trial, and never below the trials already complete (:class:`StateError`)."""
    if trials < 1:
        raise SearchError(f"a search's budget must be at least one trial, not {trials}")
    complete = store.count_trials(record.search_id, [TrialState.COMPLETE])
    if trials < complete:
        raise StateError(
            f"search {record.name!r} already has {complete} complete trials: a total budget "
            f"of {trials} cannot be below that (the budget is the total, not how many more)"
        )
    if trials == record.budget_trials:
        return record
    return store.set_budget(record.search_id, trials)


def status_after(
    store: Store, record: SearchRecord, stopped: StoppedBecause
) -> SearchStatus | None:
    """The status a search takes when a worker stops: completed when the budget or the space
    is spent; paused by a time limit, or when this worker stops early and no other is running
    a trial; None (still running) otherwise. A cancelled search stays cancelled."""
    if stopped == "cancelled" or store.get_search(record.name).status == SearchStatus.CANCELLED:
        return SearchStatus.CANCELLED
    if stopped in ("budget", "exhausted"):
        return SearchStatus.COMPLETED
    if stopped == "time" or not store.count_trials(record.search_id, [TrialState.RUNNING]):
        return SearchStatus.PAUSED
    return None


def mark_failed(store: Store, record: SearchRecord, exc: Exception) -> None:
    """A worker that cannot go on (its space or model refused, a crash) leaves no search
    ``running`` behind it: failed, with the reason as an event, unless other workers are
    running trials of it (they decide how it ends). ``nasprune resume`` continues it."""
    try:
        store.add_event(record.search_id, "failed", f"{type(exc).__name__}: {first_line(exc)}")
        if not store.count_trials(record.search_id, [TrialState.RUNNING]):
            if store.get_search(record.name).status == SearchStatus.RUNNING:
                store.set_search_status(record.search_id, SearchStatus.FAILED)
    except Exception:  # the store itself is gone: the original error says more
        pass
