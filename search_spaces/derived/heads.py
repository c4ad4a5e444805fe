"""Attention in the Hugging Face layouts, pruned by whole heads (never channel by channel).

torch-pruning sees a transformer's query, key and value projections as separate layers: it
would prune their channels one by one (so the heads regroup channels of different heads), and
on rotary embeddings with grouped-query attention its dependency walk never ends. So these
projections are kept out of its groups and pruned here, by whole heads:

* ``qkvo``: ``q_proj``, ``k_proj``, ``v_proj``, ``o_proj`` linear layers and an integer
  ``head_dim`` on one module (Llama, Mistral, Qwen2 ...). With grouped-query attention a unit
  is one key/value head with the query heads that read it, so ``num_key_value_groups`` holds.
* ``bert``: ``self.query``, ``self.key``, ``self.value`` and ``output.dense`` (BERT, RoBERTa).
* ``gpt2``: one ``c_attn`` projection making ``[q | k | v]`` and ``c_proj``, both transformers'
  ``Conv1D`` (weights stored transposed); its ``split_size`` follows the heads kept.

A head group's channels are the query projection's outputs, as the output projection reads them;
its unit is one key/value head's worth of query channels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from search_spaces.dimensions import SpaceError

LAYOUTS = ("qkvo", "bert", "gpt2")


@dataclass(frozen=True)
class Attention:
    """One attention module of a known layout and the names of its projections."""

    layout: str
    module: str
    q: str
    k: str
    v: str
    o: str
    heads: int  # query heads
    kv_heads: int
    head_dim: int

    @property
    def channels(self) -> int:
        return self.heads * self.head_dim

    @property
    def unit(self) -> int:
        return self.heads // self.kv_heads * self.head_dim

    @property
    def projections(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((self.q, self.k, self.v, self.o)))


def is_conv1d(module: nn.Module) -> bool:
    """transformers' ``Conv1D`` (GPT-2): a linear layer whose weight is stored (in, out)."""
    return type(module).__name__ == "Conv1D" and hasattr(module, "nf") and hasattr(module, "nx")


def find_attention(model: nn.Module) -> list[Attention]:
    """Every attention module of a known layout in ``model``, in definition order."""
    found = []
    for name, module in model.named_modules():
        attention = _qkvo(name, module) or _bert(name, module) or _gpt2(name, module)
        if attention is not None:
            found.append(attention)
    return found


def _child(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _linear(module: nn.Module, *path: str) -> nn.Linear | None:
    for part in path:
        module = getattr(module, part, None)  # type: ignore[assignment]
        if module is None:
            return None
    return module if isinstance(module, nn.Linear) else None


def _qkvo(name: str, module: nn.Module) -> Attention | None:
    q, k, v, o = (_linear(module, p) for p in ("q_proj", "k_proj", "v_proj", "o_proj"))
    head_dim = getattr(module, "head_dim", None)
    if not (q and k and v and o) or not isinstance(head_dim, int) or head_dim < 1:
        return None
    heads, kv_heads = q.out_features // head_dim, k.out_features // head_dim
    if q.out_features % head_dim or k.out_features % head_dim or heads % max(kv_heads, 1):
        raise SpaceError(f"attention {name!r}: its projections do not split into heads")
    q_, k_, v_, o_ = (_child(name, p) for p in ("q_proj", "k_proj", "v_proj", "o_proj"))
    return Attention("qkvo", name, q_, k_, v_, o_, heads, kv_heads, head_dim)


def _bert(name: str, module: nn.Module) -> Attention | None:
    inner = getattr(module, "self", None)
    q, k, v = (_linear(module, "self", p) for p in ("query", "key", "value"))
    o = _linear(module, "output", "dense")
    head_dim = getattr(inner, "attention_head_size", None)
    if not (q and k and v and o) or not isinstance(head_dim, int):
        return None
    if q.out_features != k.out_features or q.out_features % head_dim:
        raise SpaceError(f"attention {name!r}: its projections do not split into heads")
    heads = q.out_features // head_dim
    q_, k_, v_, o_ = (
        _child(name, p) for p in ("self.query", "self.key", "self.value", "output.dense")
    )
    return Attention("bert", name, q_, k_, v_, o_, heads, heads, head_dim)


def _gpt2(name: str, module: nn.Module) -> Attention | None:
    c_attn, c_proj = getattr(module, "c_attn", None), getattr(module, "c_proj", None)
    if not (isinstance(c_attn, nn.Module) and is_conv1d(c_attn) and isinstance(c_proj, nn.Module)):
        return None
    if getattr(module, "is_cross_attention", False):
        return None  # left to torch-pruning, and refused by the check if it prunes it wrongly
    head_dim, width = getattr(module, "head_dim", None), getattr(module, "split_size", None)
    if not isinstance(head_dim, int) or not isinstance(width, int) or c_attn.nf != 3 * width:
        return None
    qkv, proj = _child(name, "c_attn"), _child(name, "c_proj")
    return Attention(
        "gpt2", name, qkv, qkv, qkv, proj, width // head_dim, width // head_dim, head_dim
    )


# ---- where each query channel lives --------------------------------------------------------


def kv_channel(attention: Attention, channel: int) -> int:
    """The key/value channel that query channel ``channel`` is scored against."""
    group = attention.heads // attention.kv_heads
    head, offset = divmod(channel, attention.head_dim)
    return (head // group) * attention.head_dim + offset


def made_at(attention: Attention) -> list[tuple[str, list[int], list[int], int]]:
    """(module, output channels, the query channel each stands for, how many query heads
    share it) for every projection output a head's removal takes away: zeroing them removes
    the head (its values are zero, so is what it adds to the output projection's input)."""
    root = list(range(attention.channels))
    kv = [kv_channel(attention, c) for c in root]
    share = attention.heads // attention.kv_heads
    if attention.layout == "gpt2":
        width = attention.channels
        return [
            (attention.q, root, root, 1),
            (attention.q, [c + width for c in kv], root, share),
            (attention.q, [c + 2 * width for c in kv], root, share),
        ]
    return [
        (attention.q, root, root, 1),
        (attention.k, kv, root, share),
        (attention.v, kv, root, share),
    ]


# ---- pruning -------------------------------------------------------------------------------


def prune_heads(model: nn.Module, spec: Mapping[str, Any], keep: Sequence[int]) -> None:
    """Prune the attention of a plan's head group to the query channels ``keep`` (whole
    units), in place."""
    attention = Attention(**spec["heads"])
    modules = dict(model.named_modules())
    kept = sorted(set(keep))
    if len(kept) != len({c // attention.unit for c in kept}) * attention.unit:
        raise SpaceError(f"the plan keeps part of a head of attention {attention.module!r}")
    q = torch.tensor(kept, dtype=torch.long)
    kv = torch.tensor(sorted({kv_channel(attention, c) for c in kept}), dtype=torch.long)
    if attention.layout == "gpt2":
        width = attention.channels
        _slice(modules[attention.q], torch.cat([q, kv + width, kv + 2 * width]), out=True)
        _slice(modules[attention.o], q, out=False)
        modules[attention.module].split_size = len(kept)  # type: ignore[assignment]
        modules[attention.module].num_heads = len(kept) // attention.head_dim  # type: ignore[assignment]
        return
    _slice(modules[attention.q], q, out=True)
    _slice(modules[attention.k], kv, out=True)
    _slice(modules[attention.v], kv, out=True)
    _slice(modules[attention.o], q, out=False)
    if attention.layout == "bert":
        inner = modules[_child(attention.module, "self")]
        inner.num_attention_heads = len(kept) // attention.head_dim  # type: ignore[assignment]
        inner.all_head_size = len(kept)  # type: ignore[assignment]


def _weight_dim(layer: nn.Module, out: bool) -> int:
    """The weight dimension of a layer's outputs (``out``) or inputs: a linear layer stores
    (out, in), transformers' ``Conv1D`` (in, out)."""
    return int(out) if is_conv1d(layer) else int(not out)


def _slice(layer: nn.Module, keep: Tensor, out: bool) -> None:
    """Keep the outputs (``out``) or inputs ``keep`` of a linear layer or a ``Conv1D``."""
    transposed = is_conv1d(layer)
    dim = _weight_dim(layer, out)
    weight: Tensor = layer.weight  # type: ignore[assignment]
    with torch.no_grad():
        layer.weight = nn.Parameter(weight.index_select(dim, keep).clone())
        bias = getattr(layer, "bias", None)
        if out and bias is not None:
            layer.bias = nn.Parameter(bias.index_select(0, keep).clone())
    if transposed:
        setattr(layer, "nf" if out else "nx", len(keep))
    else:
        setattr(layer, "out_features" if out else "in_features", len(keep))


# ---- importance ----------------------------------------------------------------------------


def head_scores(model: nn.Module, attention: Attention, p: int, taylor: bool) -> list[float]:
    """Per query channel: the magnitude (``p``-norm to the ``p``) of every weight its head's
    removal takes away, or |weight x gradient| with ``taylor``; normalised by the mean."""
    modules = dict(model.named_modules())

    def rows(name: str, out: bool) -> Tensor:
        layer = modules[name]
        weight: Tensor = layer.weight  # type: ignore[assignment]
        w = weight.detach()
        if taylor:
            grad = weight.grad
            w = (w * grad).abs() if grad is not None else torch.zeros_like(w)
        dim = _weight_dim(layer, out)
        return w.abs().pow(p).sum(dim=1 - dim)

    score = torch.zeros(attention.channels)
    for name, local, root, share in made_at(attention):
        values = rows(name, out=True)
        score[root] += values[local] / share
    score += rows(attention.o, out=False)
    mean = float(score.mean())
    return (score / mean if mean > 0 else score).tolist()
