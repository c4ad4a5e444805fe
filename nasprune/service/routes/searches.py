"""Searches: launch one from a config (workers do the work), list, read, cancel, resume, and
change the budget."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from nasprune import lifecycle, queries
from nasprune.config import SearchConfig
from nasprune.errors import StateError
from nasprune.service import schemas
from nasprune.service.deps import AUTH, MUTATION_ERRORS, Limit, Offset, SettingsDep, StoreDep
from storage import DuplicateSearchError, SearchStatus, Store

router = APIRouter(tags=["searches"])


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
    from nasprune.service.policy import checked_config

    cfg = checked_config(config.model_dump(mode="json", exclude_unset=True), settings)
    try:
        lifecycle.record_search(store, cfg)
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


@router.post(
    "/searches/{name}/cancel",
    response_model=schemas.SearchDetail,
    dependencies=AUTH,
    responses=MUTATION_ERRORS,
)
def cancel_search(name: str, store: StoreDep) -> schemas.SearchDetail:
    """Cancel a search: each worker finishes the trial in hand, then stops; workers that
    join later are refused until it is resumed."""
    lifecycle.move(store, name, SearchStatus.CANCELLED)
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
    lifecycle.move(store, name, SearchStatus.RUNNING)
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
    try:
        lifecycle.set_budget(store, store.get_search(name), change.budget_trials)
    except StateError as exc:  # the field it is about, as every 4xx of a request's body says
        raise HTTPException(status.HTTP_409_CONFLICT, f"budget_trials: {exc}") from None
    return get_search(name, store)
