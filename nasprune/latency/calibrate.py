"""`nasprune calibrate`: a device's latency lookup table and predictor for one search space.

Calibrating a space on this machine (with the config's latency settings) does three things,
each stored as it is done, so a killed calibration resumes where it stopped:

1. It lists the units of the space's subnetworks (see :mod:`nasprune.latency.units`) over
   its largest, its smallest and a seeded sample of architectures, and times each unit once
   (a built-in space's block configurations; a derived space's layers at the channel counts
   the space allows).
2. It times a seeded sample of whole subnetworks (stored as ordinary measurements, so a
   search on this device reuses them).
3. It fits the predictor's correction on those networks and stores the calibration.

In a space with bit-width dimensions half the sampled networks hold int8 layers, and the other
half are the same networks in fp32. A unit with an int8 layer is a unit of its own (timed as
ONNX Runtime's int8 model of it), and a network with one is timed as its int8 model,
calibrated on seeded random inputs, and filed under the device's int8 key
(:func:`nasprune.quantization.int8_device`) as a search files it, in the same unit.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from nasprune.config import SearchConfig
from nasprune.errors import user_errors
from nasprune.evaluation.stored import space_with_state
from nasprune.latency import LatencyBackend, create_backend
from nasprune.latency.predictor import Model, Point, Predictor, space_key
from nasprune.latency.recorded import SpeedDrift, recorded_latency, taken_against, this_device
from nasprune.latency.reference import ReferenceNetwork, largest_subnet_reference
from nasprune.latency.units import Unit, runnable, units_of
from nasprune.quantization import Int8Model, int8_device
from nasprune.store_access import StorageArg, open_store
from search_spaces import Architecture, SearchSpace, arch_hash
from storage import DeviceKey, LatencyRecord, Store

OnStage = Callable[[str, int, int], None]  # (stage, done, total)
SAMPLES = 64  # random architectures whose units make the table (besides largest, smallest)
NETWORKS = 24  # whole subnetworks measured to fit the correction
_SEED_OFFSET = 104_729  # calibration samples differ from the search's own draws


@dataclass(frozen=True)
class Calibrated:
    """What a calibration did and found."""

    on: DeviceKey
    space: str
    units: int
    units_timed: int  # units timed by this invocation (the rest were in the store)
    networks: int
    networks_timed: int
    model: Model  # the predictor's correction
    errors: dict[str, float]  # cross-validated median relative error of each model
    seconds: float
    drift: SpeedDrift  # how the machine's speed moved over the units' and networks' figures


def calibrate(
    config: SearchConfig,
    *,
    storage: StorageArg = None,
    samples: int = SAMPLES,
    networks: int = NETWORKS,
    remeasure: bool = False,
    progress: OnStage | None = None,
    space: SearchSpace | None = None,
) -> Calibrated:
    """Build (or finish, or with ``remeasure`` rebuild) the lookup table and the predictor of
    ``config``'s space on this machine, with ``config.latency``'s settings."""
    started = time.monotonic()
    report = progress or (lambda stage, done, total: None)
    store = open_store(storage, config)
    with user_errors():
        space = space_with_state(config, space)
        backend = create_backend(config.latency)
        on = this_device(backend, space.input_shape)
        rng = random.Random(config.seed + _SEED_OFFSET)
        measured_nets = _distinct(space, _network_sample(space, rng, networks * 4))
        measured_nets = measured_nets[:networks]
        others = [space.largest(), space.smallest(), *(space.sample(rng) for _ in range(samples))]
        archs = _distinct(space, measured_nets + others)
        units = _collect_units(space, archs, report)
        reference = largest_subnet_reference(space)  # units and networks alike
        timed_units = _time_units(store, backend, on, units, remeasure, report, reference)
        table = {u.key: r.median_ms for u, r in zip(units, timed_units[0], strict=True)}
        predictor = Predictor(table, [], space.latency_blocks)
        points, net_records, timed_nets = _time_networks(
            store, backend, on, space, predictor, measured_nets, remeasure, report, reference
        )
        predictor.points = points
        predictor.fit()
        content = {
            "space": space.name,
            "unit_keys": sorted(table),
            "network_keys": [r.arch_hash for r in net_records],
            "points": [list(p) for p in points],
            "model": predictor.kind,
            "errors": predictor.errors,
            "samples": samples,
            "reference": reference.key,
        }
        store.put_calibration(on, space_key(space), space.name, content)
    return Calibrated(
        on,
        space.name,
        len(units),
        timed_units[1],
        len(points),
        timed_nets,
        predictor.kind,
        predictor.errors,
        time.monotonic() - started,
        SpeedDrift.of([*timed_units[0], *net_records]),
    )


def _network_sample(space: SearchSpace, rng: random.Random, count: int) -> list[Architecture]:
    """``count`` random architectures; with bit-width dimensions, every second one is the one
    before it in fp32, so the correction sees both kinds of network and pairs of each."""
    archs = [space.sample(rng) for _ in range(count)]
    if space.quantization is None:
        return archs
    return [
        space.quantization.fp32(archs[i - 1]) if i % 2 else arch for i, arch in enumerate(archs)
    ]


def _distinct(space: SearchSpace, archs: list[Architecture]) -> list[Architecture]:
    seen: set[str] = set()
    kept = []
    for arch in archs:
        key = arch_hash(space.canonical(arch))
        if key not in seen:
            seen.add(key)
            kept.append(arch)
    return kept


def _collect_units(space: SearchSpace, archs: list[Architecture], report: OnStage) -> list[Unit]:
    found: dict[str, Unit] = {}
    for done, arch in enumerate(archs, 1):
        structure, int8 = space.structure(arch), space.int8_layers(arch)
        for unit in units_of(structure, space.input_shape, space.latency_blocks, int8):
            found.setdefault(unit.key, unit)
        report("listing units", done, len(archs))
    return list(found.values())


def _time_units(
    store: Store,
    backend: LatencyBackend,
    on: DeviceKey,
    units: list[Unit],
    remeasure: bool,
    report: OnStage,
    reference: ReferenceNetwork,
) -> tuple[list[LatencyRecord], int]:
    stored = {} if remeasure else store.latencies(on, [u.key for u in units])
    network = reference if backend.settings.relative else None
    records: list[LatencyRecord] = []
    fresh = 0
    for done, unit in enumerate(units, 1):
        if unit.key in stored and taken_against(stored[unit.key], network):
            records.append(stored[unit.key])
        else:
            module = unit.standalone()
            records.append(
                recorded_latency(
                    store, backend, on, module, unit.key, True, unit.input_shape,
                    reference=reference,
                )[0]
            )  # fmt: skip
            fresh += 1
        report("timing units", done, len(units))
    return records, fresh


def _time_networks(
    store: Store,
    backend: LatencyBackend,
    on: DeviceKey,
    space: SearchSpace,
    predictor: Predictor,
    archs: list[Architecture],
    remeasure: bool,
    report: OnStage,
    reference: ReferenceNetwork,
) -> tuple[list[Point], list[LatencyRecord], int]:
    points: list[Point] = []
    records: list[LatencyRecord] = []
    fresh = 0
    for done, arch in enumerate(archs, 1):
        structure, int8 = space.structure(arch), space.int8_layers(arch)
        features = predictor.features(structure, space.input_shape, int8=int8)
        assert features is not None  # every unit of these networks is in the table
        module = runnable(structure)
        key = space.latency_key(arch, module)
        if int8:
            generator = torch.Generator().manual_seed(0)
            batches = [torch.randn(8, *space.input_shape, generator=generator)]
            record, measured = recorded_latency(
                store, backend, int8_device(on), Int8Model(module, int8, batches), key,
                remeasure, anchor_on=on, reference=reference,
            )  # fmt: skip
        else:
            record, measured = recorded_latency(
                store, backend, on, module, key, remeasure, reference=reference
            )
        fresh += measured
        points.append((features[0], features[1], record.median_ms))
        records.append(record)
        report("timing networks", done, len(archs))
    return points, records, fresh
