"""Following a search: its progress now (polling), or as server-sent events that arrive when
it changes and end when the search has finished."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from nasprune import queries
from nasprune.service import schemas
from nasprune.service.deps import SettingsDep, StoreDep
from storage import SearchStatus, Store

router = APIRouter(tags=["progress"])
KEEPALIVE_S = 15.0  # a comment line this often keeps proxies from closing a quiet stream


def progress_of(store: Store, name: str) -> schemas.Progress:
    summary = queries.status(name, storage=store)[0]
    finished = SearchStatus(summary.status).is_finished()
    return schemas.Progress(**summary.as_json(), finished=finished)


@router.get("/searches/{name}/progress", response_model=schemas.Progress)
def progress(name: str, store: StoreDep) -> schemas.Progress:
    """Complete, running and failed trials, the budget and the best trial so far."""
    return progress_of(store, name)


@router.get(
    "/searches/{name}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
def events(name: str, store: StoreDep, settings: SettingsDep) -> StreamingResponse:
    """Server-sent events: a ``progress`` event (the JSON of ``/progress``) whenever it
    changes, and an ``end`` event once the search has finished, which closes the stream."""
    first = progress_of(store, name)  # 404 before the stream starts
    return StreamingResponse(
        _stream(store, name, first, settings.poll_s),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _stream(
    store: Store, name: str, now: schemas.Progress, poll_s: float
) -> AsyncIterator[str]:
    """Waits on the event loop, and reads the store in the thread pool, so an open stream
    (a browser tab on the web page) holds no thread between reads."""
    last, quiet_since = "", time.monotonic()
    while True:
        data = now.model_dump_json()
        if data != last:
            yield f"event: progress\ndata: {data}\n\n"
            last, quiet_since = data, time.monotonic()
        if now.finished:
            yield f"event: end\ndata: {json.dumps({'status': now.status})}\n\n"
            return
        if time.monotonic() - quiet_since >= KEEPALIVE_S:
            yield ": still running\n\n"
            quiet_since = time.monotonic()
        await asyncio.sleep(poll_s)
        now = await run_in_threadpool(progress_of, store, name)
