"""Between the strategy and the loop: a history kept up to date, and new candidates only.

The proposer gives the strategy the search's finished trials (the whole stored history at
once when a worker starts, then the trials finished since, by this worker or others), each
with its objective values and the metrics it measured (both from the store, so a rebuilt
strategy learns what the first one learnt), and asks it for a network the search has not
evaluated and no worker is running, judging sameness by the hash of the space's *canonical*
architecture, so two spellings of one network count once.
Each ask draws from a seed derived from the search's seed, the number of trials so far and the
attempt: a strategy that re-proposes a known network is asked again with the next attempt's
seed, at most ``DUPLICATE_PATIENCE`` times (a re-proposal leaves no trace in the strategy, so
its state never grows with them); then the proposer picks an unseen architecture itself from
a generator seeded the same way. So a strategy rebuilt from the store asks exactly what the
uninterrupted run would have asked.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from search_spaces import Architecture, SearchSpace, arch_hash
from storage import TrialRecord, TrialState
from strategies import Strategy
from strategies.base import Result, draw_seed

DUPLICATE_PATIENCE = 5  # asks per new trial before the proposer picks an unseen arch itself
# (each costs a full ask: 0.24 s for TPE at 10,000 trials, see benchmarks/bench_resume.py)
ENUMERATION_LIMIT = 1_000_000  # spaces up to this size are enumerated to find what is left
INTERRUPTED = "interrupted"  # error prefix of a trial whose process died (before leases)

Values = list[float] | None


@dataclass(frozen=True)
class Candidate:
    """An architecture to evaluate, and the memo stored with its trial."""

    arch: Architecture  # canonical: what is evaluated and stored
    proposed: bool  # whether the strategy proposed it, or the proposer picked it
    memo: dict[str, Any] = field(default_factory=dict)  # {"proposed": ..., "strategy": ...}

    @property
    def key(self) -> str:
        return arch_hash(self.arch)


class Exhausted(Exception):
    """Every network of the space has been evaluated (or is being evaluated)."""


def is_interrupted(trial: TrialRecord) -> bool:
    """A trial failed by an older nasprune when its process died; it was retried later."""
    return trial.state == TrialState.FAILED and (trial.error or "").startswith(INTERRUPTED)


def measured(trial: TrialRecord) -> dict[str, float]:
    """The numbers a trial measured (its columns and extra metrics), as a strategy learns
    them; text such as a screened trial's reason is left out."""
    return {
        name: float(value)
        for name, value in trial.all_metrics().items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


class Proposer:
    """Wraps one strategy for one worker of a search."""

    def __init__(self, strategy: Strategy, space: SearchSpace, seed: int) -> None:
        self.strategy = strategy
        self.space = space
        self.seed = seed
        self.known: dict[str, Values] = {}  # canonical arch hash -> what the strategy learnt
        self._added: set[int] = set()  # trial ids given to the strategy

    def add(self, trials: Iterable[TrialRecord], told: Callable[[TrialRecord], Values]) -> int:
        """Give the strategy the finished trials it has not seen, in one call, in the order
        given; returns how many were new. A trial interrupted by a dead process (an older
        nasprune failed those) is not learnt: its network was evaluated again."""
        results = []
        for trial in trials:
            if trial.trial_id in self._added or not trial.state.is_finished():
                continue
            self._added.add(trial.trial_id)
            if is_interrupted(trial):
                continue
            values = told(trial)
            self.known[trial.arch_hash] = values
            memo = trial.memo or {}
            proposed = bool(memo.get("proposed", True))
            results.append(
                Result(trial.arch, values, memo.get("strategy"), proposed, measured(trial))
            )
        if results:
            self.strategy.add(results)
        return len(results)

    def next(self, count: int, busy: Collection[str] = ()) -> Candidate:
        """A candidate that is neither known nor ``busy`` (hashes other workers are running);
        ``count`` is the number of trials the search holds. :class:`Exhausted` if none. The
        first trial of a search is the space's suggestion, when it has a new one."""
        suggested = self.space.suggested() if count == 0 else None
        if suggested is not None:
            arch = self.space.canonical(suggested)
            if arch_hash(arch) not in self.known and arch_hash(arch) not in busy:
                return Candidate(arch, False, {"proposed": False, "seeded": "l0", "strategy": None})
        memo: Any = None
        for attempt in range(DUPLICATE_PATIENCE):
            asked = self.space.validate(self.strategy.ask(draw_seed(self.seed, count, attempt)))
            memo = self.strategy.memo()
            arch = self.space.canonical(asked)
            key = arch_hash(arch)
            if key not in self.known and key not in busy:
                return Candidate(arch, True, {"proposed": True, "strategy": memo})
        arch = self._unseen(count, busy)
        return Candidate(arch, False, {"proposed": False, "strategy": memo})

    def _unseen(self, count: int, busy: Collection[str]) -> Architecture:
        """A seeded random canonical architecture that is neither known nor busy."""
        rng = random.Random(f"{self.seed}:{count}")

        def new(arch: Architecture) -> bool:
            key = arch_hash(arch)
            return key not in self.known and key not in busy

        for _ in range(1000):
            arch = self.space.canonical(self.space.sample(rng))
            if new(arch):
                return arch
        if self.space.size() <= ENUMERATION_LIMIT:
            dims = self.space.dimensions()
            unseen: dict[str, Architecture] = {}
            for values in itertools.product(*(d.choices for d in dims)):
                arch = self.space.canonical(dict(zip([d.name for d in dims], values, strict=True)))
                if new(arch):
                    unseen.setdefault(arch_hash(arch), arch)
            if unseen:
                return unseen[rng.choice(sorted(unseen))]
        raise Exhausted()
