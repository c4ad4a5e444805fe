"""Many workers on one search: the budget holds exactly, no trial number twice, nothing lost;
a killed worker's trial is retried by another; a restarted PostgreSQL is ridden out; Ray tasks
work as workers. Real processes, real SQLite files and real PostgreSQL servers."""

from __future__ import annotations

import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import nasprune
from nasprune.api import record_search
from nasprune.config import parse_config
from nasprune.errors import SearchError
from storage import Store, TrialState

ROOT = Path(__file__).resolve().parents[2]
SLOW_LATENCY = {"threads": 1, "batch_size": 1, "warmup": 5, "repeats": 3000}


def search_config(make_config, workdir: Path, url: str, budget: int, **overrides: Any) -> dict:
    config = make_config(
        workdir,
        name="shared",
        storage=url,
        budget={"trials": budget},
        strategy={"name": "random"},
        execution={"lease_s": 3.0, "max_attempts": 3},
        **overrides,
    )
    return config


def create(config: dict) -> None:
    """Create the search without evaluating anything (the workers do the work)."""
    store = Store(config["storage"])
    record_search(store, parse_config(config))
    store.close()


def start_worker(url: str, name: str = "shared", *options: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "nasprune", "worker", name, "--quiet", *options],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NASPRUNE_STORAGE": url, "PYTHONPATH": str(ROOT)},
    )


def wait_all(procs: list[subprocess.Popen[str]], timeout: float = 300) -> list[int]:
    codes = []
    for proc in procs:
        _, err = proc.communicate(timeout=timeout)
        codes.append(proc.returncode)
        assert proc.returncode in (0, -signal.SIGKILL), err
    return codes


def assert_exact(url: str, budget: int) -> list:
    """Exactly ``budget`` complete trials, numbered 0.. without a gap or a repeat, no trial
    left running, and no network evaluated twice to completion."""
    store = Store(url)
    search = store.get_search("shared")
    trials = store.trials(search.search_id)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == budget
    assert [t.number for t in trials] == list(range(len(trials)))
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    assert len({t.arch_hash for t in complete}) == budget
    store.close()
    return trials


def wait_for(predicate, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("the condition was never met")


def running_count(url: str) -> int:
    store = Store(url)
    try:
        search = store.get_search("shared")
        return store.count_trials(search.search_id, [TrialState.RUNNING])
    except Exception:
        return 0
    finally:
        store.close()


@pytest.mark.slow  # tens of seconds: the slow target (CI runs both)
def test_two_worker_processes_share_one_sqlite_file_without_losing_a_trial(
    workdir: Path, make_config
) -> None:
    url = f"sqlite:///{workdir / 'shared.db'}"
    config = search_config(make_config, workdir, url, budget=10, latency=SLOW_LATENCY)
    create(config)
    # Each may evaluate 5 at most, so the two share the 10 whichever starts faster (a worker
    # that loads torch first could otherwise take every trial on a slow machine).
    procs = [start_worker(url, "shared", "--max-trials", "5") for _ in range(2)]
    wait_all(procs)
    trials = assert_exact(url, 10)
    assert len({t.worker for t in trials}) == 2, "both workers took trials"
    with sqlite3.connect(workdir / "shared.db") as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_run_with_workers_starts_local_worker_processes(
    workdir: Path, make_config, write_config
) -> None:
    url = f"sqlite:///{workdir / 'shared.db'}"
    config = search_config(make_config, workdir, url, budget=6)
    path = write_config(workdir / "shared.yaml", config)
    result = subprocess.run(
        [sys.executable, "-m", "nasprune", "run", str(path), "--workers", "3", "--quiet"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "6/6 trials complete" in result.stdout
    assert_exact(url, 6)
    store = Store(url)
    events = store.events(store.get_search("shared").search_id)
    joined = {e.message for e in events if e.kind == "worker"}
    assert len(joined) == 3, "three worker processes took part"
    assert [e.kind for e in events].count("supernet") == 1, "the supernet is trained once"


@pytest.mark.slow  # tens of seconds: the slow target (CI runs both)
def test_run_with_a_killed_worker_exits_0_with_a_warning_when_the_budget_is_reached(
    workdir: Path, make_config, write_config
) -> None:
    """A worker process killed mid-search loses nothing the others do not redo: the command
    ends 0 and says so in one warning line (it exited 2, "your mistake", before)."""
    url = f"sqlite:///{workdir / 'shared.db'}"
    config = search_config(make_config, workdir, url, budget=6, latency=SLOW_LATENCY)
    path = write_config(workdir / "shared.yaml", config)
    run = subprocess.Popen(
        [sys.executable, "-m", "nasprune", "run", str(path), "--workers", "3", "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    wait_for(lambda: len(_children(run.pid)) == 2 and running_count(url) >= 2)
    victim = _children(run.pid)[0]
    os.kill(victim, signal.SIGKILL)
    out, err = run.communicate(timeout=300)
    assert run.returncode == 0, err
    assert "6/6 trials complete" in out
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: 1 of 2 worker processes failed (exit status -9); the others finished the "
        "search's budget"
    ]
    assert_exact(url, 6)


def _children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (from /proc), oldest first."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return sorted(found)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("run", range(3))
def test_three_workers_on_postgres_one_sigkilled_end_with_exactly_the_budget(
    run: int, workdir: Path, make_config, postgresql_url: str
) -> None:
    budget = 9
    config = search_config(make_config, workdir, postgresql_url, budget, latency=SLOW_LATENCY)
    create(config)
    procs = [start_worker(postgresql_url) for _ in range(3)]
    victim = random.Random(run).randrange(3)
    wait_for(lambda: running_count(postgresql_url) >= 2)
    time.sleep(random.Random(run).uniform(0.0, 2.0))  # a random moment of a trial
    procs[victim].send_signal(signal.SIGKILL)
    codes = wait_all(procs)
    assert codes[victim] == -signal.SIGKILL
    trials = assert_exact(postgresql_url, budget)
    assert all(t.attempts <= 2 for t in trials)


@pytest.fixture
def own_postgres() -> Iterator[Any]:
    """A server of this test's own, which it may restart."""
    from pg_server import pg_bindir, running_postgres

    if pg_bindir() is None and not os.environ.get("CI"):
        pytest.skip("PostgreSQL is not installed (pg_ctl not found); .ci/run installs it")
    with running_postgres() as server:
        yield server


@pytest.mark.slow
@pytest.mark.postgres
def test_workers_carry_on_through_a_postgres_restart(
    workdir: Path, make_config, own_postgres: Any
) -> None:
    from pg_server import create_database

    url = create_database(own_postgres.url)
    budget = 8
    config = search_config(make_config, workdir, url, budget, latency=SLOW_LATENCY)
    create(config)
    procs = [start_worker(url) for _ in range(3)]
    wait_for(lambda: running_count(url) >= 2)
    own_postgres.stop("fast")
    time.sleep(2.0)
    own_postgres.start()
    wait_all(procs)
    assert_exact(url, budget)


def test_ray_tasks_work_as_workers_also_when_run_resumes_an_existing_search(
    workdir: Path, make_config, monkeypatch
) -> None:
    ray = pytest.importorskip("ray")
    url = f"sqlite:///{workdir / 'shared.db'}"
    config = search_config(make_config, workdir, url, budget=5)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    again = search_config(make_config, workdir, url, budget=3) | {"name": "again"}
    create(again)  # launched before: `run --resume-if-exists` takes it up
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        result = nasprune.run(config, workers=2, executor="ray")
        resumed = nasprune.run(again, workers=2, executor="ray", resume_if_exists=True)
    finally:
        ray.shutdown()
    assert result.completed == 5 and result.new_trials == 5
    trials = assert_exact(url, 5)
    me = f"{socket.gethostname()}:{os.getpid()}"
    assert all(t.worker != me for t in trials), "Ray's worker processes evaluate, not the driver"
    assert resumed.completed == 3 and resumed.new_trials == 3
    store = Store(url)
    resumed_trials = store.trials(store.get_search("again").search_id)
    assert len(resumed_trials) == 3 and all(t.worker != me for t in resumed_trials)


def test_a_missing_executor_backend_is_one_line(workdir: Path, make_config) -> None:
    with pytest.raises(SearchError, match="executor"):
        nasprune.run(make_config(workdir), executor="slurm")


def test_a_missing_ray_is_one_line_with_the_install_hint(
    workdir: Path, make_config, write_config
) -> None:
    path = write_config(workdir / "shared.yaml", search_config(make_config, workdir, "", 2))
    hide_ray = (
        "import sys; sys.modules['ray'] = None; from nasprune.cli import main; "
        f"sys.argv = ['nasprune', 'run', {str(path)!r}, '--executor', 'ray', '--quiet', "
        f"'--storage', 'sqlite:///{workdir / 'ray.db'}']; main()"
    )
    result = subprocess.run(
        [sys.executable, "-c", hide_ray],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: the Ray executor needs Ray: pip install 'nasprune[ray]'"
    ]
    assert not (workdir / "ray.db").exists(), "nothing is written before the check"


def test_workers_with_any_serve_every_search_that_has_work(workdir: Path, make_config) -> None:
    url = f"sqlite:///{workdir / 'shared.db'}"
    for name, budget in (("first", 3), ("second", 4)):
        create(search_config(make_config, workdir, url, budget) | {"name": name})
    command = [sys.executable, "-m", "nasprune", "worker", "--any", "--until-idle", "--quiet"]
    env = {**os.environ, "NASPRUNE_STORAGE": url, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True) for _ in "ab"]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    store = Store(url)
    for name, budget in (("first", 3), ("second", 4)):
        search = store.get_search(name)
        assert store.count_trials(search.search_id, [TrialState.COMPLETE]) == budget
        assert search.status == "completed"
    store.close()


def test_worker_needs_a_name_or_any(workdir: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "nasprune", "worker"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 2 and "NAME or --any" in result.stderr
