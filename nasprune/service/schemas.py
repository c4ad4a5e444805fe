"""Response and request bodies of the HTTP API: the stable JSON of the CLI's ``--json``,
as pydantic models, so that the OpenAPI document describes every response."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from nasprune.config import INT_MAX


class Trial(BaseModel):
    """One trial: :func:`nasprune.queries.trial_json`."""

    number: int
    state: str
    arch: dict[str, Any]
    arch_hash: str
    accuracy: float | None
    loss: float | None
    latency_ms: float | None
    latency_p90_ms: float | None
    params: int | None
    macs: int | None
    duration_s: float | None
    metrics: dict[str, Any]


class SearchSummary(BaseModel):
    """One search as ``nasprune status --json`` shows it."""

    name: str
    status: str
    strategy: str
    space: str
    budget: int
    complete: int
    failed: int
    infeasible: int
    running: int
    best: Trial | None
    eval_s: float | None


class SearchDetail(SearchSummary):
    config: dict[str, Any]  # the config the search was created with


class Progress(SearchSummary):
    finished: bool  # completed, failed or cancelled: workers take no more trials


class SearchPage(BaseModel):
    items: list[SearchSummary]
    total: int
    limit: int
    offset: int


class TrialPage(BaseModel):
    items: list[Trial]
    total: int
    limit: int
    offset: int
    next_after: int | None = None  # in number order: `after` for the next page; null at the end


class Finetuned(BaseModel):
    """A trial's newest complete fine-tuning run: :func:`nasprune.queries.finetune_json`."""

    accuracy: float | None
    test_accuracy: float | None
    steps: int
    settings: dict[str, Any]
    path: str | None


class BestTrial(Trial):
    finetuned: Finetuned | None  # null when the trial was never fine-tuned


class Best(BaseModel):
    """``nasprune best --json`` (:func:`nasprune.queries.best_json`): the trial is null when
    none satisfies the limits."""

    search: str
    device: str | None
    trial: BestTrial | None


class Pareto(BaseModel):
    search: str
    trials: list[Trial]


class Points(BaseModel):
    """The column metrics of a search's complete and infeasible trials, column by column and
    ordered by number (``number[i]``, ``accuracy[i]`` ... are trial i's): a plot's data,
    without architectures (``/trials/{number}`` has those)."""

    search: str
    number: list[int]
    state: list[str]
    accuracy: list[float | None]
    loss: list[float | None]
    latency_ms: list[float | None]
    latency_p90_ms: list[float | None]
    params: list[int | None]
    macs: list[int | None]


class Comparison(SearchSummary):
    """A row of ``nasprune compare --json``."""

    metric: str
    best_under_ms: dict[str, float | None]


class Device(BaseModel):
    id: str
    device: str
    networks: int
    units: int


class Health(BaseModel):
    status: str
    store: str
    read_only: bool


class Version(BaseModel):
    versions: dict[str, str]


class Message(BaseModel):
    """Every error: one line that names the field or the thing at fault."""

    detail: str


class BudgetChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    budget_trials: int = Field(
        gt=0, le=INT_MAX
    )  # the new total: complete trials the search ends with
