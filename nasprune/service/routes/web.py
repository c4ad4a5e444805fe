"""The web page: ``/`` lists the searches, ``/ui/searches/{name}`` plots one. Plain HTML from
``nasprune/service/web/`` (served here, with the security headers) and CSS and JavaScript from
``web/static/`` (mounted at ``/static``) that read the JSON API: no build step, and nothing is
fetched from anywhere but this service."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse, HTMLResponse

from nasprune.service.deps import store_of
from storage import SearchNotFoundError, Store

WEB = Path(__file__).resolve().parent.parent / "web"
HEADERS = {
    # Scripts, styles and requests of this service only; the page cannot be framed.
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}
router = APIRouter(include_in_schema=False)
StoreDep = Annotated[Store, Depends(store_of)]


def page(name: str, status_code: int = 200) -> FileResponse:
    return FileResponse(WEB / name, status_code=status_code, headers=HEADERS,
                        media_type="text/html")  # fmt: skip


@router.get("/")
def index() -> FileResponse:
    """The searches, their progress and best trials."""
    return page("index.html")


@router.get("/ui/searches/{name}", response_model=None)
def search_page(name: str, store: StoreDep) -> FileResponse | HTMLResponse:
    """One search: the plot of its trials, the limit, the best trial and its export."""
    try:
        store.get_search(name)
    except SearchNotFoundError as error:
        return HTMLResponse(_not_found(str(error)), status_code=404, headers=HEADERS)
    return page("search.html")


def _not_found(message: str) -> str:
    from html import escape

    return (
        '<!doctype html><html lang="en"><meta charset="utf-8"><title>nasprune: not found'
        '</title><link rel="icon" href="data:,"><link rel="stylesheet" href="/static/style.css">'
        "<main><h1>Not found</h1>"
        f'<p class="message">{escape(message)}</p><p><a href="/">All searches</a></p></main>'
    )
