"""NNI's NAS strategy ``RegularizedEvolution`` behind the strategy interface.

Design: drive the real strategy in-process, without its ``run()`` loop and without threads.
NNI strategies are written as a loop (``RegularizedEvolution._run``) that submits models to an
execution engine and learns from its ``TrainingEnd`` events. nasprune's loop is the other way
round, so this adapter plays the part of that loop on NNI's own objects:

* the dimensions become an NNI model space, ``RawFormatModelSpace`` over an
  ``nni.mutable.MutableDict`` of one ``nni.choice`` per dimension (no torch model involved);
* ``add`` rebuilds what ``_run`` would hold from the history, in one pass: the population is
  the last ``population_size`` trials with a value (aging: the oldest leaves first), in
  NNI's own ``Individual`` records, and every trial's sample is in NNI's deduplication set;
  failed trials never enter the population, as in NNI (they have no metric);
* ``ask(seed)`` makes the decision ``_run`` makes, with the strategy's ``RandomState``
  seeded by the ask: while the population is smaller than ``population_size`` its
  ``random()``, then its ``new_individual()`` (tournament of ``sample_size``, per-dimension
  mutation), through NNI's ``RetrySamplingHelper`` as ``_run`` does. The sample is then
  taken back out of the deduplication set (it goes in again when its result is added).

It reads ``_population``, ``_dedup_helper`` and ``_retry_helper`` of NNI 3.0's
``RegularizedEvolution`` (it mirrors ``_run``), so a future NNI may need a review.

NNI maximises its metric, so a minimised first objective is added negated. With ``dedup``
(NNI's default, on) an architecture is never proposed twice; once the retries cannot find a
new one (a small space exhausted), the adapter samples from the space without deduplication.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from search_spaces.dimensions import Architecture, Dimension

from ._nni import SeededGlobals, import_nni, numpy_seed, quiet
from .base import Result, Strategy
from .errors import StrategyError
from .params import PositiveInt, Probability

(_nni, _mutable, _space, _strategy, _execution, _evolution) = import_nni(
    "nni",
    "nni.mutable",
    "nni.nas.space",
    "nni.nas.strategy",
    "nni.nas.execution",
    "nni.nas.strategy.evolution",
)


class NniRegularizedEvolution(Strategy):
    """NNI's aging evolution: params ``population_size=20``, ``sample_size=5``,
    ``mutation_prob=0.2``, ``crossover=False``, ``dedup=True``.

    >>> s = create_strategy("nni.regularized_evolution", dims, ["maximize"], 0, sample_size=3)
    >>> arch = s.ask(seed=1)
    """

    name = "nni.regularized_evolution"
    defaults = {
        "population_size": 20,
        "sample_size": 5,
        "mutation_prob": 0.2,
        "crossover": False,
        "dedup": True,
    }
    param_types = {  # NNI itself checks 1 <= sample_size <= population_size
        "population_size": PositiveInt,
        "sample_size": PositiveInt,
        "mutation_prob": Probability,
        "crossover": bool,
        "dedup": bool,
    }

    def __init__(
        self, dimensions: Sequence[Dimension], directions: Sequence[str], seed: int, **params: Any
    ) -> None:
        super().__init__(dimensions, directions, seed)
        kwargs = self.resolve_params(params, self.defaults)
        try:
            with quiet():
                self._evolution = _strategy.RegularizedEvolution(seed=numpy_seed(seed), **kwargs)
        except (TypeError, ValueError) as exc:
            raise StrategyError(f"strategy {self.name!r}: bad params {params}: {exc}") from exc
        choices = {d.name: _nni.choice(d.name, list(d.choices)) for d in self.dimensions}
        space = _space.RawFormatModelSpace(_mutable.MutableDict(choices), None)
        self._engine = _execution.SequentialExecutionEngine()
        with SeededGlobals(seed).active():
            self._evolution.initialize(space, self._engine)

    def add(self, results: Sequence[Result]) -> None:
        evo = self._evolution
        for result in results:
            values = self.check_values(result.values)
            sample = {d.name: result.arch[d.name] for d in self.dimensions}
            if evo._dedup_helper is not None:
                evo._dedup_helper._history.add(_to_hashable(sample))
            if values is not None:
                evo._population.append(_evolution.Individual(sample, self.score(values)))
                if len(evo._population) > evo.population_size:
                    evo._population.popleft()

    def ask(self, seed: int) -> Architecture:
        evo = self._evolution
        evo._random_state = np.random.RandomState(numpy_seed(seed))
        with SeededGlobals(seed).active():
            filling = len(evo._population) < evo.population_size
            model = evo._retry_helper.retry(evo.random if filling else evo.new_individual)
            if model is None:  # every architecture was proposed already
                model = evo.model_space.random(random_state=evo._random_state)
            elif evo._dedup_helper is not None:
                evo._dedup_helper.remove(model.sample)
        return dict(self.decode(model.sample))

    def close(self) -> None:
        with quiet():
            self._engine.shutdown()


def _to_hashable(sample: dict[str, Any]) -> frozenset[tuple[str, Any]]:
    """The key NNI's DeduplicationHelper keeps for a flat sample."""
    return frozenset(sample.items())
