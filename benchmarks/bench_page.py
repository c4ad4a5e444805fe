"""The web page on big searches: how long headless Chromium takes to show a search's page with
every trial plotted, and to ring a new best when the limit changes; and the plot's data in one
`/points` response beside the same trials paged through `/trials`, by offset and by key
(`after`), as a client without it would.

    .venv/bin/python benchmarks/bench_page.py [--trials 1000 10000 100000]

Each size is a search of N complete trials whose accuracy rises with latency (bench_scale's
data), bulk-inserted into a SQLite file, served by the service (uvicorn in a thread of this
process) and opened in Debian's /usr/bin/chromium driven by Playwright. Times are medians of
3; a page load is from `goto` until the SVG holds N trials and the best under the limit is
ringed. The limit change includes the page's 120 ms debounce.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_scale import add_search, percentile, trade_off  # noqa: E402

from nasprune.service.app import create_app  # noqa: E402
from nasprune.service.settings import ServiceSettings  # noqa: E402

ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
    "--disable-background-networking", "--disable-component-update",
]  # fmt: skip
REPEATS = 3


def serve(url: str, exports: Path) -> tuple[str, Any]:
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = create_app(ServiceSettings(storage=url, export_dir=exports))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=600) as response:
        return bytes(response.read())


def timed(call: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


def points_vs_pages(base: str, name: str, count: int) -> dict[str, float]:
    seconds, body = zip(*(timed(lambda: fetch(f"{base}/searches/{name}/points"))
                          for _ in range(REPEATS)), strict=True)  # fmt: skip
    assert len(json.loads(body[0])["number"]) == count

    def pages() -> int:
        size = 0
        for offset in range(0, count, 100):
            size += len(fetch(f"{base}/searches/{name}/trials?limit=100&offset={offset}"))
        return size

    def keyed() -> int:
        size, after = 0, None
        while True:
            query = "" if after is None else f"&after={after}"
            page = fetch(f"{base}/searches/{name}/trials?limit=100{query}")
            size += len(page)
            if (after := json.loads(page)["next_after"]) is None:
                return size

    paged_s, paged_bytes = timed(pages)
    keyed_s, _ = timed(keyed)
    return {
        "points_s": statistics.median(seconds),
        "points_mb": len(body[0]) / 1e6,
        "pages_s": paged_s,
        "pages_mb": paged_bytes / 1e6,
        "keyed_s": keyed_s,
    }


def page_times(browser: Any, base: str, name: str, count: int, limits: list[float]) -> dict:
    loads, moves = [], []
    for _ in range(REPEATS):
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        start = time.perf_counter()
        page.goto(f"{base}/ui/searches/{name}?limit={limits[0]}")
        page.wait_for_function(
            "([n, l]) => { const p = document.getElementById('plot');"
            " return p.dataset.trials === String(n) && p.dataset.bestFor === `latency_ms:${l}`; }",
            arg=[count, limits[0]],
            timeout=600_000,
        )
        loads.append(time.perf_counter() - start)
        start = time.perf_counter()
        page.fill("#limit", repr(limits[1]))
        page.wait_for_function(
            "l => document.getElementById('plot').dataset.bestFor === `latency_ms:${l}`",
            arg=limits[1],
            timeout=600_000,
        )
        moves.append(time.perf_counter() - start)
        page.close()
    return {"load_s": statistics.median(loads), "limit_s": statistics.median(moves)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, nargs="+", default=[1000, 10_000, 100_000])
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    rows = []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        for count in args.trials:
            url = f"sqlite:///{tmp}/page-{count}.db"
            data = trade_off(count, seed=count)
            latencies = [t.latency_ms for t in data]
            limits = [percentile(latencies, 0.5), percentile(latencies, 0.1)]
            add_search(url, "big", data, limits[0])
            base, server = serve(url, Path(tmp) / "exports")
            row = {"trials": count, **points_vs_pages(base, "big", count)}
            row.update(page_times(browser, base, "big", count, limits))
            server.should_exit = True
            rows.append(row)
            print(json.dumps(row), flush=True)
        browser.close()
    print()
    print(
        "| trials | page shown | new limit ringed | /points | /trials by 100, offset |"
        " /trials by 100, after |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['trials']:,} | {r['load_s']:.2f} s | {r['limit_s']:.2f} s | "
            f"{r['points_s'] * 1000:.0f} ms, {r['points_mb']:.1f} MB | "
            f"{r['pages_s']:.2f} s, {r['pages_mb']:.1f} MB | {r['keyed_s']:.2f} s |"
        )


if __name__ == "__main__":
    main()
