"""The web page in a real headless Chromium (Debian's, driven by Playwright) over a real
service on a real search: the list of searches, the plot of every trial with its Pareto
front, the limit control and the best trial it highlights (checked against
``nasprune.best``), the hover, the export download, and a running search followed live."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from service_helpers import http_config

import nasprune
from nasprune import queries
from nasprune.search.worker import Silent
from nasprune.service.app import create_app
from nasprune.service.settings import ServiceSettings
from storage import Store, TrialState

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
# Chromium as root, with no network beyond this machine: no sandbox, no background calls.
ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
    "--disable-background-networking", "--disable-component-update",
]  # fmt: skip
NAME = "web"
SHOTS = os.environ.get("NASPRUNE_SCREENSHOTS")  # a folder to keep the screenshots in


def web_config(tmp: Path, **overrides: Any) -> dict[str, Any]:
    config = http_config(
        tmp,
        name=NAME,
        supernet={"epochs": 3, "checkpoint_dir": str(tmp / "checkpoints")},
        objectives=[
            {"metric": "accuracy", "direction": "maximize"},
            {"metric": "latency_ms", "direction": "minimize"},
        ],
        budget={"trials": 24},
    )
    config.update(overrides)
    return config


class Server:
    """The service on a free loopback port, served by uvicorn in a thread."""

    def __init__(self, settings: ServiceSettings) -> None:
        import uvicorn

        self.app = create_app(settings)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning",
            timeout_graceful_shutdown=2,
        )  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "uvicorn did not start"
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.app.state.store.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    """A real search of 24 trials on SQLite, and the service on it."""
    tmp = tmp_path_factory.mktemp("web")
    url = f"sqlite:///{tmp / 'store.db'}"
    nasprune.run(web_config(tmp), storage=url, observer=Silent())
    server = Server(ServiceSettings(storage=url, export_dir=tmp / "exports", poll_s=0.2))
    yield server, url
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A page that fails the test on any console error (a CSP refusal, a script error)."""
    context = browser.new_context(viewport={"width": 1200, "height": 1000}, accept_downloads=True)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    opened.on("pageerror", lambda e: errors.append(f"{e} at {e.stack}"))
    opened.console_errors = errors  # a test that expects one takes it out
    yield opened
    context.close()
    assert errors == []


def screenshot(page: Any, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000  # a rendered page, not a blank one
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(SHOTS) / name)
    return path


def plotted(url: str) -> list[Any]:
    with Store(url) as store:
        search = store.get_search(NAME)
        states = [TrialState.COMPLETE, TrialState.INFEASIBLE]
        found = store.trials(search.search_id, states)
    return [t for t in found if t.accuracy is not None and t.latency_ms is not None]


def front_2d(trials: list[Any]) -> set[int]:
    """Brute force: complete trials no other beats on both lower latency and higher accuracy."""
    done = [t for t in trials if t.state == TrialState.COMPLETE]

    def beaten(t: Any) -> bool:
        return any(
            o.latency_ms <= t.latency_ms and o.accuracy >= t.accuracy
            and (o.latency_ms < t.latency_ms or o.accuracy > t.accuracy)
            for o in done
        )  # fmt: skip

    return {t.number for t in done if not beaten(t)}


def best_shown(page: Any, limit: float | None, axis: str = "latency_ms") -> int | None:
    """The trial the plot rings once it answers ``limit`` on ``axis`` (None: no limit)."""
    page.wait_for_function(
        "([x, v]) => document.getElementById('plot').dataset.bestFor === "
        "`${x}:${v === null ? 'none' : v}`",
        arg=[axis, limit],
    )
    ring = page.locator("#plot circle.best")
    if ring.get_attribute("visibility") == "hidden":
        return None
    return int(ring.get_attribute("data-number"))


def best_of(
    url: str, limit: float | None, axis: str = "latency_ms", name: str = NAME
) -> int | None:
    found = queries.best(name, storage=url, **({} if limit is None else {f"max_{axis}": limit}))
    return None if found is None else found.number


def take_out_failed_loads(page: Any, status: int) -> None:
    """The console errors a test expects: the browser's note of each response ``status``."""
    expected = f"Failed to load resource: the server responded with a status of {status}"
    assert page.console_errors and all(e.startswith(expected) for e in page.console_errors)
    page.console_errors.clear()


def test_the_index_lists_the_searches_with_their_progress(
    site: tuple[Server, str], page: Any, tmp_path: Path
) -> None:
    server, _ = site
    page.goto(server.url + "/")
    row = page.locator(f"tr[data-search='{NAME}']")
    row.wait_for()
    assert "completed" in row.inner_text() and "24 / 24" in row.inner_text()
    assert page.locator("#service").inner_text().startswith("nasprune ")
    screenshot(page, tmp_path, "index.png")
    row.locator("a").click()
    page.wait_for_url(f"**/ui/searches/{NAME}*")
    page.locator("#plot circle.trial").first.wait_for()


def test_the_plot_shows_every_trial_and_the_limit_moves_the_best(
    site: tuple[Server, str], page: Any, tmp_path: Path
) -> None:
    server, url = site
    trials = plotted(url)
    page.goto(f"{server.url}/ui/searches/{NAME}")
    page.wait_for_function(
        "n => document.querySelectorAll('#plot circle.trial').length === n", arg=len(trials)
    )
    shown = {int(n) for n in page.locator("#plot circle.trial").evaluate_all(
        "cs => cs.map(c => c.dataset.number)")}  # fmt: skip
    assert shown == {t.number for t in trials} and len(trials) >= 20
    front = page.locator("#plot circle.front").evaluate_all("cs => cs.map(c => c.dataset.number)")
    assert {int(n) for n in front} == front_2d(trials)

    # The first limit is the median latency; the page asks /best, and rings what it says.
    latencies = sorted(t.latency_ms for t in trials)
    first = float(page.input_value("#limit"))
    assert first == pytest.approx(latencies[(len(latencies) - 1) // 2], rel=1e-3)
    unlimited = best_of(url, latencies[-1])
    assert unlimited is not None
    page.fill("#limit", repr(latencies[-1]))
    assert best_shown(page, latencies[-1]) == unlimited
    page.locator(f"#front tr.best[data-number='{unlimited}']").wait_for()

    # Just under the best trial's latency, the best is another trial (or none).
    winner = next(t for t in trials if t.number == unlimited)
    tighter = winner.latency_ms * 0.999
    page.fill("#limit", repr(tighter))
    ringed = best_shown(page, tighter)
    assert ringed == best_of(url, tighter) and ringed != unlimited
    over = page.locator("#plot circle.trial.over").evaluate_all(
        "cs => cs.map(c => c.dataset.number)"
    )
    assert {int(n) for n in over} == {t.number for t in trials if t.latency_ms > tighter}
    assert f"limit={tighter!r}" in page.url  # the limit is in the address, to share

    # Hover a trial: its metrics and architecture, read from /trials/{number}.
    point = page.locator(f"#plot circle.trial[data-number='{winner.number}']")
    point.hover(force=True)
    tip = page.locator("#tooltip")
    tip.wait_for(state="visible")
    page.wait_for_function("() => !document.getElementById('tooltip').innerText"
                           ".includes('loading')")  # fmt: skip
    text = tip.inner_text()
    assert f"Trial #{winner.number}" in text
    assert all(f"{key}: {value}" in text for key, value in winner.arch.items())
    shot = screenshot(page, tmp_path, "search.png")
    assert shot.exists()


def test_dragging_the_limit_line_changes_the_best(site: tuple[Server, str], page: Any) -> None:
    server, url = site
    page.goto(f"{server.url}/ui/searches/{NAME}")
    page.locator("#plot line.limit-handle").wait_for(state="attached")
    before = float(page.input_value("#limit"))
    box = page.locator("#plot line.limit-handle").bounding_box()
    frame = page.locator("#plot rect.frame").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(frame["x"] + 2, box["y"] + box["height"] / 2, steps=8)
    page.mouse.up()
    after = float(page.input_value("#limit"))
    assert after < before
    limit = page.evaluate("() => Number(new URLSearchParams(location.search).get('limit'))")
    assert limit == pytest.approx(after, rel=1e-3)
    assert best_shown(page, limit) == best_of(url, limit)


def test_the_download_button_gives_the_exported_subnet(
    site: tuple[Server, str], page: Any, tmp_path: Path
) -> None:
    server, url = site
    page.goto(f"{server.url}/ui/searches/{NAME}")
    button = page.locator("#best .card a.button", has_text="weights")
    button.wait_for()
    number = int(page.locator("#best .card").get_attribute("data-number"))
    with page.expect_download(timeout=120_000) as download:
        button.click()
    saved = tmp_path / "subnet.pt"
    download.value.save_as(saved)
    trial = next(t for t in plotted(url) if t.number == number)
    model = nasprune.load_subnet(saved)
    assert sum(p.numel() for p in model.parameters()) == trial.params


def test_a_missing_search_gets_a_404_page(site: tuple[Server, str], page: Any) -> None:
    server, _ = site
    response = page.goto(f"{server.url}/ui/searches/nope")
    assert response.status == 404
    assert "nope" in page.locator(".message").inner_text()
    assert "default-src 'self'" in response.headers["content-security-policy"]
    take_out_failed_loads(page, 404)


def worker(url: str, cwd: Path, *options: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "nasprune", "worker", "live", "--quiet", *options],
        cwd=cwd, capture_output=True, text=True, timeout=300,
        env={**os.environ, "NASPRUNE_STORAGE": url, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def trials_drawn(page: Any, count: int) -> None:
    page.wait_for_function(
        "n => document.querySelectorAll('#plot circle.trial').length === n",
        arg=count,
        timeout=30_000,
    )


def test_a_running_search_is_followed_live(
    site: tuple[Server, str], page: Any, tmp_path: Path
) -> None:
    """The page of a search with no trial yet fills in as a real worker runs it, by
    server-sent events: one trial while the search is unfinished, then the rest and the end."""
    server, url = site
    add_search(url, web_config(tmp_path, name="live", budget={"trials": 3}))
    page.goto(f"{server.url}/ui/searches/live")
    page.locator("#status", has_text="created").wait_for()
    assert page.locator("#plot circle.trial").count() == 0
    worker(url, tmp_path, "--max-trials", "1")
    trials_drawn(page, 1)
    assert "1 / 3" in page.locator("#progress").inner_text()
    page.locator("#status", has_text="paused").wait_for()  # a worker that stopped early
    worker(url, tmp_path)
    page.locator("#status", has_text="completed").wait_for(timeout=30_000)
    trials_drawn(page, 3)
    assert "3 / 3" in page.locator("#progress").inner_text()


def add_search(url: str, config: dict[str, Any]) -> None:
    from nasprune.api import record_search
    from nasprune.config import SearchConfig

    with Store(url) as store:
        record_search(store, SearchConfig.model_validate(config))


def test_the_axis_the_log_scale_and_no_limit(site: tuple[Server, str], page: Any) -> None:
    """On parameters, the limit is a whole number and the ring is `best --max-params`; the log
    scale draws the same trials; with no limit, nothing is greyed and the best is the best."""
    server, url = site
    page.goto(f"{server.url}/ui/searches/{NAME}")
    trials_drawn(page, len(plotted(url)))
    page.select_option("#x-metric", "params")
    limit = int(page.input_value("#limit"))
    assert best_shown(page, limit, "params") == best_of(url, limit, "params")
    assert "x=params" in page.url and f"limit={limit}" in page.url
    page.check("#log-x")
    trials_drawn(page, len(plotted(url)))
    assert "parameters (log scale)" in page.locator("#plot text.label").all_text_contents()
    assert best_shown(page, limit, "params") == best_of(url, limit, "params")
    page.click("#no-limit")
    assert best_shown(page, None, "params") == best_of(url, None)
    assert page.locator("#plot circle.trial.over").count() == 0
    assert page.locator("#plot line.limit").count() == 0

    page.fill("#limit", "0.5")  # params are whole: 0 is not a limit
    message = page.eval_on_selector("#limit", "e => e.validationMessage")
    assert "whole number above 0" in message
    assert best_shown(page, None, "params") == best_of(url, None)


def test_a_refused_limit_is_one_line_and_a_good_one_clears_it(
    site: tuple[Server, str], page: Any
) -> None:
    server, url = site
    page.goto(f"{server.url}/ui/searches/{NAME}")
    trials_drawn(page, len(plotted(url)))
    page.fill("#limit", "1e13")  # above what the API takes
    assert best_shown(page, 1e13) is None
    said = page.locator("#message")
    assert said.is_visible() and "max_latency_ms" in said.inner_text()
    assert "\n" not in said.inner_text().strip()
    take_out_failed_loads(page, 422)
    limit = max(t.latency_ms for t in plotted(url))
    page.fill("#limit", repr(limit))
    assert best_shown(page, limit) == best_of(url, limit)
    assert not said.is_visible()


def test_an_empty_search_with_a_log_axis_and_the_slider(
    site: tuple[Server, str], page: Any, tmp_path: Path
) -> None:
    server, url = site
    add_search(url, web_config(tmp_path, name="empty"))
    page.goto(f"{server.url}/ui/searches/empty")
    page.locator("#status", has_text="created").wait_for()
    page.select_option("#x-metric", "macs")
    page.check("#log-x")
    page.locator("#limit-range").evaluate(
        "e => { e.value = 500; e.dispatchEvent(new Event('input')); }"
    )
    page.wait_for_function("() => document.getElementById('plot').dataset.bestFor")
    assert "NaN" not in page.url and page.input_value("#limit") != "NaN"
    assert page.locator("#plot circle.trial").count() == 0
    assert "No complete trial" in page.locator("#best").inner_text()


def test_a_search_ranked_on_loss(site: tuple[Server, str], page: Any, tmp_path: Path) -> None:
    """When the first objective is loss (minimized), the plot's y axis is loss, its front
    keeps the lowest loss, and the ring is still what `best` says."""
    server, url = site
    config = web_config(tmp_path, name="lossy", budget={"trials": 8})
    config["objectives"] = [
        {"metric": "loss", "direction": "minimize"},
        {"metric": "latency_ms", "direction": "minimize"},
    ]
    nasprune.run(config, storage=url, observer=Silent())
    with Store(url) as store:
        search = store.get_search("lossy")
        done = store.trials(search.search_id, [TrialState.COMPLETE])
    page.goto(f"{server.url}/ui/searches/lossy")
    trials_drawn(page, len(done))
    assert "loss" in page.locator("#plot text.label").all_text_contents()
    front = page.locator("#plot circle.front").evaluate_all("cs => cs.map(c => c.dataset.number)")
    beaten = {
        t.number for t in done for o in done
        if o.latency_ms <= t.latency_ms and o.loss <= t.loss
        and (o.latency_ms < t.latency_ms or o.loss < t.loss)
    }  # fmt: skip
    assert {int(n) for n in front} == {t.number for t in done} - beaten
    limit = float(page.input_value("#limit"))
    shown = page.evaluate("() => Number(new URLSearchParams(location.search).get('limit'))")
    assert shown == pytest.approx(limit, rel=1e-3)
    assert best_shown(page, shown) == best_of(url, shown, name="lossy")


def test_controls_moved_before_the_trials_arrive(site: tuple[Server, str], page: Any) -> None:
    """A user quicker than the service: the axis, the scale and the pointer move while the
    trials are still on their way; the page then draws them on that axis and scale."""
    server, url = site
    held: list[Any] = []
    page.route(f"**/searches/{NAME}/points", lambda route: held.append(route))
    page.goto(f"{server.url}/ui/searches/{NAME}")
    while not held:
        page.wait_for_timeout(20)
    page.select_option("#x-metric", "params")
    page.check("#log-x")
    box = page.locator("#plot").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    held[0].continue_()
    trials_drawn(page, len(plotted(url)))
    assert "parameters (log scale)" in page.locator("#plot text.label").all_text_contents()
    limit = int(page.input_value("#limit"))
    assert best_shown(page, limit, "params") == best_of(url, limit, "params")
