"""The reference network that every latency figure is timed against.

A machine's speed moves between processes and from one minute to the next (other tenants of
the host, clock frequency, a busy core) by more than the protocol's precision, so an absolute
median taken in a slow minute disagrees with one taken in a fast minute. A figure is
therefore relative: the backend runs the candidate and a fixed reference network in short
alternating bursts and keeps the median of the paired candidate/reference time ratios
(:meth:`nasprune.latency.LatencyBackend.measure_against`); a slow minute slows both alike.
The ratio times the reference's *anchor* on the device key, the reference's own figure when
it was first measured there (stored once and never replaced), gives milliseconds that
compare across processes (:func:`nasprune.latency.recorded.recorded_latency`).

Which reference: **the space's largest subnet** (:func:`largest_subnet_reference`) wherever
the caller knows the space (a search's trials, ``measure``, ``calibrate``, the screen), and a
standard network built from the input shape (:func:`standard_reference`) where it does not.

* Close in kind to the candidates. A slow minute does not slow every kind of work alike: a
  tiny network is mostly per-call overhead, a larger one mostly arithmetic. Against the
  standard network of an 8x8 input (17 microseconds, mostly overhead) the ratio of a
  compute-bound 0.25 ms subnet of ``builtin.cnn`` moved 12.7..16.4 between repetitions on
  this project's shared 2-core machine; against the space's largest subnet the same
  subnets' ratios held within 1% in 5 of 6 repetitions (one, beside a CPU burner, moved 2x).
* One yardstick per space and device key: a calibration's units (inputs of their own shapes)
  and its whole networks are timed against the same largest subnet, so the lookup table's
  sums and the networks the predictor's correction is fitted on share one anchor, one unit.
  The calibration stores its reference's key; one made against another reference is not
  used until ``nasprune calibrate`` runs again, which times anew every unit and network
  taken against another reference.
* The same in every process and on every machine: the subnet is built from the space's
  structure with seeded weights (speed does not depend on their values), and its key hashes
  its structure, its input and :data:`VERSION`, so spaces with the same largest subnet share
  it, and a changed definition gets new anchors instead of mixing with the old.

The standard network is small and of bounded cost whatever the input size (its first
convolution strides large inputs down to about 64 x 64). A caller may time against any other
:class:`ReferenceNetwork` (a module against itself, in the tests).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from nasprune.latency.units import runnable
from plumbing import json_hash
from search_spaces import SearchSpace

VERSION = 1  # bump when the standard network changes: its key, so its anchors, change too
_WIDTH = 32  # channels (features) of the standard network's layers
_SIDE = 64  # a large input is strided down to about this many positions per side


@dataclass(frozen=True)
class ReferenceNetwork:
    """A fixed network and the input shape (without the batch) it is timed on. ``key`` names
    it in the store: an anchor is filed under its device key and this key."""

    key: str
    module: nn.Module
    input_shape: tuple[int, ...]

    @classmethod
    def of(cls, module: nn.Module, input_shape: tuple[int, ...], name: str) -> ReferenceNetwork:
        """A reference of the caller's own, keyed by ``name`` and the input shape."""
        return cls("reference:" + json_hash([name, list(input_shape)], 24), module, input_shape)


def standard_reference(input_shape: tuple[int, ...]) -> ReferenceNetwork:
    """The reference of a device key whose networks take inputs of ``input_shape``: a few
    conv-bn-relu layers for (C, H, W) or (C, L) inputs, an MLP for anything else (flattened),
    with weights drawn from a fixed seed (the caller's random state is left as it was)."""
    shape = tuple(int(n) for n in input_shape)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        module = _build(shape).eval()
    described = {"version": VERSION, "module": repr(module), "input": list(shape)}
    return ReferenceNetwork("reference:" + json_hash(described, 24), module, shape)


def largest_subnet_reference(space: SearchSpace) -> ReferenceNetwork:
    """The reference of ``space``'s figures: its largest subnet in fp32, on the space's input
    shape; for a space derived from a trained model, that model itself (the largest subnet
    keeps every channel and block of it, and needs no channel ranking to build), else the
    structure with seeded weights. The caller's random state is left as it was."""
    with torch.random.fork_rng(devices=[]):
        largest = space.dense_model() if space.pretrained else space.structure(space.largest())
        module = runnable(largest)
    shape = tuple(int(n) for n in space.input_shape)
    described = {"version": VERSION, "largest": repr(module), "input": list(shape)}
    return ReferenceNetwork("reference:" + json_hash(described, 24), module, shape)


def _build(shape: tuple[int, ...]) -> nn.Module:
    if len(shape) == 3:
        stride = max(1, round(math.sqrt(shape[1] * shape[2]) / _SIDE))
        return _convs(nn.Conv2d, nn.BatchNorm2d, nn.AdaptiveAvgPool2d, shape[0], stride)
    if len(shape) == 2:
        stride = max(1, round(shape[1] / (_SIDE * _SIDE)))
        return _convs(nn.Conv1d, nn.BatchNorm1d, nn.AdaptiveAvgPool1d, shape[0], stride)
    features = math.prod(shape)
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(features, 4 * _WIDTH),
        nn.ReLU(),
        nn.Linear(4 * _WIDTH, 4 * _WIDTH),
        nn.ReLU(),
        nn.Linear(4 * _WIDTH, 10),
    )


def _convs(
    conv: type[nn.Conv1d | nn.Conv2d],
    norm: type[nn.BatchNorm1d | nn.BatchNorm2d],
    pool: type[nn.AdaptiveAvgPool1d | nn.AdaptiveAvgPool2d],
    channels: int,
    stride: int,
) -> nn.Module:
    half = _WIDTH // 2
    return nn.Sequential(
        conv(channels, half, 3, stride=stride, padding=1),
        norm(half),
        nn.ReLU(),
        conv(half, _WIDTH, 3, stride=2, padding=1),
        norm(_WIDTH),
        nn.ReLU(),
        conv(_WIDTH, _WIDTH, 3, padding=1),
        norm(_WIDTH),
        nn.ReLU(),
        pool(1),
        nn.Flatten(),
        nn.Linear(_WIDTH, 10),
    )
