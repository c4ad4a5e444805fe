"""What hangs off a search besides its trials: supernet checkpoints, events, artifacts and
fine-tuning runs. :class:`storage.Store` inherits these methods; they use its session.
Events and fine-tuning runs are read by :class:`storage.reader.Reader`."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.errors import StoreError
from storage.models import (
    EventModel,
    FinetuneModel,
    SearchArtifactModel,
    SearchModel,
    SupernetCheckpointModel,
    TrialModel,
)
from storage.records import ArtifactRecord, CheckpointRecord, FinetuneRecord
from storage.tables import utcnow


class Attachments:
    """Checkpoints, events, artifacts and fine-tunes (mixed into :class:`storage.Store`)."""

    url: str
    _transaction: Callable[..., Any]
    _write_retrying: Callable[..., Any]
    _search_row: Callable[[Session, int], SearchModel]

    # supernet checkpoints

    def get_checkpoint(self, key: str) -> CheckpointRecord | None:
        """The checkpoint trained from ``key``, if any."""

        def read(session: Session) -> CheckpointRecord | None:
            row = session.scalars(select(SupernetCheckpointModel).filter_by(key=key)).first()
            return None if row is None else row.to_record()

        found: CheckpointRecord | None = self._transaction(read)
        return found

    def put_checkpoint(self, key: str, space: str, path: str, sha256: str) -> CheckpointRecord:
        """Record a checkpoint file; an existing row of the same key is replaced."""

        def upsert(session: Session) -> CheckpointRecord:
            row = session.scalars(select(SupernetCheckpointModel).filter_by(key=key)).first()
            if row is None:
                row = SupernetCheckpointModel(key=key)
                session.add(row)
            row.space, row.path, row.sha256 = space, path, sha256
            row.created_at = utcnow()
            session.flush()
            return row.to_record()

        return self._write_retrying(upsert, "record a supernet checkpoint")

    # events

    def add_event(self, search_id: int, kind: str, message: str) -> None:
        """Append an event (resumed, failed, note ...) to the search's log."""

        def append(session: Session) -> None:
            self._search_row(session, search_id)
            session.add(
                EventModel(search_id=search_id, kind=kind, message=message, created_at=utcnow())
            )

        self._transaction(append)

    # artifacts

    def put_artifact(self, search_id: int, kind: str, content: Any) -> ArtifactRecord:
        """Store a JSON document for the search; the first one of a kind wins (a second
        writer gets the stored one back), so every worker uses the same document."""

        def insert(session: Session) -> ArtifactRecord:
            self._search_row(session, search_id)
            row = session.scalars(
                select(SearchArtifactModel).filter_by(search_id=search_id, kind=kind)
            ).first()
            if row is None:
                row = SearchArtifactModel(
                    search_id=search_id,
                    kind=kind,
                    content_json=json.dumps(content, sort_keys=True),
                    created_at=utcnow(),
                )
                session.add(row)
                session.flush()
            return row.to_record()

        record: ArtifactRecord = self._write_retrying(insert, f"store the {kind} of a search")
        return record

    def get_artifact(self, search_id: int, kind: str) -> ArtifactRecord | None:
        query = select(SearchArtifactModel).filter_by(search_id=search_id, kind=kind)

        def read(session: Session) -> ArtifactRecord | None:
            row = session.scalars(query).first()
            return None if row is None else row.to_record()

        found: ArtifactRecord | None = self._transaction(read)
        return found

    # fine-tuning runs

    def put_finetune(
        self,
        trial_id: int,
        key: str,
        settings: dict[str, Any],
        *,
        steps_done: int,
        complete: bool,
        path: str | None,
        sha256: str | None,
        accuracy: float | None = None,
        test_accuracy: float | None = None,
    ) -> FinetuneRecord:
        """Create or update the run of ``trial_id`` with settings ``key``."""

        def upsert(session: Session) -> FinetuneRecord:
            if session.get(TrialModel, trial_id) is None:
                raise StoreError(f"no trial with id {trial_id} in the store")
            row = session.scalars(
                select(FinetuneModel).filter_by(trial_id=trial_id, key=key)
            ).first()
            now = utcnow()
            if row is None:
                row = FinetuneModel(trial_id=trial_id, key=key, created_at=now)
                session.add(row)
            row.settings_json = json.dumps(settings, sort_keys=True)
            row.status = "complete" if complete else "running"
            row.steps_done, row.path, row.sha256 = steps_done, path, sha256
            row.accuracy, row.test_accuracy, row.updated_at = accuracy, test_accuracy, now
            session.flush()
            return row.to_record()

        record: FinetuneRecord = self._write_retrying(upsert, "record a fine-tuning run")
        return record
