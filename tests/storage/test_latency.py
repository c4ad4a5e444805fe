"""Latency figures taken against a reference network: each keeps its reference, ratio and
drift; each device key keeps one anchor, never replaced; figures stored before revision 0007
read back as absolute ones."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from storage import DeviceKey, Referenced, Store

OLD_DATABASE = Path(__file__).parent / "data" / "nasprune-0001.sqlite3"  # written at revision 0001
ON = DeviceKey("cpu:x86:avx2", 1, (1, 8, 8), 1)


def _put(store: Store, key: str, reference: Referenced | None = None):  # noqa: ANN202
    return store.put_latency(
        ON.device, key, ON.batch_size, ON.input_shape, ON.threads, 0.4, 0.5, 30,
        spread=0.02, reference=reference,
    )  # fmt: skip


def test_a_relative_figure_round_trips_its_reference_ratio_and_drift(store: Store) -> None:
    taken = Referenced("reference:abc", ratio=2.0, reference_ms=0.25, drift=-0.2, drifted=True)
    first = _put(store, "arch-1", taken)
    assert first.reference == taken
    assert store.latencies(ON, ["arch-1"])["arch-1"].reference == taken
    # measured again without a reference (latency.relative false): the columns are cleared
    again = _put(store, "arch-1")
    assert again.measurement_id == first.measurement_id and again.reference is None
    assert store.get_latency(ON.device, "arch-1", 1, ON.input_shape, 1).reference is None


def test_the_first_anchor_of_a_device_key_stays_and_others_are_separate(store: Store) -> None:
    assert store.get_anchor(ON, "reference:abc") is None
    first = store.anchor(ON, "reference:abc", 0.25)
    assert store.anchor(ON, "reference:abc", 0.40) == first  # never replaced
    assert store.get_anchor(ON, "reference:abc") == first and first.anchor_ms == 0.25
    assert first.input_shape == ON.input_shape and first.reference_key == "reference:abc"
    other_threads = DeviceKey(ON.device, 1, ON.input_shape, 2)
    assert store.anchor(other_threads, "reference:abc", 0.40).anchor_ms == 0.40
    assert store.anchor(ON, "reference:def", 0.30).anchor_ms == 0.30  # another reference


def test_a_database_at_revision_0001_keeps_its_figures_as_absolute_ones(tmp_path: Path) -> None:
    copy = tmp_path / "old.sqlite3"
    shutil.copy(OLD_DATABASE, copy)
    connection = sqlite3.connect(copy)
    try:  # a figure as nasprune 0001 wrote it: no spread, no noisy flag, no reference
        with connection:
            connection.execute(
                "insert into latency_measurements (device, arch_hash, batch_size, input_shape, "
                "threads, median_ms, p90_ms, repeats, created_at) values (?, ?, ?, ?, ?, ?, ?, "
                "?, ?)",
                (ON.device, "old-arch", 1, "[1,8,8]", 1, 0.3, 0.35, 30, "2025-01-01 00:00:00"),
            )
    finally:
        connection.close()
    with Store(f"sqlite:///{copy}") as store:
        old = store.latencies(ON, ["old-arch"])["old-arch"]
        assert (old.median_ms, old.spread, old.noisy, old.reference) == (0.3, None, False, None)
        assert store.get_anchor(ON, "reference:abc") is None
        store.anchor(ON, "reference:abc", 0.25)
        taken = Referenced("reference:abc", ratio=1.5, reference_ms=0.3, drift=-1 / 6)
        assert _put(store, "new-arch", taken).reference == taken
        assert store.devices() == [(ON.device, 2, 0)]


@pytest.mark.parametrize("drifted", [False, True])
def test_drift_and_its_flag_are_kept_as_given(store: Store, drifted: bool) -> None:
    taken = Referenced("reference:abc", ratio=1.0, reference_ms=0.2, drift=0.3, drifted=drifted)
    record = _put(store, "arch-2", taken)
    assert record.reference is not None and record.reference.drifted is drifted
    assert record.reference.drift == pytest.approx(0.3)
