"""Searches: launch one from a config (workers do the work), list, read, cancel, resume, and
change the budget."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status

from nasprune import queries
from nasprune.config import SearchConfig
from nasprune.service import schemas
from nasprune.service.app import settings_of, store_of
from nasprune.service.auth import require_token
from nasprune.service.settings import ServiceSettings
from storage import DuplicateSearchError, SearchStatus, Store, TrialState

router = APIRouter(tags=["searches"])
StoreDep = Annotated[Store, Depends(store_of)]
SettingsDep = Annotated[ServiceSettings, Depends(settings_of)]
Offset = Annotated[int, Query(ge=0, le=2**31, description="Items to skip.")]
AUTH = [Depends(require_token)]
MUTATION_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": schemas.Message, "description": "No or a wrong bearer token"},
    403: {"model": schemas.Message, "description": "The service is read-only"},
    409: {"model": schemas.Message, "description": "The search's state does not allow it"},
}


def page_limit(request: Request, limit: Annotated[int, Query(ge=1, le=10_000)] = 50) -> int:
    """The page size asked for; more than the service's ``max_page_size`` is refused."""
    most = settings_of(request).max_page_size
    if limit > most:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, f"limit: at most {most} items per page, not {limit}"
        )
    return limit


Limit = Annotated[int, Depends(page_limit)]


def summary(store: Store, name: str) -> schemas.SearchSummary:
    found = queries.status(name, storage=store)[0]
    return schemas.SearchSummary.model_validate(found.as_json())


@router.get("/searches", response_model=schemas.SearchPage)
def list_searches(store: StoreDep, limit: Limit, offset: Offset = 0) -> schemas.SearchPage:
    """The store's searches, oldest first, one page at a time."""
    records = store.list_searches()
    found = queries.summaries(store, records[offset : offset + limit])  # two queries a page
    items = [schemas.SearchSummary.model_validate(s.as_json()) for s in found]
    return schemas.SearchPage(items=items, total=len(records), limit=limit, offset=offset)


@router.post(
    "/searches",
    response_model=schemas.SearchDetail,
    status_code=status.HTTP_201_CREATED,
    dependencies=AUTH,
    responses=MUTATION_ERRORS,
)
def create_search(
    config: SearchConfig, store: StoreDep, settings: SettingsDep
) -> schemas.SearchDetail:
    """Create a search from a config (``nasprune schema``); nothing runs until workers join
    it: ``nasprune worker NAME --storage URL`` on any machine that reaches the store."""
    from nasprune.lifecycle import record_search
    from nasprune.service.policy import checked_config

    cfg = checked_config(config.model_dump(mode="json", exclude_unset=True), settings)
    try:
        record_search(store, cfg)
    except DuplicateSearchError:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"name: a search named {cfg.name!r} already exists"
        ) from None
    return get_search(cfg.name, store)


@router.get("/searches/{name}", response_model=schemas.SearchDetail)
def get_search(name: str, store: StoreDep) -> schemas.SearchDetail:
    """One search: its progress, best trial within its constraints, and config."""
    record = store.get_search(name)
    return schemas.SearchDetail(**summary(store, name).model_dump(), config=record.config)


def _move(store: Store, name: str, allowed: set[SearchStatus], to: SearchStatus) -> None:
    record = store.get_search(name)
    if record.status not in allowed:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"search {name!r} is {record.status.value}; only a search that is "
            f"{' or '.join(sorted(s.value for s in allowed))} can become {to.value}",
        )
    store.set_search_status(record.search_id, to)


@router.post(
    "/searches/{name}/cancel",
    response_model=schemas.SearchDetail,
    dependencies=AUTH,
    responses=MUTATION_ERRORS,
)
def cancel_search(name: str, store: StoreDep) -> schemas.SearchDetail:
    """Cancel a search: each worker finishes the trial in hand, then stops; workers that
    join later are refused until it is resumed."""
    live = {SearchStatus.CREATED, SearchStatus.RUNNING, SearchStatus.PAUSED}
    _move(store, name, live, SearchStatus.CANCELLED)
    return get_search(name, store)


@router.post(
    "/searches/{name}/resume",
    response_model=schemas.SearchDetail,
    dependencies=AUTH,
    responses=MUTATION_ERRORS,
)
def resume_search(name: str, store: StoreDep) -> schemas.SearchDetail:
    """Make a cancelled, paused or failed search running again: workers may join it
    (``nasprune worker NAME``); the service runs nothing itself."""
    stopped = {SearchStatus.CANCELLED, SearchStatus.PAUSED, SearchStatus.FAILED}
    _move(store, name, stopped, SearchStatus.RUNNING)
    return get_search(name, store)


@router.patch(
    "/searches/{name}",
    response_model=schemas.SearchDetail,
    dependencies=AUTH,
    responses=MUTATION_ERRORS,
)
def change_budget(name: str, change: schemas.BudgetChange, store: StoreDep) -> schemas.SearchDetail:
    """Set a search's total budget (as ``nasprune resume --trials``): the complete trials it
    ends with in all, never below those already complete."""
    record = store.get_search(name)
    complete = store.count_trials(record.search_id, [TrialState.COMPLETE])
    if change.budget_trials < complete:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"budget_trials: search {name!r} already has {complete} complete trials; the "
            f"total budget cannot be {change.budget_trials} (it is the total, not how many more)",
        )
    store.set_budget(record.search_id, change.budget_trials)
    return get_search(name, store)
