"""What each layer of a model costs on a calibrated device, read from the device's latency
table: the ``layer_ms`` a criterion that weighs layers by their cost gets (``l0``'s gates).

A layer's figure is its unit's (the layer with the batch norm and activation fused behind it,
as the table times them, see :mod:`nasprune.latency.units`). Nothing is timed here: a layer
whose unit the table does not hold is left out, and a device that was never calibrated gives
no figures at all, so the criterion falls back to counting MACs and says so.
"""

from __future__ import annotations

from torch import nn

from nasprune.latency.predictor import calibrated_table
from nasprune.latency.units import units_of
from search_spaces import SearchSpace
from search_spaces.base import LayerTimes
from storage import DeviceKey, Store


def table_layer_times(store: Store, on: DeviceKey, space: SearchSpace) -> LayerTimes:
    """A function of a model of ``space`` giving the milliseconds of each of its layers (by
    name) that ``space``'s calibration on ``on`` timed; empty when there is none. The store is
    read only when the function is called (only a criterion that weighs layers calls it)."""

    def times(model: nn.Module) -> dict[str, float]:
        table = calibrated_table(store, on, space)
        if table is None:
            return {}
        names = {id(module): name for name, module in model.named_modules()}
        found: dict[str, float] = {}
        for unit in units_of(model, space.input_shape, space.latency_blocks):
            name = names.get(id(unit.modules[0]))
            if name is not None and unit.key in table and not unit.int8:
                found[name] = table[unit.key]
        return found

    return times
