"""Take the README's screenshot of the web page: `nasprune serve` on a store, a search's page in
Debian's headless Chromium (driven by Playwright), the pointer on the best trial under the
limit.

    python docs/screenshot.py --search digits-mlp --out docs/web-page.png   # after `make demo`
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
    "--disable-background-networking", "--disable-component-update",
]  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve(storage: str, port: int, exports: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "nasprune", "serve", "--storage", storage, "--port",
               str(port), "--export-dir", exports]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("nasprune serve did not answer /health within 60 s")


def shoot(url: str, out: Path, limit: float | None) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(url + ("" if limit is None else f"?limit={limit}"))
        page.locator("#plot circle.trial").first.wait_for()
        page.wait_for_function("() => document.getElementById('plot').dataset.bestFor")
        ring = page.locator("#plot circle.best")
        if ring.get_attribute("visibility") != "hidden":
            number = ring.get_attribute("data-number")
            page.locator(f"#plot circle.trial[data-number='{number}']").hover(force=True)
            page.wait_for_function(
                "() => !document.getElementById('tooltip').innerText.includes('loading')"
            )
        page.screenshot(path=str(out), full_page=True)
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--storage", default=os.environ.get("NASPRUNE_STORAGE", "sqlite:///nasprune.db")
    )
    parser.add_argument("--search", required=True)
    parser.add_argument("--limit", type=float, default=None, help="the latency limit, in ms")
    parser.add_argument("--out", type=Path, default=Path("docs/web-page.png"))
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as exports:
        server = serve(args.storage, port, exports)
        try:
            shoot(f"http://127.0.0.1:{port}/ui/searches/{args.search}", args.out, args.limit)
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
