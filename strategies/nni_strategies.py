"""NNI's NAS strategy ``RegularizedEvolution`` behind the ask/tell interface.

Design: drive the real strategy in-process, without its ``run()`` loop and without threads.

NNI strategies are written as a loop (``RegularizedEvolution._run``) that submits models to an
execution engine and learns from the engine's ``TrainingEnd`` events. nasprune's loop is the
other way round (it asks, evaluates, tells), so this adapter plays the part of that loop:

* the dimensions become an NNI model space, ``RawFormatModelSpace`` over an
  ``nni.mutable.MutableDict`` of one ``nni.choice`` per dimension (no torch model involved);
* the strategy is initialised with that space and a ``SequentialExecutionEngine``, which
  registers the strategy's own ``TrainingEnd`` callback;
* ``ask`` makes the decision ``_run`` would make: while the population plus the running model
  is smaller than ``population_size`` it calls the strategy's ``random()``, then its
  ``new_individual()`` (tournament of ``sample_size``, per-dimension mutation), through NNI's
  ``RetrySamplingHelper`` exactly as ``_run`` does, and registers the model as running;
* ``tell`` dispatches, on the engine, the events a trained model would emit:
  ``FinalMetricEvent`` with the metric (then ``TrainingEndEvent(Trained)``), or for ``None``
  a ``TrainingEndEvent(Failed)`` without a metric, which NNI's callback skips ("has no metric"),
  so failed candidates never enter the population.

The alternative, running ``run()`` in a helper thread with an evaluator that hands each model to
``ask`` and blocks until ``tell``, would reuse ``_run`` verbatim but needs a thread handoff,
shutdown on ``close()`` and at garbage collection, and care at interpreter exit; the direct drive
is deterministic by construction (one ``RandomState(seed)`` owned by the strategy, no thread),
and is ~40 lines. Its cost: it reads ``_population``, ``_running_models`` and ``_retry_helper``
of NNI 3.0's ``RegularizedEvolution`` (it mirrors ``_run``), so a future NNI may need a review.

NNI maximises its metric, so a minimised first objective is told negated. With ``dedup``
(NNI's default, on) an architecture is never proposed twice; once the retries cannot find a new
one (a small space exhausted), the adapter samples from the space with the strategy's
``RandomState`` without deduplication.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from search_spaces.dimensions import Architecture, Dimension

from ._nni import SeededGlobals, import_nni, numpy_seed, quiet
from .base import Strategy
from .errors import StrategyError
from .params import PositiveInt, Probability

(_nni, _mutable, _space, _strategy, _execution, _event) = import_nni(
    "nni",
    "nni.mutable",
    "nni.nas.space",
    "nni.nas.strategy",
    "nni.nas.execution",
    "nni.nas.execution.event",
)


class NniRegularizedEvolution(Strategy):
    """NNI's aging evolution: params ``population_size=20``, ``sample_size=5``,
    ``mutation_prob=0.2``, ``crossover=False``, ``dedup=True``.

    >>> s = create_strategy("nni.regularized_evolution", dims, ["maximize"], 0, sample_size=3)
    >>> arch = s.ask(); s.tell(arch, [0.71])
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
        self._globals = SeededGlobals(seed)
        try:
            with quiet():
                self._evolution = _strategy.RegularizedEvolution(seed=numpy_seed(seed), **kwargs)
        except (TypeError, ValueError) as exc:
            raise StrategyError(f"strategy {self.name!r}: bad params {params}: {exc}") from exc
        choices = {d.name: _nni.choice(d.name, list(d.choices)) for d in self.dimensions}
        space = _space.RawFormatModelSpace(_mutable.MutableDict(choices), None)
        self._engine = _execution.SequentialExecutionEngine()
        with self._globals.active():
            self._evolution.initialize(space, self._engine)
        self._pending: tuple[Any, Architecture] | None = None

    def _next_model(self) -> Any:
        evo = self._evolution
        filling = len(evo._population) + len(evo._running_models) < evo.population_size
        model = evo._retry_helper.retry(evo.random if filling else evo.new_individual)
        if model is None:  # every architecture was proposed already
            model = evo.model_space.random(random_state=evo._random_state)
        evo._running_models.append(model)
        return model

    def ask(self) -> Architecture:
        with self._globals.active():
            model = self._next_model()
        arch = self.decode(model.sample)
        self._pending = (model, arch)
        return dict(arch)

    def tell(self, arch: Architecture, values: Sequence[float] | None) -> None:
        self.check_told(arch, self._pending[1] if self._pending else None)
        assert self._pending is not None
        model = self._pending[0]
        checked = self.check_values(values)
        self._pending = None
        status = _space.ModelStatus.Failed if checked is None else _space.ModelStatus.Trained
        with self._globals.active():
            if checked is not None:
                self._engine.dispatch_model_event(
                    _event.FinalMetricEvent(model, self.score(checked))
                )
            self._engine.dispatch_model_event(_event.TrainingEndEvent(model, status))

    def close(self) -> None:
        with quiet():
            self._engine.shutdown()
