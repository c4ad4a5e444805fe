"""Reading the store with SQLAlchemy Core only: searches, trials, best trial, Pareto front,
events, fine-tuning runs and devices.

:class:`storage.Store` inherits every method here. A query that only reads (``nasprune best``
in a deployment script's loop) opens a :class:`Reader` with :func:`get_reader` instead, which
loads neither the ORM nor Alembic when the database is at the head revision.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Self, TypeVar

from sqlalchemy import Connection, Engine, Select, case, func, select, union_all
from sqlalchemy.exc import SQLAlchemyError

from storage.engine import create_store_engine, is_at_head, one_line, safe_url
from storage.errors import SearchNotFoundError, StoreError
from storage.pareto import non_dominated
from storage.queries import (
    IN_CHUNK,
    best_trial_query,
    maximize,
    numbered_trials_query,
    pareto_points_query,
    trial_filter,
)
from storage.reconnect import RECONNECT_S, is_disconnect, lost_connection, retry_disconnects
from storage.records import (
    COLUMN_METRICS,
    DeviceKey,
    EventRecord,
    FinetuneRecord,
    SearchRecord,
    TrialRecord,
    TrialState,
)
from storage.tables import (
    event_record,
    events,
    finetune_record,
    finetunes,
    latency_measurements,
    search_record,
    searches,
    trial_record,
    trials,
)

UNIT_PREFIX = "unit:"  # the arch_hash of a lookup-table unit's measurement starts with this
FINISHED_STATES = [state for state in TrialState if state.is_finished()]
_T = TypeVar("_T")


BEST_CHUNK = 100  # searches per UNION ALL of best-trial queries


@dataclasses.dataclass
class Tally:
    """A search's trials per state, and the seconds its finished trials took (None: none)."""

    counts: dict[TrialState, int]
    seconds: float | None


@dataclasses.dataclass(frozen=True)
class BestQuestion:
    """Which trial of a search is best: its metric, direction and limits (latency, params,
    MACs; None for no limit)."""

    search_id: int
    metric: str
    direction: str
    limits: tuple[float | None, float | None, float | None]


class Reader:
    """Read-only access to a store whose schema is at the head revision.

    Open one with :func:`get_reader`. Every method reads in its own transaction on a pooled
    connection and returns frozen records; driver errors raise :class:`StoreError` naming the
    URL. A lost connection (a PostgreSQL server that restarts) is retried for ``reconnect_s``
    seconds, then raises :class:`storage.ConnectionLostError` (see :mod:`storage.reconnect`).
    Like a Store, a Reader may be shared by the threads of a process.

    Example::

        reader = get_reader("sqlite:///nasprune.db")
        search = reader.get_search("s1")
        best = reader.best_trial(search.search_id, max_latency_ms=3.0)
    """

    def __init__(self, url: str, engine: Engine, *, reconnect_s: float = RECONNECT_S) -> None:
        self.url = url
        self._engine = engine
        self._reconnect_s = reconnect_s

    def __repr__(self) -> str:
        return f"{type(self).__name__}({safe_url(self.url)!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release every pooled connection; the store must not be used afterwards."""
        self._engine.dispose()

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        """A connection whose transaction is rolled back at the end; driver errors become
        StoreError (ConnectionLostError for a lost connection)."""
        try:
            with self._engine.connect() as connection:
                yield connection
        except SQLAlchemyError as exc:
            if is_disconnect(exc, self._engine):
                raise lost_connection(self.url, exc) from exc
            raise StoreError(f"store {safe_url(self.url)}: {one_line(exc)}") from exc

    def _read(self, work: Callable[[Connection], _T]) -> _T:
        """``work`` on a connection, run again on a new one if the connection is lost."""

        def once() -> _T:
            with self._connection() as connection:
                return work(connection)

        return retry_disconnects(once, self._engine, self.url, self._reconnect_s)

    # searches

    def get_search(self, name: str) -> SearchRecord:
        """The search of that name; SearchNotFoundError lists the names that exist."""

        def read(connection: Connection) -> SearchRecord | list[str]:
            row = connection.execute(select(searches).filter_by(name=name)).one_or_none()
            if row is not None:
                return search_record(row)
            query = select(searches.c.name).order_by(searches.c.name)
            return list(connection.scalars(query))

        found = self._read(read)
        if isinstance(found, SearchRecord):
            return found
        known = ", ".join(found) if found else "none"
        raise SearchNotFoundError(
            f"no search named {name!r} in {safe_url(self.url)}; known: {known}"
        )

    def list_searches(self) -> list[SearchRecord]:
        """Every search, oldest first."""
        query = select(searches).order_by(searches.c.search_id)
        return self._read(lambda connection: [search_record(r) for r in connection.execute(query)])

    def events(self, search_id: int) -> list[EventRecord]:
        """The search's events, oldest first."""
        query = select(events).filter_by(search_id=search_id).order_by(events.c.event_id)
        return self._read(lambda connection: [event_record(r) for r in connection.execute(query)])

    # trials

    def trials(
        self, search_id: int, states: Iterable[TrialState] | None = None
    ) -> list[TrialRecord]:
        """The search's trials ordered by number, optionally only those in ``states``."""
        query = select(trials).where(*trial_filter(search_id, states)).order_by(trials.c.number)
        return self._trials(query)

    def trial_page(
        self,
        search_id: int,
        states: Iterable[TrialState] | None = None,
        *,
        order_by: str = "number",
        descending: bool = False,
        limit: int = 50,
        offset: int = 0,
        after: int | None = None,
    ) -> list[TrialRecord]:
        """One page of the search's trials (in ``states``), sorted by ``number`` or a column
        metric (trials without the metric last), then by number.

        ``after`` pages by key rather than by offset, in number order only: the trials that
        come after trial ``after`` (pass the last number of the page before), found through
        the index, however deep the page.
        """
        if order_by != "number" and order_by not in COLUMN_METRICS:
            known = ", ".join(("number", *COLUMN_METRICS))
            raise StoreError(f"cannot sort trials by {order_by!r}; known: {known}")
        if after is not None and order_by != "number":
            raise StoreError(f"paging after a trial needs number order, not {order_by!r}")
        column = trials.c[order_by]
        key = column.desc() if descending else column.asc()
        query = select(trials).where(*trial_filter(search_id, states))
        if after is not None:
            query = query.where(column < after if descending else column > after)
        query = query.order_by(column.is_(None), key, trials.c.number)
        return self._trials(query.limit(limit).offset(offset))

    def finished_trials(self, search_id: int, since: datetime | None = None) -> list[TrialRecord]:
        """The search's finished trials whose ``finished_at`` >= ``since``, ordered by number.

        This is how a worker keeps its strategy up to date with the trials other workers
        finish, with an indexed query whatever the size of the search. ``finished_at`` is
        stamped before its transaction commits, and by the clock of the writer (the server's,
        on PostgreSQL), so a trial may become visible with a ``finished_at`` a little older
        than one already seen: poll with ``since`` a margin (a few seconds) before the newest
        ``finished_at`` seen, and skip the trial ids already known. A naive ``since`` is UTC.
        """
        query = select(trials).where(*trial_filter(search_id, FINISHED_STATES))
        if since is not None:
            if since.tzinfo is not None:
                since = since.astimezone(UTC).replace(tzinfo=None)
            query = query.where(trials.c.finished_at >= since)
        return self._trials(query.order_by(trials.c.number))

    def trial_points(
        self, search_id: int, states: Iterable[TrialState] | None = None
    ) -> list[tuple[Any, ...]]:
        """``(number, state, *COLUMN_METRICS)`` of the search's trials (in ``states``), ordered
        by number: the column metrics alone, without architectures or JSON, for a plot of
        every trial of a big search."""
        columns = [trials.c.number, trials.c.state, *(trials.c[m] for m in COLUMN_METRICS)]
        query = select(*columns).where(*trial_filter(search_id, states)).order_by(trials.c.number)
        return self._read(lambda connection: [tuple(row) for row in connection.execute(query)])

    def _trials(self, query: Select[Any]) -> list[TrialRecord]:
        return self._read(lambda connection: [trial_record(r) for r in connection.execute(query)])

    def count_trials(self, search_id: int, states: Iterable[TrialState] | None = None) -> int:
        """How many trials the search has (in ``states``), counted by the database."""
        query = select(func.count()).select_from(trials).where(*trial_filter(search_id, states))
        return int(self._scalar(query) or 0)

    def get_trial(self, search_id: int, number: int) -> TrialRecord | None:
        """Trial ``number`` of the search, if it exists."""
        query = select(trials).filter_by(search_id=search_id, number=number)
        return self._first_trial(query)

    def trial_seconds(self, search_id: int) -> float:
        """Seconds the search's finished trials took, summed by the database."""
        query = select(func.sum(trials.c.duration_s)).where(trials.c.search_id == search_id)
        return float(self._scalar(query) or 0.0)

    def completed_by_hash(self, search_id: int, arch_hash: str) -> TrialRecord | None:
        """The first complete trial of this architecture in the search, if any."""
        query = (
            select(trials)
            .where(*trial_filter(search_id, [TrialState.COMPLETE]))
            .where(trials.c.arch_hash == arch_hash)
            .order_by(trials.c.number)
            .limit(1)
        )
        return self._first_trial(query)

    def _rows(self, query: Any) -> list[Any]:
        return self._read(lambda connection: list(connection.execute(query)))

    def _first_trial(self, query: Select[Any]) -> TrialRecord | None:
        row = self._read(lambda connection: connection.execute(query).first())
        return None if row is None else trial_record(row)

    def _scalar(self, query: Select[Any]) -> Any:
        return self._read(lambda connection: connection.scalar(query))

    def best_trial(
        self,
        search_id: int,
        metric: str = "accuracy",
        direction: str = "maximize",
        *,
        max_latency_ms: float | None = None,
        max_params: int | None = None,
        max_macs: int | None = None,
        on: DeviceKey | None = None,
    ) -> TrialRecord | None:
        """The best complete trial under the limits; ties go to lower latency, then number.

        With ``on``, latency is the trial's measurement on that device (``nasprune measure``),
        and the record returned carries that device's median and p90 as its latency.
        """
        limits = (max_latency_ms, max_params, max_macs)
        query = best_trial_query(search_id, metric, direction, *limits, on=on)
        row = self._read(lambda connection: connection.execute(query).first())
        if row is None:
            return None
        found = trial_record(row)
        return dataclasses.replace(found, latency_ms=row.median_ms, latency_p90_ms=row.p90_ms)

    def tallies(self, search_ids: Sequence[int]) -> dict[int, Tally]:
        """For each search: its trials per state and the seconds its finished trials took, in
        one grouped query (per :data:`IN_CHUNK` searches)."""
        found = {i: Tally({state: 0 for state in TrialState}, None) for i in search_ids}
        for start in range(0, len(search_ids), IN_CHUNK):
            chunk = list(search_ids[start : start + IN_CHUNK])
            query = (
                select(
                    trials.c.search_id, trials.c.state, func.count(), func.sum(trials.c.duration_s)
                )
                .where(trials.c.search_id.in_(chunk))
                .group_by(trials.c.search_id, trials.c.state)
            )
            for search_id, state, count, seconds in self._rows(query):
                tally = found[search_id]
                tally.counts[TrialState(state)] = int(count)
                tally.seconds = (tally.seconds or 0.0) + float(seconds or 0.0)
        return found

    def best_trials(self, questions: Sequence[BestQuestion]) -> dict[int, TrialRecord | None]:
        """:meth:`best_trial` of several searches (each with its metric and limits), one
        UNION ALL query per :data:`BEST_CHUNK` searches."""
        found: dict[int, TrialRecord | None] = {q.search_id: None for q in questions}
        for start in range(0, len(questions), BEST_CHUNK):
            parts = [
                select(best_trial_query(q.search_id, q.metric, q.direction, *q.limits).subquery())
                for q in questions[start : start + BEST_CHUNK]
            ]
            query = parts[0] if len(parts) == 1 else union_all(*parts)
            for row in self._rows(query):
                record = trial_record(row)
                found[record.search_id] = record
        return found

    def pareto_front(
        self, search_id: int, objectives: Sequence[tuple[str, str]]
    ) -> list[TrialRecord]:
        """Complete trials that no other complete trial dominates, best first on the first
        objective, then by number.

        ``objectives`` are ``(column metric, "maximize" | "minimize")`` pairs; trials with a
        null objective take no part. One ordered query reads the number and objectives of every
        complete trial, a sweep (:mod:`storage.pareto`) finds the front, and the rows of the
        front alone are read in full.
        """
        return self._read(lambda c: read_pareto_front(c, search_id, objectives))

    def get_finetune(self, trial_id: int, key: str | None = None) -> FinetuneRecord | None:
        """The run of ``trial_id`` with settings ``key``; without a key, its newest complete run."""
        query = select(finetunes).filter_by(trial_id=trial_id)
        if key is None:
            query = query.filter_by(status="complete").order_by(finetunes.c.updated_at.desc())
        else:
            query = query.filter_by(key=key)
        row = self._read(lambda connection: connection.execute(query).first())
        return None if row is None else finetune_record(row)

    # devices

    def measured_settings(self, search_id: int, device: str) -> list[DeviceKey]:
        """The (batch size, input shape, threads) settings at which ``device`` measured some
        of the search's trials, as device keys."""
        measured = latency_measurements.c
        query = (
            select(measured.batch_size, measured.input_shape, measured.threads)
            .join(trials, trials.c.latency_key == measured.arch_hash)
            .where(trials.c.search_id == search_id, measured.device == device)
            .distinct()
            .order_by(measured.batch_size, measured.input_shape, measured.threads)
        )
        rows = self._read(lambda connection: connection.execute(query).all())
        return [
            DeviceKey(device, int(b), tuple(int(x) for x in json.loads(shape)), int(t))
            for b, shape, t in rows
        ]

    def devices(self) -> list[tuple[str, int, int]]:
        """Every device fingerprint with stored measurements: (device, networks, lookup-table
        units), most networks first."""
        measured = latency_measurements.c
        units = func.sum(case((measured.arch_hash.startswith(UNIT_PREFIX), 1), else_=0))
        networks = func.count() - units
        query = (
            select(measured.device, networks, units)
            .group_by(measured.device)
            .order_by(networks.desc(), measured.device)
        )
        rows = self._read(lambda connection: connection.execute(query).all())
        return [(str(d), int(n or 0), int(u or 0)) for d, n, u in rows]


def read_pareto_front(
    connection: Connection, search_id: int, objectives: Sequence[tuple[str, str]]
) -> list[TrialRecord]:
    """The sweep over the objectives, then the front's rows in chunks, both on ``connection``;
    best first on the first objective, then by number (the order of the query it replaced)."""
    ups = [maximize(direction) for _, direction in objectives]
    points = connection.execute(pareto_points_query(search_id, objectives))
    numbers = non_dominated(points, ups)
    front = [
        trial_record(row)
        for start in range(0, len(numbers), IN_CHUNK)
        for row in connection.execute(
            numbered_trials_query(search_id, numbers[start : start + IN_CHUNK])
        )
    ]
    metric = objectives[0][0]
    front.sort(key=lambda trial: trial.number)
    front.sort(key=lambda trial: getattr(trial, metric), reverse=ups[0])  # stable
    return front


def get_reader(storage: str | Reader, *, reconnect_s: float = RECONNECT_S) -> Reader:
    """A Reader is returned as is; a URL opens a Reader, or a full :class:`storage.Store`
    (which migrates) when the database is not at the head revision."""
    if isinstance(storage, Reader):
        return storage
    if not isinstance(storage, str):
        raise TypeError(f"storage must be a URL or a Reader, not {type(storage).__name__}")
    engine = create_store_engine(storage)
    try:
        if is_at_head(engine, storage):
            return Reader(storage, engine, reconnect_s=reconnect_s)
    except BaseException:
        engine.dispose()
        raise
    engine.dispose()
    from storage.store import Store

    return Store(storage, reconnect_s=reconnect_s)
