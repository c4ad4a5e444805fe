"""Strategy params are typed: every param of every registered strategy is checked against its
type (and range) by ``check_params``, strictly, with one line naming strategy, param, the
type expected and the value."""

from __future__ import annotations

import inspect
import types
from collections.abc import Sequence
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types as at
import pytest
from typing_extensions import is_typeddict

from search_spaces.dimensions import Architecture
from strategies import (
    MissingDependencyError,
    Strategy,
    StrategyError,
    create_strategy,
    list_strategies,
)
from strategies import registry as registry_module
from strategies.params import ParamError, PythonOnly, check_params, param_types
from strategies.registry import register_strategy, strategy_class

NAMES = sorted(list_strategies())


def _params(name: str) -> list[tuple[str, str]]:
    return [(name, key) for key in sorted(param_types(strategy_class(name)) or {})]


EVERY_PARAM = [pair for name in NAMES for pair in _params(name)]


def accepted_defaults(cls: type[Strategy]) -> dict[str, Any]:
    """The params a strategy's ``__init__`` accepts, with their defaults."""
    sampler = getattr(cls, "sampler_cls", None)
    if sampler is not None:  # Optuna adapters pass their sampler's params through
        found = {
            key: p.default
            for key, p in inspect.signature(sampler).parameters.items()
            if key != "seed"
        }
        return found | cls.sampler_defaults  # type: ignore[attr-defined]
    return dict(getattr(cls, "defaults", {}))


def fitting_and_not(tp: Any) -> tuple[Any, Any]:
    """A value of type ``tp`` and one that is not (the smallest good value of a range, and
    the one just below it)."""
    origin, args = get_origin(tp), get_args(tp)
    if origin is Annotated:
        if any(isinstance(m, PythonOnly) for m in args[1:]):
            return None, "a function"
        bound = args[1]
        low = bound.ge if getattr(bound, "ge", None) is not None else bound.gt
        return (low if getattr(bound, "ge", None) is not None else low + 1), low - 1
    if origin in (Union, types.UnionType):
        return fitting_and_not(next(a for a in args if a is not type(None)))
    if origin is Literal:
        return args[0], "no-such-choice"
    if is_typeddict(tp):
        return {}, {"no_such_key": 1}
    if origin is dict:
        return {"a": 1}, [1]
    return {bool: (False, 0), int: (3, 2.5), float: (3, "0.5"), str: ("a", 1)}[tp]


@pytest.mark.parametrize("name", NAMES)
def test_every_builtin_strategy_types_exactly_the_params_it_accepts(name: str) -> None:
    cls = strategy_class(name)
    declared = param_types(cls)
    assert declared is not None, f"{name} declares no param_types"
    assert set(declared) == set(accepted_defaults(cls))


@pytest.mark.parametrize("name", NAMES)
def test_every_default_fits_its_declared_type(name: str) -> None:
    defaults = accepted_defaults(strategy_class(name))
    assert check_params(name, defaults).keys() == defaults.keys()


@pytest.mark.parametrize(("name", "param"), EVERY_PARAM)
def test_a_fitting_value_passes_and_a_wrong_one_is_one_line_naming_everything(
    name: str, param: str
) -> None:
    tp = param_types(strategy_class(name))[param]  # type: ignore[index]
    good, bad = fitting_and_not(tp)
    assert check_params(name, {param: good}) == {param: good}
    with pytest.raises(ParamError) as info:
        check_params(name, {param: bad})
    message = str(info.value)
    assert f"strategy {name!r}" in message and f"param {param!r}" in message
    assert "\n" not in message
    if not isinstance(bad, dict):
        assert repr(bad) in message


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        (
            "optuna.tpe",
            {"n_startup_trials": "x"},
            "strategy 'optuna.tpe': param 'n_startup_trials' expects int >= 0, got 'x'",
        ),
        (
            "optuna.tpe",
            {"n_startup_trials": 2.5},
            "param 'n_startup_trials' expects int >= 0, got 2.5",
        ),
        ("optuna.tpe", {"n_startup_trials": 5.0}, "expects int >= 0, got 5.0"),
        ("optuna.tpe", {"multivariate": "yes"}, "param 'multivariate' expects bool or None"),
        ("optuna.tpe", {"gamma": 0.25}, "param 'gamma' takes a Python object (Callable"),
        ("optuna.nsga2", {"population_size": 1}, "expects int >= 2, got 1"),
        ("optuna.nsga2", {"population_size": True}, "expects int >= 2, got True"),
        ("optuna.nsga2", {"crossover": "uniform"}, "param 'crossover' takes a Python object"),
        ("optuna.qmc", {"qmc_type": "latin"}, "expects 'sobol' | 'halton', got 'latin'"),
        ("optuna.qmc", {"independent_sampler": "random"}, "takes a Python object (BaseSampler"),
        ("optuna.cmaes", {"sigma0": 0.0}, "param 'sigma0' expects float > 0 or None, got 0.0"),
        ("optuna.cmaes", {"sigma0": "1e-3"}, "got '1e-3' (text: YAML reads 1e-3 as text"),
        ("optuna.cmaes", {"x0": [1, 2]}, "param 'x0' expects a mapping or None, got [1, 2]"),
        ("nni.regularized_evolution", {"mutation_prob": 1.5}, "expects float in [0, 1], got 1.5"),
        ("nni.regularized_evolution", {"dedup": "no"}, "param 'dedup' expects bool, got 'no'"),
        ("nni.evolution", {"population_size": 0}, "expects int >= 1, got 0"),
        (
            "nni.tpe",
            {"tpe_args": {"n_startup_jobs": "10"}},
            "param 'tpe_args.n_startup_jobs' expects int >= 2, got '10' (text, not a number",
        ),
        ("nni.tpe", {"tpe_args": {"constant_liar_type": "max"}}, "'best' | 'worst' | 'mean'"),
        ("nni.tpe", {"tpe_args": {"gama": 0.5}}, "param 'tpe_args' has no key 'gama'; known"),
        ("nni.tpe", {"tpe_args": "fast"}, "param 'tpe_args' expects a mapping (keys: "),
    ],
)
def test_wrong_values_are_refused_with_what_was_expected(
    name: str, params: dict[str, Any], message: str
) -> None:
    with pytest.raises(ParamError) as info:
        check_params(name, params)
    assert message in str(info.value)


def test_an_int_is_a_float_and_nested_mappings_come_back_validated() -> None:
    assert check_params("optuna.nsga2", {"crossover_prob": 1}) == {"crossover_prob": 1.0}
    assert check_params("optuna.tpe", {"gamma": None, "multivariate": True}) == {
        "gamma": None,
        "multivariate": True,
    }
    args = {"n_startup_jobs": 4, "gamma": 1, "constant_liar_type": None}
    assert check_params("nni.tpe", {"tpe_args": args}) == {
        "tpe_args": {"n_startup_jobs": 4, "gamma": 1.0, "constant_liar_type": None}
    }


@pytest.mark.parametrize("name", NAMES)
def test_unknown_params_are_refused_with_the_known_ones(name: str) -> None:
    with pytest.raises(ParamError, match="has no param 'no_such_param'; known params: ") as info:
        check_params(name, {"no_such_param": 1})
    known = sorted(param_types(strategy_class(name)) or {})
    assert str(info.value).endswith(", ".join(known) or "none")


def test_unknown_strategy_lists_the_known_ones() -> None:
    with pytest.raises(StrategyError, match="unknown strategy 'optuna.nope'; known: greedy, grid"):
        check_params("optuna.nope", {})


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("optuna.tpe", {"n_startup_trials": 0, "n_ei_candidates": 1}),
        ("optuna.nsga2", {"population_size": 2, "mutation_prob": 0.0, "swapping_prob": 1}),
        ("optuna.cmaes", {"popsize": 2, "n_startup_trials": 0}),
        ("nni.regularized_evolution", {"population_size": 1, "sample_size": 1}),
        ("nni.evolution", {"population_size": 1}),
        (
            "nni.tpe",
            {"tpe_args": {"n_startup_jobs": 2, "n_ei_candidates": 1, "linear_forgetting": 1}},
        ),
    ],
)
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # cmaes divides by zero below popsize 4
def test_the_smallest_values_in_range_really_run(name: str, params, dims, driver, score) -> None:
    checked = check_params(name, params)
    strategy = create_strategy(name, dims, ["maximize"], seed=0, **checked)
    assert len(driver(strategy, lambda arch: [score(arch)], 12)) == 12


def test_a_plugin_without_param_types_gets_its_params_unchecked() -> None:
    @register_strategy("test.untyped", "Declares no param types")
    class Untyped(Strategy):
        name = "test.untyped"

        def ask(self) -> Architecture:
            return {d.name: d.smallest for d in self.dimensions}

        def tell(self, arch: Architecture, values: Sequence[float] | None) -> None:
            pass

    try:
        assert check_params("test.untyped", {"anything": "x"}) == {"anything": "x"}
    finally:
        registry_module._REGISTRY.pop("test.untyped")


def test_a_missing_library_raises_its_install_hint() -> None:
    def load() -> type[Strategy]:
        raise MissingDependencyError("test.needs_lib needs foo: pip install foo")

    register_strategy("test.needs_lib", "Needs a library that is not installed", load)
    try:
        with pytest.raises(MissingDependencyError, match="pip install foo"):
            check_params("test.needs_lib", {"x": 1})
    finally:
        registry_module._REGISTRY.pop("test.needs_lib")


def test_optuna_refinements_name_params_the_sampler_has() -> None:
    for name in NAMES:
        cls = strategy_class(name)
        sampler = getattr(cls, "sampler_cls", None)
        if sampler is not None:
            assert set(cls.param_types or {}) <= set(inspect.signature(sampler).parameters)


def test_ranges_are_described_as_a_user_reads_them() -> None:
    from strategies.params import describe

    assert describe(Annotated[float, at.Interval(ge=0, le=1)] | None) == "float in [0, 1] or None"
    assert describe(Annotated[int, at.Gt(0)]) == "int > 0"
