"""The one abstract base of a search space."""

from __future__ import annotations

import abc
import json
import math
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from search_spaces.dimensions import (
    Architecture,
    Dimension,
    SpaceError,
    arch_hash,
    canonical_json,
    validate_arch,
)
from search_spaces.elastic import slice_like

if TYPE_CHECKING:
    from search_spaces.quantization import Quantization

_CACHE_SIZE = 4096  # cached (params, macs) entries per space before the cache is cleared

LayerTimes = Callable[[nn.Module], Mapping[str, float]]  # a model -> ms of each layer by name


class SearchSpace(abc.ABC):
    """A set of named dimensions over one weight-sharing supernet.

    Lifecycle:

    1. A space is built from its own keyword parameters, usually by
       ``create_space(name, **params)``. ``space.params`` keeps them as a JSON-able dict, so
       ``create_space(space.name, **space.params)`` rebuilds an equal space.
    2. ``build_supernet()`` makes a fresh supernet with random weights (the caller seeds torch).
       It holds the largest configuration of every elastic module.
    3. ``activate(supernet, arch)`` selects one architecture *inside* the supernet: it sets the
       active sub-configuration of every elastic module in place. Nothing is copied, so the
       active sub-network shares the supernet's parameters and batch-norm buffers (training it
       trains the supernet). Activation is state on the supernet: it is **not thread-safe**;
       give each thread or process its own supernet.
    4. ``extract(supernet, arch)`` returns a standalone, physically smaller module built from
       plain ``nn.Linear`` / ``nn.Conv2d`` / ``nn.BatchNorm*d`` layers, holding copies of the
       active weights and running statistics. In eval mode its outputs equal those of the
       supernet activated with ``arch`` (to 1e-5). Extraction does not change the supernet.
       ``build_subnet(arch)`` is the same module with random weights.

    A space is immutable after construction: its params, dimensions, input shape and number
    of classes never change, which is why ``num_params`` and ``macs`` may be cached per
    architecture. An architecture is plain JSON (``{dimension name: choice}``), validated by
    :meth:`validate`; every method that takes one validates it and raises :class:`SpaceError`.

    A space may depend on data as well as on its params (a space derived from a user's model
    ranks channels by importance): then :meth:`needs_state` is true, :meth:`fit_state`
    computes that state once per search as JSON (the caller stores it with the search), and
    :meth:`load_state` must be called with it before the supernet is built or activated.

    Subclasses implement :meth:`dimensions`, :meth:`build_supernet`, :meth:`activate` and
    :meth:`build_subnet`. The default :meth:`extract` copies, for every entry of the
    sub-network's ``state_dict``, the entry of the same name in the supernet sliced by
    :func:`search_spaces.elastic.slice_like`; a space whose sub-network is named differently
    from its supernet overrides it.
    """

    name: ClassVar[str]  # the registry name, e.g. "builtin.mlp"
    # Whether the space comes from a trained model: dense_model() gives it, and build_supernet()
    # starts from its weights. Built-in spaces have none and train from scratch.
    pretrained: ClassVar[bool] = False
    # modules timed as one unit by a latency lookup table (``nasprune calibrate``); other work
    # is timed per layer (conv-bn-act, linear)
    latency_blocks: ClassVar[tuple[type, ...]] = ()
    description: ClassVar[str]  # one line, shown by list_spaces()
    # the int8 settings when the space has bit-width dimensions (search_spaces.quantization)
    quantization: Quantization | None = None

    def __init__(
        self, *, params: Mapping[str, Any], input_shape: Sequence[int], num_classes: int
    ) -> None:
        try:
            self.params: dict[str, Any] = json.loads(json.dumps(dict(params)))
        except TypeError as exc:
            raise SpaceError(f"parameters of {self.name!r} must be JSON-able: {exc}") from None
        self.input_shape: tuple[int, ...] = tuple(int(n) for n in input_shape)
        self.num_classes = int(num_classes)
        self._cost_cache: dict[tuple[str, str], int] = {}

    # ---- primitives -------------------------------------------------------------------------

    @abc.abstractmethod
    def dimensions(self) -> list[Dimension]:
        """The dimensions, in a fixed order (the order of :meth:`encode`)."""

    @abc.abstractmethod
    def build_supernet(self) -> nn.Module:
        """A new supernet with random weights, every elastic module at its largest."""

    @abc.abstractmethod
    def activate(self, supernet: nn.Module, arch: Mapping[str, Any]) -> None:
        """Set the active sub-configuration of every elastic module of ``supernet``, in place."""

    @abc.abstractmethod
    def build_subnet(self, arch: Mapping[str, Any]) -> nn.Module:
        """A standalone module of plain layers sized for ``arch``, with random weights."""

    # ---- hooks with defaults -----------------------------------------------------------------

    def int8_layers(self, arch: Mapping[str, Any]) -> list[str]:
        """The layers of ``arch``'s subnet (names in :meth:`extract`'s module) that run in
        int8: none unless the space has bit-width dimensions."""
        return []

    def needs_state(self) -> bool:
        """Whether the space needs :meth:`load_state` before use (no for built-in spaces)."""
        return False

    def fit_state(
        self,
        batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
        seed: int,
        layer_ms: LayerTimes | None = None,
    ) -> dict[str, Any]:
        """Data-dependent state as JSON, computed once per search from training batches.
        ``layer_ms`` gives, for a model of the space, each layer's measured milliseconds on the
        target device (by layer name; empty where the device was not calibrated), for a state
        that weighs layers by what they cost there."""
        return {}

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Take the state that :meth:`fit_state` computed (perhaps in another process)."""
        return None

    def suggested(self) -> Architecture | None:
        """An architecture the space's state recommends trying first (a derived space with
        ``l0`` importance: the keep ratios its gates learnt), or None. A search proposes it as
        its first trial, before the strategy's first ask."""
        return None

    def masks_emulate(self, arch: Mapping[str, Any]) -> bool:
        """Whether the activated supernet computes what ``extract`` gives for ``arch``; when
        not, the search evaluates the extracted module instead."""
        return True

    def structure(self, arch: Mapping[str, Any]) -> nn.Module:
        """``arch``'s standalone module for counting and latency prediction: the layers, on the
        meta device (no weights, no draw from torch's global generator)."""
        with torch.device("meta"):
            return self.build_subnet(self.validate(arch)).eval()

    def latency_key(self, arch: Mapping[str, Any], subnet: nn.Module) -> str:
        """What a stored latency measurement of ``subnet`` is filed under: two subnets with
        the same key must run the same computation. Here the architecture's hash."""
        return arch_hash(self.validate(arch))

    def dense_model(self) -> nn.Module:
        """The trained dense model that prune mode cuts candidates from; built-in spaces have
        none, as they start from a supernet."""
        raise SpaceError(
            f"space {self.name!r} has no dense model: evaluation.mode prune needs a space "
            "derived from a trained model (space: derived); use evaluation.mode elastic"
        )

    def plan(self, arch: Mapping[str, Any]) -> dict[str, Any]:
        """The architecture as a JSON plan that rebuilds the subnet (here: the space and the
        architecture; derived spaces give the channels and blocks to remove)."""
        return {
            "format": "nasprune.arch",
            "space": self.name,
            "space_params": self.params,
            "arch": self.validate(arch),
        }

    # ---- helpers built on the primitives -----------------------------------------------------

    def extract(self, supernet: nn.Module, arch: Mapping[str, Any]) -> nn.Module:
        """A standalone copy of ``arch``'s weights and batch-norm statistics from ``supernet``."""
        arch = self.validate(arch)
        with torch.device("meta"):  # no random init, no draw from torch's global generator
            subnet = self.build_subnet(arch)
        reference = next(supernet.parameters())  # the subnet lives where the supernet lives
        subnet.to_empty(device=reference.device).to(dtype=reference.dtype)
        full = supernet.state_dict()
        state = {}
        for key, value in subnet.state_dict().items():
            if key not in full:
                raise SpaceError(f"{self.name}: the supernet has no entry {key!r} to extract")
            state[key] = slice_like(full[key], value.shape)
        subnet.load_state_dict(state)
        return subnet.train(supernet.training)

    def check_active(self, supernet: nn.Module, arch: Mapping[str, Any], subnet: nn.Module) -> None:
        """Raise :class:`SpaceError` unless ``supernet``, with ``arch`` active, computes what
        ``subnet`` (its extraction) computes on a fixed probe input, both in eval mode: the
        accuracy measured on the one and the latency measured on the other are of one model.
        The modules are left in eval mode."""
        gen = torch.Generator().manual_seed(20261205)
        x = torch.randn(2, *self.input_shape, generator=gen)
        with torch.no_grad():
            active = supernet.eval()(x.to(next(supernet.parameters()).device)).cpu()
            alone = subnet.eval()(x.to(next(subnet.parameters()).device)).cpu()
        scale = max(1.0, float(alone.abs().max()))
        if active.shape != alone.shape or float((active - alone).abs().max()) > 1e-4 * scale:
            raise SpaceError(
                f"candidate refused, not evaluated: the activated supernet and its extracted "
                f"subnet compute different outputs ({self.name})"
            )

    def validate(self, arch: Mapping[str, Any]) -> Architecture:
        """A clean copy of ``arch``; raises :class:`SpaceError` naming what is wrong."""
        return validate_arch(self.dimensions(), arch)

    def canonical(self, arch: Mapping[str, Any]) -> Architecture:
        """The one representative of every architecture that builds the same network.

        Architectures that differ only in dimensions the network does not use (an MLP's
        widths past its depth) map to the same canonical one, so a search evaluates that
        network once. The default validates and changes nothing.
        """
        return self.validate(arch)

    def sample(self, rng: random.Random) -> Architecture:
        """A uniformly random architecture, drawn from ``rng`` only."""
        return {d.name: rng.choice(d.choices) for d in self.dimensions()}

    def largest(self) -> Architecture:
        return {d.name: d.largest for d in self.dimensions()}

    def smallest(self) -> Architecture:
        return {d.name: d.smallest for d in self.dimensions()}

    def encode(self, arch: Mapping[str, Any]) -> list[int]:
        """The index of each choice, in the order of :meth:`dimensions`."""
        arch = self.validate(arch)
        return [d.index(arch[d.name]) for d in self.dimensions()]

    def decode(self, indices: Sequence[int]) -> Architecture:
        """The architecture whose choice indices are ``indices`` (inverse of :meth:`encode`)."""
        dims = self.dimensions()
        if len(indices) != len(dims):
            raise SpaceError(f"{self.name} needs {len(dims)} indices, got {len(indices)}")
        arch: Architecture = {}
        for dim, i in zip(dims, indices, strict=True):
            if not 0 <= i < len(dim.choices):
                raise SpaceError(f"index {i} out of range for dimension {dim.name!r}")
            arch[dim.name] = dim.choices[i]
        return arch

    def size(self) -> int:
        """The number of architectures (distinct choice combinations)."""
        return math.prod(len(d.choices) for d in self.dimensions())

    def num_params(self, arch: Mapping[str, Any]) -> int:
        """The exact number of parameters of ``build_subnet(arch)`` (cached)."""
        return self._cached("params", arch, _count_params)

    def macs(self, arch: Mapping[str, Any]) -> int:
        """Multiply-accumulates of one eval-mode forward pass of a batch of one (cached)."""
        return self._cached("macs", arch, lambda net: _count_macs(net, self.input_shape))

    def _cached(self, what: str, arch: Mapping[str, Any], count: Callable[[nn.Module], int]) -> int:
        key = (what, arch_hash(self.validate(arch)))
        if key not in self._cost_cache:
            if len(self._cost_cache) >= _CACHE_SIZE:
                self._cost_cache.clear()
            self._cost_cache[key] = int(count(self._costing_subnet(arch)))
        return self._cost_cache[key]

    def _costing_subnet(self, arch: Mapping[str, Any]) -> nn.Module:
        """The module that params and MACs are counted on: ``build_subnet`` on the meta device
        (shapes only: no memory, no random draws)."""
        with torch.device("meta"):
            return self.build_subnet(arch)

    # ---- identity ----------------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.params == self.params  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((self.name, canonical_json(self.params)))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"


def _count_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def _count_macs(net: nn.Module, input_shape: tuple[int, ...]) -> int:
    net.eval()
    device = next((p.device for p in net.parameters()), torch.device("meta"))
    x = torch.zeros((1, *input_shape), device=device)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(x)
    return counter.get_total_flops() // 2


def int_choices(param: str, values: object, *, odd: bool = False) -> list[int]:
    """``values`` as a non-empty, strictly ascending list of positive ints (odd if asked)."""
    if isinstance(values, str | bytes) or not isinstance(values, Sequence) or not values:
        raise SpaceError(f"{param} must be a non-empty list of integers, got {values!r}")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
        raise SpaceError(f"{param} must hold positive integers, got {list(values)}")
    if any(a >= b for a, b in zip(values, values[1:], strict=False)):
        raise SpaceError(f"{param} must be strictly ascending, got {list(values)}")
    if odd and any(v % 2 == 0 for v in values):
        raise SpaceError(f"{param} must hold odd kernel sizes, got {list(values)}")
    return list(values)


def mapping_param(param: str, value: object, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """``defaults`` updated with ``value``: a mapping whose keys are among the defaults'."""
    keys = ", ".join(defaults)
    if not isinstance(value, Mapping):
        raise SpaceError(f"{param} must be a mapping {{{keys}}}, got {value!r}")
    unknown = sorted(set(value) - set(defaults))
    if unknown:
        raise SpaceError(f"{param} takes {keys}, not {unknown}")
    return dict(defaults) | dict(value)


def positive_int(param: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise SpaceError(f"{param} must be a positive integer, got {value!r}")
    return value
