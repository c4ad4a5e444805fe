"""``derived``: a search space derived from the user's own torch model."""

from __future__ import annotations

import copy
import hashlib
import logging
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from search_spaces.base import LayerTimes, SearchSpace, positive_int
from search_spaces.derived import masking, params
from search_spaces.derived.blocks import Block, find_blocks, listed_blocks
from search_spaces.derived.criteria import CRITERIA
from search_spaces.derived.criteria.l0 import learnt_keep
from search_spaces.derived.deadline import Deadline, derivation
from search_spaces.derived.discovery import (
    ChannelGroup,
    build_graph,
    culprit,
    discover_groups,
    example_input,
    first_line,
)
from search_spaces.derived.importance import channel_order, score_groups
from search_spaces.derived.loading import build_model, fingerprint, load_weights
from search_spaces.derived.plan import (
    apply_plan,
    kept_count,
    make_plan,
    sparsify_as_planned,
    with_int8,
)
from search_spaces.derived.verify import Site, compare, outputs, probe, producer_sites, zeroed
from search_spaces.dimensions import (
    Architecture,
    Dimension,
    DimensionKind,
    SpaceError,
)
from search_spaces.quantization import Quantization
from search_spaces.registry import register_space

GRANULARITIES = ("per_group", "per_stage", "global")
BLOCK_MODES = ("per_block", "per_stage", "none")
DEFAULT_KEEP = (0.25, 0.5, 0.75, 1.0)
EQUIVALENCE_TOLERANCE = 1e-4  # elastic masks against physical pruning, checked once per space
log = logging.getLogger("search_spaces.derived")


@register_space
class DerivedSpace(SearchSpace):
    """The prunable dimensions of a user's model, found by torch-pruning and torch.fx.

    Example::

        space = create_space("derived", model="mypkg.models:build", input_shape=[1, 3, 32, 32])
        space.load_state(space.fit_state(batches))   # channel importance, once per search
        arch = space.sample(random.Random(0))
        small = space.extract(space.dense_model(), arch)   # torch-pruning, physically smaller
        plan = space.plan(arch)                            # JSON that replays on the dense model

    Dimensions: one keep ratio per channel group (``per_group``, named after the group's first
    layer), per stage (``<stage>:width``) or one for the whole network (``width``, channels
    ranked across groups); ``<block>:keep`` (0/1) per residual block (or residual branch whose
    skip is in its parent, see :mod:`search_spaces.derived.branches`) or ``<stage>:depth``;
    ``sparsity`` when weight sparsity levels are given. The supernet of elastic mode is a copy
    of the model with channel masks (see :mod:`search_spaces.derived.masking`); it starts from
    the model's weights, not from random ones.
    """

    name = "derived"
    pretrained = True
    description = "Your own torch model: channel groups (DepGraph), residual blocks, sparsity"

    def __init__(
        self,
        model: str | nn.Module | None = None,
        input_shape: Sequence[int] | None = None,
        weights: str | None = None,
        model_args: Mapping[str, Any] | None = None,
        granularity: str = "per_group",
        keep_ratios: Sequence[float] = DEFAULT_KEEP,
        round_to: int = 8,
        ignore: Sequence[str] = (),
        blocks: str = "per_block",
        block_names: Sequence[str] | None = None,
        stage_depth: int = 1,
        sparsity: Sequence[float] = (),
        importance: Mapping[str, Any] | None = None,
        model_sha256: str | None = None,
        quantization: Mapping[str, Any] | None = None,
    ) -> None:
        if model is None and model_sha256 is not None:
            raise SpaceError(
                "this search's model was given as a Python object: continue it from Python, "
                "passing space=nasprune.derive_space(model, ...) with the same model and options"
            )
        if model is None:
            raise SpaceError("space derived needs params.model: 'package.module:factory'")
        if input_shape is None:
            raise SpaceError("space derived needs params.input_shape, e.g. [1, 3, 32, 32]")
        shape = params.input_shape(input_shape)
        self.granularity = params.one_of("granularity", granularity, GRANULARITIES)
        self.block_mode = params.one_of("blocks", blocks, BLOCK_MODES)
        self.keep_ratios = params.ratios("keep_ratios", keep_ratios, need_one=True)
        self.sparsity_levels = sorted(
            params.ratios("sparsity", sparsity, strict_upper=True), reverse=True
        )
        self.round_to = positive_int("round_to", round_to)
        self.stage_depth = positive_int("stage_depth", stage_depth)
        self.importance = params.importance(importance)
        self._sites: dict[str, list[Site]] = {}
        self.refused: dict[str, str] = {}  # group name -> why it stays dense (one line)
        self.input_shape = shape
        label = model if isinstance(model, str) else type(model).__name__
        with derivation(f"deriving a space from {label}") as deadline:
            self._template = self._load(model, weights, dict(model_args or {}))
            digest = fingerprint(self._template)
            if model_sha256 is not None and model_sha256 != digest:
                raise SpaceError("the model's structure or weights changed since this search began")
            deadline.step("running the model on one example input")
            output = self._probe(shape)
            deadline.step("tracing the model with torch-pruning")
            graph = build_graph(self._template, shape)
            deadline.step("finding its channel groups")
            groups = discover_groups(self._template, shape, params.names("ignore", ignore), graph)
            sites = producer_sites(graph, self._template, groups)
            self.groups = self._checked(groups, sites, deadline)
            deadline.step("finding its residual blocks")
            self.blocks = self._find_blocks(shape, block_names)
            self.quantization = Quantization.of(quantization, self._template, self.stage_depth)
        self._branches = {b.name for b in self.blocks if b.branch}
        self._group_by_name = {g.name: g for g in self.groups}
        self._widths = self._width_dims()  # width dimension name -> the groups it sets
        self._dims = self._make_dimensions()
        if not self._dims:
            refused = f" ({len(self.refused)} groups refused, see above)" if self.refused else ""
            raise SpaceError(
                "the model has nothing prunable: no channel group can shrink at "
                f"round_to={self.round_to}{refused} and no residual block can be removed"
            )
        self._scores: dict[str, list[float]] | None = None
        self._l0_keep: dict[str, float] | None = None  # keep ratio per group, learnt by l0
        self._orders: dict[str, list[int]] = {}
        self._global_cache: dict[float, dict[str, int]] = {}
        self._verified = False
        int8 = {} if self.quantization is None else {"quantization": self.quantization.as_json()}
        super().__init__(
            params=int8
            | {
                "model": model if isinstance(model, str) else None,
                "input_shape": list(input_shape),
                "weights": weights,
                "model_args": dict(model_args or {}),
                "granularity": self.granularity,
                "keep_ratios": self.keep_ratios,
                "round_to": self.round_to,
                "ignore": list(ignore),
                "blocks": self.block_mode,
                "block_names": None if block_names is None else list(block_names),
                "stage_depth": self.stage_depth,
                "sparsity": sorted(self.sparsity_levels),
                "importance": self.importance,
                "model_sha256": digest,
            },
            input_shape=shape,
            num_classes=output,
        )

    # ---- construction ------------------------------------------------------------------------

    @staticmethod
    def _load(model: str | nn.Module, weights: str | None, kwargs: dict[str, Any]) -> nn.Module:
        if isinstance(model, nn.Module):
            if weights is not None:
                raise SpaceError("give weights with a model factory string, not with a module")
            template = copy.deepcopy(model)
        elif isinstance(model, str):
            template = build_model(model, kwargs)
            if weights is not None:
                load_weights(template, weights)
        else:
            raise SpaceError(f"params.model must be 'package.module:factory', got {model!r}")
        return template.cpu().eval()

    def _probe(self, shape: tuple[int, ...]) -> int:
        try:
            with torch.no_grad():
                out = self._template(example_input(shape))
        except Exception as exc:
            first = first_line(exc)
            raise SpaceError(
                f"the model rejects input of shape {[1, *shape]}{culprit(exc, self._template)}: "
                f"{type(exc).__name__}: {first} (input_shape is one example input, batch first)"
            ) from None
        if not isinstance(out, torch.Tensor) or out.dim() != 2:
            raise SpaceError("the model must return logits of shape (batch, classes)")
        return int(out.shape[1])

    def _find_blocks(self, shape: tuple[int, ...], names: Sequence[str] | None) -> list[Block]:
        if self.block_mode == "none":
            return []
        if names is not None:
            return listed_blocks(self._template, params.names("block_names", names), shape)
        return find_blocks(self._template, shape)

    def _stage(self, group: ChannelGroup) -> str:
        return ".".join(group.name.split(".")[: self.stage_depth])

    def _width_dims(self) -> dict[str, list[ChannelGroup]]:
        """Width dimension name -> the groups it sets (only groups that can shrink)."""
        prunable = [g for g in self.groups if len(self._counts(g)) > 1]
        if self.granularity == "global":
            return {"width": prunable} if prunable else {}
        if self.granularity == "per_stage":
            stages: dict[str, list[ChannelGroup]] = {}
            for group in prunable:
                stages.setdefault(f"{self._stage(group)}:width", []).append(group)
            return stages
        return {g.name: [g] for g in prunable}

    def _counts(self, group: ChannelGroup) -> set[int]:
        return {kept_count(group, r, self.round_to) for r in self.keep_ratios}

    def _block_stages(self) -> dict[str, list[Block]]:
        stages: dict[str, list[Block]] = {}
        for block in self.blocks:
            stages.setdefault(block.stage, []).append(block)
        return stages

    def _make_dimensions(self) -> list[Dimension]:
        ratios = tuple(self.keep_ratios)
        dims = [Dimension(name, DimensionKind.WIDTH, ratios) for name in self._widths]
        if self.block_mode == "per_block":
            dims += [Dimension(f"{b.name}:keep", DimensionKind.DEPTH, (0, 1)) for b in self.blocks]
        elif self.block_mode == "per_stage":
            dims += [
                Dimension(f"{stage}:depth", DimensionKind.DEPTH, tuple(range(len(blocks) + 1)))
                for stage, blocks in self._block_stages().items()
            ]
        if self.sparsity_levels:
            levels = tuple(self.sparsity_levels) + (0.0,)
            dims.append(Dimension("sparsity", DimensionKind.SPARSITY, levels))
        return dims + ([] if self.quantization is None else self.quantization.dimensions())

    # ---- the SearchSpace primitives ----------------------------------------------------------

    def dimensions(self) -> list[Dimension]:
        return list(self._dims)

    def dense_model(self) -> nn.Module:
        """A copy of the user's model with its weights (the dense reference)."""
        return copy.deepcopy(self._template)

    def build_supernet(self) -> nn.Module:
        self._need_state()
        supernet = self.dense_model()
        masking.attach(supernet, self.groups, self.input_shape)
        if not self._verified:
            self._verify(supernet)
        return supernet

    def activate(self, supernet: nn.Module, arch: Mapping[str, Any]) -> None:
        keep, removed = self._selection(self.validate(arch))
        masking.state_of(supernet).set(keep, *self._split(removed))

    def build_subnet(self, arch: Mapping[str, Any]) -> nn.Module:
        """The pruned model's structure (with the dense weights pruned, not random ones)."""
        return apply_plan(self.dense_model(), self.plan(arch), self.input_shape, sparsify=False)

    def extract(self, supernet: nn.Module, arch: Mapping[str, Any]) -> nn.Module:
        """A physically pruned copy of ``supernet``'s weights (or the dense model's), checked
        against the same weights with the pruned channels zeroed (a :class:`SpaceError` if it
        computes anything else: see :mod:`search_spaces.derived.verify`)."""
        clean = self.validate(arch)
        keep, removed = self._selection(clean)
        plan = self._plan(clean, keep, removed)
        dense = self.dense_model()
        dense.load_state_dict(supernet.state_dict())
        subnet, problem = self._pruned(dense, keep, removed, plan)
        if problem is not None:
            raise SpaceError(f"candidate refused, not evaluated: {problem}")
        sparsify_as_planned(subnet, plan)
        return subnet.train(supernet.training)

    def structure(self, arch: Mapping[str, Any]) -> nn.Module:
        """The pruned module itself: torch-pruning needs real tensors. The global generator is
        left as it was (the model's factory may draw from it)."""
        with torch.random.fork_rng(devices=[]):
            return self.build_subnet(arch).eval()

    def _costing_subnet(self, arch: Mapping[str, Any]) -> nn.Module:
        """Costs are counted on the pruned CPU module: torch-pruning needs real tensors."""
        return self.build_subnet(arch)

    # ---- architectures, plans, state ---------------------------------------------------------

    def canonical(self, arch: Mapping[str, Any]) -> Architecture:
        """Unused widths (groups inside removed blocks) become 1.0, and keep ratios that leave
        the same channels become the smallest such ratio."""
        clean = self.validate(arch)
        removed = self._removed(clean)
        for name, groups in self._widths.items():
            live = [g for g in groups if not self._inside(g, removed)]
            if not live:
                clean[name] = self.keep_ratios[-1]
            elif self.granularity != "global":
                counts = self._count_key(live, float(clean[name]))
                clean[name] = next(
                    r for r in self.keep_ratios if self._count_key(live, r) == counts
                )
        if self.quantization is not None:
            self.quantization.canonical(clean, removed)
        return clean

    def _count_key(self, groups: Sequence[ChannelGroup], ratio: float) -> tuple[int, ...]:
        return tuple(kept_count(g, ratio, self.round_to) for g in groups)

    def plan(self, arch: Mapping[str, Any]) -> dict[str, Any]:
        """The JSON pruning plan of ``arch`` (see :mod:`search_spaces.derived.plan`)."""
        clean = self.validate(arch)
        return self._plan(clean, *self._selection(clean))

    def _plan(
        self, clean: Architecture, keep: Mapping[str, Sequence[int]], removed: Sequence[str]
    ) -> dict[str, Any]:
        sparsity = float(clean.get("sparsity", 0.0))
        blocks, branches = self._split(removed)
        plan = make_plan(self._group_by_name, keep, blocks, sparsity, 0, branches)
        return with_int8(plan, self.int8_layers(clean))

    def int8_layers(self, arch: Mapping[str, Any]) -> list[str]:
        """The layers ``arch`` runs in int8 (those of removed blocks and branches are gone)."""
        if self.quantization is None:
            return []
        clean = self.validate(arch)
        return self.quantization.int8_layers(clean, self._removed(clean))

    def needs_state(self) -> bool:
        return True

    def latency_key(self, arch: Mapping[str, Any], subnet: nn.Module) -> str:
        """The pruned module's structure (its layers and their shapes), not the architecture:
        two models, or two rankings of one model, can share an architecture's dict, while one
        structure runs at one speed whatever its weights (zeros included). The layers that run
        in int8, if any, are part of it."""
        key = "derived:" + hashlib.sha256(repr(subnet).encode()).hexdigest()[:16]
        int8 = self.int8_layers(arch)
        return (
            key
            if not int8
            else f"{key}:int8:{hashlib.sha256(repr(int8).encode()).hexdigest()[:12]}"
        )

    def masks_emulate(self, arch: Mapping[str, Any]) -> bool:
        """Weight sparsity and int8 layers are not emulated by the channel masks: such a
        candidate is evaluated on its extracted module instead of inside the supernet."""
        clean = self.validate(arch)
        return float(clean.get("sparsity", 0.0)) == 0.0 and not self.int8_layers(clean)

    def fit_state(
        self,
        batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
        seed: int,
        layer_ms: LayerTimes | None = None,
    ) -> dict[str, Any]:
        """Importance of every channel, computed once on the dense model (JSON). A criterion
        that weighs layers by their cost (``l0``) gets ``layer_ms`` of the dense model."""
        criterion, count = self.importance["criterion"], self.importance["batches"]
        cls, dense, settings = CRITERIA.get(criterion), self.dense_model(), dict(self.importance)
        chosen = []
        if cls.needs_data:
            for i, batch in enumerate(batches):
                if i == count:
                    break
                chosen.append(batch)
        if cls.weighs_layers and layer_ms is not None:
            settings["layer_ms"] = dict(layer_ms(dense))
        with learnt_keep() as keep:  # filled by l0 only
            scores, notes = score_groups(
                dense, self.input_shape, self.groups, criterion, chosen, seed, settings
            )
        state = {"criterion": criterion, "batches": len(chosen), "scores": scores, "notes": notes}
        return state | ({"l0_keep": keep} if keep else {})

    def load_state(self, state: Mapping[str, Any]) -> None:
        scores = state.get("scores")
        if not isinstance(scores, Mapping) or set(scores) != set(self._group_by_name):
            raise SpaceError("the stored importance scores do not match this model's groups")
        for name, values in scores.items():
            if len(values) != self._group_by_name[name].channels:
                raise SpaceError(f"the stored importance of group {name!r} has the wrong length")
        self._scores = {k: [float(v) for v in vals] for k, vals in scores.items()}
        self._orders = {g.name: channel_order(self._scores[g.name], g.unit) for g in self.groups}
        self._global_cache = {}
        self._l0_keep = params.l0_keep(state.get("l0_keep"), self._group_by_name)

    def _need_state(self) -> None:
        if self._scores is None:
            raise SpaceError("derived space: channel importance is not set (call load_state)")

    def suggested(self) -> Architecture | None:
        """With ``l0`` importance, every width at the keep ratio nearest the one its gates
        learnt (a width over several groups: their mean, weighted by channels), every block
        kept, the other dimensions at their largest; None for states without learnt ratios
        (other criteria, searches begun before ``l0``)."""
        if self._l0_keep is None:
            return None
        arch = self.largest()
        for name, groups in self._widths.items():
            learnt = [g for g in groups if g.name in self._l0_keep]
            if learnt:
                kept = sum(self._l0_keep[g.name] * g.channels for g in learnt)
                ratio = kept / sum(g.channels for g in learnt)
                arch[name] = min(self.keep_ratios, key=lambda r: (abs(r - ratio), -r))
        return self.canonical(arch)

    # ---- selection ---------------------------------------------------------------------------

    def _removed(self, arch: Mapping[str, Any]) -> list[str]:
        if self.block_mode == "per_block":
            return [b.name for b in self.blocks if int(arch[f"{b.name}:keep"]) == 0]
        if self.block_mode == "per_stage":
            removed = []
            for stage, blocks in self._block_stages().items():
                removed += [b.name for b in blocks[int(arch[f"{stage}:depth"]) :]]
            return removed
        return []

    def _split(self, removed: Sequence[str]) -> tuple[list[str], list[str]]:
        """Removed blocks (bypassed) and removed branches (their skip is in their parent)."""
        return (
            [n for n in removed if n not in self._branches],
            [n for n in removed if n in self._branches],
        )

    @staticmethod
    def _inside(group: ChannelGroup, removed: Sequence[str]) -> bool:
        return all(any(m == b or m.startswith(b + ".") for b in removed) for m in group.modules)

    def _selection(self, arch: Mapping[str, Any]) -> tuple[dict[str, list[int]], list[str]]:
        """Surviving root channels of every group, and the removed blocks."""
        self._need_state()
        removed = self._removed(arch)
        counts = {g.name: g.channels for g in self.groups}
        if self.granularity == "global" and "width" in self._widths:
            counts.update(self._global_counts(self._widths["width"], float(arch["width"])))
        else:
            for name, groups in self._widths.items():
                for g in groups:
                    counts[g.name] = kept_count(g, float(arch[name]), self.round_to)
        keep = {}
        for g in self.groups:
            count = g.channels if self._inside(g, removed) else counts[g.name]
            keep[g.name] = sorted(self._orders[g.name][:count])
        return keep, removed

    def _global_counts(self, groups: Sequence[ChannelGroup], ratio: float) -> dict[str, int]:
        """Channels per group when one keep ratio is spent across all groups by normalised
        importance (global pruning), then rounded per group as local pruning rounds. Cached per
        ratio: every activation of a global-width candidate asks it."""
        assert self._scores is not None
        if ratio in self._global_cache:
            return self._global_cache[ratio]
        ranked: list[tuple[float, int, int]] = []
        for gi, g in enumerate(groups):
            scores = self._scores[g.name]
            for u in range(g.units):
                mean = sum(scores[u * g.unit : (u + 1) * g.unit]) / g.unit
                ranked.extend((-mean, gi, u * g.unit + c) for c in range(g.unit))
        ranked.sort()
        chosen = ranked[: math.ceil(ratio * len(ranked))]
        per_group = [0] * len(groups)
        for _, gi, _ in chosen:
            per_group[gi] += 1
        self._global_cache[ratio] = {
            g.name: kept_count(g, per_group[gi] / g.channels, self.round_to)
            for gi, g in enumerate(groups)
        }
        return self._global_cache[ratio]

    # ---- never a silently wrong subnet --------------------------------------------------------

    def _pruned(
        self,
        model: nn.Module,
        keep: Mapping[str, Sequence[int]],
        removed: Sequence[str],
        plan: Mapping[str, Any],
    ) -> tuple[nn.Module, str | None]:
        """``model`` pruned (in place) to ``plan`` (no sparsity), and one line saying how it
        fails to compute its reference on the probe input (None when it does)."""
        x = probe(self.input_shape)
        channels = {name: self._group_by_name[name].channels for name in keep}
        try:
            with zeroed(model, self._sites, channels, keep, *self._split(removed)):
                reference = outputs(model, x)
        except Exception as exc:
            raise SpaceError(
                f"the model rejects the probe input (normal noise of shape {[2, *x.shape[1:]]})"
                f"{culprit(exc, model)}: {type(exc).__name__}: {first_line(exc)}"
            ) from None
        try:
            pruned = apply_plan(model, plan, self.input_shape, sparsify=False)
        except SpaceError as exc:
            return model, str(exc)
        except Exception as exc:
            return model, f"torch-pruning fails{culprit(exc, model)}: {type(exc).__name__}: " + (
                first_line(exc)
            )
        return pruned, compare(pruned, reference, x)

    def _checked(
        self,
        groups: Sequence[ChannelGroup],
        sites: Mapping[str, list[Site] | str],
        deadline: Deadline,
    ) -> list[ChannelGroup]:
        """The groups whose pruning computes what zeroing their channels computes, checked on
        a random half of each (all at once, then one by one if that fails); the others are
        refused with one line each and stay dense."""
        by_name = {g.name: g for g in groups}
        self._group_by_name = by_name
        for name, found in sites.items():
            if isinstance(found, str):
                self._refuse(name, f"cannot be checked: {found}")
            else:
                self._sites[name] = found
        candidates = [g for g in groups if g.name in self._sites and g.units > 1]
        rng = random.Random(0)
        halves = {g.name: _random_half(g, rng) for g in candidates}
        deadline.step(f"checking its {len(candidates)} channel groups on a probe input")
        if candidates and self._group_problem(candidates, halves) is not None:
            for i, group in enumerate(candidates, 1):
                deadline.step(f"checking channel group {i} of {len(candidates)} alone")
                problem = self._group_problem([group], halves)
                if problem is not None:
                    self._refuse(group.name, problem)
            alive = [g for g in candidates if g.name not in self.refused]
            together = self._group_problem(alive, halves) if alive else None
            if together is not None:
                raise SpaceError(
                    f"the model's channel groups prune correctly one by one but not together: "
                    f"{together}; list some of them under ignore"
                )
        return [g for g in groups if g.name not in self.refused]

    def _group_problem(
        self, groups: Sequence[ChannelGroup], halves: Mapping[str, list[int]]
    ) -> str | None:
        keep = {g.name: halves[g.name] for g in groups}
        plan = make_plan(self._group_by_name, keep, [], 0.0, seed=0)
        return self._pruned(self.dense_model(), keep, [], plan)[1]

    def _refuse(self, name: str, why: str) -> None:
        self.refused[name] = why
        log.warning("derived space: group %r is refused and stays dense: %s", name, why)

    def _verify(self, supernet: nn.Module) -> None:
        """Masks must compute what physical pruning computes; checked once on the smallest arch."""
        arch = self.smallest() | ({"sparsity": 0.0} if self.sparsity_levels else {})
        self.activate(supernet, arch)
        x = torch.randn(2, *self.input_shape, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            masked = supernet.eval()(x)
            pruned = self.extract(supernet, arch).eval()(x)
        self.activate(supernet, self.largest())
        gap = float((masked - pruned).abs().max())
        if not gap <= EQUIVALENCE_TOLERANCE * max(1.0, float(pruned.abs().max())):
            raise SpaceError(
                f"elastic mode cannot emulate this model with channel masks (outputs differ by "
                f"{gap:.2e}); use evaluation.mode: prune, which checks each pruned candidate"
            )
        self._verified = True


def _random_half(group: ChannelGroup, rng: random.Random) -> list[int]:
    """A random half of ``group``'s units (at least one kept, one removed), as channels."""
    units = sorted(rng.sample(range(group.units), max(1, group.units // 2)))
    return [u * group.unit + c for u in units for c in range(group.unit)]


def derive_space(model: nn.Module, input_shape: Sequence[int], **options: Any) -> DerivedSpace:
    """A search space derived from ``model`` (a module object), for the Python API."""
    return DerivedSpace(model=model, input_shape=input_shape, **options)
