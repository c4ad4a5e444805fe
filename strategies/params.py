"""The type of every strategy param, and :func:`check_params`, which checks a config's params
against them before a search starts.

A strategy declares its params' types in ``param_types`` (beside its ``defaults``). The Optuna
adapters accept whatever their sampler's constructor accepts, so their types come from the
constructor's own annotations, refined by their ``param_types`` (ranges, choices). A param
whose type a YAML or TOML config cannot express (a callable, a sampler or mutation object)
accepts only ``None``.

Values are validated with pydantic in strict mode: ``"5"`` and ``2.5`` are not ints (nor is
``True``), while ``3`` is a float. A mapping typed by a ``TypedDict`` is checked key by key,
so an error names the key (``tpe_args.n_startup_jobs``).

>>> check_params("optuna.nsga2", {"population_size": 20, "crossover_prob": 1})
{'population_size': 20, 'crossover_prob': 1.0}
>>> check_params("optuna.nsga2", {"population_size": "x"})  # raises ParamError:
strategy 'optuna.nsga2': param 'population_size' expects int >= 2, got 'x'
"""

from __future__ import annotations

import builtins
import collections.abc
import inspect
import reprlib
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

import annotated_types as at
from pydantic import TypeAdapter, ValidationError
from typing_extensions import is_typeddict

from .errors import StrategyError
from .registry import strategy_class

# Types with a range, for ``param_types``.
NonNegativeInt = Annotated[int, at.Ge(0)]
PositiveInt = Annotated[int, at.Ge(1)]
PositiveFloat = Annotated[float, at.Gt(0)]
NonNegativeFloat = Annotated[float, at.Ge(0)]
Probability = Annotated[float, at.Interval(ge=0, le=1)]


@dataclass(frozen=True)
class PythonOnly:
    """Marks a param that takes a Python object (``annotation`` says which): a config may give
    it only as ``None``. Used as ``Annotated[None, PythonOnly("Callable[[int], int] | None")]``.
    """

    annotation: str


class ParamError(StrategyError):
    """A strategy has no such param, or the value does not fit the param's type."""


def check_params(name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` of the strategy registered as ``name``, each validated against its type.

    Raises :class:`StrategyError` for an unknown strategy, :class:`ParamError` for an unknown
    param (listing the known ones) or a value of the wrong type or range, and
    :class:`~strategies.errors.MissingDependencyError` when the strategy's library is absent.
    A strategy that declares no ``param_types`` (a plug-in) gets its params back unchecked:
    it checks them itself when it is created.
    """
    accepted = param_types(strategy_class(name))
    if accepted is None:
        return dict(params)
    for key in params:
        if key not in accepted:
            known = ", ".join(sorted(accepted)) or "none"
            raise ParamError(f"strategy {name!r} has no param {key!r}; known params: {known}")
    return {key: _check(name, key, accepted[key], value) for key, value in params.items()}


def param_types(cls: type[Any]) -> dict[str, Any] | None:
    """The type of each param ``cls`` accepts, or ``None`` if it declares none."""
    declared: dict[str, Any] | None = getattr(cls, "param_types", None)
    sampler = getattr(cls, "sampler_cls", None)  # an Optuna adapter
    if sampler is None:
        return None if declared is None else dict(declared)
    refined = declared or {}
    return {key: refined.get(key, tp) for key, tp in sampler_param_types(sampler).items()}


def sampler_param_types(sampler: Callable[..., Any]) -> dict[str, Any]:
    """The params of an Optuna sampler's constructor (but ``seed``), typed from its annotations.

    Optuna writes them as strings and imports some of the names they use only for type
    checkers; such a name stands for a class that a config cannot give (:class:`PythonOnly`).
    """
    init: Any = sampler
    if isinstance(sampler, type):
        init = init.__init__  # where the annotations were written
    names = _Names(inspect.unwrap(init).__globals__)
    found: dict[str, Any] = {}
    for key, param in inspect.signature(sampler).parameters.items():
        if key == "seed" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        found[key] = _config_part(param.annotation, names)
    return found


def describe(tp: Any) -> str:
    """A type as a user reads it: ``int >= 0``, ``float or None``, ``'sobol' | 'halton'``."""
    if tp is None or tp is type(None):
        return "None"
    if tp is Any:
        return "any value"
    origin, args = get_origin(tp), get_args(tp)
    if origin is Annotated:
        return " ".join([describe(args[0]), *filter(None, map(_bounds, args[1:]))])
    if origin in (Union, types.UnionType):
        return " or ".join(describe(arg) for arg in args)
    if origin is Literal:
        return " | ".join(repr(arg) for arg in args)
    if is_typeddict(tp):
        return f"a mapping (keys: {', '.join(get_type_hints(tp))})"
    if origin in (dict, collections.abc.Mapping):
        return "a mapping"
    if origin in (list, tuple, collections.abc.Sequence):
        return f"a list of {describe(args[0])}" if args else "a list"
    return getattr(tp, "__name__", repr(tp))


# Checking one value.


def _check(strategy: str, path: str, tp: Any, value: Any) -> Any:
    fields = _typed_dict_fields(tp) if isinstance(value, dict) else None
    if fields is not None:
        for key in value:
            if key not in fields:
                raise ParamError(
                    f"strategy {strategy!r}: param {path!r} has no key {key!r}; "
                    f"known keys: {', '.join(fields)}"
                )
        return {key: _check(strategy, f"{path}.{key}", fields[key], v) for key, v in value.items()}
    try:
        return TypeAdapter(tp).validate_python(value, strict=True)
    except ValidationError:
        pass
    python_only = _python_only(tp)
    if python_only is not None:
        raise ParamError(
            f"strategy {strategy!r}: param {path!r} takes a Python object "
            f"({python_only.annotation}) that a config cannot give, got {_show(value)}; "
            "leave it out"
        )
    raise ParamError(
        f"strategy {strategy!r}: param {path!r} expects {describe(tp)}, got {_show(value)}"
        + _text_hint(value)
    )


def _typed_dict_fields(tp: Any) -> dict[str, Any] | None:
    """The field types of the TypedDict that ``tp`` is (or has as a union member)."""
    for member in get_args(tp) if get_origin(tp) in (Union, types.UnionType) else (tp,):
        if is_typeddict(member):
            return get_type_hints(member, include_extras=True)
    return None


def _python_only(tp: Any) -> PythonOnly | None:
    if get_origin(tp) is Annotated:
        return next((m for m in get_args(tp)[1:] if isinstance(m, PythonOnly)), None)
    return None


def _bounds(meta: Any) -> str:
    """``>= 0``, ``in [0, 1]`` ... for the annotated_types constraints among ``meta``."""
    if isinstance(meta, at.Interval) and meta.ge is not None and meta.le is not None:
        return f"in [{meta.ge}, {meta.le}]"
    parts = [
        f"{symbol} {getattr(meta, field)}"
        for field, symbol in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="))
        if getattr(meta, field, None) is not None
    ]
    return " and ".join(parts)


_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 60


def _show(value: Any) -> str:
    return _repr.repr(value)


def _text_hint(value: Any) -> str:
    """A word for a number that came as text (YAML reads ``1e-3``, with no dot, as text)."""
    if not isinstance(value, str):
        return ""
    try:
        float(value)
    except ValueError:
        return ""
    mantissa, e, exponent = value.lower().partition("e")
    if e and "." not in mantissa:  # YAML 1.1 wants the dot
        return f" (text: YAML reads {value} as text; write {mantissa}.0e{exponent})"
    return " (text, not a number: write it without quotes)"


# Reading Optuna's annotations.


class _Unknown:
    """Stands for a name imported only for type checkers: a class a config cannot give."""

    def __class_getitem__(cls, item: Any) -> type[_Unknown]:
        return cls


class _Names(dict[str, Any]):
    """The namespace an annotation string is evaluated in: the library module's globals and
    the builtins, with every other name a :class:`_Unknown`."""

    def __init__(self, module_globals: dict[str, Any]) -> None:
        super().__init__(
            Any=Any,
            Callable=collections.abc.Callable,
            Sequence=collections.abc.Sequence,
            Mapping=collections.abc.Mapping,
        )
        self._globals = module_globals

    def __missing__(self, key: str) -> Any:
        if key in self._globals:
            return self._globals[key]
        return getattr(builtins, key, _Unknown)


_PLAIN = (bool, int, float, str, type(None))
_CONTAINERS = (
    list,
    tuple,
    dict,
    collections.abc.Sequence,
    collections.abc.Mapping,
    Union,
    types.UnionType,
)


def _config_part(annotation: Any, names: _Names) -> Any:
    """The type a config may give for a param annotated ``annotation``: the type itself, the
    members of a union that a config can express, or ``None`` marked :class:`PythonOnly`."""
    if annotation is inspect.Parameter.empty:
        return Any
    text = annotation if isinstance(annotation, str) else describe(annotation)
    try:
        tp = eval(annotation, {}, names) if isinstance(annotation, str) else annotation
    except Exception:  # an annotation this Python cannot evaluate takes some Python object
        return Annotated[None, PythonOnly(text)]
    members = get_args(tp) if get_origin(tp) in (Union, types.UnionType) else (tp,)
    expressible = [m for m in members if _expressible(m)]
    if not expressible or expressible == [type(None)]:
        return Annotated[None, PythonOnly(text)]
    if len(expressible) == len(members):
        return tp
    return Union[tuple(expressible)]  # noqa: UP007  (built from a runtime tuple)


def _expressible(tp: Any) -> bool:
    """Whether YAML or TOML can write a value of ``tp`` (plain values, lists, mappings)."""
    if tp is Any or tp is None or tp in _PLAIN:
        return True
    origin, args = get_origin(tp), get_args(tp)
    if origin is Literal:
        return True
    if origin is Annotated:
        return _expressible(args[0])
    if is_typeddict(tp):
        return all(map(_expressible, get_type_hints(tp, include_extras=True).values()))
    return origin in _CONTAINERS and all(_expressible(a) for a in args if a is not Ellipsis)
