"""A search written as an Optuna study, for ``optuna.load_study``, Optuna's plots and
optuna-dashboard (``nasprune export-optuna``).

One study per search, its directions those of the search's objectives. Each dimension of the
space is a ``CategoricalDistribution`` over its choices (the values seen in the trials when
the space cannot be built here, e.g. a derived space whose model is not importable). Every
finished trial becomes an Optuna trial, in number order:

* complete, and infeasible but evaluated (every objective has a value): ``COMPLETE`` with the
  objective values, and one constraint per config limit, ``value - max`` (<= 0 is feasible),
  under the system attribute ``"constraints"`` that Optuna's constrained samplers write and
  ``study.best_trials``, ``plot_pareto_front`` and optuna-dashboard read;
* failed, and infeasible without objective values (screened out before evaluation): ``FAIL``;
* running: skipped (and counted).

The other metrics, the architecture's hash and nasprune's trial number are user attributes.
Optuna's ``add_trial`` is one transaction per trial; the trials go in batches so the
progress can be shown. Optuna is imported here only, never by the queries.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from nasprune.config import SearchConfig
from nasprune.errors import SearchError, StoreError, first_line, user_errors
from nasprune.store_access import ReaderArg, open_reader
from storage import TrialRecord, TrialState

if TYPE_CHECKING:
    import optuna

OnWritten = Callable[[int, int], None]  # (trials written, trials to write)
BATCH = 1000  # trials per add_trials call (and per progress update)


@dataclass(frozen=True)
class OptunaExport:
    """What ``export_optuna`` wrote."""

    study_name: str
    url: str
    written: int  # Optuna trials
    skipped_running: int  # nasprune trials still running, not exported
    space_note: str | None  # why the distributions are the values seen, if they are


def export_optuna(
    name: str,
    to: str,
    *,
    storage: ReaderArg = None,
    study_name: str | None = None,
    overwrite: bool = False,
    progress: OnWritten | None = None,
) -> OptunaExport:
    """Write search ``name`` as an Optuna study in the Optuna storage URL ``to``.

    A study of that name (default: the search's) already in ``to`` is refused, or deleted
    first with ``overwrite``.
    """
    from nasprune.config import stored_config

    store = open_reader(storage)
    with user_errors():
        record = store.get_search(name)
        trials = store.trials(record.search_id)
    if to == store.url:
        raise SearchError(
            "write the study to another database than the nasprune store "
            "(Optuna's tables and nasprune's share names)"
        )
    cfg = stored_config(record)
    distributions, note = _distributions(cfg, trials)
    optuna = _optuna()
    study = _new_study(optuna, to, study_name or name, cfg, overwrite)
    finished = [t for t in trials if t.state.is_finished()]
    done = 0
    for batch in _batches(finished, BATCH):
        study.add_trials([_frozen(optuna, t, cfg, distributions) for t in batch])
        done += len(batch)
        if progress is not None:
            progress(done, len(finished))
    return OptunaExport(study.study_name, to, done, len(trials) - len(finished), note)


def _optuna() -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _new_study(
    optuna: Any, url: str, study_name: str, cfg: SearchConfig, overwrite: bool
) -> optuna.Study:
    """An empty study of the search's directions, with what its constraints mean."""
    try:
        target = optuna.storages.RDBStorage(url)
    except Exception as exc:  # a bad URL, a missing driver, a server that is down
        raise StoreError(f"cannot open Optuna storage {url}: {first_line(exc)}") from None
    if overwrite and study_name in {s.study_name for s in target.get_all_studies()}:
        optuna.delete_study(study_name=study_name, storage=target)
    try:
        study = optuna.create_study(
            storage=target,
            study_name=study_name,
            directions=[o.direction for o in cfg.objectives],
        )
    except optuna.exceptions.DuplicatedStudyError:
        raise SearchError(
            f"a study named {study_name!r} already exists in {url}; "
            "give another --study-name, or --overwrite to replace it"
        ) from None
    study.set_user_attr("nasprune_search", cfg.name)
    study.set_user_attr("objectives", [o.metric for o in cfg.objectives])
    study.set_user_attr(
        "constraints", [f"{m} - {limit.max:g} <= 0" for m, limit in cfg.constraints.items()]
    )
    return study


def _distributions(
    cfg: SearchConfig, trials: Sequence[TrialRecord]
) -> tuple[dict[str, Any], str | None]:
    """Each dimension's choices as a categorical distribution: from the space, or, when it
    cannot be built here or does not hold the trials' values, from the values seen."""
    from optuna.distributions import CategoricalDistribution

    from search_spaces import SpaceError, create_space

    seen: dict[str, set[Any]] = {}
    for trial in trials:
        for key, value in trial.arch.items():
            seen.setdefault(key, set()).add(value)
    try:
        dimensions = create_space(cfg.space.name, **cfg.space.params).dimensions()
    except SpaceError as exc:
        note = f"space {cfg.space.name} cannot be built here ({first_line(exc)})"
    else:
        choices = {d.name: d.choices for d in dimensions}
        if all(values <= set(choices.get(key, ())) for key, values in seen.items()):
            return {k: CategoricalDistribution(list(c)) for k, c in choices.items()}, None
        note = f"the trials hold values that space {cfg.space.name} does not offer"
    distributions = {k: CategoricalDistribution(sorted(v)) for k, v in sorted(seen.items())}
    return distributions, f"{note}; each parameter's choices are the values seen in the trials"


def _frozen(
    optuna: Any, trial: TrialRecord, cfg: SearchConfig, distributions: dict[str, Any]
) -> optuna.trial.FrozenTrial:
    objectives = [o.metric for o in cfg.objectives]
    values = [getattr(trial, metric) for metric in objectives]
    evaluated = trial.state is not TrialState.FAILED and None not in values
    system_attrs = {}
    if evaluated:
        # A figure the trial lacks breaks no limit, as the strategy was told (worker.told_values).
        system_attrs["constraints"] = [
            _or_zero(getattr(trial, metric)) - limit.max
            for metric, limit in cfg.constraints.items()
        ]
    frozen = optuna.trial.create_trial(
        state=optuna.trial.TrialState.COMPLETE if evaluated else optuna.trial.TrialState.FAIL,
        values=[float(v) for v in values] if evaluated else None,
        params=dict(trial.arch),
        distributions={k: distributions[k] for k in trial.arch},
        user_attrs=_user_attrs(trial, objectives),
        system_attrs=system_attrs,
    )
    frozen.datetime_start = _local(trial.started_at)
    frozen.datetime_complete = _local(trial.finished_at or trial.started_at)
    return frozen


def _user_attrs(trial: TrialRecord, objectives: Sequence[str]) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "nasprune_number": trial.number,
        "nasprune_state": trial.state.value,
        "arch_hash": trial.arch_hash,
    }
    attrs.update((k, v) for k, v in trial.all_metrics().items() if k not in objectives)
    if trial.duration_s is not None:
        attrs["duration_s"] = trial.duration_s
    if trial.error:
        attrs["error"] = trial.error
    return attrs


def _or_zero(value: float | None) -> float:
    return 0.0 if value is None or math.isnan(value) else float(value)


def _local(moment: datetime) -> datetime:
    """A naive local time, as Optuna stores its own trials' times."""
    return moment.astimezone().replace(tzinfo=None) if moment.tzinfo else moment


def _batches(items: Sequence[TrialRecord], size: int) -> Iterator[Sequence[TrialRecord]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
