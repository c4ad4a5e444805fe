"""A search's trials: list, one, their metrics for a plot, best under limits, the Pareto front,
and a comparison of searches."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query, status

from nasprune import queries
from nasprune.service import schemas
from nasprune.service.deps import Limit, Offset, SettingsDep, StoreDep
from storage import COLUMN_METRICS, TrialRecord, TrialState

router = APIRouter(tags=["trials"])
SortKey = Literal["number", "accuracy", "loss", "latency_ms", "latency_p90_ms", "params", "macs"]
assert set(SortKey.__args__) == {"number", *COLUMN_METRICS}  # type: ignore[attr-defined]


def trial_model(trial: TrialRecord) -> schemas.Trial:
    return schemas.Trial.model_validate(queries.trial_json(trial))


@router.get("/searches/{name}/trials", response_model=schemas.TrialPage)
def list_trials(
    name: str,
    store: StoreDep,
    limit: Limit,
    offset: Offset = 0,
    state: Annotated[list[TrialState] | None, Query(description="Only these states.")] = None,
    sort: Annotated[SortKey, Query(description="A column metric, or number.")] = "number",
    order: Literal["asc", "desc"] = "asc",
    after: Annotated[
        int | None,
        Query(ge=-1, le=2**31, description="Keyset paging in number order: trials after this one."),
    ] = None,
) -> schemas.TrialPage:
    """The search's trials, filtered by state, sorted, one page at a time (trials without
    the sort metric come last). In number order, ``after`` (the page's ``next_after``) reads
    the next page through the index, as fast at trial 100,000 as at trial 0; ``offset`` reads
    and skips the trials before."""
    if after is not None and (sort != "number" or offset):
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            "after: pages by trial number, so it goes with sort=number and without offset",
        )
    record = store.get_search(name)
    found = store.trial_page(
        record.search_id, state, order_by=sort, descending=order == "desc", limit=limit,
        offset=offset, after=after,
    )  # fmt: skip
    total = store.count_trials(record.search_id, state)
    more = sort == "number" and len(found) == limit
    return schemas.TrialPage(
        items=[trial_model(t) for t in found], total=total, limit=limit, offset=offset,
        next_after=found[-1].number if more else None,
    )  # fmt: skip


@router.get("/searches/{name}/trials/{number}", response_model=schemas.Trial)
def get_trial(
    name: str, number: Annotated[int, Path(ge=0, le=2**31)], store: StoreDep
) -> schemas.Trial:
    record = store.get_search(name)
    trial = store.get_trial(record.search_id, number)
    if trial is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"search {name!r} has no trial {number}")
    return trial_model(trial)


@router.get("/searches/{name}/points", response_model=schemas.Points)
def points(name: str, store: StoreDep) -> schemas.Points:
    """The column metrics of every complete and infeasible trial, column by column: the
    data of the web page's plot, in one small response however big the search."""
    record = store.get_search(name)
    rows = store.trial_points(record.search_id, [TrialState.COMPLETE, TrialState.INFEASIBLE])
    columns = ("number", "state", *COLUMN_METRICS)
    values = dict(zip(columns, map(list, zip(*rows, strict=True)), strict=True)) if rows else {}
    return schemas.Points(search=name, **{c: values.get(c, []) for c in columns})


Positive = Annotated[float | None, Query(gt=0, le=1e12)]
Count = Annotated[int | None, Query(gt=0, le=2**62)]


@router.get("/searches/{name}/best", response_model=schemas.Best)
def best(
    name: str,
    store: StoreDep,
    max_latency_ms: Positive = None,
    max_params: Count = None,
    max_macs: Count = None,
    device: Annotated[str | None, Query(max_length=500)] = None,
    batch_size: Annotated[int | None, Query(gt=0, le=2**31)] = None,
) -> schemas.Best:
    """The best complete trial on the search's first objective within the limits
    (``nasprune best --json``); with ``device``, latency as measured on that device."""
    found = queries.best(
        name, max_latency_ms=max_latency_ms, max_params=max_params, max_macs=max_macs,
        device=device, batch_size=batch_size, storage=store,
    )  # fmt: skip
    run = None if found is None else store.get_finetune(found.trial_id)
    return schemas.Best.model_validate(queries.best_json(name, device, found, run))


@router.get("/searches/{name}/pareto", response_model=schemas.Pareto)
def pareto(name: str, store: StoreDep) -> schemas.Pareto:
    """The non-dominated trials on the search's objectives (``nasprune pareto --json``)."""
    front = queries.pareto(name, storage=store)
    return schemas.Pareto(search=name, trials=[trial_model(t) for t in front])


@router.get("/compare", response_model=list[schemas.Comparison])
def compare(
    store: StoreDep,
    settings: SettingsDep,
    names: Annotated[list[str], Query(min_length=1, description="The searches.")],
    max_latency_ms: Annotated[list[float] | None, Query(description="Latency limits.")] = None,
) -> list[schemas.Comparison]:
    """Searches side by side: the best result under each latency limit
    (``nasprune compare --json``)."""
    if len(names) > settings.max_page_size:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, f"names: at most {settings.max_page_size} searches"
        )
    rows = queries.compare(names, max_latency_ms=max_latency_ms or [], storage=store)
    return [
        schemas.Comparison(
            **schemas.SearchSummary.model_validate(row.summary.as_json()).model_dump(),
            metric=row.metric,
            best_under_ms={str(k): v for k, v in row.best_under.items()},
        )
        for row in rows
    ]
