"""Elastic mode: one shared copy of the user's model, a candidate activated by channel masks.

Activating a candidate changes no weight. Every layer that *reads* channels across the channel
dimension (convolutions other than depthwise, linear layers) sees its pruned input channels
zeroed by a forward pre-hook, which is what removing those input channels does; a layer norm
over a pruned dimension normalises over the surviving channels only; a removed block returns
its input, and a removed branch whose skip is in its parent returns zeros (``h + 0``). Values
left in pruned channels are never read, so the masked model computes what the physically
pruned one computes (checked to 1e-5 by the tests, and once per space when its supernet is
first built).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from search_spaces.derived.discovery import ChannelGroup, build_graph, root_pruning_fn
from search_spaces.derived.heads import is_conv1d
from search_spaces.dimensions import SpaceError

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
ATTRIBUTE = "_nasprune_masks"


class MaskState:
    """The hooks on one supernet and the masks of the active candidate."""

    def __init__(
        self, model: nn.Module, groups: Sequence[ChannelGroup], input_shape: Sequence[int]
    ):
        self.model = model
        self.groups = {g.name: g for g in groups}
        # module -> group name -> (local channel index tensor, root index of each local channel)
        self.readers: dict[nn.Module, dict[str, tuple[Tensor, Tensor]]] = {}
        self.norms: dict[nn.Module, dict[str, tuple[Tensor, Tensor]]] = {}
        self.masks: dict[nn.Module, Tensor | None] = {}
        self.skipped: list[nn.Module] = []
        self.modules = dict(model.named_modules())
        self._map_groups(groups, input_shape)
        for module in self.readers:
            module.register_forward_pre_hook(self._mask_input)
        for module in self.norms:
            module.register_forward_hook(self._masked_norm)

    def _map_groups(self, groups: Sequence[ChannelGroup], input_shape: Sequence[int]) -> None:
        graph = build_graph(self.model, input_shape)
        names = {m: n for n, m in self.modules.items()}
        for group in groups:
            if group.heads is not None:  # the output projection reads the query channels
                every = torch.arange(group.channels)
                reader = self.modules[group.heads.o]
                self.readers.setdefault(reader, {})[group.name] = (every, every)
                continue
            root = self.modules[group.root]
            fn = root_pruning_fn(graph, root, group.root_is_input)
            for item in graph.get_pruning_group(root, fn, list(range(group.channels))):
                module, handler = item.dep.target.module, item.dep.handler
                if not isinstance(module, nn.Module):
                    continue  # a bare parameter (a class token): added, never mixed
                pair = (torch.tensor(item.idxs), torch.tensor(item.root_idxs))
                if graph.is_in_channel_pruning_fn(handler) and _reads_channels(module):
                    self.readers.setdefault(module, {})[group.name] = pair
                elif isinstance(module, nn.LayerNorm):
                    if len(module.normalized_shape) != 1:
                        raise SpaceError(f"elastic mode: layer norm {names[module]!r} is not 1-d")
                    self.norms.setdefault(module, {})[group.name] = pair
                elif isinstance(module, nn.GroupNorm | nn.MultiheadAttention):
                    raise SpaceError(
                        f"elastic mode cannot mask {type(module).__name__} {names[module]!r}; "
                        "use evaluation.mode: prune"
                    )

    def set(
        self,
        keep: Mapping[str, Sequence[int]],
        skipped: Sequence[str],
        silent: Sequence[str] = (),
    ) -> None:
        """Activate a candidate: surviving root channels per group, blocks removed (bypassed)
        and branches removed (silenced: their skip is in their parent)."""
        for table, size in ((self.readers, _in_channels), (self.norms, _norm_size)):
            for module, by_group in table.items():
                mask: Tensor | None = None
                for name, (local, root) in by_group.items():
                    kept = keep.get(name)
                    if kept is None or len(kept) == self.groups[name].channels:
                        continue
                    if mask is None:
                        mask = torch.ones(size(module))
                    alive = torch.zeros(self.groups[name].channels, dtype=torch.bool)
                    alive[list(kept)] = True
                    mask[local[~alive[root]]] = 0.0
                self.masks[module] = mask
        for block in self.skipped:
            del block.forward  # the class's forward again
        self.skipped = []
        for names, forward in ((skipped, bypassed), (silent, silenced)):
            for name in names:
                block = self.modules[name]
                block.forward = forward  # type: ignore[method-assign]
                self.skipped.append(block)

    def _mask_input(self, module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        mask = self.masks.get(module)
        if mask is None:
            return None
        x = args[0]
        mask = mask.to(device=x.device, dtype=x.dtype)
        if isinstance(module, _CONV):
            mask = mask.view(1, -1, *([1] * (x.dim() - 2)))
        return (x * mask, *args[1:])

    def _masked_norm(self, module: nn.Module, args: tuple[Any, ...], output: Tensor) -> Tensor:
        mask = self.masks.get(module)
        if mask is None:
            return output
        return masked_layer_norm(module, args[0], mask)  # type: ignore[arg-type]


def masked_layer_norm(norm: nn.LayerNorm, x: Tensor, mask: Tensor) -> Tensor:
    """``norm`` of ``x`` over the channels ``mask`` keeps (1.0) only, as the pruned layer norm
    computes it (the masked channels' outputs are left as they come)."""
    mask = mask.to(device=x.device, dtype=x.dtype)
    count = mask.sum()
    mean = (x * mask).sum(-1, keepdim=True) / count
    var = (((x - mean) * mask) ** 2).sum(-1, keepdim=True) / count
    y = (x - mean) / torch.sqrt(var + norm.eps)
    if norm.weight is not None:
        y = y * norm.weight
    if norm.bias is not None:
        y = y + norm.bias
    return y


def bypassed(*args: Any, **kwargs: Any) -> Any:
    """The forward of a removed block: its first input, whatever else it is called with."""
    return args[0]


def silenced(*args: Any, **kwargs: Any) -> Any:
    """The forward of a removed branch whose skip is in its parent: zeros shaped like its first
    input (a branch's output has its input's shape), so its parent's ``h + branch(h)`` is
    ``h``."""
    return torch.zeros_like(args[0])


def _reads_channels(module: nn.Module) -> bool:
    """Whether the layer mixes its input channels (so pruned ones must be masked)."""
    if isinstance(module, _CONV):
        depthwise = module.groups == module.in_channels and module.groups > 1
        return not depthwise
    # per-channel layers (batch norm ...) need no mask
    return isinstance(module, nn.Linear) or is_conv1d(module)


def _in_channels(module: nn.Module) -> int:
    if isinstance(module, _CONV):
        return int(module.in_channels)
    if is_conv1d(module):
        return int(module.nx)  # type: ignore[arg-type]
    assert isinstance(module, nn.Linear)
    return int(module.in_features)


def _norm_size(module: nn.Module) -> int:
    return int(module.normalized_shape[0])  # type: ignore[index]


def state_of(supernet: nn.Module) -> MaskState:
    state = getattr(supernet, ATTRIBUTE, None)
    if not isinstance(state, MaskState):
        raise SpaceError("this module was not built by the derived space's build_supernet()")
    return state


def attach(
    model: nn.Module, groups: Sequence[ChannelGroup], input_shape: Sequence[int]
) -> MaskState:
    state = MaskState(model, groups, input_shape)
    object.__setattr__(model, ATTRIBUTE, state)
    return state
