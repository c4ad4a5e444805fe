"""Latency in the store: measurements keyed by device, the trials they belong to, each device
key's anchor figure of its reference network, and the per-device calibrations (lookup table
and predictor). :class:`storage.Store` inherits these methods; they use its session. Which
devices and settings were measured is read by :class:`storage.reader.Reader`."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from storage.errors import StoreError
from storage.models import (
    LatencyAnchorModel,
    LatencyCalibrationModel,
    LatencyMeasurementModel,
    TrialModel,
)
from storage.queries import IN_CHUNK, shape_json
from storage.records import AnchorRecord, CalibrationRecord, DeviceKey, LatencyRecord, Referenced
from storage.tables import utcnow

_Keyed = TypeVar("_Keyed", LatencyMeasurementModel, LatencyCalibrationModel, LatencyAnchorModel)


class LatencyTables:
    """Measurements, trial latency keys and calibrations (mixed into :class:`storage.Store`)."""

    url: str
    _transaction: Callable[..., Any]
    _write_retrying: Callable[..., Any]

    def get_latency(
        self,
        device: str,
        arch_hash: str,
        batch_size: int,
        input_shape: Sequence[int],
        threads: int,
    ) -> LatencyRecord | None:
        """The cached measurement for this device, architecture and input, if any."""
        query = _latency_query(device, arch_hash, batch_size, input_shape, threads)

        def read(session: Session) -> LatencyRecord | None:
            row = session.scalars(query).one_or_none()
            return None if row is None else row.to_record()

        found: LatencyRecord | None = self._transaction(read)
        return found

    def latencies(self, on: DeviceKey, arch_hashes: Sequence[str]) -> dict[str, LatencyRecord]:
        """The measurements on ``on`` of each of ``arch_hashes`` that has one."""
        wanted = sorted(set(arch_hashes))

        def read(session: Session) -> dict[str, LatencyRecord]:
            found: dict[str, LatencyRecord] = {}
            for start in range(0, len(wanted), IN_CHUNK):
                chunk = wanted[start : start + IN_CHUNK]
                query = _on_device(LatencyMeasurementModel, on).where(
                    LatencyMeasurementModel.arch_hash.in_(chunk)
                )
                found.update((row.arch_hash, row.to_record()) for row in session.scalars(query))
            return found

        records: dict[str, LatencyRecord] = self._transaction(read)
        return records

    def put_latency(
        self,
        device: str,
        arch_hash: str,
        batch_size: int,
        input_shape: Sequence[int],
        threads: int,
        median_ms: float,
        p90_ms: float,
        repeats: int,
        spread: float | None = None,
        noisy: bool = False,
        reference: Referenced | None = None,
    ) -> LatencyRecord:
        """Cache a measurement; a second put of the same key replaces the values. With
        ``reference``, the figure was taken against the device's reference network."""

        def upsert(session: Session) -> LatencyRecord:
            key = (device, arch_hash, batch_size, input_shape, threads)
            row = session.scalars(_latency_query(*key)).one_or_none()
            if row is None:
                row = LatencyMeasurementModel(
                    device=device,
                    arch_hash=arch_hash,
                    batch_size=batch_size,
                    input_shape=shape_json(input_shape),
                    threads=threads,
                )
                session.add(row)
            row.median_ms, row.p90_ms, row.repeats = median_ms, p90_ms, repeats
            row.spread, row.noisy = spread, noisy
            row.reference_key = None if reference is None else reference.reference_key
            row.ratio = None if reference is None else reference.ratio
            row.reference_ms = None if reference is None else reference.reference_ms
            row.drift = None if reference is None else reference.drift
            row.drifted = reference is not None and reference.drifted
            row.created_at = utcnow()
            session.flush()
            return row.to_record()

        record: LatencyRecord = self._write_retrying(upsert, "cache a latency measurement")
        return record

    def set_latency_key(self, trial_id: int, latency_key: str) -> None:
        """Record which measurements are the trial's (a search measured before revision 0004
        learns its keys when it is measured again)."""

        def set_key(session: Session) -> None:
            changed = session.execute(
                update(TrialModel)
                .where(TrialModel.trial_id == trial_id)
                .values(latency_key=latency_key)
                .execution_options(synchronize_session=False)
            )
            if changed.rowcount == 0:  # type: ignore[attr-defined]
                raise StoreError(f"no trial with id {trial_id} in the store")

        self._transaction(set_key)

    # anchors

    def get_anchor(self, on: DeviceKey, reference_key: str) -> AnchorRecord | None:
        """The anchor figure of the reference ``reference_key`` on ``on``, if it has one."""

        def read(session: Session) -> AnchorRecord | None:
            row = session.scalars(_anchor_query(on, reference_key)).one_or_none()
            return None if row is None else row.to_record()

        found: AnchorRecord | None = self._transaction(read)
        return found

    def anchor(self, on: DeviceKey, reference_key: str, figure_ms: float) -> AnchorRecord:
        """The anchor of ``reference_key`` on ``on``: the stored one, else ``figure_ms``
        stored as it. It is never replaced; of concurrent first writers, one wins."""

        def get_or_insert(session: Session) -> AnchorRecord:
            row = session.scalars(_anchor_query(on, reference_key)).one_or_none()
            if row is None:
                row = LatencyAnchorModel(
                    device=on.device,
                    batch_size=on.batch_size,
                    input_shape=shape_json(on.input_shape),
                    threads=on.threads,
                    reference_key=reference_key,
                    anchor_ms=figure_ms,
                    created_at=utcnow(),
                )
                session.add(row)
                session.flush()
            return row.to_record()

        record: AnchorRecord = self._write_retrying(get_or_insert, "store a latency anchor")
        return record

    # calibrations

    def get_calibration(self, on: DeviceKey, space_key: str) -> CalibrationRecord | None:
        """The calibration of the space ``space_key`` on ``on``, if one was stored."""

        def read(session: Session) -> CalibrationRecord | None:
            row = session.scalars(_calibration_query(on, space_key)).one_or_none()
            return None if row is None else row.to_record()

        found: CalibrationRecord | None = self._transaction(read)
        return found

    def put_calibration(
        self, on: DeviceKey, space_key: str, space: str, content: dict[str, Any]
    ) -> CalibrationRecord:
        """Create or replace the calibration of ``space_key`` on ``on``."""

        def upsert(session: Session) -> CalibrationRecord:
            row = session.scalars(_calibration_query(on, space_key)).one_or_none()
            now = utcnow()
            if row is None:
                row = LatencyCalibrationModel(
                    device=on.device,
                    space_key=space_key,
                    batch_size=on.batch_size,
                    input_shape=shape_json(on.input_shape),
                    threads=on.threads,
                    created_at=now,
                )
                session.add(row)
            row.space, row.content_json = space, json.dumps(content, sort_keys=True)
            row.updated_at = now
            session.flush()
            return row.to_record()

        record: CalibrationRecord = self._write_retrying(upsert, "store a latency calibration")
        return record


def _on_device(model: type[_Keyed], on: DeviceKey) -> Select[_Keyed]:
    """Rows of ``model`` (measurements or calibrations) taken on ``on``."""
    return select(model).filter_by(
        device=on.device,
        batch_size=on.batch_size,
        input_shape=shape_json(on.input_shape),
        threads=on.threads,
    )


def _anchor_query(on: DeviceKey, reference_key: str) -> Select[LatencyAnchorModel]:
    return _on_device(LatencyAnchorModel, on).filter_by(reference_key=reference_key)


def _calibration_query(on: DeviceKey, space_key: str) -> Select[LatencyCalibrationModel]:
    return _on_device(LatencyCalibrationModel, on).filter_by(space_key=space_key)


def _latency_query(
    device: str, arch_hash: str, batch_size: int, input_shape: Sequence[int], threads: int
) -> Select[LatencyMeasurementModel]:
    """The measurement of one unique key of ``latency_measurements``."""
    on = DeviceKey(device, batch_size, tuple(input_shape), threads)
    return _on_device(LatencyMeasurementModel, on).filter_by(arch_hash=arch_hash)
