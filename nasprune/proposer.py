"""Between the strategy and the loop: new candidates only, and replay of a stored history.

The proposer asks the strategy until it proposes a network the search has not evaluated
(re-proposals are told their stored result again and cost nothing), judging sameness by the
hash of the space's *canonical* architecture, so two spellings of one network count once.
When the strategy keeps re-proposing (TPE on a small space converges on its favourite), the
proposer picks an unseen architecture itself from a generator seeded by the search's seed and
history, and lets the strategy *observe* it. Everything here is deterministic, which is what
makes replay reproduce the original run.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from search_spaces import Architecture, SearchSpace, arch_hash
from storage import TrialRecord, TrialState
from strategies import Strategy

DUPLICATE_PATIENCE = 20  # re-proposals in a row before the proposer picks an unseen arch itself
ENUMERATION_LIMIT = 1_000_000  # spaces up to this size are enumerated to find what is left
INTERRUPTED = "interrupted"  # error prefix of a trial whose process died; its arch is retried

Values = list[float] | None


@dataclass(frozen=True)
class Candidate:
    """An architecture to evaluate: the canonical one, and what the strategy asked for."""

    arch: Architecture  # canonical: what is evaluated and stored
    asked: Architecture  # the strategy's own spelling (== arch when the proposer chose it)
    proposed: bool  # whether the strategy proposed it (told) or the proposer did (observed)

    @property
    def key(self) -> str:
        return arch_hash(self.arch)


class Exhausted(Exception):
    """Every network of the space has been evaluated."""


def is_interrupted(trial: TrialRecord) -> bool:
    return trial.state == TrialState.FAILED and (trial.error or "").startswith(INTERRUPTED)


class Proposer:
    """Wraps a fresh strategy for one invocation of a search."""

    def __init__(self, strategy: Strategy, space: SearchSpace, seed: int) -> None:
        self.strategy = strategy
        self.space = space
        self.seed = seed
        self.known: dict[str, Values] = {}  # canonical arch hash -> what the strategy was told

    def next(self) -> Candidate:
        """The next candidate that this search has not evaluated; :class:`Exhausted` if none."""
        for _ in range(DUPLICATE_PATIENCE):
            asked = self.space.validate(self.strategy.ask())
            arch = self.space.canonical(asked)
            key = arch_hash(arch)
            if key not in self.known:
                return Candidate(arch, asked, proposed=True)
            self.strategy.tell(asked, self.known[key])
        arch = self._unseen()
        return Candidate(arch, arch, proposed=False)

    def inform(self, candidate: Candidate, values: Values) -> None:
        """Give the strategy the result: told if it proposed the candidate, else observed."""
        if candidate.proposed:
            self.strategy.tell(candidate.asked, values)
        else:
            self.strategy.observe(candidate.arch, values)
        self.known[candidate.key] = values

    def replay(
        self,
        trials: Iterable[TrialRecord],
        told: Callable[[TrialRecord], Values],
        diverged: Callable[[TrialRecord], None],
    ) -> Candidate | None:
        """Feed the stored trials through the strategy in order, as the original run did.

        Returns the candidate of an interrupted last trial, to be evaluated first; calls
        ``diverged`` for a trial that the strategy no longer proposes (only when its code
        changed), whose result is then recorded without being told.
        """
        pending: Candidate | None = None
        for trial in trials:
            candidate, pending = (pending, None) if pending is not None else (self._ask(), None)
            if candidate is not None and candidate.key != trial.arch_hash:
                if candidate.proposed:
                    self.strategy.tell(candidate.asked, None)
                candidate = None
            if candidate is None:
                diverged(trial)
            if is_interrupted(trial):
                pending = candidate or Candidate(trial.arch, trial.arch, proposed=False)
                continue
            if candidate is not None:
                self.inform(candidate, told(trial))
            else:
                self.known[trial.arch_hash] = told(trial)
        return pending

    def _ask(self) -> Candidate | None:
        try:
            return self.next()
        except Exhausted:
            return None

    def _unseen(self) -> Architecture:
        """A seeded random canonical architecture that is not known yet."""
        rng = random.Random(f"{self.seed}:{len(self.known)}")
        for _ in range(1000):
            arch = self.space.canonical(self.space.sample(rng))
            if arch_hash(arch) not in self.known:
                return arch
        if self.space.size() <= ENUMERATION_LIMIT:
            dims = self.space.dimensions()
            unseen: dict[str, Architecture] = {}
            for values in itertools.product(*(d.choices for d in dims)):
                arch = self.space.canonical(dict(zip([d.name for d in dims], values, strict=True)))
                key = arch_hash(arch)
                if key not in self.known:
                    unseen.setdefault(key, arch)
            if unseen:
                return unseen[rng.choice(sorted(unseen))]
        raise Exhausted()
